//! Bridged calls whose media node died: the core has the shell check each session every 5 s
//! while it has any, and ends a call for both sides (with an RFC 3326 Reason) when its node no
//! longer knows the session or stays unreachable two checks in a row.

mod proxy_common;

use proxy_common::*;
use shared::proxy::{
    BridgeBrowserOffer, BridgeOffer, Event, MediaHealth, Output, RegistrationMode,
};
use shared::sip::{Header, HeaderName, Method, SipMessage, StartLine};

const RTP_OFFER: &str = "v=0\r\no=- 7 1 IN IP4 10.9.0.1\r\ns=-\r\nc=IN IP4 10.9.0.1\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
const RTP_ANSWER: &str = "v=0\r\no=pbx 1 1 IN IP4 10.0.0.7\r\ns=-\r\nc=IN IP4 10.0.0.7\r\n\
t=0 0\r\nm=audio 40000 RTP/AVP 0 101\r\na=sendrecv\r\n";
const NODE_ANSWER: &str = "v=0\r\no=- 8 2 IN IP4 10.9.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
m=audio 3478 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 10.9.0.1\r\na=setup:passive\r\na=sendrecv\r\n";
const NODE_OFFER: &str = "v=0\r\no=- 9 1 IN IP4 10.9.0.1\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n\
m=audio 3478 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 10.9.0.1\r\na=setup:actpass\r\na=sendrecv\r\n";
const UPSTREAM_CONTACT: &str = "<sip:5551234@10.0.0.7:5060>";
const REASON: &str = "SIP;cause=503;text=\"Media Node Lost\"";
/// The default check interval.
const CHECK_MS: u64 = 5_000;

fn upstream_response(req: &SipMessage, status: u16, sdp: Option<&str>) -> SipMessage {
    let reason = if status == 200 { "OK" } else { "Ringing" };
    let mut r = req.response_to(status, reason, Some("up1")).unwrap();
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
    if let Some(sdp) = sdp {
        r.set_body(Some("application/sdp"), sdp.as_bytes().to_vec());
    }
    r
}

fn checks(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::CheckMedia { session } => Some(session.clone()),
            _ => None,
        })
        .collect()
}

fn released(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::BridgeRelease { session } => Some(session.clone()),
            _ => None,
        })
        .collect()
}

fn checked(net: &mut Net, session: &str, health: MediaHealth) {
    net.event(
        "1001",
        Event::MediaChecked {
            session: session.into(),
            health,
        },
    );
}

/// The browser calls 5551234 through a bridge on `session` up to the upstream's INVITE.
fn call_out_to_upstream(
    net: &mut Net,
    a: &mut Browser,
    call_id: &str,
    session: &str,
) -> (SipMessage, SipMessage) {
    let invite = a.invite("5551234", call_id);
    net.browser_sends(a, invite.clone());
    assert_eq!(statuses(&net.take("wsA")), [100]);
    let [Output::BridgeOffer { id, .. }] = net.take_other("1001")[..] else {
        panic!("expected a BridgeOffer")
    };
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
    (invite, one(net.take_upstream("1001")))
}

/// An outgoing bridged call up to the browser's ACK.
fn established_call_out(net: &mut Net, a: &mut Browser, call_id: &str, session: &str) -> Dialog {
    let (invite, up) = call_out_to_upstream(net, a, call_id, session);
    net.upstream_sends("1001", upstream_response(&up, 200, Some(RTP_ANSWER)));
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

/// Advances one check interval; returns the sessions asked about.
fn next_checks(net: &mut Net) -> Vec<String> {
    net.advance(CHECK_MS);
    checks(&net.take_other("1001"))
}

#[test]
fn established_call_whose_node_stays_unreachable_is_hung_up_both_ways_with_a_reason() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    established_call_out(&mut net, &mut a, "lost-1", "s1");
    assert_eq!(next_checks(&mut net), ["s1"], "checked after one interval");
    checked(&mut net, "s1", MediaHealth::Unreachable);
    assert!(net.take("wsA").is_empty(), "one miss may be a blip");
    assert!(net.take_upstream("1001").is_empty());
    assert!(net.take_other("1001").is_empty());

    assert_eq!(next_checks(&mut net), ["s1"]);
    checked(&mut net, "s1", MediaHealth::Unreachable);
    let bye = one(net.take("wsA"));
    assert_eq!(method(&bye), Method::BYE, "the browser is hung up");
    assert_eq!(
        bye.request_uri().unwrap().to_string(),
        format!("{};ob", a.contact_uri())
    );
    assert_eq!(bye.from().unwrap().tag(), Some("up1"), "as the upstream");
    assert_eq!(bye.to().unwrap().tag(), Some("fromwsA"));
    assert_eq!(header(&bye, "Reason"), [REASON]);
    let up_bye = one(net.take_upstream("1001"));
    assert_eq!(method(&up_bye), Method::BYE, "the upstream is hung up");
    assert_eq!(
        up_bye.request_uri().unwrap().to_string(),
        "sip:5551234@10.0.0.7:5060"
    );
    assert_eq!(
        up_bye.from().unwrap().tag(),
        Some("fromwsA"),
        "as the browser"
    );
    assert_eq!(up_bye.to().unwrap().tag(), Some("up1"));
    assert_eq!(up_bye.cseq().unwrap().seq, 8238);
    assert_eq!(header(&up_bye, "Reason"), [REASON]);
    assert_eq!(released(&net.take_other("1001")), ["s1"]);

    // Both sides answer their BYE; the answers are absorbed, and nothing is checked any more.
    net.browser_sends(&a, a.respond(&bye, 200, "OK"));
    net.upstream_sends("1001", up_bye.response_to(200, "OK", None).unwrap());
    assert!(net.take("wsA").is_empty() && net.take_upstream("1001").is_empty());
    net.advance(60_000);
    assert!(
        net.take_other("1001").is_empty(),
        "released once, no more checks"
    );
    let next = net.core("1001").poll_timeout();
    assert!(
        next.is_none_or(|t| t > net.now + 10 * CHECK_MS),
        "only the registration's expiry is left: {next:?}"
    );
}

#[test]
fn an_unreachable_check_between_good_ones_does_not_end_the_call() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    established_call_out(&mut net, &mut a, "blip-1", "s1");
    for health in [
        MediaHealth::Unreachable,
        MediaHealth::Alive,
        MediaHealth::Unreachable,
        MediaHealth::Alive,
    ] {
        assert_eq!(next_checks(&mut net), ["s1"]);
        checked(&mut net, "s1", health);
    }
    assert!(net.take("wsA").is_empty());
    assert!(net.take_upstream("1001").is_empty());
    assert!(net.take_other("1001").is_empty());
    assert_eq!(next_checks(&mut net), ["s1"], "still checked");
}

#[test]
fn a_session_the_node_no_longer_knows_ends_an_incoming_call_at_once() {
    let mut net = Net::new(vec![config("1001", RegistrationMode::Local, true)]);
    let mut a = Browser::new("1001", "wsA");
    net.register(&mut a);
    let invite = parse(&format!(
        "INVITE sip:1001@localhost SIP/2.0\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKin1\n\
Max-Forwards: 70\nRecord-Route: <sip:10.0.0.5;lr>\n\
From: <sip:+15550001@pbx.example>;tag=upf\nTo: <sip:1001@localhost>\nCall-ID: in-lost\n\
CSeq: 1 INVITE\nContact: <sip:+15550001@10.0.0.7:5060>\nContent-Type: application/sdp\n\
Content-Length: {len}\n\n{RTP_OFFER}",
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
                session: "s9".into(),
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
            result: Ok(RTP_ANSWER.into()),
        },
    );
    assert_eq!(statuses(&net.take_upstream("1001")), [200]);

    assert_eq!(next_checks(&mut net), ["s9"]);
    checked(&mut net, "s9", MediaHealth::Gone);
    let bye = one(net.take("wsA"));
    assert_eq!(method(&bye), Method::BYE);
    assert_eq!(bye.from().unwrap().tag(), Some("upf"), "as the upstream");
    assert_eq!(bye.to().unwrap().tag(), Some("towsA"));
    assert_eq!(header(&bye, "Reason"), [REASON]);
    let up_bye = one(net.take_upstream("1001"));
    assert_eq!(method(&up_bye), Method::BYE);
    assert_eq!(
        up_bye.request_uri().unwrap().to_string(),
        "sip:+15550001@10.0.0.7:5060"
    );
    assert_eq!(
        header(&up_bye, "Route"),
        ["<sip:10.0.0.5;lr>"],
        "along the upstream's record-route"
    );
    assert_eq!(
        up_bye.from().unwrap().tag(),
        Some("towsA"),
        "as the browser"
    );
    assert_eq!(up_bye.to().unwrap().tag(), Some("upf"));
    assert_eq!(header(&up_bye, "Reason"), [REASON]);
    assert_eq!(released(&net.take_other("1001")), ["s9"]);
}

#[test]
fn a_call_being_set_up_when_its_media_goes_is_cancelled_upstream_and_refused_with_503() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let (_, up) = call_out_to_upstream(&mut net, &mut a, "setup-1", "s2");
    net.upstream_sends("1001", upstream_response(&up, 180, None));
    assert_eq!(statuses(&net.take("wsA")), [180]);
    assert_eq!(
        next_checks(&mut net),
        ["s2"],
        "ringing calls are checked too"
    );
    checked(&mut net, "s2", MediaHealth::Gone);
    let cancel = one(net.take_upstream("1001"));
    assert_eq!(method(&cancel), Method::CANCEL);
    assert_eq!(header(&cancel, "Reason"), [REASON]);
    let refused = one(net.take("wsA"));
    assert_eq!(status(&refused), 503);
    assert!(
        matches!(&refused.start_line, StartLine::Response { reason, .. } if reason == "Media Node Lost"),
        "{refused:?}"
    );
    assert_eq!(released(&net.take_other("1001")), ["s2"]);

    // The upstream's 487 is ACKed here and goes no further.
    let terminated = up
        .response_to(487, "Request Terminated", Some("up1"))
        .unwrap();
    net.upstream_sends("1001", terminated);
    assert_eq!(method(&one(net.take_upstream("1001"))), Method::ACK);
    assert!(net.take("wsA").is_empty());
}

#[test]
fn a_browser_reoffer_waiting_on_a_lost_node_gets_503_and_the_call_ends() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    let mut d = established_call_out(&mut net, &mut a, "restart-1", "s3");
    // The browser noticed first and restarts ICE: the re-offer waits for the node.
    let reinvite = d.request(&mut a, Method::INVITE, Some(SDP_OFFER));
    net.browser_sends(&a, reinvite);
    assert_eq!(statuses(&net.take("wsA")), [100]);
    let [Output::BridgeRenegotiate { .. }] = net.take_other("1001")[..] else {
        panic!("expected a BridgeRenegotiate")
    };
    assert_eq!(next_checks(&mut net), ["s3"]);
    checked(&mut net, "s3", MediaHealth::Gone);
    let got = net.take("wsA");
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(status(&got[0]), 503, "the re-INVITE is refused");
    assert_eq!(method(&got[1]), Method::BYE, "and the call hung up");
    assert_eq!(method(&one(net.take_upstream("1001"))), Method::BYE);
    assert_eq!(released(&net.take_other("1001")), ["s3"]);
}

#[test]
fn only_the_call_whose_media_is_lost_ends_and_the_other_is_still_checked() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    established_call_out(&mut net, &mut a, "two-1", "s1");
    net.advance(2_000);
    established_call_out(&mut net, &mut a, "two-2", "s2");
    let mut asked = next_checks(&mut net);
    asked.sort();
    assert_eq!(asked, ["s1", "s2"], "one timer for every session");
    checked(&mut net, "s1", MediaHealth::Gone);
    checked(&mut net, "s2", MediaHealth::Alive);
    let bye = one(net.take("wsA"));
    assert_eq!(bye.call_id().unwrap(), "two-1");
    assert_eq!(one(net.take_upstream("1001")).call_id().unwrap(), "two-1");
    assert_eq!(released(&net.take_other("1001")), ["s1"]);
    assert_eq!(next_checks(&mut net), ["s2"]);
}

#[test]
fn nothing_is_checked_without_bridged_calls() {
    let (mut net, mut a) = one_registered_account_with_upstream();
    net.advance(60_000);
    assert!(checks(&net.take_other("1001")).is_empty());

    // A call that ends normally before its first check: no check follows.
    let mut d = established_call_out(&mut net, &mut a, "short-1", "s4");
    let bye = d.request(&mut a, Method::BYE, None);
    net.browser_sends(&a, bye);
    let up_bye = one(net.take_upstream("1001"));
    assert_eq!(method(&up_bye), Method::BYE);
    net.upstream_sends("1001", up_bye.response_to(200, "OK", None).unwrap());
    assert_eq!(statuses(&net.take("wsA")), [200]);
    assert_eq!(released(&net.take_other("1001")), ["s4"]);
    net.advance(60_000);
    assert!(checks(&net.take_other("1001")).is_empty());

    // A check answered after its call ended changes nothing.
    checked(&mut net, "s4", MediaHealth::Gone);
    assert!(net.take("wsA").is_empty() && net.take_upstream("1001").is_empty());
    assert!(net.take_other("1001").is_empty());
}
