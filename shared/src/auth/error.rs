//! The one error type of the auth module, and what the edge answers for each variant.

/// Why credentials were refused (server side), or why a challenge cannot be answered (client
/// side).
///
/// On the server side each variant says what the edge answers ([`AuthError::status`],
/// [`AuthError::reason`]) and whether that answer carries a fresh challenge
/// ([`AuthError::rechallenge`]; [`Verifier::rechallenge`](super::Verifier::rechallenge) builds
/// it). Reason phrases are fixed texts: they never echo the request, never say which of user
/// name or password was wrong, and never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The header value does not parse: bad quoting, missing `username`/`realm`/`nonce`/`uri`/
    /// `response`, a repeated parameter, `qop` without `nc`/`cnonce`, `nc` not 8 hex digits or
    /// zero, a response of the wrong length, or credentials without `qop` (the edge always
    /// offers `qop="auth"` and needs `nc` against replays). The text says which.
    /// Answered with 400 "Bad Request".
    #[error("malformed authentication header: {0}")]
    Malformed(&'static str),

    /// The scheme is not `Digest` (e.g. `Basic`). Answered with 401 and fresh challenges.
    #[error("authentication scheme is not Digest")]
    UnsupportedScheme,

    /// The algorithm is none of MD5, MD5-sess, SHA-256, SHA-256-sess, or is one the verifier
    /// was configured not to accept. Answered with 401 and fresh challenges (which list the ones
    /// that are accepted).
    #[error("unsupported digest algorithm")]
    UnsupportedAlgorithm,

    /// The qop is neither `auth` nor `auth-int`. Answered with 401 and fresh challenges.
    #[error("unsupported qop")]
    UnsupportedQop,

    /// The nonce was not issued by this edge for this tenant and realm: garbage, tampered with,
    /// minted for another tenant, answered with another realm, or minted under a server secret
    /// no longer configured. Answered with 401 and fresh challenges (not stale: the client should
    /// not assume its password is right).
    #[error("nonce not issued for this tenant and realm")]
    InvalidNonce,

    /// The account does not exist (the lookup returned nothing). Answered with 403 "Forbidden",
    /// exactly like [`AuthError::WrongPassword`], so user names cannot be probed.
    #[error("unknown user")]
    UnknownUser,

    /// The response does not match the account's secret: wrong password, or a response computed
    /// over another method, URI or body. Answered with 403 "Forbidden": asking again would
    /// only prompt the browser to resend the same password.
    #[error("wrong password")]
    WrongPassword,

    /// The response was right but the nonce has expired (or was issued further in the future
    /// than the allowed clock skew, or was forgotten by a full replay tracker). Answered with
    /// 401 and challenges with `stale=true`: the client retries with the new nonce silently.
    #[error("nonce is stale")]
    Stale,

    /// The response was right but its nonce count is not above the last one accepted for this
    /// nonce: a replayed or reordered request. Answered with 401 and challenges with
    /// `stale=true`, so a real client recovers with a new nonce and a replayer gains nothing.
    #[error("nonce count replayed")]
    Replay,

    /// The stored HA1 for the account is not hex of the algorithm's length: a storage or
    /// configuration fault, not the client's. Answered with 500 "Server Internal Error".
    #[error("stored HA1 is not a digest of the algorithm")]
    BadStoredSecret,

    /// Client side only: a value given to [`respond`](super::respond) cannot be sent (a control
    /// character in it, or a `-sess` algorithm without a cnonce). Never answered to anyone.
    #[error("cannot answer the challenge: {0}")]
    InvalidInput(&'static str),
}

/// Whether an error's answer carries new challenges, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rechallenge {
    /// Fresh challenges, `stale` unset: the client must (re)supply credentials.
    Fresh,
    /// Challenges with `stale=true`: the client's credentials were right, only the nonce was not.
    Stale,
}

impl AuthError {
    /// The SIP status the edge answers with.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Malformed(_) | AuthError::InvalidInput(_) => 400,
            AuthError::UnsupportedScheme
            | AuthError::UnsupportedAlgorithm
            | AuthError::UnsupportedQop
            | AuthError::InvalidNonce
            | AuthError::Stale
            | AuthError::Replay => 401,
            AuthError::UnknownUser | AuthError::WrongPassword => 403,
            AuthError::BadStoredSecret => 500,
        }
    }

    /// The reason phrase for the status line: fixed text, safe to send and log.
    pub fn reason(&self) -> &'static str {
        match self.status() {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            _ => "Server Internal Error",
        }
    }

    /// Whether the answer carries challenges (status 401), and whether they are stale.
    /// The edge answering a `Proxy-Authorization` uses 407 and `Proxy-Authenticate` instead.
    pub fn rechallenge(&self) -> Option<Rechallenge> {
        match self {
            AuthError::Stale | AuthError::Replay => Some(Rechallenge::Stale),
            _ if self.status() == 401 => Some(Rechallenge::Fresh),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_rechallenges() {
        assert_eq!(AuthError::Malformed("x").status(), 400);
        assert_eq!(AuthError::Stale.rechallenge(), Some(Rechallenge::Stale));
        assert_eq!(AuthError::Replay.status(), 401);
        assert_eq!(
            AuthError::InvalidNonce.rechallenge(),
            Some(Rechallenge::Fresh)
        );
        assert_eq!(AuthError::WrongPassword.rechallenge(), None);
        assert_eq!(
            AuthError::UnknownUser.reason(),
            AuthError::WrongPassword.reason()
        );
        assert_eq!(AuthError::BadStoredSecret.status(), 500);
    }
}
