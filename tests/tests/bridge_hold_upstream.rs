//! Hold from the browser side of a bridged call, on real processes: the edge (wrangler dev), one
//! media node, a SIP-over-WebSocket client whose WebRTC offer is str0m's, and the recording
//! upstream of `tests::upstream`. The client's re-INVITE with `a=sendonly` is answered by the
//! node, and the edge then re-INVITEs the upstream itself with `a=sendonly` (the node's plain RTP
//! SDP); resuming sends `a=sendrecv`. No browser is needed: the re-offer is SDP text.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use serde_json::json;
use shared::sip::{Contacts, HeaderName, SipMessage};
use str0m::media::{Direction, MediaKind};
use str0m::{Candidate, Rtc};
use tests::phone::DemoStack;
use tests::process::wait_for;
use tests::sip_ws::SipWsClient;
use tests::upstream::UpstreamUas;

const DOMAIN: &str = "localhost";

/// A WebRTC offer (audio, PCMU) from str0m; the socket only names the candidate.
fn webrtc_offer(socket: &UdpSocket) -> String {
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_pcmu(true, false)
        .build(Instant::now());
    rtc.add_local_candidate(
        Candidate::host(socket.local_addr().expect("addr"), "udp").expect("candidate"),
    );
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
    let (offer, _pending) = change.apply().expect("offer");
    offer.to_sdp_string()
}

/// The dialog as the WebSocket client (the caller) sees it.
struct Dialog {
    call_id: String,
    from: String,
    to: String,
    target: String,
    routes: String,
}

fn request(ws: &mut SipWsClient, d: &Dialog, method: &str, cseq: u32, sdp: Option<&str>) {
    let branch = ws.token();
    let body = sdp.unwrap_or("");
    let ctype = if sdp.is_some() {
        "Content-Type: application/sdp\r\n"
    } else {
        ""
    };
    ws.send_raw(&format!(
        "{method} {target} SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK{branch}\r\n\
         Max-Forwards: 70\r\n{routes}To: {to}\r\nFrom: {from}\r\nCall-ID: {call_id}\r\n\
         CSeq: {cseq} {method}\r\nContact: <{contact}>\r\n{ctype}Content-Length: {len}\r\n\r\n{body}",
        target = d.target,
        routes = d.routes,
        to = d.to,
        from = d.from,
        call_id = d.call_id,
        contact = ws.contact,
        len = body.len()
    ))
    .expect("send");
}

fn final_response(ws: &mut SipWsClient, call_id: &str, cseq: u32) -> SipMessage {
    let id = call_id.to_owned();
    ws.wait_for(
        &format!("the final response to CSeq {cseq}"),
        Duration::from_secs(20),
        |m| {
            m.call_id().ok() == Some(id.as_str())
                && m.status().is_some_and(|s| s >= 200)
                && m.cseq().is_ok_and(|c| c.seq == cseq)
        },
    )
    .unwrap_or_else(|e| panic!("no final response to CSeq {cseq}: {e}"))
}

/// Named with its file's name so that `cargo xtask test bridge_hold_upstream` selects it.
#[test]
fn bridge_hold_upstream_browser_hold_and_resume_reach_the_upstream_as_reinvites() {
    let rtp = UdpSocket::bind("127.0.0.1:0").expect("upstream RTP socket");
    let uas = UpstreamUas::start(rtp.local_addr().expect("addr")).expect("upstream SIP server");
    let stack = DemoStack::start(
        "bridge-hold-upstream",
        &["1001"],
        json!({ "registration": "local", "upstream": {
            "host": "127.0.0.1", "port": uas.addr.port(), "transport": "tcp", "media": "bridge" } }),
    );
    let node = stack.media_node("hold-node", (42600, 42619), &[("MEDIA_NODE_CAPACITY", "5")]);
    let logs = || {
        format!(
            "--- edge ---\n{}\n--- node ---\n{}\n--- upstream got ---\n{:#?}",
            stack.edge.log_tail(40),
            node.log_tail(15),
            uas.received()
        )
    };

    let mut ws = SipWsClient::connect(stack.edge.addr, "127.0.0.1", "1001", DOMAIN).expect("ws");
    let ok = ws.register("demo-1001", 600).expect("register");
    assert_eq!(ok.status(), Some(200));

    // The call.
    let browser_socket = UdpSocket::bind("127.0.0.1:0").expect("browser socket");
    let offer = webrtc_offer(&browser_socket);
    let call_id = ws.token();
    let tag = ws.token();
    let from = format!("<sip:1001@{DOMAIN}>;tag={tag}");
    let mut d = Dialog {
        call_id: call_id.clone(),
        from: from.clone(),
        to: format!("<sip:5551234@{DOMAIN}>"),
        target: format!("sip:5551234@{DOMAIN}"),
        routes: String::new(),
    };
    request(&mut ws, &d, "INVITE", 1, Some(&offer));
    let answer = final_response(&mut ws, &call_id, 1);
    assert_eq!(answer.status(), Some(200), "{answer:?}\n{}", logs());
    d.to = answer.headers.get(&HeaderName::To).expect("To").to_owned();
    d.routes = answer
        .headers
        .get_all(&HeaderName::RecordRoute)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .map(|r| format!("Route: {r}\r\n"))
        .collect();
    d.target = match answer.contacts() {
        Ok(Contacts::List(list)) => list.first().map(|c| c.uri.to_string()),
        _ => None,
    }
    .expect("the 200 has a Contact");
    request(&mut ws, &d, "ACK", 1, None);

    // Hold: the node answers the client, then the edge re-INVITEs the upstream with sendonly.
    let hold = offer.replace("a=sendrecv", "a=sendonly");
    assert_ne!(hold, offer, "str0m's offer names its direction");
    request(&mut ws, &d, "INVITE", 2, Some(&hold));
    let held = final_response(&mut ws, &call_id, 2);
    assert_eq!(held.status(), Some(200), "{held:?}\n{}", logs());
    request(&mut ws, &d, "ACK", 2, None);
    let reinvite = wait_for(Duration::from_secs(10), || {
        uas.find_all("INVITE", &call_id)
            .into_iter()
            .find(|r| r.in_dialog)
    })
    .unwrap_or_else(|| panic!("the upstream got no re-INVITE for the hold\n{}", logs()));
    assert_eq!(
        reinvite.direction.as_deref(),
        Some("sendonly"),
        "{reinvite:?}"
    );
    let first = uas.find("INVITE", &call_id).expect("the first INVITE");
    assert_eq!(
        reinvite.offer_port, first.offer_port,
        "the same node port towards the upstream"
    );

    // Resume: sendrecv again.
    request(&mut ws, &d, "INVITE", 3, Some(&offer));
    let resumed = final_response(&mut ws, &call_id, 3);
    assert_eq!(resumed.status(), Some(200), "{resumed:?}\n{}", logs());
    request(&mut ws, &d, "ACK", 3, None);
    let resume = wait_for(Duration::from_secs(10), || {
        uas.find_all("INVITE", &call_id)
            .into_iter()
            .filter(|r| r.in_dialog)
            .nth(1)
    })
    .unwrap_or_else(|| panic!("the upstream got no re-INVITE for the resume\n{}", logs()));
    assert_eq!(resume.direction.as_deref(), Some("sendrecv"), "{resume:?}");

    // The hold's re-INVITEs were answered and ACKed: the call still hangs up normally.
    request(&mut ws, &d, "BYE", 4, None);
    let bye = final_response(&mut ws, &call_id, 4);
    assert_eq!(bye.status(), Some(200), "{bye:?}\n{}", logs());
    assert!(uas.find("BYE", &call_id).is_some(), "{}", logs());
    let acks = uas.find_all("ACK", &call_id).len();
    assert_eq!(acks, 3, "the call's ACK and one per re-INVITE\n{}", logs());
}
