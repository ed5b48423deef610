//! `cargo bench -p media-node --bench leg_path`: heap and CPU per packet of the lean browser leg
//! ([`media_node::leg::BrowserLeg`]), in memory on a virtual clock, no sockets.
//!
//! N legs (`LEG_PATH_SESSIONS`, default 100), each against a str0m `Rtc` playing the browser
//! (full ICE, DTLS client, RTP mode, PCMU), as in `src/leg/tests.rs`. After ICE + DTLS, both
//! sides send one PCMU packet every 20 ms for 7 s; the leg's `handle_timeout` runs when due (RTCP
//! reports both ways). The browser's first SRTP packet that authenticates confirms the peer,
//! which drops the leg's DTLS handshake state (the 30 s grace is never reached here).
//!
//! Figures (same method as `bridge_path.rs`):
//!
//! 1. Heap per leg: a counting global allocator; drop everything else, then the str0m peers
//!    (what that frees, / N, is the str0m context figure), then the legs: the bytes freed / N
//!    (inline `BrowserLeg` in its `Vec` included). Once right after connecting, once after
//!    the traffic (two separate setups).
//! 2. Thread CPU time (`cpu-time`) around `handle_datagram` of one SRTP packet (unprotect) and
//!    `protect_rtp` (protect), p50/p99 over all packets, minus the clock's own overhead. The
//!    str0m context: the peers' `handle_input` + `poll_output` of one received packet, and
//!    `write_rtp` + `handle_input(Timeout)` + `poll_output` of one sent packet.

// The counting allocator needs `unsafe impl GlobalAlloc` (it only forwards to `System` and
// counts); the workspace denies unsafe code, this bench binary alone allows it.
#![allow(unsafe_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use cpu_time::ThreadTime;
use media_node::dtls::NodeCertificate;
use media_node::ice::Credentials;
use media_node::leg::{answer_sdp, BrowserLeg, BrowserSdp, LocalSdp, Received};
use media_node::srtp::MAX_RTP_OVERHEAD;
use shared::sdp::{Codec, PayloadCodec};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::live_bytes;

const OUR_SSRC: u32 = 0x0bad_f00d;
const STEP: Duration = Duration::from_millis(10);
const TRAFFIC: Duration = Duration::from_secs(7);
const FROM_BROWSER: [u8; 160] = [0xd5; 160];
const FROM_US: [u8; 160] = [0x42; 160];

fn browser_addr(i: usize) -> SocketAddr {
    SocketAddr::new("192.0.2.20".parse().expect("ip"), 10_000 + i as u16)
}

fn node_addr(i: usize) -> SocketAddr {
    SocketAddr::new("198.51.100.1".parse().expect("ip"), 40_000 + i as u16)
}

fn is_srtp_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && (128..192).contains(&d[0]) && !(64..=95).contains(&(d[1] & 0x7f))
}

/// The str0m browser of one call, with what the leg sent it (delivered on the next step).
struct Peer {
    rtc: Rtc,
    mid: Mid,
    connected: bool,
    to_browser: Vec<Vec<u8>>,
    got: usize,
}

/// CPU samples, us: [leg unprotect, leg protect, str0m receive, str0m send].
type Samples = [Vec<f64>; 4];

struct Calls {
    peers: Vec<Peer>,
    legs: Vec<BrowserLeg>,
    now: Instant,
    /// Plain RTP the legs handed out, per leg.
    node_got: Vec<usize>,
}

fn new_calls(n: usize, cert: &NodeCertificate, now: Instant) -> Calls {
    let mut peers = Vec::with_capacity(n);
    let mut legs = Vec::with_capacity(n);
    for i in 0..n {
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_pcmu(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(browser_addr(i), "udp").expect("candidate"));
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().expect("offer");
        let offer = BrowserSdp::from_offer(&offer.to_sdp_string()).expect("offer params");
        let local = Credentials::random();
        let leg = BrowserLeg::new(now, cert, offer.leg_params(local.clone(), OUR_SSRC, "node"))
            .expect("leg");
        let answer = answer_sdp(
            &LocalSdp {
                session_id: i as u64,
                version: 1,
                ip: node_addr(i).ip(),
                port: node_addr(i).port(),
                mid: &offer.mid,
                ice: &local,
                certificate: cert,
                direction: offer.direction.reversed(),
                codecs: &[PayloadCodec {
                    payload_type: 0,
                    codec: Codec::PCMU,
                    fmtp: None,
                }],
                ssrc: OUR_SSRC,
                cname: "node",
            },
            offer.answer_setup(),
        );
        rtc.sdp_api()
            .accept_answer(
                pending,
                SdpAnswer::from_sdp_string(&answer).expect("answer"),
            )
            .expect("accept answer");
        peers.push(Peer {
            rtc,
            mid,
            connected: false,
            to_browser: Vec::new(),
            got: 0,
        });
        legs.push(leg);
    }
    Calls {
        peers,
        legs,
        now,
        node_got: vec![0; n],
    }
}

/// Drains the peer's output; returns its datagrams toward the leg.
fn poll_peer(peer: &mut Peer, out: &mut Vec<Vec<u8>>) {
    loop {
        match peer.rtc.poll_output().expect("browser output") {
            Output::Timeout(_) => break,
            Output::Transmit(t) => out.push(t.contents.to_vec()),
            Output::Event(Event::Connected) => peer.connected = true,
            Output::Event(Event::RtpPacket(p)) => {
                assert_eq!(&p.payload[..], &FROM_US[..], "browser got our payload");
                peer.got += 1;
            }
            Output::Event(_) => {}
        }
    }
}

fn cpu_us(t: ThreadTime, overhead: f64) -> f64 {
    (t.elapsed().as_secs_f64() * 1e6 - overhead).max(0.0)
}

impl Calls {
    /// Moves time on by one step and passes everything due both ways; with `send`, both sides
    /// send one packet (sequence `seq`); with `samples`, CPU times are recorded.
    fn step(&mut self, send: Option<u16>, mut samples: Option<&mut Samples>, overhead: f64) {
        self.now += STEP;
        let now = self.now;
        let mut buf = [0u8; 2048];
        let mut from_browser = Vec::new();
        for (i, (peer, leg)) in self.peers.iter_mut().zip(&mut self.legs).enumerate() {
            for d in std::mem::take(&mut peer.to_browser) {
                let rtp = is_srtp_rtp(&d);
                let t = ThreadTime::now();
                let receive = Receive::new(Protocol::Udp, node_addr(i), browser_addr(i), &d)
                    .expect("receive");
                peer.rtc
                    .handle_input(Input::Receive(now, receive))
                    .expect("browser input");
                poll_peer(peer, &mut from_browser);
                if let (true, Some(s)) = (rtp, samples.as_deref_mut()) {
                    s[2].push(cpu_us(t, overhead));
                }
            }
            let t = ThreadTime::now();
            if let Some(seq) = send {
                let mut api = peer.rtc.direct_api();
                let tx = api.stream_tx_by_mid(peer.mid, None).expect("tx stream");
                tx.write_rtp(RtpWrite::new(
                    Pt::from(0),
                    u64::from(seq).into(),
                    u32::from(seq) * 160,
                    now,
                    FROM_BROWSER.to_vec(),
                ));
            }
            peer.rtc
                .handle_input(Input::Timeout(now))
                .expect("browser timeout");
            poll_peer(peer, &mut from_browser);
            if let (Some(_), Some(s)) = (send, samples.as_deref_mut()) {
                s[3].push(cpu_us(t, overhead));
            }

            for d in from_browser.drain(..) {
                let rtp = is_srtp_rtp(&d);
                buf[..d.len()].copy_from_slice(&d);
                let t = ThreadTime::now();
                let received = leg
                    .handle_datagram(now, browser_addr(i), &mut buf, d.len())
                    .expect("leg datagram");
                if let (true, Some(s)) = (rtp, samples.as_deref_mut()) {
                    s[0].push(cpu_us(t, overhead));
                }
                match received {
                    Received::Rtp { len, .. } => {
                        // str0m adds a header extension block: the payload ends the packet.
                        assert!(buf[..len].ends_with(&FROM_BROWSER), "leg got the payload");
                        self.node_got[i] += 1;
                    }
                    Received::Dropped(reason) if samples.is_some() => {
                        panic!("leg dropped {reason:?}")
                    }
                    Received::Rtcp | Received::Handled | Received::Dropped(_) => {}
                }
            }
            if let Some(seq) = send {
                buf[..2].copy_from_slice(&[0x80, 0]);
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                buf[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
                buf[8..12].copy_from_slice(&OUR_SSRC.to_be_bytes());
                buf[12..172].copy_from_slice(&FROM_US);
                let t = ThreadTime::now();
                let (destination, n) = leg
                    .protect_rtp(now, &mut buf[..172 + MAX_RTP_OVERHEAD], 172)
                    .expect("protect");
                if let Some(s) = samples.as_deref_mut() {
                    s[1].push(cpu_us(t, overhead));
                }
                assert_eq!(destination, browser_addr(i));
                peer.to_browser.push(buf[..n].to_vec());
            }
            if leg.poll_timeout().is_some_and(|at| at <= now) {
                leg.handle_timeout(now).expect("leg timeout");
            }
            while let Some((destination, n)) = leg.poll_transmit(&mut buf) {
                assert_eq!(destination, browser_addr(i));
                peer.to_browser.push(buf[..n].to_vec());
            }
        }
    }

    fn connect(&mut self) {
        let start = self.now;
        while !self
            .peers
            .iter()
            .zip(&self.legs)
            .all(|(p, l)| p.connected && l.is_connected())
        {
            assert!(self.now - start < Duration::from_secs(10), "no connection");
            self.step(None, None, 0.0);
        }
        assert!(self.legs.iter().all(|l| l.has_keys()));
    }

    /// Bytes per call freed by dropping the str0m peers, then by dropping the legs.
    fn heap_per_call(self) -> (f64, f64) {
        let Calls {
            mut peers, legs, ..
        } = self;
        let n = peers.len() as f64;
        for p in &mut peers {
            p.to_browser = Vec::new();
        }
        let before = live_bytes();
        drop(peers);
        let between = live_bytes();
        drop(legs);
        let after = live_bytes();
        ((before - between) as f64 / n, (between - after) as f64 / n)
    }
}

fn cpu_overhead_us() -> f64 {
    let mut v: Vec<f64> = (0..1000)
        .map(|_| ThreadTime::now().elapsed().as_secs_f64() * 1e6)
        .collect();
    percentile(&mut v, 0.5)
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn kib(bytes: f64) -> f64 {
    bytes / 1024.0
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let n: usize = std::env::var("LEG_PATH_SESSIONS")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(100);
    let overhead = cpu_overhead_us();
    let cert = NodeCertificate::generate().expect("certificate");

    let mut calls = new_calls(n, &cert, Instant::now());
    calls.connect();
    let held = calls
        .legs
        .iter()
        .filter(|l| l.has_handshake_state())
        .count();
    let (str0m_connected, leg_connected) = calls.heap_per_call();

    let mut calls = new_calls(n, &cert, Instant::now());
    calls.connect();
    let mut samples: Samples = Default::default();
    let rounds = (TRAFFIC.as_millis() / (2 * STEP.as_millis())) as u16;
    for seq in 1..=rounds {
        calls.step(Some(seq), Some(&mut samples), overhead);
        calls.step(None, Some(&mut samples), overhead);
    }
    for (i, leg) in calls.legs.iter().enumerate() {
        let stats = leg.stats();
        assert_eq!(
            calls.node_got[i],
            usize::from(rounds),
            "leg {i} got every packet"
        );
        assert_eq!(
            calls.peers[i].got,
            usize::from(rounds),
            "browser {i} got every packet"
        );
        assert!(
            stats.reports_sent >= 1 && stats.rtcp_received >= 1,
            "{stats:?}"
        );
        assert!(leg.is_connected());
        assert!(
            !leg.has_handshake_state(),
            "the browser's SRTP confirmed the peer"
        );
    }
    let (str0m_traffic, leg_traffic) = calls.heap_per_call();
    let [mut unprotect, mut protect, mut recv, mut send] = samples;
    let secs = TRAFFIC.as_secs();
    println!(
        "leg_path: {n} legs: heap {:.1} KiB/leg connected ({held}/{n} still holding the DTLS \
         handshake state), {:.1} KiB/leg after {secs} s of traffic (handshake state dropped \
         when the browser's first SRTP confirmed the peer, not by the 30 s grace); unprotect \
         {:.2} us/packet (p99 {:.2}), protect {:.2} us/packet (p99 {:.2})",
        kib(leg_connected),
        kib(leg_traffic),
        percentile(&mut unprotect, 0.5),
        percentile(&mut unprotect, 0.99),
        percentile(&mut protect, 0.5),
        percentile(&mut protect, 0.99),
    );
    println!(
        "leg_path: str0m equivalent (the {n} str0m browser peers: full ICE, DTLS client, RTP \
         mode): heap {:.1} KiB/peer connected, {:.1} KiB/peer after {secs} s of traffic; \
         receive (handle_input + poll_output) {:.2} us/packet (p99 {:.2}), send (write_rtp + \
         handle_input + poll_output) {:.2} us/packet (p99 {:.2}); thread CPU clock overhead \
         {overhead:.2} us subtracted per sample; in-process, no sockets",
        kib(str0m_connected),
        kib(str0m_traffic),
        percentile(&mut recv, 0.5),
        percentile(&mut recv, 0.99),
        percentile(&mut send, 0.5),
        percentile(&mut send, 0.99),
    );
}
