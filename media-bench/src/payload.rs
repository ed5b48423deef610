//! What every packet carries, and how the receiver turns it into loss and latency.
//!
//! Each 160-byte G.711 payload starts with a [`Stamp`]: a magic, the call, the direction, a
//! per-stream sequence number and the sender's monotonic send time in nanoseconds since the
//! generator's [`Clock`] epoch. Sender and receiver are the same process on the same machine,
//! so `receive time - send time` is the one-way time through the bridge (plus the kernel's
//! loopback path and the generator's own reaction time), with no clock sync.
//!
//! Loss is counted over a measurement [`Window`] by send time: a packet belongs to the window when
//! it was sent inside it, and is received when it arrives before the generator stops listening.
//! Duplicates are caught per stream by a sliding bitmap ([`SeqWindow`]) so they cannot hide loss.

use std::time::Instant;

/// G.711 at 20 ms: 160 samples, one byte each.
pub const PAYLOAD_LEN: usize = 160;

/// Start of every stamped payload.
pub const MAGIC: [u8; 4] = *b"MBv1";

/// Bytes of [`Stamp`] at the start of a payload; the rest is PCMU silence.
pub const STAMP_LEN: usize = 4 + 4 + 1 + 4 + 8;

/// PCMU silence, the filler after the stamp.
const SILENCE: u8 = 0xff;

/// Which way a packet travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// WebRTC caller -> bridge -> plain RTP far end.
    ToFarEnd = 0,
    /// Far end -> bridge -> WebRTC caller.
    ToCaller = 1,
}

impl Direction {
    /// Both directions, in index order.
    pub const BOTH: [Direction; 2] = [Direction::ToFarEnd, Direction::ToCaller];

    /// 0 or 1, for arrays indexed by direction.
    pub fn index(self) -> usize {
        self as usize
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::ToFarEnd),
            1 => Some(Self::ToCaller),
            _ => None,
        }
    }
}

/// The header of a stamped payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The call (index in the run).
    pub call: u32,
    /// Which way it was sent.
    pub direction: Direction,
    /// Per-stream (call and direction) sequence number, from 0.
    pub seq: u32,
    /// Send time, nanoseconds since the [`Clock`] epoch.
    pub sent_ns: u64,
}

impl Stamp {
    /// A full 160-byte payload carrying this stamp.
    pub fn payload(&self) -> [u8; PAYLOAD_LEN] {
        let mut out = [SILENCE; PAYLOAD_LEN];
        out[..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&self.call.to_be_bytes());
        out[8] = self.direction as u8;
        out[9..13].copy_from_slice(&self.seq.to_be_bytes());
        out[13..21].copy_from_slice(&self.sent_ns.to_be_bytes());
        out
    }

    /// The stamp of a payload, or `None` when it is not a stamped payload of ours.
    pub fn read(payload: &[u8]) -> Option<Self> {
        if payload.len() != PAYLOAD_LEN || payload[..4] != MAGIC {
            return None;
        }
        let u32_at = |i: usize| {
            payload
                .get(i..i + 4)?
                .try_into()
                .ok()
                .map(u32::from_be_bytes)
        };
        let sent: [u8; 8] = payload.get(13..21)?.try_into().ok()?;
        Some(Self {
            call: u32_at(4)?,
            direction: Direction::from_byte(payload[8])?,
            seq: u32_at(9)?,
            sent_ns: u64::from_be_bytes(sent),
        })
    }
}

/// The generator's monotonic clock: nanoseconds since its epoch.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    /// Nanoseconds from the epoch to `at` (0 before the epoch).
    pub fn ns(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The instant `ns` nanoseconds after the epoch.
    pub fn at(&self, ns: u64) -> Instant {
        self.epoch + std::time::Duration::from_nanos(ns)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// The measurement window, by send time: `start_ns <= sent < end_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First nanosecond (clock time) in the window.
    pub start_ns: u64,
    /// First nanosecond after it.
    pub end_ns: u64,
}

impl Window {
    /// Whether a packet sent at `sent_ns` is measured.
    pub fn contains(&self, sent_ns: u64) -> bool {
        (self.start_ns..self.end_ns).contains(&sent_ns)
    }
}

/// Duplicate detection for one stream: the highest sequence seen and a 64-packet bitmap below it.
#[derive(Debug, Clone, Default)]
pub struct SeqWindow {
    highest: Option<u32>,
    /// Bit `k` set: `highest - k` was seen.
    seen: u64,
}

/// What [`SeqWindow::accept`] made of a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// First time seen, in order.
    InOrder,
    /// First time seen, after a higher one.
    Reordered,
    /// Seen before.
    Duplicate,
    /// More than 64 behind the highest: cannot tell, counted as received once.
    TooOld,
}

impl SeqWindow {
    /// Records `seq`.
    pub fn accept(&mut self, seq: u32) -> Arrival {
        let Some(highest) = self.highest else {
            self.highest = Some(seq);
            self.seen = 1;
            return Arrival::InOrder;
        };
        if seq > highest {
            let shift = seq - highest;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = Some(seq);
            return Arrival::InOrder;
        }
        let behind = highest - seq;
        if behind >= 64 {
            return Arrival::TooOld;
        }
        let bit = 1u64 << behind;
        if self.seen & bit != 0 {
            Arrival::Duplicate
        } else {
            self.seen |= bit;
            Arrival::Reordered
        }
    }
}

/// Latencies in 1 µs buckets up to 100 ms, above that an overflow count and the maximum.
#[derive(Debug, Clone)]
pub struct Histogram {
    buckets: Vec<u32>,
    overflow: u64,
    count: u64,
    max_us: u64,
}

const HISTOGRAM_US: usize = 100_000;

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; HISTOGRAM_US],
            overflow: 0,
            count: 0,
            max_us: 0,
        }
    }
}

impl Histogram {
    /// Records one sample, in microseconds.
    pub fn add(&mut self, us: u64) {
        self.count += 1;
        self.max_us = self.max_us.max(us);
        match self.buckets.get_mut(us as usize) {
            Some(bucket) => *bucket = bucket.saturating_add(1),
            None => self.overflow += 1,
        }
    }

    /// Adds `other`'s samples.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a = a.saturating_add(*b);
        }
        self.overflow += other.overflow;
        self.count += other.count;
        self.max_us = self.max_us.max(other.max_us);
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Largest sample.
    pub fn max_us(&self) -> u64 {
        self.max_us
    }

    /// The `p` quantile (0.0-1.0) in microseconds: the smallest bucket with at least `p` of the
    /// samples at or below it; the maximum when that is in the overflow; 0 without samples.
    pub fn quantile_us(&self, p: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((self.count as f64) * p.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (us, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                return us as u64;
            }
        }
        self.max_us
    }
}

/// Loss and latency of one direction, summed over the streams a generator thread handles.
#[derive(Debug, Clone, Default)]
pub struct DirectionStats {
    /// Packets sent inside the window.
    pub sent: u64,
    /// Window packets received (each at most once).
    pub received: u64,
    /// Window packets received again.
    pub duplicates: u64,
    /// Window packets that arrived after a later one of their stream.
    pub reordered: u64,
    /// One-way time of window packets, send to receive.
    pub latency: Histogram,
}

impl DirectionStats {
    /// Records a send at `sent_ns`.
    pub fn on_send(&mut self, window: Option<&Window>, sent_ns: u64) {
        if window.is_some_and(|w| w.contains(sent_ns)) {
            self.sent += 1;
        }
    }

    /// Records the arrival at `now_ns` of `stamp`, whose stream's duplicate filter is `seqs`.
    pub fn on_receive(
        &mut self,
        window: Option<&Window>,
        seqs: &mut SeqWindow,
        stamp: &Stamp,
        now_ns: u64,
    ) {
        let arrival = seqs.accept(stamp.seq);
        if !window.is_some_and(|w| w.contains(stamp.sent_ns)) {
            return;
        }
        match arrival {
            Arrival::Duplicate => {
                self.duplicates += 1;
                return;
            }
            Arrival::Reordered => self.reordered += 1,
            Arrival::InOrder | Arrival::TooOld => {}
        }
        self.received += 1;
        self.latency
            .add(now_ns.saturating_sub(stamp.sent_ns) / 1_000);
    }

    /// Adds `other`'s counts and samples.
    pub fn merge(&mut self, other: &DirectionStats) {
        self.sent += other.sent;
        self.received += other.received;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
        self.latency.merge(&other.latency);
    }

    /// Window packets not received.
    pub fn lost(&self) -> u64 {
        self.sent.saturating_sub(self.received)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(seq: u32, sent_ns: u64) -> Stamp {
        Stamp {
            call: 7,
            direction: Direction::ToCaller,
            seq,
            sent_ns,
        }
    }

    #[test]
    fn a_stamp_survives_the_payload_round_trip() {
        let s = Stamp {
            call: 1399,
            direction: Direction::ToFarEnd,
            seq: 123_456,
            sent_ns: 9_876_543_210_123,
        };
        let payload = s.payload();
        assert_eq!(payload.len(), PAYLOAD_LEN);
        assert!(payload[STAMP_LEN..].iter().all(|&b| b == 0xff));
        assert_eq!(Stamp::read(&payload), Some(s));
    }

    #[test]
    fn foreign_or_cut_payloads_are_not_stamps() {
        let payload = stamp(1, 2).payload();
        assert_eq!(Stamp::read(&payload[..PAYLOAD_LEN - 1]), None);
        assert_eq!(Stamp::read(&[0xff; PAYLOAD_LEN]), None);
        let mut bad_direction = payload;
        bad_direction[8] = 9;
        assert_eq!(Stamp::read(&bad_direction), None);
    }

    #[test]
    fn loss_counts_only_packets_sent_inside_the_window() {
        let window = Window {
            start_ns: 1_000,
            end_ns: 2_000,
        };
        let mut stats = DirectionStats::default();
        let mut seqs = SeqWindow::default();
        // Sent: seq 0 before the window, 1..=4 inside, 5 after.
        let sent = [500, 1_000, 1_200, 1_500, 1_999, 2_000];
        for &t in &sent {
            stats.on_send(Some(&window), t);
        }
        assert_eq!(stats.sent, 4);
        // Received: 0 (outside), 1, 3 (2 lost), 4 twice (a duplicate), 5 (outside).
        for (seq, now) in [
            (0, 600),
            (1, 3_000),
            (3, 4_500),
            (4, 5_000),
            (4, 5_100),
            (5, 9_000),
        ] {
            stats.on_receive(
                Some(&window),
                &mut seqs,
                &stamp(seq, sent[seq as usize]),
                now,
            );
        }
        assert_eq!(stats.received, 3);
        assert_eq!(stats.duplicates, 1);
        assert_eq!(stats.lost(), 1);
        // Latencies 2 µs, 3 µs, 3 µs (ns / 1000, truncated).
        assert_eq!(stats.latency.count(), 3);
        assert_eq!(stats.latency.quantile_us(0.5), 3);
        assert_eq!(stats.latency.max_us(), 3);
    }

    #[test]
    fn nothing_is_counted_before_the_window_is_known() {
        let mut stats = DirectionStats::default();
        stats.on_send(None, 10);
        stats.on_receive(None, &mut SeqWindow::default(), &stamp(0, 10), 20);
        assert_eq!(
            (stats.sent, stats.received, stats.latency.count()),
            (0, 0, 0)
        );
    }

    #[test]
    fn reordered_packets_count_once_and_repeats_are_duplicates() {
        let mut seqs = SeqWindow::default();
        assert_eq!(seqs.accept(10), Arrival::InOrder);
        assert_eq!(seqs.accept(12), Arrival::InOrder);
        assert_eq!(seqs.accept(11), Arrival::Reordered);
        assert_eq!(seqs.accept(11), Arrival::Duplicate);
        assert_eq!(seqs.accept(12), Arrival::Duplicate);
        assert_eq!(seqs.accept(200), Arrival::InOrder);
        assert_eq!(seqs.accept(12), Arrival::TooOld);
        assert_eq!(seqs.accept(137), Arrival::Reordered);
    }

    #[test]
    fn quantiles_come_from_the_merged_histograms() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for us in 1..=98 {
            a.add(us);
        }
        b.add(4_000);
        b.add(250_000); // beyond the buckets: overflow, still the maximum
        a.merge(&b);
        assert_eq!(a.count(), 100);
        assert_eq!(a.quantile_us(0.5), 50);
        assert_eq!(a.quantile_us(0.99), 4_000);
        assert_eq!(a.quantile_us(1.0), 250_000);
        assert_eq!(Histogram::default().quantile_us(0.99), 0);
    }
}
