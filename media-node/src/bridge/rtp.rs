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
    /// SSRC of the last packet.
    ssrc: u32,
    /// Expected and received packets at the last report block (RFC 3550 A.3).
    expected_prior: u64,
    received_prior: u64,
}

impl ReceiveStats {
    /// Records one packet: its sequence number and timestamp, when it arrived (`arrival_us`,
    /// microseconds on any monotonic clock) and the clock rate of its payload type.
    pub fn record(&mut self, view: &RtpView, payload_len: usize, arrival_us: u64, clock_rate: u32) {
        self.packets += 1;
        self.bytes += payload_len as u64;
        self.ssrc = view.ssrc;
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

    /// The SSRC of the stream, once a packet arrived.
    pub fn ssrc(&self) -> Option<u32> {
        self.started.then_some(self.ssrc)
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

    /// The report block about this stream for an SR/RR (RFC 3550 A.3), `lsr`/`dlsr` left 0;
    /// starts a new interval for the fraction lost. `None` before the first packet.
    pub fn report_block(&mut self) -> Option<super::rtcp::ReportBlock> {
        if !self.started {
            return None;
        }
        let expected = u64::from(self.max_seq - self.base_seq) + 1;
        let lost = i64::try_from(expected).unwrap_or(i64::MAX)
            - i64::try_from(self.packets).unwrap_or(i64::MAX);
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.packets.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.packets;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = (lost_interval << 8)
            .checked_div(expected_interval)
            .map_or(0, |f| u8::try_from(f).unwrap_or(u8::MAX));
        Some(super::rtcp::ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: i32::try_from(lost.clamp(-0x80_0000, 0x7f_ffff)).unwrap_or(0),
            highest_seq: self.max_seq,
            jitter: u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX),
            lsr: 0,
            dlsr: 0,
        })
    }

    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f32 {
        if self.clock_rate == 0 {
            return 0.0;
        }
        (self.jitter_q4 as f32 / 16.0) * 1000.0 / self.clock_rate as f32
    }
}

/// Equipment impairment of a codec for the E-model: `Ie` and the packet-loss robustness `Bpl`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecImpairment {
    /// Equipment impairment factor `Ie` (0 for G.711).
    pub ie: f32,
    /// Packet-loss robustness factor `Bpl` (random loss).
    pub bpl: f32,
}

impl CodecImpairment {
    /// G.711 (PCMU/PCMA) with packet loss concealment: `Ie = 0`, `Bpl = 25.1` (ITU-T G.113
    /// Appendix I). G.113 gives narrowband values for G.711 only among the bridge's codecs;
    /// G.722 and Opus are wideband and conceal loss at least as well, so the bridge uses these
    /// values for them too (a conservative narrowband stand-in, not a wideband E-model score).
    pub const G711: Self = Self { ie: 0.0, bpl: 25.1 };
}

/// One-way (mouth-to-ear) delay estimate in ms for the E-model: half of each measured round
/// trip (browser leg, and upstream leg when known; 20 ms when neither is known), a jitter
/// buffer of twice the jitter, and 20 ms of packetisation.
pub fn mouth_to_ear_ms(
    browser_rtt_ms: Option<u32>,
    upstream_rtt_ms: Option<u32>,
    jitter_ms: f32,
) -> f32 {
    let network = match (browser_rtt_ms, upstream_rtt_ms) {
        (None, None) => 20.0,
        (a, b) => (a.unwrap_or(0) + b.unwrap_or(0)) as f32 / 2.0,
    };
    network + 2.0 * jitter_ms + 20.0
}

/// Listening-quality estimate (MOS, 1.0-4.5) by the E-model of ITU-T G.107, simplified with
/// the default values of every other parameter (so `R0 = 93.2`, `Is = 0`, `A = 0`) and the
/// delay impairment approximation of Cole & Rosenbluth, "Voice over IP performance
/// monitoring", ACM SIGCOMM CCR 31(2), 2001:
///
/// ```text
/// R      = R0 - Id - Ie_eff                        (G.107: R = R0 - Is - Id - Ie_eff + A)
/// Id     = 0.024 d + 0.11 (d - 177.3) H(d - 177.3) (Cole & Rosenbluth; d = one-way ms)
/// Ie_eff = Ie + (95 - Ie) Ppl / (Ppl + Bpl)        (G.107, random loss: BurstR = 1)
/// MOS    = 1 + 0.035 R + 7e-6 R (R - 60) (100 - R) (G.107 Annex B, for 0 < R < 100)
/// ```
///
/// `delay_ms` is the one-way delay ([`mouth_to_ear_ms`]), `loss` the packet loss fraction
/// (0.0-1.0), `codec` the codec's `Ie`/`Bpl` ([`CodecImpairment`]). G.711 with no loss and low
/// delay gives R ≈ 92.4, MOS ≈ 4.4.
pub fn mos_estimate(delay_ms: f32, loss: f32, codec: CodecImpairment) -> f32 {
    let d = delay_ms.max(0.0);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    let ppl = (loss * 100.0).clamp(0.0, 100.0);
    let ie_eff = codec.ie + (95.0 - codec.ie) * ppl / (ppl + codec.bpl);
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
    fn mos_of_g711_is_about_4_4_clean_and_lower_with_loss_or_delay() {
        let g711 = CodecImpairment::G711;
        let clean = mos_estimate(mouth_to_ear_ms(Some(20), None, 1.0), 0.0, g711);
        assert!((4.35..=4.45).contains(&clean), "{clean}");
        let lossy = mos_estimate(mouth_to_ear_ms(Some(20), None, 1.0), 0.05, g711);
        assert!(lossy < clean - 0.5 && lossy > 3.0, "{lossy}");
        let late = mos_estimate(400.0, 0.0, g711);
        assert!(late < clean - 0.5 && late > 2.5, "{late}");
        assert_eq!(mos_estimate(5_000.0, 1.0, g711), 1.0, "floor");
        assert!((mouth_to_ear_ms(Some(100), Some(60), 0.0) - 100.0).abs() < 1e-3);
        assert!((mouth_to_ear_ms(None, None, 5.0) - 50.0).abs() < 1e-3);
    }

    #[test]
    fn report_block_counts_the_interval_and_the_total() {
        let mut stats = ReceiveStats::default();
        assert!(stats.report_block().is_none());
        for (i, seq) in [10u16, 11, 13, 14].into_iter().enumerate() {
            let p = packet(0, seq, i as u32 * 160);
            stats.record(&parse(&p).unwrap(), 3, i as u64 * 20_000, 8000);
        }
        let block = stats.report_block().unwrap();
        assert_eq!(block.ssrc, 0x1234_5678);
        assert_eq!(block.highest_seq, 14);
        assert_eq!(block.cumulative_lost, 1);
        assert_eq!(block.fraction_lost, 51, "1 of 5 = 51/256");
        let p = packet(0, 15, 5 * 160);
        stats.record(&parse(&p).unwrap(), 3, 100_000, 8000);
        let block = stats.report_block().unwrap();
        assert_eq!((block.fraction_lost, block.cumulative_lost), (0, 1));
    }
}
