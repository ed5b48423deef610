//! RFC 5626 (SIP outbound): a contact's `+sip.instance` and `reg-id` name a flow; a REGISTER
//! with the same pair replaces the older flow's binding.

use shared::registrar::{
    BindingChange, Bindings, ContactInput, Contacts, Register, RegistrarConfig, RegistrarError,
};

const T0: u64 = 1_700_000_000_000;
const INSTANCE: &str = "\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\"";

fn outbound(call_id: &str, cseq: u32, uri: &str, reg_id: u32, flow: &str) -> Register {
    Register {
        call_id: call_id.into(),
        cseq,
        expires: Some(600),
        contacts: Contacts::List(vec![ContactInput {
            instance: Some(INSTANCE.into()),
            reg_id: Some(reg_id),
            ..ContactInput::new(uri)
        }]),
        path: vec![],
        flow: Some(flow.into()),
    }
}

#[test]
fn same_instance_and_reg_id_replaces_the_older_flow() {
    let mut b = Bindings::new(RegistrarConfig::default());
    b.apply(
        T0,
        &outbound("c1", 1, "sip:x@one.invalid;transport=ws", 1, "ws-1"),
    )
    .unwrap();
    // The browser reconnected: new socket, new contact host, new Call-ID, same instance/reg-id.
    let out = b
        .apply(
            T0 + 5,
            &outbound("c2", 1, "sip:x@two.invalid;transport=ws", 1, "ws-2"),
        )
        .unwrap();
    match out.changes.as_slice() {
        [BindingChange::Updated { old, new }] => {
            assert_eq!(old.flow.as_deref(), Some("ws-1"));
            assert_eq!(new.flow.as_deref(), Some("ws-2"));
            assert_eq!(new.uri, "sip:x@two.invalid;transport=ws");
            assert_eq!(new.reg_id, Some(1));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(b.len(), 1);
    assert_eq!(b.iter().next().unwrap().flow.as_deref(), Some("ws-2"));
}

#[test]
fn another_reg_id_is_another_flow() {
    let mut b = Bindings::new(RegistrarConfig::default());
    b.apply(T0, &outbound("c1", 1, "sip:x@one.invalid", 1, "ws-1"))
        .unwrap();
    let out = b
        .apply(T0, &outbound("c2", 1, "sip:x@two.invalid", 2, "ws-2"))
        .unwrap();
    assert!(matches!(out.changes.as_slice(), [BindingChange::Added(_)]));
    assert_eq!(b.len(), 2);
}

#[test]
fn replaced_flow_still_obeys_cseq_order() {
    let mut b = Bindings::new(RegistrarConfig::default());
    b.apply(T0, &outbound("c1", 9, "sip:x@one.invalid", 1, "ws-1"))
        .unwrap();
    let err = b
        .apply(T0, &outbound("c1", 9, "sip:x@two.invalid", 1, "ws-2"))
        .unwrap_err();
    assert_eq!(err, RegistrarError::OutOfOrder);
    assert_eq!(b.iter().next().unwrap().flow.as_deref(), Some("ws-1"));
}

#[test]
fn reg_id_without_instance_is_ignored() {
    let mut b = Bindings::new(RegistrarConfig::default());
    let mut r = outbound("c1", 1, "sip:x@one.invalid", 1, "ws-1");
    if let Contacts::List(list) = &mut r.contacts {
        list[0].instance = None;
    }
    b.apply(T0, &r).unwrap();
    assert_eq!(b.iter().next().unwrap().reg_id, None);
    // So a second URI with the same reg-id is a separate binding.
    let mut r2 = outbound("c2", 1, "sip:x@two.invalid", 1, "ws-2");
    if let Contacts::List(list) = &mut r2.contacts {
        list[0].instance = None;
    }
    b.apply(T0, &r2).unwrap();
    assert_eq!(b.len(), 2);
}

#[test]
fn two_outbound_contacts_in_one_register_are_refused() {
    let mut b = Bindings::new(RegistrarConfig::default());
    let mut r = outbound("c1", 1, "sip:x@one.invalid", 1, "ws-1");
    if let Contacts::List(list) = &mut r.contacts {
        let mut second = list[0].clone();
        second.uri = "sip:x@two.invalid".into();
        second.reg_id = Some(2);
        list.push(second);
    }
    let err = b.apply(T0, &r).unwrap_err();
    assert_eq!(err, RegistrarError::MultipleRegIds);
    assert_eq!(err.status(), 400);
}

#[test]
fn removing_by_expires_zero_matches_the_flow_key() {
    let mut b = Bindings::new(RegistrarConfig::default());
    b.apply(T0, &outbound("c1", 1, "sip:x@one.invalid", 1, "ws-1"))
        .unwrap();
    let mut r = outbound("c1", 2, "sip:x@two.invalid", 1, "ws-2");
    r.expires = Some(0);
    let out = b.apply(T0 + 1, &r).unwrap();
    assert!(matches!(
        out.changes.as_slice(),
        [BindingChange::Removed(_)]
    ));
    assert!(b.is_empty());
}
