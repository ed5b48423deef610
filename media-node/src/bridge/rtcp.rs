//! Just enough RTCP (RFC 3550 §6.4) for the plain RTP leg: writing a sender or receiver report
//! with at most one report block, reading the SR/RR of a compound packet, and the round trip
//! from LSR/DLSR (§6.4.1: `RTT = A - LSR - DLSR`, in 1/65536 s), with the NTP clock both legs'
//! reports use ([`NtpClock`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Packet type of a sender report.
pub const SR: u8 = 200;
/// Packet type of a receiver report.
pub const RR: u8 = 201;

/// One report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24 bits, signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from that source (0: none).
    pub lsr: u32,
    /// Delay since that SR, 1/65536 s.
    pub dlsr: u32,
}

/// The sender information of an SR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    /// 64-bit NTP timestamp (seconds since 1900 in the upper half, fraction in the lower).
    pub ntp: u64,
    /// RTP timestamp of the same instant.
    pub rtp_timestamp: u32,
    /// Packets sent.
    pub packets: u32,
    /// Payload octets sent.
    pub octets: u32,
}

/// Writes an SR (with `sender`) or an RR (without) from `ssrc` with `block`, if any, into
/// `out` (cleared first). No SDES: plain RTP peers accept a lone SR/RR in practice.
pub fn write_report(
    out: &mut Vec<u8>,
    ssrc: u32,
    sender: Option<&SenderInfo>,
    block: Option<&ReportBlock>,
) {
    out.clear();
    let count = u8::from(block.is_some());
    let words = 1 + if sender.is_some() { 5 } else { 0 } + if block.is_some() { 6 } else { 0 };
    out.push(0x80 | count);
    out.push(if sender.is_some() { SR } else { RR });
    out.extend_from_slice(&(words as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(s) = sender {
        out.extend_from_slice(&s.ntp.to_be_bytes());
        out.extend_from_slice(&s.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&s.packets.to_be_bytes());
        out.extend_from_slice(&s.octets.to_be_bytes());
    }
    if let Some(b) = block {
        out.extend_from_slice(&b.ssrc.to_be_bytes());
        let lost = (b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff;
        out.extend_from_slice(&((u32::from(b.fraction_lost) << 24) | lost).to_be_bytes());
        out.extend_from_slice(&b.highest_seq.to_be_bytes());
        out.extend_from_slice(&b.jitter.to_be_bytes());
        out.extend_from_slice(&b.lsr.to_be_bytes());
        out.extend_from_slice(&b.dlsr.to_be_bytes());
    }
}

/// What a compound RTCP packet said that the bridge uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Received {
    /// An SR arrived: its sender SSRC and the middle 32 bits of its NTP time (the LSR to echo).
    pub sender_report: Option<(u32, u32)>,
    /// The report block about `our_ssrc`, if any.
    pub block: Option<ReportBlock>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

/// Walks a compound RTCP packet; `None` if it is not RTCP version 2 or a length is wrong.
/// Packet types other than SR and RR are skipped.
pub fn parse(packet: &[u8], our_ssrc: u32) -> Option<Received> {
    let mut received = Received::default();
    let mut at = 0;
    if packet.len() < 8 {
        return None;
    }
    while at < packet.len() {
        let header = packet.get(at..at + 4)?;
        if header[0] >> 6 != 2 {
            return None;
        }
        let count = usize::from(header[0] & 0x1f);
        let len = (usize::from(u16::from_be_bytes([header[2], header[3]])) + 1) * 4;
        let body = packet.get(at..at + len)?;
        let blocks_at = match header[1] {
            SR => {
                let ssrc = be32(body, 4)?;
                let ntp_mid = (be32(body, 8)? << 16) | (be32(body, 12)? >> 16);
                received.sender_report = Some((ssrc, ntp_mid));
                Some(28)
            }
            RR => Some(8),
            _ => None,
        };
        if let Some(start) = blocks_at {
            for i in 0..count {
                let b = start + i * 24;
                let ssrc = be32(body, b)?;
                let lost_word = be32(body, b + 4)?;
                if ssrc != our_ssrc {
                    continue;
                }
                // Sign-extend the 24-bit cumulative loss.
                let cumulative_lost = ((lost_word << 8) as i32) >> 8;
                received.block = Some(ReportBlock {
                    ssrc,
                    fraction_lost: (lost_word >> 24) as u8,
                    cumulative_lost,
                    highest_seq: be32(body, b + 8)?,
                    jitter: be32(body, b + 12)?,
                    lsr: be32(body, b + 16)?,
                    dlsr: be32(body, b + 20)?,
                });
            }
        }
        at += len;
    }
    Some(received)
}

/// Middle 32 bits of a 64-bit NTP timestamp (the unit of LSR, 1/65536 s).
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

/// A duration as a 64-bit NTP quantity (32.32 fixed point seconds).
pub fn ntp_of(d: Duration) -> u64 {
    (d.as_secs() << 32) | ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}

/// A duration in 1/65536 s (the unit of DLSR), saturating.
pub fn dlsr_of(d: Duration) -> u32 {
    u32::try_from(ntp_of(d) >> 16).unwrap_or(u32::MAX)
}

/// The NTP time of sender reports: the wall clock read once, then advanced by the caller's
/// monotonic clock (no system call per report, no jumps when the wall clock is set).
#[derive(Debug, Clone, Copy)]
pub struct NtpClock {
    base: Instant,
    base_ntp: u64,
}

impl NtpClock {
    /// Reads the wall clock as of `now`.
    pub fn new(now: Instant) -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        NtpClock {
            base: now,
            base_ntp: ntp_of(unix + Duration::from_secs(NTP_UNIX_OFFSET_SECS)),
        }
    }

    /// The 64-bit NTP time at `now`.
    pub fn at(&self, now: Instant) -> u64 {
        self.base_ntp
            .wrapping_add(ntp_of(now.saturating_duration_since(self.base)))
    }
}

/// Round trip from a report block received when our NTP clock read `arrival_ntp`:
/// `A - LSR - DLSR` (RFC 3550 §6.4.1), in milliseconds; `None` without an LSR or if negative.
pub fn rtt_ms(arrival_ntp: u64, block: &ReportBlock) -> Option<u32> {
    if block.lsr == 0 {
        return None;
    }
    let a = ntp_middle(arrival_ntp);
    let rtt = a.wrapping_sub(block.lsr).wrapping_sub(block.dlsr);
    // A "negative" round trip (clock or report error) shows as a huge value.
    if rtt > 0x8000_0000 {
        return None;
    }
    Some(((u64::from(rtt) * 1000) >> 16) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back_a_sender_report_with_a_block() {
        let mut out = Vec::new();
        let sender = SenderInfo {
            ntp: 0x0123_4567_89ab_cdef,
            rtp_timestamp: 160,
            packets: 50,
            octets: 8000,
        };
        let block = ReportBlock {
            ssrc: 7,
            fraction_lost: 25,
            cumulative_lost: -3,
            highest_seq: 0x1_0005,
            jitter: 12,
            lsr: 0xabcd_0000,
            dlsr: 0x1_0000,
        };
        write_report(&mut out, 42, Some(&sender), Some(&block));
        assert_eq!(out.len(), 52);
        assert!(super::super::rtp::is_rtcp(&out));
        let got = parse(&out, 7).unwrap();
        assert_eq!(got.sender_report, Some((42, 0x4567_89ab)));
        assert_eq!(got.block, Some(block));
        assert_eq!(
            parse(&out, 8).unwrap().block,
            None,
            "block about someone else"
        );
    }

    #[test]
    fn receiver_report_alone_and_truncated_packets() {
        let mut out = Vec::new();
        write_report(&mut out, 1, None, None);
        assert_eq!(out, [0x80, RR, 0, 1, 0, 0, 0, 1]);
        assert_eq!(parse(&out, 1), Some(Received::default()));
        write_report(&mut out, 1, None, Some(&ReportBlock::default()));
        assert!(parse(&out[..out.len() - 1], 0).is_none());
        assert!(parse(&[0x80, RR, 0, 9, 0, 0, 0, 1], 0).is_none());
    }

    #[test]
    fn round_trip_is_arrival_minus_lsr_minus_dlsr() {
        // SR sent at NTP 1000.0 s, held 0.5 s by the peer, back at 1000.6 s: 100 ms.
        let ntp = |secs: f64| (secs * 4_294_967_296.0) as u64;
        let block = ReportBlock {
            lsr: ntp_middle(ntp(1000.0)),
            dlsr: 0x8000,
            ..ReportBlock::default()
        };
        let rtt = rtt_ms(ntp(1000.6), &block).unwrap();
        assert!((99..=100).contains(&rtt), "{rtt}");
        assert_eq!(rtt_ms(ntp(1000.4), &block), None, "negative");
        let no_sr = ReportBlock::default();
        assert_eq!(rtt_ms(ntp(1000.6), &no_sr), None);
    }
}
