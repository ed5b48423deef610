//! SIP digest authentication (RFC 3261 §22 with RFC 7616 parameters and RFC 8760 algorithms):
//! the server side that challenges browsers, and the client side that answers an upstream.
//!
//! # Design
//! Sans-IO like the rest of the crate: time comes in as `now_ms` (milliseconds on any clock the
//! caller keeps monotonic enough, e.g. Unix time), randomness and secrets as bytes, account
//! secrets through a lookup closure. Header values go in and out as plain strings, so the SIP
//! core decides which header they came from (`Authorization` → 401/`WWW-Authenticate`,
//! `Proxy-Authorization` → 407/`Proxy-Authenticate`).
//!
//! - **Challenges** ([`Verifier::challenge`]): one per algorithm, SHA-256 first then MD5
//!   (RFC 8760 §2.4), sharing one nonce, `qop="auth"`.
//! - **Stateless nonces**: `base64url(issued_ms ‖ random ‖ HMAC-SHA256(server secret, tenant ‖
//!   realm ‖ issued_ms ‖ random)[..16])`, 54 characters. Verifying recomputes the MAC, so a
//!   nonce minted for one tenant (or realm) is refused by another, and its issue time cannot
//!   be altered; nothing is stored per challenge. Expired nonces with an otherwise right
//!   response get `stale=true`.
//! - **Replays**: a bounded [`NonceTracker`] keeps the last accepted `nc` per live nonce, and
//!   credentials without `qop` (hence without `nc`) are refused.
//! - **Secrets**: the lookup returns a [`Secret`]: the password, or the HA1 for the requested
//!   plain algorithm ([`ha1_hex`]), so storage can keep `ha1_md5` and `ha1_sha256` instead of
//!   passwords. Responses and MACs are compared in constant time. No secret is ever formatted
//!   by `Debug` or put in an error.
//! - **Errors**: one [`AuthError`], each variant naming the SIP status the edge answers.
//!
//! ```
//! use shared::auth::{respond, Challenge, Secret, Verifier, VerifierConfig};
//!
//! let mut verifier = Verifier::new(b"a server secret of 32+ random bytes", VerifierConfig::default());
//! let now = 1_700_000_000_000;
//! let challenges = verifier.challenge(now, "example.com", "example.com", &[7; 16]);
//! let header = challenges[0].to_header_value(); // WWW-Authenticate, SHA-256
//!
//! // The browser answers (here with the client side of this module).
//! let challenge = Challenge::parse(&header).unwrap();
//! let authorization =
//!     respond(&challenge, "REGISTER", "sip:example.com", "1001", "pw", "c9f1", 1).unwrap();
//!
//! let ok = verifier
//!     .verify(now + 50, "example.com", "REGISTER", &authorization, |l| {
//!         (l.username == "1001").then(|| Secret::Password("pw".into()))
//!     })
//!     .unwrap();
//! assert_eq!(ok.username, "1001");
//! ```

mod algorithm;
mod challenge;
mod client;
mod credentials;
mod error;
mod nonce;
mod params;
mod tracker;
mod verifier;

pub use algorithm::{ha1_hex, Algorithm, NonceCount, Qop, Secret};
pub use challenge::Challenge;
pub use client::{answer, cnonce_from_bytes, respond, ClientRequest};
pub use credentials::Credentials;
pub use error::{AuthError, Rechallenge};
pub use nonce::{NonceId, NONCE_RANDOM_LEN};
pub use tracker::NonceTracker;
pub use verifier::{Lookup, Verified, Verifier, VerifierConfig};
