//! End to end through the real binary and real UDP sockets: a str0m peer plays the browser
//! (ICE, DTLS, SRTP) against a bridge session, a plain UDP socket plays the upstream. Audio
//! sent as SRTP arrives upstream as plain RTP, and plain RTP from the upstream (from an address
//! other than the one in its SDP answer: symmetric RTP) reaches the browser.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{media_node, Running, WAIT};
use shared::control::auth::sign_request;
use shared::control::{
    decode, encode, AllocateRequest, AllocateResponse, ApplyAnswer, ApplyAnswerResponse, Mode,
    CONTENT_TYPE,
};
use shared::sdp::SessionDescription;
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, Pt};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc};

const SECRET: &str = "end-to-end-test-fleet-secret";

fn call<T: serde::de::DeserializeOwned>(control: SocketAddr, path: &str, body: &[u8]) -> T {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let nonce = format!("e2e-nonce-{:020}", now * 1000 + body.len() as u64);
    let headers = sign_request(SECRET.as_bytes(), "POST", path, now, &nonce, body);
    let mut stream = TcpStream::connect(control).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: n\r\nConnection: close\r\nContent-Type: {CONTENT_TYPE}\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    decode(&response[split + 4..]).unwrap()
}

fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&0x5eed_u32.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

#[test]
fn srtp_from_a_webrtc_peer_reaches_a_plain_rtp_upstream_and_back() {
    let mut command = media_node();
    command
        .env("MEDIA_NODE_CONTROL_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_MEDIA_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_RTP_PORT_MIN", "43100")
        .env("MEDIA_NODE_RTP_PORT_MAX", "43119")
        .env("MEDIA_NODE_CAPACITY", "10")
        .env("MEDIA_NODE_FLEET_SECRET", SECRET)
        .env("MEDIA_NODE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    let mut node = Running::spawn(command);
    let started = node.wait_for_line("startup", |l| l.contains("media-node started"));
    let started: serde_json::Value = serde_json::from_str(&started).unwrap();
    let control: SocketAddr = started["control_listen"].as_str().unwrap().parse().unwrap();

    // The browser: str0m with PCMU, on a real socket.
    let browser_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    browser_socket
        .set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let browser_addr = browser_socket.local_addr().unwrap();
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_pcmu(true, false)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(browser_addr, "udp").unwrap());
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, pending) = change.apply().unwrap();

    let allocated: AllocateResponse = call(
        control,
        "/v1/sessions",
        &encode(&AllocateRequest {
            call_id: "e2e".into(),
            browser_offer_sdp: offer.to_sdp_string(),
            mode: Mode::Bridge,
        }),
    );
    let upstream_offer: SessionDescription = allocated
        .upstream_offer_sdp
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    let rtp_port = upstream_offer.media[0].port().unwrap();

    // The upstream sits behind NAT: its SDP names `signalled`, its RTP comes from (and must go
    // back to) `upstream`.
    let signalled = UdpSocket::bind("127.0.0.1:0").unwrap();
    let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
    upstream.set_nonblocking(true).unwrap();
    let node_rtp = SocketAddr::from(([127, 0, 0, 1], rtp_port));
    let answer_sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\n",
        signalled.local_addr().unwrap().port()
    );
    let applied: ApplyAnswerResponse = call(
        control,
        &format!("/v1/sessions/{}/answer", allocated.session_id),
        &encode(&ApplyAnswer {
            session_id: allocated.session_id.clone(),
            upstream_answer_sdp: answer_sdp,
        }),
    );
    let answer = SdpAnswer::from_sdp_string(&applied.browser_answer_sdp).unwrap();
    rtc.sdp_api().accept_answer(pending, answer).unwrap();

    let deadline = Instant::now() + WAIT;
    let mut seq = 0u64;
    let mut last_send = Instant::now();
    let mut upstream_got: Vec<Vec<u8>> = Vec::new();
    let mut browser_got: Vec<Vec<u8>> = Vec::new();
    let mut upstream_seq = 0u16;
    let mut last_upstream_send = Instant::now();
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline && (upstream_got.len() < 5 || browser_got.len() < 5) {
        // Drain the browser's output.
        loop {
            match rtc.poll_output().unwrap() {
                Output::Timeout(_) => break,
                Output::Transmit(t) => {
                    browser_socket.send_to(&t.contents, t.destination).unwrap();
                }
                Output::Event(Event::RtpPacket(p)) => browser_got.push(p.payload.to_vec()),
                Output::Event(_) => {}
            }
        }
        match browser_socket.recv_from(&mut buf) {
            Ok((len, source)) => {
                let receive =
                    Receive::new(Protocol::Udp, source, browser_addr, &buf[..len]).unwrap();
                rtc.handle_input(Input::Receive(Instant::now(), receive))
                    .unwrap();
                continue;
            }
            Err(_) => rtc.handle_input(Input::Timeout(Instant::now())).unwrap(),
        }
        if rtc.is_connected() && last_send.elapsed() >= Duration::from_millis(20) && seq < 200 {
            seq += 1;
            last_send = Instant::now();
            let payload = format!("e2e-{seq}");
            let mut api = rtc.direct_api();
            let tx = api.stream_tx_by_mid(mid, None).unwrap();
            tx.write_rtp(RtpWrite::new(
                Pt::from(0),
                seq.into(),
                seq as u32 * 160,
                Instant::now(),
                payload.into_bytes(),
            ));
        }
        while let Ok((len, from)) = upstream.recv_from(&mut buf) {
            assert_eq!(
                from, node_rtp,
                "plain RTP comes from the session's RTP port"
            );
            assert_eq!(buf[0] >> 6, 2);
            assert_eq!(buf[1] & 0x7f, 0, "PCMU");
            upstream_got.push(buf[12..len].to_vec());
        }
        if last_upstream_send.elapsed() >= Duration::from_millis(20) && upstream_seq < 200 {
            upstream_seq += 1;
            last_upstream_send = Instant::now();
            let packet = rtp(
                0,
                upstream_seq,
                u32::from(upstream_seq) * 160,
                b"from-upstream",
            );
            upstream.send_to(&packet, node_rtp).unwrap();
        }
    }
    assert!(
        upstream_got.len() >= 5,
        "upstream got {} packets",
        upstream_got.len()
    );
    assert!(
        upstream_got.iter().all(|p| p.starts_with(b"e2e-")),
        "{upstream_got:?}"
    );
    assert!(
        browser_got.len() >= 5,
        "browser got {} packets",
        browser_got.len()
    );
    assert!(browser_got.iter().all(|p| p == b"from-upstream"));
}
