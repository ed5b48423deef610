//! Just enough RTP (RFC 3550) to relay a packet in place: header checks, payload type, sequence
//! number, timestamp and SSRC, and the receive statistics of RFC 3550 appendix A.

/// Smallest RTP header.
pub const HEADER_LEN: usize = 12;

/// Where the fields of a checked RTP packet are (it borrows nothing: the buffer is then
/// rewritten in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpView {
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Marker bit.
    pub marker: bool,
    /// Sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Payload byte range (after CSRCs and extension, before padding).
    pub payload: (usize, usize),
}

/// Whether a datagram on an RTP port is RTCP multiplexed there (RFC 5761 §4: packet types
/// 192-223 in the second byte).
pub fn is_rtcp(packet: &[u8]) -> bool {
    packet.len() >= 8 && packet[0] >> 6 == 2 && (192..=223).contains(&packet[1])
}

/// Checks `packet` as RTP version 2 and locates its fields; `None` if malformed.
pub fn parse(packet: &[u8]) -> Option<RtpView> {
    if packet.len() < HEADER_LEN || packet[0] >> 6 != 2 {
        return None;
    }
    let csrc_count = usize::from(packet[0] & 0x0f);
    let mut start = HEADER_LEN + 4 * csrc_count;
    if packet[0] & 0x10 != 0 {
        let words = packet.get(start + 2..start + 4)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        let padding = usize::from(*packet.last()?);
        if padding == 0 {
            return None;
        }
        end = end.checked_sub(padding)?;
    }
    if start > end {
        return None;
    }
    Some(RtpView {
        payload_type: packet[1] & 0x7f,
        marker: packet[1] & 0x80 != 0,
        sequence: u16::from_be_bytes([packet[2], packet[3]]),
        timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        payload: (start, end),
    })
}

/// Rewrites the payload type of an RTP packet in place, keeping the marker bit.
pub fn set_payload_type(packet: &mut [u8], payload_type: u8) {
    if let Some(byte) = packet.get_mut(1) {
        *byte = (*byte & 0x80) | (payload_type & 0x7f);
    }
}

/// Writes a 12-byte RTP header (no CSRC, no extension) followed by `payload` into `out`.
pub fn write(out: &mut Vec<u8>, view: &RtpView, payload: &[u8]) {
    out.clear();
    out.push(0x80);
    out.push(u8::from(view.marker) << 7 | (view.payload_type & 0x7f));
    out.extend_from_slice(&view.sequence.to_be_bytes());
    out.extend_from_slice(&view.timestamp.to_be_bytes());
    out.extend_from_slice(&view.ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Receive statistics of one stream: packets, bytes, loss and interarrival jitter (RFC 3550
/// A.1, A.3, A.8). Fixed size, updated per packet without allocating.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceiveStats {
    /// Packets received.
    pub packets: u64,
    /// Payload bytes received.
    pub bytes: u64,
    base_seq: u32,
    max_seq: u32,
    started: bool,
    transit: Option<i64>,
    /// Jitter in timestamp units, scaled by 16 as RFC 3550 A.8 does.
    jitter_q4: u64,
    clock_rate: u32,
}

impl ReceiveStats {
    /// Records one packet: its sequence number and timestamp, when it arrived (`arrival_us`,
    /// microseconds on any monotonic clock) and the clock rate of its payload type.
    pub fn record(&mut self, view: &RtpView, payload_len: usize, arrival_us: u64, clock_rate: u32) {
        self.packets += 1;
        self.bytes += payload_len as u64;
        let seq = u32::from(view.sequence);
        if !self.started {
            self.started = true;
            self.base_seq = seq;
            self.max_seq = seq;
        } else {
            // Extend to 32 bits: a step of less than half the space forward is progress.
            let last = self.max_seq & 0xffff;
            let delta = seq.wrapping_sub(last) & 0xffff;
            if delta != 0 && delta < 0x8000 {
                let cycles = self.max_seq & !0xffff;
                let wrapped = if seq < last { 0x1_0000 } else { 0 };
                self.max_seq = cycles + wrapped + seq;
            }
        }
        if clock_rate == 0 {
            return;
        }
        if clock_rate != self.clock_rate {
            self.clock_rate = clock_rate;
            self.transit = None;
        }
        let arrival = (arrival_us as i64).wrapping_mul(i64::from(clock_rate)) / 1_000_000;
        let transit = arrival.wrapping_sub(i64::from(view.timestamp));
        if let Some(previous) = self.transit {
            let d = transit.wrapping_sub(previous).unsigned_abs();
            // J += (|D| - J) / 16, kept as 16 * J.
            self.jitter_q4 = self.jitter_q4 + d - ((self.jitter_q4 + 8) >> 4);
        }
        self.transit = Some(transit);
    }

    /// Fraction of expected packets that did not arrive (0.0-1.0).
    pub fn loss(&self) -> f32 {
        if !self.started {
            return 0.0;
        }
        let expected = u64::from(self.max_seq - self.base_seq) + 1;
        let lost = expected.saturating_sub(self.packets);
        lost as f32 / expected as f32
    }

    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f32 {
        if self.clock_rate == 0 {
            return 0.0;
        }
        (self.jitter_q4 as f32 / 16.0) * 1000.0 / self.clock_rate as f32
    }
}

/// E-model (ITU-T G.107, simplified as in G.113 for G.711 with packet loss concealment) listening
/// quality estimate, 1.0-4.5, from one-way delay, loss fraction and jitter.
pub fn mos_estimate(rtt_ms: Option<u32>, loss: f32, jitter_ms: f32) -> f32 {
    // Mouth-to-ear delay: half the round trip (20 ms when unknown), a jitter buffer of twice the
    // jitter, 20 ms of packetisation.
    let delay = rtt_ms.map_or(20.0, |rtt| rtt as f32 / 2.0) + 2.0 * jitter_ms + 20.0;
    let id = 0.024 * delay
        + if delay > 177.3 {
            0.11 * (delay - 177.3)
        } else {
            0.0
        };
    let ppl = (loss * 100.0).clamp(0.0, 100.0);
    let ie_eff = 95.0 * ppl / (ppl + 25.1);
    let r = (93.2 - id - ie_eff).clamp(0.0, 100.0);
    let mos = 1.0 + 0.035 * r + 7.0e-6 * r * (r - 60.0) * (100.0 - r);
    mos.clamp(1.0, 4.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pt: u8, seq: u16, ts: u32) -> Vec<u8> {
        let view = RtpView {
            payload_type: pt,
            marker: true,
            sequence: seq,
            timestamp: ts,
            ssrc: 0x1234_5678,
            payload: (0, 0),
        };
        let mut out = Vec::new();
        write(&mut out, &view, &[1, 2, 3]);
        out
    }

    #[test]
    fn parses_what_it_writes_and_rewrites_the_payload_type_in_place() {
        let mut p = packet(0, 7, 160);
        let view = parse(&p).unwrap();
        assert_eq!(
            (view.payload_type, view.sequence, view.timestamp),
            (0, 7, 160)
        );
        assert!(view.marker);
        assert_eq!(&p[view.payload.0..view.payload.1], &[1, 2, 3]);
        set_payload_type(&mut p, 101);
        let view = parse(&p).unwrap();
        assert_eq!(view.payload_type, 101);
        assert!(view.marker, "marker kept");
    }

    #[test]
    fn malformed_headers_are_rejected_without_panicking() {
        assert!(parse(&[]).is_none());
        assert!(parse(&[0x80; 11]).is_none());
        assert!(parse(&[0x40; 12]).is_none(), "version 1");
        let mut csrc = packet(0, 1, 1);
        csrc[0] |= 0x0f; // 15 CSRCs that are not there
        assert!(parse(&csrc).is_none());
        let mut ext = packet(0, 1, 1);
        ext[0] |= 0x10;
        assert!(parse(&ext).is_none(), "extension header beyond the end");
        let mut pad = packet(0, 1, 1);
        pad[0] |= 0x20;
        *pad.last_mut().unwrap() = 200;
        assert!(parse(&pad).is_none(), "padding longer than the packet");
        for len in 0..64 {
            let noise: Vec<u8> = (0..len).map(|i| (i * 37 + 0x90) as u8).collect();
            let _ = parse(&noise);
        }
    }

    #[test]
    fn rtcp_is_told_apart_from_rtp() {
        assert!(is_rtcp(&[0x80, 200, 0, 6, 0, 0, 0, 1]));
        assert!(!is_rtcp(&packet(0, 1, 1)));
        assert!(!is_rtcp(&packet(96, 1, 1)));
    }

    #[test]
    fn loss_counts_gaps_across_the_sequence_wrap() {
        let mut stats = ReceiveStats::default();
        for (i, seq) in [65_530u16, 65_531, 65_533, 65_535, 0, 1, 3]
            .into_iter()
            .enumerate()
        {
            let p = packet(0, seq, i as u32 * 160);
            stats.record(&parse(&p).unwrap(), 3, i as u64 * 20_000, 8000);
        }
        // 65530..=3 is 10 packets, 7 arrived.
        assert_eq!(stats.packets, 7);
        assert!((stats.loss() - 0.3).abs() < 1e-6, "{}", stats.loss());
    }

    #[test]
    fn steady_arrivals_have_no_jitter_and_uneven_ones_some() {
        let mut steady = ReceiveStats::default();
        let mut uneven = ReceiveStats::default();
        for i in 0..50u32 {
            let p = packet(0, i as u16, i * 160);
            let view = parse(&p).unwrap();
            steady.record(&view, 3, u64::from(i) * 20_000, 8000);
            let wobble = if i % 2 == 0 { 0 } else { 10_000 };
            uneven.record(&view, 3, u64::from(i) * 20_000 + wobble, 8000);
        }
        assert!(steady.jitter_ms() < 0.01, "{}", steady.jitter_ms());
        assert!(uneven.jitter_ms() > 5.0, "{}", uneven.jitter_ms());
        assert_eq!(steady.loss(), 0.0);
    }

    #[test]
    fn mos_falls_with_loss_and_delay() {
        let clean = mos_estimate(Some(20), 0.0, 1.0);
        assert!(clean > 4.3, "{clean}");
        assert!(mos_estimate(Some(20), 0.05, 1.0) < clean);
        assert!(mos_estimate(Some(600), 0.0, 1.0) < clean);
        assert!(mos_estimate(None, 1.0, 500.0) >= 1.0);
    }
}
