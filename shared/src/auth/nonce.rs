//! Stateless server nonces: `base64url(issued_ms || random || HMAC-SHA256(secret, ...)[..16])`.
//!
//! The MAC covers a domain-separation label, the tenant, the realm, the issue time and the
//! random bytes, each length-prefixed, so a nonce verifies only for the tenant and realm it was
//! minted for, and its issue time cannot be changed.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How many random bytes a nonce carries (the caller supplies them).
pub const NONCE_RANDOM_LEN: usize = 16;
const MAC_LEN: usize = 16;
const NONCE_LEN: usize = 8 + NONCE_RANDOM_LEN + MAC_LEN;
const LABEL: &[u8] = b"webphone/sip-digest-nonce/v1";

/// What a verified nonce says: when it was issued, and which one it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NonceId {
    /// The issue time, in the caller's milliseconds.
    pub issued_ms: u64,
    /// The random bytes it was minted with.
    pub random: [u8; NONCE_RANDOM_LEN],
}

/// A server secret ready to mint and open nonces.
#[derive(Clone)]
pub(crate) struct NonceKey {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(<redacted>)")
    }
}

impl NonceKey {
    /// HMAC accepts keys of any length, so this cannot fail.
    pub fn new(secret: &[u8]) -> Self {
        let mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret) {
            Ok(mac) => mac,
            // Unreachable for HMAC; hash the secret into a block-sized key all the same.
            Err(_) => {
                let mut key = hmac::digest::Key::<Hmac<Sha256>>::default();
                let digest = <Sha256 as sha2::Digest>::digest(secret);
                for (k, d) in key.iter_mut().zip(digest.iter()) {
                    *k = *d;
                }
                <Hmac<Sha256> as hmac::digest::KeyInit>::new(&key)
            }
        };
        NonceKey { mac }
    }

    fn tag(&self, tenant: &str, realm: &str, id: &NonceId) -> [u8; MAC_LEN] {
        let mut mac = self.mac.clone();
        let tenant = tenant.to_ascii_lowercase();
        for part in [LABEL, tenant.as_bytes(), realm.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(&id.issued_ms.to_be_bytes());
        mac.update(&id.random);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; MAC_LEN];
        tag.copy_from_slice(&full[..MAC_LEN]);
        tag
    }

    pub fn mint(&self, tenant: &str, realm: &str, id: &NonceId) -> String {
        let mut raw = [0u8; NONCE_LEN];
        raw[..8].copy_from_slice(&id.issued_ms.to_be_bytes());
        raw[8..8 + NONCE_RANDOM_LEN].copy_from_slice(&id.random);
        raw[8 + NONCE_RANDOM_LEN..].copy_from_slice(&self.tag(tenant, realm, id));
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The nonce's identity if this key minted it for `tenant` and `realm`.
    pub fn open(&self, tenant: &str, realm: &str, nonce: &str) -> Option<NonceId> {
        if nonce.len() != (NONCE_LEN * 4).div_ceil(3) {
            return None;
        }
        let raw = URL_SAFE_NO_PAD.decode(nonce).ok()?;
        if raw.len() != NONCE_LEN {
            return None;
        }
        let id = NonceId {
            issued_ms: u64::from_be_bytes(raw.get(..8)?.try_into().ok()?),
            random: raw.get(8..8 + NONCE_RANDOM_LEN)?.try_into().ok()?,
        };
        let tag = self.tag(tenant, realm, &id);
        bool::from(raw.get(8 + NONCE_RANDOM_LEN..)?.ct_eq(&tag)).then_some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> NonceId {
        NonceId {
            issued_ms: 1_700_000_000_000,
            random: [7; NONCE_RANDOM_LEN],
        }
    }

    #[test]
    fn roundtrips_for_its_tenant_and_realm_only() {
        let k = NonceKey::new(b"server secret");
        let n = k.mint("a.example", "a.example", &id());
        assert_eq!(n.len(), 54);
        assert_eq!(k.open("A.example", "a.example", &n), Some(id()));
        assert_eq!(k.open("b.example", "a.example", &n), None);
        assert_eq!(k.open("a.example", "b.example", &n), None);
        assert_eq!(
            NonceKey::new(b"other").open("a.example", "a.example", &n),
            None
        );
    }

    #[test]
    fn tampering_is_detected() {
        let k = NonceKey::new(b"server secret");
        let n = k.mint("t", "r", &id());
        let mut later = id();
        later.issued_ms += 1_000_000;
        let forged = format!("{}{}", &k.mint("t", "r", &later)[..11], &n[11..]);
        assert_eq!(k.open("t", "r", &forged), None);
        for bad in ["", "x", &n[1..], &format!("{n}A"), "!!!!"] {
            assert_eq!(k.open("t", "r", bad), None);
        }
    }
}
