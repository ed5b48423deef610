//! The *43 echo service, OPTIONS to the edge, and the bounds on requests.

mod proxy_common;

use proxy_common::*;
use shared::proxy::{Event, Limits, Output, RegistrationMode};
use shared::sip::{HeaderName, Method};

fn setup() -> (Net, Browser) {
    let mut net = Net::new(vec![config("1001", RegistrationMode::Local, false)]);
    let mut a = Browser::new("1001", "wsA");
    net.register(&mut a);
    (net, a)
}

fn echo_request(net: &mut Net) -> (u64, String, String) {
    match &net.take_other("1001")[..] {
        [Output::Echo { id, call_id, offer }] => (*id, call_id.clone(), offer.clone()),
        other => panic!("expected one Echo, got {other:?}"),
    }
}

#[test]
fn echo_call_is_answered_with_the_bridge_sdp_and_released_on_bye() {
    let (mut net, mut a) = setup();
    let invite = a.invite("*43", "echo-1");
    net.browser_sends(&a, invite.clone());
    assert_eq!(status(&one(net.take("wsA"))), 100);
    let (id, call_id, offer) = echo_request(&mut net);
    assert_eq!(call_id, "echo-1");
    assert_eq!(offer, SDP_OFFER);

    net.event(
        "1001",
        Event::EchoAnswer {
            id,
            answer: Ok(SDP_ANSWER.into()),
        },
    );
    let ok = one(net.take("wsA"));
    assert_eq!(status(&ok), 200);
    assert_eq!(ok.body(), SDP_ANSWER.as_bytes());
    assert!(ok.to().unwrap().tag().is_some());
    assert_eq!(header(&ok, "Content-Type"), ["application/sdp"]);
    assert_eq!(header(&ok, "Contact"), ["<sip:*43@127.0.0.1;transport=ws>"]);

    let mut d = Dialog::uac(&invite, &ok);
    let ack = d.request(&mut a, Method::ACK, None);
    net.browser_sends(&a, ack);
    assert!(net.take("wsA").is_empty(), "ACK absorbed");
    assert!(net.take_other("1001").is_empty());

    let bye = d.request(&mut a, Method::BYE, None);
    net.browser_sends(&a, bye);
    let ok = one(net.take("wsA"));
    assert_eq!(status(&ok), 200);
    assert_eq!(ok.cseq().unwrap().method, Method::BYE);
    assert_eq!(
        net.take_other("1001"),
        [Output::EchoEnded {
            call_id: "echo-1".into()
        }]
    );
}

#[test]
fn echo_failure_is_answered_with_its_status() {
    let (mut net, mut a) = setup();
    let inv = a.invite("*43", "echo-2");
    net.browser_sends(&a, inv);
    net.take("wsA");
    let (id, _, _) = echo_request(&mut net);
    net.event(
        "1001",
        Event::EchoAnswer {
            id,
            answer: Err((503, "No Media Node".into())),
        },
    );
    let got = one(net.take("wsA"));
    assert_eq!(status(&got), 503);
    assert_eq!(
        got.start_line,
        shared::sip::StartLine::Response {
            status: 503,
            reason: "No Media Node".into()
        }
    );
}

#[test]
fn echo_cancelled_before_the_answer_releases_the_bridge() {
    let (mut net, mut a) = setup();
    let invite = a.invite("*43", "echo-3");
    net.browser_sends(&a, invite.clone());
    net.take("wsA");
    let (id, _, _) = echo_request(&mut net);
    net.browser_sends(&a, a.cancel(&invite));
    let got = net.take("wsA");
    assert_eq!(got.iter().map(status).collect::<Vec<_>>(), [200, 487]);
    assert_eq!(
        net.take_other("1001"),
        [Output::EchoEnded {
            call_id: "echo-3".into()
        }]
    );
    // The bridge arrives late: released again, nothing sent to the browser.
    net.event(
        "1001",
        Event::EchoAnswer {
            id,
            answer: Ok(SDP_ANSWER.into()),
        },
    );
    assert!(net.take("wsA").is_empty());
    assert_eq!(
        net.take_other("1001"),
        [Output::EchoEnded {
            call_id: "echo-3".into()
        }]
    );
}

#[test]
fn echo_without_an_answer_in_time_gets_503() {
    let (mut net, mut a) = setup();
    let inv = a.invite("*43", "echo-4");
    net.browser_sends(&a, inv);
    net.take("wsA");
    echo_request(&mut net);
    net.advance(10_000);
    assert_eq!(status(&one(net.take("wsA"))), 503);
    assert_eq!(
        net.take_other("1001"),
        [Output::EchoEnded {
            call_id: "echo-4".into()
        }]
    );
}

#[test]
fn options_to_the_edge_is_answered_with_allow_and_supported() {
    let (mut net, mut a) = setup();
    for host in [EDGE, TENANT] {
        let via = a.via();
        let msg = parse(&format!(
            "OPTIONS sip:{host} SIP/2.0\nVia: {via}\nMax-Forwards: 69\nTo: <sip:{host}>\n\
From: <sip:1001@localhost>;tag=o1\nCall-ID: opt-1\nCSeq: 1 OPTIONS\nContent-Length: 0\n\n"
        ));
        net.browser_sends(&a, msg);
        let got = one(net.take("wsA"));
        assert_eq!(status(&got), 200);
        assert!(header(&got, "Allow")[0].contains("INVITE"));
        assert!(!header(&got, "Supported").is_empty());
    }
}

#[test]
fn max_forwards_zero_gets_483() {
    let (mut net, mut a) = setup();
    let mut invite = a.invite("1002", "mf-0");
    invite.headers.set(HeaderName::MaxForwards, "0");
    net.browser_sends(&a, invite);
    assert_eq!(status(&one(net.take("wsA"))), 483);
}

#[test]
fn requests_beyond_the_transaction_cap_get_503_with_retry_after() {
    let mut cfg = config("1001", RegistrationMode::Local, false);
    cfg.limits = Limits {
        max_transactions: 2,
        ..Limits::default()
    };
    let mut net = Net::new(vec![cfg]);
    net.manual_lookups = true;
    let mut a = Browser::new("1001", "wsA");
    net.register(&mut a);
    for i in 0..2 {
        let inv = a.invite("1002", &format!("cap-{i}"));
        net.browser_sends(&a, inv);
        assert_eq!(status(&one(net.take("wsA"))), 100);
    }
    let inv = a.invite("1002", "cap-2");
    net.browser_sends(&a, inv);
    let got = one(net.take("wsA"));
    assert_eq!(status(&got), 503);
    assert_eq!(header(&got, "Retry-After"), ["5"]);
    // The lookups were never answered: 503 after the pending timeout, then forgotten.
    net.take_other("1001");
    net.advance(10_000);
    assert_eq!(
        net.take("wsA").iter().map(status).collect::<Vec<_>>(),
        [503, 503]
    );
    net.advance(40_000);
    assert_eq!(net.core("1001").transaction_count(), 0);
}
