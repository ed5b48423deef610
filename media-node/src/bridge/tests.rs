//! Scenarios of the bridge core on a virtual clock: a str0m client plays the browser (real
//! ICE, DTLS and SRTP, no sockets) and plain RTP datagrams play the upstream.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shared::control::{
    AllocateInbound, AllocateRequest, ApplyAnswer, ApplyBrowserAnswer, ControlError, Mode, Release,
};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::*;

const CHROMIUM_OFFER: &str = include_str!("../../tests/data/chromium156_audio_offer.sdp");

fn media_addr() -> SocketAddr {
    "192.0.2.10:3478".parse().unwrap()
}

fn browser_addr() -> SocketAddr {
    "192.0.2.20:50000".parse().unwrap()
}

fn upstream_addr() -> SocketAddr {
    "198.51.100.4:30000".parse().unwrap()
}

fn config() -> BridgeConfig {
    BridgeConfig {
        media_addr: media_addr(),
        rtp_ip: "192.0.2.10".parse().unwrap(),
        rtp_port_min: 40_000,
        rtp_port_max: 40_005,
        capacity: 10,
        media_timeout: Duration::from_secs(30),
    }
}

/// One node certificate for every test bridge (generating one per test costs nothing that
/// matters, sharing it is what the node does).
fn certificate() -> crate::dtls::NodeCertificate {
    static CERTIFICATE: std::sync::OnceLock<crate::dtls::NodeCertificate> =
        std::sync::OnceLock::new();
    CERTIFICATE
        .get_or_init(|| crate::dtls::NodeCertificate::generate().expect("certificate"))
        .clone()
}

#[derive(Default)]
struct Binder {
    bound: Vec<u16>,
}

impl PortBinder for Binder {
    fn bind_pair(&mut self, rtp_port: u16) -> bool {
        self.bound.push(rtp_port);
        true
    }
    fn close_pair(&mut self, rtp_port: u16) {
        self.bound.retain(|p| *p != rtp_port);
    }
}

fn request(offer: &str, mode: Mode) -> AllocateRequest {
    AllocateRequest {
        call_id: "call-1".into(),
        browser_offer_sdp: offer.into(),
        mode,
    }
}

fn rtp_packet(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let view = rtp::RtpView {
        payload_type: pt,
        marker: false,
        sequence: seq,
        timestamp: ts,
        ssrc: 0xabcd,
        payload: (0, 0),
    };
    rtp::write(&mut out, &view, payload);
    out
}

fn upstream_answer_sdp(pts: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 198.51.100.4\r\ns=-\r\nc=IN IP4 198.51.100.4\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP {pts}\r\n{extra}"
    )
}

#[test]
fn answer_has_no_header_extensions_and_no_transport_wide_congestion_control() {
    let mut bridge = Bridge::new(config(), certificate());
    let response = bridge
        .allocate(
            Instant::now(),
            &request(CHROMIUM_OFFER, Mode::Echo),
            &mut Binder::default(),
        )
        .unwrap();
    let sdp = &response.browser_answer_sdp;
    assert!(
        CHROMIUM_OFFER.contains("transport-wide-cc") && CHROMIUM_OFFER.contains("a=extmap"),
        "the offer asks for them"
    );
    // Relayed audio needs none: no bandwidth estimation at a fixed codec rate, one m-line.
    assert!(!sdp.contains("a=extmap"), "{sdp}");
    assert!(!sdp.contains("transport-cc"), "{sdp}");
    assert!(!sdp.contains("a=rtcp-fb"), "{sdp}");
}

#[test]
fn echo_answer_is_ice_lite_passive_with_one_candidate_on_the_media_port() {
    let mut bridge = Bridge::new(config(), certificate());
    let t0 = Instant::now();
    let response = bridge
        .allocate(
            t0,
            &request(CHROMIUM_OFFER, Mode::Echo),
            &mut Binder::default(),
        )
        .unwrap();
    assert!(response.upstream_offer_sdp.is_none());
    let answer: SessionDescription = response.browser_answer_sdp.parse().unwrap();
    let audio = &answer.media[0];
    assert!(
        answer.ice_lite() || audio.ice_lite(),
        "{}",
        response.browser_answer_sdp
    );
    assert_eq!(
        answer.setup_for(audio),
        Some(shared::sdp::Setup::Passive),
        "{}",
        response.browser_answer_sdp
    );
    assert_eq!(answer.fingerprints_for(audio).len(), 1);
    let candidates: Vec<_> = audio.candidates().collect();
    assert_eq!(candidates.len(), 1, "{}", response.browser_answer_sdp);
    assert_eq!(candidates[0].socket_addr(), Some(media_addr()));
    let pts: Vec<u8> = audio.payload_types().collect();
    assert!(!pts.is_empty());
    for pt in &pts {
        assert!([111, 9, 0, 8, 110, 126].contains(pt), "{pt} in {pts:?}");
    }
    assert!(audio.rtcp_mux());
}

#[test]
fn bridge_allocation_offers_plain_rtp_on_a_port_of_the_range() {
    let mut bridge = Bridge::new(config(), certificate());
    let mut binder = Binder::default();
    let response = bridge
        .allocate(
            Instant::now(),
            &request(CHROMIUM_OFFER, Mode::Bridge),
            &mut binder,
        )
        .unwrap();
    let offer: SessionDescription = response.upstream_offer_sdp.unwrap().parse().unwrap();
    let port = offer.media[0].port().unwrap();
    assert!(
        (40_000..=40_004).contains(&port) && port.is_multiple_of(2),
        "{port}"
    );
    assert_eq!(binder.bound, [port]);
    assert_eq!(offer.media[0].media.proto, shared::sdp::Proto::RtpAvp);
}

#[test]
fn port_exhaustion_is_no_free_port_until_a_release() {
    let mut bridge = Bridge::new(config(), certificate());
    let mut binder = Binder::default();
    let now = Instant::now();
    let ids: Vec<_> = (0..3)
        .map(|_| {
            bridge
                .allocate(now, &request(CHROMIUM_OFFER, Mode::Bridge), &mut binder)
                .unwrap()
                .session_id
        })
        .collect();
    assert_eq!(
        bridge
            .allocate(now, &request(CHROMIUM_OFFER, Mode::Bridge), &mut binder)
            .unwrap_err(),
        ControlError::NoFreePort
    );
    // Echo needs no port.
    bridge
        .allocate(now, &request(CHROMIUM_OFFER, Mode::Echo), &mut binder)
        .unwrap();
    bridge.release(now, &ids[1]).unwrap();
    let Some(BridgeEvent::Ended {
        rtp_port: Some(freed),
        reason: EndReason::Released,
        ..
    }) = bridge.poll_event()
    else {
        panic!("no Ended event")
    };
    binder.close_pair(freed);
    bridge
        .allocate(now, &request(CHROMIUM_OFFER, Mode::Bridge), &mut binder)
        .unwrap();
    assert_eq!(
        bridge.release(now, &ids[1]),
        Err(ControlError::UnknownSession)
    );
}

#[test]
fn draining_refuses_new_sessions_and_bad_offers_are_bad_sdp() {
    let mut bridge = Bridge::new(config(), certificate());
    let now = Instant::now();
    let err = bridge
        .allocate(
            now,
            &request("v=0\r\nnonsense", Mode::Echo),
            &mut Binder::default(),
        )
        .unwrap_err();
    assert!(matches!(err, ControlError::BadSdp { .. }), "{err:?}");
    bridge.set_draining(true);
    assert_eq!(
        bridge
            .allocate(
                now,
                &request(CHROMIUM_OFFER, Mode::Echo),
                &mut Binder::default()
            )
            .unwrap_err(),
        ControlError::Draining
    );
    assert_eq!(bridge.active(), 0);
}

#[test]
fn a_session_without_media_expires_and_frees_its_port() {
    let mut bridge = Bridge::new(config(), certificate());
    let t0 = Instant::now();
    let id = bridge
        .allocate(
            t0,
            &request(CHROMIUM_OFFER, Mode::Bridge),
            &mut Binder::default(),
        )
        .unwrap()
        .session_id;
    let mut now = t0;
    while let Some(at) = bridge.poll_timeout() {
        assert!(at >= now || at + Duration::from_millis(1) >= now);
        now = at.max(now + Duration::from_millis(1));
        bridge.handle_timeout(now);
        while bridge.poll_transmit().is_some() {}
        if now > t0 + Duration::from_secs(120) {
            panic!("session never expired");
        }
    }
    let elapsed = now - t0;
    assert!(
        elapsed >= Duration::from_secs(30) && elapsed < Duration::from_secs(32),
        "{elapsed:?}"
    );
    assert!(matches!(
        bridge.poll_event(),
        Some(BridgeEvent::Ended {
            reason: EndReason::MediaTimeout,
            rtp_port: Some(_),
            ..
        })
    ));
    assert_eq!(bridge.stats(now, &id), Err(ControlError::UnknownSession));
    assert_eq!(bridge.active(), 0);
}

#[test]
fn garbage_on_every_port_is_dropped_without_harm() {
    let mut bridge = Bridge::new(config(), certificate());
    let now = Instant::now();
    let response = bridge
        .allocate(
            now,
            &request(CHROMIUM_OFFER, Mode::Bridge),
            &mut Binder::default(),
        )
        .unwrap();
    let port = port_of(&response.upstream_offer_sdp.unwrap());
    let rtp_dest = SocketAddr::new(config().rtp_ip, port);
    let rtcp_dest = SocketAddr::new(config().rtp_ip, port + 1);
    let mut noise = vec![];
    for len in [0usize, 1, 3, 12, 20, 200, 1500] {
        for first in [0u8, 1, 22, 0x80, 0x90, 0xbf, 0xff] {
            let mut d: Vec<u8> = (0..len)
                .map(|i| (i as u8).wrapping_mul(31).wrapping_add(7))
                .collect();
            if let Some(b) = d.first_mut() {
                *b = first;
            }
            noise.push(d);
        }
    }
    let unknown_port = SocketAddr::new(config().rtp_ip, 40_004);
    for d in &noise {
        for dest in [media_addr(), rtp_dest, rtcp_dest, unknown_port] {
            bridge.handle_receive(now, browser_addr(), dest, d);
        }
    }
    while bridge.poll_transmit().is_some() {}
    assert!(bridge.unroutable > 0);
    let stats = bridge.stats(now, &response.session_id).unwrap();
    assert_eq!(stats.packets_from_upstream, 0);
    assert_eq!(bridge.active(), 1);
}

fn port_of(sdp: &str) -> u16 {
    sdp.parse::<SessionDescription>().unwrap().media[0]
        .port()
        .unwrap()
}

#[test]
fn upstream_rtp_latches_to_the_first_source_and_needs_a_mapped_payload_type() {
    let mut bridge = Bridge::new(config(), certificate());
    let now = Instant::now();
    let response = bridge
        .allocate(
            now,
            &request(CHROMIUM_OFFER, Mode::Bridge),
            &mut Binder::default(),
        )
        .unwrap();
    let id = response.session_id.clone();
    let rtp_dest = SocketAddr::new(
        config().rtp_ip,
        port_of(&response.upstream_offer_sdp.unwrap()),
    );
    // The upstream accepts PCMU and telephone-event under its own number, 101.
    let applied = bridge
        .apply_answer(
            now,
            &ApplyAnswer {
                session_id: id.clone(),
                upstream_answer_sdp: upstream_answer_sdp(
                    "0 101",
                    "a=rtpmap:101 telephone-event/8000\r\n",
                ),
            },
        )
        .unwrap();
    let answer: SessionDescription = applied.browser_answer_sdp.parse().unwrap();
    assert_eq!(
        answer.media[0].payload_types().collect::<Vec<_>>(),
        [0, 126]
    );

    // Real source differs from the SDP address (NAT): it is latched.
    let nat: SocketAddr = "203.0.113.5:31000".parse().unwrap();
    bridge.handle_receive(now, nat, rtp_dest, &rtp_packet(0, 1, 160, b"pcmu"));
    bridge.handle_receive(
        now,
        upstream_addr(),
        rtp_dest,
        &rtp_packet(0, 2, 320, b"pcmu"),
    );
    bridge.handle_receive(
        now,
        nat,
        rtp_dest,
        &rtp_packet(8, 3, 480, b"pcma not accepted"),
    );
    bridge.handle_receive(now, nat, rtp_dest, &rtp_packet(101, 4, 480, b"dtmf"));
    let stats = bridge.stats(now, &id).unwrap();
    assert_eq!(stats.packets_from_upstream, 2, "{stats:?}");
    assert_eq!(stats.packets_dropped, 2, "{stats:?}");
    let _ = Release { session_id: id };
}

/// A browser stand-in: a str0m peer (full ICE, DTLS client, SRTP) on a virtual network with the
/// bridge.
struct Browser {
    rtc: Rtc,
    mid: Mid,
    received: Vec<(u8, Vec<u8>)>,
}

impl Browser {
    fn offer(now: Instant) -> (Self, String, str0m::change::SdpPendingOffer) {
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_pcmu(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(browser_addr(), "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let text = offer.to_sdp_string();
        (
            Self {
                rtc,
                mid,
                received: Vec::new(),
            },
            text,
            pending,
        )
    }

    fn send(&mut self, now: Instant, pt: u8, seq: u64, payload: &[u8]) {
        let mut api = self.rtc.direct_api();
        let tx = api.stream_tx_by_mid(self.mid, None).expect("tx stream");
        tx.write_rtp(RtpWrite::new(
            Pt::from(pt),
            seq.into(),
            seq as u32 * 160,
            now,
            payload.to_vec(),
        ));
        // str0m paces what it sends: the packet leaves on its next timeout, as in a real shell.
        self.rtc.handle_input(Input::Timeout(now)).expect("timeout");
    }
}

/// Moves datagrams between the browser stand-in and the bridge until both wait, returning what
/// the bridge sent elsewhere (to the upstream), and advances the clock by `step`. Like the IO
/// shell, it drains each side's output after every input (str0m requires it).
fn exchange(
    now: &mut Instant,
    step: Duration,
    browser: &mut Browser,
    bridge: &mut Bridge,
) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
    let mut to_upstream = Vec::new();
    loop {
        let mut to_bridge = Vec::new();
        loop {
            match browser.rtc.poll_output().unwrap() {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    to_bridge.push((t.source, t.destination, t.contents.to_vec()))
                }
                Output::Event(Event::RtpPacket(p)) => {
                    browser
                        .received
                        .push((*p.header.payload_type, p.payload.to_vec()));
                }
                Output::Event(_) => {}
            }
        }
        let mut to_browser = Vec::new();
        for (source, destination, data) in &to_bridge {
            bridge.handle_receive(*now, *source, *destination, data);
        }
        while let Some(t) = bridge.poll_transmit() {
            if t.destination == browser_addr() {
                to_browser.push((t.source, t.destination, t.contents.to_vec()));
            } else {
                to_upstream.push((t.source, t.destination, t.contents.to_vec()));
            }
        }
        if to_bridge.is_empty() && to_browser.is_empty() {
            break;
        }
        for (source, destination, data) in &to_browser {
            let receive = Receive::new(Protocol::Udp, *source, *destination, data).unwrap();
            browser
                .rtc
                .handle_input(Input::Receive(*now, receive))
                .unwrap();
            loop {
                match browser.rtc.poll_output().unwrap() {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => {
                        bridge.handle_receive(*now, t.source, t.destination, &t.contents);
                    }
                    Output::Event(Event::RtpPacket(p)) => {
                        browser
                            .received
                            .push((*p.header.payload_type, p.payload.to_vec()));
                    }
                    Output::Event(_) => {}
                }
            }
        }
        while let Some(t) = bridge.poll_transmit() {
            if t.destination != browser_addr() {
                to_upstream.push((t.source, t.destination, t.contents.to_vec()));
            } else {
                let receive =
                    Receive::new(Protocol::Udp, t.source, t.destination, t.contents).unwrap();
                browser
                    .rtc
                    .handle_input(Input::Receive(*now, receive))
                    .unwrap();
                // Drained at the top of the outer loop; keep inputs one at a time.
                break;
            }
        }
    }
    *now += step;
    browser.rtc.handle_input(Input::Timeout(*now)).unwrap();
    bridge.handle_timeout(*now);
    to_upstream
}

#[test]
fn srtp_from_the_browser_reaches_the_upstream_as_plain_rtp_and_back() {
    let mut now = Instant::now();
    let (mut bridge, mut browser, id, rtp_dest) = connected_bridge_call(&mut now);
    let rtp_port = rtp_dest.port();

    let mut upstream_got = Vec::new();
    for seq in 1..=5u64 {
        browser.send(now, 0, seq, format!("tone-{seq}").as_bytes());
        upstream_got.extend(exchange(
            &mut now,
            Duration::from_millis(20),
            &mut browser,
            &mut bridge,
        ));
    }
    // The browser offered opus first, the upstream took PCMU: the browser's stream is timed at
    // 8 kHz, so its steady 20 ms packets show no jitter (at opus's 48 kHz they would show
    // about 4 ms).
    let session = bridge.sessions[bridge.by_id[&id]].as_ref().unwrap();
    let jitter = session.leg.received().jitter_ms();
    assert!(jitter < 1.0, "{jitter} ms");
    let rtp_packets: Vec<_> = upstream_got
        .iter()
        .filter_map(|(src, dst, d)| rtp::parse(d).map(|v| (src, dst, v, d)))
        .filter(|(_, _, v, _)| !rtp::is_rtcp(&[0x80, v.payload_type]))
        .collect();
    assert_eq!(rtp_packets.len(), 5, "{upstream_got:?}");
    for (i, (src, dst, view, data)) in rtp_packets.iter().enumerate() {
        assert_eq!(src.port(), rtp_port);
        assert_eq!(**dst, upstream_addr());
        assert_eq!(view.payload_type, 0);
        assert_eq!(
            &data[view.payload.0..view.payload.1],
            format!("tone-{}", i + 1).as_bytes()
        );
    }

    // The upstream answers from behind NAT; the bridge latches and the browser gets it.
    let nat: SocketAddr = "203.0.113.5:31000".parse().unwrap();
    for seq in 1..=5u16 {
        bridge.handle_receive(
            now,
            nat,
            rtp_dest,
            &rtp_packet(0, seq, u32::from(seq) * 160, b"from-upstream"),
        );
        let sent = exchange(
            &mut now,
            Duration::from_millis(20),
            &mut browser,
            &mut bridge,
        );
        assert!(sent
            .iter()
            .all(|(_, d, _)| *d == nat || d.port() != rtp_port));
    }
    // str0m paces what it sends; let its timers run out.
    for _ in 0..5 {
        exchange(
            &mut now,
            Duration::from_millis(20),
            &mut browser,
            &mut bridge,
        );
    }
    assert_eq!(browser.received.len(), 5, "{:?}", bridge.stats(now, &id));
    assert!(browser
        .received
        .iter()
        .all(|(pt, p)| *pt == 0 && p == b"from-upstream"));

    // Replies now go to the latched source, not the SDP address.
    browser.send(now, 0, 6, b"after-latch");
    let sent = exchange(
        &mut now,
        Duration::from_millis(20),
        &mut browser,
        &mut bridge,
    );
    assert!(
        sent.iter()
            .any(|(_, d, data)| *d == nat && data.ends_with(b"after-latch")),
        "{sent:?}"
    );

    let stats = bridge.stats(now, &id).unwrap();
    assert_eq!(stats.packets_from_browser, 6);
    assert_eq!(stats.packets_from_upstream, 5);
    assert!(stats.mos.is_some());
}

#[test]
fn echo_sends_the_browsers_audio_back_under_the_strongest_gcm_srtp_profile() {
    let mut now = Instant::now();
    let mut bridge = Bridge::new(config(), certificate());
    let (mut browser, offer, pending) = Browser::offer(now);
    let response = bridge
        .allocate(now, &request(&offer, Mode::Echo), &mut Binder::default())
        .unwrap();
    let answer = SdpAnswer::from_sdp_string(&response.browser_answer_sdp).unwrap();
    browser
        .rtc
        .sdp_api()
        .accept_answer(pending, answer)
        .unwrap();
    for _ in 0..300 {
        exchange(
            &mut now,
            Duration::from_millis(10),
            &mut browser,
            &mut bridge,
        );
        if browser.rtc.is_connected() {
            break;
        }
    }
    for _ in 0..20 {
        exchange(
            &mut now,
            Duration::from_millis(10),
            &mut browser,
            &mut bridge,
        );
    }
    for seq in 1..=3u64 {
        browser.send(now, 0, seq, b"hello echo");
        let to_upstream = exchange(
            &mut now,
            Duration::from_millis(20),
            &mut browser,
            &mut bridge,
        );
        assert!(to_upstream.is_empty());
    }
    for _ in 0..5 {
        assert!(exchange(
            &mut now,
            Duration::from_millis(20),
            &mut browser,
            &mut bridge
        )
        .is_empty());
    }
    assert_eq!(browser.received.len(), 3);
    assert!(browser.received.iter().all(|(_, p)| p == b"hello echo"));

    // The str0m browser's DTLS client offers AEAD_AES_256_GCM, AEAD_AES_128_GCM and
    // AES128_CM_SHA1_80; the node's DTLS 1.2 server (dimpl) picks by its own fixed priority
    // (256-bit GCM, 128-bit GCM, AES-CM), so GCM whenever the browser offers it.
    let session = bridge.sessions.iter().flatten().next().unwrap();
    assert_eq!(
        session.leg.srtp_profile(),
        Some(crate::srtp::Profile::AeadAes256Gcm)
    );
}

#[test]
fn end_all_ends_every_session_with_its_call_id_and_duration() {
    let mut bridge = Bridge::new(config(), certificate());
    let mut binder = Binder::default();
    let start = Instant::now();
    for mode in [Mode::Bridge, Mode::Echo] {
        bridge
            .allocate(start, &request(CHROMIUM_OFFER, mode), &mut binder)
            .unwrap();
    }
    bridge.end_all(start + Duration::from_millis(1_500), EndReason::Shutdown);
    assert_eq!(bridge.active(), 0);
    let mut ended = 0;
    while let Some(BridgeEvent::Ended {
        call_id,
        duration,
        reason,
        ..
    }) = bridge.poll_event()
    {
        assert_eq!(call_id, "call-1");
        assert_eq!(duration, Duration::from_millis(1_500));
        assert_eq!(reason.as_str(), "shutdown");
        ended += 1;
    }
    assert_eq!(ended, 2);
}

/// Allocates a bridge session and applies an upstream PCMU answer with `extra` attributes;
/// returns the session and the node's RTP port.
fn bridged(bridge: &mut Bridge, now: Instant, extra: &str) -> (SessionId, u16) {
    let response = bridge
        .allocate(
            now,
            &request(CHROMIUM_OFFER, Mode::Bridge),
            &mut Binder::default(),
        )
        .unwrap();
    let id = response.session_id.clone();
    bridge
        .apply_answer(
            now,
            &ApplyAnswer {
                session_id: id.clone(),
                upstream_answer_sdp: upstream_answer_sdp("0", extra),
            },
        )
        .unwrap();
    (id, port_of(&response.upstream_offer_sdp.unwrap()))
}

/// The RTCP datagrams the bridge queued: (source port, destination, bytes).
fn rtcp_sent(bridge: &mut Bridge) -> Vec<(u16, SocketAddr, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(t) = bridge.poll_transmit() {
        if t.destination.ip() == upstream_addr().ip() && rtp::is_rtcp(t.contents) {
            out.push((t.source.port(), t.destination, t.contents.to_vec()));
        }
    }
    out
}

#[test]
fn upstream_leg_sends_receiver_reports_every_5s_to_the_rtp_port_plus_one() {
    let mut bridge = Bridge::new(config(), certificate());
    let t0 = Instant::now();
    let (id, port) = bridged(&mut bridge, t0, "");
    let rtp_dest = SocketAddr::new(config().rtp_ip, port);
    // Upstream RTP: 1..=10 without 5.
    for seq in (1..=10u16).filter(|s| *s != 5) {
        let at = t0 + Duration::from_millis(20 * u64::from(seq));
        bridge.handle_receive(
            at,
            upstream_addr(),
            rtp_dest,
            &rtp_packet(0, seq, 160 * u32::from(seq), b"pcmu"),
        );
    }
    let _ = rtcp_sent(&mut bridge);
    assert!(bridge.poll_timeout().unwrap() <= t0 + RTCP_INTERVAL);
    bridge.handle_timeout(t0 + Duration::from_secs(4));
    assert!(rtcp_sent(&mut bridge).is_empty(), "not yet");

    let t1 = t0 + RTCP_INTERVAL;
    bridge.handle_timeout(t1);
    let sent = rtcp_sent(&mut bridge);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (source_port, destination, bytes) = &sent[0];
    assert_eq!(*source_port, port + 1);
    assert_eq!(*destination, "198.51.100.4:30001".parse().unwrap());
    assert_eq!(bytes[1], rtcp::RR, "nothing sent to the upstream yet: RR");
    let block = rtcp::parse(bytes, 0xabcd).unwrap().block.unwrap();
    assert_eq!(block.highest_seq, 10);
    assert_eq!(block.cumulative_lost, 1);
    assert_eq!(block.fraction_lost, 25, "1 of 10");
    assert_eq!(block.lsr, 0, "no SR from the upstream yet");

    // The next one 5 s later; RTCP counts as activity, so the session lives on.
    assert!(bridge.poll_timeout().unwrap() <= t1 + RTCP_INTERVAL);
    bridge.handle_timeout(t1 + RTCP_INTERVAL);
    assert_eq!(rtcp_sent(&mut bridge).len(), 1);
    assert!(bridge.stats(t1, &id).is_ok());
}

#[test]
fn upstream_sender_reports_give_rtt_loss_and_lsr_dlsr_on_virtual_time() {
    let mut bridge = Bridge::new(config(), certificate());
    let t0 = Instant::now();
    let (id, port) = bridged(&mut bridge, t0, "");
    let rtcp_port = SocketAddr::new(config().rtp_ip, port + 1);
    let upstream_rtcp: SocketAddr = "198.51.100.4:30001".parse().unwrap();
    // As if the bridge had relayed 50 packets of the browser's stream 0x5151 to the upstream.
    {
        let slot = bridge.by_id[&id];
        let up = bridge.sessions[slot]
            .as_mut()
            .unwrap()
            .upstream
            .as_mut()
            .unwrap();
        up.send_ssrc = 0x5151;
        up.sent_packets = 50;
        up.sent_octets = 8000;
        up.last_sent = Some((1000, 8000, t0));
    }
    let t1 = t0 + RTCP_INTERVAL;
    bridge.handle_timeout(t1);
    let sent = rtcp_sent(&mut bridge);
    assert_eq!(sent.len(), 1);
    let sr = &sent[0].2;
    assert_eq!(sr[1], rtcp::SR);
    assert_eq!(&sr[4..8], &0x5151u32.to_be_bytes());
    let our_ntp = u64::from_be_bytes(sr[8..16].try_into().unwrap());
    assert_eq!(our_ntp, bridge.ntp(t1));
    let rtp_ts = u32::from_be_bytes(sr[16..20].try_into().unwrap());
    assert_eq!(
        rtp_ts,
        1000 + 5 * 8000,
        "advanced by the clock rate since the last packet"
    );
    assert_eq!(u32::from_be_bytes(sr[20..24].try_into().unwrap()), 50);

    // The upstream answers 300 ms later with its own SR, having held ours 200 ms: RTT 100 ms.
    let mut reply = Vec::new();
    let their_ntp: u64 = 0x1111_2222_3333_4444;
    rtcp::write_report(
        &mut reply,
        0x7777,
        Some(&rtcp::SenderInfo {
            ntp: their_ntp,
            ..rtcp::SenderInfo::default()
        }),
        Some(&rtcp::ReportBlock {
            ssrc: 0x5151,
            fraction_lost: 64,
            lsr: rtcp::ntp_middle(our_ntp),
            dlsr: 13_107, // 0.2 s
            ..rtcp::ReportBlock::default()
        }),
    );
    let t2 = t1 + Duration::from_millis(300);
    bridge.handle_receive(t2, upstream_rtcp, rtcp_port, &reply);
    let metrics = bridge.metrics(t2);
    let session = &metrics.sessions[0];
    let rtt = session.upstream_rtt_ms.unwrap();
    assert!((99..=101).contains(&rtt), "{rtt}");
    assert!(session.stats.mos.is_none(), "no RTP yet, no MOS");
    let slot = bridge.by_id[&id];
    let up = bridge.sessions[slot]
        .as_ref()
        .unwrap()
        .upstream
        .as_ref()
        .unwrap();
    assert_eq!(up.reported_loss, Some(0.25));
    assert_eq!(up.rtcp_latched, Some(upstream_rtcp));

    // Our next report echoes their SR: LSR = middle bits, DLSR = 4.7 s.
    let upstream_rtp = SocketAddr::new(config().rtp_ip, port);
    bridge.handle_receive(
        t2,
        upstream_addr(),
        upstream_rtp,
        &rtp_packet(0, 1, 160, b"x"),
    );
    bridge.handle_timeout(t1 + RTCP_INTERVAL);
    let sent = rtcp_sent(&mut bridge);
    assert_eq!(sent.len(), 1);
    let block = rtcp::parse(&sent[0].2, 0xabcd).unwrap().block.unwrap();
    assert_eq!(block.lsr, rtcp::ntp_middle(their_ntp));
    let dlsr_ms = u64::from(block.dlsr) * 1000 / 65_536;
    assert!((4_699..=4_700).contains(&dlsr_ms), "{dlsr_ms}");
    // With media, the MOS counts the upstream round trip and the reported 25 % loss.
    let stats = bridge.stats(t2, &id).unwrap();
    let mos = stats.mos.unwrap();
    assert!(mos < 3.0, "{mos}");
    // Garbage on the RTCP port is dropped, not parsed.
    bridge.handle_receive(t2, upstream_rtcp, rtcp_port, &[0x80, 201, 0, 9, 1, 2, 3, 4]);
    assert_eq!(
        bridge.stats(t2, &id).unwrap().packets_dropped,
        stats.packets_dropped + 1
    );
}

#[test]
fn upstream_rtcp_goes_to_a_rtcp_or_the_rtp_port_with_rtcp_mux() {
    let t0 = Instant::now();
    let mut bridge = Bridge::new(config(), certificate());
    let (_, port) = bridged(&mut bridge, t0, "a=rtcp:30011\r\n");
    bridge.handle_timeout(t0 + RTCP_INTERVAL);
    let sent = rtcp_sent(&mut bridge);
    assert_eq!(sent[0].0, port + 1);
    assert_eq!(sent[0].1, "198.51.100.4:30011".parse().unwrap());

    let mut bridge = Bridge::new(config(), certificate());
    let (_, port) = bridged(&mut bridge, t0, "a=rtcp-mux\r\n");
    bridge.handle_timeout(t0 + RTCP_INTERVAL);
    let sent = rtcp_sent(&mut bridge);
    assert_eq!(sent[0].0, port, "muxed: from the RTP port");
    assert_eq!(sent[0].1, upstream_addr());
}

#[test]
fn metrics_count_allocations_ends_by_reason_and_traffic_of_ended_sessions() {
    let mut bridge = Bridge::new(config(), certificate());
    let t0 = Instant::now();
    let (id, port) = bridged(&mut bridge, t0, "");
    let rtp_dest = SocketAddr::new(config().rtp_ip, port);
    bridge.handle_receive(
        t0,
        upstream_addr(),
        rtp_dest,
        &rtp_packet(0, 1, 160, b"abcd"),
    );
    let (_, _) = bridged(&mut bridge, t0, "");
    let live = bridge.metrics(t0);
    assert_eq!((live.active, live.allocated, live.capacity), (2, 2, 10));
    assert_eq!(live.totals.packets_from_upstream, 1);
    assert_eq!(live.totals.bytes_from_upstream, 4);
    bridge.release(t0, &id).unwrap();
    let after = bridge.metrics(t0);
    assert_eq!(after.active, 1);
    assert_eq!(after.ended[EndReason::Released.index()], 1);
    assert_eq!(after.totals, live.totals, "ended sessions still count");
    assert_eq!(after.sessions.len(), 1);
}

/// An upstream offer shaped like sipp 3.6.1's built-in UAC template, with more codecs and
/// telephone-event under its own number, 101.
fn sipp_like_offer(pts: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=user1 53655765 2353687637 IN IP4 198.51.100.4\r\ns=-\r\n\
         c=IN IP4 198.51.100.4\r\nt=0 0\r\nm=audio 30000 RTP/AVP {pts}\r\n\
         a=rtpmap:0 PCMU/8000\r\n{extra}"
    )
}

fn inbound(offer: &str) -> AllocateInbound {
    AllocateInbound {
        call_id: "in-1".into(),
        upstream_offer_sdp: offer.into(),
    }
}

impl Browser {
    /// A browser stand-in answering the node's offer (str0m, full ICE; it answers an actpass
    /// offer with `setup:passive`, Chromium with `setup:active`: both are DTLS roles the node
    /// takes).
    fn answer(now: Instant, offer: &str) -> (Self, String) {
        let mut rtc = Rtc::builder()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_pcmu(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(browser_addr(), "udp").unwrap());
        let answer = rtc
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(offer).unwrap())
            .unwrap();
        let sdp: SessionDescription = offer.parse().unwrap();
        let mid = Mid::from(sdp.media[0].mid().unwrap());
        (
            Self {
                rtc,
                mid,
                received: Vec::new(),
            },
            answer.to_sdp_string(),
        )
    }
}

#[test]
fn inbound_offer_to_the_browser_is_ice_lite_actpass_with_the_upstreams_codecs() {
    let mut bridge = Bridge::new(config(), certificate());
    let mut binder = Binder::default();
    let offer = sipp_like_offer(
        "8 0 18 101",
        "a=rtpmap:8 PCMA/8000\r\na=rtpmap:18 G729/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
    );
    let response = bridge
        .allocate_inbound(Instant::now(), &inbound(&offer), &mut binder)
        .unwrap();
    let sdp: SessionDescription = response.browser_offer_sdp.parse().unwrap();
    let audio = &sdp.media[0];
    let text = &response.browser_offer_sdp;
    assert!(sdp.ice_lite() || audio.ice_lite(), "{text}");
    assert_eq!(
        sdp.setup_for(audio),
        Some(shared::sdp::Setup::Actpass),
        "{text}"
    );
    assert_eq!(sdp.fingerprints_for(audio).len(), 1, "{text}");
    assert!(audio.rtcp_mux(), "{text}");
    assert_eq!(audio.media.proto, shared::sdp::Proto::UdpTlsRtpSavpf);
    let candidates: Vec<_> = audio.candidates().collect();
    assert_eq!(candidates.len(), 1, "{text}");
    assert_eq!(candidates[0].socket_addr(), Some(media_addr()));
    let codecs: Vec<String> = shared::sdp::offered_codecs(audio)
        .iter()
        .map(|c| c.codec.to_string())
        .collect();
    assert_eq!(
        codecs,
        ["PCMA/8000", "PCMU/8000", "telephone-event/8000"],
        "{text}"
    );
    assert_eq!(binder.bound.len(), 1);

    // Errors: no relayable codec, SRTP from the upstream, draining.
    let g729 = sipp_like_offer("18", "a=rtpmap:18 G729/8000\r\n");
    let err = bridge
        .allocate_inbound(Instant::now(), &inbound(&g729), &mut binder)
        .unwrap_err();
    assert!(err.to_string().contains("no audio codec"), "{err}");
    let savp = offer.replace("RTP/AVP", "RTP/SAVP");
    assert!(matches!(
        bridge.allocate_inbound(Instant::now(), &inbound(&savp), &mut binder),
        Err(ControlError::BadSdp { .. })
    ));
    assert_eq!(
        bridge
            .apply_browser_answer(
                Instant::now(),
                &ApplyBrowserAnswer {
                    session_id: SessionId::new("nope"),
                    browser_answer_sdp: String::new(),
                }
            )
            .unwrap_err(),
        ControlError::UnknownSession
    );
    bridge.set_draining(true);
    assert_eq!(
        bridge
            .allocate_inbound(Instant::now(), &inbound(&offer), &mut binder)
            .unwrap_err(),
        ControlError::Draining
    );
}

/// An inbound call set up to the point where media flows: the upstream offered `offer`, the
/// browser stand-in answered, ICE and DTLS completed. Returns the browser, the session, the
/// upstream answer and the node's RTP port.
fn inbound_connected(
    now: &mut Instant,
    bridge: &mut Bridge,
    offer: &str,
) -> (Browser, SessionId, String, u16) {
    let t0 = *now;
    let response = bridge
        .allocate_inbound(*now, &inbound(offer), &mut Binder::default())
        .unwrap();
    let (mut browser, answer) = Browser::answer(*now, &response.browser_offer_sdp);
    let applied = bridge
        .apply_browser_answer(
            *now,
            &ApplyBrowserAnswer {
                session_id: response.session_id.clone(),
                browser_answer_sdp: answer,
            },
        )
        .unwrap();
    let port = port_of(&applied.upstream_answer_sdp);
    while !browser.rtc.is_connected() {
        exchange(now, Duration::from_millis(10), &mut browser, bridge);
        assert!(
            *now - t0 < Duration::from_secs(10),
            "ICE/DTLS did not complete"
        );
    }
    for _ in 0..20 {
        exchange(now, Duration::from_millis(10), &mut browser, bridge);
    }
    (
        browser,
        response.session_id,
        applied.upstream_answer_sdp,
        port,
    )
}

#[test]
fn inbound_call_relays_srtp_from_the_browser_as_plain_rtp_with_the_upstreams_numbers_and_back() {
    let mut now = Instant::now();
    let mut bridge = Bridge::new(config(), certificate());
    // The upstream offers PCMU, and telephone-event as 101; the browser stand-in takes PCMU
    // and opus only, so it answers PCMU (and drops telephone-event).
    let offer = sipp_like_offer(
        "0 101",
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
    );
    let (mut browser, id, upstream_answer, rtp_port) =
        inbound_connected(&mut now, &mut bridge, &offer);
    let answer: SessionDescription = upstream_answer.parse().unwrap();
    let audio = &answer.media[0];
    assert_eq!(audio.media.proto, shared::sdp::Proto::RtpAvp);
    assert_eq!(
        answer
            .connection_for(audio)
            .and_then(shared::sdp::Connection::ip),
        Some(config().rtp_ip)
    );
    assert!((40_000..=40_004).contains(&rtp_port), "{rtp_port}");
    assert_eq!(
        audio.payload_types().collect::<Vec<_>>(),
        [0],
        "{upstream_answer}"
    );
    assert!(!upstream_answer.contains("ice-") && !upstream_answer.contains("fingerprint"));

    let mut upstream_got = Vec::new();
    for seq in 1..=5u64 {
        browser.send(now, 0, seq, format!("in-{seq}").as_bytes());
        upstream_got.extend(exchange(
            &mut now,
            Duration::from_millis(20),
            &mut browser,
            &mut bridge,
        ));
    }
    let rtp_packets: Vec<_> = upstream_got
        .iter()
        .filter(|(_, _, d)| !rtp::is_rtcp(d))
        .filter_map(|(src, dst, d)| rtp::parse(d).map(|v| (src, dst, v, d)))
        .collect();
    assert_eq!(rtp_packets.len(), 5, "{upstream_got:?}");
    for (i, (src, dst, view, data)) in rtp_packets.iter().enumerate() {
        assert_eq!(src.port(), rtp_port);
        assert_eq!(**dst, upstream_addr(), "to the offer's c= and port");
        assert_eq!(view.payload_type, 0);
        assert_eq!(
            &data[view.payload.0..view.payload.1],
            format!("in-{}", i + 1).as_bytes()
        );
    }

    let rtp_dest = SocketAddr::new(config().rtp_ip, rtp_port);
    upstream_talks(
        &mut bridge,
        &mut browser,
        &mut now,
        rtp_dest,
        1..=5,
        b"from-carrier",
    );
    assert_eq!(browser.received.len(), 5, "{:?}", bridge.stats(now, &id));
    assert!(browser
        .received
        .iter()
        .all(|(pt, p)| *pt == 0 && p == b"from-carrier"));
    let stats = bridge.stats(now, &id).unwrap();
    assert_eq!(
        (stats.packets_from_browser, stats.packets_from_upstream),
        (5, 5)
    );
    assert_eq!(stats.loss_from_browser, 0.0);

    // The answer is applied once; the upstream-answer route is not for inbound sessions.
    assert!(matches!(
        bridge.apply_browser_answer(
            now,
            &ApplyBrowserAnswer {
                session_id: id.clone(),
                browser_answer_sdp: String::new(),
            }
        ),
        Err(ControlError::BadSdp { .. })
    ));
    assert!(matches!(
        bridge.apply_answer(
            now,
            &ApplyAnswer {
                session_id: id,
                upstream_answer_sdp: upstream_answer_sdp("0", ""),
            }
        ),
        Err(ControlError::BadSdp { .. })
    ));
}

/// Drops the 1-based positions in `lost` and swaps each pair in `swapped` (positions again) of a
/// datagram stream, as a lossy, reordering network would.
fn impair<T: Clone>(stream: &[T], lost: &[usize], swapped: &[(usize, usize)]) -> Vec<T> {
    let mut order: Vec<usize> = (1..=stream.len()).collect();
    for &(a, b) in swapped {
        order.swap(a - 1, b - 1);
    }
    order
        .into_iter()
        .filter(|i| !lost.contains(i))
        .map(|i| stream[i - 1].clone())
        .collect()
}

#[test]
fn loss_and_reordering_both_ways_are_forwarded_as_they_arrive_and_counted() {
    let mut now = Instant::now();
    let mut bridge = Bridge::new(config(), certificate());
    let offer = sipp_like_offer("0", "");
    let (mut browser, id, _, rtp_port) = inbound_connected(&mut now, &mut bridge, &offer);
    let lost = [5usize, 12];
    let swapped = [(8usize, 9usize), (15, 17)];
    // Arrival order of the 20 packets: 1-4, 6, 7, 9, 8, 10, 11, 13, 14, 17, 16, 15, 18-20.
    let expected: Vec<u16> = impair(&(1..=20u16).collect::<Vec<_>>(), &lost, &swapped);

    // Upstream -> browser: the impaired plain RTP stream reaches the node.
    let rtp_dest = SocketAddr::new(config().rtp_ip, rtp_port);
    let upstream_stream: Vec<Vec<u8>> = (1..=20u16)
        .map(|seq| rtp_packet(0, seq, u32::from(seq) * 160, format!("up-{seq}").as_bytes()))
        .collect();
    for datagram in impair(&upstream_stream, &lost, &swapped) {
        bridge.handle_receive(now, upstream_addr(), rtp_dest, &datagram);
        exchange(
            &mut now,
            Duration::from_millis(20),
            &mut browser,
            &mut bridge,
        );
    }
    for _ in 0..5 {
        exchange(
            &mut now,
            Duration::from_millis(20),
            &mut browser,
            &mut bridge,
        );
    }
    let got: Vec<String> = browser
        .received
        .iter()
        .map(|(_, p)| String::from_utf8_lossy(p).into_owned())
        .collect();
    let want: Vec<String> = expected.iter().map(|s| format!("up-{s}")).collect();
    assert_eq!(
        got, want,
        "the node forwards in arrival order, nothing invented"
    );

    // Browser -> upstream: the browser's SRTP datagrams are captured, impaired, then delivered.
    let mut srtp = Vec::new();
    for seq in 1..=20u64 {
        browser.send(now, 0, seq, format!("br-{seq}").as_bytes());
        for _ in 0..3 {
            loop {
                match browser.rtc.poll_output().unwrap() {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => {
                        let d = t.contents.to_vec();
                        if matches!(demux::classify(&d), PacketKind::Rtp) && !rtp::is_rtcp(&d) {
                            srtp.push((t.source, t.destination, d));
                        } else {
                            bridge.handle_receive(now, t.source, t.destination, &d);
                        }
                    }
                    Output::Event(_) => {}
                }
            }
            now += Duration::from_millis(10);
            browser.rtc.handle_input(Input::Timeout(now)).unwrap();
        }
    }
    while bridge.poll_transmit().is_some() {}
    assert_eq!(srtp.len(), 20, "one SRTP datagram per packet");
    let mut upstream_got = Vec::new();
    for (source, destination, datagram) in impair(&srtp, &lost, &swapped) {
        bridge.handle_receive(now, source, destination, &datagram);
        while let Some(t) = bridge.poll_transmit() {
            if t.destination == upstream_addr() && !rtp::is_rtcp(t.contents) {
                let view = rtp::parse(t.contents).unwrap();
                upstream_got.push((
                    view.sequence,
                    t.contents[view.payload.0..view.payload.1].to_vec(),
                ));
            }
        }
    }
    let seqs: Vec<u16> = upstream_got.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        seqs, expected,
        "relayed in arrival order with the browser's numbers"
    );
    assert!(upstream_got
        .iter()
        .all(|(s, p)| *p == format!("br-{s}").into_bytes()));

    let stats = bridge.stats(now, &id).unwrap();
    assert_eq!(stats.packets_from_upstream, 18, "{stats:?}");
    assert_eq!(stats.packets_from_browser, 18, "{stats:?}");
    assert!((stats.loss_from_upstream - 0.1).abs() < 1e-6, "{stats:?}");
    assert!((stats.loss_from_browser - 0.1).abs() < 1e-6, "{stats:?}");
    assert_eq!(
        stats.packets_dropped, 0,
        "reordered packets are not dropped"
    );
}

fn upstream_reoffer_sdp(ip: &str, port: u16, pts: &str, extra: &str) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {pts}\r\n{extra}"
    )
}

#[test]
fn upstream_reoffer_moves_the_address_remaps_codecs_and_is_answered_mirrored() {
    let mut bridge = Bridge::new(config(), certificate());
    let now = Instant::now();
    let (id, port) = bridged(&mut bridge, now, "");
    let rtp_dest = SocketAddr::new(config().rtp_ip, port);
    bridge.handle_receive(now, upstream_addr(), rtp_dest, &rtp_packet(0, 1, 160, b"a"));
    assert_eq!(bridge.stats(now, &id).unwrap().packets_from_upstream, 1);

    // The upstream moves to another address and port, puts the call on hold (sendonly) and
    // adds telephone-event under 96.
    let moved: SocketAddr = "198.51.100.9:32000".parse().unwrap();
    let reoffer = UpstreamReoffer {
        session_id: id.clone(),
        upstream_offer_sdp: upstream_reoffer_sdp(
            "198.51.100.9",
            32000,
            "0 96",
            "a=rtpmap:96 telephone-event/8000\r\na=sendonly\r\n",
        ),
    };
    let answer: SessionDescription = bridge
        .upstream_reoffer(now, &reoffer)
        .unwrap()
        .upstream_answer_sdp
        .parse()
        .unwrap();
    let audio = &answer.media[0];
    assert_eq!(audio.port(), Some(port), "the session keeps its RTP port");
    assert_eq!(
        answer.connection_for(audio).and_then(|c| c.ip()),
        Some(config().rtp_ip)
    );
    assert_eq!(answer.direction_for(audio), SdpDirection::RecvOnly);
    assert_eq!(audio.payload_types().collect::<Vec<_>>(), [0, 96]);

    // The new source is latched; the old one is no longer taken.
    bridge.handle_receive(now, moved, rtp_dest, &rtp_packet(0, 2, 320, b"b"));
    bridge.handle_receive(now, moved, rtp_dest, &rtp_packet(96, 3, 320, b"dtmf"));
    bridge.handle_receive(now, upstream_addr(), rtp_dest, &rtp_packet(0, 4, 480, b"c"));
    let stats = bridge.stats(now, &id).unwrap();
    assert_eq!(stats.packets_from_upstream, 3, "{stats:?}");
    assert_eq!(stats.packets_dropped, 1, "{stats:?}");

    // Inactive is answered inactive; sendrecv, sendrecv.
    for (offered, answered) in [
        ("a=inactive\r\n", SdpDirection::Inactive),
        ("a=sendrecv\r\n", SdpDirection::SendRecv),
        ("", SdpDirection::SendRecv),
    ] {
        let reoffer = UpstreamReoffer {
            session_id: id.clone(),
            upstream_offer_sdp: upstream_reoffer_sdp("198.51.100.9", 32000, "0", offered),
        };
        let sdp: SessionDescription = bridge
            .upstream_reoffer(now, &reoffer)
            .unwrap()
            .upstream_answer_sdp
            .parse()
            .unwrap();
        assert_eq!(sdp.direction_for(&sdp.media[0]), answered, "{offered:?}");
    }
}

#[test]
fn upstream_reoffer_without_a_usable_codec_or_session_is_refused_and_changes_nothing() {
    let mut bridge = Bridge::new(config(), certificate());
    let now = Instant::now();
    let (id, port) = bridged(&mut bridge, now, "");
    let rtp_dest = SocketAddr::new(config().rtp_ip, port);
    let g729 = UpstreamReoffer {
        session_id: id.clone(),
        upstream_offer_sdp: upstream_reoffer_sdp("198.51.100.9", 32000, "18", ""),
    };
    assert!(matches!(
        bridge.upstream_reoffer(now, &g729),
        Err(ControlError::BadSdp { .. })
    ));
    let garbage = UpstreamReoffer {
        session_id: id.clone(),
        upstream_offer_sdp: "not sdp".into(),
    };
    assert!(matches!(
        bridge.upstream_reoffer(now, &garbage),
        Err(ControlError::BadSdp { .. })
    ));
    // The session still takes the upstream it had.
    bridge.handle_receive(now, upstream_addr(), rtp_dest, &rtp_packet(0, 1, 160, b"a"));
    assert_eq!(bridge.stats(now, &id).unwrap().packets_from_upstream, 1);

    let unknown = UpstreamReoffer {
        session_id: SessionId::new("nope"),
        upstream_offer_sdp: upstream_reoffer_sdp("198.51.100.9", 32000, "0", ""),
    };
    assert_eq!(
        bridge.upstream_reoffer(now, &unknown),
        Err(ControlError::UnknownSession)
    );
    let echo = bridge
        .allocate(
            now,
            &request(CHROMIUM_OFFER, Mode::Echo),
            &mut Binder::default(),
        )
        .unwrap();
    let to_echo = UpstreamReoffer {
        session_id: echo.session_id,
        upstream_offer_sdp: upstream_reoffer_sdp("198.51.100.9", 32000, "0", ""),
    };
    assert!(matches!(
        bridge.upstream_reoffer(now, &to_echo),
        Err(ControlError::BadSdp { .. })
    ));
}

/// A bridged call with the browser stand-in connected (ICE + DTLS done, SRTP settled) and the
/// upstream's PCMU answer applied: the bridge, the browser, the session and the node's RTP
/// address for the upstream.
fn connected_bridge_call(now: &mut Instant) -> (Bridge, Browser, SessionId, SocketAddr) {
    let t0 = *now;
    let mut bridge = Bridge::new(config(), certificate());
    let (mut browser, offer, pending) = Browser::offer(*now);
    let response = bridge
        .allocate(*now, &request(&offer, Mode::Bridge), &mut Binder::default())
        .unwrap();
    let answer = SdpAnswer::from_sdp_string(&response.browser_answer_sdp).unwrap();
    browser
        .rtc
        .sdp_api()
        .accept_answer(pending, answer)
        .unwrap();
    let rtp_port = port_of(response.upstream_offer_sdp.as_deref().unwrap());
    bridge
        .apply_answer(
            *now,
            &ApplyAnswer {
                session_id: response.session_id.clone(),
                upstream_answer_sdp: upstream_answer_sdp("0", ""),
            },
        )
        .unwrap();
    while !browser.rtc.is_connected() {
        exchange(now, Duration::from_millis(10), &mut browser, &mut bridge);
        assert!(
            *now - t0 < Duration::from_secs(10),
            "ICE/DTLS did not complete"
        );
    }
    for _ in 0..20 {
        exchange(now, Duration::from_millis(10), &mut browser, &mut bridge);
    }
    let rtp_dest = SocketAddr::new(config().rtp_ip, rtp_port);
    (bridge, browser, response.session_id, rtp_dest)
}

/// The browser's re-offer through [`Bridge::renegotiate`], its answer applied to the browser.
fn renegotiate(
    bridge: &mut Bridge,
    browser: &mut Browser,
    id: &SessionId,
    now: Instant,
    change: impl FnOnce(&mut str0m::change::SdpApi<'_>),
) -> SessionDescription {
    let mut api = browser.rtc.sdp_api();
    change(&mut api);
    let (offer, pending) = api.apply().expect("a re-offer");
    let answer = bridge
        .renegotiate(
            now,
            &Renegotiate {
                session_id: id.clone(),
                browser_offer_sdp: offer.to_sdp_string(),
            },
        )
        .unwrap()
        .browser_answer_sdp;
    browser
        .rtc
        .sdp_api()
        .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
        .unwrap();
    answer.parse().unwrap()
}

/// The upstream sends PCMU `payload` from its SDP address, one packet per 20 ms exchange with
/// the browser for each of `seqs`, then the exchange runs 100 ms more (str0m paces what it
/// hands out).
fn upstream_talks(
    bridge: &mut Bridge,
    browser: &mut Browser,
    now: &mut Instant,
    rtp_dest: SocketAddr,
    seqs: std::ops::RangeInclusive<u16>,
    payload: &[u8],
) {
    for seq in seqs {
        bridge.handle_receive(
            *now,
            upstream_addr(),
            rtp_dest,
            &rtp_packet(0, seq, u32::from(seq) * 160, payload),
        );
        exchange(now, Duration::from_millis(20), browser, bridge);
    }
    for _ in 0..5 {
        exchange(now, Duration::from_millis(20), browser, bridge);
    }
}

#[test]
fn browser_hold_ice_restart_and_resume_are_answered_and_the_call_goes_on() {
    let mut now = Instant::now();
    let (mut bridge, mut browser, id, rtp_dest) = connected_bridge_call(&mut now);
    let ufrag_of = |sdp: &SessionDescription| sdp.ice_ufrag_for(&sdp.media[0]).unwrap().to_owned();
    let first_ufrag = {
        let slot = bridge.by_id[&id];
        bridge.sessions[slot]
            .as_ref()
            .unwrap()
            .leg
            .local_credentials()
            .ufrag()
            .to_owned()
    };

    // Hold: the browser only sends; the node answers recvonly, the next o= version.
    let mid = browser.mid;
    let held = renegotiate(&mut bridge, &mut browser, &id, now, |api| {
        api.set_direction(mid, Direction::SendOnly)
    });
    assert_eq!(held.direction_for(&held.media[0]), SdpDirection::RecvOnly);
    assert_eq!(held.origin.session_version, 2);
    assert_eq!(ufrag_of(&held), first_ufrag, "no ICE restart asked for");
    upstream_talks(
        &mut bridge,
        &mut browser,
        &mut now,
        rtp_dest,
        1..=3,
        b"held",
    );
    assert!(
        browser.received.is_empty(),
        "nothing goes to a held browser"
    );
    // The browser's audio still reaches the upstream.
    browser.send(now, 0, 1, b"still talking");
    let sent = exchange(
        &mut now,
        Duration::from_millis(20),
        &mut browser,
        &mut bridge,
    );
    assert!(
        sent.iter().any(|(_, _, d)| d.ends_with(b"still talking")),
        "{sent:?}"
    );

    // Resume with an ICE restart: new credentials both ways, and media flows again once the
    // browser has checked under them.
    let resumed = renegotiate(&mut bridge, &mut browser, &id, now, |api| {
        api.set_direction(mid, Direction::SendRecv);
        api.ice_restart(true);
    });
    assert_eq!(
        resumed.direction_for(&resumed.media[0]),
        SdpDirection::SendRecv
    );
    assert_eq!(resumed.origin.session_version, 3);
    let new_ufrag = ufrag_of(&resumed);
    assert_ne!(new_ufrag, first_ufrag);
    assert_eq!(bridge.by_ufrag.get(&new_ufrag), bridge.by_id.get(&id));
    assert!(!bridge.by_ufrag.contains_key(&first_ufrag));
    for _ in 0..50 {
        exchange(
            &mut now,
            Duration::from_millis(20),
            &mut browser,
            &mut bridge,
        );
    }
    upstream_talks(
        &mut bridge,
        &mut browser,
        &mut now,
        rtp_dest,
        4..=8,
        b"resumed",
    );
    assert_eq!(browser.received.len(), 5, "{:?}", bridge.stats(now, &id));
    assert!(browser.received.iter().all(|(_, p)| p == b"resumed"));
    let stats = bridge.stats(now, &id).unwrap();
    assert_eq!(stats.packets_dropped, 0, "{stats:?}");
}

#[test]
fn a_re_offer_without_a_call_codec_is_refused_and_changes_nothing() {
    let mut now = Instant::now();
    let (mut bridge, _browser, id, _) = connected_bridge_call(&mut now);
    // Only opus, which the upstream did not accept (it answered PCMU).
    let (_other, offer, _) = Browser::offer(now);
    let mut opus_only: SessionDescription = offer.parse().unwrap();
    opus_only.media[0].retain_payload_types(|pt| pt == 111);
    let opus_only = opus_only.to_string();
    assert!(opus_only.contains("opus/48000") && !opus_only.contains("PCMU"));
    let err = bridge
        .renegotiate(
            now,
            &Renegotiate {
                session_id: id.clone(),
                browser_offer_sdp: opus_only,
            },
        )
        .unwrap_err();
    assert!(matches!(err, ControlError::BadSdp { .. }), "{err:?}");
    let slot = bridge.by_id[&id];
    let session = bridge.sessions[slot].as_ref().unwrap();
    assert_eq!(session.local.version, 1);
    assert_eq!(session.local.direction, SdpDirection::SendRecv);
}

#[test]
fn a_browser_that_vanishes_ends_the_call_even_while_the_upstream_keeps_sending() {
    let mut now = Instant::now();
    let (mut bridge, mut browser, id, rtp_dest) = connected_bridge_call(&mut now);
    browser.send(now, 0, 1, b"last words");
    exchange(
        &mut now,
        Duration::from_millis(20),
        &mut browser,
        &mut bridge,
    );
    let vanished = now;
    // The browser is gone (no more checks, RTP or RTCP); the upstream talks on.
    let mut seq = 1u16;
    let ended = loop {
        seq = seq.wrapping_add(1);
        bridge.handle_receive(
            now,
            upstream_addr(),
            rtp_dest,
            &rtp_packet(0, seq, u32::from(seq) * 160, b"anyone there"),
        );
        now += Duration::from_millis(20);
        bridge.handle_timeout(now);
        while bridge.poll_transmit().is_some() {}
        if let Some(event) = bridge.poll_event() {
            break event;
        }
        assert!(
            now - vanished < Duration::from_secs(40),
            "the session never ended"
        );
    };
    let BridgeEvent::Ended {
        session_id,
        reason,
        stats,
        ..
    } = ended;
    assert_eq!(session_id, id);
    assert_eq!(reason, EndReason::MediaTimeout);
    // `vanished` is one exchange step (20 ms) after the browser's last delivered datagram.
    let silent = now - vanished + Duration::from_millis(20);
    assert!(
        silent >= config().media_timeout
            && silent < config().media_timeout + Duration::from_secs(1),
        "{silent:?}"
    );
    assert!(stats.packets_from_upstream > 1000, "{stats:?}");
}
