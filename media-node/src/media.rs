//! The media IO shell: one thread owns the [`Bridge`] core and every UDP socket (the multiplexed
//! media port and the upstream RTP/RTCP pairs), polls them with `mio`, feeds datagrams and time
//! to the core and sends what it returns. Control calls arrive as [`Command`]s over a channel
//! with a waker. Per packet: no lock, no task, no allocation in this loop.
//!
//! System calls are what a packet costs most here, so they are batched ([`crate::udp_batch`]):
//! each readable socket is read with `recvmmsg` (up to 32 datagrams a call, and no extra call to
//! learn that it is empty), and datagrams for browsers, which all leave from the one media
//! socket, go out with one `sendmmsg` per wakeup (or per 32). Datagrams for upstreams leave
//! at once, one `sendto` each: every call has its own socket.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use shared::control::report::CallRecord;
use shared::control::{
    AllocateInbound, AllocateInboundResponse, AllocateRequest, AllocateResponse, ApplyAnswer,
    ApplyAnswerResponse, ApplyBrowserAnswer, ApplyBrowserAnswerResponse, ControlError, Renegotiate,
    RenegotiateResponse, SessionId, SessionStats, UpstreamReoffer, UpstreamReofferResponse,
};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use crate::bridge::{Bridge, BridgeConfig, BridgeEvent, BridgeMetrics, EndReason, PortBinder};
use crate::demux::{self, PacketKind};
use crate::dtls::NodeCertificate;
use crate::report::records::FinishedCalls;
use crate::udp_batch::{self, RecvBatch, SendBatch, BATCH};

const MEDIA: Token = Token(0);
const WAKER: Token = Token(1);
/// Tokens of RTP/RTCP sockets are this plus the port.
const PORT_TOKEN_BASE: usize = 16;

/// Counters of datagrams seen on the media socket (shared with reports and tests).
#[derive(Debug, Default)]
pub struct MediaStats {
    packets: AtomicU64,
    bytes: AtomicU64,
    by_kind: [AtomicU64; PacketKind::ALL.len()],
    active_sessions: AtomicUsize,
}

impl MediaStats {
    /// Counts one datagram of `len` bytes of `kind`.
    pub fn record(&self, kind: PacketKind, len: usize) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes
            .fetch_add(u64::try_from(len).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.by_kind[kind.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Datagrams received on the media port.
    pub fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    /// Bytes received on the media port.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Datagrams received of `kind`.
    pub fn packets_of(&self, kind: PacketKind) -> u64 {
        self.by_kind[kind.index()].load(Ordering::Relaxed)
    }

    /// Sessions in progress.
    pub fn active_sessions(&self) -> usize {
        self.active_sessions.load(Ordering::Relaxed)
    }
}

type Reply<T> = oneshot::Sender<Result<T, ControlError>>;

/// A control call for the media thread.
#[derive(Debug)]
pub enum Command {
    /// [`Bridge::allocate`].
    Allocate(AllocateRequest, Reply<AllocateResponse>),
    /// [`Bridge::apply_answer`].
    Answer(ApplyAnswer, Reply<ApplyAnswerResponse>),
    /// [`Bridge::allocate_inbound`].
    AllocateInbound(AllocateInbound, Reply<AllocateInboundResponse>),
    /// [`Bridge::apply_browser_answer`].
    BrowserAnswer(ApplyBrowserAnswer, Reply<ApplyBrowserAnswerResponse>),
    /// [`Bridge::renegotiate`].
    Renegotiate(Renegotiate, Reply<RenegotiateResponse>),
    /// [`Bridge::upstream_reoffer`].
    UpstreamReoffer(UpstreamReoffer, Reply<UpstreamReofferResponse>),
    /// [`Bridge::release`].
    Release(SessionId, Reply<SessionStats>),
    /// [`Bridge::stats`].
    Stats(SessionId, Reply<SessionStats>),
    /// [`Bridge::metrics`]: a snapshot for a `/metrics` scrape, built between packets.
    Metrics(Reply<BridgeMetrics>),
    /// Take no new sessions.
    Drain,
    /// End every session left (reason `shutdown`), then the thread.
    Stop,
}

/// Sends [`Command`]s to the media thread (cheap to clone).
#[derive(Debug, Clone)]
pub struct MediaHandle {
    commands: mpsc::Sender<Command>,
    waker: Arc<Waker>,
}

impl MediaHandle {
    /// Queues `command` and wakes the media thread. False if the thread is gone.
    pub fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok() && self.waker.wake().is_ok()
    }

    /// Runs a call on the media thread and waits for its answer.
    pub async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, ControlError> {
        let (tx, rx) = oneshot::channel();
        if !self.send(make(tx)) {
            return Err(ControlError::Draining);
        }
        rx.await.unwrap_or(Err(ControlError::Draining))
    }
}

/// How the media thread runs (not the bridge's business).
#[derive(Debug, Clone, Copy)]
pub struct ShellOptions {
    /// See `Config::batch_wait_us`: a wakeup that moved packets lasts at least this long.
    pub batch_wait: Duration,
    /// Receive/send buffer asked for the media socket.
    pub socket_buffer: usize,
}

impl Default for ShellOptions {
    fn default() -> Self {
        Self {
            batch_wait: Duration::ZERO,
            socket_buffer: 4 * 1024 * 1024,
        }
    }
}

/// Starts the media thread on an already bound media socket. The record of every session
/// that ends goes to `finished`, if given (the reporter's queue).
pub fn spawn(
    media: std::net::UdpSocket,
    config: BridgeConfig,
    options: ShellOptions,
    stats: Arc<MediaStats>,
    finished: Option<Arc<FinishedCalls>>,
) -> io::Result<(MediaHandle, thread::JoinHandle<()>)> {
    media.set_nonblocking(true)?;
    match udp_batch::set_buffers(media.as_raw_fd(), options.socket_buffer) {
        Ok((rcv, snd)) => {
            if rcv < options.socket_buffer {
                warn!(
                    asked = options.socket_buffer,
                    granted = rcv,
                    "the media socket's receive buffer is smaller than configured; raise \
                     net.core.rmem_max (sysctl) or lower media_socket_buffer_bytes"
                );
            }
            debug!(receive = rcv, send = snd, "media socket buffers");
        }
        Err(e) => warn!(error = %e, "could not size the media socket's buffers"),
    }
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let mut media = UdpSocket::from_std(media);
    poll.registry()
        .register(&mut media, MEDIA, Interest::READABLE)?;
    let (tx, rx) = mpsc::channel();
    let local = media.local_addr()?;
    let (bind_ip, media_port) = (local.ip(), local.port());
    let registry = poll.registry().try_clone()?;
    let certificate = NodeCertificate::generate().map_err(io::Error::other)?;
    let thread = thread::Builder::new().name("media".into()).spawn(move || {
        let mut shell = Shell {
            poll,
            media,
            sockets: Sockets {
                registry,
                bind_ip,
                pairs: HashMap::new(),
            },
            bridge: Bridge::new(config, certificate),
            stats,
            finished,
            commands: rx,
            recv: Box::default(),
            to_browsers: Box::default(),
            media_port,
            batch_wait: options.batch_wait,
        };
        shell.run();
    })?;
    Ok((
        MediaHandle {
            commands: tx,
            waker,
        },
        thread,
    ))
}

/// The upstream sockets, by port (RTP on even ports, RTCP on the odd one above).
struct Sockets {
    registry: Registry,
    bind_ip: IpAddr,
    pairs: HashMap<u16, UdpSocket>,
}

impl Sockets {
    fn bind_one(&mut self, port: u16) -> io::Result<UdpSocket> {
        let mut socket = UdpSocket::bind(SocketAddr::new(self.bind_ip, port))?;
        self.registry.register(
            &mut socket,
            Token(PORT_TOKEN_BASE + usize::from(port)),
            Interest::READABLE,
        )?;
        Ok(socket)
    }
}

impl PortBinder for Sockets {
    fn bind_pair(&mut self, rtp_port: u16) -> bool {
        let Ok(rtp) = self.bind_one(rtp_port) else {
            return false;
        };
        match self.bind_one(rtp_port + 1) {
            Ok(rtcp) => {
                self.pairs.insert(rtp_port, rtp);
                self.pairs.insert(rtp_port + 1, rtcp);
                true
            }
            Err(e) => {
                debug!(port = rtp_port + 1, error = %e, "RTCP port unavailable; skipping pair");
                let mut rtp = rtp;
                let _ = self.registry.deregister(&mut rtp);
                false
            }
        }
    }

    fn close_pair(&mut self, rtp_port: u16) {
        for port in [rtp_port, rtp_port + 1] {
            if let Some(mut socket) = self.pairs.remove(&port) {
                let _ = self.registry.deregister(&mut socket);
            }
        }
    }
}

struct Shell {
    poll: Poll,
    media: UdpSocket,
    sockets: Sockets,
    bridge: Bridge,
    stats: Arc<MediaStats>,
    finished: Option<Arc<FinishedCalls>>,
    commands: mpsc::Receiver<Command>,
    /// Where `recvmmsg` writes a batch (boxed: 64 KiB).
    recv: Box<RecvBatch>,
    /// Datagrams for browsers, sent from the media socket with one `sendmmsg` per batch.
    to_browsers: Box<SendBatch>,
    /// The media socket's port (transmits from it are for browsers).
    media_port: u16,
    /// A wakeup that moved packets lasts at least this long ([`ShellOptions::batch_wait`]).
    batch_wait: Duration,
}

impl Shell {
    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        let media_port = self.media_port;
        loop {
            let timeout = self
                .bridge
                .poll_timeout()
                .map(|at| at.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    warn!(error = %e, "media poll failed");
                }
                continue;
            }
            let woke = Instant::now();
            let moved_packets = events.iter().any(|e| e.token() != WAKER);
            for event in &events {
                match event.token() {
                    WAKER => {}
                    MEDIA => self.drain_socket(None, media_port),
                    Token(t) => {
                        if let Ok(port) = u16::try_from(t - PORT_TOKEN_BASE) {
                            self.drain_socket(Some(port), port);
                        }
                    }
                }
            }
            while let Ok(command) = self.commands.try_recv() {
                if !self.command(command) {
                    return;
                }
            }
            let now = Instant::now();
            if self.bridge.poll_timeout().is_some_and(|at| at <= now) {
                self.bridge.handle_timeout(now);
            }
            self.flush();
            if moved_packets && !self.batch_wait.is_zero() {
                // Interrupt moderation, as NICs do it: what arrives meanwhile waits in the
                // socket buffers and is handled in the next wakeup's batch, so a busy node
                // pays the wakeup and the system calls once per batch, not per packet. A
                // timer of the core that falls due sooner still ends the wait.
                let until = woke + self.batch_wait;
                let until = self.bridge.poll_timeout().map_or(until, |t| t.min(until));
                let now = Instant::now();
                if until > now {
                    thread::sleep(until - now);
                }
            }
        }
    }

    /// Reads every datagram waiting on one socket (`None`: the media socket), a batch per
    /// system call, and queues what the core answers.
    fn drain_socket(&mut self, rtp_port: Option<u16>, port: u16) {
        let fd = match rtp_port {
            None => self.media.as_raw_fd(),
            Some(p) => match self.sockets.pairs.get(&p) {
                Some(socket) => socket.as_raw_fd(),
                None => return,
            },
        };
        // The core knows its sockets by advertised address; only the port matters.
        let destination = SocketAddr::new(self.sockets.bind_ip, port);
        let mut errors = 0;
        loop {
            let received = match self.recv.recv(fd) {
                Ok(n) => n,
                // ICMP errors from earlier sends surface here, once each; the socket stays
                // usable, so read on (but never spin on a socket that keeps failing).
                Err(e) => {
                    debug!(port, error = %e, "media receive error");
                    errors += 1;
                    if errors > 4 {
                        return;
                    }
                    continue;
                }
            };
            let now = Instant::now();
            for i in 0..received {
                let Some((data, source)) = self.recv.get(i) else {
                    continue;
                };
                if rtp_port.is_none() {
                    self.stats.record(demux::classify(data), data.len());
                }
                self.bridge.handle_receive(now, source, destination, data);
            }
            self.pump();
            // Fewer than a batch: the socket was empty when the call returned.
            if received < BATCH {
                return;
            }
        }
    }

    /// Takes what the core queued: datagrams for browsers join the media socket's batch,
    /// datagrams for upstreams go out at once from their call's socket; then the core's events.
    fn pump(&mut self) {
        while let Some(t) = self.bridge.poll_transmit() {
            let port = t.source.port();
            if port == self.media_port {
                if self.to_browsers.is_full() {
                    self.to_browsers.flush(self.media.as_raw_fd());
                }
                self.to_browsers.push(t.destination, t.contents);
            } else if let Some(socket) = self.sockets.pairs.get(&port) {
                // A full send buffer drops the datagram, as the network would.
                if let Err(e) = socket.send_to(t.contents, t.destination) {
                    debug!(error = %e, destination = %t.destination, "media send failed");
                }
            }
        }
        while let Some(event) = self.bridge.poll_event() {
            let BridgeEvent::Ended {
                session_id,
                call_id,
                duration,
                reason,
                rtp_port,
                stats,
            } = event;
            if let Some(port) = rtp_port {
                self.sockets.close_pair(port);
            }
            if let Some(finished) = &self.finished {
                finished.push(CallRecord {
                    session_id: session_id.as_str().to_owned(),
                    call_id,
                    duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
                    end_reason: reason.as_str().to_owned(),
                    stats,
                });
            }
        }
        self.stats
            .active_sessions
            .store(self.bridge.active(), Ordering::Relaxed);
    }

    /// [`Shell::pump`], then sends the browsers' batch.
    fn flush(&mut self) {
        self.pump();
        if !self.to_browsers.is_empty() {
            let sent = self.to_browsers.flush(self.media.as_raw_fd());
            if sent.dropped > 0 {
                debug!(dropped = sent.dropped, "media sends refused");
            }
        }
    }

    /// Carries out one control call; false to stop the thread.
    fn command(&mut self, command: Command) -> bool {
        let now = Instant::now();
        match command {
            Command::Allocate(request, reply) => {
                let _ = reply.send(self.bridge.allocate(now, &request, &mut self.sockets));
            }
            Command::Answer(request, reply) => {
                let _ = reply.send(self.bridge.apply_answer(now, &request));
            }
            Command::AllocateInbound(request, reply) => {
                let result = self
                    .bridge
                    .allocate_inbound(now, &request, &mut self.sockets);
                let _ = reply.send(result);
            }
            Command::BrowserAnswer(request, reply) => {
                let _ = reply.send(self.bridge.apply_browser_answer(now, &request));
            }
            Command::Renegotiate(request, reply) => {
                let _ = reply.send(self.bridge.renegotiate(now, &request));
            }
            Command::UpstreamReoffer(request, reply) => {
                let _ = reply.send(self.bridge.upstream_reoffer(now, &request));
            }
            Command::Release(id, reply) => {
                let _ = reply.send(self.bridge.release(now, &id));
            }
            Command::Stats(id, reply) => {
                let _ = reply.send(self.bridge.stats(now, &id));
            }
            Command::Metrics(reply) => {
                let _ = reply.send(Ok(self.bridge.metrics(now)));
            }
            Command::Drain => self.bridge.set_draining(true),
            Command::Stop => {
                self.bridge.end_all(now, EndReason::Shutdown);
                self.flush();
                return false;
            }
        }
        self.flush();
        true
    }
}
