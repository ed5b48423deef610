//! Hold from the browser side of a bridged call, on real processes: the edge (wrangler dev), one
//! media node, a SIP-over-WebSocket client whose WebRTC offer is str0m's, and the recording
//! upstream of `tests::upstream`. The client's re-INVITE with `a=sendonly` is answered by the
//! node, and the edge then re-INVITEs the upstream itself with `a=sendonly` (the node's plain RTP
//! SDP); resuming sends `a=sendrecv`. No browser is needed: the re-offer is SDP text.

use std::net::UdpSocket;
use std::time::Duration;

use serde_json::json;
use shared::sip::SipMessage;
use tests::phone::DemoStack;
use tests::process::wait_for;
use tests::sip_ws::{Dialog, SipWsClient};
use tests::upstream::UpstreamUas;
use tests::webrtc::BrowserMedia;

fn request(ws: &mut SipWsClient, d: &Dialog, method: &str, cseq: u32, sdp: Option<&str>) {
    d.request(ws, method, cseq, sdp).expect("send");
}

fn final_response(ws: &mut SipWsClient, d: &Dialog, cseq: u32) -> SipMessage {
    d.final_response(ws, cseq, Duration::from_secs(20))
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

    let mut ws = stack.register("1001");

    // The call. The browser's media is never started: its socket only names the candidate.
    let (_browser, offer) = BrowserMedia::offer().expect("the browser's offer");
    let mut d = Dialog::new(&mut ws, "5551234");
    let call_id = d.call_id.clone();
    request(&mut ws, &d, "INVITE", 1, Some(&offer));
    let answer = final_response(&mut ws, &d, 1);
    assert_eq!(answer.status(), Some(200), "{answer:?}\n{}", logs());
    d.confirm(&answer).expect("the 200 has a To and a Contact");
    request(&mut ws, &d, "ACK", 1, None);

    // Hold: the node answers the client, then the edge re-INVITEs the upstream with sendonly.
    let hold = offer.replace("a=sendrecv", "a=sendonly");
    assert_ne!(hold, offer, "str0m's offer names its direction");
    request(&mut ws, &d, "INVITE", 2, Some(&hold));
    let held = final_response(&mut ws, &d, 2);
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
    let resumed = final_response(&mut ws, &d, 3);
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
    let bye = final_response(&mut ws, &d, 4);
    assert_eq!(bye.status(), Some(200), "{bye:?}\n{}", logs());
    assert!(uas.find("BYE", &call_id).is_some(), "{}", logs());
    let acks = uas.find_all("ACK", &call_id).len();
    assert_eq!(acks, 3, "the call's ACK and one per re-INVITE\n{}", logs());
}
