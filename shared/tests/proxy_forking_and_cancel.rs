//! Forking to every browser of an account, CANCEL (from the caller, to the losers, racing a
//! 200), Timer C, and responses that must be dropped.

mod proxy_common;

use proxy_common::*;
use shared::proxy::{Event, RegistrationMode};
use shared::sip::{HeaderName, Method};

struct Setup {
    net: Net,
    alice: Browser,
    bob1: Browser,
    bob2: Browser,
}

fn setup() -> Setup {
    let mut net = Net::new(vec![
        config("1001", RegistrationMode::Local, false),
        config("1002", RegistrationMode::Local, false),
    ]);
    let mut alice = Browser::new("1001", "wsA");
    let mut bob1 = Browser::new("1002", "wsB1");
    let mut bob2 = Browser::new("1002", "wsB2");
    net.register(&mut alice);
    net.register(&mut bob1);
    net.register(&mut bob2);
    Setup {
        net,
        alice,
        bob1,
        bob2,
    }
}

fn ring_both(
    s: &mut Setup,
    call_id: &str,
) -> (
    shared::sip::SipMessage,
    shared::sip::SipMessage,
    shared::sip::SipMessage,
) {
    let invite = s.alice.invite("1002", call_id);
    s.net.browser_sends(&s.alice, invite.clone());
    assert_eq!(status(&one(s.net.take("wsA"))), 100);
    let i1 = one(s.net.take("wsB1"));
    let i2 = one(s.net.take("wsB2"));
    s.net
        .browser_sends(&s.bob1, s.bob1.respond(&i1, 180, "Ringing"));
    s.net
        .browser_sends(&s.bob2, s.bob2.respond(&i2, 180, "Ringing"));
    let ringing = s.net.take("wsA");
    assert_eq!(ringing.iter().map(status).collect::<Vec<_>>(), [180, 180]);
    (invite, i1, i2)
}

#[test]
fn invite_forks_to_both_browsers_and_the_loser_is_cancelled() {
    let mut s = setup();
    let (_invite, i1, i2) = ring_both(&mut s, "fork-1");
    assert_eq!(i1.request_uri().unwrap().to_string(), s.bob1.contact_uri());
    assert_eq!(i2.request_uri().unwrap().to_string(), s.bob2.contact_uri());
    let b1 = i1.top_via().unwrap().branch().unwrap().to_owned();
    let b2 = i2.top_via().unwrap().branch().unwrap().to_owned();
    assert_ne!(b1, b2, "one client transaction per branch");
    assert!(b1.starts_with("z9hG4bK"));

    // Bob's first browser answers: Alice gets the 200, the second browser a CANCEL.
    s.net.browser_sends(&s.bob1, s.bob1.respond(&i1, 200, "OK"));
    assert_eq!(status(&one(s.net.take("wsA"))), 200);
    let cancel = one(s.net.take("wsB2"));
    assert_eq!(method(&cancel), Method::CANCEL);
    assert_eq!(cancel.top_via().unwrap().branch(), Some(b2.as_str()));
    assert_eq!(cancel.cseq().unwrap().seq, i2.cseq().unwrap().seq);
    assert_eq!(cancel.request_uri(), i2.request_uri());

    // The loser answers the CANCEL and 487s its INVITE: the edge ACKs the 487 itself and
    // nothing more reaches Alice.
    s.net
        .browser_sends(&s.bob2, s.bob2.respond(&cancel, 200, "OK"));
    s.net
        .browser_sends(&s.bob2, s.bob2.respond(&i2, 487, "Request Terminated"));
    let ack = one(s.net.take("wsB2"));
    assert_eq!(method(&ack), Method::ACK);
    assert_eq!(ack.top_via().unwrap().branch(), Some(b2.as_str()));
    assert_eq!(ack.to().unwrap().tag(), Some("towsB2"));
    assert!(s.net.take("wsA").is_empty());
}

#[test]
fn caller_cancel_gets_200_and_exactly_one_487() {
    let mut s = setup();
    let (invite, i1, i2) = ring_both(&mut s, "fork-2");
    let cancel = s.alice.cancel(&invite);
    s.net.browser_sends(&s.alice, cancel);
    let got = s.net.take("wsA");
    assert_eq!(got.iter().map(status).collect::<Vec<_>>(), [200]);
    assert_eq!(got[0].cseq().unwrap().method, Method::CANCEL);
    let c1 = one(s.net.take("wsB1"));
    let c2 = one(s.net.take("wsB2"));
    assert_eq!(method(&c1), Method::CANCEL);
    assert_eq!(method(&c2), Method::CANCEL);
    s.net.browser_sends(&s.bob1, s.bob1.respond(&c1, 200, "OK"));
    s.net
        .browser_sends(&s.bob1, s.bob1.respond(&i1, 487, "Request Terminated"));
    assert!(s.net.take("wsA").is_empty(), "waits for every branch");
    s.net.browser_sends(&s.bob2, s.bob2.respond(&c2, 200, "OK"));
    s.net
        .browser_sends(&s.bob2, s.bob2.respond(&i2, 487, "Request Terminated"));
    let final_ = one(s.net.take("wsA"));
    assert_eq!(status(&final_), 487);
    assert_eq!(final_.vias().unwrap().len(), 1);
    assert_eq!(method(&one(s.net.take("wsB1"))), Method::ACK);
    assert_eq!(method(&one(s.net.take("wsB2"))), Method::ACK);
}

#[test]
fn cancel_before_any_answer_is_487_from_the_edge() {
    let mut s = setup();
    let invite = s.alice.invite("1002", "fork-3");
    s.net.browser_sends(&s.alice, invite.clone());
    s.net.take("wsA");
    let i1 = one(s.net.take("wsB1"));
    s.net.take("wsB2");
    s.net.browser_sends(&s.alice, s.alice.cancel(&invite));
    // The browsers never answered anything: their branches count as 487 at once.
    let got = s.net.take("wsA");
    assert_eq!(got.iter().map(status).collect::<Vec<_>>(), [200, 487]);
    assert_eq!(method(&one(s.net.take("wsB1"))), Method::CANCEL);
    assert_eq!(method(&one(s.net.take("wsB2"))), Method::CANCEL);
    // A late 487 from a browser is ACKed and goes no further.
    s.net
        .browser_sends(&s.bob1, s.bob1.respond(&i1, 487, "Request Terminated"));
    assert_eq!(method(&one(s.net.take("wsB1"))), Method::ACK);
    assert!(s.net.take("wsA").is_empty());
}

#[test]
fn cancel_racing_a_200_the_200_wins() {
    let mut s = setup();
    let (invite, i1, i2) = ring_both(&mut s, "fork-4");
    s.net.browser_sends(&s.bob1, s.bob1.respond(&i1, 200, "OK"));
    assert_eq!(status(&one(s.net.take("wsA"))), 200);
    assert_eq!(method(&one(s.net.take("wsB2"))), Method::CANCEL);
    // Alice's CANCEL crossed the 200: answered 200, nothing else happens.
    s.net.browser_sends(&s.alice, s.alice.cancel(&invite));
    let got = one(s.net.take("wsA"));
    assert_eq!(status(&got), 200);
    assert_eq!(got.cseq().unwrap().method, Method::CANCEL);
    assert!(s.net.take("wsB1").is_empty(), "no CANCEL to the winner");
    // The loser's 487 never reaches Alice: no 487 after a 2xx.
    s.net
        .browser_sends(&s.bob2, s.bob2.respond(&i2, 487, "Request Terminated"));
    assert!(s.net.take("wsA").is_empty());
    // A retransmitted 200 from the winner is forwarded again (RFC 3261 §16.7 step 5).
    s.net.browser_sends(&s.bob1, s.bob1.respond(&i1, 200, "OK"));
    assert_eq!(status(&one(s.net.take("wsA"))), 200);
    // Once the transaction is gone, a CANCEL gets 481.
    s.net.advance(60_000);
    s.net.browser_sends(&s.alice, s.alice.cancel(&invite));
    assert_eq!(status(&one(s.net.take("wsA"))), 481);
}

#[test]
fn both_browsers_decline_the_best_response_goes_back() {
    let mut s = setup();
    let (_invite, i1, i2) = ring_both(&mut s, "fork-5");
    s.net
        .browser_sends(&s.bob1, s.bob1.respond(&i1, 486, "Busy Here"));
    assert!(s.net.take("wsA").is_empty());
    s.net
        .browser_sends(&s.bob2, s.bob2.respond(&i2, 480, "Temporarily Unavailable"));
    let got = one(s.net.take("wsA"));
    assert_eq!(status(&got), 486);
}

#[test]
fn a_603_decline_wins_and_cancels_the_other_branch() {
    let mut s = setup();
    let (_invite, i1, _i2) = ring_both(&mut s, "fork-6");
    s.net
        .browser_sends(&s.bob1, s.bob1.respond(&i1, 603, "Decline"));
    assert_eq!(status(&one(s.net.take("wsA"))), 603);
    assert_eq!(method(&one(s.net.take("wsB1"))), Method::ACK);
    assert_eq!(method(&one(s.net.take("wsB2"))), Method::CANCEL);
}

#[test]
fn timer_c_cancels_the_ringing_branches_and_sends_408() {
    let mut s = setup();
    let (_invite, _i1, _i2) = ring_both(&mut s, "fork-7");
    s.net.advance(179_999);
    assert!(s.net.take("wsA").is_empty());
    s.net.advance(1);
    assert_eq!(method(&one(s.net.take("wsB1"))), Method::CANCEL);
    assert_eq!(method(&one(s.net.take("wsB2"))), Method::CANCEL);
    let got = one(s.net.take("wsA"));
    assert_eq!(status(&got), 408);
}

#[test]
fn callee_connection_closing_during_ringing_leaves_the_other_branch() {
    let mut s = setup();
    let (_invite, _i1, i2) = ring_both(&mut s, "fork-8");
    s.net.event(
        "1002",
        Event::ConnectionClosed {
            conn: "wsB1".into(),
        },
    );
    assert!(s.net.take("wsA").is_empty());
    s.net.browser_sends(&s.bob2, s.bob2.respond(&i2, 200, "OK"));
    assert_eq!(status(&one(s.net.take("wsA"))), 200);
}

#[test]
fn forged_responses_are_dropped() {
    let mut s = setup();
    let (_invite, i1, i2) = ring_both(&mut s, "fork-9");
    // Bob's second browser answers the INVITE sent to the first (its branch): wrong flow.
    s.net.browser_sends(&s.bob2, s.bob2.respond(&i1, 200, "OK"));
    assert!(s.net.take("wsA").is_empty());
    // A response whose top Via is not the edge's.
    let mut forged = s.bob2.respond(&i2, 200, "OK");
    forged.remove_top_via().unwrap();
    s.net.browser_sends(&s.bob2, forged);
    assert!(s.net.take("wsA").is_empty());
    // Our host but an unknown branch.
    let mut forged = s.bob2.respond(&i2, 200, "OK");
    let via = forged.headers.get(&HeaderName::Via).unwrap().to_owned();
    let top = i2.top_via().unwrap();
    let fake = via.replacen(top.branch().unwrap(), "z9hG4bKforged", 1);
    forged.headers.set(HeaderName::Via, fake);
    s.net.browser_sends(&s.bob2, forged);
    assert!(s.net.take("wsA").is_empty());
    // Injected into the core of Alice directly, a 200 with a branch of 1002's is unknown there.
    let forged = s.bob1.respond(&i1, 200, "OK");
    s.net.browser_sends(&s.alice, forged);
    assert!(s.net.take("wsA").is_empty());
    // The real answer still works.
    s.net.browser_sends(&s.bob2, s.bob2.respond(&i2, 200, "OK"));
    assert_eq!(status(&one(s.net.take("wsA"))), 200);
}
