//! Digest algorithms (RFC 7616 §3.4.1, RFC 8760 for SIP), quality of protection, nonce counts
//! and the response computation (RFC 7616 §3.4.1–§3.4.3, RFC 2617 §3.2.2).

use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AuthError;

/// A digest algorithm. The `-sess` variants hash the client nonce into HA1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// `MD5`, the default when a challenge names no algorithm.
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256` (RFC 8760: offered first in SIP).
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// The token on the wire, e.g. `SHA-256`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Parses the token case-insensitively; `None` for an algorithm not supported here
    /// (e.g. `SHA-512-256`).
    pub fn parse(token: &str) -> Option<Self> {
        [Self::Md5, Self::Md5Sess, Self::Sha256, Self::Sha256Sess]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(token))
    }

    /// Whether this is a `-sess` variant.
    pub fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// The plain variant with the same hash (`MD5-sess` → `MD5`): stored HA1 values are per
    /// plain algorithm, since `H(username:realm:password)` is the same for both.
    pub fn base(self) -> Self {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Algorithm::Md5,
            Algorithm::Sha256 | Algorithm::Sha256Sess => Algorithm::Sha256,
        }
    }

    /// Length of a digest in lowercase hex (32 for MD5, 64 for SHA-256).
    pub fn hex_len(self) -> usize {
        match self.base() {
            Algorithm::Sha256 => 64,
            _ => 32,
        }
    }

    /// `H(parts[0] ":" parts[1] ":" ...)` in lowercase hex.
    pub(crate) fn hash_joined(self, parts: &[&[u8]]) -> String {
        fn run<D: Digest>(parts: &[&[u8]]) -> String {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            hex(&d.finalize())
        }
        match self.base() {
            Algorithm::Sha256 => run::<Sha256>(parts),
            _ => run::<Md5>(parts),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Quality of protection (`qop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: authentication of method and URI.
    Auth,
    /// `auth-int`: `auth` plus the hash of the message body.
    AuthInt,
}

impl Qop {
    /// The token on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    /// Parses the token case-insensitively; `None` for an unknown one.
    pub fn parse(token: &str) -> Option<Self> {
        [Qop::Auth, Qop::AuthInt]
            .into_iter()
            .find(|q| q.as_str().eq_ignore_ascii_case(token))
    }
}

impl fmt::Display for Qop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A nonce count (`nc`): 8 hex digits. Keeps the digits as received, because the response is
/// computed over the literal text.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct NonceCount {
    value: u32,
    text: [u8; 8],
}

impl NonceCount {
    /// The count `value` written as 8 lowercase hex digits.
    pub fn new(value: u32) -> Self {
        let mut text = [0u8; 8];
        for (i, b) in text.iter_mut().enumerate() {
            *b = HEX[((value >> (28 - 4 * i)) & 0xf) as usize];
        }
        NonceCount { value, text }
    }

    /// Parses exactly 8 hex digits (either case).
    pub fn parse(s: &str) -> Option<Self> {
        let text: [u8; 8] = s.as_bytes().try_into().ok()?;
        if !text.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let value = u32::from_str_radix(s, 16).ok()?;
        Some(NonceCount { value, text })
    }

    /// The numeric count.
    pub fn value(self) -> u32 {
        self.value
    }

    fn as_bytes(&self) -> &[u8] {
        &self.text
    }
}

impl fmt::Debug for NonceCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NonceCount({self})")
    }
}

impl fmt::Display for NonceCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Always 8 ASCII hex digits.
        f.write_str(std::str::from_utf8(&self.text).unwrap_or("00000000"))
    }
}

/// The secret a server checks a response against, or a client answers with.
///
/// Its `Debug` output never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// The plaintext password.
    Password(String),
    /// `H(username ":" realm ":" password)` in hex for the plain variant of the algorithm being
    /// verified (see [`ha1_hex`]); what the Worker keeps in D1 as `ha1_md5` / `ha1_sha256`.
    Ha1(String),
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Password(_) => f.write_str("Secret::Password(<redacted>)"),
            Secret::Ha1(_) => f.write_str("Secret::Ha1(<redacted>)"),
        }
    }
}

/// `H(username ":" realm ":" password)` in lowercase hex with the plain variant of `algorithm`:
/// the value to store instead of a password.
pub fn ha1_hex(algorithm: Algorithm, username: &str, realm: &str, password: &str) -> String {
    algorithm
        .base()
        .hash_joined(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

/// Everything the response hash covers.
#[derive(Debug)]
pub(crate) struct ResponseInput<'a> {
    pub algorithm: Algorithm,
    pub username: &'a str,
    pub realm: &'a str,
    pub nonce: &'a str,
    pub cnonce: Option<&'a str>,
    pub nc: Option<NonceCount>,
    pub qop: Option<Qop>,
    pub method: &'a str,
    pub uri: &'a str,
    pub body: &'a [u8],
}

impl ResponseInput<'_> {
    /// The `response` value in lowercase hex, or [`AuthError::BadStoredSecret`] when a stored
    /// HA1 is not hex of the algorithm's length.
    pub fn response(&self, secret: &Secret) -> Result<String, AuthError> {
        let alg = self.algorithm;
        let base_ha1 = match secret {
            Secret::Password(p) => ha1_hex(alg, self.username, self.realm, p),
            Secret::Ha1(h) => {
                if h.len() != alg.hex_len() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(AuthError::BadStoredSecret);
                }
                h.to_ascii_lowercase()
            }
        };
        let cnonce = self.cnonce.unwrap_or("");
        let ha1 = if alg.is_session() {
            alg.hash_joined(&[
                base_ha1.as_bytes(),
                self.nonce.as_bytes(),
                cnonce.as_bytes(),
            ])
        } else {
            base_ha1
        };
        let ha2 = match self.qop {
            Some(Qop::AuthInt) => {
                let body = alg.hash_joined(&[self.body]);
                alg.hash_joined(&[self.method.as_bytes(), self.uri.as_bytes(), body.as_bytes()])
            }
            _ => alg.hash_joined(&[self.method.as_bytes(), self.uri.as_bytes()]),
        };
        Ok(match (self.qop, self.nc) {
            (Some(qop), Some(nc)) => alg.hash_joined(&[
                ha1.as_bytes(),
                self.nonce.as_bytes(),
                nc.as_bytes(),
                cnonce.as_bytes(),
                qop.as_str().as_bytes(),
                ha2.as_bytes(),
            ]),
            _ => alg.hash_joined(&[ha1.as_bytes(), self.nonce.as_bytes(), ha2.as_bytes()]),
        })
    }
}

/// Compares a received hex response with the expected lowercase one in constant time
/// (hex digits of either case accepted).
pub(crate) fn response_matches(received: &str, expected: &str) -> bool {
    let received = received.to_ascii_lowercase();
    bool::from(received.as_bytes().ct_eq(expected.as_bytes()))
}

const HEX: &[u8; 16] = b"0123456789abcdef";

pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 0xf) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_count_roundtrips() {
        assert_eq!(NonceCount::new(1).to_string(), "00000001");
        assert_eq!(NonceCount::new(0xdeadbeef).to_string(), "deadbeef");
        assert_eq!(NonceCount::parse("0000000A").unwrap().value(), 10);
        assert_eq!(
            NonceCount::parse("0000000A").unwrap().to_string(),
            "0000000A"
        );
        assert!(NonceCount::parse("1").is_none());
        assert!(NonceCount::parse("+0000001").is_none());
        assert!(NonceCount::parse("0000000g").is_none());
    }

    #[test]
    fn algorithm_tokens_are_case_insensitive() {
        assert_eq!(Algorithm::parse("sha-256"), Some(Algorithm::Sha256));
        assert_eq!(Algorithm::parse("md5-SESS"), Some(Algorithm::Md5Sess));
        assert_eq!(Algorithm::parse("SHA-512-256"), None);
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = format!("{:?}", Secret::Password("hunter2".into()));
        assert!(!s.contains("hunter2"));
    }
}
