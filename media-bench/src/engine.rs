//! The generator's threads. Each shard owns some calls: per call a str0m `Rtc` playing the
//! browser (full ICE as controlling agent, DTLS client, SRTP) on its own UDP socket, and the
//! call's far end, which shares the shard's one plain-RTP socket with the shard's other far ends
//! (the bridge tells calls apart by its own ports; the stamp in each payload names the call).
//!
//! Pacing is a timer wheel, not a thread per call: the shard's calls are spread over
//! [`SLOTS`] slots 1 ms apart, and every 20 ms each slot sends one packet per direction for each
//! of its connected calls. How late a slot runs behind its schedule is recorded as the
//! generator's lag: when the generator cannot keep up, the step is generator-limited, not a
//! bridge failure.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use str0m::media::{Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Event, Input, Output, Rtc};

use crate::payload::{
    Clock, Direction, DirectionStats, Histogram, SeqWindow, Stamp, Window, PAYLOAD_LEN,
};

/// Slots of the timer wheel, one per millisecond of the 20 ms packet interval.
pub const SLOTS: usize = 20;
/// G.711 packet interval.
pub const PTIME: Duration = Duration::from_millis(20);
/// RTP header of the far end's packets (no CSRC, no extension).
const RTP_HEADER: usize = 12;
/// Token of a shard's far-end socket (callers use their index).
const FAR_END: Token = Token(usize::MAX - 1);

/// A call ready to run: signalling done, the caller's `Rtc` holding the bridge's answer.
#[derive(Debug)]
pub struct CallSetup {
    /// Index of the call in the run (carried in every stamp).
    pub index: u32,
    /// The caller.
    pub rtc: Rtc,
    /// The caller's audio m-line.
    pub mid: Mid,
    /// The caller's socket (non-blocking), the address in its ICE candidate.
    pub socket: std::net::UdpSocket,
    /// Where the bridge wants the far end's RTP.
    pub far_target: SocketAddr,
}

/// What the main thread and the shards share.
#[derive(Debug)]
pub struct Shared {
    /// The clock stamps are taken on.
    pub clock: Clock,
    window_start: AtomicU64,
    window_end: AtomicU64,
    /// No more media once set.
    pub stop_sending: AtomicBool,
    /// Shards return their reports once set.
    pub exit: AtomicBool,
    /// Calls whose caller finished ICE + DTLS.
    pub connected: AtomicUsize,
}

impl Shared {
    /// Nothing measured yet.
    pub fn new(clock: Clock) -> Self {
        Self {
            clock,
            window_start: AtomicU64::new(0),
            window_end: AtomicU64::new(0),
            stop_sending: AtomicBool::new(false),
            exit: AtomicBool::new(false),
            connected: AtomicUsize::new(0),
        }
    }

    /// Sets the measurement window.
    pub fn set_window(&self, window: Window) {
        self.window_end.store(window.end_ns, Ordering::Release);
        self.window_start.store(window.start_ns, Ordering::Release);
    }

    fn window(&self) -> Option<Window> {
        let start_ns = self.window_start.load(Ordering::Acquire);
        (start_ns != 0).then(|| Window {
            start_ns,
            end_ns: self.window_end.load(Ordering::Acquire),
        })
    }
}

/// What a shard measured.
#[derive(Debug, Default)]
pub struct ShardReport {
    /// Loss and latency per [`Direction`] (index).
    pub directions: [DirectionStats; 2],
    /// How late slots ran behind schedule inside the window, µs.
    pub lag: Histogram,
    /// Datagrams the generator failed to send (socket buffer full, errors).
    pub send_errors: u64,
    /// Packets that were not a stamped payload for the right call and direction.
    pub foreign: u64,
    /// Calls whose `Rtc` failed.
    pub failed: u64,
}

struct Call {
    index: u32,
    rtc: Rtc,
    mid: Mid,
    socket: UdpSocket,
    local: SocketAddr,
    far_target: SocketAddr,
    connected: bool,
    failed: bool,
    next_timeout: Instant,
    /// Stamp sequence per direction.
    stamp_seq: [u32; 2],
    /// Caller's RTP sequence (extended).
    rtp_seq: u64,
    far_ssrc: u32,
    seqs_in: [SeqWindow; 2],
}

struct Shard {
    shared: Arc<Shared>,
    calls: Vec<Call>,
    by_index: HashMap<u32, usize>,
    far: UdpSocket,
    report: ShardReport,
    buf: Vec<u8>,
    window: Option<Window>,
}

/// Runs one shard until [`Shared::exit`]: takes calls from `calls`, drives them, paces media.
pub fn run_shard(
    shared: Arc<Shared>,
    calls: Receiver<CallSetup>,
    far: std::net::UdpSocket,
) -> std::io::Result<ShardReport> {
    let mut poll = Poll::new()?;
    let mut far = UdpSocket::from_std(far);
    poll.registry()
        .register(&mut far, FAR_END, Interest::READABLE)?;
    let mut shard = Shard {
        shared,
        calls: Vec::new(),
        by_index: HashMap::new(),
        far,
        report: ShardReport::default(),
        buf: vec![0u8; 2048],
        window: None,
    };
    let mut events = Events::with_capacity(1024);
    let start = Instant::now();
    let mut due: [Instant; SLOTS] =
        std::array::from_fn(|k| start + Duration::from_millis(k as u64));
    let mut slots: Vec<Vec<usize>> = vec![Vec::new(); SLOTS];
    while !shard.shared.exit.load(Ordering::Acquire) {
        while let Ok(setup) = calls.try_recv() {
            let local_index = shard.calls.len();
            let mut socket = UdpSocket::from_std(setup.socket);
            poll.registry()
                .register(&mut socket, Token(local_index), Interest::READABLE)?;
            let local = socket.local_addr()?;
            shard.calls.push(Call {
                index: setup.index,
                rtc: setup.rtc,
                mid: setup.mid,
                socket,
                local,
                far_target: setup.far_target,
                connected: false,
                failed: false,
                next_timeout: Instant::now(),
                stamp_seq: [0; 2],
                rtp_seq: 1,
                far_ssrc: 0x4d42_0000 ^ setup.index,
                seqs_in: [SeqWindow::default(), SeqWindow::default()],
            });
            shard.by_index.insert(setup.index, local_index);
            slots[local_index % SLOTS].push(local_index);
            shard.timeout(local_index, Instant::now());
        }
        shard.window = shard.shared.window();
        let now = Instant::now();
        let next = due.iter().min().copied().unwrap_or(now);
        match poll.poll(&mut events, Some(next.saturating_duration_since(now))) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            match event.token() {
                FAR_END => shard.receive_far(),
                Token(i) => shard.receive_caller(i),
            }
        }
        let now = Instant::now();
        let sending = !shard.shared.stop_sending.load(Ordering::Acquire);
        for (slot, due_at) in due.iter_mut().enumerate() {
            if *due_at > now {
                continue;
            }
            if let Some(w) = &shard.window {
                if w.contains(shard.shared.clock.ns(*due_at)) {
                    shard
                        .report
                        .lag
                        .add(now.duration_since(*due_at).as_micros() as u64);
                }
            }
            *due_at += PTIME;
            for &i in &slots[slot] {
                let now = Instant::now();
                if now >= shard.calls[i].next_timeout {
                    shard.timeout(i, now);
                }
                if sending && shard.calls[i].connected && !shard.calls[i].failed {
                    shard.send_media(i);
                }
            }
        }
    }
    shard.report.failed = shard.calls.iter().filter(|c| c.failed).count() as u64;
    Ok(shard.report)
}

impl Shard {
    fn timeout(&mut self, i: usize, now: Instant) {
        let call = &mut self.calls[i];
        if call.failed {
            return;
        }
        if call.rtc.handle_input(Input::Timeout(now)).is_err() {
            call.failed = true;
            return;
        }
        self.drain(i);
    }

    /// Handles everything the caller's `Rtc` has to say.
    fn drain(&mut self, i: usize) {
        let call = &mut self.calls[i];
        loop {
            match call.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    call.next_timeout = at;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    if call.socket.send_to(&t.contents, t.destination).is_err() {
                        self.report.send_errors += 1;
                    }
                }
                Ok(Output::Event(Event::Connected)) => {
                    if !call.connected {
                        call.connected = true;
                        self.shared.connected.fetch_add(1, Ordering::AcqRel);
                    }
                }
                Ok(Output::Event(Event::RtpPacket(packet))) => {
                    let now_ns = self.shared.clock.ns(Instant::now());
                    match Stamp::read(&packet.payload) {
                        Some(stamp)
                            if stamp.call == call.index
                                && stamp.direction == Direction::ToCaller =>
                        {
                            self.report.directions[Direction::ToCaller.index()].on_receive(
                                self.window.as_ref(),
                                &mut call.seqs_in[Direction::ToCaller.index()],
                                &stamp,
                                now_ns,
                            );
                        }
                        _ => self.report.foreign += 1,
                    }
                }
                Ok(Output::Event(_)) => {}
                Err(_) => {
                    call.failed = true;
                    return;
                }
            }
        }
    }

    fn receive_caller(&mut self, i: usize) {
        if i >= self.calls.len() {
            return;
        }
        loop {
            let (n, source) = match self.calls[i].socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(_) => return, // WouldBlock: drained (other errors: ICMP noise, retried later)
            };
            let call = &mut self.calls[i];
            if call.failed {
                continue;
            }
            let Ok(receive) = Receive::new(Protocol::Udp, source, call.local, &self.buf[..n])
            else {
                self.report.foreign += 1;
                continue;
            };
            if call
                .rtc
                .handle_input(Input::Receive(Instant::now(), receive))
                .is_err()
            {
                // Input str0m refuses (e.g. a stray datagram) is not fatal for the call.
                self.report.foreign += 1;
                continue;
            }
            self.drain(i);
        }
    }

    fn receive_far(&mut self) {
        loop {
            let n = match self.far.recv_from(&mut self.buf) {
                Ok((n, _)) => n,
                Err(_) => return,
            };
            let now_ns = self.shared.clock.ns(Instant::now());
            let stamp = rtp_payload(&self.buf[..n]).and_then(Stamp::read);
            let call = stamp
                .filter(|s| s.direction == Direction::ToFarEnd)
                .and_then(|s| Some((s, *self.by_index.get(&s.call)?)));
            match call {
                Some((stamp, i)) => self.report.directions[Direction::ToFarEnd.index()].on_receive(
                    self.window.as_ref(),
                    &mut self.calls[i].seqs_in[Direction::ToFarEnd.index()],
                    &stamp,
                    now_ns,
                ),
                // RTCP from the bridge, or anything else: not measured.
                None => self.report.foreign += 1,
            }
        }
    }

    /// One packet each way for call `i`.
    fn send_media(&mut self, i: usize) {
        let clock = self.shared.clock;
        // Caller -> bridge: SRTP through str0m.
        let call = &mut self.calls[i];
        let up = Direction::ToFarEnd.index();
        let now = Instant::now();
        let stamp = Stamp {
            call: call.index,
            direction: Direction::ToFarEnd,
            seq: call.stamp_seq[up],
            sent_ns: clock.ns(now),
        };
        call.stamp_seq[up] = call.stamp_seq[up].wrapping_add(1);
        let seq = call.rtp_seq;
        call.rtp_seq += 1;
        let written = call
            .rtc
            .direct_api()
            .stream_tx_by_mid(call.mid, None)
            .map(|tx| {
                tx.write_rtp(RtpWrite::new(
                    Pt::from(0),
                    seq.into(),
                    (seq as u32).wrapping_mul(PAYLOAD_LEN as u32),
                    now,
                    stamp.payload().to_vec(),
                ));
            })
            .is_some();
        if written {
            self.report.directions[up].on_send(self.window.as_ref(), stamp.sent_ns);
            self.drain(i);
        } else {
            self.report.send_errors += 1;
        }
        // Far end -> bridge: plain RTP from the shard's shared socket.
        let call = &mut self.calls[i];
        let down = Direction::ToCaller.index();
        let now = Instant::now();
        let stamp = Stamp {
            call: call.index,
            direction: Direction::ToCaller,
            seq: call.stamp_seq[down],
            sent_ns: clock.ns(now),
        };
        call.stamp_seq[down] = call.stamp_seq[down].wrapping_add(1);
        let mut packet = [0u8; RTP_HEADER + PAYLOAD_LEN];
        packet[0] = 0x80;
        packet[1] = 0; // PCMU
        packet[2..4].copy_from_slice(&(stamp.seq as u16).to_be_bytes());
        packet[4..8].copy_from_slice(&stamp.seq.wrapping_mul(PAYLOAD_LEN as u32).to_be_bytes());
        packet[8..12].copy_from_slice(&call.far_ssrc.to_be_bytes());
        packet[RTP_HEADER..].copy_from_slice(&stamp.payload());
        match self.far.send_to(&packet, call.far_target) {
            Ok(_) => self.report.directions[down].on_send(self.window.as_ref(), stamp.sent_ns),
            Err(_) => self.report.send_errors += 1,
        }
    }
}

/// The payload of a plain RTP packet (PCMU only), or `None` for anything else (RTCP, junk).
pub fn rtp_payload(packet: &[u8]) -> Option<&[u8]> {
    let first = *packet.first()?;
    if first >> 6 != 2 || packet.get(1)? & 0x7f != 0 {
        return None;
    }
    let mut start = RTP_HEADER + 4 * usize::from(first & 0x0f);
    if first & 0x10 != 0 {
        let words = u16::from_be_bytes([*packet.get(start + 2)?, *packet.get(start + 3)?]);
        start += 4 + 4 * usize::from(words);
    }
    let mut end = packet.len();
    if first & 0x20 != 0 {
        end = end.checked_sub(usize::from(*packet.last()?))?;
    }
    packet.get(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rtp_payload_skips_csrcs_and_extensions_and_drops_padding() {
        let payload = [7u8; 4];
        let mut plain = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4];
        plain.extend_from_slice(&payload);
        assert_eq!(rtp_payload(&plain), Some(&payload[..]));
        // One CSRC, a one-word extension, two bytes of padding.
        let mut fancy = vec![0xb1, 0, 0, 1, 0, 0, 0, 160, 1, 2, 3, 4, 9, 9, 9, 9];
        fancy.extend_from_slice(&[0xbe, 0xde, 0, 1, 5, 5, 5, 5]);
        fancy.extend_from_slice(&payload);
        fancy.extend_from_slice(&[0, 2]);
        assert_eq!(rtp_payload(&fancy), Some(&payload[..]));
    }

    #[test]
    fn rtcp_other_payload_types_and_junk_are_not_payloads() {
        assert_eq!(rtp_payload(&[0x81, 0xc8, 0, 6, 0, 0, 0, 0]), None); // RTCP SR
        assert_eq!(
            rtp_payload(&[0x80, 8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
            None
        ); // PCMA
        assert_eq!(rtp_payload(&[]), None);
        assert_eq!(rtp_payload(&[0x90, 0, 0, 1]), None);
        assert_eq!(
            rtp_payload(&[0xa0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 200]),
            None
        );
    }
}
