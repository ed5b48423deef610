//! Scenarios of the bridge core on a virtual clock: a str0m client plays the browser (real
//! ICE, DTLS and SRTP, no sockets) and plain RTP datagrams play the upstream.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shared::control::{AllocateRequest, ApplyAnswer, ControlError, Mode, Release};
use str0m::change::SdpAnswer;
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
fn echo_answer_is_ice_lite_passive_with_one_candidate_on_the_media_port() {
    let mut bridge = Bridge::new(config());
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
    let mut bridge = Bridge::new(config());
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
    let mut bridge = Bridge::new(config());
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
    let mut bridge = Bridge::new(config());
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
    let mut bridge = Bridge::new(config());
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
    let mut bridge = Bridge::new(config());
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
    let mut bridge = Bridge::new(config());
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
    let t0 = Instant::now();
    let mut now = t0;
    let mut bridge = Bridge::new(config());
    let (mut browser, offer, pending) = Browser::offer(now);
    let response = bridge
        .allocate(now, &request(&offer, Mode::Bridge), &mut Binder::default())
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
            now,
            &ApplyAnswer {
                session_id: response.session_id.clone(),
                upstream_answer_sdp: upstream_answer_sdp("0", ""),
            },
        )
        .unwrap();

    while !browser.rtc.is_connected() {
        exchange(
            &mut now,
            Duration::from_millis(10),
            &mut browser,
            &mut bridge,
        );
        assert!(
            now - t0 < Duration::from_secs(10),
            "ICE/DTLS did not complete"
        );
    }
    // Let DTLS finish on both sides and SRTP keys settle.
    for _ in 0..20 {
        exchange(
            &mut now,
            Duration::from_millis(10),
            &mut browser,
            &mut bridge,
        );
    }

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
    let rtp_dest = SocketAddr::new(config().rtp_ip, rtp_port);
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
    assert_eq!(
        browser.received.len(),
        5,
        "{:?}",
        bridge.stats(now, &response.session_id)
    );
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

    let stats = bridge.stats(now, &response.session_id).unwrap();
    assert_eq!(stats.packets_from_browser, 6);
    assert_eq!(stats.packets_from_upstream, 5);
    assert!(stats.mos.is_some());
}

#[test]
fn echo_sends_the_browsers_audio_back() {
    let mut now = Instant::now();
    let mut bridge = Bridge::new(config());
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
}

#[test]
fn end_all_ends_every_session_with_its_call_id_and_duration() {
    let mut bridge = Bridge::new(config());
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
