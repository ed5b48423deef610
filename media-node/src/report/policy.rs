//! Which transport a report goes over, decided on a caller-given clock (sans-IO).
//!
//! Browser-like: in `auto` mode HTTP/3 is tried first; a transport failure (no handshake,
//! timeout, reset: not an HTTP error status, which means HTTP/3 works) marks HTTP/3 broken for
//! a while and the same report goes over TCP at once. While broken, reports use TCP; when the
//! period ends HTTP/3 is tried again. Each consecutive failure doubles the period
//! ([`H3_RETRY_FIRST`] up to [`H3_RETRY_MAX`]); a success resets it.

use std::fmt;
use std::time::{Duration, Instant};

use crate::config::ReportTransport;

/// How long HTTP/3 is left alone after its first failure.
pub const H3_RETRY_FIRST: Duration = Duration::from_secs(60);
/// Longest period HTTP/3 is left alone.
pub const H3_RETRY_MAX: Duration = Duration::from_secs(30 * 60);

/// The two ways a report travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP/3 over QUIC (UDP).
    H3,
    /// HTTP/1.1 over TCP: TLS for `https://` URLs, plain for `http://`.
    Tcp,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::H3 => "h3",
            Self::Tcp => "tcp",
        })
    }
}

/// The transport state of one reporter.
#[derive(Debug, Clone)]
pub struct Policy {
    mode: ReportTransport,
    h3_broken_until: Option<Instant>,
    next_backoff: Duration,
}

impl Policy {
    /// A policy for `mode` with HTTP/3 not (yet) known to be broken.
    pub fn new(mode: ReportTransport) -> Self {
        Self {
            mode,
            h3_broken_until: None,
            next_backoff: H3_RETRY_FIRST,
        }
    }

    /// The transports to try for a report at `now`, in order.
    pub fn plan(&self, now: Instant) -> &'static [Transport] {
        match self.mode {
            ReportTransport::H3 => &[Transport::H3],
            ReportTransport::Https => &[Transport::Tcp],
            ReportTransport::Auto => {
                if self.h3_broken_until.is_some_and(|until| now < until) {
                    &[Transport::Tcp]
                } else {
                    &[Transport::H3, Transport::Tcp]
                }
            }
        }
    }

    /// HTTP/3 carried a request (whatever the status).
    pub fn h3_worked(&mut self) {
        self.h3_broken_until = None;
        self.next_backoff = H3_RETRY_FIRST;
    }

    /// HTTP/3 failed at the transport level at `now`; returns until when it is left alone
    /// (`None` in `h3` mode, which keeps trying every report).
    pub fn h3_failed(&mut self, now: Instant) -> Option<Duration> {
        if self.mode != ReportTransport::Auto {
            return None;
        }
        let backoff = self.next_backoff;
        self.h3_broken_until = Some(now + backoff);
        self.next_backoff = (backoff * 2).min(H3_RETRY_MAX);
        Some(backoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_modes_use_one_transport() {
        let now = Instant::now();
        let mut h3 = Policy::new(ReportTransport::H3);
        assert_eq!(h3.plan(now), [Transport::H3]);
        assert_eq!(h3.h3_failed(now), None);
        assert_eq!(h3.plan(now), [Transport::H3]);
        assert_eq!(
            Policy::new(ReportTransport::Https).plan(now),
            [Transport::Tcp]
        );
    }

    #[test]
    fn auto_tries_h3_then_tcp_and_leaves_a_failed_h3_alone_for_a_while() {
        let start = Instant::now();
        let mut policy = Policy::new(ReportTransport::Auto);
        assert_eq!(policy.plan(start), [Transport::H3, Transport::Tcp]);
        assert_eq!(policy.h3_failed(start), Some(H3_RETRY_FIRST));
        assert_eq!(policy.plan(start), [Transport::Tcp]);
        assert_eq!(
            policy.plan(start + H3_RETRY_FIRST - Duration::from_secs(1)),
            [Transport::Tcp]
        );
        let retry = start + H3_RETRY_FIRST;
        assert_eq!(policy.plan(retry), [Transport::H3, Transport::Tcp]);
        // Failing again doubles the wait...
        assert_eq!(policy.h3_failed(retry), Some(H3_RETRY_FIRST * 2));
        // ...up to the cap...
        let mut at = retry;
        for _ in 0..20 {
            at += H3_RETRY_MAX;
            policy.h3_failed(at);
        }
        assert_eq!(policy.h3_failed(at), Some(H3_RETRY_MAX));
        // ...and a success resets it.
        policy.h3_worked();
        assert_eq!(policy.plan(at), [Transport::H3, Transport::Tcp]);
        assert_eq!(policy.h3_failed(at), Some(H3_RETRY_FIRST));
    }
}
