//! Calls between browsers and the upstream through a media bridge: the core asks the shell for
//! the media node's SDP both ways, holds the SIP messages meanwhile, and releases each session
//! once.

mod proxy_common;

use proxy_common::*;
use shared::proxy::{BridgeBrowserOffer, BridgeOffer, Event, Output, RegistrationMode};
use shared::sip::{Header, HeaderName, Method, SipMessage, StartLine};

/// The node's plain RTP offer for the upstream.
const RTP_OFFER: &str = "v=0\r\no=- 7 1 IN IP4 10.9.0.1\r\ns=-\r\nc=IN IP4 10.9.0.1\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
/// The upstream's plain RTP answer.
const RTP_ANSWER: &str = "v=0\r\no=pbx 1 1 IN IP4 10.0.0.7\r\ns=-\r\nc=IN IP4 10.0.0.7\r\n\
t=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=sendrecv\r\n";
/// The node's final answer for the browser.
const NODE_ANSWER: &str = "v=0\r\no=- 8 2 IN IP4 10.9.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
m=audio 3478 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 10.9.0.1\r\na=setup:passive\r\na=sendrecv\r\n";
/// The node's WebRTC offer for the browsers (a call from the upstream).
const NODE_OFFER: &str = "v=0\r\no=- 9 1 IN IP4 10.9.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
m=audio 3478 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 10.9.0.1\r\na=setup:actpass\r\na=sendrecv\r\n";
const HOLD_OFFER: &str = "v=0\r\no=- 4611731400430051336 3 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\n";
const HOLD_ANSWER: &str = "v=0\r\no=- 8 3 IN IP4 10.9.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
m=audio 3478 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 10.9.0.1\r\na=recvonly\r\n";
const UPSTREAM_CONTACT: &str = "<sip:5551234@10.0.0.7:5060>";

/// The upstream's response to `req`, with extra headers and an optional SDP body.
fn upstream_response(
    req: &SipMessage,
    status: u16,
    reason: &str,
    extra: &[(&str, &str)],
    sdp: Option<&str>,
) -> SipMessage {
    let mut r = req.response_to(status, reason, Some("up1")).unwrap();
    let pos = r.headers.position(&HeaderName::ContentLength).unwrap();
    for (i, (n, v)) in extra.iter().enumerate() {
        r.headers
            .insert(pos + i, Header::new(HeaderName::parse(n), *v));
    }
    if let Some(sdp) = sdp {
        r.set_body(Some("application/sdp"), sdp.as_bytes().to_vec());
    }
    r
}

fn upstream_ok(req: &SipMessage, sdp: &str) -> SipMessage {
    upstream_response(
        req,
        200,
        "OK",
        &[
            ("Record-Route", "<sip:127.0.0.1;transport=ws;lr;acct=1001>"),
            ("Contact", UPSTREAM_CONTACT),
        ],
        Some(sdp),
    )
}

fn body(m: &SipMessage) -> &str {
    std::str::from_utf8(m.body()).unwrap()
}

fn release(session: &str) -> Output {
    Output::BridgeRelease {
        session: session.into(),
    }
}

/// The browser's INVITE to 5551234 up to the shell's `BridgeOffer`; returns the INVITE and the
/// offer's id.
fn call_out(net: &mut Net, a: &mut Browser, call_id: &str) -> (SipMessage, u64) {
    let invite = a.invite("5551234", call_id);
    net.browser_sends(a, invite.clone());
    assert_eq!(statuses(&net.take("wsA")), [100]);
    assert!(
        net.take_upstream("1001").is_empty(),
        "the INVITE waits for the bridge"
    );
    let id = match &net.take_other("1001")[..] {
        [Output::BridgeOffer {
            id,
            call_id: c,
            browser_offer,
        }] => {
            assert_eq!(c, call_id);
            assert_eq!(browser_offer, SDP_OFFER);
            *id
        }
        other => panic!("expected one BridgeOffer, got {other:?}"),
    };
    (invite, id)
}

/// The bridge is ready: returns the INVITE as the upstream gets it.
fn bridge_ready(net: &mut Net, id: u64, session: &str) -> SipMessage {
    net.event(
        "1001",
        Event::BridgeReady {
            id,
            result: Ok(BridgeOffer {
                session: session.into(),
                upstream_offer: RTP_OFFER.into(),
            }),
        },
    );
    one(net.take_upstream("1001"))
}

fn bridge_answer_request(net: &mut Net, session: &str, upstream_answer: &str) -> u64 {
    match &net.take_other("1001")[..] {
        [Output::BridgeAnswer {
            id,
            session: s,
            upstream_answer: u,
        }] => {
            assert_eq!(s, session);
            assert_eq!(u, upstream_answer);
            *id
        }
        other => panic!("expected one BridgeAnswer, got {other:?}"),
    }
}

/// An outgoing call up to the browser's ACK: returns the browser's dialog.
fn established_call_out(net: &mut Net, a: &mut Browser, call_id: &str) -> Dialog {
    let (invite, id) = call_out(net, a, call_id);
    let up = bridge_ready(net, id, "s1");
    net.upstream_sends("1001", upstream_ok(&up, RTP_ANSWER));
    let id = bridge_answer_request(net, "s1", RTP_ANSWER);
    net.event(
        "1001",
        Event::BridgeAnswered {
            id,
            result: Ok(NODE_ANSWER.into()),
        },
    );
    let ok = one(net.take("wsA"));
    assert_eq!(status(&ok), 200);
    assert_eq!(body(&ok), NODE_ANSWER);
    let mut d = Dialog::uac(&invite, &ok);
    let ack = d.request(a, Method::ACK, None);
    net.browser_sends(a, ack);
    assert_eq!(method(&one(net.take_upstream("1001"))), Method::ACK);
    d
}

#[test]
fn outgoing_call_gets_the_bridge_sdp_both_ways_and_bye_releases_once() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let (invite, id) = call_out(&mut net, &mut a, "out-1");
    let up = bridge_ready(&mut net, id, "s1");
    assert_eq!(method(&up), Method::INVITE);
    assert_eq!(
        body(&up),
        RTP_OFFER,
        "the upstream gets the node's RTP offer"
    );
    assert_eq!(header(&up, "Content-Type"), ["application/sdp"]);
    assert_eq!(
        header(&up, "Record-Route"),
        ["<sip:127.0.0.1;transport=ws;lr;acct=1001>"]
    );

    // 180 without SDP goes straight through; 183 with SDP waits for the bridge, and so does
    // the 200 behind it.
    net.upstream_sends("1001", upstream_response(&up, 180, "Ringing", &[], None));
    assert_eq!(statuses(&net.take("wsA")), [180]);
    net.upstream_sends(
        "1001",
        upstream_response(&up, 183, "Session Progress", &[], Some(RTP_ANSWER)),
    );
    let answer_id = bridge_answer_request(&mut net, "s1", RTP_ANSWER);
    net.upstream_sends("1001", upstream_ok(&up, RTP_ANSWER));
    assert!(net.take("wsA").is_empty(), "held until the bridge answers");
    assert!(
        net.take_other("1001").is_empty(),
        "the same answer is not asked for twice"
    );
    net.event(
        "1001",
        Event::BridgeAnswered {
            id: answer_id,
            result: Ok(NODE_ANSWER.into()),
        },
    );
    let got = net.take("wsA");
    assert_eq!(statuses(&got), [183, 200], "in order");
    for r in &got {
        assert_eq!(body(r), NODE_ANSWER);
        assert_eq!(header(r, "Content-Type"), ["application/sdp"]);
    }
    assert_eq!(got[1].vias().unwrap().len(), 1);

    let mut d = Dialog::uac(&invite, &got[1]);
    let ack = d.request(&mut a, Method::ACK, None);
    net.browser_sends(&a, ack);
    assert_eq!(method(&one(net.take_upstream("1001"))), Method::ACK);
    assert!(net.take_other("1001").is_empty());

    let bye = d.request(&mut a, Method::BYE, None);
    net.browser_sends(&a, bye);
    let bye_up = one(net.take_upstream("1001"));
    assert_eq!(method(&bye_up), Method::BYE);
    assert_eq!(net.take_other("1001"), [release("s1")]);
    net.upstream_sends("1001", upstream_response(&bye_up, 200, "OK", &[], None));
    assert_eq!(statuses(&net.take("wsA")), [200]);
    net.advance(60_000);
    assert!(net.take_other("1001").is_empty(), "released once");
}

#[test]
fn bridge_failure_answers_the_browser_and_nothing_goes_upstream() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let (_, id) = call_out(&mut net, &mut a, "out-2");
    net.event(
        "1001",
        Event::BridgeReady {
            id,
            result: Err((503, "No Media Node Available".into())),
        },
    );
    let got = one(net.take("wsA"));
    assert_eq!(
        got.start_line,
        StartLine::Response {
            status: 503,
            reason: "No Media Node Available".into()
        }
    );
    assert!(net.take_upstream("1001").is_empty());
    assert!(
        net.take_other("1001").is_empty(),
        "no session, nothing to release"
    );
}

#[test]
fn upstream_busy_reaches_the_browser_and_releases_the_session() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let (_, id) = call_out(&mut net, &mut a, "out-3");
    let up = bridge_ready(&mut net, id, "s3");
    net.upstream_sends("1001", upstream_response(&up, 486, "Busy Here", &[], None));
    assert_eq!(statuses(&net.take("wsA")), [486]);
    assert_eq!(
        method(&one(net.take_upstream("1001"))),
        Method::ACK,
        "the 486 is ACKed hop by hop"
    );
    assert_eq!(net.take_other("1001"), [release("s3")]);
}

#[test]
fn caller_cancel_while_waiting_for_the_bridge_gets_487_and_the_late_session_is_released() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let (invite, id) = call_out(&mut net, &mut a, "out-4");
    net.browser_sends(&a, a.cancel(&invite));
    assert_eq!(statuses(&net.take("wsA")), [200, 487]);
    assert!(net.take_other("1001").is_empty());
    net.event(
        "1001",
        Event::BridgeReady {
            id,
            result: Ok(BridgeOffer {
                session: "s4".into(),
                upstream_offer: RTP_OFFER.into(),
            }),
        },
    );
    assert!(
        net.take_upstream("1001").is_empty(),
        "nothing goes upstream"
    );
    assert!(net.take("wsA").is_empty());
    assert_eq!(net.take_other("1001"), [release("s4")]);
}

#[test]
fn caller_cancel_after_the_invite_went_upstream_releases_on_the_487() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let (invite, id) = call_out(&mut net, &mut a, "out-5");
    let up = bridge_ready(&mut net, id, "s5");
    net.upstream_sends("1001", upstream_response(&up, 180, "Ringing", &[], None));
    net.take("wsA");
    net.browser_sends(&a, a.cancel(&invite));
    assert_eq!(statuses(&net.take("wsA")), [200]);
    assert_eq!(method(&one(net.take_upstream("1001"))), Method::CANCEL);
    net.upstream_sends(
        "1001",
        upstream_response(&up, 487, "Request Terminated", &[], None),
    );
    assert_eq!(statuses(&net.take("wsA")), [487]);
    assert_eq!(net.take_other("1001"), [release("s5")]);
}

#[test]
fn reinvite_hold_is_answered_locally_from_the_renegotiation() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let mut d = established_call_out(&mut net, &mut a, "out-6");
    let reinvite = d.request(&mut a, Method::INVITE, Some(HOLD_OFFER));
    net.browser_sends(&a, reinvite);
    assert_eq!(statuses(&net.take("wsA")), [100]);
    assert!(
        net.take_upstream("1001").is_empty(),
        "the upstream leg is not touched"
    );
    let id = match &net.take_other("1001")[..] {
        [Output::BridgeRenegotiate {
            id,
            session,
            browser_offer,
        }] => {
            assert_eq!(session, "s1");
            assert_eq!(browser_offer, HOLD_OFFER);
            *id
        }
        other => panic!("expected one BridgeRenegotiate, got {other:?}"),
    };
    net.event(
        "1001",
        Event::BridgeRenegotiated {
            id,
            result: Ok(HOLD_ANSWER.into()),
        },
    );
    let ok = one(net.take("wsA"));
    assert_eq!(status(&ok), 200);
    assert_eq!(ok.cseq().unwrap().method, Method::INVITE);
    assert_eq!(body(&ok), HOLD_ANSWER);
    assert_eq!(
        header(&ok, "Contact"),
        [UPSTREAM_CONTACT],
        "the remote target stays the upstream's"
    );
    assert_eq!(ok.to().unwrap().tag(), Some("up1"));
    // The hold itself is offered upstream (see proxy_media_hold.rs); the browser's ACK is not.
    let ack = d.request(&mut a, Method::ACK, None);
    net.browser_sends(&a, ack);
    let up: Vec<Method> = net.take_upstream("1001").iter().map(method).collect();
    assert_eq!(up, [Method::INVITE], "its ACK is absorbed");
    assert!(net.take("wsA").is_empty());

    // The call goes on: BYE still reaches the upstream and releases.
    let bye = d.request(&mut a, Method::BYE, None);
    net.browser_sends(&a, bye);
    assert_eq!(method(&one(net.take_upstream("1001"))), Method::BYE);
    assert_eq!(net.take_other("1001"), [release("s1")]);
}

#[test]
fn reinvite_refused_by_the_bridge_keeps_the_call() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let mut d = established_call_out(&mut net, &mut a, "out-7");
    let reinvite = d.request(&mut a, Method::INVITE, Some(HOLD_OFFER));
    net.browser_sends(&a, reinvite);
    net.take("wsA");
    let [Output::BridgeRenegotiate { id, .. }] = net.take_other("1001")[..] else {
        panic!("expected a BridgeRenegotiate")
    };
    net.event(
        "1001",
        Event::BridgeRenegotiated {
            id,
            result: Err((488, "Not Acceptable Here".into())),
        },
    );
    assert_eq!(statuses(&net.take("wsA")), [488]);
    assert!(net.take_other("1001").is_empty(), "no release");
    let ack = d.request(&mut a, Method::ACK, None);
    net.browser_sends(&a, ack);
    assert!(net.take_upstream("1001").is_empty());
}

#[test]
fn upstream_reinvite_is_answered_with_the_sdp_it_already_has() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let _d = established_call_out(&mut net, &mut a, "out-8");
    let reinvite = parse(&format!(
        "INVITE {contact} SIP/2.0\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKre1\n\
Max-Forwards: 70\nRoute: <sip:127.0.0.1;transport=ws;lr;acct=1001>\n\
From: <sip:5551234@localhost>;tag=up1\nTo: \"1001\" <sip:1001@localhost>;tag=fromwsA\n\
Call-ID: out-8\nCSeq: 1 INVITE\nContact: {UPSTREAM_CONTACT}\nContent-Type: application/sdp\n\
Content-Length: {len}\n\n{RTP_ANSWER}",
        contact = a.contact_uri(),
        len = RTP_ANSWER.len()
    ));
    net.upstream_sends("1001", reinvite);
    let ok = one(net.take_upstream("1001"));
    assert_eq!(status(&ok), 200);
    assert_eq!(body(&ok), RTP_OFFER, "unchanged, version and all");
    assert!(net.take("wsA").is_empty(), "the browser leg is not touched");
    let ack = parse(
        "ACK sip:cwsA@wsA.invalid;transport=ws SIP/2.0\n\
Via: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKre2\nMax-Forwards: 70\n\
Route: <sip:127.0.0.1;transport=ws;lr;acct=1001>\nFrom: <sip:5551234@localhost>;tag=up1\n\
To: \"1001\" <sip:1001@localhost>;tag=fromwsA\nCall-ID: out-8\nCSeq: 1 ACK\n\
Content-Length: 0\n\n",
    );
    net.upstream_sends("1001", ack);
    assert!(net.take("wsA").is_empty(), "its ACK is absorbed");
}

#[test]
fn incoming_upstream_call_is_bridged_to_forked_browsers_and_the_loser_is_cancelled() {
    let mut net = Net::new(vec![config("1001", RegistrationMode::Local, true)]);
    let mut a = Browser::new("1001", "wsA");
    let mut b = Browser::new("1001", "wsB");
    net.register(&mut a);
    net.register(&mut b);
    let invite = parse(&format!(
        "INVITE sip:1001@localhost SIP/2.0\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKin1\n\
Max-Forwards: 70\nRecord-Route: <sip:10.0.0.5;lr>\n\
From: <sip:+15550001@pbx.example>;tag=upf\nTo: <sip:1001@localhost>\nCall-ID: in-1\n\
CSeq: 1 INVITE\nContact: <sip:+15550001@10.0.0.7:5060>\nContent-Type: application/sdp\n\
Content-Length: {len}\n\n{RTP_OFFER}",
        len = RTP_OFFER.len()
    ));
    net.upstream_sends("1001", invite);
    assert_eq!(statuses(&net.take_upstream("1001")), [100]);
    assert!(net.take("wsA").is_empty() && net.take("wsB").is_empty());
    let id = match &net.take_other("1001")[..] {
        [Output::BridgeOfferFromUpstream {
            id,
            call_id,
            upstream_offer,
        }] => {
            assert_eq!(call_id, "in-1");
            assert_eq!(upstream_offer, RTP_OFFER);
            *id
        }
        other => panic!("expected one BridgeOfferFromUpstream, got {other:?}"),
    };
    net.event(
        "1001",
        Event::BridgeReadyFromUpstream {
            id,
            result: Ok(BridgeBrowserOffer {
                session: "s9".into(),
                browser_offer: NODE_OFFER.into(),
            }),
        },
    );
    let at_a = one(net.take("wsA"));
    let at_b = one(net.take("wsB"));
    for m in [&at_a, &at_b] {
        assert_eq!(method(m), Method::INVITE);
        assert_eq!(
            body(m),
            NODE_OFFER,
            "the browsers get the node's WebRTC offer"
        );
    }

    net.browser_sends(&b, b.respond(&at_b, 180, "Ringing"));
    assert_eq!(statuses(&net.take_upstream("1001")), [180]);
    let ok_a = a.respond(&at_a, 200, "OK");
    net.browser_sends(&a, ok_a.clone());
    assert!(
        net.take_upstream("1001").is_empty(),
        "the 2xx waits for the bridge"
    );
    assert_eq!(
        method(&one(net.take("wsB"))),
        Method::CANCEL,
        "the loser is cancelled"
    );
    let answer_id = match &net.take_other("1001")[..] {
        [Output::BridgeAnswerFromBrowser {
            id,
            session,
            browser_answer,
        }] => {
            assert_eq!(session, "s9");
            assert_eq!(browser_answer, SDP_ANSWER);
            *id
        }
        other => panic!("expected one BridgeAnswerFromBrowser, got {other:?}"),
    };
    net.browser_sends(&b, b.respond(&at_b, 487, "Request Terminated"));
    assert_eq!(method(&one(net.take("wsB"))), Method::ACK);
    assert!(net.take_upstream("1001").is_empty());

    net.event(
        "1001",
        Event::BridgeAnsweredForUpstream {
            id: answer_id,
            result: Ok(RTP_ANSWER.into()),
        },
    );
    let ok_up = one(net.take_upstream("1001"));
    assert_eq!(status(&ok_up), 200);
    assert_eq!(
        body(&ok_up),
        RTP_ANSWER,
        "the upstream gets the node's answer"
    );
    assert_eq!(ok_up.top_via().unwrap().branch(), Some("z9hG4bKin1"));
    assert!(net.take_other("1001").is_empty());

    // The upstream hangs up: the BYE reaches the answering browser, the session goes once.
    let bye = parse(&format!(
        "BYE {} SIP/2.0\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKin2\nMax-Forwards: 70\n\
Route: <sip:127.0.0.1;transport=ws;lr;acct=1001>\nFrom: <sip:+15550001@pbx.example>;tag=upf\n\
To: <sip:1001@localhost>;tag=towsA\nCall-ID: in-1\nCSeq: 2 BYE\nContent-Length: 0\n\n",
        a.contact_uri()
    ));
    net.upstream_sends("1001", bye);
    assert_eq!(method(&one(net.take("wsA"))), Method::BYE);
    assert_eq!(net.take_other("1001"), [release("s9")]);
    let _ = Dialog::uas(&at_a, &ok_a);
}

#[test]
fn incoming_call_the_shell_cannot_bridge_is_refused_to_the_upstream() {
    let mut net = Net::new(vec![config("1001", RegistrationMode::Local, true)]);
    let mut a = Browser::new("1001", "wsA");
    net.register(&mut a);
    let invite = parse(&format!(
        "INVITE sip:1001@localhost SIP/2.0\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKin3\n\
Max-Forwards: 70\nFrom: <sip:+15550001@pbx.example>;tag=upf\nTo: <sip:1001@localhost>\n\
Call-ID: in-3\nCSeq: 1 INVITE\nContact: <sip:+15550001@10.0.0.7:5060>\n\
Content-Type: application/sdp\nContent-Length: {len}\n\n{RTP_OFFER}",
        len = RTP_OFFER.len()
    ));
    net.upstream_sends("1001", invite);
    assert_eq!(statuses(&net.take_upstream("1001")), [100]);
    let [Output::BridgeOfferFromUpstream { id, .. }] = net.take_other("1001")[..] else {
        panic!("expected a BridgeOfferFromUpstream")
    };
    net.event(
        "1001",
        Event::BridgeReadyFromUpstream {
            id,
            result: Err((488, "Not Acceptable Here".into())),
        },
    );
    assert_eq!(statuses(&net.take_upstream("1001")), [488]);
    assert!(net.take("wsA").is_empty());
    assert!(net.take_other("1001").is_empty());
}

#[test]
fn unanswered_bridge_allocation_gets_503_and_a_late_session_is_released() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let (_, id) = call_out(&mut net, &mut a, "out-10");
    net.advance(10_000);
    assert_eq!(statuses(&net.take("wsA")), [503]);
    assert!(net.take_upstream("1001").is_empty());
    net.event(
        "1001",
        Event::BridgeReady {
            id,
            result: Ok(BridgeOffer {
                session: "s10".into(),
                upstream_offer: RTP_OFFER.into(),
            }),
        },
    );
    assert!(net.take_upstream("1001").is_empty());
    assert_eq!(net.take_other("1001"), [release("s10")]);
}

#[test]
fn unanswered_bridge_answer_gets_503_releases_and_hangs_up_the_upstream() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let (_, id) = call_out(&mut net, &mut a, "out-11");
    let up = bridge_ready(&mut net, id, "s11");
    net.upstream_sends("1001", upstream_ok(&up, RTP_ANSWER));
    bridge_answer_request(&mut net, "s11", RTP_ANSWER);
    net.advance(10_000);
    assert_eq!(statuses(&net.take("wsA")), [503]);
    let up_got = net.take_upstream("1001");
    assert_eq!(
        up_got.iter().map(method).collect::<Vec<_>>(),
        [Method::ACK, Method::BYE],
        "the upstream's 2xx is ACKed and hung up"
    );
    assert_eq!(
        up_got[1].request_uri().unwrap().to_string(),
        "sip:5551234@10.0.0.7:5060"
    );
    assert_eq!(up_got[1].to().unwrap().tag(), Some("up1"));
    // The session was checked once meanwhile (unanswered here: see proxy_media_lost.rs).
    let other = net.take_other("1001");
    assert_eq!(
        other
            .into_iter()
            .filter(|o| !matches!(o, Output::CheckMedia { .. }))
            .collect::<Vec<_>>(),
        [release("s11")]
    );
    net.advance(60_000);
    assert!(net.take_other("1001").is_empty(), "released once");
    assert_eq!(net.core("1001").transaction_count(), 0);
}

#[test]
fn browser_leaving_a_bridged_call_hangs_up_the_upstream_and_releases() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    established_call_out(&mut net, &mut a, "out-12");
    net.event("1001", Event::ConnectionClosed { conn: "wsA".into() });
    let bye = one(net.take_upstream("1001"));
    assert_eq!(method(&bye), Method::BYE);
    assert_eq!(bye.cseq().unwrap().seq, 8238);
    assert_eq!(bye.to().unwrap().tag(), Some("up1"));
    assert!(net.take_other("1001").iter().any(|o| *o == release("s1")));
}

#[test]
fn calls_between_accounts_and_passthrough_tenants_are_not_bridged() {
    let mut net = Net::new(vec![
        config("1001", RegistrationMode::Local, true),
        config("1002", RegistrationMode::Local, true),
    ]);
    let mut a = Browser::new("1001", "wsA");
    let mut b = Browser::new("1002", "wsB");
    net.register(&mut a);
    net.register(&mut b);
    let invite = a.invite("1002", "acct-1");
    net.browser_sends(&a, invite);
    let at_b = one(net.take("wsB"));
    assert_eq!(
        body(&at_b),
        SDP_OFFER,
        "peer to peer: the offer is untouched"
    );
    assert!(net.take_other("1001").is_empty() && net.take_other("1002").is_empty());

    let mut net = Net::new(vec![passthrough(config(
        "1001",
        RegistrationMode::Local,
        true,
    ))]);
    let mut a = Browser::new("1001", "wsA");
    net.register(&mut a);
    let invite = a.invite("5551234", "pass-1");
    net.browser_sends(&a, invite);
    assert_eq!(body(&one(net.take_upstream("1001"))), SDP_OFFER);
    assert!(net.take_other("1001").is_empty());
}

#[test]
fn caller_cancel_while_the_2xx_waits_for_the_bridge_lets_the_2xx_win() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let (invite, id) = call_out(&mut net, &mut a, "out-13");
    let up = bridge_ready(&mut net, id, "s13");
    net.upstream_sends("1001", upstream_ok(&up, RTP_ANSWER));
    let answer_id = bridge_answer_request(&mut net, "s13", RTP_ANSWER);
    net.browser_sends(&a, a.cancel(&invite));
    assert_eq!(statuses(&net.take("wsA")), [200], "only the CANCEL's 200");
    assert!(net.take_upstream("1001").is_empty());
    net.event(
        "1001",
        Event::BridgeAnswered {
            id: answer_id,
            result: Ok(NODE_ANSWER.into()),
        },
    );
    let ok = one(net.take("wsA"));
    assert_eq!(status(&ok), 200);
    assert_eq!(ok.to().unwrap().tag(), Some("up1"));
    assert_eq!(body(&ok), NODE_ANSWER);
    assert!(net.take_other("1001").is_empty());
}

/// Registers `b` through the relay (the upstream answers 200 at once).
fn relay_register(net: &mut Net, b: &mut Browser) {
    let r = b.register(1, 600, None);
    net.browser_sends(b, r);
    let up = one(net.take_upstream("1001"));
    let contact = format!("<{}>;expires=300", b.contact_uri());
    net.upstream_sends(
        "1001",
        upstream_response(&up, 200, "OK", &[("Contact", &contact)], None),
    );
    assert_eq!(statuses(&net.take(&b.conn)), [200]);
    net.take_other("1001");
}

#[test]
fn relayed_upstream_invite_by_path_is_bridged_to_its_browser_and_losing_the_upstream_ends_it() {
    let mut net = Net::new(vec![config("1001", RegistrationMode::Relay, true)]);
    let mut a = Browser::new("1001", "wsA");
    let mut b = Browser::new("1001", "wsB");
    relay_register(&mut net, &mut a);
    relay_register(&mut net, &mut b);
    let invite = parse(&format!(
        "INVITE {contact} SIP/2.0\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKrl1\n\
Max-Forwards: 70\nRoute: <sip:1001@127.0.0.1;lr;acct=1001>\nRecord-Route: <sip:10.0.0.5;lr>\n\
From: <sip:+15550001@pbx.example>;tag=upf\nTo: <sip:1001@localhost>\nCall-ID: rl-1\n\
CSeq: 1 INVITE\nContact: <sip:+15550001@10.0.0.7:5060>\nContent-Type: application/sdp\n\
Content-Length: {len}\n\n{RTP_OFFER}",
        contact = a.contact_uri(),
        len = RTP_OFFER.len()
    ));
    net.upstream_sends("1001", invite);
    assert_eq!(statuses(&net.take_upstream("1001")), [100]);
    let [Output::BridgeOfferFromUpstream { id, .. }] = net.take_other("1001")[..] else {
        panic!("expected a BridgeOfferFromUpstream")
    };
    net.event(
        "1001",
        Event::BridgeReadyFromUpstream {
            id,
            result: Ok(BridgeBrowserOffer {
                session: "s14".into(),
                browser_offer: NODE_OFFER.into(),
            }),
        },
    );
    let at_a = one(net.take("wsA"));
    assert!(
        net.take("wsB").is_empty(),
        "only the browser the upstream chose"
    );
    assert_eq!(body(&at_a), NODE_OFFER);
    assert_eq!(at_a.request_uri().unwrap().to_string(), a.contact_uri());
    net.browser_sends(&a, a.respond(&at_a, 200, "OK"));
    let [Output::BridgeAnswerFromBrowser { id, .. }] = net.take_other("1001")[..] else {
        panic!("expected a BridgeAnswerFromBrowser")
    };
    net.event(
        "1001",
        Event::BridgeAnsweredForUpstream {
            id,
            result: Ok(RTP_ANSWER.into()),
        },
    );
    assert_eq!(body(&one(net.take_upstream("1001"))), RTP_ANSWER);

    net.event("1001", Event::UpstreamLost);
    let bye = one(net.take("wsA"));
    assert_eq!(method(&bye), Method::BYE, "the browser is hung up");
    assert_eq!(bye.to().unwrap().tag(), Some("towsA"));
    assert_eq!(bye.from().unwrap().tag(), Some("upf"));
    assert_eq!(bye.cseq().unwrap().seq, 2);
    assert!(net.take_other("1001").iter().any(|o| *o == release("s14")));
}

#[test]
fn bridge_answer_failure_hangs_up_the_answering_browser_and_refuses_the_upstream() {
    let mut net = Net::new(vec![config("1001", RegistrationMode::Local, true)]);
    let mut a = Browser::new("1001", "wsA");
    net.register(&mut a);
    let invite = parse(&format!(
        "INVITE sip:1001@localhost SIP/2.0\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKin5\n\
Max-Forwards: 70\nFrom: <sip:+15550001@pbx.example>;tag=upf\nTo: <sip:1001@localhost>\n\
Call-ID: in-5\nCSeq: 1 INVITE\nContact: <sip:+15550001@10.0.0.7:5060>\n\
Content-Type: application/sdp\nContent-Length: {len}\n\n{RTP_OFFER}",
        len = RTP_OFFER.len()
    ));
    net.upstream_sends("1001", invite);
    net.take_upstream("1001");
    let [Output::BridgeOfferFromUpstream { id, .. }] = net.take_other("1001")[..] else {
        panic!("expected a BridgeOfferFromUpstream")
    };
    net.event(
        "1001",
        Event::BridgeReadyFromUpstream {
            id,
            result: Ok(BridgeBrowserOffer {
                session: "s15".into(),
                browser_offer: NODE_OFFER.into(),
            }),
        },
    );
    let at_a = one(net.take("wsA"));
    net.browser_sends(&a, a.respond(&at_a, 200, "OK"));
    let [Output::BridgeAnswerFromBrowser { id, .. }] = net.take_other("1001")[..] else {
        panic!("expected a BridgeAnswerFromBrowser")
    };
    net.event(
        "1001",
        Event::BridgeAnsweredForUpstream {
            id,
            result: Err((503, "Media Node Lost".into())),
        },
    );
    assert_eq!(statuses(&net.take_upstream("1001")), [503]);
    let got = net.take("wsA");
    assert_eq!(
        got.iter().map(method).collect::<Vec<_>>(),
        [Method::ACK, Method::BYE]
    );
    assert_eq!(net.take_other("1001"), [release("s15")]);
}
