//! RFC 7118 §8.2's INVITE (F1) through an account core: the preloaded route to the edge is
//! consumed and the request goes to the callee's account object.

mod proxy_common;

use proxy_common::*;
use shared::proxy::{AccountConfig, AccountCore, Event, Output, RegistrationMode};
use shared::sip::{edge_verdict, EdgeVerdict, Method};

#[test]
fn rfc7118_invite_with_a_preloaded_route_reaches_the_callee_account() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sip/rfc7118/8.2-F1-INVITE-alice-to-proxy.sip");
    let raw = std::fs::read(path).expect("the RFC 7118 corpus copy");
    let raw = String::from_utf8(raw)
        .unwrap()
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    let EdgeVerdict::Accept(msg) = edge_verdict(raw.as_bytes()) else {
        panic!("the edge accepts F1");
    };
    let mut core = AccountCore::new(AccountConfig {
        tenant_domain: "example.com".into(),
        user: "alice".into(),
        edge_host: "proxy.example.com".into(),
        registration: RegistrationMode::Local,
        seed: 42,
        ..Default::default()
    });
    core.handle(
        T0,
        Event::FromBrowser {
            conn: "c1".into(),
            msg: *msg,
        },
    );
    let mut outs = Vec::new();
    while let Some(o) = core.poll_output() {
        outs.push(o);
    }
    let [Output::ToBrowser { msg: trying, .. }, Output::Lookup { id, user }] = &outs[..] else {
        panic!("{outs:#?}");
    };
    assert_eq!(status(trying), 100);
    assert_eq!(user, "bob");
    core.handle(
        T0 + 5,
        Event::LookupResult {
            id: *id,
            is_account: true,
        },
    );
    let Some(Output::ToAccount { user, msg }) = core.poll_output() else {
        panic!("forwarded to bob's account");
    };
    assert_eq!(user, "bob");
    assert_eq!(method(&msg), Method::INVITE);
    assert!(
        header(&msg, "Route").is_empty(),
        "the route to the edge itself is consumed"
    );
    assert_eq!(
        header(&msg, "Record-Route"),
        ["<sip:proxy.example.com;transport=ws;lr;acct=alice>"]
    );
    assert_eq!(msg.max_forwards().unwrap(), Some(69));
    assert_eq!(msg.vias().unwrap().len(), 2);
    assert_eq!(msg.top_via().unwrap().host.to_string(), "proxy.example.com");
    assert!(core.poll_output().is_none());
}
