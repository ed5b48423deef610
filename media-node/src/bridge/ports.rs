//! The pool of upstream RTP ports: an even RTP port and the RTCP port above it per session.

use std::collections::VecDeque;

/// Binds and closes the sockets of a port pair; the IO shell's side of allocation. The core
/// stays free of sockets, and a port some other process holds is skipped instead of failing.
pub trait PortBinder {
    /// Binds RTP on `rtp_port` and RTCP on `rtp_port + 1`; false if either is unavailable.
    fn bind_pair(&mut self, rtp_port: u16) -> bool;
    /// Closes the sockets of a pair bound by [`PortBinder::bind_pair`].
    fn close_pair(&mut self, rtp_port: u16);
}

/// Free port pairs, least recently used first (a stray packet of an ended call is less
/// likely to reach the next one).
#[derive(Debug, Clone)]
pub struct PortPool {
    free: VecDeque<u16>,
}

impl PortPool {
    /// Every even port `p` with `p + 1` still in `min..=max`.
    pub fn new(min: u16, max: u16) -> Self {
        let first = min + min % 2;
        let free = (u32::from(first)..u32::from(max))
            .step_by(2)
            .filter_map(|p| u16::try_from(p).ok())
            .collect();
        Self { free }
    }

    /// Pairs free.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Takes a pair the binder manages to bind. A pair that fails to bind goes to the back of
    /// the queue; after a full round of failures, `None`.
    pub fn take(&mut self, binder: &mut dyn PortBinder) -> Option<u16> {
        for _ in 0..self.free.len() {
            let port = self.free.pop_front()?;
            if binder.bind_pair(port) {
                return Some(port);
            }
            self.free.push_back(port);
        }
        None
    }

    /// Returns a pair to the pool (after its sockets were closed).
    pub fn give_back(&mut self, rtp_port: u16) {
        self.free.push_back(rtp_port);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Refuse(Vec<u16>);
    impl PortBinder for Refuse {
        fn bind_pair(&mut self, rtp_port: u16) -> bool {
            !self.0.contains(&rtp_port)
        }
        fn close_pair(&mut self, _: u16) {}
    }

    #[test]
    fn pairs_start_on_even_ports_inside_the_range() {
        let pool = PortPool::new(40_001, 40_008);
        assert_eq!(pool.free, [40_002, 40_004, 40_006]);
        assert_eq!(PortPool::new(65_534, 65_535).free, [65_534]);
        assert_eq!(PortPool::new(40_000, 40_000).available(), 0);
    }

    #[test]
    fn taken_ports_are_skipped_and_exhaustion_is_none() {
        let mut pool = PortPool::new(40_000, 40_005);
        let mut binder = Refuse(vec![40_000]);
        assert_eq!(pool.take(&mut binder), Some(40_002));
        assert_eq!(pool.take(&mut binder), Some(40_004));
        assert_eq!(pool.take(&mut binder), None);
        pool.give_back(40_002);
        assert_eq!(pool.take(&mut binder), Some(40_002));
    }
}
