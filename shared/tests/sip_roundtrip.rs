//! parse -> serialize -> parse gives an equal message, for every corpus message that parses and
//! after each kind of edit the SIP core makes.

use std::path::Path;

use shared::sip::{HeaderName, Host, NameAddr, SipMessage, SipUri, Uri, Via};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sip");
    let mut out = Vec::new();
    for sub in ["rfc4475", "rfc7118"] {
        for e in std::fs::read_dir(dir.join(sub)).expect("data dir") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "md") {
                continue;
            }
            out.push((p.display().to_string(), std::fs::read(&p).expect("read")));
        }
    }
    out.sort();
    out
}

fn reparse(m: &SipMessage) -> SipMessage {
    SipMessage::parse(&m.to_bytes()).expect("serialized message parses")
}

#[test]
fn every_parsable_corpus_message_round_trips() {
    let mut parsed = 0;
    for (name, bytes) in corpus() {
        let Ok(m) = SipMessage::parse(&bytes) else {
            continue;
        };
        parsed += 1;
        let again = reparse(&m);
        assert_eq!(again, m, "{name}");
        assert_eq!(
            again.to_bytes(),
            m.to_bytes(),
            "{name}: serialization is stable"
        );
        // Typed views agree too.
        assert_eq!(again.vias(), m.vias(), "{name}");
        assert_eq!(again.from(), m.from(), "{name}");
        assert_eq!(again.contacts(), m.contacts(), "{name}");
    }
    assert!(parsed >= 40, "only {parsed} corpus messages parsed");
}

#[test]
fn serialization_writes_the_true_content_length_once() {
    let m = SipMessage::parse(
        b"MESSAGE sip:a@b.example SIP/2.0\r\nl: 005\r\nContent-Type: text/plain\r\n\r\nhello",
    )
    .unwrap();
    let text = String::from_utf8(m.to_bytes()).unwrap();
    assert_eq!(
        text,
        "MESSAGE sip:a@b.example SIP/2.0\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
    );
}

fn invite() -> SipMessage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sip/rfc7118/8.2-F1-INVITE-alice-to-proxy.sip");
    SipMessage::parse(&std::fs::read(path).unwrap()).unwrap()
}

fn edge_uri() -> Uri {
    let mut u = SipUri::new(Host::Domain("edge.example.com".into()));
    u.params.set("transport", Some("tcp"));
    u.params.set("lr", None);
    Uri::Sip(u)
}

#[test]
fn adding_a_via_puts_it_on_top_and_round_trips() {
    let mut m = invite();
    m.push_via(&Via::new(
        "TCP",
        Host::Domain("edge.example.com".into()),
        Some(5060),
        "z9hG4bKedge1",
    ));
    let vias = m.vias().unwrap();
    assert_eq!(vias.len(), 2);
    assert_eq!(vias[0].branch(), Some("z9hG4bKedge1"));
    assert_eq!(vias[1].branch(), Some("z9hG4bK56sdasks"));
    assert_eq!(reparse(&m), m);
}

#[test]
fn removing_the_top_via_keeps_the_rest_of_a_comma_list() {
    let mut m = SipMessage::parse(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP edge.example.com;branch=z9hG4bKe, SIP/2.0/WSS h.invalid;branch=z9hG4bKb\r\n\
From: <sip:a@x.example>;tag=1\r\nTo: <sip:b@x.example>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
    )
    .unwrap();
    let top = m.remove_top_via().unwrap();
    assert_eq!(top.branch(), Some("z9hG4bKe"));
    assert_eq!(
        m.headers.get(&HeaderName::Via),
        Some("SIP/2.0/WSS h.invalid;branch=z9hG4bKb")
    );
    let last = m.remove_top_via().unwrap();
    assert_eq!(last.branch(), Some("z9hG4bKb"));
    assert_eq!(m.headers.count(&HeaderName::Via), 0);
    assert!(m.remove_top_via().is_err());
    assert_eq!(reparse(&m), m);
}

#[test]
fn changing_the_request_uri_round_trips() {
    let mut m = invite();
    let target = Uri::parse("sip:bob@203.0.113.22:5060;transport=tcp").unwrap();
    m.set_request_uri(target.clone()).unwrap();
    assert_eq!(m.request_uri(), Some(&target));
    assert!(m
        .to_bytes()
        .starts_with(b"INVITE sip:bob@203.0.113.22:5060;transport=tcp SIP/2.0\r\n"));
    assert_eq!(reparse(&m), m);
}

#[test]
fn record_route_can_be_pushed_and_replaced() {
    let mut m = invite();
    m.push_record_route(&NameAddr::new(edge_uri()));
    let rr = m.record_routes().unwrap();
    assert_eq!(rr.len(), 1);
    assert_eq!(rr[0].uri, edge_uri());
    let second =
        NameAddr::new(Uri::parse("sip:h7kjh12s@proxy.example.com:443;transport=ws;lr").unwrap());
    m.set_record_route(&[NameAddr::new(edge_uri()), second.clone()]);
    assert_eq!(m.headers.count(&HeaderName::RecordRoute), 1);
    assert_eq!(m.record_routes().unwrap()[1], second);
    assert_eq!(reparse(&m), m);
    m.set_record_route(&[]);
    assert_eq!(m.headers.count(&HeaderName::RecordRoute), 0);
}

#[test]
fn loose_route_pops_the_first_route() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sip/rfc7118/8.2-F6-ACK-alice-to-proxy.sip");
    let mut m = SipMessage::parse(&std::fs::read(path).unwrap()).unwrap();
    let first = m.remove_top_route().unwrap();
    assert_eq!(first.uri.as_sip().unwrap().transport(), Some("ws"));
    assert_eq!(m.routes().unwrap().len(), 1);
    assert_eq!(reparse(&m), m);
}

#[test]
fn max_forwards_decrements_and_stops_at_zero() {
    let mut m = invite();
    assert_eq!(m.decrement_max_forwards(), Ok(69));
    assert_eq!(m.max_forwards(), Ok(Some(69)));
    assert_eq!(reparse(&m), m);
    m.headers.set(HeaderName::MaxForwards, "0");
    assert_eq!(
        m.decrement_max_forwards(),
        Err(shared::sip::SipError::TooManyHops)
    );
    m.headers.remove_all(&HeaderName::MaxForwards);
    assert_eq!(m.decrement_max_forwards(), Ok(70), "added when missing");
}

#[test]
fn replacing_the_body_updates_content_length_and_type() {
    let mut m = invite();
    let sdp = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n".to_vec();
    m.set_body(Some("application/sdp"), sdp.clone());
    assert_eq!(m.body(), &sdp[..]);
    assert_eq!(m.content_length(), Ok(Some(sdp.len() as u32)));
    let again = reparse(&m);
    assert_eq!(again, m);
    assert_eq!(again.body(), &sdp[..]);
    m.set_body(None, Vec::new());
    assert_eq!(m.content_type(), Ok(None));
    assert_eq!(reparse(&m).content_length(), Ok(Some(0)));
}

#[test]
fn response_copies_dialog_headers_and_adds_a_to_tag() {
    let req = invite();
    let resp = req.response_to(180, "Ringing", Some("edge-tag")).unwrap();
    assert_eq!(resp.status(), Some(180));
    assert_eq!(resp.vias(), req.vias());
    assert_eq!(resp.from(), req.from());
    assert_eq!(resp.call_id(), req.call_id());
    assert_eq!(resp.cseq(), req.cseq());
    assert_eq!(resp.to().unwrap().tag(), Some("edge-tag"));
    assert_eq!(resp.headers.count(&HeaderName::Contact), 0);
    assert_eq!(reparse(&resp), resp);
    let trying = req.response_to(100, "Trying", Some("edge-tag")).unwrap();
    assert_eq!(trying.to().unwrap().tag(), None, "no tag on 100");
    assert!(
        resp.response_to(200, "OK", None).is_err(),
        "no response to a response"
    );
}

#[test]
fn an_existing_to_tag_is_kept() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sip/rfc7118/8.2-F8-BYE-bob-to-proxy.sip");
    let req = SipMessage::parse(&std::fs::read(path).unwrap()).unwrap();
    let before = req.to().unwrap().tag().map(str::to_owned);
    let resp = req.response_to(200, "OK", Some("other")).unwrap();
    assert_eq!(resp.to().unwrap().tag().map(str::to_owned), before);
}

#[test]
fn crlf_put_into_fields_cannot_inject_header_lines() {
    let mut m = invite();
    m.headers.push(shared::sip::Header {
        name: HeaderName::Other("X-Evil".into()),
        value: "a\r\nInjected: yes".into(),
    });
    let again = SipMessage::parse(&m.to_bytes()).expect("still one well-formed message");
    assert_eq!(again.headers.get(&HeaderName::parse("Injected")), None);
    assert_eq!(
        again.headers.get(&HeaderName::parse("X-Evil")),
        Some("a  Injected: yes")
    );

    if let shared::sip::StartLine::Request {
        uri: Uri::Sip(u), ..
    } = &mut m.start_line
    {
        u.user = Some("bob\r\nInjected: also".into());
    }
    let text = String::from_utf8(m.to_bytes()).unwrap();
    assert!(!text.contains("\r\nInjected"), "{text}");
}
