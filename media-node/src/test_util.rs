//! Helpers the unit tests of the protocol modules share: hex test vectors and deterministic
//! noise for hostile-input tests.

/// The bytes of a hex string (whitespace ignored), as RFC test vectors print them.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert_eq!(digits.len() % 2, 0, "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// [`hex`] into a fixed-size array (panics if the length differs: a broken test vector).
pub fn hex_array<const N: usize>(s: &str) -> [u8; N] {
    hex(s).try_into().unwrap()
}

/// xorshift64*: deterministic noise for garbage and mutations.
pub struct Noise(pub u64);

impl Noise {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// `len` noise bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }

    /// 1..=max noise bytes.
    pub fn some_bytes(&mut self, max: usize) -> Vec<u8> {
        let len = 1 + self.below(max);
        self.bytes(len)
    }
}
