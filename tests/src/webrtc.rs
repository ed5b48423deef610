//! A browser's WebRTC media without a browser: str0m (full ICE, DTLS-SRTP, PCMU) on a loopback
//! socket, for end-to-end tests of bridged calls through the edge and a media node.
//!
//! [`BrowserMedia::offer`] makes the WebRTC offer a SIP-over-WebSocket client puts in its INVITE;
//! [`BrowserMedia::start`] applies the answer (from a 18x or the 2xx) and runs the media on a
//! thread: once ICE and DTLS are up it sends a PCMU packet every 20 ms and counts the RTP packets it
//! receives. The [`MediaFlow`] it returns stops the thread when dropped.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

/// Why the browser's media could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    /// The loopback socket.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// str0m refused the offer or the answer.
    #[error("WebRTC: {0}")]
    Rtc(String),
}

/// The browser's side of the media before the answer: its engine, socket and pending offer.
pub struct BrowserMedia {
    rtc: Rtc,
    socket: UdpSocket,
    addr: SocketAddr,
    mid: Mid,
    pending: SdpPendingOffer,
}

impl std::fmt::Debug for BrowserMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserMedia")
            .field("addr", &self.addr)
            .field("mid", &self.mid)
            .finish_non_exhaustive()
    }
}

impl BrowserMedia {
    /// A WebRTC offer (audio, PCMU only, one host candidate on a fresh 127.0.0.1 socket) and the
    /// media waiting for its answer.
    pub fn offer() -> Result<(Self, String), WebRtcError> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.set_read_timeout(Some(Duration::from_millis(5)))?;
        let addr = socket.local_addr()?;
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_pcmu(true, false)
            .build(Instant::now());
        let candidate =
            Candidate::host(addr, "udp").map_err(|e| WebRtcError::Rtc(e.to_string()))?;
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| WebRtcError::Rtc("str0m made no offer".into()))?;
        let sdp = offer.to_sdp_string();
        Ok((
            Self {
                rtc,
                socket,
                addr,
                mid,
                pending,
            },
            sdp,
        ))
    }

    /// Applies the answer and runs the media on a thread until the returned flow is dropped.
    pub fn start(mut self, answer: &str) -> Result<MediaFlow, WebRtcError> {
        let answer = SdpAnswer::from_sdp_string(answer)
            .map_err(|e| WebRtcError::Rtc(format!("the answer is not SDP: {e}")))?;
        self.rtc
            .sdp_api()
            .accept_answer(self.pending, answer)
            .map_err(|e| WebRtcError::Rtc(format!("answer not accepted: {e}")))?;
        let shared = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (counters, halt) = (shared.clone(), stop.clone());
        let (rtc, socket, addr, mid) = (self.rtc, self.socket, self.addr, self.mid);
        let thread = std::thread::spawn(move || run(rtc, &socket, addr, mid, &counters, &halt));
        Ok(MediaFlow {
            counters: shared,
            stop,
            thread: Some(thread),
        })
    }
}

#[derive(Debug, Default)]
struct Counters {
    received: AtomicU64,
    sent: AtomicU64,
    connected: AtomicBool,
    last_payload: Mutex<Vec<u8>>,
}

fn run(
    mut rtc: Rtc,
    socket: &UdpSocket,
    addr: SocketAddr,
    mid: Mid,
    counters: &Counters,
    halt: &AtomicBool,
) {
    let mut buf = [0u8; 2048];
    let mut seq = 0u64;
    let mut last_send = Instant::now();
    while !halt.load(Ordering::Relaxed) {
        loop {
            match rtc.poll_output() {
                Ok(Output::Timeout(_)) => break,
                Ok(Output::Transmit(t)) => {
                    let _ = socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(Event::RtpPacket(packet))) => {
                    counters.received.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut last) = counters.last_payload.lock() {
                        last.clear();
                        last.extend_from_slice(&packet.payload);
                    }
                }
                Ok(Output::Event(Event::Connected)) => {
                    counters.connected.store(true, Ordering::Relaxed);
                }
                Ok(Output::Event(_)) => {}
                Err(_) => return,
            }
        }
        let input = match socket.recv_from(&mut buf) {
            Ok((len, source)) => match Receive::new(Protocol::Udp, source, addr, &buf[..len]) {
                Ok(r) => Input::Receive(Instant::now(), r),
                Err(_) => continue,
            },
            Err(_) => Input::Timeout(Instant::now()),
        };
        if rtc.handle_input(input).is_err() {
            return;
        }
        if rtc.is_connected() && last_send.elapsed() >= Duration::from_millis(20) {
            seq += 1;
            last_send = Instant::now();
            let mut api = rtc.direct_api();
            if let Some(tx) = api.stream_tx_by_mid(mid, None) {
                tx.write_rtp(RtpWrite::new(
                    Pt::from(0),
                    seq.into(),
                    (seq as u32).wrapping_mul(160),
                    Instant::now(),
                    vec![0xff; 160],
                ));
                counters.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The browser media of one call, stopped when dropped.
#[derive(Debug)]
pub struct MediaFlow {
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MediaFlow {
    /// RTP packets received (decrypted) so far.
    pub fn received(&self) -> u64 {
        self.counters.received.load(Ordering::Relaxed)
    }

    /// RTP packets handed to str0m to send so far.
    pub fn sent(&self) -> u64 {
        self.counters.sent.load(Ordering::Relaxed)
    }

    /// Whether ICE and DTLS came up.
    pub fn connected(&self) -> bool {
        self.counters.connected.load(Ordering::Relaxed)
    }

    /// The payload of the last RTP packet received (empty before the first).
    pub fn last_payload(&self) -> Vec<u8> {
        self.counters
            .last_payload
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }
}

impl Drop for MediaFlow {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
