//! Server side: minting challenges and verifying credentials against stateless nonces.

use super::nonce::NonceKey;
use super::{
    Algorithm, AuthError, Challenge, Credentials, NonceId, NonceTracker, Qop, Rechallenge, Secret,
    NONCE_RANDOM_LEN,
};

/// How a [`Verifier`] behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// How long a nonce is accepted after it was issued, in milliseconds (default 5 minutes).
    /// Older ones get a `stale=true` challenge when the response was otherwise right.
    pub nonce_ttl_ms: u64,
    /// How far in the future a nonce's issue time may be (clocks of different edge machines
    /// disagree a little), in milliseconds (default 30 s).
    pub max_clock_skew_ms: u64,
    /// The algorithms offered, in order (default SHA-256 then MD5, as RFC 8760 §2.4 says).
    /// Only their plain and `-sess` variants are accepted.
    ///
    /// JsSIP (3.x) keeps only the *last* `WWW-Authenticate` of a response and gives up unless it
    /// is MD5, so this default order (MD5 last) also serves browsers running it.
    pub algorithms: Vec<Algorithm>,
    /// How many nonces the replay tracker remembers at most (default 4096).
    pub tracker_capacity: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            nonce_ttl_ms: 5 * 60 * 1000,
            max_clock_skew_ms: 30 * 1000,
            algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
            tracker_capacity: 4096,
        }
    }
}

/// What the secret lookup is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lookup<'a> {
    /// The user name from the credentials (not yet authenticated).
    pub username: &'a str,
    /// The realm, already checked to be the one the nonce was minted for.
    pub realm: &'a str,
    /// The plain algorithm ([`Algorithm::Md5`] or [`Algorithm::Sha256`]) whose HA1 is wanted
    /// if the lookup answers with [`Secret::Ha1`].
    pub algorithm: Algorithm,
}

/// Credentials that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The authenticated user name.
    pub username: String,
    /// The realm.
    pub realm: String,
    /// The digest URI the client signed; the SIP core may compare it with the Request-URI.
    pub uri: String,
    /// The algorithm used.
    pub algorithm: Algorithm,
    /// The qop used.
    pub qop: Qop,
    /// The nonce count accepted.
    pub nc: u32,
    /// When the nonce was issued, in the caller's milliseconds.
    pub nonce_issued_ms: u64,
}

/// Issues digest challenges and verifies credentials, without IO: the caller passes the time,
/// the random bytes for each nonce and the account secret lookup.
///
/// Nonces are stateless (see the [module docs](super)), so any verifier holding the same server
/// secret accepts them; replays are caught by the [`NonceTracker`] inside this verifier, so keep
/// one verifier where an account's requests arrive (its Durable Object).
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Vec<NonceKey>,
    config: VerifierConfig,
    tracker: NonceTracker,
}

impl Verifier {
    /// A verifier minting nonces with `server_secret` (at least 32 random bytes; it never
    /// leaves this value and is never logged).
    pub fn new(server_secret: &[u8], config: VerifierConfig) -> Self {
        let tracker = NonceTracker::new(config.tracker_capacity, config.nonce_ttl_ms);
        Verifier {
            keys: vec![NonceKey::new(server_secret)],
            config,
            tracker,
        }
    }

    /// Also accepts nonces minted under `secret` (a secret being rotated out); new nonces are
    /// still minted with the one given to [`Verifier::new`].
    pub fn with_previous_secret(mut self, secret: &[u8]) -> Self {
        self.keys.push(NonceKey::new(secret));
        self
    }

    /// The configuration.
    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// The challenges for a `401`/`407`: one per configured algorithm, SHA-256 first by default,
    /// all with the same new nonce bound to `tenant` and `realm`, and `qop="auth"`.
    /// `random` must be fresh random bytes for each call.
    pub fn challenge(
        &self,
        now_ms: u64,
        tenant: &str,
        realm: &str,
        random: &[u8; NONCE_RANDOM_LEN],
    ) -> Vec<Challenge> {
        self.challenges(now_ms, tenant, realm, random, false)
    }

    /// The challenges to answer `error` with, `stale=true` where it says so; `None` when its
    /// answer carries no challenge (400, 403, 500).
    pub fn rechallenge(
        &self,
        now_ms: u64,
        tenant: &str,
        realm: &str,
        random: &[u8; NONCE_RANDOM_LEN],
        error: &AuthError,
    ) -> Option<Vec<Challenge>> {
        let stale = error.rechallenge()? == Rechallenge::Stale;
        Some(self.challenges(now_ms, tenant, realm, random, stale))
    }

    fn challenges(
        &self,
        now_ms: u64,
        tenant: &str,
        realm: &str,
        random: &[u8; NONCE_RANDOM_LEN],
        stale: bool,
    ) -> Vec<Challenge> {
        let id = NonceId {
            issued_ms: now_ms,
            random: *random,
        };
        let nonce = match self.keys.first() {
            Some(key) => key.mint(tenant, realm, &id),
            None => String::new(),
        };
        self.config
            .algorithms
            .iter()
            .map(|&algorithm| Challenge {
                realm: realm.to_owned(),
                nonce: nonce.clone(),
                algorithm,
                qop: vec![Qop::Auth],
                opaque: None,
                stale,
                domain: None,
            })
            .collect()
    }

    /// Verifies an `Authorization` (or `Proxy-Authorization`) header value of a request with
    /// `method` and an empty body (a `REGISTER`, typically; `auth-int` then covers the empty
    /// body). `tenant` is the tenant the request arrived for; `lookup` returns the account's
    /// secret, or `None` when there is no such account.
    ///
    /// # Errors
    /// Every [`AuthError`] server-side variant; each says what to answer.
    pub fn verify<F>(
        &mut self,
        now_ms: u64,
        tenant: &str,
        method: &str,
        authorization: &str,
        lookup: F,
    ) -> Result<Verified, AuthError>
    where
        F: FnOnce(&Lookup<'_>) -> Option<Secret>,
    {
        self.verify_with_body(now_ms, tenant, method, b"", authorization, lookup)
    }

    /// [`Verifier::verify`] for a request with a body (only `auth-int` reads it).
    ///
    /// # Errors
    /// As for [`Verifier::verify`].
    pub fn verify_with_body<F>(
        &mut self,
        now_ms: u64,
        tenant: &str,
        method: &str,
        body: &[u8],
        authorization: &str,
        lookup: F,
    ) -> Result<Verified, AuthError>
    where
        F: FnOnce(&Lookup<'_>) -> Option<Secret>,
    {
        let credentials = Credentials::parse(authorization)?;
        self.verify_credentials(now_ms, tenant, method, body, &credentials, lookup)
    }

    /// [`Verifier::verify_with_body`] for credentials already parsed (e.g. the SIP core picked,
    /// among several `Authorization` headers, the one whose realm is the tenant's).
    ///
    /// Checks, in order: `qop` present, algorithm accepted, nonce minted here for this tenant
    /// and realm, account known, response right (constant-time), nonce not expired, nonce
    /// count not replayed. Only credentials that pass every check are recorded in the tracker.
    ///
    /// # Errors
    /// As for [`Verifier::verify`].
    pub fn verify_credentials<F>(
        &mut self,
        now_ms: u64,
        tenant: &str,
        method: &str,
        body: &[u8],
        credentials: &Credentials,
        lookup: F,
    ) -> Result<Verified, AuthError>
    where
        F: FnOnce(&Lookup<'_>) -> Option<Secret>,
    {
        let c = credentials;
        let (Some(qop), Some(nc)) = (c.qop, c.nc) else {
            return Err(AuthError::Malformed("credentials without qop"));
        };
        let base = c.algorithm.base();
        if !self.config.algorithms.iter().any(|a| a.base() == base) {
            return Err(AuthError::UnsupportedAlgorithm);
        }
        let id = self
            .keys
            .iter()
            .find_map(|k| k.open(tenant, &c.realm, &c.nonce))
            .ok_or(AuthError::InvalidNonce)?;
        let secret = lookup(&Lookup {
            username: &c.username,
            realm: &c.realm,
            algorithm: base,
        })
        .ok_or(AuthError::UnknownUser)?;
        if !c.check(&secret, method, body)? {
            return Err(AuthError::WrongPassword);
        }
        let too_new = id.issued_ms > now_ms.saturating_add(self.config.max_clock_skew_ms);
        let too_old = now_ms >= id.issued_ms.saturating_add(self.config.nonce_ttl_ms);
        if too_new || too_old {
            return Err(AuthError::Stale);
        }
        self.tracker.observe(now_ms, id, nc.value())?;
        Ok(Verified {
            username: c.username.clone(),
            realm: c.realm.clone(),
            uri: c.uri.clone(),
            algorithm: c.algorithm,
            qop,
            nc: nc.value(),
            nonce_issued_ms: id.issued_ms,
        })
    }

    /// The replay tracker (for inspection).
    pub fn tracker(&self) -> &NonceTracker {
        &self.tracker
    }

    /// When the next remembered nonce expires; [`Verifier::handle_timeout`] then frees it.
    /// Optional: verification also frees expired nonces as it goes.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.tracker.poll_timeout()
    }

    /// Forgets nonces expired at `now_ms`.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.tracker.handle_timeout(now_ms);
    }
}
