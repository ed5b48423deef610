//! A small deterministic PRNG (SplitMix64) for tags, branches, nonces' random part.
//!
//! Not a CSPRNG: unpredictability comes from the seed the shell draws from a real random
//! source. Branches and tags only need to be unique and hard to guess for a browser that does
//! not see the seed; nonce authenticity comes from the HMAC, not from this.

#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn bytes16(&mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        out[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        out
    }

    /// A token of 16 lowercase hex digits.
    pub fn token(&mut self) -> String {
        format!("{:016x}", self.next_u64())
    }

    /// A fresh RFC 3261 branch (`z9hG4bK` magic cookie).
    pub fn branch(&mut self) -> String {
        format!("z9hG4bK{}{}", self.token(), &self.token()[..8])
    }
}
