//! Hold and other re-offers in a bridged call, on virtual time: a browser's hold (or resume) is
//! offered to the upstream by the core itself once the browser has its answer; the upstream's
//! real re-offers go to the media node, are answered mirrored, and a hold is offered on to the
//! browser; session refreshes and ICE restarts stay local.

mod proxy_common;

use proxy_common::*;
use shared::proxy::{BridgeOffer, Event, Output};
use shared::sip::{Header, HeaderName, Method, SipMessage};

/// The node's plain RTP offer for the upstream.
const RTP_OFFER: &str = "v=0\r\no=- 7 1 IN IP4 10.9.0.1\r\ns=-\r\nc=IN IP4 10.9.0.1\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
/// The upstream's plain RTP answer.
const RTP_ANSWER: &str = "v=0\r\no=pbx 1 1 IN IP4 10.0.0.7\r\ns=-\r\nc=IN IP4 10.0.0.7\r\n\
t=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=sendrecv\r\n";
/// The node's final answer for the browser.
const NODE_ANSWER: &str = "v=0\r\no=- 8 2 IN IP4 10.9.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
m=audio 3478 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 10.9.0.1\r\na=setup:passive\r\na=sendrecv\r\n";
const HOLD_OFFER: &str = "v=0\r\no=- 4611731400430051336 3 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n";
const HOLD_ANSWER: &str = "v=0\r\no=- 8 3 IN IP4 10.9.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
m=audio 3478 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 10.9.0.1\r\na=recvonly\r\n";
/// The browser resuming (and an ICE restart: new credentials, same direction).
const RESUME_OFFER: &str = "v=0\r\no=- 4611731400430051336 4 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:new1\r\n\
a=sendrecv\r\n";
const RESUME_ANSWER: &str = "v=0\r\no=- 8 4 IN IP4 10.9.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
m=audio 3478 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 10.9.0.1\r\na=sendrecv\r\n";
/// The upstream puts the call on hold from a new port.
const UPSTREAM_HOLD: &str = "v=0\r\no=pbx 1 2 IN IP4 10.0.0.7\r\ns=-\r\nc=IN IP4 10.0.0.7\r\n\
t=0 0\r\nm=audio 40002 RTP/AVP 0 101\r\na=sendonly\r\n";
/// The node's answer to it (its own o= line; the core carries ours on).
const NODE_REOFFER_ANSWER: &str = "v=0\r\no=- 555 1 IN IP4 10.9.0.1\r\ns=-\r\n\
c=IN IP4 10.9.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 101\r\na=recvonly\r\n";
const UPSTREAM_CONTACT: &str = "<sip:5551234@10.0.0.7:5060>";

fn body(m: &SipMessage) -> &str {
    std::str::from_utf8(m.body()).unwrap()
}

fn upstream_response(req: &SipMessage, status: u16, reason: &str, sdp: Option<&str>) -> SipMessage {
    let mut r = req.response_to(status, reason, Some("up1")).unwrap();
    if (200..300).contains(&status) {
        let pos = r.headers.position(&HeaderName::ContentLength).unwrap();
        r.headers.insert(
            pos,
            Header::new(
                HeaderName::RecordRoute,
                "<sip:127.0.0.1;transport=ws;lr;acct=1001>",
            ),
        );
        r.headers
            .insert(pos + 1, Header::new(HeaderName::Contact, UPSTREAM_CONTACT));
    }
    if let Some(sdp) = sdp {
        r.set_body(Some("application/sdp"), sdp.as_bytes().to_vec());
    }
    r
}

/// A call from browser A to the upstream, answered and ACKed; returns the browser's dialog.
fn established_call_out(net: &mut Net, a: &mut Browser, call_id: &str) -> Dialog {
    let invite = a.invite("5551234", call_id);
    net.browser_sends(a, invite.clone());
    net.take("wsA");
    let [Output::BridgeOffer { id, .. }] = net.take_other("1001")[..] else {
        panic!("expected a BridgeOffer")
    };
    net.event(
        "1001",
        Event::BridgeReady {
            id,
            result: Ok(BridgeOffer {
                session: "s1".into(),
                upstream_offer: RTP_OFFER.into(),
            }),
        },
    );
    let up = one(net.take_upstream("1001"));
    net.upstream_sends("1001", upstream_response(&up, 200, "OK", Some(RTP_ANSWER)));
    let [Output::BridgeAnswer { id, .. }] = net.take_other("1001")[..] else {
        panic!("expected a BridgeAnswer")
    };
    net.event(
        "1001",
        Event::BridgeAnswered {
            id,
            result: Ok(NODE_ANSWER.into()),
        },
    );
    let ok = one(net.take("wsA"));
    assert_eq!(status(&ok), 200);
    let mut d = Dialog::uac(&invite, &ok);
    let ack = d.request(a, Method::ACK, None);
    net.browser_sends(a, ack);
    assert_eq!(method(&one(net.take_upstream("1001"))), Method::ACK);
    d
}

/// The browser re-offers `offer`; the node answers `answer`; returns the browser's 200.
fn browser_reoffer(
    net: &mut Net,
    a: &mut Browser,
    d: &mut Dialog,
    offer: &str,
    answer: &str,
) -> SipMessage {
    let reinvite = d.request(a, Method::INVITE, Some(offer));
    net.browser_sends(a, reinvite);
    assert_eq!(statuses(&net.take("wsA")), [100]);
    let [Output::BridgeRenegotiate { id, .. }] = net.take_other("1001")[..] else {
        panic!("expected a BridgeRenegotiate")
    };
    assert!(
        net.take_upstream("1001").is_empty(),
        "nothing goes upstream before the browser has its answer"
    );
    net.event(
        "1001",
        Event::BridgeRenegotiated {
            id,
            result: Ok(answer.into()),
        },
    );
    let ok = one(net.take("wsA"));
    assert_eq!(status(&ok), 200);
    let ack = d.request(a, Method::ACK, None);
    net.browser_sends(a, ack);
    ok
}

/// An in-dialog request from the upstream to browser A (as the callee of call `call_id`).
fn upstream_request(
    a: &Browser,
    m: &str,
    call_id: &str,
    cseq: u32,
    sdp: Option<&str>,
) -> SipMessage {
    let body = sdp.unwrap_or("");
    let ctype = if sdp.is_some() {
        "Content-Type: application/sdp\n"
    } else {
        ""
    };
    parse(&format!(
        "{m} {contact} SIP/2.0\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKup{cseq}{m}\n\
Max-Forwards: 70\nRoute: <sip:127.0.0.1;transport=ws;lr;acct=1001>\n\
From: <sip:5551234@localhost>;tag=up1\nTo: \"1001\" <sip:1001@localhost>;tag=fromwsA\n\
Call-ID: {call_id}\nCSeq: {cseq} {m}\nContact: {UPSTREAM_CONTACT}\n{ctype}\
Content-Length: {len}\n\n{body}",
        contact = a.contact_uri(),
        len = body.len()
    ))
}

#[test]
fn browser_hold_and_resume_are_offered_to_the_upstream_after_the_browser_has_its_answer() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let mut d = established_call_out(&mut net, &mut a, "hold-1");
    let ok = browser_reoffer(&mut net, &mut a, &mut d, HOLD_OFFER, HOLD_ANSWER);
    assert_eq!(body(&ok), HOLD_ANSWER);

    // The re-INVITE of the core's own: the node's SDP towards the upstream, version bumped,
    // sendonly; in the dialog as the browser.
    let reinvite = one(net.take_upstream("1001"));
    assert_eq!(method(&reinvite), Method::INVITE);
    let sdp = body(&reinvite);
    assert!(sdp.contains("o=- 7 2 IN IP4 10.9.0.1\r\n"), "{sdp}");
    assert!(sdp.contains("m=audio 30000 RTP/AVP 0 8 101\r\n"), "{sdp}");
    assert!(sdp.contains("c=IN IP4 10.9.0.1\r\n"), "{sdp}");
    assert!(sdp.contains("a=sendonly\r\n") && !sdp.contains("a=sendrecv"));
    assert_eq!(reinvite.to().unwrap().tag(), Some("up1"));
    assert_eq!(reinvite.call_id().unwrap(), "hold-1");
    let shared::sip::StartLine::Request { uri, .. } = &reinvite.start_line else {
        panic!("a request")
    };
    assert_eq!(
        uri.to_string(),
        UPSTREAM_CONTACT.trim_matches(['<', '>']),
        "to the upstream's Contact"
    );
    let seq = reinvite.cseq().unwrap().seq;
    assert!(
        seq > 2,
        "above every CSeq the browser used towards the upstream"
    );
    assert!(
        header(&reinvite, "Contact")[0].starts_with(&format!("<{}", a.contact_uri())),
        "the browser's Contact"
    );

    // The upstream answers recvonly: ACKed (same CSeq), nothing to the browser, no node call.
    let answer = RTP_ANSWER.replace("a=sendrecv", "a=recvonly");
    net.upstream_sends(
        "1001",
        upstream_response(&reinvite, 200, "OK", Some(&answer)),
    );
    let ack = one(net.take_upstream("1001"));
    assert_eq!(method(&ack), Method::ACK);
    assert_eq!(ack.cseq().unwrap().seq, seq);
    assert!(net.take("wsA").is_empty());
    assert!(net.take_other("1001").is_empty());

    // Resume (with an ICE restart): sendrecv again, version bumped again.
    browser_reoffer(&mut net, &mut a, &mut d, RESUME_OFFER, RESUME_ANSWER);
    let resume = one(net.take_upstream("1001"));
    assert_eq!(method(&resume), Method::INVITE);
    assert!(
        body(&resume).contains("o=- 7 3 IN IP4"),
        "{}",
        body(&resume)
    );
    assert!(body(&resume).contains("a=sendrecv\r\n"));
    assert!(resume.cseq().unwrap().seq > seq);
    net.upstream_sends(
        "1001",
        upstream_response(&resume, 200, "OK", Some(RTP_ANSWER)),
    );
    assert_eq!(method(&one(net.take_upstream("1001"))), Method::ACK);

    // The call goes on: BYE reaches the upstream and releases.
    let bye = d.request(&mut a, Method::BYE, None);
    net.browser_sends(&a, bye);
    assert_eq!(method(&one(net.take_upstream("1001"))), Method::BYE);
    assert_eq!(
        net.take_other("1001"),
        [Output::BridgeRelease {
            session: "s1".into()
        }]
    );
}

#[test]
fn ice_restart_without_a_direction_change_sends_nothing_upstream() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let mut d = established_call_out(&mut net, &mut a, "hold-2");
    browser_reoffer(&mut net, &mut a, &mut d, RESUME_OFFER, RESUME_ANSWER);
    assert!(net.take_upstream("1001").is_empty());
    assert!(net.take_other("1001").is_empty());
}

#[test]
fn upstream_491_to_the_hold_is_retried_and_a_refusal_keeps_the_call() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let mut d = established_call_out(&mut net, &mut a, "hold-3");
    browser_reoffer(&mut net, &mut a, &mut d, HOLD_OFFER, HOLD_ANSWER);
    let first = one(net.take_upstream("1001"));

    // Glare: the upstream's own re-offer meanwhile gets 491.
    let glare = upstream_request(&a, "INVITE", "hold-3", 7, Some(UPSTREAM_HOLD));
    net.upstream_sends("1001", glare);
    assert_eq!(statuses(&net.take_upstream("1001")), [491]);

    // Our re-INVITE gets 491: ACKed on its branch, sent again 2.1-4 s later.
    net.upstream_sends(
        "1001",
        upstream_response(&first, 491, "Request Pending", None),
    );
    let ack = one(net.take_upstream("1001"));
    assert_eq!(method(&ack), Method::ACK);
    assert_eq!(
        ack.top_via().unwrap().branch(),
        first.top_via().unwrap().branch()
    );
    net.advance(2_000);
    assert!(net.take_upstream("1001").is_empty(), "not before 2.1 s");
    net.advance(2_000);
    let again = one(net.take_upstream("1001"));
    assert_eq!(method(&again), Method::INVITE);
    assert!(body(&again).contains("a=sendonly"));
    assert!(again.cseq().unwrap().seq > first.cseq().unwrap().seq);

    // Refused: ACKed, and the call goes on.
    net.upstream_sends(
        "1001",
        upstream_response(&again, 488, "Not Acceptable Here", None),
    );
    assert_eq!(method(&one(net.take_upstream("1001"))), Method::ACK);
    assert!(net.take("wsA").is_empty(), "the browser is not bothered");
    net.advance(60_000);
    assert!(net.take_upstream("1001").is_empty(), "not retried");
    let bye = d.request(&mut a, Method::BYE, None);
    net.browser_sends(&a, bye);
    assert_eq!(method(&one(net.take_upstream("1001"))), Method::BYE);
}

#[test]
fn upstream_hold_is_applied_by_the_node_answered_mirrored_and_offered_to_the_browser() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let _d = established_call_out(&mut net, &mut a, "hold-4");
    let reinvite = upstream_request(&a, "INVITE", "hold-4", 2, Some(UPSTREAM_HOLD));
    net.upstream_sends("1001", reinvite);
    assert_eq!(statuses(&net.take_upstream("1001")), [100]);
    let id = match &net.take_other("1001")[..] {
        [Output::BridgeUpstreamReoffer {
            id,
            session,
            upstream_offer,
        }] => {
            assert_eq!(session, "s1");
            assert_eq!(upstream_offer, UPSTREAM_HOLD);
            *id
        }
        other => panic!("expected one BridgeUpstreamReoffer, got {other:?}"),
    };
    net.event(
        "1001",
        Event::BridgeUpstreamReoffered {
            id,
            result: Ok(NODE_REOFFER_ANSWER.into()),
        },
    );
    let ok = one(net.take_upstream("1001"));
    assert_eq!(status(&ok), 200);
    let sdp = body(&ok);
    assert!(
        sdp.contains("o=- 7 2 IN IP4 10.9.0.1\r\n"),
        "our origin, version bumped: {sdp}"
    );
    assert!(sdp.contains("a=recvonly\r\n"), "sendonly mirrored: {sdp}");
    assert!(sdp.contains("m=audio 30000 "), "{sdp}");
    assert!(
        header(&ok, "Contact")[0].starts_with(&format!("<{}", a.contact_uri())),
        "the browser's Contact"
    );

    // The browser is told: a re-INVITE with the node's browser SDP, sendonly, version bumped.
    let to_browser = one(net.take("wsA"));
    assert_eq!(method(&to_browser), Method::INVITE);
    let offer = body(&to_browser);
    assert!(offer.contains("o=- 8 3 IN IP4 10.9.0.1\r\n"), "{offer}");
    assert!(offer.contains("a=sendonly\r\n") && !offer.contains("a=sendrecv"));
    assert!(offer.contains("a=setup:passive"), "the DTLS role is kept");
    assert_eq!(to_browser.from().unwrap().tag(), Some("up1"));
    assert_eq!(header(&to_browser, "Contact"), [UPSTREAM_CONTACT]);
    let mut answer = a.respond(&to_browser, 200, "OK");
    answer.set_body(
        Some("application/sdp"),
        NODE_ANSWER.replace("sendrecv", "recvonly").into_bytes(),
    );
    net.browser_sends(&a, answer);
    let ack = one(net.take("wsA"));
    assert_eq!(method(&ack), Method::ACK);
    assert_eq!(ack.cseq().unwrap().seq, to_browser.cseq().unwrap().seq);
    assert!(
        net.take_other("1001").is_empty(),
        "the node needs no answer"
    );

    // The upstream's ACK is absorbed.
    net.upstream_sends("1001", upstream_request(&a, "ACK", "hold-4", 2, None));
    assert!(net.take("wsA").is_empty());

    // A refresh of the held session (same SDP, version bumped) is answered at once, unchanged.
    let refresh = UPSTREAM_HOLD.replace("pbx 1 2", "pbx 1 3");
    net.upstream_sends(
        "1001",
        upstream_request(&a, "INVITE", "hold-4", 3, Some(&refresh)),
    );
    let again = one(net.take_upstream("1001"));
    assert_eq!(status(&again), 200);
    assert_eq!(body(&again), sdp, "the answer it already has");
    assert!(net.take_other("1001").is_empty(), "the node is not asked");
    assert!(net.take("wsA").is_empty());
}

#[test]
fn session_refresh_with_the_same_sdp_is_answered_at_once_without_the_node() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let _d = established_call_out(&mut net, &mut a, "hold-5");
    net.upstream_sends(
        "1001",
        upstream_request(&a, "INVITE", "hold-5", 2, Some(RTP_ANSWER)),
    );
    let ok = one(net.take_upstream("1001"));
    assert_eq!(status(&ok), 200);
    assert_eq!(body(&ok), RTP_OFFER, "unchanged, version and all");
    assert!(net.take_other("1001").is_empty());
    assert!(net.take("wsA").is_empty());
}

#[test]
fn upstream_reoffer_the_node_refuses_gets_its_status_and_the_call_goes_on() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let mut d = established_call_out(&mut net, &mut a, "hold-6");
    net.upstream_sends(
        "1001",
        upstream_request(&a, "INVITE", "hold-6", 2, Some(UPSTREAM_HOLD)),
    );
    net.take_upstream("1001");
    let [Output::BridgeUpstreamReoffer { id, .. }] = net.take_other("1001")[..] else {
        panic!("expected a BridgeUpstreamReoffer")
    };
    net.event(
        "1001",
        Event::BridgeUpstreamReoffered {
            id,
            result: Err((488, "Not Acceptable Here".into())),
        },
    );
    let refused = one(net.take_upstream("1001"));
    assert_eq!(status(&refused), 488);
    assert!(net.take("wsA").is_empty(), "the browser is not told");
    let bye = d.request(&mut a, Method::BYE, None);
    net.browser_sends(&a, bye);
    assert_eq!(method(&one(net.take_upstream("1001"))), Method::BYE);
}
