//! What an account core is configured with: who it is, how it registers, its secrets and limits.

use std::fmt;

/// Where REGISTERs of this account are handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RegistrationMode {
    /// The edge is the registrar: digest authentication against the stored HA1s, bindings here.
    #[default]
    Local,
    /// REGISTER is relayed to the tenant's upstream (which authenticates); bindings are also
    /// recorded here on its 2xx so that the upstream's INVITEs can be delivered.
    Relay,
}

/// The stored digest secrets of a local account: `H(user:realm:password)` in hex for MD5 and
/// SHA-256 (see [`crate::auth::ha1_hex`]); the realm is the tenant domain.
///
/// `Debug` never shows them, and the core never puts them in an output.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StoredCredentials {
    /// HA1 for MD5, lowercase hex (32 digits).
    pub ha1_md5: String,
    /// HA1 for SHA-256, lowercase hex (64 digits).
    pub ha1_sha256: String,
}

impl StoredCredentials {
    /// Computes both HA1s from a password (tests, demo accounts).
    pub fn from_password(user: &str, realm: &str, password: &str) -> Self {
        use crate::auth::{ha1_hex, Algorithm};
        StoredCredentials {
            ha1_md5: ha1_hex(Algorithm::Md5, user, realm, password),
            ha1_sha256: ha1_hex(Algorithm::Sha256, user, realm, password),
        }
    }
}

impl fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoredCredentials(<redacted>)")
    }
}

/// Bounds and timers of one account core. The defaults suit a browser webphone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most bindings (registered browsers) per account; a new one beyond this replaces the one
    /// closest to expiry.
    pub max_bindings: usize,
    /// Shortest registration accepted, seconds (shorter non-zero ones get 423 with Min-Expires).
    pub min_expires: u32,
    /// Longest registration granted, seconds (longer ones are shortened).
    pub max_expires: u32,
    /// Registration length when the REGISTER names none, seconds.
    pub default_expires: u32,
    /// Timer C (RFC 3261 §16.6 step 11): an INVITE branch without a final response this long
    /// after its last provisional is cancelled and counts as 408, milliseconds.
    pub timer_c_ms: u64,
    /// A non-INVITE branch without a final response this long counts as 408 (Timer F), ms.
    pub non_invite_timeout_ms: u64,
    /// A cancelled INVITE branch that still sends no final response this long after the
    /// CANCEL counts as 487, milliseconds.
    pub cancel_timeout_ms: u64,
    /// How long a request waits for the shell's answer to a lookup, an echo bridge or a media
    /// bridge (allocation, answer, renegotiation) before it is answered 503, milliseconds.
    pub pending_timeout_ms: u64,
    /// How long a finished transaction is kept to absorb ACKs and forward late 2xx (Timer J/K
    /// like), milliseconds.
    pub linger_ms: u64,
    /// Most transactions kept at once; requests beyond get 503 with Retry-After.
    pub max_transactions: usize,
    /// The Retry-After (seconds) of that 503.
    pub retry_after_s: u32,
    /// Most in-dialog contacts remembered per account (contact → browser connection).
    pub max_contact_flows: usize,
    /// Most echo (*43) calls at once.
    pub max_echo_calls: usize,
    /// Most calls through a media bridge at once (being set up or established); beyond, new
    /// ones get 503 with Retry-After.
    pub max_bridge_calls: usize,
    /// How often each bridged call's media session is checked ([`Output::CheckMedia`]) while
    /// there are any, milliseconds. A dead node's calls end within about
    /// `media_check_interval_ms * media_check_failures` (plus the shell's check timeout).
    ///
    /// [`Output::CheckMedia`]: super::Output::CheckMedia
    pub media_check_interval_ms: u64,
    /// How many checks in a row must find the node unreachable before its call is ended (a
    /// node that answers "unknown session" ends it at once). At least 1.
    pub media_check_failures: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bindings: 10,
            min_expires: 60,
            max_expires: 3600,
            default_expires: 600,
            timer_c_ms: 180_000,
            non_invite_timeout_ms: 32_000,
            cancel_timeout_ms: 32_000,
            pending_timeout_ms: 10_000,
            linger_ms: 32_000,
            max_transactions: 128,
            retry_after_s: 5,
            max_contact_flows: 64,
            max_echo_calls: 4,
            max_bridge_calls: 32,
            media_check_interval_ms: 5_000,
            media_check_failures: 2,
        }
    }
}

/// The configuration of one account core: one SIP account (`sip:user@tenant_domain`).
#[derive(Debug, Clone)]
pub struct AccountConfig {
    /// Domain A, e.g. `localhost`; the account's address is `sip:{user}@{tenant_domain}`.
    pub tenant_domain: String,
    /// The user part, e.g. `1001`.
    pub user: String,
    /// Domain B (`webrtc_host`): the sent-by of our Via and the host of our Record-Route and
    /// Path URIs.
    pub edge_host: String,
    /// Whether REGISTER is handled here or relayed to the upstream.
    pub registration: RegistrationMode,
    /// Whether the tenant has an upstream SIP server (other numbers go there).
    pub has_upstream: bool,
    /// The Via transport token used towards the upstream (`TCP` or `TLS`; default `TCP` when
    /// empty).
    pub upstream_transport: String,
    /// HA1s for [`RegistrationMode::Local`]; `None` means no such local account (REGISTERs get
    /// the same 401 then 403 as a wrong password, so user names cannot be probed).
    pub credentials: Option<StoredCredentials>,
    /// HMAC key of the stateless nonces (the same for every account object of the deployment;
    /// nonces are bound to the tenant domain).
    pub nonce_secret: Vec<u8>,
    /// Seed of the core's PRNG for tags, branches and nonces' random part. The shell must give
    /// fresh random bits every time it builds a core (also on [`restore`](super::AccountCore::restore)).
    pub seed: u64,
    /// Whether calls between a browser and the upstream go through a media bridge (the SDP is
    /// rewritten both ways through [`Output::BridgeOffer`](super::Output::BridgeOffer) and
    /// friends). Default `true`; `false` passes the SDP through unchanged (for an upstream that
    /// speaks WebRTC itself).
    pub bridge_upstream_media: bool,
    /// Bounds and timers.
    pub limits: Limits,
}

impl Default for AccountConfig {
    fn default() -> Self {
        AccountConfig {
            tenant_domain: String::new(),
            user: String::new(),
            edge_host: String::new(),
            registration: RegistrationMode::default(),
            has_upstream: false,
            upstream_transport: String::new(),
            credentials: None,
            nonce_secret: Vec::new(),
            seed: 0,
            bridge_upstream_media: true,
            limits: Limits::default(),
        }
    }
}
