//! A call between two accounts of the tenant through two account cores wired together:
//! INVITE/100/180/200/ACK, a re-INVITE (hold) and BYE end to end.

mod proxy_common;

use proxy_common::*;
use shared::proxy::{Output, RegistrationMode};
use shared::sip::Method;

fn setup() -> (Net, Browser, Browser) {
    let mut net = Net::new(vec![
        config("1001", RegistrationMode::Local, false),
        config("1002", RegistrationMode::Local, false),
    ]);
    let mut alice = Browser::new("1001", "wsA");
    let mut bob = Browser::new("1002", "wsB");
    net.register(&mut alice);
    net.register(&mut bob);
    (net, alice, bob)
}

#[test]
fn call_between_accounts_end_to_end() {
    let (mut net, mut alice, mut bob) = setup();
    let invite = alice.invite("1002", "call-1");
    net.browser_sends(&alice, invite.clone());

    // The caller gets 100 Trying at once; the account asked the shell who 1002 is.
    let trying = one(net.take("wsA"));
    assert_eq!(status(&trying), 100);
    let lookups: Vec<_> = net.take_other("1001");
    assert!(
        lookups.is_empty(),
        "lookups are answered by the harness: {lookups:?}"
    );

    // Bob's browser gets the INVITE at its contact, with both accounts' Record-Routes and Vias.
    let at_bob = one(net.take("wsB"));
    assert_eq!(method(&at_bob), Method::INVITE);
    assert_eq!(at_bob.request_uri().unwrap().to_string(), bob.contact_uri());
    let rr = header(&at_bob, "Record-Route");
    assert_eq!(
        rr,
        [
            "<sip:127.0.0.1;transport=ws;lr;acct=1002>",
            "<sip:127.0.0.1;transport=ws;lr;acct=1001>"
        ]
    );
    let vias = at_bob.vias().unwrap();
    assert_eq!(vias.len(), 3);
    assert_eq!(vias[2].host.to_string(), "wsA.invalid");
    assert_eq!(at_bob.max_forwards().unwrap(), Some(67));
    assert_eq!(at_bob.body(), SDP_OFFER.as_bytes());
    // No Route towards Bob: the Request-URI is his contact.
    assert!(header(&at_bob, "Route").is_empty());

    // 180 and 200 go back to Alice with only her own Via left.
    net.browser_sends(&bob, bob.respond(&at_bob, 180, "Ringing"));
    let ringing = one(net.take("wsA"));
    assert_eq!(status(&ringing), 180);
    assert_eq!(ringing.vias().unwrap().len(), 1);
    let ok = bob.respond(&at_bob, 200, "OK");
    net.browser_sends(&bob, ok.clone());
    let ok_at_alice = one(net.take("wsA"));
    assert_eq!(status(&ok_at_alice), 200);
    assert_eq!(ok_at_alice.body(), SDP_ANSWER.as_bytes());
    assert_eq!(ok_at_alice.vias().unwrap().len(), 1);
    assert!(
        net.take("wsB").is_empty(),
        "Bob gets no ACK from the proxies for a 2xx"
    );

    // ACK for the 2xx travels Alice -> 1001 -> 1002 -> Bob along the route set.
    let mut a_dialog = Dialog::uac(&invite, &ok_at_alice);
    let mut b_dialog = Dialog::uas(&at_bob, &ok);
    assert_eq!(a_dialog.route_set.len(), 2);
    let ack = a_dialog.request(&mut alice, Method::ACK, None);
    net.browser_sends(&alice, ack);
    let ack_at_bob = one(net.take("wsB"));
    assert_eq!(method(&ack_at_bob), Method::ACK);
    assert_eq!(
        ack_at_bob.request_uri().unwrap().to_string(),
        bob.contact_uri()
    );
    assert!(header(&ack_at_bob, "Route").is_empty());

    // Hold: Alice re-INVITEs with a sendonly offer.
    let hold_sdp = SDP_OFFER.replace("a=sendrecv", "a=sendonly");
    let reinvite = a_dialog.request(&mut alice, Method::INVITE, Some(&hold_sdp));
    net.browser_sends(&alice, reinvite);
    assert_eq!(status(&one(net.take("wsA"))), 100);
    let reinvite_at_bob = one(net.take("wsB"));
    assert_eq!(method(&reinvite_at_bob), Method::INVITE);
    assert!(String::from_utf8_lossy(reinvite_at_bob.body()).contains("a=sendonly"));
    net.browser_sends(&bob, bob.respond(&reinvite_at_bob, 200, "OK"));
    let ok2 = one(net.take("wsA"));
    assert_eq!(status(&ok2), 200);
    assert_eq!(ok2.cseq().unwrap().seq, 8238);
    let ack2 = a_dialog.request(&mut alice, Method::ACK, None);
    net.browser_sends(&alice, ack2);
    assert_eq!(method(&one(net.take("wsB"))), Method::ACK);

    // Bob hangs up: BYE goes Bob -> 1002 -> 1001 -> Alice, 200 back.
    let bye = b_dialog.request(&mut bob, Method::BYE, None);
    net.browser_sends(&bob, bye);
    let bye_at_alice = one(net.take("wsA"));
    assert_eq!(method(&bye_at_alice), Method::BYE);
    assert_eq!(
        bye_at_alice.request_uri().unwrap().to_string(),
        format!("{};ob", alice.contact_uri())
    );
    net.browser_sends(&alice, alice.respond(&bye_at_alice, 200, "OK"));
    let bye_ok = one(net.take("wsB"));
    assert_eq!(status(&bye_ok), 200);
    assert_eq!(bye_ok.cseq().unwrap().method, Method::BYE);

    // Everything is forgotten after the linger time.
    net.advance(40_000);
    assert_eq!(net.core("1001").transaction_count(), 0);
    assert_eq!(net.core("1002").transaction_count(), 0);
}

#[test]
fn call_to_an_unregistered_account_gets_480() {
    let (mut net, mut alice, _bob) = setup();
    net.event(
        "1002",
        shared::proxy::Event::ConnectionClosed { conn: "wsB".into() },
    );
    let invite = alice.invite("1002", "call-2");
    net.browser_sends(&alice, invite);
    let got = net.take("wsA");
    assert_eq!(got.iter().map(status).collect::<Vec<_>>(), [100, 480]);
    // The caller's ACK for the 480 is absorbed by its own account.
    let ack_text = format!(
        "ACK sip:1002@localhost SIP/2.0\nVia: {}\nMax-Forwards: 69\nTo: {}\nFrom: {}\nCall-ID: call-2\nCSeq: 8237 ACK\nContent-Length: 0\n\n",
        got[1].headers.get(&shared::sip::HeaderName::Via).unwrap(),
        got[1].headers.get(&shared::sip::HeaderName::To).unwrap(),
        got[1].headers.get(&shared::sip::HeaderName::From).unwrap(),
    );
    net.browser_sends(&alice, parse(&ack_text));
    assert!(net.take("wsB").is_empty());
    assert!(net.take("wsA").is_empty());
}

#[test]
fn call_to_an_unknown_number_without_upstream_gets_404() {
    let (mut net, mut alice, _bob) = setup();
    let invite = alice.invite("5551234", "call-3");
    net.browser_sends(&alice, invite);
    let got = net.take("wsA");
    assert_eq!(got.iter().map(status).collect::<Vec<_>>(), [100, 404]);
}

#[test]
fn message_between_accounts_is_delivered_and_answered() {
    let (mut net, mut alice, bob) = setup();
    let via = alice.via();
    let msg = parse(&format!(
        "MESSAGE sip:1002@localhost SIP/2.0\nVia: {via}\nMax-Forwards: 69\nTo: <sip:1002@localhost>\n\
From: <sip:1001@localhost>;tag=m1\nCall-ID: msg-1\nCSeq: 1 MESSAGE\nContent-Type: text/plain\nContent-Length: 2\n\nhi"
    ));
    net.browser_sends(&alice, msg);
    let at_bob = one(net.take("wsB"));
    assert_eq!(method(&at_bob), Method::MESSAGE);
    assert!(header(&at_bob, "Record-Route").is_empty());
    net.browser_sends(&bob, bob.respond(&at_bob, 200, "OK"));
    assert_eq!(status(&one(net.take("wsA"))), 200);
    assert!(net
        .take_other("1001")
        .iter()
        .all(|o| !matches!(o, Output::ToBrowser { .. })));
}

#[test]
fn a_browser_cannot_send_as_another_user() {
    let (mut net, mut alice, _bob) = setup();
    let invite = alice.invite("1002", "spoof-1");
    let text = String::from_utf8(invite.to_bytes())
        .unwrap()
        .replace("<sip:1001@localhost>;tag", "<sip:1003@localhost>;tag");
    net.browser_sends(&alice, parse(&text));
    assert_eq!(status(&one(net.take("wsA"))), 403);
    assert!(net.take("wsB").is_empty());
}

#[test]
fn a_forked_message_gets_a_single_200() {
    let mut net = Net::new(vec![
        config("1001", RegistrationMode::Local, false),
        config("1002", RegistrationMode::Local, false),
    ]);
    let mut alice = Browser::new("1001", "wsA");
    let mut b1 = Browser::new("1002", "wsB1");
    let mut b2 = Browser::new("1002", "wsB2");
    net.register(&mut alice);
    net.register(&mut b1);
    net.register(&mut b2);
    let via = alice.via();
    let msg = parse(&format!(
        "MESSAGE sip:1002@localhost SIP/2.0\nVia: {via}\nMax-Forwards: 69\nTo: <sip:1002@localhost>\n\
From: <sip:1001@localhost>;tag=m2\nCall-ID: msg-2\nCSeq: 1 MESSAGE\nContent-Type: text/plain\nContent-Length: 2\n\nhi"
    ));
    net.browser_sends(&alice, msg);
    let m1 = one(net.take("wsB1"));
    let m2 = one(net.take("wsB2"));
    net.browser_sends(&b1, b1.respond(&m1, 200, "OK"));
    net.browser_sends(&b2, b2.respond(&m2, 200, "OK"));
    assert_eq!(status(&one(net.take("wsA"))), 200);
}
