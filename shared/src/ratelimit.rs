//! A token bucket on caller-supplied time, for per-socket message limits at the edge.

/// What to do with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Within the limit.
    Yes,
    /// Over the limit: refuse this message (answer 503 with Retry-After), keep the socket.
    Refuse,
    /// Far over the limit for a sustained time: close the socket.
    Disconnect,
}

/// Allows `rate` messages per second with bursts of `burst`; a sender that keeps going after being
/// refused `strikes_to_disconnect` times in a row without the bucket refilling is disconnected.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_s: f64,
    burst: f64,
    tokens: f64,
    last_ms: u64,
    strikes: u32,
    strikes_to_disconnect: u32,
}

impl TokenBucket {
    /// A full bucket at time `now_ms`.
    pub fn new(rate_per_s: u32, burst: u32, strikes_to_disconnect: u32, now_ms: u64) -> Self {
        Self {
            rate_per_s: f64::from(rate_per_s),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last_ms: now_ms,
            strikes: 0,
            strikes_to_disconnect,
        }
    }

    /// Takes one token for a message arriving at `now_ms`.
    pub fn admit(&mut self, now_ms: u64) -> Admit {
        let elapsed_s = now_ms.saturating_sub(self.last_ms) as f64 / 1000.0;
        self.last_ms = self.last_ms.max(now_ms);
        self.tokens = (self.tokens + elapsed_s * self.rate_per_s).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.strikes = 0;
            Admit::Yes
        } else {
            self.strikes += 1;
            if self.strikes >= self.strikes_to_disconnect {
                Admit::Disconnect
            } else {
                Admit::Refuse
            }
        }
    }

    /// Seconds until one message would be admitted again.
    pub fn retry_after_s(&self) -> u32 {
        if self.tokens >= 1.0 || self.rate_per_s <= 0.0 {
            0
        } else {
            ((1.0 - self.tokens) / self.rate_per_s).ceil() as u32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_is_admitted_then_refused_then_refilled_over_time() {
        let mut b = TokenBucket::new(10, 5, 100, 0);
        for _ in 0..5 {
            assert_eq!(b.admit(0), Admit::Yes);
        }
        assert_eq!(b.admit(0), Admit::Refuse);
        assert_eq!(b.retry_after_s(), 1);
        assert_eq!(
            b.admit(100),
            Admit::Yes,
            "one token refills in 100 ms at 10/s"
        );
        assert_eq!(b.admit(100), Admit::Refuse);
    }

    #[test]
    fn sustained_flood_is_disconnected_but_a_pause_forgives() {
        let mut b = TokenBucket::new(1, 1, 3, 0);
        assert_eq!(b.admit(0), Admit::Yes);
        assert_eq!(b.admit(1), Admit::Refuse);
        assert_eq!(b.admit(2), Admit::Refuse);
        assert_eq!(
            b.admit(1_500),
            Admit::Yes,
            "a refilled token resets the strikes"
        );
        assert_eq!(b.admit(1_501), Admit::Refuse);
        assert_eq!(b.admit(1_502), Admit::Refuse);
        assert_eq!(b.admit(1_503), Admit::Disconnect);
    }

    #[test]
    fn time_going_backwards_does_not_add_tokens() {
        let mut b = TokenBucket::new(1000, 1, 10, 5_000);
        assert_eq!(b.admit(5_000), Admit::Yes);
        assert_eq!(b.admit(1_000), Admit::Refuse);
    }
}
