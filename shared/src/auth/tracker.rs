//! Replay protection: the last nonce count accepted per nonce, bounded in memory.

use std::collections::BTreeMap;

use super::{AuthError, NonceId};

/// Remembers, for each nonce still valid, the highest nonce count (`nc`) accepted, and refuses a
/// repeated or lower one.
///
/// Memory is bounded by `capacity` entries. Expired nonces are forgotten first (they are refused
/// as stale before reaching the tracker anyway). When the tracker is full of live nonces, it
/// forgets the oldest and from then on refuses, as [`AuthError::Stale`], any nonce issued at or
/// before that one that it does not remember: a forgotten nonce can never be replayed, the
/// client is only asked to take a new one.
#[derive(Debug, Clone)]
pub struct NonceTracker {
    seen: BTreeMap<NonceId, u32>,
    capacity: usize,
    ttl_ms: u64,
    forgotten_up_to: Option<u64>,
}

impl NonceTracker {
    /// A tracker holding at most `capacity` (at least 1) nonces that live `ttl_ms` each.
    pub fn new(capacity: usize, ttl_ms: u64) -> Self {
        NonceTracker {
            seen: BTreeMap::new(),
            capacity: capacity.max(1),
            ttl_ms,
            forgotten_up_to: None,
        }
    }

    /// Records that `nc` was used with nonce `id` at `now_ms`.
    ///
    /// # Errors
    /// [`AuthError::Replay`] when `nc` is not above the last count accepted for `id`;
    /// [`AuthError::Stale`] when `id` had to be forgotten to bound memory.
    pub fn observe(&mut self, now_ms: u64, id: NonceId, nc: u32) -> Result<(), AuthError> {
        self.handle_timeout(now_ms);
        if let Some(last) = self.seen.get_mut(&id) {
            if nc <= *last {
                return Err(AuthError::Replay);
            }
            *last = nc;
            return Ok(());
        }
        if self.forgotten_up_to.is_some_and(|t| id.issued_ms <= t) {
            return Err(AuthError::Stale);
        }
        while self.seen.len() >= self.capacity {
            let Some((oldest, _)) = self.seen.pop_first() else {
                break;
            };
            self.forgotten_up_to = Some(self.forgotten_up_to.unwrap_or(0).max(oldest.issued_ms));
        }
        self.seen.insert(id, nc);
        Ok(())
    }

    /// Forgets the nonces expired at `now_ms`.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        while let Some((first, _)) = self.seen.first_key_value() {
            if first.issued_ms.saturating_add(self.ttl_ms) > now_ms {
                break;
            }
            self.seen.pop_first();
        }
    }

    /// When the oldest remembered nonce expires, if any: call [`NonceTracker::handle_timeout`]
    /// then (optional; [`NonceTracker::observe`] also cleans up).
    pub fn poll_timeout(&self) -> Option<u64> {
        self.seen
            .first_key_value()
            .map(|(id, _)| id.issued_ms.saturating_add(self.ttl_ms))
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no nonce is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(issued_ms: u64, r: u8) -> NonceId {
        NonceId {
            issued_ms,
            random: [r; 16],
        }
    }

    #[test]
    fn refuses_repeated_and_lower_counts() {
        let mut t = NonceTracker::new(8, 1000);
        t.observe(0, id(0, 1), 1).unwrap();
        t.observe(1, id(0, 1), 2).unwrap();
        assert_eq!(t.observe(2, id(0, 1), 2), Err(AuthError::Replay));
        assert_eq!(t.observe(2, id(0, 1), 1), Err(AuthError::Replay));
        t.observe(3, id(0, 1), 5).unwrap();
        t.observe(3, id(0, 2), 1).unwrap();
    }

    #[test]
    fn stays_bounded_and_never_allows_a_forgotten_nonce() {
        let mut t = NonceTracker::new(2, 1000);
        t.observe(0, id(10, 1), 1).unwrap();
        t.observe(0, id(20, 2), 1).unwrap();
        t.observe(0, id(30, 3), 1).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.observe(0, id(10, 1), 2), Err(AuthError::Stale));
        t.observe(0, id(40, 4), 1).unwrap();
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn forgets_expired_nonces() {
        let mut t = NonceTracker::new(8, 1000);
        t.observe(0, id(0, 1), 1).unwrap();
        t.observe(500, id(500, 2), 1).unwrap();
        assert_eq!(t.poll_timeout(), Some(1000));
        t.handle_timeout(999);
        assert_eq!(t.len(), 2);
        t.handle_timeout(1000);
        assert_eq!(t.len(), 1);
        assert_eq!(t.poll_timeout(), Some(1500));
    }
}
