//! The real binary's control API: an echo allocation answers a Chromium offer as an ICE-lite
//! DTLS-SRTP endpoint on the media port; a bridge allocation offers plain RTP/AVP on a port of
//! the range; unsigned, wrongly signed and replayed requests are refused; released sessions are
//! gone; an inbound call (the upstream's RTP/AVP offer first) gets an ICE-lite WebRTC offer for
//! the browser and, once the browser answered, a plain RTP/AVP answer for the upstream.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{SystemTime, UNIX_EPOCH};

use common::{media_node, Running};
use shared::control::auth::sign_request;
use shared::control::{
    decode, encode, AllocateInbound, AllocateInboundResponse, AllocateRequest, AllocateResponse,
    ApplyBrowserAnswer, ApplyBrowserAnswerResponse, ControlError, Mode, SessionStats,
};
use shared::sdp::{offered_codecs, Connection, Proto, SessionDescription, Setup};

const SECRET: &str = "integration-test-fleet-secret";
const OFFER: &str = include_str!("data/chromium156_audio_offer.sdp");
const RTP_MIN: u16 = 43_000;
const RTP_MAX: u16 = 43_019;

struct Node {
    _running: Running,
    control: SocketAddr,
    media: SocketAddr,
}

fn start() -> Node {
    let mut command = media_node();
    command
        .env("MEDIA_NODE_CONTROL_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_MEDIA_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_RTP_PORT_MIN", RTP_MIN.to_string())
        .env("MEDIA_NODE_RTP_PORT_MAX", RTP_MAX.to_string())
        .env("MEDIA_NODE_CAPACITY", "10")
        .env("MEDIA_NODE_FLEET_SECRET", SECRET)
        .env("MEDIA_NODE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    let mut running = Running::spawn(command);
    let started = running.wait_for_line("startup", |l| l.contains("media-node started"));
    let started: serde_json::Value = serde_json::from_str(&started).unwrap();
    let addr = |key: &str| -> SocketAddr { started[key].as_str().unwrap().parse().unwrap() };
    Node {
        control: addr("control_listen"),
        media: addr("media_listen"),
        _running: running,
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// One HTTP/1.1 exchange with the node's control API; returns status and body.
fn http(
    node: &Node,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let (status, _, body) = common::http_exchange(node.control, method, path, headers, body);
    (status, body)
}

fn signed(
    node: &Node,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Vec<u8>, [(&'static str, String); 3]) {
    let headers = sign_request(
        SECRET.as_bytes(),
        method,
        path,
        unix_now(),
        &common::fresh_nonce(),
        body,
    );
    let pairs: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, v.clone())).collect();
    let (status, body) = http(node, method, path, &pairs, body);
    (status, body, headers)
}

fn allocate(node: &Node, mode: Mode) -> AllocateResponse {
    let body = encode(&AllocateRequest {
        call_id: "it-call".into(),
        browser_offer_sdp: OFFER.into(),
        mode,
    });
    let (status, body, _) = signed(node, "POST", "/v1/sessions", &body);
    assert_eq!(status, 200, "{:?}", decode::<ControlError>(&body));
    decode(&body).unwrap()
}

#[test]
fn echo_allocation_answers_as_ice_lite_dtls_on_the_media_port() {
    let node = start();
    let response = allocate(&node, Mode::Echo);
    assert!(response.upstream_offer_sdp.is_none());
    let answer: SessionDescription = response.browser_answer_sdp.parse().unwrap();
    let audio = &answer.media[0];
    assert!(
        answer.ice_lite() || audio.ice_lite(),
        "{}",
        response.browser_answer_sdp
    );
    assert_eq!(answer.setup_for(audio), Some(Setup::Passive));
    let fingerprints = answer.fingerprints_for(audio);
    assert_eq!(fingerprints.len(), 1);
    assert_eq!(fingerprints[0].hash_function, "sha-256");
    let candidates: Vec<_> = audio.candidates().collect();
    assert_eq!(candidates.len(), 1);
    assert_eq!(candidates[0].socket_addr(), Some(node.media));
    assert_eq!(audio.media.proto, Proto::UdpTlsRtpSavpf);
    let pts: Vec<u8> = audio.payload_types().collect();
    // The relayable codecs of the offer, in the offer's order and with its numbers.
    assert_eq!(
        pts,
        [111, 9, 0, 8, 110, 126],
        "{}",
        response.browser_answer_sdp
    );
    assert!(audio.rtcp_mux());

    let path = format!("/v1/sessions/{}/stats", response.session_id);
    let (status, body, _) = signed(&node, "GET", &path, b"");
    assert_eq!(status, 200);
    let stats: SessionStats = decode(&body).unwrap();
    assert_eq!(stats.packets_from_browser, 0);

    let path = format!("/v1/sessions/{}", response.session_id);
    let (status, _, _) = signed(&node, "DELETE", &path, b"");
    assert_eq!(status, 200);
    let (status, body, _) = signed(&node, "DELETE", &path, b"");
    assert_eq!(status, 404);
    assert_eq!(
        decode::<ControlError>(&body).unwrap(),
        ControlError::UnknownSession
    );
}

#[test]
fn bridge_allocation_offers_plain_rtp_on_a_port_in_range() {
    let node = start();
    let response = allocate(&node, Mode::Bridge);
    let offer: SessionDescription = response
        .upstream_offer_sdp
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    let audio = &offer.media[0];
    assert_eq!(audio.media.proto, Proto::RtpAvp);
    let port = audio.port().unwrap();
    assert!((RTP_MIN..=RTP_MAX).contains(&port), "{port}");
    assert_eq!(
        offer.connection_for(audio).and_then(Connection::ip),
        Some("127.0.0.1".parse().unwrap())
    );
    assert!(audio.ice_ufrag().is_none() && audio.fingerprints().next().is_none());
    // The port is really bound: a second bind fails.
    assert!(
        UdpSocket::bind(("127.0.0.1", port)).is_err(),
        "RTP port {port} not bound"
    );
}

#[test]
fn unsigned_forged_and_replayed_requests_are_refused() {
    let node = start();
    let body = encode(&AllocateRequest {
        call_id: "x".into(),
        browser_offer_sdp: OFFER.into(),
        mode: Mode::Echo,
    });
    let (status, reply) = http(&node, "POST", "/v1/sessions", &[], &body);
    assert_eq!(status, 401);
    assert!(matches!(
        decode::<ControlError>(&reply).unwrap(),
        ControlError::Unauthorized { .. }
    ));

    let forged = sign_request(
        b"not-the-fleet-secret-at-all",
        "POST",
        "/v1/sessions",
        unix_now(),
        &common::fresh_nonce(),
        &body,
    );
    let pairs: Vec<(&str, String)> = forged.iter().map(|(k, v)| (*k, v.clone())).collect();
    assert_eq!(http(&node, "POST", "/v1/sessions", &pairs, &body).0, 401);

    let (status, _, headers) = signed(&node, "POST", "/v1/sessions", &body);
    assert_eq!(status, 200);
    let pairs: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, v.clone())).collect();
    let (status, reply) = http(&node, "POST", "/v1/sessions", &pairs, &body);
    assert_eq!(status, 401);
    assert_eq!(
        decode::<ControlError>(&reply).unwrap(),
        ControlError::Replay
    );

    // A bad offer is a 400 with the reason; health stays open without signature.
    let bad = encode(&AllocateRequest {
        call_id: "x".into(),
        browser_offer_sdp: "v=0\r\n".into(),
        mode: Mode::Echo,
    });
    let (status, reply, _) = signed(&node, "POST", "/v1/sessions", &bad);
    assert_eq!(status, 400);
    assert!(matches!(
        decode::<ControlError>(&reply).unwrap(),
        ControlError::BadSdp { .. }
    ));
    assert_eq!(http(&node, "GET", "/healthz", &[], b"").0, 200);
}

/// sipp 3.6.1's built-in UAC SDP (`shared/conformance/sdp/sipp361_uac_builtin_template.sdp`)
/// filled in, plus PCMA and telephone-event as a carrier would offer them.
const SIPP_OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n\
    c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 96\r\na=rtpmap:0 PCMU/8000\r\n\
    a=rtpmap:8 PCMA/8000\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\n";

/// What a browser answers to `offer`: a str0m peer (full ICE, PCMU/opus and telephone-event,
/// as Chromium has them).
fn browser_answer(offer: &str) -> String {
    use str0m::format::{Codec, FormatParams};
    use str0m::media::{Frequency, Pt};
    let mut config = str0m::Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_pcmu(true, false);
    config.codec_config().add_config(
        Pt::from(126),
        None,
        Codec::Tele,
        Frequency::EIGHT_KHZ,
        None,
        FormatParams::default(),
    );
    let mut rtc = config.build(std::time::Instant::now());
    rtc.add_local_candidate(
        str0m::Candidate::host("127.0.0.1:50000".parse().unwrap(), "udp").unwrap(),
    );
    rtc.sdp_api()
        .accept_offer(str0m::change::SdpOffer::from_sdp_string(offer).unwrap())
        .unwrap()
        .to_sdp_string()
}

#[test]
fn inbound_call_offers_ice_lite_webrtc_to_the_browser_and_answers_the_upstream_with_rtp_avp() {
    let node = start();
    let body = encode(&AllocateInbound {
        call_id: "it-inbound".into(),
        upstream_offer_sdp: SIPP_OFFER.into(),
    });
    let (status, body, _) = signed(&node, "POST", "/v1/sessions/inbound", &body);
    assert_eq!(status, 200, "{:?}", decode::<ControlError>(&body));
    let response: AllocateInboundResponse = decode(&body).unwrap();
    eprintln!("browser offer:\n{}", response.browser_offer_sdp);
    let offer: SessionDescription = response.browser_offer_sdp.parse().unwrap();
    let audio = &offer.media[0];
    assert!(offer.ice_lite() || audio.ice_lite());
    assert_eq!(offer.setup_for(audio), Some(Setup::Actpass));
    let fingerprints = offer.fingerprints_for(audio);
    assert_eq!(fingerprints.len(), 1);
    assert_eq!(fingerprints[0].hash_function, "sha-256");
    assert!(offer.ice_ufrag_for(audio).is_some() && offer.ice_pwd_for(audio).is_some());
    let candidates: Vec<_> = audio.candidates().collect();
    assert_eq!(candidates.len(), 1);
    assert_eq!(candidates[0].socket_addr(), Some(node.media));
    assert_eq!(audio.media.proto, Proto::UdpTlsRtpSavpf);
    assert!(audio.rtcp_mux());
    assert!(audio.mid().is_some());
    let codecs: Vec<String> = offered_codecs(audio)
        .iter()
        .map(|c| c.codec.to_string())
        .collect();
    assert_eq!(codecs, ["PCMU/8000", "PCMA/8000", "telephone-event/8000"]);

    // The browser answers PCMU and telephone-event (under the node's number).
    let answer = browser_answer(&response.browser_offer_sdp);
    eprintln!("browser answer:\n{answer}");
    let path = format!("/v1/sessions/{}/browser-answer", response.session_id);
    let body = encode(&ApplyBrowserAnswer {
        session_id: response.session_id.clone(),
        browser_answer_sdp: answer,
    });
    let (status, body, _) = signed(&node, "POST", &path, &body);
    assert_eq!(status, 200, "{:?}", decode::<ControlError>(&body));
    let applied: ApplyBrowserAnswerResponse = decode(&body).unwrap();
    eprintln!("upstream answer:\n{}", applied.upstream_answer_sdp);
    let answer: SessionDescription = applied.upstream_answer_sdp.parse().unwrap();
    let audio = &answer.media[0];
    assert_eq!(audio.media.proto, Proto::RtpAvp);
    assert_eq!(
        answer.connection_for(audio).and_then(Connection::ip),
        Some("127.0.0.1".parse().unwrap())
    );
    let port = audio.port().unwrap();
    assert!(
        (RTP_MIN..=RTP_MAX).contains(&port) && port.is_multiple_of(2),
        "{port}"
    );
    assert!(
        UdpSocket::bind(("127.0.0.1", port)).is_err(),
        "RTP port {port} not bound"
    );
    let codecs: Vec<(u8, String)> = offered_codecs(audio)
        .iter()
        .map(|c| (c.payload_type, c.codec.to_string()))
        .collect();
    assert_eq!(
        codecs,
        [(0, "PCMU/8000".into()), (96, "telephone-event/8000".into())],
        "telephone-event with the upstream's number"
    );
    assert!(audio.ice_ufrag().is_none() && audio.fingerprints().next().is_none());

    // Errors: a second answer, an unknown session, a non-RTP/AVP offer.
    let body = encode(&ApplyBrowserAnswer {
        session_id: response.session_id.clone(),
        browser_answer_sdp: "v=0\r\n".into(),
    });
    let (status, _, _) = signed(&node, "POST", &path, &body);
    assert_eq!(status, 400);
    let body = encode(&ApplyBrowserAnswer {
        session_id: shared::control::SessionId::new("unknown"),
        browser_answer_sdp: "v=0\r\n".into(),
    });
    let (status, reply, _) = signed(&node, "POST", "/v1/sessions/unknown/browser-answer", &body);
    assert_eq!(status, 404);
    assert_eq!(
        decode::<ControlError>(&reply).unwrap(),
        ControlError::UnknownSession
    );
    let body = encode(&AllocateInbound {
        call_id: "x".into(),
        upstream_offer_sdp: SIPP_OFFER.replace("RTP/AVP", "RTP/SAVP"),
    });
    let (status, reply, _) = signed(&node, "POST", "/v1/sessions/inbound", &body);
    assert_eq!(status, 400);
    assert!(matches!(
        decode::<ControlError>(&reply).unwrap(),
        ControlError::BadSdp { .. }
    ));
}
