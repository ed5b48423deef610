//! Local registration with digest authentication, on virtual time.

mod proxy_common;

use proxy_common::*;
use shared::proxy::{AccountCore, Event, Output, RegistrationMode};

fn net() -> Net {
    Net::new(vec![config("1001", RegistrationMode::Local, false)])
}

#[test]
fn register_is_challenged_then_accepted_with_registered_and_bindings() {
    let mut net = net();
    let mut b = Browser::new("1001", "ws1");
    let r1 = b.register(1, 600, None);
    net.browser_sends(&b, r1);
    let got = one(net.take("ws1"));
    assert_eq!(status(&got), 401);
    let challenges = header(&got, "WWW-Authenticate");
    assert_eq!(challenges.len(), 2);
    // SHA-256 first (RFC 8760); MD5 last, which is the one JsSIP (keeping the last) answers.
    assert!(
        challenges[0].contains("algorithm=SHA-256"),
        "{challenges:?}"
    );
    assert!(challenges[1].contains("algorithm=MD5"), "{challenges:?}");
    assert!(challenges[0].contains("realm=\"localhost\""));
    assert!(got.to().unwrap().tag().is_some());
    assert!(
        net.take_other("1001").is_empty(),
        "no Registered before auth"
    );

    let ch = first_challenge(&got);
    let auth = answer(&ch, "1001", "demo-1001", 1);
    let r2 = b.register(2, 600, Some(&auth));
    net.browser_sends(&b, r2);
    let ok = one(net.take("ws1"));
    assert_eq!(status(&ok), 200);
    let contacts = header(&ok, "Contact");
    assert_eq!(contacts.len(), 1);
    assert!(
        contacts[0].contains("sip:cws1@ws1.invalid;transport=ws"),
        "{contacts:?}"
    );
    assert!(contacts[0].ends_with(";expires=600"), "{contacts:?}");
    let other = net.take_other("1001");
    assert!(other.contains(&Output::Registered { conn: "ws1".into() }));
    let persisted = other
        .iter()
        .find_map(|o| match o {
            Output::PersistBindings(b) => Some(b.clone()),
            _ => None,
        })
        .expect("bindings persisted");
    assert_eq!(persisted.len(), 1);
    assert_eq!(persisted[0].conn, "ws1");
    assert_eq!(persisted[0].reg_id, Some(1));
    assert_eq!(persisted[0].expires_at_ms, T0 + 600_000);
    // No secret in any output.
    let cfg = net.core("1001").config().clone();
    let creds = cfg.credentials.unwrap();
    for o in &other {
        let text = format!("{o:?}");
        assert!(!text.contains(&creds.ha1_md5) && !text.contains(&creds.ha1_sha256));
    }
}

#[test]
fn md5_answer_is_accepted_too() {
    let mut net = net();
    let mut b = Browser::new("1001", "ws1");
    let r1 = b.register(1, 600, None);
    net.browser_sends(&b, r1);
    let got = one(net.take("ws1"));
    let md5 = shared::auth::Challenge::parse(header(&got, "WWW-Authenticate")[1]).unwrap();
    let r2 = b.register(2, 600, Some(&answer(&md5, "1001", "demo-1001", 1)));
    net.browser_sends(&b, r2);
    assert_eq!(status(&one(net.take("ws1"))), 200);
}

#[test]
fn wrong_password_is_forbidden_and_binds_nothing() {
    let mut net = net();
    let mut b = Browser::new("1001", "ws1");
    let r1 = b.register(1, 600, None);
    net.browser_sends(&b, r1);
    let ch = first_challenge(&one(net.take("ws1")));
    let r2 = b.register(2, 600, Some(&answer(&ch, "1001", "guess", 1)));
    net.browser_sends(&b, r2);
    assert_eq!(status(&one(net.take("ws1"))), 403);
    assert!(net.take_other("1001").is_empty());
    assert!(net.core("1001").bindings().is_empty());
}

#[test]
fn unknown_account_gets_the_same_401_then_403() {
    let mut cfg = config("1009", RegistrationMode::Local, false);
    cfg.credentials = None;
    let mut net = Net::new(vec![cfg]);
    let mut b = Browser::new("1009", "ws1");
    let r1 = b.register(1, 600, None);
    net.browser_sends(&b, r1);
    let got = one(net.take("ws1"));
    assert_eq!(header(&got, "WWW-Authenticate").len(), 2);
    let ch = first_challenge(&got);
    let r2 = b.register(2, 600, Some(&answer(&ch, "1009", "anything", 1)));
    net.browser_sends(&b, r2);
    assert_eq!(status(&one(net.take("ws1"))), 403);
}

#[test]
fn another_users_password_cannot_register_this_account() {
    let mut net = net();
    let mut b = Browser::new("1001", "ws1");
    let r1 = b.register(1, 600, None);
    net.browser_sends(&b, r1);
    let ch = first_challenge(&one(net.take("ws1")));
    // Right password of 1002, presented as 1002, for the AOR of 1001.
    let r2 = b.register(2, 600, Some(&answer(&ch, "1002", "demo-1002", 1)));
    net.browser_sends(&b, r2);
    assert_eq!(status(&one(net.take("ws1"))), 403);
}

#[test]
fn replayed_nonce_count_gets_a_stale_challenge() {
    let mut net = net();
    let mut b = Browser::new("1001", "ws1");
    let r1 = b.register(1, 600, None);
    net.browser_sends(&b, r1);
    let ch = first_challenge(&one(net.take("ws1")));
    let auth = answer(&ch, "1001", "demo-1001", 1);
    let r2 = b.register(2, 600, Some(&auth));
    net.browser_sends(&b, r2);
    assert_eq!(status(&one(net.take("ws1"))), 200);
    // The same Authorization again (a captured REGISTER replayed).
    let r3 = b.register(3, 600, Some(&auth));
    net.browser_sends(&b, r3);
    let got = one(net.take("ws1"));
    assert_eq!(status(&got), 401);
    assert!(header(&got, "WWW-Authenticate")[0].contains("stale=true"));
    // The next count with the same nonce is fine (JsSIP's refresh).
    let r4 = b.register(4, 600, Some(&answer(&ch, "1001", "demo-1001", 2)));
    net.browser_sends(&b, r4);
    assert_eq!(status(&one(net.take("ws1"))), 200);
}

#[test]
fn expired_nonce_gets_a_stale_challenge() {
    let mut net = net();
    let mut b = Browser::new("1001", "ws1");
    let r1 = b.register(1, 600, None);
    net.browser_sends(&b, r1);
    let ch = first_challenge(&one(net.take("ws1")));
    net.advance(10 * 60 * 1000);
    let r2 = b.register(2, 600, Some(&answer(&ch, "1001", "demo-1001", 1)));
    net.browser_sends(&b, r2);
    let got = one(net.take("ws1"));
    assert_eq!(status(&got), 401);
    assert!(header(&got, "WWW-Authenticate")[0].contains("stale=true"));
}

#[test]
fn registration_expiry_removes_the_binding() {
    let mut net = net();
    let mut b = Browser::new("1001", "ws1");
    net.register(&mut b);
    assert_eq!(net.core("1001").bindings().len(), 1);
    assert_eq!(net.core("1001").poll_timeout(), Some(T0 + 600_000));
    net.advance(599_999);
    assert_eq!(net.core("1001").bindings().len(), 1);
    net.advance(1);
    assert!(net.core("1001").bindings().is_empty());
    assert!(net
        .take_other("1001")
        .contains(&Output::PersistBindings(Vec::new())));
    assert_eq!(net.core("1001").poll_timeout(), None);
}

#[test]
fn unregister_and_connection_close_remove_bindings() {
    let mut net = net();
    let mut a = Browser::new("1001", "ws1");
    let mut b = Browser::new("1001", "ws2");
    net.register(&mut a);
    net.register(&mut b);
    assert_eq!(net.core("1001").bindings().len(), 2);
    net.event("1001", Event::ConnectionClosed { conn: "ws2".into() });
    assert_eq!(net.core("1001").bindings().len(), 1);
    assert!(matches!(net.take_other("1001")[..], [Output::PersistBindings(ref v)] if v.len() == 1));

    let r = a.register(3, 0, None);
    net.browser_sends(&a, r);
    let ch = first_challenge(&one(net.take("ws1")));
    let r = a.register(4, 0, Some(&answer(&ch, "1001", "demo-1001", 1)));
    net.browser_sends(&a, r);
    let ok = one(net.take("ws1"));
    assert_eq!(status(&ok), 200);
    assert!(header(&ok, "Contact").is_empty());
    assert!(net.core("1001").bindings().is_empty());
}

#[test]
fn too_brief_registration_gets_423_with_min_expires() {
    let mut net = net();
    let mut b = Browser::new("1001", "ws1");
    let r = b.register(1, 10, None);
    net.browser_sends(&b, r);
    let ch = first_challenge(&one(net.take("ws1")));
    let r = b.register(2, 10, Some(&answer(&ch, "1001", "demo-1001", 1)));
    net.browser_sends(&b, r);
    let got = one(net.take("ws1"));
    assert_eq!(status(&got), 423);
    assert_eq!(header(&got, "Min-Expires"), ["60"]);
}

#[test]
fn register_for_another_domain_or_user_is_forbidden() {
    let mut net = net();
    let mut b = Browser::new("1001", "ws1");
    for (from, to) in [("localhost", "other.example"), ("localhost", "localhost")] {
        let r = b.register(1, 600, None);
        let text = String::from_utf8(r.to_bytes()).unwrap();
        let text = text
            .replace("To: <sip:1001@localhost>", &format!("To: <sip:1002@{to}>"))
            .replace(
                "From: <sip:1001@localhost>",
                &format!("From: <sip:1001@{from}>"),
            );
        net.browser_sends(&b, parse(&text));
        assert_eq!(status(&one(net.take("ws1"))), 403, "{from} {to}");
    }
}

#[test]
fn restored_core_keeps_bindings_and_refuses_nonces_of_the_previous_instance() {
    let mut net = net();
    let mut b = Browser::new("1001", "ws1");
    let r1 = b.register(1, 600, None);
    net.browser_sends(&b, r1);
    let ch = first_challenge(&one(net.take("ws1")));
    let auth = answer(&ch, "1001", "demo-1001", 1);
    let r2 = b.register(2, 600, Some(&auth));
    net.browser_sends(&b, r2);
    assert_eq!(status(&one(net.take("ws1"))), 200);
    let saved = net.core("1001").bindings().to_vec();

    // Evicted; the shell rebuilds the core a minute later from what it persisted.
    net.advance(60_000);
    let cfg = net.core("1001").config().clone();
    let restored = AccountCore::restore(cfg, saved, net.now);
    net.cores.insert("1001".into(), restored);
    assert_eq!(net.core("1001").bindings().len(), 1);
    assert_eq!(net.core("1001").poll_timeout(), Some(T0 + 600_000));
    // The old Authorization replayed against the new instance (its tracker is empty) is refused.
    let r3 = b.register(3, 600, Some(&auth));
    net.browser_sends(&b, r3);
    let got = one(net.take("ws1"));
    assert_eq!(status(&got), 401);
    assert!(header(&got, "WWW-Authenticate")[0].contains("stale=true"));
}
