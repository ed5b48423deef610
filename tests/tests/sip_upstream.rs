//! Calls leaving the platform to the tenant's upstream SIP server (sipp over TCP), and relay mode:
//! REGISTER relayed upstream and the upstream's INVITE coming back over the same connection.

use std::time::Duration;

use serde_json::{json, Value};
use tests::edge::{Edge, EdgeOptions};
use tests::sip_ws::SipWsClient;
use tests::sipp::{Scenario, Sipp};

const DOMAIN: &str = "phone.test";
const WS_HOST: &str = "sip.test";

fn start(name: &str, sip: Value) -> (Edge, std::path::PathBuf) {
    let dir = tests::scratch_dir(name).expect("scratch dir");
    let edge = Edge::start(&EdgeOptions {
        port: None,
        state_dir: dir.join("edge"),
        operator_token: "upstream-test-token".into(),
        vars: Vec::new(),
        fleet_secret: None,
    })
    .unwrap_or_else(|e| panic!("edge did not start: {e}"));
    let tenant =
        json!({ "domain": DOMAIN, "brand_name": "Test Phone", "webrtc_host": WS_HOST, "sip": sip });
    let resp = edge
        .send(&edge.admin("POST", "/admin/tenants").json(&tenant))
        .expect("create tenant");
    assert_eq!(resp.status, 201, "{}", resp.text());
    let body = json!({ "password": "secret-1001" });
    let resp = edge
        .send(
            &edge
                .admin("PUT", &format!("/admin/tenants/{DOMAIN}/accounts/1001"))
                .json(&body),
        )
        .expect("account");
    assert_eq!(resp.status, 201, "{}", resp.text());
    (edge, dir)
}

#[test]
fn calls_to_numbers_that_are_not_accounts_go_to_the_upstream() {
    let dir = tests::scratch_dir("sipp-uas").expect("scratch dir");
    let mut sipp = Sipp::server(Scenario::Builtin("uas"), 1, &dir).expect("start sipp");
    let (edge, _) = start(
        "sip-call-out",
        json!({ "registration": "local", "upstream": { "host": "127.0.0.1", "port": sipp.addr.port(), "transport": "tcp", "media": "passthrough" } }),
    );
    let mut alice = SipWsClient::connect(edge.addr, WS_HOST, "1001", DOMAIN).expect("connect");
    assert_eq!(
        alice
            .register("secret-1001", 600)
            .expect("register")
            .status(),
        Some(200)
    );

    let call_id = alice.token();
    let tag = alice.token();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    alice
        .send_raw(&format!(
            "INVITE sip:5551234@{DOMAIN} SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK{call_id}\r\n\
             Max-Forwards: 70\r\nTo: <sip:5551234@{DOMAIN}>\r\nFrom: <sip:1001@{DOMAIN}>;tag={tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <{contact}>\r\nContent-Type: application/sdp\r\n\
             Content-Length: {len}\r\n\r\n{sdp}",
            contact = alice.contact,
            len = sdp.len()
        ))
        .expect("send INVITE");
    let ok = alice
        .wait_response(&call_id, "INVITE", 200)
        .unwrap_or_else(|e| {
            panic!(
                "no 200 from the upstream: {e}\nsipp:\n{}\nedge:\n{}",
                sipp.log_tail(40),
                edge.log_tail(30)
            )
        });
    let to = ok.to().expect("To").to_string();
    let routes: Vec<String> = ok
        .headers
        .get_all(&shared::sip::HeaderName::parse("Record-Route"))
        .map(str::to_owned)
        .collect();
    let route_lines: String = routes
        .iter()
        .rev()
        .map(|r| format!("Route: {r}\r\n"))
        .collect();
    let target = ok
        .contacts()
        .ok()
        .and_then(|c| match c {
            shared::sip::Contacts::List(list) => list.first().map(|c| c.uri.to_string()),
            _ => None,
        })
        .expect("200 has a Contact");
    for (method, cseq) in [("ACK", 1), ("BYE", 2)] {
        let branch = alice.token();
        alice
            .send_raw(&format!(
                "{method} {target} SIP/2.0\r\nVia: SIP/2.0/WSS a.invalid;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
                 {route_lines}To: {to}\r\nFrom: <sip:1001@{DOMAIN}>;tag={tag}\r\nCall-ID: {call_id}\r\n\
                 CSeq: {cseq} {method}\r\nContent-Length: 0\r\n\r\n"
            ))
            .expect("send");
    }
    alice
        .wait_response(&call_id, "BYE", 200)
        .unwrap_or_else(|e| panic!("BYE not answered: {e}\nsipp:\n{}", sipp.log_tail(40)));
    let status = sipp.wait(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "sipp did not complete its call ({status:?}):\n{}",
        sipp.log_tail(40)
    );
}

#[test]
fn relay_mode_registers_upstream_and_takes_the_upstream_call_over_that_connection() {
    let dir = tests::scratch_dir("sipp-relay").expect("scratch dir");
    let scenario = tests::workspace_root().join("tests/scenarios/relay_registrar_then_caller.xml");
    let mut sipp = Sipp::server(Scenario::File(&scenario), 1, &dir).expect("start sipp");
    let (edge, _) = start(
        "sip-relay",
        json!({ "registration": "relay", "upstream": { "host": "127.0.0.1", "port": sipp.addr.port(), "transport": "tcp", "media": "passthrough" } }),
    );
    let mut alice = SipWsClient::connect(edge.addr, WS_HOST, "1001", DOMAIN).expect("connect");
    let reg = alice
        .register("upstream-checks-this", 600)
        .expect("register");
    assert_eq!(
        reg.status(),
        Some(200),
        "relayed REGISTER: {:?}\nsipp:\n{}",
        reg.status(),
        sipp.log_tail(40)
    );

    let invite = alice.wait_request("INVITE").unwrap_or_else(|e| {
        panic!(
            "no INVITE from the upstream: {e}\nsipp:\n{}\nedge:\n{}",
            sipp.log_tail(40),
            edge.log_tail(30)
        )
    });
    let tag = alice.token();
    let ringing = invite.response_to(180, "Ringing", Some(&tag)).expect("180");
    alice
        .send_raw(&String::from_utf8_lossy(&ringing.to_bytes()))
        .expect("send 180");
    let mut ok = invite.response_to(200, "OK", Some(&tag)).expect("200");
    ok.headers.push(shared::sip::Header::new(
        shared::sip::HeaderName::parse("Contact"),
        format!("<{}>", alice.contact),
    ));
    for rr in invite
        .headers
        .get_all(&shared::sip::HeaderName::parse("Record-Route"))
    {
        ok.headers.push(shared::sip::Header::new(
            shared::sip::HeaderName::parse("Record-Route"),
            rr,
        ));
    }
    let sdp = "v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    ok.set_body(Some("application/sdp"), sdp.as_bytes().to_vec());
    alice
        .send_raw(&String::from_utf8_lossy(&ok.to_bytes()))
        .expect("send 200");
    alice
        .wait_request("ACK")
        .unwrap_or_else(|e| panic!("no ACK: {e}\nsipp:\n{}", sipp.log_tail(40)));
    let bye = alice
        .wait_request("BYE")
        .unwrap_or_else(|e| panic!("no BYE: {e}\nsipp:\n{}", sipp.log_tail(40)));
    let bye_ok = bye.response_to(200, "OK", None).expect("200");
    alice
        .send_raw(&String::from_utf8_lossy(&bye_ok.to_bytes()))
        .expect("send 200");
    let status = sipp.wait(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "sipp did not complete ({status:?}):\n{}",
        sipp.log_tail(40)
    );
}
