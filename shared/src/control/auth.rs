//! Request authentication with the fleet secret: HMAC-SHA256 over method, path, timestamp,
//! nonce and body, sent in three headers, checked against a time window and a replay cache.
//!
//! ```
//! use shared::control::auth::{sign_request, RequestAuth, Verifier};
//!
//! let secret = b"fleet-secret-of-at-least-16";
//! let now = 1_800_000_000;
//! let headers = sign_request(secret, "POST", "/v1/sessions", now, "n0nce-0123456789ab", b"body");
//! let mut verifier = Verifier::new(secret.to_vec());
//! let auth = RequestAuth::from_pairs(headers.iter().map(|(k, v)| (*k, v.as_str())));
//! assert!(verifier.verify(now + 5, "POST", "/v1/sessions", &auth, b"body").is_ok());
//! // The same request again is a replay.
//! assert!(verifier.verify(now + 6, "POST", "/v1/sessions", &auth, b"body").is_err());
//! ```
//!
//! The signed text is `METHOD \n PATH \n TIMESTAMP \n NONCE \n BODY` (no field may contain a
//! newline, and the body comes last, so the fields cannot be shifted into each other). The
//! timestamp is Unix seconds in decimal; the signature is lower-case hex. Sans-IO: callers pass
//! the current Unix time.

use std::collections::HashMap;
use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ControlError;

/// Header carrying the request time, Unix seconds.
pub const HEADER_TIMESTAMP: &str = "x-webphone-timestamp";
/// Header carrying the request's nonce: 16-64 of `A-Z a-z 0-9 - _`, fresh for every request.
pub const HEADER_NONCE: &str = "x-webphone-nonce";
/// Header carrying the HMAC-SHA256 signature, lower-case hex.
pub const HEADER_SIGNATURE: &str = "x-webphone-signature";
/// How far a request's timestamp may be from the verifier's clock, either way.
pub const WINDOW_SECS: u64 = 30;
/// Most nonces remembered at once (about 1,600 requests a second over the window); beyond that
/// requests are refused until old nonces expire, rather than forgetting one still valid.
pub const MAX_REMEMBERED_NONCES: usize = 100_000;

type HmacSha256 = Hmac<Sha256>;

fn mac(
    secret: &[u8],
    method: &str,
    path: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    for part in [
        method.as_bytes(),
        path.as_bytes(),
        timestamp.as_bytes(),
        nonce.as_bytes(),
    ] {
        mac.update(part);
        mac.update(b"\n");
    }
    mac.update(body);
    mac
}

/// Signs a request: returns the three headers to send with it.
pub fn sign_request(
    secret: &[u8],
    method: &str,
    path: &str,
    now_unix: u64,
    nonce: &str,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let timestamp = now_unix.to_string();
    let tag = mac(secret, method, path, &timestamp, nonce, body)
        .finalize()
        .into_bytes();
    [
        (HEADER_TIMESTAMP, timestamp),
        (HEADER_NONCE, nonce.to_owned()),
        (HEADER_SIGNATURE, hex(&tag)),
    ]
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// The authentication headers of a received request (`None`: header absent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestAuth<'a> {
    /// [`HEADER_TIMESTAMP`].
    pub timestamp: Option<&'a str>,
    /// [`HEADER_NONCE`].
    pub nonce: Option<&'a str>,
    /// [`HEADER_SIGNATURE`].
    pub signature: Option<&'a str>,
}

impl<'a> RequestAuth<'a> {
    /// Picks the three headers out of `(name, value)` pairs (names compared case-insensitively).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut auth = Self::default();
        for (name, value) in pairs {
            if name.eq_ignore_ascii_case(HEADER_TIMESTAMP) {
                auth.timestamp = Some(value);
            } else if name.eq_ignore_ascii_case(HEADER_NONCE) {
                auth.nonce = Some(value);
            } else if name.eq_ignore_ascii_case(HEADER_SIGNATURE) {
                auth.signature = Some(value);
            }
        }
        auth
    }
}

fn unauthorized(reason: &str) -> ControlError {
    ControlError::Unauthorized {
        reason: reason.to_owned(),
    }
}

fn valid_nonce(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Verifies signed requests and remembers their nonces while they are inside the window.
pub struct Verifier {
    secret: Vec<u8>,
    /// Nonce -> Unix second after which it can be forgotten (its request has left the window).
    seen: HashMap<String, u64>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("secret", &"<redacted>")
            .field("remembered_nonces", &self.seen.len())
            .finish()
    }
}

impl Verifier {
    /// A verifier for requests signed with `secret`.
    pub fn new(secret: Vec<u8>) -> Self {
        Self {
            secret,
            seen: HashMap::new(),
        }
    }

    /// Nonces currently remembered.
    pub fn remembered(&self) -> usize {
        self.seen.len()
    }

    /// Checks a request received at `now_unix`: headers present and well-formed, timestamp within
    /// ±[`WINDOW_SECS`], signature right (compared in constant time), nonce not seen before.
    /// Only a request that passes every other check has its nonce remembered, so forged
    /// requests cannot fill the cache.
    pub fn verify(
        &mut self,
        now_unix: u64,
        method: &str,
        path: &str,
        auth: &RequestAuth<'_>,
        body: &[u8],
    ) -> Result<(), ControlError> {
        let (Some(timestamp), Some(nonce), Some(signature)) =
            (auth.timestamp, auth.nonce, auth.signature)
        else {
            return Err(unauthorized(
                "missing x-webphone-timestamp, x-webphone-nonce or x-webphone-signature header",
            ));
        };
        let sent: u64 = timestamp
            .parse()
            .map_err(|_| unauthorized("x-webphone-timestamp is not Unix seconds"))?;
        if sent.abs_diff(now_unix) > WINDOW_SECS {
            return Err(unauthorized(
                "x-webphone-timestamp is more than 30 s from the node's clock; check NTP on both sides",
            ));
        }
        if !valid_nonce(nonce) {
            return Err(unauthorized(
                "x-webphone-nonce must be 16-64 of A-Z a-z 0-9 - _",
            ));
        }
        if method.contains('\n') || path.contains('\n') {
            return Err(unauthorized("method or path contains a newline"));
        }
        let tag =
            unhex(signature).ok_or_else(|| unauthorized("x-webphone-signature is not hex"))?;
        mac(&self.secret, method, path, timestamp, nonce, body)
            .verify_slice(&tag)
            .map_err(|_| unauthorized("signature does not match; check the fleet secret"))?;

        self.forget_expired(now_unix);
        if self.seen.contains_key(nonce) {
            return Err(ControlError::Replay);
        }
        if self.seen.len() >= MAX_REMEMBERED_NONCES {
            return Err(unauthorized(
                "too many requests inside the replay window; retry shortly",
            ));
        }
        self.seen
            .insert(nonce.to_owned(), sent.saturating_add(WINDOW_SECS));
        Ok(())
    }

    fn forget_expired(&mut self, now_unix: u64) {
        // A nonce is needed until its timestamp leaves the window; forget it after that.
        // Sweep only when the map has grown, so verification stays cheap on average.
        if self.seen.len() >= 1024 && self.seen.len().is_power_of_two()
            || self.seen.len() >= MAX_REMEMBERED_NONCES
        {
            self.seen.retain(|_, &mut until| until >= now_unix);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef-fleet";
    const NOW: u64 = 1_800_000_000;

    fn signed(now: u64, nonce: &str, body: &[u8]) -> [(&'static str, String); 3] {
        sign_request(SECRET, "POST", "/v1/sessions", now, nonce, body)
    }

    fn check(
        verifier: &mut Verifier,
        now: u64,
        headers: &[(&'static str, String); 3],
        body: &[u8],
    ) -> Result<(), ControlError> {
        let auth = RequestAuth::from_pairs(headers.iter().map(|(k, v)| (*k, v.as_str())));
        verifier.verify(now, "POST", "/v1/sessions", &auth, body)
    }

    #[test]
    fn a_signed_request_passes_within_the_window_either_way() {
        let mut verifier = Verifier::new(SECRET.to_vec());
        for (i, skew) in [-30i64, -1, 0, 1, 30].into_iter().enumerate() {
            let nonce = format!("nonce-{i:016}");
            let headers = signed(NOW, &nonce, b"body");
            let now = NOW.checked_add_signed(skew).unwrap();
            check(&mut verifier, now, &headers, b"body").unwrap();
        }
    }

    #[test]
    fn stale_or_future_timestamps_are_refused() {
        let mut verifier = Verifier::new(SECRET.to_vec());
        for now in [NOW - 31, NOW + 31] {
            let err = check(
                &mut verifier,
                now,
                &signed(NOW, "abcdefghijklmnop", b""),
                b"",
            )
            .unwrap_err();
            assert!(err.to_string().contains("30 s"), "{err}");
            assert_eq!(err.http_status(), 401);
        }
    }

    #[test]
    fn any_changed_part_breaks_the_signature() {
        let mut verifier = Verifier::new(SECRET.to_vec());
        let headers = signed(NOW, "abcdefghijklmnop", b"body");
        let auth = RequestAuth::from_pairs(headers.iter().map(|(k, v)| (*k, v.as_str())));
        let bad = [
            verifier.verify(NOW, "DELETE", "/v1/sessions", &auth, b"body"),
            verifier.verify(NOW, "POST", "/v1/sessions/x", &auth, b"body"),
            verifier.verify(NOW, "POST", "/v1/sessions", &auth, b"bodz"),
        ];
        for result in bad {
            assert!(
                matches!(&result, Err(ControlError::Unauthorized { reason }) if reason.contains("signature")),
                "{result:?}"
            );
        }
        let mut other = Verifier::new(b"another-secret-entirely".to_vec());
        assert!(check(&mut other, NOW, &headers, b"body").is_err());
        // Failed attempts leave no nonce behind: the genuine request still passes.
        check(&mut verifier, NOW, &headers, b"body").unwrap();
    }

    #[test]
    fn a_replayed_nonce_is_refused_until_it_leaves_the_window() {
        let mut verifier = Verifier::new(SECRET.to_vec());
        let headers = signed(NOW, "abcdefghijklmnop", b"x");
        check(&mut verifier, NOW, &headers, b"x").unwrap();
        assert_eq!(
            check(&mut verifier, NOW + 10, &headers, b"x"),
            Err(ControlError::Replay)
        );
        // Re-signed with a new timestamp but the same nonce: still a replay.
        let again = signed(NOW + 20, "abcdefghijklmnop", b"x");
        assert_eq!(
            check(&mut verifier, NOW + 20, &again, b"x"),
            Err(ControlError::Replay)
        );
        // Once the original timestamp is outside the window, the copy fails on time instead.
        assert!(matches!(
            check(&mut verifier, NOW + 31, &headers, b"x"),
            Err(ControlError::Unauthorized { .. })
        ));
    }

    #[test]
    fn missing_or_malformed_headers_are_unauthorized() {
        let mut verifier = Verifier::new(SECRET.to_vec());
        let none = RequestAuth::default();
        assert!(verifier.verify(NOW, "POST", "/", &none, b"").is_err());
        let mut headers = signed(NOW, "short", b"");
        assert!(check(&mut verifier, NOW, &headers, b"").is_err());
        headers = signed(NOW, "abcdefghijklmnop", b"");
        headers[2].1 = "zz".into();
        assert!(check(&mut verifier, NOW, &headers, b"").is_err());
        headers[0].1 = "yesterday".into();
        assert!(check(&mut verifier, NOW, &headers, b"").is_err());
        assert_eq!(verifier.remembered(), 0);
    }

    #[test]
    fn expired_nonces_are_forgotten() {
        let mut verifier = Verifier::new(SECRET.to_vec());
        for i in 0..1024 {
            let headers = signed(NOW, &format!("nonce-{i:016}"), b"");
            check(&mut verifier, NOW, &headers, b"").unwrap();
        }
        assert_eq!(verifier.remembered(), 1024);
        let later = NOW + 100;
        let headers = signed(later, "fresh-nonce-000000", b"");
        check(&mut verifier, later, &headers, b"").unwrap();
        assert_eq!(verifier.remembered(), 1);
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let verifier = Verifier::new(SECRET.to_vec());
        assert!(!format!("{verifier:?}").contains("fleet"));
    }
}
