//! `cargo bench -p media-node --bench bridge_path`: the per-packet cost of the bridge core
//! (`Bridge::handle_receive` + `poll_transmit`, plus the `handle_timeout` the IO shell runs when
//! `poll_timeout` is due), SRTP included, with no sockets: the kernel UDP path is NOT counted.
//!
//! For N sessions, a str0m peer per session plays the browser (full ICE, DTLS client, SRTP) and
//! completes ICE + DTLS with the bridge on a virtual clock, as in `src/bridge/tests.rs`. Then
//! each browser pre-encrypts G.711 packets (20 ms, 160-byte payload) and the bench feeds, round
//! by round (one packet per session and direction, virtual clock +20 ms a round):
//!
//! - browser -> upstream: SRTP in, the bridge's browser leg unprotects it in place and the
//!   bridge re-heads it to plain RTP;
//! - upstream -> browser: plain RTP in, the bridge writes the browser-side header and the leg
//!   protects it in place (SRTP).
//!
//! Figures printed (speed goals live here, never in timed tests):
//!
//! 1. CPU time per forwarded packet (`CLOCK_THREAD_CPUTIME_ID` through the `cpu-time` crate),
//!    p50/p99 over rounds, with the shell's timer step after every packet (the worst case: one
//!    datagram per wakeup) and after a whole round (a busy node: many datagrams per wakeup).
//! 2. Memory per call: live heap bytes held by the bridge for N established sessions
//!    (a counting global allocator; the bytes freed by dropping the bridge, after the browser
//!    peers are dropped) / N.
//! 3. Added latency: wall time from `handle_receive` of a packet to its `poll_transmit` on the
//!    other leg, in-process (no kernel, no sockets), p50/p99 over all packets of both directions.

// The counting allocator needs `unsafe impl GlobalAlloc` (it only forwards to `System` and
// counts); the workspace denies unsafe code, this bench binary alone allows it.
#![allow(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;
use media_node::bridge::{rtp, Bridge, BridgeConfig, PortBinder};
use media_node::dtls::NodeCertificate;
use shared::control::{AllocateRequest, ApplyAnswer, Mode, SessionId};
use shared::sdp::SessionDescription;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Input, Output, Rtc};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::live_bytes;

const PAYLOAD_LEN: usize = 160;
const ROUND: Duration = Duration::from_millis(20);
/// Session counts measured, unless `BRIDGE_PATH_SESSIONS` (comma-separated) says otherwise.
const SESSION_COUNTS: [usize; 3] = [1, 100, 500];

/// The session counts to measure: `BRIDGE_PATH_SESSIONS=1,50` (e.g. under a heap profiler) or
/// [`SESSION_COUNTS`].
fn session_counts() -> Vec<usize> {
    match std::env::var("BRIDGE_PATH_SESSIONS") {
        Ok(list) => {
            let counts: Vec<usize> = list
                .split(',')
                .filter_map(|n| n.trim().parse().ok())
                .filter(|&n| n > 0)
                .collect();
            assert!(
                !counts.is_empty(),
                "BRIDGE_PATH_SESSIONS must list session counts, e.g. 1,100,500"
            );
            counts
        }
        Err(_) => SESSION_COUNTS.to_vec(),
    }
}

fn media_addr() -> SocketAddr {
    SocketAddr::new(rtp_ip(), 3478)
}

fn rtp_ip() -> IpAddr {
    "192.0.2.10".parse().expect("ip")
}

fn browser_addr(i: usize) -> SocketAddr {
    SocketAddr::new("192.0.2.20".parse().expect("ip"), 10_000 + i as u16)
}

fn upstream_addr(i: usize) -> SocketAddr {
    SocketAddr::new("198.51.100.4".parse().expect("ip"), 20_000 + 2 * i as u16)
}

struct Binder;

impl PortBinder for Binder {
    fn bind_pair(&mut self, _rtp_port: u16) -> bool {
        true
    }
    fn close_pair(&mut self, _rtp_port: u16) {}
}

/// A browser stand-in: a str0m peer (full ICE, DTLS client, SRTP).
struct Browser {
    rtc: Rtc,
    mid: Mid,
    addr: SocketAddr,
}

impl Browser {
    fn offer(now: Instant, addr: SocketAddr) -> (Self, String, SdpPendingOffer) {
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_pcmu(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().expect("offer");
        (Self { rtc, mid, addr }, offer.to_sdp_string(), pending)
    }
}

/// One established bridge with its browsers and the per-session addresses.
struct Setup {
    bridge: Bridge,
    browsers: Vec<Browser>,
    /// Upstream RTP port of session i (the bridge side).
    rtp_ports: Vec<u16>,
    ids: Vec<SessionId>,
    now: Instant,
}

/// Drains one browser's output into the bridge and the bridge's output into `queue`.
fn drain_browser(
    now: Instant,
    browser: &mut Browser,
    bridge: &mut Bridge,
    queue: &mut VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
) {
    loop {
        match browser.rtc.poll_output().expect("browser output") {
            Output::Timeout(_) => break,
            Output::Transmit(t) => {
                bridge.handle_receive(now, t.source, t.destination, &t.contents);
                drain_bridge(bridge, queue);
            }
            Output::Event(_) => {}
        }
    }
}

fn drain_bridge(bridge: &mut Bridge, queue: &mut VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>) {
    while let Some(t) = bridge.poll_transmit() {
        queue.push_back((t.source, t.destination, t.contents.to_vec()));
    }
}

/// Delivers queued bridge datagrams to their browsers until nobody has anything to say.
fn pump(
    now: Instant,
    bridge: &mut Bridge,
    browsers: &mut [Browser],
    route: &HashMap<SocketAddr, usize>,
    queue: &mut VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
) {
    while let Some((source, destination, data)) = queue.pop_front() {
        let Some(&j) = route.get(&destination) else {
            continue; // towards an upstream (RTCP): nobody listens
        };
        let receive = Receive::new(Protocol::Udp, source, destination, &data).expect("receive");
        browsers[j]
            .rtc
            .handle_input(Input::Receive(now, receive))
            .expect("browser input");
        drain_browser(now, &mut browsers[j], bridge, queue);
    }
}

/// N bridged sessions, ICE + DTLS completed with N str0m browsers on a virtual clock.
fn establish(n: usize, t0: Instant) -> Setup {
    let mut now = t0;
    let certificate = NodeCertificate::generate().expect("node certificate");
    let mut bridge = Bridge::new(
        BridgeConfig {
            media_addr: media_addr(),
            rtp_ip: rtp_ip(),
            rtp_port_min: 40_000,
            rtp_port_max: 40_000 + 2 * n as u16 + 1,
            capacity: n,
            media_timeout: Duration::from_secs(60),
        },
        certificate,
    );
    let mut browsers = Vec::with_capacity(n);
    let mut rtp_ports = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let (mut browser, offer, pending) = Browser::offer(now, browser_addr(i));
        let response = bridge
            .allocate(
                now,
                &AllocateRequest {
                    call_id: format!("call-{i}"),
                    browser_offer_sdp: offer,
                    mode: Mode::Bridge,
                },
                &mut Binder,
            )
            .expect("allocate");
        let answer = SdpAnswer::from_sdp_string(&response.browser_answer_sdp).expect("answer");
        browser
            .rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("accept answer");
        let offer_sdp: SessionDescription = response
            .upstream_offer_sdp
            .as_deref()
            .expect("upstream offer")
            .parse()
            .expect("upstream offer sdp");
        let rtp_port = offer_sdp.media[0].port().expect("port");
        let up = upstream_addr(i);
        bridge
            .apply_answer(
                now,
                &ApplyAnswer {
                    session_id: response.session_id.clone(),
                    upstream_answer_sdp: format!(
                        "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
                         m=audio {port} RTP/AVP 0\r\n",
                        ip = up.ip(),
                        port = up.port()
                    ),
                },
            )
            .expect("apply answer");
        browsers.push(browser);
        rtp_ports.push(rtp_port);
        ids.push(response.session_id);
    }
    drain_bridge_discard(&mut bridge);
    let route: HashMap<SocketAddr, usize> = (0..n).map(|i| (browsers[i].addr, i)).collect();
    let mut queue = VecDeque::new();
    let mut settled = 0;
    while settled < 20 {
        for b in browsers.iter_mut() {
            b.rtc.handle_input(Input::Timeout(now)).expect("timeout");
            drain_browser(now, b, &mut bridge, &mut queue);
        }
        bridge.handle_timeout(now);
        drain_bridge(&mut bridge, &mut queue);
        pump(now, &mut bridge, &mut browsers, &route, &mut queue);
        if browsers.iter().all(|b| b.rtc.is_connected()) {
            settled += 1;
        }
        now += Duration::from_millis(10);
        assert!(
            now - t0 < Duration::from_secs(10),
            "ICE/DTLS did not complete"
        );
    }
    assert_eq!(bridge.active(), n);
    Setup {
        bridge,
        browsers,
        rtp_ports,
        ids,
        now,
    }
}

fn drain_bridge_discard(bridge: &mut Bridge) {
    while bridge.poll_transmit().is_some() {}
}

fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && (128..192).contains(&d[0]) && !rtp::is_rtcp(d)
}

/// `rounds` pre-encrypted SRTP packets per browser, one per 20 ms of the browser's clock.
fn pre_encrypt(setup: &mut Setup, rounds: usize) -> Vec<Vec<Vec<u8>>> {
    let start = setup.now;
    let payload = vec![0xd5u8; PAYLOAD_LEN]; // PCMU silence
    setup
        .browsers
        .iter_mut()
        .map(|b| {
            let mut packets = Vec::with_capacity(rounds);
            for k in 0..rounds {
                let t = start + ROUND * k as u32;
                let seq = k as u64 + 1;
                let mut api = b.rtc.direct_api();
                let tx = api.stream_tx_by_mid(b.mid, None).expect("tx stream");
                tx.write_rtp(RtpWrite::new(
                    Pt::from(0),
                    seq.into(),
                    seq as u32 * 160,
                    t,
                    payload.clone(),
                ));
                b.rtc.handle_input(Input::Timeout(t)).expect("timeout");
                loop {
                    match b.rtc.poll_output().expect("browser output") {
                        Output::Timeout(at) if at <= t => {
                            b.rtc.handle_input(Input::Timeout(t)).expect("timeout")
                        }
                        Output::Timeout(_) => break,
                        Output::Transmit(tr) if is_rtp(&tr.contents) => {
                            packets.push(tr.contents.to_vec())
                        }
                        Output::Transmit(_) | Output::Event(_) => {}
                    }
                }
            }
            assert_eq!(packets.len(), rounds, "one SRTP packet per round");
            packets
        })
        .collect()
}

fn plain_rtp(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(rtp::HEADER_LEN + PAYLOAD_LEN);
    let view = rtp::RtpView {
        payload_type: 0,
        marker: false,
        sequence: seq,
        timestamp: ts,
        ssrc,
        payload: (0, 0),
    };
    rtp::write(&mut out, &view, &[0xd5u8; PAYLOAD_LEN]);
    out
}

/// What the IO shell does after a datagram: send what is queued, run the timers if due, send
/// again. Returns when the forwarded packet (destination `to`) left, if it did.
fn shell_step(bridge: &mut Bridge, now: Instant, to: SocketAddr, found: &mut Option<Instant>) {
    while let Some(t) = bridge.poll_transmit() {
        if found.is_none() && t.destination == to && is_rtp(t.contents) {
            *found = Some(Instant::now());
        }
    }
    if bridge.poll_timeout().is_some_and(|at| at <= now) {
        bridge.handle_timeout(now);
        while let Some(t) = bridge.poll_transmit() {
            if found.is_none() && t.destination == to && is_rtp(t.contents) {
                *found = Some(Instant::now());
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Dir {
    ToUpstream,
    ToBrowser,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// CPU time, timer step after every packet.
    CpuPerPacket,
    /// Wall latency per packet, timer step after every packet.
    Latency,
    /// CPU time, timer step once per round (N datagrams per wakeup).
    CpuBatched,
}

struct Results {
    cpu_per_packet: [Vec<f64>; 2],
    cpu_batched: [Vec<f64>; 2],
    latency_us: Vec<f64>,
    forwarded: [usize; 2],
    fed: [usize; 2],
}

fn cpu_overhead_us() -> f64 {
    let mut v: Vec<f64> = (0..1000)
        .map(|_| {
            let t = ThreadTime::now();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    percentile(&mut v, 0.5)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

/// `srtp[k][i]`: the pre-encrypted packet of session `i` for round `k`.
fn run(setup: &mut Setup, srtp: &[Vec<Vec<u8>>], overhead: f64) -> Results {
    let rounds = srtp.len();
    let n = setup.browsers.len();
    let mut r = Results {
        cpu_per_packet: [Vec::new(), Vec::new()],
        cpu_batched: [Vec::new(), Vec::new()],
        latency_us: Vec::with_capacity(rounds * n),
        forwarded: [0; 2],
        fed: [0; 2],
    };
    let start = setup.now;
    let upstream_ssrc = 0x5eed_0000u32;
    let media = media_addr();
    for (k, srtp_round) in srtp.iter().enumerate() {
        let now = start + ROUND * k as u32;
        let kind = match k % 3 {
            0 => Kind::CpuPerPacket,
            1 => Kind::Latency,
            _ => Kind::CpuBatched,
        };
        let seq = k as u16 + 1;
        let upstream: Vec<Vec<u8>> = (0..n)
            .map(|i| plain_rtp(seq, u32::from(seq) * 160, upstream_ssrc + i as u32))
            .collect();
        for dir in [Dir::ToUpstream, Dir::ToBrowser] {
            let d = dir as usize;
            let bridge = &mut setup.bridge;
            let cpu = ThreadTime::now();
            let mut forwarded = 0;
            for i in 0..n {
                let (source, destination, datagram, to) = match dir {
                    Dir::ToUpstream => (browser_addr(i), media, &srtp_round[i], upstream_addr(i)),
                    Dir::ToBrowser => (
                        upstream_addr(i),
                        SocketAddr::new(rtp_ip(), setup.rtp_ports[i]),
                        &upstream[i],
                        browser_addr(i),
                    ),
                };
                let mut found = None;
                let t0 = if kind == Kind::Latency {
                    Some(Instant::now())
                } else {
                    None
                };
                bridge.handle_receive(now, source, destination, datagram);
                if kind == Kind::CpuBatched {
                    while let Some(t) = bridge.poll_transmit() {
                        if t.destination == to && is_rtp(t.contents) {
                            forwarded += 1;
                        }
                    }
                } else {
                    shell_step(bridge, now, to, &mut found);
                    if found.is_some() {
                        forwarded += 1;
                    }
                }
                if let (Some(t0), Some(t1)) = (t0, found) {
                    r.latency_us.push((t1 - t0).as_secs_f64() * 1e6);
                }
            }
            if kind == Kind::CpuBatched {
                if bridge.poll_timeout().is_some_and(|at| at <= now) {
                    bridge.handle_timeout(now);
                }
                while let Some(t) = bridge.poll_transmit() {
                    if is_rtp(t.contents) {
                        let towards_browser = t.source == media;
                        if matches!(dir, Dir::ToBrowser) == towards_browser {
                            forwarded += 1;
                        }
                    }
                }
            }
            let us = (cpu.elapsed().as_secs_f64() * 1e6 - overhead).max(0.0) / n as f64;
            match kind {
                Kind::CpuPerPacket => r.cpu_per_packet[d].push(us),
                Kind::CpuBatched => r.cpu_batched[d].push(us),
                Kind::Latency => {}
            }
            r.forwarded[d] += forwarded;
            r.fed[d] += n;
        }
    }
    setup.now = start + ROUND * rounds as u32;
    r
}

fn kib(bytes: f64) -> f64 {
    bytes / 1024.0
}

/// Live bytes the bridge of `setup` holds, per session: drop the browsers, then the bridge.
fn bridge_bytes_per_session(setup: Setup) -> f64 {
    let Setup {
        bridge,
        browsers,
        ids,
        ..
    } = setup;
    let n = browsers.len();
    drop(browsers);
    drop(ids);
    let with = live_bytes();
    drop(bridge);
    let without = live_bytes();
    (with - without) as f64 / n as f64
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let overhead = cpu_overhead_us();
    println!(
        "bridge_path: in-process core only (handle_receive + poll_transmit + the shell's \
         handle_timeout when due), no sockets: the kernel UDP path is not included; \
         thread CPU clock overhead {overhead:.2} us subtracted per sample"
    );
    let t0 = Instant::now();
    let mut last = None;
    let mut all_latency = Vec::new();
    for n in session_counts() {
        // Enough rounds for stable percentiles and for any per-stream state to reach its steady
        // size (with str0m as the leg, the heap per session levelled off after about 6 s of
        // traffic), and under the browser stand-in's consent window.
        let rounds = if n < 50 { 450 } else { 350 };
        let setup_start = Instant::now();
        let mut setup = establish(n, t0);
        let setup_secs = setup_start.elapsed().as_secs_f64();
        let srtp = pre_encrypt(&mut setup, rounds);
        let by_round: Vec<Vec<Vec<u8>>> = (0..rounds)
            .map(|k| srtp.iter().map(|s| s[k].clone()).collect())
            .collect();
        drop(srtp);
        let mut r = run(&mut setup, &by_round, overhead);
        drop(by_round);
        for (d, name) in ["browser->upstream", "upstream->browser"]
            .iter()
            .enumerate()
        {
            let p50 = percentile(&mut r.cpu_per_packet[d], 0.5);
            let p99 = percentile(&mut r.cpu_per_packet[d], 0.99);
            let b50 = percentile(&mut r.cpu_batched[d], 0.5);
            let b99 = percentile(&mut r.cpu_batched[d], 0.99);
            println!(
                "bridge_path: {name} {p50:.2} us/packet (p99 {p99:.2}) over {n} sessions; \
                 batched wakeup {b50:.2} us/packet (p99 {b99:.2}); forwarded {}/{}",
                r.forwarded[d], r.fed[d]
            );
        }
        assert_eq!(setup.bridge.active(), n, "sessions survived the run");
        // The shell calls poll_timeout at least once per wakeup (a heap peek).
        let scan = ThreadTime::now();
        let mut due = 0usize;
        for _ in 0..1000 {
            due += usize::from(setup.bridge.poll_timeout().is_some());
        }
        let scan_us = scan.elapsed().as_secs_f64() * 1e6 / 1000.0;
        assert_eq!(due, 1000);
        println!(
            "bridge_path: {n} sessions: Bridge::poll_timeout \
             {scan_us:.2} us per call"
        );
        let mut lat = r.latency_us.clone();
        println!(
            "bridge_path: {n} sessions: added latency p50 {:.2} us p99 {:.2} us; setup \
             (ICE+DTLS) {setup_secs:.1} s; bridge heap after traffic {:.1} KiB/session",
            percentile(&mut lat, 0.5),
            percentile(&mut lat, 0.99),
            kib(bridge_bytes_per_session(setup)),
        );
        all_latency.extend(r.latency_us);
        last = Some(n);
    }
    // Memory of freshly established calls (no traffic yet) at the largest N.
    let n = last.unwrap_or(1);
    let established = establish(n, Instant::now());
    let per_call = bridge_bytes_per_session(established);
    println!(
        "bridge_path: memory per call {:.1} KiB; added latency p50 {:.2} us p99 {:.2} us",
        kib(per_call),
        percentile(&mut all_latency, 0.5),
        percentile(&mut all_latency, 0.99),
    );
}
