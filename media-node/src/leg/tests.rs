//! The leg against a str0m `Rtc` playing the browser (full ICE, RTP mode, PCMU), in memory on
//! a virtual clock: str0m offering (it is the DTLS client) and str0m answering our offer (it
//! answers `passive`: we are the client); a `DtlsLeg` with hand-made checks as an `active`
//! browser answering our offer; hostile input; consent; the offer and answer SDP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use shared::sdp::{Codec, Direction, PayloadCodec, SessionDescription, Setup};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction as RtcDirection, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::*;
use crate::ice::binding_request;
use crate::srtp::MAX_RTP_OVERHEAD;
use crate::test_util::Noise;

const OUR_SSRC: u32 = 0x0bad_f00d;
const STEP: Duration = Duration::from_millis(10);

fn browser_addr() -> SocketAddr {
    "192.0.2.10:50000".parse().unwrap()
}

fn node_addr() -> SocketAddr {
    "198.51.100.1:3478".parse().unwrap()
}

fn pcmu() -> Vec<PayloadCodec> {
    vec![PayloadCodec {
        payload_type: 0,
        codec: Codec::PCMU,
        fmtp: None,
    }]
}

/// A plain RTP packet (PCMU) with room for the SRTP tag after it; returns it and its length.
fn plain_rtp(seq: u16, payload: &[u8]) -> (Vec<u8>, usize) {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&OUR_SSRC.to_be_bytes());
    p.extend_from_slice(payload);
    let len = p.len();
    p.resize(len + MAX_RTP_OVERHEAD, 0);
    (p, len)
}

/// One call: str0m as the browser, our leg as the node, datagrams passed in memory. What the
/// node sends reaches the browser one step (10 ms) later, so round trips are not zero.
/// A str0m browser (full ICE, DTLS, SRTP) with PCMU only and a host candidate.
fn pcmu_browser(now: Instant) -> Rtc {
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_pcmu(true, false)
        .build(now);
    rtc.add_local_candidate(Candidate::host(browser_addr(), "udp").unwrap());
    rtc
}

struct Call {
    rtc: Rtc,
    leg: BrowserLeg,
    mid: Mid,
    now: Instant,
    browser_connected: bool,
    /// Payloads of `Event::RtpPacket` at the browser.
    browser_got: Vec<Vec<u8>>,
    /// Plain RTP the leg handed out.
    node_got: Vec<Vec<u8>>,
    /// The latest SRTP datagram (RTP, not RTCP) the browser sent.
    last_browser_srtp: Option<Vec<u8>>,
    to_browser: Vec<Vec<u8>>,
    drops: Vec<DropReason>,
    rtcp: usize,
    /// Browser datagrams are lost on the way (consent test).
    cut: bool,
}

impl Call {
    fn new() -> Self {
        Self::with_leg_made_before(Duration::ZERO)
    }

    /// A call whose leg was made `age` before the browser gets the answer and starts (the far
    /// end rang for that long).
    fn with_leg_made_before(age: Duration) -> Self {
        let now = Instant::now() + age;
        let mut rtc = pcmu_browser(now);
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, RtcDirection::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();

        let cert = NodeCertificate::generate().unwrap();
        let offer = BrowserSdp::from_offer(&offer.to_sdp_string()).unwrap();
        assert_eq!(offer.setup, Setup::Actpass);
        assert_eq!(offer.answer_setup(), Setup::Passive);
        let local = Credentials::random();
        let params = offer.leg_params(local.clone(), OUR_SSRC, "node");
        assert_eq!(params.dtls_role, DtlsRole::Server);
        let leg = BrowserLeg::new(now - age, &cert, params).unwrap();
        let codecs = pcmu();
        let answer = answer_sdp(
            &LocalSdp {
                session_id: 42,
                version: 1,
                ip: node_addr().ip(),
                port: node_addr().port(),
                mid: &offer.mid,
                ice: &local,
                certificate: &cert,
                direction: offer.direction.reversed(),
                codecs: &codecs,
                ssrc: OUR_SSRC,
                cname: "node",
            },
            offer.answer_setup(),
        );
        rtc.sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .unwrap();
        Call::from_parts(rtc, leg, mid, now)
    }

    /// A call of the str0m browser `rtc` and our `leg` at `now`, nothing exchanged yet.
    fn from_parts(rtc: Rtc, leg: BrowserLeg, mid: Mid, now: Instant) -> Self {
        Call {
            rtc,
            leg,
            mid,
            now,
            browser_connected: false,
            browser_got: Vec::new(),
            node_got: Vec::new(),
            last_browser_srtp: None,
            to_browser: Vec::new(),
            drops: Vec::new(),
            rtcp: 0,
            cut: false,
        }
    }

    /// Moves time on by `step` and passes everything due both ways.
    fn step(&mut self, step: Duration) {
        self.now += step;
        let now = self.now;
        for d in std::mem::take(&mut self.to_browser) {
            let receive = Receive::new(Protocol::Udp, node_addr(), browser_addr(), &d).unwrap();
            self.rtc.handle_input(Input::Receive(now, receive)).unwrap();
        }
        self.rtc.handle_input(Input::Timeout(now)).unwrap();
        let mut from_browser = Vec::new();
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    assert_eq!(t.destination, node_addr());
                    from_browser.push(t.contents.to_vec());
                }
                Output::Event(Event::Connected) => self.browser_connected = true,
                Output::Event(Event::RtpPacket(p)) => self.browser_got.push(p.payload.to_vec()),
                Output::Event(_) => {}
            }
        }
        for d in from_browser {
            if matches!(d.first(), Some(128..=191)) && !rtp::is_rtcp(&d) {
                self.last_browser_srtp = Some(d.clone());
            }
            if !self.cut {
                self.feed(&d);
            }
        }
        if self.leg.poll_timeout().is_some_and(|at| at <= now) {
            self.leg.handle_timeout(now).unwrap();
            // Never a timer in the past after handling it: the media thread would spin.
            assert!(
                self.leg.poll_timeout().is_none_or(|at| at > now),
                "timer not moved on"
            );
        }
        self.drain_leg();
    }

    fn feed(&mut self, d: &[u8]) -> Received {
        let mut buf = [0u8; 2048];
        buf[..d.len()].copy_from_slice(d);
        let received = self
            .leg
            .handle_datagram(self.now, browser_addr(), &mut buf, d.len())
            .unwrap();
        match received {
            Received::Rtp { len, view } => {
                assert_eq!(
                    Some(view),
                    rtp::parse(&buf[..len]),
                    "the header as handed out"
                );
                self.node_got.push(buf[..len].to_vec());
            }
            Received::Rtcp => self.rtcp += 1,
            Received::Handled => {}
            Received::Dropped(reason) => self.drops.push(reason),
        }
        self.drain_leg();
        received
    }

    fn drain_leg(&mut self) {
        let mut out = [0u8; MAX_TRANSMIT_LEN];
        while let Some((destination, n)) = self.leg.poll_transmit(&mut out) {
            assert_eq!(destination, browser_addr());
            self.to_browser.push(out[..n].to_vec());
        }
    }

    fn run_until(&mut self, limit: Duration, done: impl Fn(&Call) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if done(self) {
                return true;
            }
            self.step(STEP);
        }
        done(self)
    }

    fn connect(&mut self) {
        assert!(
            self.run_until(Duration::from_secs(5), |c| c.browser_connected
                && c.leg.is_connected()),
            "no connection: drops {:?}",
            self.drops
        );
    }

    fn browser_sends(&mut self, seq: u64) {
        let now = self.now;
        let mut api = self.rtc.direct_api();
        let tx = api.stream_tx_by_mid(self.mid, None).expect("tx stream");
        tx.write_rtp(RtpWrite::new(
            Pt::from(0),
            seq.into(),
            (seq * 160) as u32,
            now,
            vec![0xd5; 160],
        ));
    }

    fn node_sends(&mut self, seq: u16) -> Result<(), LegError> {
        let (mut p, len) = plain_rtp(seq, &[0x42; 160]);
        let (destination, n) = self.leg.protect_rtp(self.now, &mut p, len)?;
        assert_eq!(destination, browser_addr());
        self.to_browser.push(p[..n].to_vec());
        Ok(())
    }

    /// Both sides send a packet every 20 ms for `duration`.
    fn talk(&mut self, first_seq: u16, duration: Duration) {
        let mut seq = first_seq;
        let end = self.now + duration;
        while self.now < end {
            self.browser_sends(u64::from(seq));
            self.node_sends(seq).unwrap();
            seq += 1;
            self.step(STEP);
            self.step(STEP);
        }
    }
}

#[test]
fn str0m_browser_connects_and_rtp_and_rtcp_flow_both_ways() {
    let mut call = Call::new();
    call.connect();
    assert!(call.leg.has_keys());
    call.media_flows_both_ways();
    assert!(
        !call.leg.has_handshake_state(),
        "the browser's SRTP confirms the handshake"
    );

    // Our first SR goes 5 s after the keys; str0m's next report echoes it (LSR, DLSR), which
    // gives a round trip of about one step (10 ms) each way.
    call.talk(2, Duration::from_secs(12));
    let stats = *call.leg.stats();
    assert!(stats.reports_sent >= 1, "{stats:?}");
    assert!(stats.reports_received >= 1, "{stats:?}");
    let rtt = stats.rtt_ms.expect("RTT from the browser's report block");
    assert!((5..=100).contains(&rtt), "{rtt} ms");
    assert!(call.rtcp >= 1);
    assert!(stats.packets_sent >= 300, "{stats:?}");
    assert_eq!(stats.octets_sent, stats.packets_sent * 160);
    let received = call.leg.received();
    assert!(received.packets >= 300, "{received:?}");
    assert_eq!(received.loss(), 0.0);
    // Our report blocks carry the browser stream's jitter now (str0m sends on a steady
    // virtual clock: close to none).
    assert!(received.jitter_ms() < 5.0, "{received:?}");
    assert_eq!(stats.cumulative_lost, 0);
    assert!(call.browser_got.len() >= 300);
    assert!(call.drops.is_empty(), "{:?}", call.drops);
}

#[test]
fn hostile_datagrams_are_dropped_with_a_reason_and_the_leg_keeps_working() {
    let mut call = Call::new();
    let mut noise = Noise(0x1234_5678_9abc_def0);
    let stranger: SocketAddr = "203.0.113.9:4000".parse().unwrap();
    let now = call.now;
    let mut buf = [0u8; 2048];

    // Before any check: SRTP and DTLS from anywhere come from an unvalidated source.
    buf[..3].copy_from_slice(&[0x80, 0, 1]);
    for first in [0x80u8, 22] {
        buf[0] = first;
        let r = call.leg.handle_datagram(now, browser_addr(), &mut buf, 40);
        assert_eq!(r, Ok(Received::Dropped(DropReason::UnvalidatedSource)));
    }
    // Garbage of every kind, and a length past the buffer.
    for _ in 0..2000 {
        let g = noise.some_bytes(300);
        buf[..g.len()].copy_from_slice(&g);
        match call.leg.handle_datagram(now, stranger, &mut buf, g.len()) {
            Ok(Received::Dropped(_)) => {}
            other => panic!("garbage gave {other:?}"),
        }
    }
    assert_eq!(
        call.leg.handle_datagram(now, stranger, &mut buf, 4096),
        Err(LegError::BadLength)
    );
    assert_eq!(
        call.leg.handle_datagram(now, stranger, &mut buf, 0),
        Ok(Received::Dropped(DropReason::NotWebRtc))
    );

    // A valid check validates the browser's address, but SRTP before the keys is dropped.
    let creds = call.leg.local_credentials().clone();
    let remote_ufrag = call.rtc_ufrag();
    let check = binding_request(
        [7; 12],
        &format!("{}:{remote_ufrag}", creds.ufrag()),
        creds.pwd(),
        1,
        false,
        9,
    );
    assert_eq!(call.feed(&check), Received::Handled);
    assert_eq!(call.to_browser.len(), 1, "the success response");
    call.to_browser.clear();
    let mut srtp = vec![0x80, 0, 0, 1];
    srtp.resize(60, 0xaa);
    assert_eq!(call.feed(&srtp), Received::Dropped(DropReason::NoKeys));
    let mut bad_integrity = check.clone();
    bad_integrity[30] ^= 1;
    assert!(matches!(
        call.feed(&bad_integrity),
        Received::Dropped(DropReason::Stun(_))
    ));
    call.drops.clear();

    // Connected: replays, truncations and bit flips of real SRTP are dropped.
    call.connect();
    call.browser_sends(1);
    assert!(call.run_until(Duration::from_secs(1), |c| !c.node_got.is_empty()));
    let real = call.last_browser_srtp.clone().expect("browser SRTP");
    assert_eq!(
        call.feed(&real),
        Received::Dropped(DropReason::Srtp(SrtpError::Replayed))
    );
    for cut in [1, 2, 11, 12, real.len() - 16, real.len() - 1] {
        assert!(
            matches!(
                call.feed(&real[..cut]),
                Received::Dropped(DropReason::Srtp(_) | DropReason::NotWebRtc)
            ),
            "truncated to {cut}"
        );
    }
    // A packet the leg has not seen yet, with one bit flipped, then as sent, then again.
    call.cut = true;
    call.browser_sends(2);
    call.step(STEP);
    call.cut = false;
    let fresh = call.last_browser_srtp.clone().expect("browser SRTP");
    assert_ne!(fresh, real);
    let mut flipped = fresh.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    assert_eq!(
        call.feed(&flipped),
        Received::Dropped(DropReason::Srtp(SrtpError::AuthFailed))
    );
    assert!(matches!(call.feed(&fresh), Received::Rtp { .. }));
    assert_eq!(
        call.feed(&fresh),
        Received::Dropped(DropReason::Srtp(SrtpError::Replayed))
    );
    // The same SRTP from a stranger: unvalidated, whatever the keys.
    buf[..real.len()].copy_from_slice(&real);
    assert_eq!(
        call.leg
            .handle_datagram(call.now, stranger, &mut buf, real.len()),
        Ok(Received::Dropped(DropReason::UnvalidatedSource))
    );
    // Noise shaped as SRTP and SRTCP from the browser's address.
    for _ in 0..500 {
        let mut g = noise.some_bytes(200);
        g[0] = 0x80 | (g[0] & 0x3f);
        call.feed(&g);
    }
    // Still working both ways.
    let got = call.node_got.len();
    call.browser_sends(3);
    call.node_sends(2).unwrap();
    assert!(
        call.run_until(Duration::from_secs(1), |c| c.node_got.len() > got
            && !c.browser_got.is_empty())
    );
    assert!(call.leg.is_connected());
}

#[test]
fn without_consent_checks_for_30_s_protect_rtp_refuses_and_the_leg_is_not_connected() {
    let mut call = Call::new();
    call.connect();
    call.node_sends(1).unwrap();
    assert!(!call.leg.consent_expired(call.now));
    call.cut = true;
    let cut_at = call.now;
    while call.now < cut_at + Duration::from_secs(29) {
        call.step(Duration::from_millis(100));
    }
    assert!(call.leg.is_connected(), "consent lasts 30 s");
    call.node_sends(2).unwrap();
    while call.now < cut_at + Duration::from_secs(31) {
        call.step(Duration::from_millis(100));
    }
    assert!(call.leg.consent_expired(call.now));
    assert!(!call.leg.is_connected());
    assert_eq!(call.node_sends(3), Err(LegError::ConsentExpired));
    // No reports to an address without consent either.
    call.to_browser.clear();
    let sent = call.leg.stats().reports_sent;
    for _ in 0..60 {
        call.step(Duration::from_millis(100));
    }
    assert_eq!(call.leg.stats().reports_sent, sent);
    assert!(call.to_browser.is_empty());
}

#[test]
fn protect_rtp_refuses_before_ice_and_keys() {
    let call = Call::new();
    let mut leg = call.leg;
    let (mut p, len) = plain_rtp(1, &[0; 160]);
    assert_eq!(
        leg.protect_rtp(call.now, &mut p, len),
        Err(LegError::NotSelected)
    );
    assert!(!leg.is_connected());
    assert!(
        !leg.has_handshake_state(),
        "no DTLS before the browser starts"
    );
    assert_eq!(
        leg.poll_timeout(),
        None,
        "nothing to time before its first check"
    );
}

#[test]
fn a_browser_that_starts_a_minute_after_the_answer_was_made_still_connects() {
    // The answer reaches the browser only when the far end answers; the DTLS handshake
    // deadline (10 s) counts from the browser's first check, not from the leg's making.
    let mut call = Call::with_leg_made_before(Duration::from_secs(60));
    call.leg.handle_timeout(call.now).unwrap();
    call.connect();
    call.media_flows_both_ways();
}

#[test]
fn answer_sdp_parses_back_with_everything_the_browser_needs() {
    let cert = NodeCertificate::generate().unwrap();
    let creds = Credentials::random();
    let codecs = vec![
        PayloadCodec {
            payload_type: 111,
            codec: Codec::OPUS,
            fmtp: Some("minptime=10;useinbandfec=1".into()),
        },
        PayloadCodec {
            payload_type: 126,
            codec: Codec::TELEPHONE_EVENT_8000,
            fmtp: Some("0-15".into()),
        },
    ];
    let sdp = answer_sdp(
        &LocalSdp {
            session_id: 7,
            version: 1,
            ip: "198.51.100.1".parse().unwrap(),
            port: 40000,
            mid: "0",
            ice: &creds,
            certificate: &cert,
            direction: Direction::SendOnly.reversed(),
            codecs: &codecs,
            ssrc: OUR_SSRC,
            cname: "node",
        },
        Setup::Passive,
    );
    let parsed = SessionDescription::parse(&sdp).unwrap();
    assert!(parsed.ice_lite());
    assert_eq!(parsed.bundle_group().unwrap().mids, vec!["0".to_owned()]);
    let media = parsed.media_by_mid("0").unwrap();
    assert_eq!(media.media.port.number(), Some(40000));
    assert!(media.media.proto.is_dtls_srtp());
    assert_eq!(media.media.payload_types().collect::<Vec<_>>(), [111, 126]);
    assert_eq!(parsed.ice_ufrag_for(media), Some(creds.ufrag()));
    assert_eq!(parsed.ice_pwd_for(media).unwrap().expose(), creds.pwd());
    assert_eq!(parsed.setup_for(media), Some(Setup::Passive));
    assert_eq!(parsed.direction_for(media), Direction::RecvOnly);
    assert!(media.has_attribute("rtcp-mux"));
    assert!(media.end_of_candidates());
    let fps = parsed.fingerprints_for(media);
    assert_eq!(fps.len(), 1);
    assert_eq!(*fps[0], cert.sdp_fingerprint());
    let candidate = media.candidates().next().unwrap();
    assert_eq!(
        candidate.socket_addr(),
        Some("198.51.100.1:40000".parse().unwrap())
    );
    assert!(sdp.contains("a=rtpmap:111 opus/48000/2\r\n"));
    assert!(sdp.contains("a=rtpmap:126 telephone-event/8000\r\n"));
    assert!(sdp.contains("a=fmtp:111 minptime=10;useinbandfec=1\r\n"));
    assert!(sdp.contains(&format!("a=ssrc:{OUR_SSRC} cname:node\r\n")));
    assert!(sdp.contains("c=IN IP4 198.51.100.1\r\n"));
}

#[test]
fn an_offer_without_what_the_leg_needs_is_refused() {
    let base = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\n\
                m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n";
    let ice = "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n";
    let fp = format!(
        "a=fingerprint:{}\r\n",
        NodeCertificate::generate().unwrap().sdp_fingerprint_value()
    );
    assert!(matches!(
        BrowserSdp::from_offer("garbage"),
        Err(LegError::Offer(_))
    ));
    assert!(matches!(
        BrowserSdp::from_offer(&format!("{base}{fp}")),
        Err(LegError::Offer("no a=ice-ufrag"))
    ));
    assert!(matches!(
        BrowserSdp::from_offer(&format!("{base}{ice}")),
        Err(LegError::Offer("no usable a=fingerprint"))
    ));
    let offer = BrowserSdp::from_offer(&format!("{base}{ice}{fp}a=setup:passive\r\n")).unwrap();
    assert_eq!(offer.mid, "0");
    assert_eq!(offer.direction, Direction::SendRecv);
    assert_eq!(offer.answer_setup(), Setup::Active);
    let params = offer.leg_params(Credentials::random(), 1, "node");
    assert_eq!(params.dtls_role, DtlsRole::Client);
}

#[test]
fn sdes_cname_is_padded_to_a_word_with_a_terminating_zero() {
    for cname in ["", "ab", "node", "abcdef"] {
        let mut out = Vec::new();
        write_sdes_cname(&mut out, 1, cname);
        assert_eq!(out.len() % 4, 0);
        assert_eq!(
            usize::from(u16::from_be_bytes([out[2], out[3]])) * 4 + 4,
            out.len()
        );
        assert_eq!(*out.last().unwrap(), 0);
    }
}

/// `cargo test -p media-node --lib leg::tests::inline_size -- --ignored --nocapture`
#[test]
#[ignore]
fn inline_size() {
    println!(
        "BrowserLeg {} B inline (IceLite {}, DtlsLeg {}, srtp::Context {} x2 boxed)",
        std::mem::size_of::<BrowserLeg>(),
        std::mem::size_of::<IceLite>(),
        std::mem::size_of::<DtlsLeg>(),
        std::mem::size_of::<Context>(),
    );
}

impl Call {
    /// The browser's ICE ufrag, from its offer (the leg has it).
    fn rtc_ufrag(&self) -> String {
        self.leg
            .ice
            .remote_credentials()
            .expect("set from the offer")
            .ufrag()
            .to_owned()
    }
}

/// dimpl's first DTLS retransmission comes this long after a flight (RFC 6347 §4.2.4.1).
const FIRST_RETRANSMIT: Duration = Duration::from_secs(1);

fn our_offer(cert: &NodeCertificate, local: &Credentials, codecs: &[PayloadCodec]) -> String {
    offer_sdp(&LocalSdp {
        session_id: 43,
        version: 1,
        ip: node_addr().ip(),
        port: node_addr().port(),
        mid: "0",
        ice: local,
        certificate: cert,
        direction: Direction::SendRecv,
        codecs,
        ssrc: OUR_SSRC,
        cname: "node",
    })
}

impl Call {
    /// The node offers, str0m answers: the leg before the answer and str0m's answer SDP.
    fn offering() -> (Self, String) {
        let now = Instant::now();
        let cert = NodeCertificate::generate().unwrap();
        let local = Credentials::random();
        let leg = BrowserLeg::offerer(now, &cert, local.clone(), OUR_SSRC, 8000, "node");
        assert!(leg.is_awaiting_answer());
        assert_eq!(leg.dtls_role(), None);
        let offer = our_offer(&cert, &local, &pcmu());
        let mut rtc = pcmu_browser(now);
        let answer = rtc
            .sdp_api()
            .accept_offer(SdpOffer::from_sdp_string(&offer).unwrap())
            .unwrap();
        let call = Call::from_parts(rtc, leg, Mid::from("0"), now);
        (call, answer.to_sdp_string())
    }

    fn apply(&mut self, answer: &str) {
        let answer = BrowserSdp::from_answer(answer).unwrap();
        self.leg.apply_answer(self.now, &answer).unwrap();
        self.drain_leg();
    }

    fn media_flows_both_ways(&mut self) {
        self.browser_sends(1);
        self.node_sends(1).unwrap();
        assert!(
            self.run_until(Duration::from_secs(1), |c| !c.node_got.is_empty()
                && !c.browser_got.is_empty())
        );
        // str0m adds a header extension block: the payload ends the plain packet.
        assert!(self.node_got[0].ends_with(&[0xd5; 160]), "browser payload");
        assert_eq!(self.node_got[0][1] & 0x7f, 0, "PCMU");
        assert_eq!(
            self.browser_got[0],
            vec![0x42; 160],
            "str0m got our payload"
        );
        assert!(self.drops.is_empty(), "{:?}", self.drops);
    }
}

#[test]
fn str0m_answering_our_offer_passive_makes_us_the_dtls_client_and_media_flows() {
    let (mut call, answer) = Call::offering();
    assert!(answer.contains("a=setup:passive"), "{answer}");
    call.apply(&answer);
    assert!(!call.leg.is_awaiting_answer());
    assert_eq!(call.leg.dtls_role(), Some(DtlsRole::Client));
    call.connect();
    call.media_flows_both_ways();
    assert!(!call.leg.has_handshake_state());
    assert_eq!(call.leg.stats().early_dtls_dropped, 0);
}

#[test]
fn str0m_checks_before_the_answer_are_answered_and_our_client_hello_goes_when_it_arrives() {
    let (mut call, answer) = Call::offering();
    // str0m has our offer (candidate, credentials): its checks come before its answer.
    assert!(call.run_until(Duration::from_secs(2), |c| c.leg.selected().is_some()));
    assert!(call.leg.is_awaiting_answer());
    assert_eq!(call.leg.poll_timeout().map(|at| at > call.now), Some(true));
    let applied = call.now;
    call.apply(&answer);
    assert!(!call.to_browser.is_empty(), "the ClientHello goes at once");
    call.connect();
    assert!(
        call.now - applied < FIRST_RETRANSMIT,
        "handshake took {:?}",
        call.now - applied
    );
    call.media_flows_both_ways();
}

/// An `active` browser built from a `DtlsLeg` (the DTLS client) and hand-made ICE checks.
struct ActiveBrowser {
    dtls: DtlsLeg,
    ice: Credentials,
    cert: NodeCertificate,
    keys: Option<(Context, Context)>,
}

impl ActiveBrowser {
    fn new(now: Instant, node_cert: &NodeCertificate) -> Self {
        let cert = NodeCertificate::generate().unwrap();
        let dtls = DtlsLeg::new(
            &cert,
            DtlsRole::Client,
            &[node_cert.peer_fingerprint()],
            now,
        )
        .unwrap();
        ActiveBrowser {
            dtls,
            ice: Credentials::random(),
            cert,
            keys: None,
        }
    }

    /// Its answer to our offer, written with our own writer (`a=setup:active`).
    fn answer(&self) -> String {
        answer_sdp(
            &LocalSdp {
                session_id: 9,
                version: 1,
                ip: browser_addr().ip(),
                port: browser_addr().port(),
                mid: "0",
                ice: &self.ice,
                certificate: &self.cert,
                direction: Direction::SendRecv.reversed(),
                codecs: &pcmu(),
                ssrc: 0x1234,
                cname: "browser",
            },
            Setup::Active,
        )
    }

    fn check(&self, node: &Credentials, nominate: bool) -> Vec<u8> {
        let username = format!("{}:{}", node.ufrag(), self.ice.ufrag());
        binding_request([3; 12], &username, node.pwd(), 1, nominate, 5)
    }

    /// Its queued DTLS datagrams; notes the keys.
    fn dtls_out(&mut self) -> Vec<Vec<u8>> {
        let mut buf = [0u8; POLL_BUFFER_LEN];
        let mut out = Vec::new();
        loop {
            match self.dtls.poll_output(&mut buf).unwrap() {
                DtlsOutput::Transmit(d) => out.push(d.to_vec()),
                DtlsOutput::Keys(keys) => self.keys = Some(keys.contexts().unwrap()),
                DtlsOutput::BufferTooSmall(n) => panic!("buffer too small: {n}"),
                DtlsOutput::Timeout(_) => return out,
            }
        }
    }
}

fn feed(leg: &mut BrowserLeg, now: Instant, d: &[u8]) -> Received {
    let mut buf = [0u8; 2048];
    buf[..d.len()].copy_from_slice(d);
    leg.handle_datagram(now, browser_addr(), &mut buf, d.len())
        .unwrap()
}

fn drain(leg: &mut BrowserLeg) -> Vec<Vec<u8>> {
    let mut out = [0u8; MAX_TRANSMIT_LEN];
    let mut sent = Vec::new();
    while let Some((destination, n)) = leg.poll_transmit(&mut out) {
        assert_eq!(destination, browser_addr());
        sent.push(out[..n].to_vec());
    }
    sent
}

#[test]
fn active_browser_client_hello_before_the_answer_is_kept_and_the_handshake_needs_no_retransmit() {
    let start = Instant::now();
    let cert = NodeCertificate::generate().unwrap();
    let local = Credentials::random();
    let mut leg = BrowserLeg::offerer(start, &cert, local.clone(), OUR_SSRC, 8000, "node");
    let mut browser = ActiveBrowser::new(start, &cert);

    // Before the answer: the check is answered, the ClientHello kept, SRTP dropped.
    let mut now = start;
    assert_eq!(
        feed(&mut leg, now, &browser.check(&local, true)),
        Received::Handled
    );
    assert_eq!(leg.selected(), Some(browser_addr()));
    assert_eq!(drain(&mut leg).len(), 1, "the check's response");
    let hello = browser.dtls_out();
    assert!(!hello.is_empty());
    for d in &hello {
        assert_eq!(feed(&mut leg, now, d), Received::Handled);
    }
    assert!(
        drain(&mut leg).is_empty(),
        "nothing to say before the answer"
    );
    let mut srtp = vec![0x80, 0, 0, 1];
    srtp.resize(60, 0xaa);
    assert_eq!(
        feed(&mut leg, now, &srtp),
        Received::Dropped(DropReason::NoKeys)
    );

    // The answer arrives 300 ms later: the kept ClientHello gets its reply at once.
    now += Duration::from_millis(300);
    let answer = BrowserSdp::from_answer(&browser.answer()).unwrap();
    assert_eq!(answer.offerer_role(), Ok(DtlsRole::Server));
    leg.apply_answer(now, &answer).unwrap();
    assert_eq!(leg.dtls_role(), Some(DtlsRole::Server));
    let mut to_browser = drain(&mut leg);
    assert!(!to_browser.is_empty(), "ServerHello flight at once");
    // Flights both ways, 10 ms a hop, no timer run: only the first flights' timers could
    // resend, and they are not due before `FIRST_RETRANSMIT`.
    while !(leg.has_keys() && browser.keys.is_some()) {
        assert!(now - start < FIRST_RETRANSMIT, "needed a retransmission");
        now += STEP;
        for d in std::mem::take(&mut to_browser) {
            browser.dtls.handle_datagram(now, &d).unwrap();
        }
        for d in browser.dtls_out() {
            assert_eq!(feed(&mut leg, now, &d), Received::Handled);
        }
        to_browser = drain(&mut leg);
    }
    assert!(leg.is_connected());
    assert_eq!(leg.stats().early_dtls_dropped, 0);

    // SRTP both ways with the payloads sent.
    let (mut out, mut inbound) = browser.keys.take().unwrap();
    let (mut p, len) = plain_rtp(7, &[0x11; 160]);
    let n = out.protect_rtp(&mut p, len).unwrap();
    match feed(&mut leg, now, &p[..n]) {
        Received::Rtp { len: m, .. } => assert_eq!(m, len),
        other => panic!("{other:?}"),
    }
    let (mut q, len) = plain_rtp(8, &[0x22; 160]);
    let (destination, n) = leg.protect_rtp(now, &mut q, len).unwrap();
    assert_eq!(destination, browser_addr());
    let m = inbound.unprotect_rtp(&mut q[..n]).unwrap();
    assert_eq!(&q[12..m], &[0x22; 160][..]);
}

#[test]
fn early_dtls_is_bounded_oldest_dropped_and_only_from_validated_addresses() {
    let now = Instant::now();
    let cert = NodeCertificate::generate().unwrap();
    let local = Credentials::random();
    let mut leg = BrowserLeg::offerer(now, &cert, local.clone(), OUR_SSRC, 8000, "node");
    let browser = ActiveBrowser::new(now, &cert);
    let dtls_like = |i: u8| vec![22, 0xfe, 0xfd, i, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    assert_eq!(
        feed(&mut leg, now, &dtls_like(0)),
        Received::Dropped(DropReason::UnvalidatedSource)
    );
    assert_eq!(
        feed(&mut leg, now, &browser.check(&local, false)),
        Received::Handled
    );
    for i in 0..MAX_EARLY_DTLS as u8 + 4 {
        assert_eq!(feed(&mut leg, now, &dtls_like(i)), Received::Handled);
    }
    assert_eq!(leg.stats().early_dtls_dropped, 4);
    let kept = &leg.awaiting_answer.as_ref().unwrap().early_dtls;
    assert_eq!(kept.len(), MAX_EARLY_DTLS);
    assert_eq!(kept.front().unwrap()[3], 4, "the oldest went");

    // A `passive` answer makes us the client: what was kept is discarded and counted.
    let mut answer = BrowserSdp::from_answer(&browser.answer()).unwrap();
    answer.setup = Setup::Passive;
    leg.apply_answer(now, &answer).unwrap();
    assert_eq!(leg.dtls_role(), Some(DtlsRole::Client));
    assert_eq!(leg.stats().early_dtls_dropped, 4 + MAX_EARLY_DTLS as u32);
}

#[test]
fn an_answer_with_actpass_or_without_fingerprint_or_ice_credentials_is_refused() {
    let now = Instant::now();
    let cert = NodeCertificate::generate().unwrap();
    let base = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nt=0 0\r\n\
                m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n";
    let ice = "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n";
    let fp = format!(
        "a=fingerprint:{}\r\n",
        NodeCertificate::generate().unwrap().sdp_fingerprint_value()
    );
    let answer = |extra: &str| BrowserSdp::from_answer(&format!("{base}{extra}"));
    assert_eq!(
        answer(&format!("{ice}{fp}a=setup:actpass\r\n")).unwrap_err(),
        LegError::Answer("a=setup:actpass in an answer")
    );
    assert_eq!(
        answer(&format!("{ice}{fp}a=setup:holdconn\r\n")).unwrap_err(),
        LegError::Answer("a=setup:holdconn")
    );
    assert_eq!(
        answer(&format!("{ice}a=setup:active\r\n")).unwrap_err(),
        LegError::Answer("no usable a=fingerprint")
    );
    assert_eq!(
        answer(&format!("{fp}a=setup:active\r\n")).unwrap_err(),
        LegError::Answer("no a=ice-ufrag")
    );
    assert_eq!(
        answer(&format!("a=ice-ufrag:abcd\r\n{fp}a=setup:active\r\n")).unwrap_err(),
        LegError::Answer("no a=ice-pwd")
    );
    assert_eq!(
        LegError::Answer("no a=ice-pwd").to_string(),
        "browser answer: no a=ice-pwd"
    );
    // No a=setup in an answer reads as active (RFC 4145 §4).
    let ok = answer(&format!("{ice}{fp}")).unwrap();
    assert_eq!(ok.offerer_role(), Ok(DtlsRole::Server));

    // apply_answer checks too, and leaves the leg waiting when it refuses.
    let mut leg = BrowserLeg::offerer(now, &cert, Credentials::random(), 1, 8000, "node");
    let mut bad = ok.clone();
    bad.setup = Setup::Actpass;
    assert!(matches!(
        leg.apply_answer(now, &bad),
        Err(LegError::Answer(_))
    ));
    let mut bad = ok.clone();
    bad.remote_fingerprints.clear();
    assert!(matches!(
        leg.apply_answer(now, &bad),
        Err(LegError::Answer(_))
    ));
    assert!(leg.is_awaiting_answer());
    leg.apply_answer(now, &ok).unwrap();
    assert!(
        matches!(leg.apply_answer(now, &ok), Err(LegError::Answer(_))),
        "only one answer"
    );
    // An answerer leg takes none.
    assert!(matches!(
        Call::new().leg.apply_answer(now, &ok),
        Err(LegError::Answer(_))
    ));
}

#[test]
fn offer_sdp_parses_back_with_actpass_our_mid_direction_and_credentials() {
    let cert = NodeCertificate::generate().unwrap();
    let creds = Credentials::random();
    let sdp = our_offer(&cert, &creds, &pcmu());
    let parsed = SessionDescription::parse(&sdp).unwrap();
    assert!(parsed.ice_lite());
    assert_eq!(parsed.bundle_group().unwrap().mids, vec!["0".to_owned()]);
    let media = parsed.media_by_mid("0").unwrap();
    assert_eq!(parsed.setup_for(media), Some(Setup::Actpass));
    assert_eq!(parsed.direction_for(media), Direction::SendRecv);
    assert_eq!(parsed.ice_ufrag_for(media), Some(creds.ufrag()));
    assert_eq!(parsed.ice_pwd_for(media).unwrap().expose(), creds.pwd());
    assert_eq!(*parsed.fingerprints_for(media)[0], cert.sdp_fingerprint());
    assert!(media.has_attribute("rtcp-mux"));
    assert_eq!(media.media.payload_types().collect::<Vec<_>>(), [0]);
    assert!(sdp.contains("a=rtpmap:0 PCMU/8000\r\n"));
    assert!(sdp.contains(&format!("a=ssrc:{OUR_SSRC} cname:node\r\n")));
    assert!(sdp.contains("a=candidate:1 1 udp 2130706431 198.51.100.1 3478 typ host\r\n"));
    let recvonly = offer_sdp(&LocalSdp {
        direction: Direction::RecvOnly,
        mid: "audio",
        session_id: 1,
        version: 1,
        ip: node_addr().ip(),
        port: 1,
        ice: &creds,
        certificate: &cert,
        codecs: &pcmu(),
        ssrc: 1,
        cname: "n",
    });
    assert!(recvonly.contains("a=recvonly\r\na=rtcp-mux"));
    assert!(recvonly.contains("a=mid:audio\r\n"));
    // The offer read back as the browser reads it.
    let read = BrowserSdp::from_offer(&sdp).unwrap();
    assert_eq!(read.setup, Setup::Actpass);
    assert_eq!(read.mid, "0");
}
