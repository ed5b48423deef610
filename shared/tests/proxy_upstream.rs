//! The tenant's upstream SIP server: REGISTER relay with Path, INVITEs from the upstream to
//! the browser, calls out to the upstream, and losing the upstream connection.

mod proxy_common;

use proxy_common::*;
use shared::proxy::{Event, Output, RegistrationMode};
use shared::sip::{Header, HeaderName, Method, SipMessage};

fn upstream_answer(
    req: &SipMessage,
    status: u16,
    reason: &str,
    extra: &[(&str, &str)],
) -> SipMessage {
    let mut r = req.response_to(status, reason, Some("up1")).unwrap();
    let pos = r.headers.position(&HeaderName::ContentLength).unwrap();
    for (i, (n, v)) in extra.iter().enumerate() {
        r.headers
            .insert(pos + i, Header::new(HeaderName::parse(n), *v));
    }
    r
}

/// Registers `b` through the relay: 401 from the upstream, then 200.
fn relay_register(net: &mut Net, b: &mut Browser) {
    let r1 = b.register(1, 600, None);
    net.browser_sends(b, r1);
    let up = one(net.take_upstream("1001"));
    let ch = r#"Digest realm="pbx.example", nonce="abc123", algorithm=MD5, qop="auth""#;
    net.upstream_sends(
        "1001",
        upstream_answer(&up, 401, "Unauthorized", &[("WWW-Authenticate", ch)]),
    );
    let got = one(net.take(&b.conn));
    assert_eq!(status(&got), 401);
    assert_eq!(header(&got, "WWW-Authenticate"), [ch]);
    let c = shared::auth::Challenge::parse(ch).unwrap();
    let auth = answer(&c, "1001", "pbx-secret", 1);
    let r2 = b.register(2, 600, Some(&auth));
    net.browser_sends(b, r2);
    let up = one(net.take_upstream("1001"));
    assert_eq!(header(&up, "Authorization").len(), 1);
    let contact = format!("<{}>;expires=300", b.contact_uri());
    net.upstream_sends(
        "1001",
        upstream_answer(&up, 200, "OK", &[("Contact", &contact)]),
    );
    let ok = one(net.take(&b.conn));
    assert_eq!(status(&ok), 200);
    assert_eq!(ok.vias().unwrap().len(), 1);
}

#[test]
fn relayed_register_carries_path_and_mirrors_the_binding() {
    let mut net = Net::new(vec![config("1001", RegistrationMode::Relay, true)]);
    let mut b = Browser::new("1001", "wsA");
    let r1 = b.register(1, 600, None);
    net.browser_sends(&b, r1);
    assert!(
        net.take("wsA").is_empty(),
        "the edge does not challenge in relay mode"
    );
    let up = one(net.take_upstream("1001"));
    let via = up.top_via().unwrap();
    assert_eq!(via.transport, "TCP");
    assert_eq!(via.host.to_string(), EDGE);
    assert_eq!(up.vias().unwrap().len(), 2);
    assert_eq!(header(&up, "Path"), ["<sip:1001@127.0.0.1;lr;acct=1001>"]);
    assert!(up.supported().unwrap().contains(&"path"));
    assert_eq!(up.max_forwards().unwrap(), Some(68));
    net.upstream_sends("1001", upstream_answer(&up, 401, "Unauthorized", &[]));
    assert_eq!(status(&one(net.take("wsA"))), 401);
    assert!(net.take_other("1001").is_empty());

    let mut b = Browser::new("1001", "wsB");
    relay_register(&mut net, &mut b);
    let other = net.take_other("1001");
    assert!(other.contains(&Output::Registered { conn: "wsB".into() }));
    let bindings = net.core("1001").bindings().to_vec();
    assert_eq!(bindings.len(), 1);
    assert_eq!(
        bindings[0].expires_at_ms,
        net.now + 300_000,
        "the upstream's expiry"
    );
}

#[test]
fn upstream_invite_reaches_the_browser_by_its_path_and_the_dialog_works_both_ways() {
    let mut net = Net::new(vec![passthrough(config(
        "1001",
        RegistrationMode::Relay,
        true,
    ))]);
    let mut b = Browser::new("1001", "wsA");
    relay_register(&mut net, &mut b);
    let invite = parse(&format!(
        "INVITE {contact} SIP/2.0\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKup1\nMax-Forwards: 70\n\
Route: <sip:1001@127.0.0.1;lr;acct=1001>\nRecord-Route: <sip:10.0.0.5;lr>\n\
From: <sip:+15550001@pbx.example>;tag=upf\nTo: <sip:1001@localhost>\nCall-ID: up-call-1\n\
CSeq: 1 INVITE\nContact: <sip:+15550001@10.0.0.7:5060>\nContent-Type: application/sdp\n\
Content-Length: {len}\n\n{SDP_OFFER}",
        contact = b.contact_uri(),
        len = SDP_OFFER.len()
    ));
    net.upstream_sends("1001", invite);
    assert_eq!(status(&one(net.take_upstream("1001"))), 100);
    let at_b = one(net.take("wsA"));
    assert_eq!(method(&at_b), Method::INVITE);
    assert!(
        header(&at_b, "Route").is_empty(),
        "our Path route is consumed"
    );
    assert_eq!(
        header(&at_b, "Record-Route"),
        [
            "<sip:127.0.0.1;transport=ws;lr;acct=1001>",
            "<sip:10.0.0.5;lr>"
        ]
    );
    assert_eq!(at_b.top_via().unwrap().transport, "WSS");

    net.browser_sends(&b, b.respond(&at_b, 180, "Ringing"));
    let ok = b.respond(&at_b, 200, "OK");
    net.browser_sends(&b, ok.clone());
    let up = net.take_upstream("1001");
    assert_eq!(up.iter().map(status).collect::<Vec<_>>(), [180, 200]);
    assert_eq!(up[1].top_via().unwrap().branch(), Some("z9hG4bKup1"));
    assert_eq!(up[1].vias().unwrap().len(), 1);

    // The upstream's ACK comes back through our Record-Route.
    let ack = parse(&format!(
        "ACK {} SIP/2.0\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKup2\nMax-Forwards: 70\n\
Route: <sip:127.0.0.1;transport=ws;lr;acct=1001>\nFrom: <sip:+15550001@pbx.example>;tag=upf\n\
To: <sip:1001@localhost>;tag=towsA\nCall-ID: up-call-1\nCSeq: 1 ACK\nContent-Length: 0\n\n",
        b.contact_uri()
    ));
    net.upstream_sends("1001", ack);
    assert_eq!(method(&one(net.take("wsA"))), Method::ACK);

    // The browser hangs up: the BYE goes to the upstream with its Record-Route left.
    let mut d = Dialog::uas(&at_b, &ok);
    let bye = d.request(&mut b, Method::BYE, None);
    net.browser_sends(&b, bye);
    let bye_up = one(net.take_upstream("1001"));
    assert_eq!(method(&bye_up), Method::BYE);
    assert_eq!(header(&bye_up, "Route"), ["<sip:10.0.0.5;lr>"]);
    assert_eq!(
        bye_up.request_uri().unwrap().to_string(),
        "sip:+15550001@10.0.0.7:5060"
    );
    net.upstream_sends("1001", upstream_answer(&bye_up, 200, "OK", &[]));
    assert_eq!(status(&one(net.take("wsA"))), 200);
}

#[test]
fn call_out_goes_to_the_upstream_when_the_number_is_no_account() {
    let mut net = Net::new(vec![passthrough(config(
        "1001",
        RegistrationMode::Local,
        true,
    ))]);
    let mut a = Browser::new("1001", "wsA");
    net.register(&mut a);
    let invite = a.invite("5551234", "out-1");
    net.browser_sends(&a, invite.clone());
    assert_eq!(status(&one(net.take("wsA"))), 100);
    let up = one(net.take_upstream("1001"));
    assert_eq!(
        up.request_uri().unwrap().to_string(),
        "sip:5551234@localhost"
    );
    assert_eq!(
        header(&up, "Record-Route"),
        ["<sip:127.0.0.1;transport=ws;lr;acct=1001>"]
    );
    net.upstream_sends("1001", upstream_answer(&up, 183, "Session Progress", &[]));
    assert_eq!(status(&one(net.take("wsA"))), 183);
    let ok = upstream_answer(
        &up,
        200,
        "OK",
        &[
            ("Record-Route", "<sip:127.0.0.1;transport=ws;lr;acct=1001>"),
            ("Contact", "<sip:5551234@10.0.0.7:5060>"),
        ],
    );
    net.upstream_sends("1001", ok);
    let ok_at_a = one(net.take("wsA"));
    assert_eq!(status(&ok_at_a), 200);
    let mut d = Dialog::uac(&invite, &ok_at_a);
    let ack = d.request(&mut a, Method::ACK, None);
    net.browser_sends(&a, ack);
    let ack_up = one(net.take_upstream("1001"));
    assert_eq!(method(&ack_up), Method::ACK);
    assert!(header(&ack_up, "Route").is_empty());
    assert_eq!(
        ack_up.request_uri().unwrap().to_string(),
        "sip:5551234@10.0.0.7:5060"
    );
}

#[test]
fn losing_the_upstream_fails_pending_calls_and_drops_relayed_bindings() {
    let mut net = Net::new(vec![passthrough(config(
        "1001",
        RegistrationMode::Relay,
        true,
    ))]);
    let mut b = Browser::new("1001", "wsA");
    relay_register(&mut net, &mut b);
    net.take_other("1001");
    let invite = b.invite("5551234", "out-2");
    net.browser_sends(&b, invite);
    assert_eq!(status(&one(net.take("wsA"))), 100);
    assert_eq!(
        one(net.take_upstream("1001")).method(),
        Some(&Method::INVITE)
    );
    net.event("1001", Event::UpstreamLost);
    assert_eq!(status(&one(net.take("wsA"))), 503);
    assert!(net.core("1001").bindings().is_empty());
    assert!(net
        .take_other("1001")
        .contains(&Output::PersistBindings(Vec::new())));
}

#[test]
fn upstream_invite_for_an_unregistered_account_gets_480() {
    let mut net = Net::new(vec![config("1001", RegistrationMode::Local, true)]);
    let invite = parse(
        "INVITE sip:1001@localhost SIP/2.0\nVia: SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bKup9\n\
Max-Forwards: 70\nFrom: <sip:+15550001@pbx.example>;tag=upf\nTo: <sip:1001@localhost>\n\
Call-ID: up-call-9\nCSeq: 1 INVITE\nContent-Length: 0\n\n",
    );
    net.upstream_sends("1001", invite);
    let got = one(net.take_upstream("1001"));
    assert_eq!(status(&got), 480);
}
