//! The SIP-over-WebSocket edge on real workerd: registration with digest auth, account-to-account
//! calls through the Durable Objects, and bad input on the socket.

use std::time::Duration;

use serde_json::json;
use tests::edge::{Edge, EdgeOptions};
use tests::http::Request;
use tests::sip_ws::SipWsClient;

const TOKEN: &str = "sip-test-operator-token";
const DOMAIN: &str = "phone.test";
const WS_HOST: &str = "sip.test";

fn start(name: &str) -> Edge {
    let edge = Edge::start(&EdgeOptions {
        port: None,
        state_dir: tests::scratch_dir(name).expect("scratch dir"),
        operator_token: TOKEN.to_owned(),
        vars: Vec::new(),
        fleet_secret: None,
    })
    .unwrap_or_else(|e| panic!("edge did not start: {e}"));
    let tenant = json!({ "domain": DOMAIN, "brand_name": "Test Phone", "webrtc_host": WS_HOST });
    let resp = edge
        .send(&edge.admin("POST", "/admin/tenants").json(&tenant))
        .expect("create tenant");
    assert_eq!(resp.status, 201, "{}", resp.text());
    for user in ["1001", "1002"] {
        let body = json!({ "password": format!("secret-{user}") });
        let path = format!("/admin/tenants/{DOMAIN}/accounts/{user}");
        let resp = edge
            .send(&edge.admin("PUT", &path).json(&body))
            .expect("create account");
        assert_eq!(resp.status, 201, "{}", resp.text());
    }
    edge
}

fn client(edge: &Edge, user: &str) -> SipWsClient {
    SipWsClient::connect(edge.addr, WS_HOST, user, DOMAIN)
        .unwrap_or_else(|e| panic!("connect {user}: {e}"))
}

fn registered(edge: &Edge, user: &str) -> SipWsClient {
    let mut c = client(edge, user);
    let resp = c
        .register(&format!("secret-{user}"), 600)
        .unwrap_or_else(|e| panic!("register {user}: {e}\n{}", edge.log_tail(30)));
    assert_eq!(
        resp.status(),
        Some(200),
        "REGISTER of {user} answered {:?}",
        resp.status()
    );
    c
}

#[test]
fn websocket_upgrade_is_only_on_the_webrtc_host_with_the_sip_subprotocol() {
    let edge = start("sip-upgrade");
    let plain = edge
        .send(&Request::new("GET", WS_HOST, "/ws"))
        .expect("GET /ws");
    assert_eq!(plain.status, 426, "{}", plain.text());
    let wrong_host = edge
        .send(
            &Request::new("GET", DOMAIN, "/ws")
                .header("upgrade", "websocket")
                .header("connection", "upgrade"),
        )
        .expect("GET /ws");
    assert_eq!(wrong_host.status, 404, "{}", wrong_host.text());
    let no_proto = edge
        .send(
            &Request::new("GET", WS_HOST, "/ws")
                .header("upgrade", "websocket")
                .header("connection", "upgrade")
                .header("sec-websocket-version", "13")
                .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        )
        .expect("GET /ws");
    assert_eq!(no_proto.status, 400, "{}", no_proto.text());
    assert!(no_proto.text().contains("sip"), "{}", no_proto.text());
}

#[test]
fn register_needs_the_right_password_and_the_socket_survives_garbage() {
    let edge = start("sip-register");
    let mut wrong = client(&edge, "1001");
    let resp = wrong.register("not-the-password", 600).expect("register");
    assert_eq!(
        resp.status(),
        Some(403),
        "wrong password answered {:?}",
        resp.status()
    );
    let mut nobody = client(&edge, "9999");
    let resp = nobody.register("whatever-password", 600).expect("register");
    assert_eq!(
        resp.status(),
        Some(403),
        "unknown user answered {:?}",
        resp.status()
    );

    let mut c = registered(&edge, "1001");
    // Garbage and a malformed request: answered or ignored, and the socket stays usable.
    c.send_raw("this is not SIP").expect("send");
    let call_id = c.token();
    c.send_raw(&format!(
        "OPTIONS sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/WSS x.invalid;branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 0\r\nTo: <sip:{DOMAIN}>\r\nFrom: <sip:1001@{DOMAIN}>;tag=a\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ))
    .expect("send");
    c.wait_response(&call_id, "OPTIONS", 483)
        .expect("483 for Max-Forwards 0");
    let resp = c
        .register("secret-1001", 600)
        .expect("re-register on the same socket");
    assert_eq!(resp.status(), Some(200));
    std::thread::sleep(Duration::from_millis(100));
}

#[test]
fn account_calls_account_through_the_edge() {
    let edge = start("sip-call");
    let mut alice = registered(&edge, "1001");
    let mut bob = registered(&edge, "1002");

    let call_id = alice.token();
    let tag = alice.token();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let invite = format!(
        "INVITE sip:1002@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 70\r\nTo: <sip:1002@{DOMAIN}>\r\nFrom: <sip:1001@{DOMAIN}>;tag={tag}\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\nContact: <{contact}>\r\nContent-Type: application/sdp\r\nContent-Length: {len}\r\n\r\n{sdp}",
        contact = alice.contact,
        len = sdp.len()
    );
    alice.send_raw(&invite).expect("send INVITE");
    alice
        .wait_response(&call_id, "INVITE", 100)
        .expect("100 Trying");
    let incoming = bob.wait_request("INVITE").expect("bob gets the INVITE");
    assert_eq!(incoming.call_id().ok(), Some(call_id.as_str()));
    assert_eq!(
        incoming.body(),
        sdp.as_bytes(),
        "the SDP is passed through unchanged between browsers"
    );

    let bob_tag = bob.token();
    let ringing = incoming
        .response_to(180, "Ringing", Some(&bob_tag))
        .expect("180");
    bob.send_raw(&String::from_utf8_lossy(&ringing.to_bytes()))
        .expect("send 180");
    alice
        .wait_response(&call_id, "INVITE", 180)
        .expect("alice hears ringing");
    let mut ok = incoming
        .response_to(200, "OK", Some(&bob_tag))
        .expect("200");
    ok.headers.push(shared::sip::Header::new(
        shared::sip::HeaderName::parse("Contact"),
        format!("<{}>", bob.contact),
    ));
    for rr in incoming
        .headers
        .get_all(&shared::sip::HeaderName::parse("Record-Route"))
    {
        ok.headers.push(shared::sip::Header::new(
            shared::sip::HeaderName::parse("Record-Route"),
            rr,
        ));
    }
    ok.set_body(Some("application/sdp"), sdp.as_bytes().to_vec());
    bob.send_raw(&String::from_utf8_lossy(&ok.to_bytes()))
        .expect("send 200");
    let answered = alice
        .wait_response(&call_id, "INVITE", 200)
        .expect("alice gets 200");

    // ACK and BYE follow the route set the 200 carried.
    let routes: Vec<String> = answered
        .headers
        .get_all(&shared::sip::HeaderName::parse("Record-Route"))
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert!(!routes.is_empty(), "the edge must Record-Route the dialog");
    let route_lines: String = routes.iter().map(|r| format!("Route: {r}\r\n")).collect();
    let bob_contact = bob.contact.trim_start_matches("sip:").to_owned();
    let in_dialog = |method: &str, cseq: u32, branch: &str| {
        format!(
            "{method} sip:{bob_contact} SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK{branch}\r\n\
             Max-Forwards: 70\r\n{route_lines}To: <sip:1002@{DOMAIN}>;tag={bob_tag}\r\nFrom: <sip:1001@{DOMAIN}>;tag={tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n",
        )
    };
    let ack_branch = alice.token();
    alice
        .send_raw(&in_dialog("ACK", 1, &ack_branch))
        .expect("send ACK");
    bob.wait_request("ACK").expect("bob gets the ACK");
    let bye_branch = alice.token();
    alice
        .send_raw(&in_dialog("BYE", 2, &bye_branch))
        .expect("send BYE");
    let bye = bob.wait_request("BYE").expect("bob gets the BYE");
    let bye_ok = bye.response_to(200, "OK", None).expect("200 to BYE");
    bob.send_raw(&String::from_utf8_lossy(&bye_ok.to_bytes()))
        .expect("send 200");
    alice
        .wait_response(&call_id, "BYE", 200)
        .expect("alice gets 200 for BYE");
}

#[test]
fn a_flooding_socket_is_limited_without_hurting_other_accounts() {
    let edge = start("sip-flood");
    let mut flooder = registered(&edge, "1001");
    let mut calm = client(&edge, "1002");
    let call_id = flooder.token();
    for i in 0..150 {
        flooder
            .send_raw(&format!(
                "OPTIONS sip:{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/WSS f.invalid;branch=z9hG4bKflood{i}{call_id}\r\n\
                 Max-Forwards: 70\r\nTo: <sip:{DOMAIN}>\r\nFrom: <sip:1001@{DOMAIN}>;tag=f\r\nCall-ID: {call_id}\r\n\
                 CSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n",
                n = i + 1
            ))
            .expect("send");
    }
    let limited = flooder
        .wait_response(&call_id, "OPTIONS", 503)
        .expect("the flood gets 503");
    assert!(
        limited
            .headers
            .get(&shared::sip::HeaderName::parse("Retry-After"))
            .is_some(),
        "503 without Retry-After"
    );
    let resp = calm
        .register("secret-1002", 600)
        .expect("register while the other socket floods");
    assert_eq!(resp.status(), Some(200));
}

#[test]
fn a_socket_on_one_tenant_cannot_register_or_call_into_another() {
    let edge = start("sip-tenants");
    let other =
        json!({ "domain": "other.test", "brand_name": "Other", "webrtc_host": "sip.other.test" });
    assert_eq!(
        edge.send(&edge.admin("POST", "/admin/tenants").json(&other))
            .expect("tenant")
            .status,
        201
    );
    let resp = edge
        .send(
            &edge
                .admin("PUT", "/admin/tenants/other.test/accounts/1001")
                .json(&json!({ "password": "secret-1001" })),
        )
        .expect("account");
    assert_eq!(resp.status, 201);

    // A socket on phone.test's WebRTC host trying to register as other.test's 1001 (same password).
    let mut intruder =
        SipWsClient::connect(edge.addr, WS_HOST, "1001", "other.test").expect("connect");
    let resp = intruder.register("secret-1001", 600).expect("register");
    assert_eq!(
        resp.status(),
        Some(403),
        "cross-tenant REGISTER answered {:?}",
        resp.status()
    );

    // Registered on phone.test, calling other.test's user stays inside phone.test (no such account: 404).
    let mut alice = registered(&edge, "1001");
    let mut victim =
        SipWsClient::connect(edge.addr, "sip.other.test", "1001", "other.test").expect("connect");
    assert_eq!(
        victim
            .register("secret-1001", 600)
            .expect("register")
            .status(),
        Some(200)
    );
    let call_id = alice.token();
    alice
        .send_raw(&format!(
            "MESSAGE sip:1001@other.test SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK{call_id}\r\n\
             Max-Forwards: 70\r\nTo: <sip:1001@other.test>\r\nFrom: <sip:1001@{DOMAIN}>;tag=x\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
        ))
        .expect("send");
    let answer = alice
        .wait_for(
            "a final answer to the MESSAGE",
            Duration::from_secs(15),
            |m| m.call_id().ok() == Some(call_id.as_str()) && m.status().is_some_and(|s| s >= 200),
        )
        .expect("final answer");
    assert!(
        answer.status().is_some_and(|s| s >= 400),
        "cross-tenant MESSAGE answered {:?}",
        answer.status()
    );
    let leaked = victim.wait_request("MESSAGE");
    assert!(leaked.is_err(), "a message crossed tenants: {leaked:?}");
}

#[test]
fn an_account_on_two_browsers_rings_both_and_the_other_is_cancelled() {
    let edge = start("sip-fork");
    let mut alice = registered(&edge, "1001");
    let mut bob_desk = registered(&edge, "1002");
    let mut bob_phone = registered(&edge, "1002");

    let call_id = alice.token();
    let tag = alice.token();
    alice
        .send_raw(&format!(
            "INVITE sip:1002@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK{call_id}\r\n\
             Max-Forwards: 70\r\nTo: <sip:1002@{DOMAIN}>\r\nFrom: <sip:1001@{DOMAIN}>;tag={tag}\r\nCall-ID: {call_id}\r\n\
             CSeq: 1 INVITE\r\nContact: <{contact}>\r\nContent-Length: 0\r\n\r\n",
            contact = alice.contact
        ))
        .expect("send INVITE");
    let on_desk = bob_desk
        .wait_request("INVITE")
        .expect("the desk browser rings");
    let on_phone = bob_phone
        .wait_request("INVITE")
        .expect("the phone browser rings");
    assert_eq!(on_desk.call_id().ok(), Some(call_id.as_str()));
    assert_eq!(on_phone.call_id().ok(), Some(call_id.as_str()));

    let desk_tag = bob_desk.token();
    let mut ok = on_desk
        .response_to(200, "OK", Some(&desk_tag))
        .expect("200");
    ok.headers.push(shared::sip::Header::new(
        shared::sip::HeaderName::parse("Contact"),
        format!("<{}>", bob_desk.contact),
    ));
    bob_desk
        .send_raw(&String::from_utf8_lossy(&ok.to_bytes()))
        .expect("send 200");
    alice
        .wait_response(&call_id, "INVITE", 200)
        .expect("alice gets the desk's 200");

    let cancel = bob_phone
        .wait_request("CANCEL")
        .expect("the other browser is cancelled");
    let cancel_ok = cancel.response_to(200, "OK", None).expect("200 to CANCEL");
    bob_phone
        .send_raw(&String::from_utf8_lossy(&cancel_ok.to_bytes()))
        .expect("send 200");
    let terminated = on_phone
        .response_to(487, "Request Terminated", Some(&bob_phone.token()))
        .expect("487");
    bob_phone
        .send_raw(&String::from_utf8_lossy(&terminated.to_bytes()))
        .expect("send 487");
    let ack = bob_phone
        .wait_request("ACK")
        .expect("the edge ACKs the 487 itself");
    assert_eq!(ack.call_id().ok(), Some(call_id.as_str()));
}
