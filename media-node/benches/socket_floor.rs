//! `cargo bench -p media-node --bench socket_floor`: the kernel floor of a media bridge's UDP
//! path on this machine. A forwarder thread moves datagrams between browsers and upstreams on
//! loopback and does no user-space work at all: no SRTP, no RTP parsing, only an array index
//! to find the call. What its thread still spends per forwarded packet is what the sockets, the
//! system calls and the kernel's UDP stack cost. No bridge built on sockets can forward a
//! packet for less, so this answers "could any socket-based bridge reach X microseconds per
//! packet here?" before anyone tunes the crypto or the core (see `bridge_path` for those).
//!
//! Two forwarder modes:
//!
//! - `ours`: the media node's socket pattern (`src/media.rs`). Browsers share one multiplexed
//!   media socket, read with `recvmmsg` batches; datagrams to browsers are queued and leave
//!   with one `sendmmsg` per wakeup (or per 32). Every call has its own upstream socket,
//!   registered in epoll, drained with `recvmmsg` when readable (usually one datagram), and
//!   datagrams to the upstream leave from it with one `sendto` each.
//! - `single`: the best case for any socket design. The upstream side is also one multiplexed
//!   socket, so both directions are `recvmmsg` in and `sendmmsg` out, in batches.
//!
//! Both run the node's loop: epoll wait, drain the ready sockets, flush the batch, then
//! "interrupt moderation": a wakeup that moved packets lasts at least `batch_wait` (500 us
//! unless `SOCKET_FLOOR_BATCH_WAIT_US` says otherwise), so what arrives meanwhile waits in the
//! socket buffers and is read in the next wakeup's batch.
//!
//! A peer plays both far ends: for each of N calls a browser socket and an upstream socket,
//! each sending one 172-byte datagram (a 12-byte RTP-like header and 160 bytes of payload) every
//! 20 ms toward the forwarder, so every call forwards 100 packets a second, 50 each way. One
//! peer thread sends on that paced schedule, the calls spread evenly over the 20 ms (real calls
//! are out of phase; one burst of all of them would give the forwarder unrealistically large
//! batches); another sleeps in epoll over all 2N sockets, as a
//! real far end does, and counts what comes back and how long it took (send time and sequence
//! number are stamped in the payload). Two peer threads rather than one, so that reading the
//! answers never waits behind the sends.
//!
//! The forwarder's CPU time over the window comes from `CLOCK_THREAD_CPUTIME_ID`, split into user
//! and system time by the thread's `utime` and `stime` in `/proc/self/task/<tid>/stat` (those
//! are sampled at clock ticks, so the split is coarse on short windows). On
//! loopback the thread that sends a datagram also runs its delivery into the receiving socket
//! (including waking the receiver), so the forwarder pays its own receives and sends plus the
//! delivery of what it sends: roughly what a real node pays for the receive path from the NIC
//! and the send path to it. (This counts only when the kernel does not account softirq time
//! apart, i.e. without `CONFIG_IRQ_TIME_ACCOUNTING`.) The peer runs on the same machine and
//! competes for the same cores, so run it on an otherwise idle machine.
//!
//! Settings (environment): `SOCKET_FLOOR_CALLS` (comma-separated call counts, default
//! `200,400`), `SOCKET_FLOOR_SECS` (measured window after a 2 s warm-up, default 10),
//! `SOCKET_FLOOR_BATCH_WAIT_US` (default 500, 0 to turn moderation off) and
//! `SOCKET_FLOOR_MODES` (default `ours,single`).
//!
//! It prints one line per mode and call count (CPU per forwarded packet, the calls one core
//! could carry at that cost, what the peer saw, and how many packets a wakeup moved), and
//! asserts only sanity: packets were forwarded and the peer lost almost none. Socket errors
//! are counted and printed where they happen, never a panic; a run whose sockets cannot be set
//! up is reported and fails the sanity check at the end.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use media_node::udp_batch::{self, RecvBatch, SendBatch, BATCH};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

/// Each call sends one datagram per direction this often.
const TICK: Duration = Duration::from_millis(20);
/// 12-byte RTP-like header + 160 bytes (20 ms of G.711).
const DATAGRAM_LEN: usize = 172;
const HEADER_LEN: usize = 12;
/// Before the window: sockets, caches and schedulers settle.
const WARM_UP: Duration = Duration::from_secs(2);
/// After the window: the forwarder delivers what is in flight and the peer collects it.
const DRAIN: Duration = Duration::from_millis(300);
/// Receive and send buffers of the forwarder's multiplexed sockets (as the node's default).
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;
/// The longest a thread sleeps in epoll before it looks at the phase again.
const POLL_TIMEOUT: Duration = Duration::from_millis(20);
/// Peer loss above this fails the bench (a fraction of the datagrams sent in the window).
const LOSS_TOLERANCE: f64 = 0.001;
/// No call has this index.
const NO_CALL: u32 = u32::MAX;
/// The forwarder's media socket; upstream socket `i` is token `1 + i` (`single`: token 1).
const MEDIA: Token = Token(0);

/// Phases of one run, advanced by the main thread and read by the others.
const WARMING: u8 = 0;
const WINDOW: u8 = 1;
const DRAINING: u8 = 2;
const STOP: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// One media socket (recvmmsg/sendmmsg) and a socket per call (recvmmsg/sendto).
    Ours,
    /// One multiplexed socket per side, batches both ways.
    Single,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Single => "single",
        }
    }
}

#[derive(Debug)]
struct Settings {
    calls: Vec<usize>,
    window: Duration,
    batch_wait: Duration,
    modes: Vec<Mode>,
}

impl Settings {
    fn from_env() -> Self {
        let calls = env_list("SOCKET_FLOOR_CALLS", "200,400")
            .iter()
            .map(|n| match n.parse::<usize>() {
                Ok(n) if n > 0 => n,
                _ => panic!("SOCKET_FLOOR_CALLS: {n:?} is not a positive call count"),
            })
            .collect();
        let secs: f64 = env_parse("SOCKET_FLOOR_SECS", 10.0);
        assert!(
            secs.is_finite() && secs > 0.0,
            "SOCKET_FLOOR_SECS must be positive"
        );
        let batch_wait_us: u64 = env_parse("SOCKET_FLOOR_BATCH_WAIT_US", 500);
        let modes = env_list("SOCKET_FLOOR_MODES", "ours,single")
            .iter()
            .map(|m| match m.as_str() {
                "ours" => Mode::Ours,
                "single" => Mode::Single,
                other => panic!("SOCKET_FLOOR_MODES: unknown mode {other:?} (ours, single)"),
            })
            .collect();
        Self {
            calls,
            window: Duration::from_secs_f64(secs),
            batch_wait: Duration::from_micros(batch_wait_us),
            modes,
        }
    }
}

fn env_list(name: &str, default: &str) -> Vec<String> {
    let list: Vec<String> = std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    assert!(!list.is_empty(), "{name} lists nothing");
    list
}

fn env_parse<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}: cannot parse {v:?}")),
        Err(_) => default,
    }
}

fn main() {
    let settings = Settings::from_env();
    println!(
        "socket_floor: {DATAGRAM_LEN}-byte datagrams every {} ms per call and direction on \
         127.0.0.1, window {:.1} s after {} s warm-up, batch_wait {} us",
        TICK.as_millis(),
        settings.window.as_secs_f64(),
        WARM_UP.as_secs(),
        settings.batch_wait.as_micros(),
    );
    let mut failures = Vec::new();
    for &calls in &settings.calls {
        for &mode in &settings.modes {
            let label = format!("{} {calls} calls", mode.name());
            match run(mode, calls, &settings) {
                Ok(mut figures) => {
                    println!("socket_floor: {label}: {}", figures.line());
                    failures.extend(figures.insane().map(|why| format!("{label}: {why}")));
                }
                Err(e) => {
                    println!("socket_floor: {label}: could not run: {e}");
                    failures.push(format!("{label}: {e}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "socket_floor: {}", failures.join("; "));
}

/// The phase every thread of a run follows, and the clock the payload stamps count from.
#[derive(Debug)]
struct Shared {
    epoch: Instant,
    phase: AtomicU8,
}

impl Shared {
    fn phase(&self) -> u8 {
        self.phase.load(Ordering::Acquire)
    }

    fn set(&self, phase: u8) {
        self.phase.store(phase, Ordering::Release);
    }
}

/// One mode at one call count: sockets, threads, warm-up, window, drain; every thread joined
/// and every socket closed before it returns.
fn run(mode: Mode, calls: usize, settings: &Settings) -> io::Result<Figures> {
    let shared = Shared {
        epoch: Instant::now(),
        phase: AtomicU8::new(WARMING),
    };
    let (forwarder, peer) = setup(mode, calls, settings.batch_wait)?;
    let Peer {
        media,
        browsers,
        upstreams,
        targets,
        poll,
    } = peer;
    thread::scope(|s| {
        let shared = &shared;
        let (browsers, upstreams, targets) = (&browsers, &upstreams, &targets);
        let stop = |e: io::Error| {
            shared.set(STOP);
            e
        };
        let forwarder = thread::Builder::new()
            .name("forwarder".into())
            .spawn_scoped(s, move || forwarder.run(shared))
            .map_err(stop)?;
        let receiver = thread::Builder::new()
            .name("peer-recv".into())
            .spawn_scoped(s, move || peer_receive(poll, browsers, upstreams, shared))
            .map_err(stop)?;
        let sender = thread::Builder::new()
            .name("peer-send".into())
            .spawn_scoped(s, move || {
                peer_send(browsers, upstreams, media, targets, shared)
            })
            .map_err(stop)?;
        thread::sleep(WARM_UP);
        shared.set(WINDOW);
        thread::sleep(settings.window);
        shared.set(DRAINING);
        thread::sleep(DRAIN);
        shared.set(STOP);
        let joined = |what: &str| io::Error::other(format!("the {what} thread panicked"));
        let sent = sender.join().map_err(|_| joined("peer sender"))?;
        let received = receiver.join().map_err(|_| joined("peer receiver"))?;
        let forwarded = forwarder.join().map_err(|_| joined("forwarder"))?;
        Ok(Figures {
            forwarded,
            sent,
            received,
        })
    })
}

/// The far ends' sockets: browser `i` sends to the forwarder's `media` socket and upstream `i`
/// to `targets[i]` (its call's socket, or the one upstream socket in `single` mode).
struct Peer {
    media: SocketAddr,
    browsers: Vec<UdpSocket>,
    upstreams: Vec<UdpSocket>,
    targets: Vec<SocketAddr>,
    /// Registered for all 2N sockets: browser `i` as token `i`, upstream `i` as `N + i`.
    poll: Poll,
}

fn bind_local() -> io::Result<UdpSocket> {
    UdpSocket::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
}

fn setup(mode: Mode, calls: usize, batch_wait: Duration) -> io::Result<(Forwarder, Peer)> {
    let poll = Poll::new()?;
    let mut browsers = Vec::with_capacity(calls);
    let mut upstreams = Vec::with_capacity(calls);
    for i in 0..calls {
        let mut browser = bind_local()?;
        poll.registry()
            .register(&mut browser, Token(i), Interest::READABLE)?;
        browsers.push(browser);
        let mut upstream = bind_local()?;
        poll.registry()
            .register(&mut upstream, Token(calls + i), Interest::READABLE)?;
        upstreams.push(upstream);
    }

    let forwarder_poll = Poll::new()?;
    let mut media = bind_local()?;
    udp_batch::set_buffers(media.as_raw_fd(), SOCKET_BUFFER)?;
    let media_addr = media.local_addr()?;
    forwarder_poll
        .registry()
        .register(&mut media, MEDIA, Interest::READABLE)?;
    let mut by_browser_port = vec![NO_CALL; 1 << 16];
    let mut by_upstream_port = vec![NO_CALL; 1 << 16];
    let mut browser_addrs = Vec::with_capacity(calls);
    let mut upstream_addrs = Vec::with_capacity(calls);
    for (i, (browser, upstream)) in browsers.iter().zip(&upstreams).enumerate() {
        let call = u32::try_from(i).map_err(io::Error::other)?;
        let (b, u) = (browser.local_addr()?, upstream.local_addr()?);
        by_browser_port[usize::from(b.port())] = call;
        by_upstream_port[usize::from(u.port())] = call;
        browser_addrs.push(b);
        upstream_addrs.push(u);
    }
    let (upstream_side, targets) = match mode {
        Mode::Ours => {
            let mut sockets = Vec::with_capacity(calls);
            let mut targets = Vec::with_capacity(calls);
            for i in 0..calls {
                // Like the node's per-call sockets: default buffers.
                let mut socket = bind_local()?;
                forwarder_poll.registry().register(
                    &mut socket,
                    Token(1 + i),
                    Interest::READABLE,
                )?;
                targets.push(socket.local_addr()?);
                sockets.push(socket);
            }
            (Upstream::PerCall(sockets), targets)
        }
        Mode::Single => {
            let mut socket = bind_local()?;
            udp_batch::set_buffers(socket.as_raw_fd(), SOCKET_BUFFER)?;
            forwarder_poll
                .registry()
                .register(&mut socket, Token(1), Interest::READABLE)?;
            let target = socket.local_addr()?;
            (Upstream::Single(socket), vec![target; calls])
        }
    };
    let forwarder = Forwarder {
        poll: forwarder_poll,
        media,
        upstream: upstream_side,
        by_browser_port,
        by_upstream_port,
        browser_addrs,
        upstream_addrs,
        batch_wait,
        counts: Counts::default(),
    };
    Ok((
        forwarder,
        Peer {
            media: media_addr,
            browsers,
            upstreams,
            targets,
            poll,
        },
    ))
}

/// The forwarder's upstream side.
enum Upstream {
    /// `ours`: socket `i` is call `i`'s; datagrams leave with one `sendto` each.
    PerCall(Vec<UdpSocket>),
    /// `single`: one socket for every upstream; datagrams leave in `sendmmsg` batches.
    Single(UdpSocket),
}

/// What the forwarder counted while it did so (only the window's are reported).
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    /// Datagrams the kernel took for sending, both directions.
    forwarded: u64,
    /// Wakeups that moved at least one datagram.
    wakeups: u64,
    /// Failed receive calls (other than "nothing waiting").
    recv_errors: u64,
    /// Datagrams the kernel refused to send.
    send_errors: u64,
    /// Datagrams from a source no call has (none expected).
    unknown: u64,
    /// Failed epoll waits (other than interrupts).
    poll_errors: u64,
}

impl Counts {
    fn errors(&self) -> u64 {
        self.recv_errors + self.send_errors + self.unknown + self.poll_errors
    }
}

/// The thing measured: forwards by source port and nothing else.
struct Forwarder {
    poll: Poll,
    media: UdpSocket,
    upstream: Upstream,
    /// Call index by a browser's source port ([`NO_CALL`]: none), read on the media socket.
    by_browser_port: Vec<u32>,
    /// Call index by an upstream's source port, read on the one upstream socket (`single`).
    by_upstream_port: Vec<u32>,
    browser_addrs: Vec<SocketAddr>,
    upstream_addrs: Vec<SocketAddr>,
    batch_wait: Duration,
    counts: Counts,
}

/// The forwarder's batch buffers. They hold raw pointers for the kernel, so they are not
/// `Send`: the forwarder thread makes its own, as the node's media thread does.
#[derive(Default)]
struct Batches {
    /// Where `recvmmsg` writes a batch (64 KiB, boxed).
    recv: Box<RecvBatch>,
    /// Datagrams for browsers, sent from the media socket with one `sendmmsg` per batch.
    to_browsers: Box<SendBatch>,
    /// `single`: datagrams for upstreams, sent from the one upstream socket the same way.
    to_upstreams: Box<SendBatch>,
}

/// The forwarder thread's clocks at one instant.
#[derive(Debug, Clone, Copy)]
struct Mark {
    at: Instant,
    cpu: Duration,
    /// utime and stime in clock ticks (`None`: `/proc` could not be read).
    ticks: Option<(u64, u64)>,
}

impl Mark {
    fn now(tid: libc::pid_t) -> Self {
        Self {
            at: Instant::now(),
            cpu: thread_cpu_time(),
            ticks: thread_ticks(tid).ok(),
        }
    }
}

/// What the forwarder reports for the window.
#[derive(Debug)]
struct Forwarded {
    start: Option<Mark>,
    end: Option<Mark>,
    counts: Counts,
}

impl Forwarder {
    fn run(mut self, shared: &Shared) -> Forwarded {
        let tid = gettid();
        let mut batches = Batches::default();
        let mut events = Events::with_capacity(1024);
        let (mut start, mut end) = (None, None);
        let (mut at_start, mut window) = (Counts::default(), None);
        loop {
            let phase = shared.phase();
            if phase == STOP {
                break;
            }
            if start.is_none() && phase == WINDOW {
                at_start = self.counts;
                start = Some(Mark::now(tid));
            }
            if start.is_some() && end.is_none() && phase >= DRAINING {
                end = Some(Mark::now(tid));
                window = Some(diff(self.counts, at_start));
            }
            if let Err(e) = self.poll.poll(&mut events, Some(POLL_TIMEOUT)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.counts.poll_errors += 1;
                }
                continue;
            }
            let woke = Instant::now();
            let before = self.counts.forwarded;
            for event in &events {
                match event.token() {
                    MEDIA => self.drain_media(&mut batches),
                    Token(t) => self.drain_upstream(&mut batches, t - 1),
                }
            }
            self.flush(&mut batches);
            let moved = self.counts.forwarded > before;
            if moved {
                self.counts.wakeups += 1;
            }
            if moved && !self.batch_wait.is_zero() {
                // Interrupt moderation, as the node does it: what arrives meanwhile waits in
                // the socket buffers for the next wakeup's batch.
                let until = woke + self.batch_wait;
                let now = Instant::now();
                if until > now {
                    thread::sleep(until - now);
                }
            }
        }
        Forwarded {
            start,
            end,
            counts: window.unwrap_or_default(),
        }
    }

    /// Browsers -> upstreams: reads the media socket dry, a batch per call.
    fn drain_media(&mut self, batches: &mut Batches) {
        let fd = self.media.as_raw_fd();
        let mut failures = 0;
        loop {
            let Some(received) = receive(&mut batches.recv, fd, &mut self.counts, &mut failures)
            else {
                return;
            };
            for i in 0..received {
                let Some((data, source)) = batches.recv.get(i) else {
                    self.counts.unknown += 1;
                    continue;
                };
                let call = self.by_browser_port[usize::from(source.port())];
                let Some(&destination) = self.upstream_addrs.get(call as usize) else {
                    self.counts.unknown += 1;
                    continue;
                };
                match &self.upstream {
                    Upstream::PerCall(sockets) => {
                        match sockets[call as usize].send_to(data, destination) {
                            Ok(_) => self.counts.forwarded += 1,
                            Err(_) => self.counts.send_errors += 1,
                        }
                    }
                    Upstream::Single(socket) => {
                        if batches.to_upstreams.is_full() {
                            record(
                                &mut self.counts,
                                batches.to_upstreams.flush(socket.as_raw_fd()),
                            );
                        }
                        batches.to_upstreams.push(destination, data);
                    }
                }
            }
            if received < BATCH {
                return;
            }
        }
    }

    /// Upstreams -> browsers: reads upstream socket `index` dry (`single`: the one socket,
    /// whatever the index), queueing each datagram for its browser.
    fn drain_upstream(&mut self, batches: &mut Batches, index: usize) {
        let (fd, single) = match &self.upstream {
            Upstream::PerCall(sockets) => match sockets.get(index) {
                Some(socket) => (socket.as_raw_fd(), false),
                None => return,
            },
            Upstream::Single(socket) => (socket.as_raw_fd(), true),
        };
        let mut failures = 0;
        loop {
            let Some(received) = receive(&mut batches.recv, fd, &mut self.counts, &mut failures)
            else {
                return;
            };
            for i in 0..received {
                let Some((data, source)) = batches.recv.get(i) else {
                    self.counts.unknown += 1;
                    continue;
                };
                let call = if single {
                    self.by_upstream_port[usize::from(source.port())] as usize
                } else {
                    index
                };
                let Some(&destination) = self.browser_addrs.get(call) else {
                    self.counts.unknown += 1;
                    continue;
                };
                if batches.to_browsers.is_full() {
                    record(
                        &mut self.counts,
                        batches.to_browsers.flush(self.media.as_raw_fd()),
                    );
                }
                batches.to_browsers.push(destination, data);
            }
            if received < BATCH {
                return;
            }
        }
    }

    /// The end of a wakeup: sends the queued batches.
    fn flush(&mut self, batches: &mut Batches) {
        if !batches.to_browsers.is_empty() {
            record(
                &mut self.counts,
                batches.to_browsers.flush(self.media.as_raw_fd()),
            );
        }
        if let Upstream::Single(socket) = &self.upstream {
            if !batches.to_upstreams.is_empty() {
                record(
                    &mut self.counts,
                    batches.to_upstreams.flush(socket.as_raw_fd()),
                );
            }
        }
    }
}

/// One `recvmmsg` on `fd`: how many datagrams arrived, or `None` once a socket has failed more
/// than four times in a row (ICMP errors surface once each; never spin on a broken socket).
fn receive(
    batch: &mut RecvBatch,
    fd: std::os::fd::RawFd,
    counts: &mut Counts,
    failures: &mut u32,
) -> Option<usize> {
    loop {
        match batch.recv(fd) {
            Ok(n) => return Some(n),
            Err(_) => {
                counts.recv_errors += 1;
                *failures += 1;
                if *failures > 4 {
                    return None;
                }
            }
        }
    }
}

fn record(counts: &mut Counts, sent: udp_batch::Sent) {
    counts.forwarded += sent.sent as u64;
    counts.send_errors += sent.dropped as u64;
}

fn diff(a: Counts, b: Counts) -> Counts {
    Counts {
        forwarded: a.forwarded - b.forwarded,
        wakeups: a.wakeups - b.wakeups,
        recv_errors: a.recv_errors - b.recv_errors,
        send_errors: a.send_errors - b.send_errors,
        unknown: a.unknown - b.unknown,
        poll_errors: a.poll_errors - b.poll_errors,
    }
}

/// Payload layout after the header: send time (ns since the epoch), sequence, window flag.
const STAMP_AT: usize = HEADER_LEN;
const SEQ_AT: usize = STAMP_AT + 8;
const FLAG_AT: usize = SEQ_AT + 4;

/// What the peer sender did in the window.
#[derive(Debug, Default)]
struct Sent {
    /// Datagrams sent while the window was open (flagged as such).
    in_window: u64,
    errors: u64,
    /// Times the sender fell more than a tick behind its schedule and skipped ahead.
    behind: u64,
}

/// Every [`TICK`], one datagram from each browser to the forwarder's `media` socket and from
/// each upstream to its target, until the run stops. The calls are spread evenly over the
/// tick (call `i` of N is due `i/N` of a tick in), as real calls are out of phase with each
/// other: a burst of all of them at once would hand the forwarder batches far larger than a
/// real node sees. Each wakeup sends every call then due and sleeps until the next one.
fn peer_send(
    browsers: &[UdpSocket],
    upstreams: &[UdpSocket],
    media: SocketAddr,
    targets: &[SocketAddr],
    shared: &Shared,
) -> Sent {
    let mut sent = Sent::default();
    let calls = browsers.len().min(upstreams.len()).min(targets.len());
    if calls == 0 {
        return sent;
    }
    let spacing = TICK / u32::try_from(calls).unwrap_or(u32::MAX);
    let mut datagram = [0u8; DATAGRAM_LEN];
    // Send `k` is call `k % calls` in tick `k / calls`, due `k` spacings after `base`.
    let mut base = Instant::now();
    let mut k: u32 = 0;
    let due = |base: Instant, k: u32| base + spacing * k;
    loop {
        // Sending goes on while the in-flight datagrams drain (outside the window, unflagged),
        // so the forwarder sees the window close at once instead of at its next poll timeout.
        let phase = shared.phase();
        if phase == STOP {
            return sent;
        }
        let in_window = phase == WINDOW;
        datagram[FLAG_AT] = u8::from(in_window);
        let now = Instant::now();
        if now > due(base, k) + TICK {
            // Fell more than a tick behind (a busy machine): pace from now, no catch-up burst.
            base += now - due(base, k);
            if in_window {
                sent.behind += 1;
            }
        }
        while due(base, k) <= now {
            let i = k as usize % calls;
            let seq = k / calls as u32;
            for (side, socket, to) in [(0, &browsers[i], media), (1, &upstreams[i], targets[i])] {
                let ssrc = ((i as u32) << 1) | side;
                rtp_header(&mut datagram, seq, ssrc);
                datagram[SEQ_AT..SEQ_AT + 4].copy_from_slice(&seq.to_le_bytes());
                let stamp = nanos_since(shared.epoch);
                datagram[STAMP_AT..STAMP_AT + 8].copy_from_slice(&stamp.to_le_bytes());
                match socket.send_to(&datagram, to) {
                    Ok(_) if in_window => sent.in_window += 1,
                    Ok(_) => {}
                    Err(_) => sent.errors += 1,
                }
            }
            k += 1;
        }
        let now = Instant::now();
        let next = due(base, k);
        if next > now {
            thread::sleep(next - now);
        }
    }
}

/// Version 2, PT 0 (PCMU), sequence, timestamp (8 kHz, 160 a packet), SSRC.
fn rtp_header(datagram: &mut [u8; DATAGRAM_LEN], seq: u32, ssrc: u32) {
    datagram[0] = 0x80;
    datagram[1] = 0;
    datagram[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
    datagram[4..8].copy_from_slice(&seq.wrapping_mul(160).to_be_bytes());
    datagram[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

fn nanos_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// What the peer receiver counted.
#[derive(Debug, Default)]
struct Received {
    /// Datagrams back that were sent in the window.
    in_window: u64,
    /// Their latency (ns): receive time minus the stamped send time.
    latencies: Vec<u64>,
    errors: u64,
}

/// Sleeps in epoll over all 2N far-end sockets and reads whatever the forwarder sends back.
fn peer_receive(
    mut poll: Poll,
    browsers: &[UdpSocket],
    upstreams: &[UdpSocket],
    shared: &Shared,
) -> Received {
    let mut received = Received::default();
    let mut events = Events::with_capacity(1024);
    let mut batch: Box<RecvBatch> = Box::default();
    let calls = browsers.len();
    while shared.phase() != STOP {
        if let Err(e) = poll.poll(&mut events, Some(POLL_TIMEOUT)) {
            if e.kind() != io::ErrorKind::Interrupted {
                received.errors += 1;
            }
            continue;
        }
        for event in &events {
            let Token(t) = event.token();
            let socket = if t < calls {
                &browsers[t]
            } else {
                &upstreams[t - calls]
            };
            let mut failures = 0;
            loop {
                let n = match batch.recv(socket.as_raw_fd()) {
                    Ok(n) => n,
                    Err(_) => {
                        received.errors += 1;
                        failures += 1;
                        if failures > 4 {
                            break;
                        }
                        continue;
                    }
                };
                let now = nanos_since(shared.epoch);
                for i in 0..n {
                    let Some((data, _)) = batch.get(i) else {
                        continue;
                    };
                    if data.len() != DATAGRAM_LEN {
                        received.errors += 1;
                        continue;
                    }
                    if data[FLAG_AT] == 1 {
                        let mut stamp = [0u8; 8];
                        stamp.copy_from_slice(&data[STAMP_AT..STAMP_AT + 8]);
                        received.in_window += 1;
                        received
                            .latencies
                            .push(now.saturating_sub(u64::from_le_bytes(stamp)));
                    }
                }
                if n < BATCH {
                    break;
                }
            }
        }
    }
    received
}

/// Everything one run measured.
#[derive(Debug)]
struct Figures {
    forwarded: Forwarded,
    sent: Sent,
    received: Received,
}

impl Figures {
    fn packets(&self) -> u64 {
        self.forwarded.counts.forwarded
    }

    fn loss(&self) -> f64 {
        if self.sent.in_window == 0 {
            return 1.0;
        }
        1.0 - self.received.in_window as f64 / self.sent.in_window as f64
    }

    fn line(&mut self) -> String {
        let (Some(start), Some(end)) = (self.forwarded.start, self.forwarded.end) else {
            return "the forwarder never saw the window".to_owned();
        };
        let packets = self.packets().max(1) as f64;
        let us_per_packet = (end.cpu - start.cpu).as_secs_f64() * 1e6 / packets;
        let split = match (start.ticks, end.ticks) {
            (Some((u0, s0)), Some((u1, s1))) => {
                let us_per_tick = 1e6 / clock_ticks_per_second() as f64;
                format!(
                    "user {:.2}, sys {:.2}",
                    (u1 - u0) as f64 * us_per_tick / packets,
                    (s1 - s0) as f64 * us_per_tick / packets
                )
            }
            _ => "user/sys unknown: /proc unreadable".to_owned(),
        };
        let wall = (end.at - start.at).as_secs_f64();
        let loss = self.loss();
        let latencies = &mut self.received.latencies;
        latencies.sort_unstable();
        let percentile = |p: f64| -> f64 {
            if latencies.is_empty() {
                return f64::NAN;
            }
            let i = ((latencies.len() - 1) as f64 * p).round() as usize;
            latencies[i] as f64 / 1e6
        };
        let counts = self.forwarded.counts;
        let errors = counts.errors() + self.sent.errors + self.received.errors;
        let errors = if errors == 0 {
            "errors 0".to_owned()
        } else {
            format!(
                "errors {errors} (forwarder: recv {}, send {}, unknown source {}, poll {}; \
                 peer: send {}, recv {})",
                counts.recv_errors,
                counts.send_errors,
                counts.unknown,
                counts.poll_errors,
                self.sent.errors,
                self.received.errors
            )
        };
        let behind = match self.sent.behind {
            0 => String::new(),
            n => format!("; the peer fell over a tick behind {n} times"),
        };
        format!(
            "{us_per_packet:.2} us CPU/packet ({split}), {:.0} packets/s, floor {:.0} calls/core; \
             peer loss {:.3}%, latency p50 {:.2} ms p99 {:.2} ms; {:.1} packets/wakeup, \
             {errors}{behind}",
            packets / wall,
            1e6 / (us_per_packet * 100.0),
            loss * 100.0,
            percentile(0.50),
            percentile(0.99),
            packets / counts.wakeups.max(1) as f64,
        )
    }

    /// Why the run is not sane, if it is not.
    fn insane(&self) -> Option<String> {
        if self.forwarded.start.is_none() || self.forwarded.end.is_none() {
            return Some("the forwarder never saw the window".to_owned());
        }
        if self.packets() == 0 {
            return Some("no packet forwarded".to_owned());
        }
        let loss = self.loss();
        (loss > LOSS_TOLERANCE).then(|| {
            format!(
                "peer loss {:.3}% above {:.3}%",
                loss * 100.0,
                LOSS_TOLERANCE * 100.0
            )
        })
    }
}

/// CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
#[allow(unsafe_code)]
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the kernel writes one `timespec` into `ts`, which we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// The calling thread's kernel id.
#[allow(unsafe_code)]
fn gettid() -> libc::pid_t {
    // SAFETY: no arguments, no memory touched; always succeeds.
    unsafe { libc::gettid() }
}

/// Clock ticks per second, the unit of `utime` and `stime` in `/proc`.
#[allow(unsafe_code)]
fn clock_ticks_per_second() -> u64 {
    // SAFETY: reads a configuration value, no memory touched.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// utime and stime (fields 14 and 15 of `/proc/self/task/<tid>/stat`), in clock ticks.
fn thread_ticks(tid: libc::pid_t) -> io::Result<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let (_, rest) = stat
        .rsplit_once(')')
        .ok_or_else(|| io::Error::other("no command name in stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), so field 14 is fields[11] and field 15 is fields[12].
    let field = |i: usize| -> io::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("short stat"))
    };
    Ok((field(11)?, field(12)?))
}
