//! A plain RTP far end for end-to-end tests: the upstream's media, as a carrier would send and receive
//! it. It proves audio crossed by decoding it, not by counting packets:
//!
//! - G.711 μ-law decode and encode ([`ulaw_decode`], [`ulaw_encode`]),
//! - a Goertzel tone detector ([`goertzel_power`], [`ToneCheck`]),
//! - an RTP packet parser ([`RtpPacket::parse`]) and an RFC 4733 telephone-event parser
//!   ([`TelephoneEvent::parse`], [`digits`] to fold a packet stream into pressed keys),
//! - [`RtpPeer`]: a UDP endpoint on loopback (RTP port even, the next one held for RTCP) that learns
//!   its peer from the first packet it receives (symmetric RTP), records what arrives and answers with
//!   a PCMU tone paced at 20 ms,
//! - [`write_sine_wav`]: a 16-bit PCM WAV with a steady sine, e.g. Chromium's fake microphone
//!   (`--use-file-for-fake-audio-capture`).

use std::f64::consts::PI;
use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// G.711 sample rate.
pub const SAMPLE_RATE: u32 = 8000;
/// Samples in a 20 ms G.711 frame.
pub const FRAME_SAMPLES: usize = 160;
/// The static payload type of PCMU.
pub const PT_PCMU: u8 = 0;

/// One μ-law byte to a 16-bit linear sample (ITU-T G.711).
pub fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let sign = u & 0x80;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    let value = if sign != 0 { -magnitude } else { magnitude };
    // Always within ±32124.
    i16::try_from(value).unwrap_or(0)
}

/// A 16-bit linear sample to μ-law (ITU-T G.711).
pub fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut s = i32::from(sample);
    let sign: u8 = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    let s = s.min(CLIP) + BIAS;
    let mut exponent: u8 = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = ((s >> (exponent + 3)) & 0x0f) as u8;
    !(sign | (exponent << 4) | mantissa)
}

/// The Goertzel power of `samples` (linear, full scale ±32768) at `freq` Hz, normalised so a full-scale
/// sine exactly on a bin gives about 0.25 whatever the block length.
pub fn goertzel_power(samples: &[i16], freq: f64, rate: u32) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let w = 2.0 * PI * freq / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) / 32768.0 + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = samples.len() as f64;
    power / (n * n)
}

/// The root-mean-square level of `samples` in dBFS (a full-scale sine is -3 dBFS).
pub fn level_dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let sum: f64 = samples
        .iter()
        .map(|&s| (f64::from(s) / 32768.0).powi(2))
        .sum();
    10.0 * (sum / samples.len() as f64).log10()
}

/// A tone check over 20 ms frames: the `target` frequency must beat every `others` frequency by
/// `min_ratio_db` and the frame must be louder than `min_level_dbfs`.
#[derive(Debug, Clone)]
pub struct ToneCheck {
    /// The expected tone (Hz).
    pub target: f64,
    /// Frequencies that must be much weaker (Hz).
    pub others: Vec<f64>,
    /// How much stronger the target must be (dB).
    pub min_ratio_db: f64,
    /// Frames quieter than this do not count as the tone.
    pub min_level_dbfs: f64,
}

/// What a [`ToneCheck`] measured over many frames.
#[derive(Debug, Clone, Default)]
pub struct ToneReport {
    /// Frames looked at.
    pub frames: usize,
    /// Frames where the tone was dominant and loud enough.
    pub frames_with_tone: usize,
    /// Median of (target power / strongest other power) in dB over all frames.
    pub median_ratio_db: f64,
    /// Median frame level in dBFS.
    pub median_level_dbfs: f64,
    /// The 10th and 90th percentile frame levels in dBFS (how steady the level was).
    pub level_p10_p90_dbfs: (f64, f64),
}

impl ToneReport {
    /// The share of frames with the tone, 0 to 1.
    pub fn share(&self) -> f64 {
        if self.frames == 0 {
            0.0
        } else {
            self.frames_with_tone as f64 / self.frames as f64
        }
    }
}

impl std::fmt::Display for ToneReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} frames with the tone dominant ({:.0}%), median target/other {:.1} dB, \
             level median {:.1} dBFS (p10 {:.1}, p90 {:.1})",
            self.frames_with_tone,
            self.frames,
            self.share() * 100.0,
            self.median_ratio_db,
            self.median_level_dbfs,
            self.level_p10_p90_dbfs.0,
            self.level_p10_p90_dbfs.1
        )
    }
}

impl ToneCheck {
    /// The target-to-strongest-other ratio of one frame in dB, and whether it passes.
    pub fn frame(&self, samples: &[i16]) -> (f64, bool) {
        let target = goertzel_power(samples, self.target, SAMPLE_RATE);
        let other = self
            .others
            .iter()
            .map(|&f| goertzel_power(samples, f, SAMPLE_RATE))
            .fold(0.0f64, f64::max);
        let ratio_db = 10.0 * ((target + 1e-15) / (other + 1e-15)).log10();
        let loud = level_dbfs(samples) >= self.min_level_dbfs;
        (ratio_db, loud && ratio_db >= self.min_ratio_db)
    }

    /// Checks every frame.
    pub fn run<'a>(&self, frames: impl IntoIterator<Item = &'a [i16]>) -> ToneReport {
        let mut ratios = Vec::new();
        let mut levels = Vec::new();
        let mut with_tone = 0;
        for samples in frames {
            let (ratio, ok) = self.frame(samples);
            ratios.push(ratio);
            levels.push(level_dbfs(samples));
            with_tone += usize::from(ok);
        }
        let median_level_dbfs = median(&mut levels);
        let percentile = |p: usize| {
            levels
                .get(levels.len() * p / 100)
                .copied()
                .unwrap_or(f64::NAN)
        };
        ToneReport {
            frames: ratios.len(),
            frames_with_tone: with_tone,
            median_ratio_db: median(&mut ratios),
            median_level_dbfs,
            level_p10_p90_dbfs: (percentile(10), percentile(90)),
        }
    }
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Why a datagram is not an RTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    /// Shorter than its headers say.
    #[error("truncated RTP packet")]
    Truncated,
    /// Not version 2.
    #[error("RTP version {0}, expected 2")]
    Version(u8),
    /// An RTCP packet (PT 200-204 in the second byte, with the marker bit).
    #[error("RTCP, not RTP")]
    Rtcp,
}

/// A parsed RTP packet (RFC 3550), borrowing its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    /// The marker bit.
    pub marker: bool,
    /// Payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Timestamp.
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// The payload, without padding.
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses `data`: fixed header, CSRCs, header extension and padding.
    pub fn parse(data: &'a [u8]) -> Result<Self, RtpError> {
        if data.len() < 12 {
            return Err(RtpError::Truncated);
        }
        let version = data[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        if (200..=204).contains(&data[1]) {
            return Err(RtpError::Rtcp);
        }
        let padding = data[0] & 0x20 != 0;
        let extension = data[0] & 0x10 != 0;
        let csrcs = usize::from(data[0] & 0x0f);
        let mut start = 12 + 4 * csrcs;
        if extension {
            let ext = data.get(start..start + 4).ok_or(RtpError::Truncated)?;
            start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        }
        let mut end = data.len();
        if padding {
            let pad = usize::from(*data.last().ok_or(RtpError::Truncated)?);
            end = end.checked_sub(pad).ok_or(RtpError::Truncated)?;
        }
        if start > end {
            return Err(RtpError::Truncated);
        }
        Ok(Self {
            marker: data[1] & 0x80 != 0,
            payload_type: data[1] & 0x7f,
            sequence: u16::from_be_bytes([data[2], data[3]]),
            timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
            payload: &data[start..end],
        })
    }

    /// Writes a packet with a 12-byte header.
    pub fn write(
        marker: bool,
        payload_type: u8,
        sequence: u16,
        timestamp: u32,
        ssrc: u32,
        payload: &[u8],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + payload.len());
        out.push(0x80);
        out.push((u8::from(marker) << 7) | (payload_type & 0x7f));
        out.extend_from_slice(&sequence.to_be_bytes());
        out.extend_from_slice(&timestamp.to_be_bytes());
        out.extend_from_slice(&ssrc.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }
}

/// An RFC 4733 named telephone event payload (DTMF: events 0-9 are the digits, 10 `*`, 11 `#`,
/// 12-15 `A`-`D`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// The event code.
    pub event: u8,
    /// The E bit: this is (a retransmission of) the last packet of the event.
    pub end: bool,
    /// Volume, in -dBm0 (0-63).
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parses the first 4-byte event block of a payload.
    pub fn parse(payload: &[u8]) -> Option<Self> {
        let b = payload.get(..4)?;
        Some(Self {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// The key of a DTMF event (`None` for other events).
    pub fn key(&self) -> Option<char> {
        match self.event {
            0..=9 => char::from_digit(u32::from(self.event), 10),
            10 => Some('*'),
            11 => Some('#'),
            12..=15 => Some(char::from(b'A' + self.event - 12)),
            _ => None,
        }
    }
}

/// One telephone-event packet as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    /// Its RTP timestamp (the same for every packet of one event).
    pub timestamp: u32,
    /// Its marker bit (set on the first packet of an event).
    pub marker: bool,
    /// The event.
    pub event: TelephoneEvent,
}

/// One key press folded from its packets: same timestamp, same event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digit {
    /// The event code.
    pub event: u8,
    /// The RTP timestamp of its packets.
    pub timestamp: u32,
    /// How many packets carried it.
    pub packets: usize,
    /// Whether the first packet had the marker bit.
    pub marker: bool,
    /// Whether an end packet (E bit) arrived.
    pub ended: bool,
    /// The longest duration seen (timestamp units; 8 per ms at 8 kHz).
    pub duration: u16,
}

/// Folds telephone-event packets into key presses, in arrival order.
pub fn digits(packets: &[EventPacket]) -> Vec<Digit> {
    let mut out: Vec<Digit> = Vec::new();
    for p in packets {
        match out
            .iter_mut()
            .find(|d| d.timestamp == p.timestamp && d.event == p.event.event)
        {
            Some(d) => {
                d.packets += 1;
                d.ended |= p.event.end;
                d.duration = d.duration.max(p.event.duration);
            }
            None => out.push(Digit {
                event: p.event.event,
                timestamp: p.timestamp,
                packets: 1,
                marker: p.marker,
                ended: p.event.end,
                duration: p.event.duration,
            }),
        }
    }
    out
}

/// One audio packet as received, decoded when it is PCMU.
#[derive(Debug, Clone)]
pub struct AudioPacket {
    /// When it arrived.
    pub at: Instant,
    /// Its payload type.
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Linear samples (PCMU only; empty for other payload types).
    pub samples: Vec<i16>,
}

/// Everything an [`RtpPeer`] saw and did.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// The source of the first RTP packet: where it sent its tone.
    pub peer: Option<SocketAddr>,
    /// When the first RTP packet arrived.
    pub first_at: Option<Instant>,
    /// Audio packets (every payload type but the telephone-event one).
    pub audio: Vec<AudioPacket>,
    /// Telephone-event packets.
    pub events: Vec<EventPacket>,
    /// Datagrams that were not RTP, or came from another source than the latched peer.
    pub ignored: usize,
    /// Packets sent.
    pub sent: usize,
    /// Datagrams that arrived on the RTCP port.
    pub rtcp: usize,
}

impl Received {
    /// The PCMU frames that arrived at least `skip` after the first packet.
    pub fn pcmu_frames_after(&self, skip: Duration) -> Vec<&[i16]> {
        let Some(first) = self.first_at else {
            return Vec::new();
        };
        self.audio
            .iter()
            .filter(|p| p.payload_type == PT_PCMU && p.at >= first + skip && !p.samples.is_empty())
            .map(|p| p.samples.as_slice())
            .collect()
    }
}

/// A plain RTP endpoint on 127.0.0.1: an even RTP port and the RTCP port after it.
#[derive(Debug)]
pub struct RtpPeer {
    rtp: UdpSocket,
    rtcp: UdpSocket,
}

impl RtpPeer {
    /// Binds an even port on 127.0.0.1 whose successor is free too.
    pub fn bind() -> std::io::Result<Self> {
        for _ in 0..100 {
            let rtp = UdpSocket::bind("127.0.0.1:0")?;
            let port = rtp.local_addr()?.port();
            if port % 2 != 0 || port == u16::MAX {
                continue;
            }
            if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
                return Ok(Self { rtp, rtcp });
            }
        }
        Err(std::io::Error::other(
            "no free even RTP port pair on 127.0.0.1",
        ))
    }

    /// Its RTP port.
    pub fn port(&self) -> u16 {
        self.rtp.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Starts receiving on a thread. Packets with `event_pt` are RFC 4733 events; once the first RTP
    /// packet arrived, a PCMU tone at `tone_hz` and `tone_dbfs` goes back to its source every 20 ms.
    pub fn start(self, event_pt: u8, tone_hz: f64, tone_dbfs: f64) -> RtpPeerHandle {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || self.run(&flag, event_pt, tone_hz, tone_dbfs));
        RtpPeerHandle {
            stop,
            thread: Some(thread),
        }
    }

    fn run(self, stop: &AtomicBool, event_pt: u8, tone_hz: f64, tone_dbfs: f64) -> Received {
        let mut got = Received::default();
        let _ = self.rtcp.set_nonblocking(true);
        let amplitude = 32767.0 * 10f64.powf(tone_dbfs / 20.0) * std::f64::consts::SQRT_2;
        let ssrc = 0x5eed_1234u32;
        let (mut seq, mut ts, mut phase) = (1000u16, 160_000u32, 0u64);
        let mut next_send: Option<Instant> = None;
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if let (Some(due), Some(peer)) = (next_send, got.peer) {
                if now >= due {
                    let payload: Vec<u8> = (0..FRAME_SAMPLES as u64)
                        .map(|i| {
                            let t = (phase + i) as f64 / f64::from(SAMPLE_RATE);
                            let s = amplitude.min(32767.0) * (2.0 * PI * tone_hz * t).sin();
                            ulaw_encode(s as i16)
                        })
                        .collect();
                    let packet = RtpPacket::write(got.sent == 0, PT_PCMU, seq, ts, ssrc, &payload);
                    if self.rtp.send_to(&packet, peer).is_ok() {
                        got.sent += 1;
                    }
                    seq = seq.wrapping_add(1);
                    ts = ts.wrapping_add(FRAME_SAMPLES as u32);
                    phase += FRAME_SAMPLES as u64;
                    // Keep a steady 20 ms clock; after a long stall, restart it.
                    let next = due + Duration::from_millis(20);
                    next_send = Some(if next < now { now } else { next });
                    continue;
                }
            }
            let wait = next_send
                .map(|d| d.saturating_duration_since(now))
                .unwrap_or(Duration::from_millis(20))
                .clamp(Duration::from_millis(1), Duration::from_millis(20));
            let _ = self.rtp.set_read_timeout(Some(wait));
            while self.rtcp.recv_from(&mut buf).is_ok() {
                got.rtcp += 1;
            }
            let Ok((len, from)) = self.rtp.recv_from(&mut buf) else {
                continue;
            };
            let at = Instant::now();
            let Ok(packet) = RtpPacket::parse(&buf[..len]) else {
                got.ignored += 1;
                continue;
            };
            match got.peer {
                None => {
                    got.peer = Some(from);
                    got.first_at = Some(at);
                    next_send = Some(at);
                }
                Some(peer) if peer != from => {
                    got.ignored += 1;
                    continue;
                }
                Some(_) => {}
            }
            if packet.payload_type == event_pt {
                if let Some(event) = TelephoneEvent::parse(packet.payload) {
                    got.events.push(EventPacket {
                        timestamp: packet.timestamp,
                        marker: packet.marker,
                        event,
                    });
                }
            } else {
                let samples = if packet.payload_type == PT_PCMU {
                    packet.payload.iter().map(|&b| ulaw_decode(b)).collect()
                } else {
                    Vec::new()
                };
                got.audio.push(AudioPacket {
                    at,
                    payload_type: packet.payload_type,
                    sequence: packet.sequence,
                    samples,
                });
            }
        }
        got
    }
}

/// A running [`RtpPeer`].
#[derive(Debug)]
pub struct RtpPeerHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Received>>,
}

impl RtpPeerHandle {
    /// Stops it and returns what it saw.
    pub fn stop(mut self) -> Received {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for RtpPeerHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Writes a mono 16-bit PCM WAV of `seconds` of a `freq` Hz sine at `dbfs` (RMS; -3 dBFS is full
/// scale). A whole number of cycles per file makes it loop without a click.
pub fn write_sine_wav(
    path: &Path,
    freq: f64,
    dbfs: f64,
    rate: u32,
    seconds: u32,
) -> std::io::Result<()> {
    let n = rate as usize * seconds as usize;
    let amplitude = (32767.0 * 10f64.powf(dbfs / 20.0) * std::f64::consts::SQRT_2).min(32767.0);
    let mut data = Vec::with_capacity(n * 2);
    for i in 0..n {
        let s = amplitude * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin();
        data.extend_from_slice(&(s.round() as i16).to_le_bytes());
    }
    let data_len = u32::try_from(data.len()).map_err(std::io::Error::other)?;
    let mut out = Vec::with_capacity(44 + data.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(&data);
    std::fs::File::create(path)?.write_all(&out)
}

/// Asserts that audio crossed a bridged call both ways, and prints what was measured: RTP reached the
/// upstream's socket from `node_port` (the port in the node's SDP) with PCMU only, the browser's 1 kHz
/// tone dominates most decoded frames there, and the browser's `STATS` (`stats`, from
/// `edge-worker/pwa/tests/bridge.spec.mjs`) show audio received with energy, peaking at 440 Hz.
pub fn assert_tones_crossed(
    got: &Received,
    rtp_port: u16,
    node_port: Option<u16>,
    stats: &serde_json::Value,
    logs: impl Fn() -> String,
) {
    let node_addr = got
        .peer
        .unwrap_or_else(|| panic!("no RTP reached the upstream's socket:\n{}", logs()));
    println!(
        "upstream socket 127.0.0.1:{rtp_port}: RTP from {node_addr} (node's SDP port {node_port:?}), \
         {} audio packets, {} event packets, {} ignored, {} RTCP; sent {} packets of 440 Hz",
        got.audio.len(),
        got.events.len(),
        got.ignored,
        got.rtcp,
        got.sent
    );
    assert_eq!(
        Some(node_addr.port()),
        node_port,
        "RTP did not come from the port the node put in its SDP"
    );
    let other_pts: Vec<u8> = got
        .audio
        .iter()
        .map(|p| p.payload_type)
        .filter(|&pt| pt != 0)
        .collect();
    assert!(
        other_pts.is_empty(),
        "the node sent payload types the upstream did not offer: {other_pts:?}"
    );

    // The browser's 1 kHz reached the upstream: decoded, the tone dominates most frames.
    let frames = got.pcmu_frames_after(Duration::from_secs(1));
    let tone = ToneCheck {
        target: 1000.0,
        others: vec![440.0, 1500.0, 700.0, 2000.0],
        min_ratio_db: 20.0,
        min_level_dbfs: -40.0,
    }
    .run(frames.iter().copied());
    println!("1 kHz at the upstream: {tone}");
    assert!(
        tone.frames >= 100,
        "too little audio reached the upstream ({} frames after the first second):\n{}",
        tone.frames,
        logs()
    );
    assert!(
        tone.share() >= 0.8,
        "the browser's 1 kHz tone is not dominant in the upstream's audio: {tone}"
    );

    // The upstream's 440 Hz reached the browser.
    let after = &stats["after"];
    println!("browser: {stats}");
    let packets = after["packetsReceived"].as_f64().unwrap_or(0.0);
    let energy = after["totalAudioEnergy"].as_f64().unwrap_or(0.0);
    assert!(
        packets > 100.0 && energy > 0.0,
        "the browser received no audio with energy: {after}"
    );
    let heard = &stats["heard"];
    let peak = heard["peakHz"].as_f64().unwrap_or(0.0);
    let (db440, db1000) = (
        heard["db440"].as_f64().unwrap_or(f64::NEG_INFINITY),
        heard["db1000"].as_f64().unwrap_or(f64::NEG_INFINITY),
    );
    assert!(
        (peak - 440.0).abs() < 20.0 && db440 > db1000 + 20.0,
        "the browser's remote audio does not peak at 440 Hz: {heard}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, amplitude: f64, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| (amplitude * (2.0 * PI * freq * i as f64 / 8000.0).sin()) as i16)
            .collect()
    }

    #[test]
    fn ulaw_round_trips_within_its_quantisation() {
        for s in [-32000i16, -1000, -10, 0, 10, 1000, 32000] {
            let back = ulaw_decode(ulaw_encode(s));
            let tolerance = (i32::from(s).abs() / 16).max(8);
            assert!(
                (i32::from(back) - i32::from(s)).abs() <= tolerance,
                "{s} -> {back}"
            );
        }
        // Known code points: 0xff is +0, 0x7f is -0, 0x00 is the most negative.
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
    }

    #[test]
    fn goertzel_finds_the_tone_through_ulaw() {
        let frame: Vec<i16> = sine(1000.0, 8000.0, FRAME_SAMPLES)
            .into_iter()
            .map(|s| ulaw_decode(ulaw_encode(s)))
            .collect();
        let check = ToneCheck {
            target: 1000.0,
            others: vec![440.0, 1500.0],
            min_ratio_db: 20.0,
            min_level_dbfs: -40.0,
        };
        let (ratio, ok) = check.frame(&frame);
        assert!(ok, "ratio {ratio} dB");
        let wrong = sine(440.0, 8000.0, FRAME_SAMPLES);
        assert!(!check.frame(&wrong).1);
        assert!(!check.frame(&[0; FRAME_SAMPLES]).1);
    }

    #[test]
    fn rtp_and_events_parse() {
        let event = [11u8, 0x80 | 10, 0x03, 0x20];
        let data = RtpPacket::write(true, 101, 7, 1234, 99, &event);
        let p = RtpPacket::parse(&data).unwrap();
        assert!(p.marker);
        assert_eq!(
            (p.payload_type, p.sequence, p.timestamp, p.ssrc),
            (101, 7, 1234, 99)
        );
        let e = TelephoneEvent::parse(p.payload).unwrap();
        assert_eq!(e.key(), Some('#'));
        assert!(e.end);
        assert_eq!((e.volume, e.duration), (10, 800));
        assert_eq!(RtpPacket::parse(&data[..5]), Err(RtpError::Truncated));
        let mut rtcp = data.clone();
        rtcp[1] = 200;
        assert_eq!(RtpPacket::parse(&rtcp), Err(RtpError::Rtcp));
        // CSRC, extension and padding.
        let mut fancy = vec![0xb1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
        fancy.extend_from_slice(&[0, 0, 0, 4]); // CSRC
        fancy.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension, 1 word
        fancy.extend_from_slice(&[9, 9, 0, 2]); // payload 9 9 + 2 bytes of padding
        assert_eq!(RtpPacket::parse(&fancy).unwrap().payload, &[9, 9]);
    }

    #[test]
    fn event_packets_fold_into_digits() {
        let ev = |event, end, duration| TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        };
        let packets = [
            EventPacket {
                timestamp: 100,
                marker: true,
                event: ev(1, false, 160),
            },
            EventPacket {
                timestamp: 100,
                marker: false,
                event: ev(1, true, 960),
            },
            EventPacket {
                timestamp: 100,
                marker: false,
                event: ev(1, true, 960),
            },
            EventPacket {
                timestamp: 2000,
                marker: true,
                event: ev(5, false, 160),
            },
        ];
        let d = digits(&packets);
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].event, d[0].packets, d[0].ended, d[0].duration),
            (1, 3, true, 960)
        );
        assert!(d[0].marker);
        assert_eq!((d[1].event, d[1].ended), (5, false));
    }

    #[test]
    fn peer_learns_its_peer_and_answers_with_paced_tone() {
        let peer = RtpPeer::bind().unwrap();
        let port = peer.port();
        assert_eq!(port % 2, 0);
        let handle = peer.start(101, 440.0, -12.0);
        let far = UdpSocket::bind("127.0.0.1:0").unwrap();
        far.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let tone: Vec<u8> = sine(1000.0, 8000.0, FRAME_SAMPLES)
            .into_iter()
            .map(ulaw_encode)
            .collect();
        far.send_to(
            &RtpPacket::write(false, 0, 1, 0, 5, &tone),
            ("127.0.0.1", port),
        )
        .unwrap();
        far.send_to(
            &RtpPacket::write(true, 101, 2, 160, 5, &[5, 0x80, 0, 160]),
            ("127.0.0.1", port),
        )
        .unwrap();
        let mut frames = Vec::new();
        let mut buf = [0u8; 2048];
        let start = Instant::now();
        while frames.len() < 10 {
            let (len, _) = far.recv_from(&mut buf).unwrap();
            let p = RtpPacket::parse(&buf[..len]).unwrap();
            assert_eq!(p.payload_type, 0);
            frames.push(
                p.payload
                    .iter()
                    .map(|&b| ulaw_decode(b))
                    .collect::<Vec<_>>(),
            );
        }
        // 10 frames at 20 ms pacing take about 180 ms.
        assert!(
            start.elapsed() >= Duration::from_millis(150),
            "{:?}",
            start.elapsed()
        );
        let got = handle.stop();
        assert_eq!(got.peer, Some(far.local_addr().unwrap()));
        assert_eq!(got.audio.len(), 1);
        assert_eq!(digits(&got.events)[0].event, 5);
        let check = ToneCheck {
            target: 440.0,
            others: vec![1000.0],
            min_ratio_db: 20.0,
            min_level_dbfs: -20.0,
        };
        let report = check.run(frames.iter().map(Vec::as_slice));
        assert_eq!(report.frames_with_tone, 10, "{report}");
    }

    #[test]
    fn wav_has_a_pcm_header() {
        let path = std::env::temp_dir().join(format!("rtp-wav-{}.wav", std::process::id()));
        write_sine_wav(&path, 1000.0, -9.0, 48000, 1).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(&bytes[8..16], b"WAVEfmt ");
        assert_eq!(u16::from_le_bytes([bytes[20], bytes[21]]), 1);
        assert_eq!(u16::from_le_bytes([bytes[34], bytes[35]]), 16);
        assert_eq!(bytes.len(), 44 + 48000 * 2);
    }
}
