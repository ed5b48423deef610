//! SRTP and SRTCP for the lean audio-only WebRTC leg: sans-IO, in place, no allocation per
//! packet.
//!
//! # What it implements
//!
//! - **RFC 3711 `AES_CM_128_HMAC_SHA1_80`** (DTLS-SRTP profile 0x0001): AES-128 in counter mode
//!   (§4.1.1), HMAC-SHA1 truncated to 80 bits over the packet and the ROC (§4.2), SRTCP with the
//!   E flag and the 31-bit SRTCP index (§3.4).
//! - **RFC 7714 `AEAD_AES_128_GCM` and `AEAD_AES_256_GCM`** (profiles 0x0007, 0x0008): the RTP
//!   header is the AAD and the payload the plaintext (§5, §8); SRTCP authenticates the first 8
//!   octets and the E flag + index and encrypts the rest (§9, §17), 16-octet tags.
//! - **Key derivation** with the AES-CM PRF and key derivation rate 0 (RFC 3711 §4.3; the
//!   AES-256 PRF of RFC 6188 for `AEAD_AES_256_GCM`, which RFC 7714 §11 asks for): labels 0..=5
//!   give the RTP and RTCP encryption key, authentication key and salt. The 96-bit master salt
//!   of the GCM profiles enters the PRF left-aligned, zero-padded on the right to 112 bits (as
//!   libsrtp, and so browsers, and str0m do: the interop tests pin this down).
//! - **RFC 5764 §4.2 keying material**: [`split_keying_material`] cuts the DTLS exporter output
//!   into `client_write_key | server_write_key | client_write_salt | server_write_salt`; the
//!   side that protects with the client half is the DTLS client.
//! - **Receive side per RFC 3711 §3.3**: the packet index is estimated from the highest index
//!   seen (Appendix A), replayed or too old packets (64-packet window per SSRC, §3.3.2) are
//!   refused, the tag is checked before anything is decrypted, and the ROC, the highest index
//!   and the window only move after a packet authenticated. SRTCP has its own window per SSRC.
//!   The send side tracks the ROC per SSRC the same way (a sequence number wrapping from 65535
//!   to 0 moves it on) and refuses to protect an index twice, so a keystream is never reused.
//!
//! # What it leaves out, on purpose
//!
//! MKI (DTLS-SRTP never sends one), key derivation rates other than 0 (DTLS-SRTP uses 0),
//! re-keying inside a context (a new DTLS handshake gives a new [`Context`]), the `_32` tag
//! variants, NULL ciphers, AES-192, header-extension encryption (RFC 6904) and cryptex
//! (RFC 9335), and the other profiles. State for at most [`MAX_SSRCS`] SSRCs per direction is
//! kept; a further SSRC takes the place of the least recently used one (an audio leg has one
//! or two).
//!
//! # How it will be used
//!
//! The bridge will own two [`Context`]s per browser call, one per half of the DTLS exporter
//! output cut by [`split_keying_material`]: ours protects what we send, theirs unprotects what
//! the browser sends. Packets are protected and unprotected in the
//! datagram buffers of [`crate::udp_batch`] (`&mut [u8]` slices): protecting needs
//! [`Profile::rtp_overhead`] / [`Profile::rtcp_overhead`] spare bytes after the packet
//! ([`MAX_RTP_OVERHEAD`] / [`MAX_RTCP_OVERHEAD`] for any profile), unprotecting returns the
//! length of the plain packet left at the front of the buffer. Telling RTP from RTCP on the
//! one port (RFC 5761 §4) is the caller's job. On an error the packet is to be dropped: the
//! state did not move, but the buffer may hold partly processed bytes (AES-CM leaves it as it
//! was, GCM may have overwritten the payload).
//!
//! # Cost
//!
//! Per packet: one AES-CTR pass over the payload plus one HMAC-SHA1 from a pre-keyed state
//! (no key schedule, no allocation), or one AES-GCM seal/open; a few comparisons for the SSRC
//! table and the replay window. aws-lc uses AES-NI, PCLMULQDQ and SHA extensions where the CPU
//! has them (the AMD EPYC here has all three). Measured on this 2-core VM (release build
//! without LTO, `cargo test --release -p media-node --lib srtp::tests::cost_per_packet --
//! --ignored --nocapture`), a 176-byte RTP packet (24-byte header, 152-byte Opus payload):
//! about 0.34 µs to protect and 0.36 µs to unprotect with `AES_CM_128_HMAC_SHA1_80` (the
//! HMAC-SHA1 is most of it), about 0.14 µs either way with either GCM profile. A [`Context`]
//! is 480 bytes inline (mostly the SSRC tables) plus its keys, allocated once at setup: about
//! 3.5 KiB for AES-CM (AES key schedules and HMAC states, boxed), about 1.2 KiB of aws-lc AEAD
//! contexts for GCM.

#![forbid(unsafe_code)]

use std::fmt;

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128, AES_256};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;

#[cfg(test)]
mod tests;

/// Most bytes any profile adds to an RTP packet (the GCM tag).
pub const MAX_RTP_OVERHEAD: usize = 16;
/// Most bytes any profile adds to an RTCP packet (the GCM tag and the E flag + SRTCP index).
pub const MAX_RTCP_OVERHEAD: usize = 20;
/// SSRCs with their own ROC and replay window, per direction and per RTP / RTCP.
pub const MAX_SSRCS: usize = 4;

const RTP_HEADER_LEN: usize = 12;
const RTCP_HEADER_LEN: usize = 8;
const SRTCP_INDEX_LEN: usize = 4;
const HMAC_TAG_LEN: usize = 10;
const GCM_TAG_LEN: usize = 16;
const CM_SALT_LEN: usize = 14;
const GCM_SALT_LEN: usize = 12;
const MAX_KEY_LEN: usize = 32;
/// HMAC-SHA1 session authentication key (RFC 3711 §8.2: n_a = 160 bits).
const AUTH_KEY_LEN: usize = 20;
/// Packets per replay window (RFC 3711 §3.3.2 asks for at least 64).
const REPLAY_WINDOW: u64 = 64;
/// Highest SRTP packet index: 48 bits (32-bit ROC, 16-bit sequence number).
const MAX_SRTP_INDEX: u64 = (1 << 48) - 1;
/// Highest SRTCP index: 31 bits.
const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;
/// The E flag in the SRTCP trailer: the packet is encrypted.
const SRTCP_E_FLAG: u32 = 0x8000_0000;

// RFC 3711 §4.3.2 key derivation labels.
const LABEL_RTP_ENCRYPTION: u8 = 0x00;
const LABEL_RTP_AUTH: u8 = 0x01;
const LABEL_RTP_SALT: u8 = 0x02;
const LABEL_RTCP_ENCRYPTION: u8 = 0x03;
const LABEL_RTCP_AUTH: u8 = 0x04;
const LABEL_RTCP_SALT: u8 = 0x05;

/// Why a packet could not be protected or unprotected, or keys not set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    /// Shorter than the smallest packet of the profile (header, trailer and tag).
    #[error("packet too short")]
    TooShort,
    /// Not version 2, or CSRCs / header extension run past the packet.
    #[error("malformed RTP or RTCP header")]
    BadHeader,
    /// The authentication tag did not match.
    #[error("authentication failed")]
    AuthFailed,
    /// This index was already received (or, sending, already protected).
    #[error("replayed packet")]
    Replayed,
    /// Older than the replay window (or before the first packet of the stream).
    #[error("packet older than the replay window")]
    TooOld,
    /// A DTLS-SRTP profile this module does not implement.
    #[error("unsupported SRTP profile")]
    Unsupported,
    /// Keying material, master key or master salt of the wrong length for the profile.
    #[error("keying material of the wrong length for the SRTP profile")]
    BadKeyingMaterialLength,
    /// The buffer has no room for the tag (and SRTCP trailer) after the packet.
    #[error("buffer too small for the protected packet")]
    BufferTooSmall,
    /// The 48-bit SRTP index or the 31-bit SRTCP index is used up: the keys must change.
    #[error("SRTP or SRTCP index exhausted, new keys needed")]
    IndexExhausted,
    /// The crypto library refused an operation that cannot fail with valid lengths.
    #[error("crypto backend error")]
    Crypto,
}

/// An SRTP protection profile (RFC 5764 §4.1.2, RFC 7714 §14.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Profile {
    /// `SRTP_AES128_CM_HMAC_SHA1_80`: AES-128 counter mode, 80-bit HMAC-SHA1 tag.
    AesCm128HmacSha1_80,
    /// `SRTP_AEAD_AES_128_GCM`: AES-128-GCM, 128-bit tag.
    AeadAes128Gcm,
    /// `SRTP_AEAD_AES_256_GCM`: AES-256-GCM, 128-bit tag.
    AeadAes256Gcm,
}

impl Profile {
    /// Every profile, in order of their DTLS-SRTP ids.
    pub const ALL: [Profile; 3] = [
        Profile::AesCm128HmacSha1_80,
        Profile::AeadAes128Gcm,
        Profile::AeadAes256Gcm,
    ];

    /// The profile's id in the DTLS `use_srtp` extension.
    pub const fn dtls_id(self) -> u16 {
        match self {
            Profile::AesCm128HmacSha1_80 => 0x0001,
            Profile::AeadAes128Gcm => 0x0007,
            Profile::AeadAes256Gcm => 0x0008,
        }
    }

    /// The profile a DTLS `use_srtp` id names, if this module implements it.
    pub fn from_dtls_id(id: u16) -> Result<Self, SrtpError> {
        Self::ALL
            .into_iter()
            .find(|p| p.dtls_id() == id)
            .ok_or(SrtpError::Unsupported)
    }

    /// Master (and session encryption) key length in bytes.
    pub const fn key_len(self) -> usize {
        match self {
            Profile::AesCm128HmacSha1_80 | Profile::AeadAes128Gcm => 16,
            Profile::AeadAes256Gcm => 32,
        }
    }

    /// Master (and session) salt length in bytes.
    pub const fn salt_len(self) -> usize {
        match self {
            Profile::AesCm128HmacSha1_80 => CM_SALT_LEN,
            Profile::AeadAes128Gcm | Profile::AeadAes256Gcm => GCM_SALT_LEN,
        }
    }

    /// Bytes of DTLS exporter output the profile needs (RFC 5764 §4.2): two keys, two salts.
    pub const fn keying_material_len(self) -> usize {
        2 * (self.key_len() + self.salt_len())
    }

    /// Bytes protecting adds to an RTP packet (the tag).
    pub const fn rtp_overhead(self) -> usize {
        match self {
            Profile::AesCm128HmacSha1_80 => HMAC_TAG_LEN,
            Profile::AeadAes128Gcm | Profile::AeadAes256Gcm => GCM_TAG_LEN,
        }
    }

    /// Bytes protecting adds to an RTCP packet (the tag and the E flag + SRTCP index).
    pub const fn rtcp_overhead(self) -> usize {
        self.rtp_overhead() + SRTCP_INDEX_LEN
    }
}

/// A master key and master salt, for one direction.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    key: [u8; MAX_KEY_LEN],
    key_len: u8,
    salt: [u8; CM_SALT_LEN],
    salt_len: u8,
}

impl MasterKey {
    /// A master key of 16 or 32 bytes and a master salt of 12 or 14 bytes (whether they fit a
    /// profile is checked by [`Context::new`]).
    pub fn new(key: &[u8], salt: &[u8]) -> Result<Self, SrtpError> {
        if !matches!(key.len(), 16 | 32) || !matches!(salt.len(), GCM_SALT_LEN | CM_SALT_LEN) {
            return Err(SrtpError::BadKeyingMaterialLength);
        }
        let mut master = MasterKey {
            key: [0; MAX_KEY_LEN],
            key_len: key.len() as u8,
            salt: [0; CM_SALT_LEN],
            salt_len: salt.len() as u8,
        };
        master.key[..key.len()].copy_from_slice(key);
        master.salt[..salt.len()].copy_from_slice(salt);
        Ok(master)
    }

    /// The master key.
    pub fn key(&self) -> &[u8] {
        &self.key[..usize::from(self.key_len)]
    }

    /// The master salt.
    pub fn salt(&self) -> &[u8] {
        &self.salt[..usize::from(self.salt_len)]
    }

    fn fits(&self, profile: Profile) -> bool {
        self.key().len() == profile.key_len() && self.salt().len() == profile.salt_len()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("key_len", &self.key_len)
            .field("salt_len", &self.salt_len)
            .finish_non_exhaustive()
    }
}

/// Splits DTLS-SRTP keying material (RFC 5764 §4.2: `client_write_key | server_write_key |
/// client_write_salt | server_write_salt`) into ours (to protect what we send) and theirs (to
/// unprotect what we receive). The DTLS client sends with the client half.
pub fn split_keying_material(
    profile: Profile,
    material: &[u8],
    local_is_client: bool,
) -> Result<(MasterKey, MasterKey), SrtpError> {
    if material.len() != profile.keying_material_len() {
        return Err(SrtpError::BadKeyingMaterialLength);
    }
    let (keys, salts) = material.split_at(2 * profile.key_len());
    let (client_key, server_key) = keys.split_at(profile.key_len());
    let (client_salt, server_salt) = salts.split_at(profile.salt_len());
    let client = MasterKey::new(client_key, client_salt)?;
    let server = MasterKey::new(server_key, server_salt)?;
    Ok(if local_is_client {
        (client, server)
    } else {
        (server, client)
    })
}

/// Session keys for RTP or for RTCP.
enum SessionKeys {
    /// Boxed: the AES key schedules and HMAC states are about 1.7 KiB, the GCM variant a
    /// pointer to aws-lc's context, and a GCM [`Context`] should not carry the difference.
    Cm(Box<CmKeys>),
    Gcm {
        aead: LessSafeKey,
        salt: [u8; GCM_SALT_LEN],
    },
}

struct CmKeys {
    cipher: EncryptingKey,
    auth: hmac::Key,
    salt: [u8; CM_SALT_LEN],
}

impl SessionKeys {
    /// Derives the session keys for RTP (`rtcp == false`) or RTCP from a master key.
    fn derive(profile: Profile, master: &MasterKey, rtcp: bool) -> Result<Self, SrtpError> {
        let prf = Prf::new(master)?;
        let (enc_label, auth_label, salt_label) = if rtcp {
            (LABEL_RTCP_ENCRYPTION, LABEL_RTCP_AUTH, LABEL_RTCP_SALT)
        } else {
            (LABEL_RTP_ENCRYPTION, LABEL_RTP_AUTH, LABEL_RTP_SALT)
        };
        let mut key = [0; MAX_KEY_LEN];
        let key = &mut key[..profile.key_len()];
        prf.derive(enc_label, key)?;
        match profile {
            Profile::AesCm128HmacSha1_80 => {
                let mut auth = [0; AUTH_KEY_LEN];
                prf.derive(auth_label, &mut auth)?;
                let mut salt = [0; CM_SALT_LEN];
                prf.derive(salt_label, &mut salt)?;
                Self::cm(key, &auth, salt)
            }
            Profile::AeadAes128Gcm | Profile::AeadAes256Gcm => {
                let mut salt = [0; GCM_SALT_LEN];
                prf.derive(salt_label, &mut salt)?;
                Self::gcm(key, salt)
            }
        }
    }

    /// AES-CM + HMAC-SHA1 from session keys.
    fn cm(key: &[u8], auth: &[u8], salt: [u8; CM_SALT_LEN]) -> Result<Self, SrtpError> {
        let key =
            UnboundCipherKey::new(&AES_128, key).map_err(|_| SrtpError::BadKeyingMaterialLength)?;
        Ok(SessionKeys::Cm(Box::new(CmKeys {
            cipher: EncryptingKey::ctr(key).map_err(|_| SrtpError::Crypto)?,
            auth: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, auth),
            salt,
        })))
    }

    /// AES-GCM (128 or 256 by the key's length) from session keys.
    fn gcm(key: &[u8], salt: [u8; GCM_SALT_LEN]) -> Result<Self, SrtpError> {
        let algorithm = if key.len() == 32 {
            &aead::AES_256_GCM
        } else {
            &aead::AES_128_GCM
        };
        let key =
            UnboundKey::new(algorithm, key).map_err(|_| SrtpError::BadKeyingMaterialLength)?;
        Ok(SessionKeys::Gcm {
            aead: LessSafeKey::new(key),
            salt,
        })
    }
}

/// The AES-CM PRF of RFC 3711 §4.3.3 (AES-256 for 32-byte master keys, RFC 6188), at key
/// derivation rate 0.
struct Prf {
    cipher: EncryptingKey,
    /// The master salt, left-aligned and zero-padded to 112 bits, then the 16-bit block
    /// counter (`x * 2^16`).
    iv: [u8; 16],
}

impl Prf {
    fn new(master: &MasterKey) -> Result<Self, SrtpError> {
        let algorithm = if master.key().len() == 32 {
            &AES_256
        } else {
            &AES_128
        };
        let key = UnboundCipherKey::new(algorithm, master.key())
            .map_err(|_| SrtpError::BadKeyingMaterialLength)?;
        let mut iv = [0; 16];
        iv[..master.salt().len()].copy_from_slice(master.salt());
        Ok(Prf {
            cipher: EncryptingKey::ctr(key).map_err(|_| SrtpError::Crypto)?,
            iv,
        })
    }

    /// Fills `out` with the PRF output for `label`: the key_id `label || (index DIV kdr)` is
    /// `label || 0x000000000000` at kdr 0, so only the label octet (the 8th of x) changes.
    fn derive(&self, label: u8, out: &mut [u8]) -> Result<(), SrtpError> {
        let mut iv = self.iv;
        iv[7] ^= label;
        out.fill(0);
        ctr(&self.cipher, iv, out)
    }
}

/// XORs the AES counter-mode keystream starting at counter block `iv` into `data`.
fn ctr(cipher: &EncryptingKey, iv: [u8; 16], data: &mut [u8]) -> Result<(), SrtpError> {
    cipher
        .less_safe_encrypt(data, EncryptionContext::Iv128(FixedLength::from(iv)))
        .map(|_| ())
        .map_err(|_| SrtpError::Crypto)
}

/// RFC 3711 §4.1.1: `IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)`, for the SRTP packet
/// index or the SRTCP index `i`.
fn cm_iv(salt: &[u8; CM_SALT_LEN], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0; 16];
    iv[..CM_SALT_LEN].copy_from_slice(salt);
    xor_into(&mut iv[4..8], &ssrc.to_be_bytes());
    xor_into(&mut iv[8..14], &index.to_be_bytes()[2..]);
    iv
}

/// RFC 7714 §8.1: `00 00 | SSRC | ROC | SEQ`, XOR the salt.
fn gcm_rtp_nonce(salt: &[u8; GCM_SALT_LEN], ssrc: u32, index: u64) -> Nonce {
    let mut nonce = *salt;
    xor_into(&mut nonce[2..6], &ssrc.to_be_bytes());
    xor_into(&mut nonce[6..12], &index.to_be_bytes()[2..]);
    Nonce::assume_unique_for_key(nonce)
}

/// RFC 7714 §9.1: `00 00 | SSRC | 00 00 | 0 + 31-bit SRTCP index`, XOR the salt.
fn gcm_rtcp_nonce(salt: &[u8; GCM_SALT_LEN], ssrc: u32, index: u32) -> Nonce {
    let mut nonce = *salt;
    xor_into(&mut nonce[2..6], &ssrc.to_be_bytes());
    xor_into(&mut nonce[8..12], &(index & MAX_SRTCP_INDEX).to_be_bytes());
    Nonce::assume_unique_for_key(nonce)
}

fn xor_into(dst: &mut [u8], src: &[u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= s;
    }
}

/// HMAC-SHA1 over `parts`, truncated to 80 bits (RFC 3711 §4.2.1). The key's inner and outer
/// states are precomputed: per packet this is a copy of them and the hashing.
fn hmac_80(key: &hmac::Key, parts: [&[u8]; 2]) -> [u8; HMAC_TAG_LEN] {
    let mut context = hmac::Context::with_key(key);
    for part in parts {
        context.update(part);
    }
    let tag = context.sign();
    let mut out = [0; HMAC_TAG_LEN];
    for (o, t) in out.iter_mut().zip(tag.as_ref()) {
        *o = *t;
    }
    out
}

fn read_u16(buf: &[u8], at: usize) -> Option<u16> {
    let bytes = buf.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

fn read_u32(buf: &[u8], at: usize) -> Option<u32> {
    let bytes = buf.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The fields SRTP needs from an RTP header: its length (fixed part, CSRCs, extension), the
/// sequence number and the SSRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RtpHeader {
    len: usize,
    seq: u16,
    ssrc: u32,
}

impl RtpHeader {
    /// Parses the header at the front of `packet` (RFC 3550 §5.1, §5.3.1), which must end
    /// within `packet`.
    fn parse(packet: &[u8]) -> Result<Self, SrtpError> {
        let first = *packet.first().ok_or(SrtpError::TooShort)?;
        if packet.len() < RTP_HEADER_LEN {
            return Err(SrtpError::TooShort);
        }
        if first >> 6 != 2 {
            return Err(SrtpError::BadHeader);
        }
        let seq = read_u16(packet, 2).ok_or(SrtpError::TooShort)?;
        let ssrc = read_u32(packet, 8).ok_or(SrtpError::TooShort)?;
        let mut len = RTP_HEADER_LEN + 4 * usize::from(first & 0x0f);
        if first & 0x10 != 0 {
            let words = read_u16(packet, len + 2).ok_or(SrtpError::BadHeader)?;
            len += 4 + 4 * usize::from(words);
        }
        if len > packet.len() {
            return Err(SrtpError::BadHeader);
        }
        Ok(RtpHeader { len, seq, ssrc })
    }
}

/// RFC 3711 Appendix A: the index of a packet with sequence number `seq`, given the highest
/// index received so far (whose top 32 bits are the ROC and low 16 bits `s_l`).
fn estimate_index(highest: u64, seq: u16) -> Result<u64, SrtpError> {
    let roc = highest >> 16;
    let s_l = highest as u16;
    let v = if s_l < 0x8000 {
        if u32::from(seq) > u32::from(s_l) + 0x8000 {
            // From before the last wrap (or before index 0).
            roc.checked_sub(1).ok_or(SrtpError::TooOld)?
        } else {
            roc
        }
    } else if u32::from(s_l) - 0x8000 > u32::from(seq) {
        roc + 1
    } else {
        roc
    };
    let index = (v << 16) | u64::from(seq);
    if index > MAX_SRTP_INDEX {
        return Err(SrtpError::IndexExhausted);
    }
    Ok(index)
}

/// The highest index of a stream and which of the [`REPLAY_WINDOW`] indices up to it were seen
/// (bit `n` is `highest - n`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Replay {
    highest: u64,
    window: u64,
}

impl Replay {
    fn first(index: u64) -> Self {
        Replay {
            highest: index,
            window: 1,
        }
    }

    fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.highest {
            return Ok(());
        }
        let age = self.highest - index;
        if age >= REPLAY_WINDOW {
            Err(SrtpError::TooOld)
        } else if self.window >> age & 1 == 1 {
            Err(SrtpError::Replayed)
        } else {
            Ok(())
        }
    }

    /// Records `index`, which [`Replay::check`] accepted.
    fn accept(&mut self, index: u64) {
        if index > self.highest {
            let shift = index - self.highest;
            self.window = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.window << shift
            };
            self.window |= 1;
            self.highest = index;
        } else {
            self.window |= 1 << (self.highest - index);
        }
    }

    /// Checks `index` against the stream's state (a new stream takes any index) and returns the
    /// state to store once the packet authenticated.
    fn after(state: Option<Replay>, index: u64) -> Result<Replay, SrtpError> {
        match state {
            None => Ok(Replay::first(index)),
            Some(state) => {
                state.check(index)?;
                let mut next = state;
                next.accept(index);
                Ok(next)
            }
        }
    }
}

/// Per-SSRC state for up to [`MAX_SSRCS`] streams; a new SSRC replaces the least recently used.
#[derive(Debug, Clone, Copy, Default)]
struct Streams {
    slots: [Slot; MAX_SSRCS],
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    ssrc: u32,
    /// When the slot was last stored to; 0 for an empty slot.
    used: u64,
    replay: Replay,
}

impl Streams {
    fn get(&self, ssrc: u32) -> Option<Replay> {
        self.slots
            .iter()
            .find(|s| s.used != 0 && s.ssrc == ssrc)
            .map(|s| s.replay)
    }

    fn store(&mut self, ssrc: u32, replay: Replay, now: u64) {
        let slot = match self
            .slots
            .iter()
            .position(|s| s.used != 0 && s.ssrc == ssrc)
        {
            Some(i) => i,
            // Empty slots have `used == 0`, so they go first.
            None => (0..MAX_SSRCS)
                .min_by_key(|&i| self.slots[i].used)
                .unwrap_or(0),
        };
        self.slots[slot] = Slot {
            ssrc,
            used: now,
            replay,
        };
    }

    #[cfg(test)]
    fn ssrcs(&self) -> Vec<u32> {
        let mut ssrcs: Vec<u32> = self
            .slots
            .iter()
            .filter(|s| s.used != 0)
            .map(|s| s.ssrc)
            .collect();
        ssrcs.sort_unstable();
        ssrcs
    }
}

/// An SRTP/SRTCP cryptographic context for one profile and master key: protects what is sent
/// and unprotects what is received under that key, for up to [`MAX_SSRCS`] SSRCs each way.
pub struct Context {
    profile: Profile,
    rtp: SessionKeys,
    rtcp: SessionKeys,
    /// Highest index protected per SSRC (its ROC) and the indices protected recently.
    tx_rtp: Streams,
    rx_rtp: Streams,
    rx_rtcp: Streams,
    /// The SRTCP index of the next packet protected (one counter for every SSRC, so an
    /// (SSRC, index) pair is never used twice).
    tx_rtcp_index: u32,
    /// Ticks on every stored packet, for least-recently-used eviction.
    clock: u64,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("profile", &self.profile)
            .field("tx_rtcp_index", &self.tx_rtcp_index)
            .finish_non_exhaustive()
    }
}

impl Context {
    /// Derives the session keys for `profile` from `master` (RFC 3711 §4.3, key derivation
    /// rate 0).
    pub fn new(profile: Profile, master: &MasterKey) -> Result<Self, SrtpError> {
        if !master.fits(profile) {
            return Err(SrtpError::BadKeyingMaterialLength);
        }
        Ok(Self::with_session_keys(
            profile,
            SessionKeys::derive(profile, master, false)?,
            SessionKeys::derive(profile, master, true)?,
        ))
    }

    fn with_session_keys(profile: Profile, rtp: SessionKeys, rtcp: SessionKeys) -> Self {
        Context {
            profile,
            rtp,
            rtcp,
            tx_rtp: Streams::default(),
            rx_rtp: Streams::default(),
            rx_rtcp: Streams::default(),
            tx_rtcp_index: 0,
            clock: 0,
        }
    }

    /// The profile the context was made for.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Protects the RTP packet `buf[..len]` in place: encrypts the payload and appends the tag.
    /// Returns the SRTP packet's length (`len + rtp_overhead()`); `buf` must have room for it.
    /// The ROC of the SSRC moves on when its sequence number wraps; an index already protected
    /// (or older than the window) is refused, so a keystream is never used twice.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let out_len = len
            .checked_add(self.profile.rtp_overhead())
            .filter(|&n| n <= buf.len())
            .ok_or(SrtpError::BufferTooSmall)?;
        let header = RtpHeader::parse(&buf[..len])?;
        let state = self.tx_rtp.get(header.ssrc);
        let index = match state {
            Some(state) => estimate_index(state.highest, header.seq)?,
            None => u64::from(header.seq),
        };
        let next = Replay::after(state, index)?;
        let roc = (index >> 16) as u32;
        let (packet, trailer) = buf.split_at_mut(len);
        match &self.rtp {
            SessionKeys::Cm(keys) => {
                let CmKeys { cipher, auth, salt } = &**keys;
                ctr(
                    cipher,
                    cm_iv(salt, header.ssrc, index),
                    &mut packet[header.len..],
                )?;
                let tag = hmac_80(auth, [packet, &roc.to_be_bytes()]);
                trailer[..HMAC_TAG_LEN].copy_from_slice(&tag);
            }
            SessionKeys::Gcm { aead, salt } => {
                let (head, payload) = packet.split_at_mut(header.len);
                let tag = aead
                    .seal_in_place_separate_tag(
                        gcm_rtp_nonce(salt, header.ssrc, index),
                        Aad::from(&*head),
                        payload,
                    )
                    .map_err(|_| SrtpError::Crypto)?;
                trailer[..GCM_TAG_LEN].copy_from_slice(tag.as_ref());
            }
        }
        let now = self.tick();
        self.tx_rtp.store(header.ssrc, next, now);
        Ok(out_len)
    }

    /// Unprotects the SRTP packet that fills `buf`: checks the tag, then the replay window,
    /// then decrypts in place. Returns the length of the RTP packet now at the front of `buf`.
    /// The SSRC's ROC, highest index and window only move when the packet authenticated.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_overhead();
        let Some(body_len) = buf.len().checked_sub(tag_len) else {
            return Err(SrtpError::TooShort);
        };
        let header = RtpHeader::parse(&buf[..body_len])?;
        let state = self.rx_rtp.get(header.ssrc);
        let index = match state {
            Some(state) => estimate_index(state.highest, header.seq)?,
            None => u64::from(header.seq),
        };
        let next = Replay::after(state, index)?;
        let roc = (index >> 16) as u32;
        match &self.rtp {
            SessionKeys::Cm(keys) => {
                let CmKeys { cipher, auth, salt } = &**keys;
                let (packet, tag) = buf.split_at_mut(body_len);
                let expected = hmac_80(auth, [packet, &roc.to_be_bytes()]);
                verify_slices_are_equal(&expected, tag).map_err(|_| SrtpError::AuthFailed)?;
                ctr(
                    cipher,
                    cm_iv(salt, header.ssrc, index),
                    &mut packet[header.len..],
                )?;
            }
            SessionKeys::Gcm { aead, salt } => {
                let (head, sealed) = buf.split_at_mut(header.len);
                aead.open_in_place(
                    gcm_rtp_nonce(salt, header.ssrc, index),
                    Aad::from(&*head),
                    sealed,
                )
                .map_err(|_| SrtpError::AuthFailed)?;
            }
        }
        let now = self.tick();
        self.rx_rtp.store(header.ssrc, next, now);
        Ok(body_len)
    }

    /// Protects the (compound) RTCP packet `buf[..len]` in place: encrypts everything after the
    /// first 8 octets, appends the E flag + SRTCP index and the tag (RFC 3711 §3.4; RFC 7714
    /// §9: tag, then E flag + index). Returns the SRTCP packet's length (`len +
    /// rtcp_overhead()`); `buf` must have room for it.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        let out_len = len
            .checked_add(self.profile.rtcp_overhead())
            .filter(|&n| n <= buf.len())
            .ok_or(SrtpError::BufferTooSmall)?;
        let ssrc = rtcp_ssrc(&buf[..len])?;
        let index = self.tx_rtcp_index;
        if index > MAX_SRTCP_INDEX {
            return Err(SrtpError::IndexExhausted);
        }
        let e_index = (SRTCP_E_FLAG | index).to_be_bytes();
        let (packet, trailer) = buf.split_at_mut(len);
        match &self.rtcp {
            SessionKeys::Cm(keys) => {
                let CmKeys { cipher, auth, salt } = &**keys;
                ctr(
                    cipher,
                    cm_iv(salt, ssrc, u64::from(index)),
                    &mut packet[RTCP_HEADER_LEN..],
                )?;
                trailer[..SRTCP_INDEX_LEN].copy_from_slice(&e_index);
                let tag = hmac_80(auth, [packet, &e_index]);
                trailer[SRTCP_INDEX_LEN..SRTCP_INDEX_LEN + HMAC_TAG_LEN].copy_from_slice(&tag);
            }
            SessionKeys::Gcm { aead, salt } => {
                let (head, payload) = packet.split_at_mut(RTCP_HEADER_LEN);
                let tag = aead
                    .seal_in_place_separate_tag(
                        gcm_rtcp_nonce(salt, ssrc, index),
                        Aad::from(rtcp_gcm_aad(head, e_index)),
                        payload,
                    )
                    .map_err(|_| SrtpError::Crypto)?;
                trailer[..GCM_TAG_LEN].copy_from_slice(tag.as_ref());
                trailer[GCM_TAG_LEN..GCM_TAG_LEN + SRTCP_INDEX_LEN].copy_from_slice(&e_index);
            }
        }
        self.tx_rtcp_index = index + 1;
        Ok(out_len)
    }

    /// Unprotects the SRTCP packet that fills `buf`: checks the tag, then the replay window of
    /// the sender SSRC, then decrypts in place (unless the E flag says it was sent in the
    /// clear). Returns the length of the RTCP packet now at the front of `buf`.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let overhead = self.profile.rtcp_overhead();
        let body_len = match buf.len().checked_sub(overhead) {
            Some(n) if n >= RTCP_HEADER_LEN => n,
            _ => return Err(SrtpError::TooShort),
        };
        let ssrc = rtcp_ssrc(&buf[..body_len])?;
        let e_index_at = match self.rtcp {
            SessionKeys::Cm(_) => body_len,
            SessionKeys::Gcm { .. } => body_len + GCM_TAG_LEN,
        };
        let e_index = read_u32(buf, e_index_at).ok_or(SrtpError::TooShort)?;
        let encrypted = e_index & SRTCP_E_FLAG != 0;
        let index = e_index & MAX_SRTCP_INDEX;
        let state = self.rx_rtcp.get(ssrc);
        let next = Replay::after(state, u64::from(index))?;
        let e_index = e_index.to_be_bytes();
        match &self.rtcp {
            SessionKeys::Cm(keys) => {
                let CmKeys { cipher, auth, salt } = &**keys;
                let (signed, tag) = buf.split_at_mut(body_len + SRTCP_INDEX_LEN);
                let expected = hmac_80(auth, [signed, &[]]);
                verify_slices_are_equal(&expected, tag).map_err(|_| SrtpError::AuthFailed)?;
                if encrypted {
                    ctr(
                        cipher,
                        cm_iv(salt, ssrc, u64::from(index)),
                        &mut signed[RTCP_HEADER_LEN..body_len],
                    )?;
                }
            }
            SessionKeys::Gcm { aead, salt } => {
                let nonce = gcm_rtcp_nonce(salt, ssrc, index);
                if encrypted {
                    let (head, sealed) = buf[..e_index_at].split_at_mut(RTCP_HEADER_LEN);
                    aead.open_in_place(nonce, Aad::from(rtcp_gcm_aad(head, e_index)), sealed)
                        .map_err(|_| SrtpError::AuthFailed)?;
                } else {
                    // Authenticated only: the AAD is the whole packet and then the E flag +
                    // index, which sit after the tag. Move them next to the packet (over the
                    // tag's first bytes, kept aside) so the AAD is one slice.
                    let mut tag = [0; GCM_TAG_LEN];
                    tag.copy_from_slice(&buf[body_len..e_index_at]);
                    buf[body_len..body_len + SRTCP_INDEX_LEN].copy_from_slice(&e_index);
                    aead.open_in_place_separate_tag(
                        nonce,
                        Aad::from(&buf[..body_len + SRTCP_INDEX_LEN]),
                        &tag,
                        &mut [],
                    )
                    .map_err(|_| SrtpError::AuthFailed)?;
                }
            }
        }
        let now = self.tick();
        self.rx_rtcp.store(ssrc, next, now);
        Ok(body_len)
    }
}

/// The sender SSRC of an RTCP packet (RFC 3550 §6.4: octets 4..8 of the first packet of a
/// compound), after checking the version.
fn rtcp_ssrc(packet: &[u8]) -> Result<u32, SrtpError> {
    let first = *packet.first().ok_or(SrtpError::TooShort)?;
    if first >> 6 != 2 {
        return Err(SrtpError::BadHeader);
    }
    read_u32(packet, 4).ok_or(SrtpError::TooShort)
}

/// RFC 7714 §9.2 AAD of an encrypted SRTCP packet: its first 8 octets, then the E flag + index.
fn rtcp_gcm_aad(
    head: &[u8],
    e_index: [u8; SRTCP_INDEX_LEN],
) -> [u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN] {
    let mut aad = [0; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
    for (a, h) in aad.iter_mut().zip(head) {
        *a = *h;
    }
    aad[RTCP_HEADER_LEN..].copy_from_slice(&e_index);
    aad
}
