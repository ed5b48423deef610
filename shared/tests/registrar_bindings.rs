//! RFC 3261 §10.3 REGISTER processing on virtual time.

use shared::registrar::{
    BindingChange, Bindings, ContactInput, Contacts, Register, RegistrarConfig, RegistrarError, Q,
};

const T0: u64 = 1_700_000_000_000;

fn aor() -> Bindings {
    Bindings::new(RegistrarConfig::default())
}

fn register(call_id: &str, cseq: u32, expires: Option<u32>, uris: &[&str]) -> Register {
    Register {
        call_id: call_id.into(),
        cseq,
        expires,
        contacts: Contacts::List(uris.iter().map(|u| ContactInput::new(*u)).collect()),
        path: vec![],
        flow: Some("ws-1".into()),
    }
}

fn uris(b: &Bindings, now: u64) -> Vec<String> {
    b.live(now).map(|b| b.uri.clone()).collect()
}

#[test]
fn binding_expires_exactly_at_its_time() {
    let mut b = aor();
    let out = b
        .apply(T0, &register("c", 1, Some(600), &["sip:a@h"]))
        .unwrap();
    assert!(matches!(out.changes.as_slice(), [BindingChange::Added(_)]));
    assert_eq!(b.poll_timeout(), Some(T0 + 600_000));
    assert_eq!(b.iter().next().unwrap().expires_in_s(T0), 600);
    assert_eq!(b.iter().next().unwrap().expires_in_s(T0 + 599_001), 1);
    assert!(b.handle_timeout(T0 + 599_999).is_empty());
    assert_eq!(uris(&b, T0 + 599_999), ["sip:a@h"]);
    assert!(uris(&b, T0 + 600_000).is_empty());
    let gone = b.handle_timeout(T0 + 600_000);
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0].uri, "sip:a@h");
    assert!(b.is_empty());
    assert_eq!(b.poll_timeout(), None);
}

#[test]
fn refresh_extends_the_binding() {
    let mut b = aor();
    b.apply(T0, &register("c", 1, Some(600), &["sip:a@h"]))
        .unwrap();
    let out = b
        .apply(T0 + 500_000, &register("c", 2, Some(600), &["sip:a@h"]))
        .unwrap();
    match out.changes.as_slice() {
        [BindingChange::Updated { old, new }] => {
            assert_eq!(old.cseq, 1);
            assert_eq!(new.cseq, 2);
            assert_eq!(new.expires_at_ms, T0 + 1_100_000);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(b.len(), 1);
    assert!(b.handle_timeout(T0 + 600_000).is_empty());
    assert_eq!(b.handle_timeout(T0 + 1_100_000).len(), 1);
}

#[test]
fn contact_expires_param_overrides_the_header_and_default_applies_otherwise() {
    let mut b = aor();
    let mut r = register("c", 1, Some(600), &["sip:a@h", "sip:b@h"]);
    if let Contacts::List(list) = &mut r.contacts {
        list[0].expires = Some(120);
    }
    b.apply(T0, &r).unwrap();
    let exp: Vec<u64> = b.iter().map(|x| x.expires_at_ms - T0).collect();
    assert_eq!(exp, [120_000, 600_000]);
    let mut b = aor();
    b.apply(T0, &register("c", 1, None, &["sip:a@h"])).unwrap();
    assert_eq!(b.poll_timeout(), Some(T0 + 3_600_000));
}

#[test]
fn too_long_expiry_is_shortened_to_the_maximum() {
    let mut b = aor();
    b.apply(T0, &register("c", 1, Some(86_400), &["sip:a@h"]))
        .unwrap();
    assert_eq!(b.iter().next().unwrap().expires_in_s(T0), 3600);
}

#[test]
fn expires_zero_removes_the_binding() {
    let mut b = aor();
    b.apply(T0, &register("c", 1, Some(600), &["sip:a@h", "sip:b@h"]))
        .unwrap();
    let out = b
        .apply(T0 + 1, &register("c", 2, Some(0), &["sip:a@h"]))
        .unwrap();
    match out.changes.as_slice() {
        [BindingChange::Removed(r)] => assert_eq!(r.uri, "sip:a@h"),
        other => panic!("{other:?}"),
    }
    assert_eq!(uris(&b, T0 + 1), ["sip:b@h"]);
    // Removing an unknown contact is a no-op, not an error.
    let out = b
        .apply(T0 + 2, &register("c", 3, Some(0), &["sip:z@h"]))
        .unwrap();
    assert!(out.changes.is_empty());
}

#[test]
fn star_with_expires_zero_removes_all() {
    let mut b = aor();
    b.apply(T0, &register("c", 1, Some(600), &["sip:a@h"]))
        .unwrap();
    b.apply(T0, &register("other", 7, Some(600), &["sip:b@h"]))
        .unwrap();
    let mut star = register("c", 2, Some(0), &[]);
    star.contacts = Contacts::Wildcard;
    let out = b.apply(T0 + 1, &star).unwrap();
    assert_eq!(out.changes.len(), 2);
    assert!(out
        .changes
        .iter()
        .all(|c| matches!(c, BindingChange::Removed(_))));
    assert!(b.is_empty());
}

#[test]
fn star_as_a_contact_uri_works_and_misuse_is_bad_request() {
    let mut b = aor();
    b.apply(T0, &register("c", 1, Some(600), &["sip:a@h"]))
        .unwrap();
    let err = b
        .apply(T0, &register("c", 2, Some(600), &["*"]))
        .unwrap_err();
    assert_eq!(err, RegistrarError::InvalidWildcard);
    assert_eq!(err.status(), 400);
    let err = b.apply(T0, &register("c", 2, None, &["*"])).unwrap_err();
    assert_eq!(err, RegistrarError::InvalidWildcard);
    let err = b
        .apply(T0, &register("c", 2, Some(0), &["*", "sip:b@h"]))
        .unwrap_err();
    assert_eq!(err, RegistrarError::InvalidWildcard);
    assert_eq!(b.len(), 1);
    b.apply(T0, &register("c", 2, Some(0), &["*"])).unwrap();
    assert!(b.is_empty());
}

#[test]
fn star_with_an_old_cseq_is_refused_and_removes_nothing() {
    let mut b = aor();
    b.apply(T0, &register("c", 5, Some(600), &["sip:a@h"]))
        .unwrap();
    let mut star = register("c", 5, Some(0), &[]);
    star.contacts = Contacts::Wildcard;
    assert_eq!(b.apply(T0, &star), Err(RegistrarError::OutOfOrder));
    assert_eq!(b.len(), 1);
}

#[test]
fn out_of_order_cseq_with_the_same_call_id_is_refused() {
    let mut b = aor();
    b.apply(T0, &register("c", 5, Some(600), &["sip:a@h"]))
        .unwrap();
    for cseq in [5, 4] {
        let err = b
            .apply(T0 + 1, &register("c", cseq, Some(0), &["sip:a@h"]))
            .unwrap_err();
        assert_eq!(err, RegistrarError::OutOfOrder);
        assert_eq!((err.status(), err.reason()), (500, "Server Internal Error"));
    }
    assert_eq!(b.len(), 1);
    // Another Call-ID (a client that restarted) replaces the binding whatever its CSeq.
    let out = b
        .apply(T0 + 2, &register("restarted", 1, Some(600), &["sip:a@h"]))
        .unwrap();
    assert!(matches!(
        out.changes.as_slice(),
        [BindingChange::Updated { .. }]
    ));
    assert_eq!(b.iter().next().unwrap().call_id, "restarted");
}

#[test]
fn failed_request_changes_nothing() {
    let mut b = aor();
    b.apply(T0, &register("c", 5, Some(600), &["sip:a@h"]))
        .unwrap();
    let before = b.clone();
    // The first contact alone would be fine; the second is out of order.
    let err = b.apply(
        T0 + 1,
        &register("c", 4, Some(600), &["sip:new@h", "sip:a@h"]),
    );
    assert_eq!(err, Err(RegistrarError::OutOfOrder));
    assert_eq!(b, before);
}

#[test]
fn interval_too_brief_gives_423_with_the_minimum() {
    let mut b = aor();
    let err = b
        .apply(T0, &register("c", 1, Some(30), &["sip:a@h"]))
        .unwrap_err();
    assert_eq!(err, RegistrarError::IntervalTooBrief { min_expires: 60 });
    assert_eq!(err.status(), 423);
    assert_eq!(err.reason(), "Interval Too Brief");
    assert_eq!(err.min_expires(), Some(60));
    assert!(b.is_empty());
    // Exactly the minimum is fine, and 0 (removal) is never too brief.
    b.apply(T0, &register("c", 2, Some(60), &["sip:a@h"]))
        .unwrap();
    b.apply(T0, &register("c", 3, Some(0), &["sip:a@h"]))
        .unwrap();
}

#[test]
fn limit_reached_is_refused_and_keeps_the_existing_bindings() {
    let config = RegistrarConfig {
        max_bindings: 2,
        ..RegistrarConfig::default()
    };
    let mut b = Bindings::new(config);
    b.apply(T0, &register("c1", 1, Some(600), &["sip:a@h"]))
        .unwrap();
    b.apply(T0, &register("c2", 1, Some(600), &["sip:b@h"]))
        .unwrap();
    let err = b
        .apply(T0, &register("c3", 1, Some(600), &["sip:c@h"]))
        .unwrap_err();
    assert_eq!(err, RegistrarError::TooManyBindings { max: 2 });
    assert_eq!(err.status(), 403);
    assert_eq!(uris(&b, T0), ["sip:a@h", "sip:b@h"]);
    // Refreshing at the limit is fine, and so is adding once one expired.
    b.apply(T0 + 1, &register("c1", 2, Some(60), &["sip:a@h"]))
        .unwrap();
    let out = b
        .apply(T0 + 60_001, &register("c3", 1, Some(600), &["sip:c@h"]))
        .unwrap();
    assert_eq!(out.expired.len(), 1);
    assert_eq!(out.expired[0].uri, "sip:a@h");
    assert_eq!(uris(&b, T0 + 60_001), ["sip:b@h", "sip:c@h"]);
}

#[test]
fn fetch_changes_nothing() {
    let mut b = aor();
    b.apply(T0, &register("c", 1, Some(600), &["sip:a@h"]))
        .unwrap();
    let mut fetch = register("c", 1, None, &[]);
    fetch.contacts = Contacts::Fetch;
    let out = b.apply(T0 + 1, &fetch).unwrap();
    assert!(out.changes.is_empty());
    assert_eq!(b.len(), 1);
}

#[test]
fn empty_contact_uri_is_bad_request() {
    let mut b = aor();
    let err = b.apply(T0, &register("c", 1, None, &[" "])).unwrap_err();
    assert_eq!(err, RegistrarError::EmptyContact);
    assert_eq!(err.status(), 400);
}

#[test]
fn q_path_and_flow_are_kept() {
    let mut b = aor();
    let mut r = register("c", 1, Some(600), &["sip:a@h"]);
    r.path = vec!["<sip:edge.example;lr;ob>".into()];
    if let Contacts::List(list) = &mut r.contacts {
        list[0].q = Q::parse("0.7");
    }
    b.apply(T0, &r).unwrap();
    let x = b.iter().next().unwrap();
    assert_eq!(x.q.unwrap().to_string(), "0.7");
    assert_eq!(x.path, ["<sip:edge.example;lr;ob>"]);
    assert_eq!(x.flow.as_deref(), Some("ws-1"));
    assert_eq!(b.remove_flow("ws-1").len(), 1);
    assert!(b.is_empty());
}

#[test]
fn bindings_survive_a_serde_roundtrip() {
    let mut b = aor();
    b.apply(T0, &register("c", 1, Some(600), &["sip:a@h"]))
        .unwrap();
    let json = serde_json::to_string(&b).unwrap();
    let back: Bindings = serde_json::from_str(&json).unwrap();
    assert_eq!(back, b);
}
