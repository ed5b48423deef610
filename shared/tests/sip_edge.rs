//! The edge verdict on messages from a browser: policy choices beyond the RFC corpora.

use shared::sip::{edge_verdict, EdgeVerdict, HeaderName, SipError, MAX_MESSAGE_LEN};

const REGISTER: &str = "REGISTER sip:example.com SIP/2.0\r\n\
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKasudf\r\n\
From: sip:alice@example.com;tag=65bnmj.34asd\r\n\
To: sip:alice@example.com\r\n\
Call-ID: aiuy7k9njasd\r\n\
CSeq: 1 REGISTER\r\n\
Max-Forwards: 70\r\n\
Supported: path, outbound, gruu\r\n\
Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;reg-id=1;+sip.instance=\"<urn:uuid:f81-7dec-14a06cf1>\"\r\n\
\r\n";

fn verdict(text: &str) -> EdgeVerdict {
    edge_verdict(text.as_bytes())
}

fn status(v: &EdgeVerdict) -> Option<u16> {
    match v {
        EdgeVerdict::Reject { status, .. } => Some(*status),
        _ => None,
    }
}

#[test]
fn a_browser_register_is_accepted() {
    assert!(matches!(verdict(REGISTER), EdgeVerdict::Accept(_)));
}

#[test]
fn oversized_messages_get_513() {
    let mut big = REGISTER
        .replace("\r\n\r\n", "\r\nContent-Type: text/plain\r\n\r\n")
        .into_bytes();
    big.resize(MAX_MESSAGE_LEN + 1, b'x');
    assert_eq!(status(&edge_verdict(&big)), Some(513));
}

#[test]
fn supported_option_tags_pass_and_unknown_ones_get_420_with_unsupported() {
    let ok = REGISTER.replace(
        "Supported:",
        "Require: outbound\r\nProxy-Require: path\r\nSupported:",
    );
    assert!(matches!(verdict(&ok), EdgeVerdict::Accept(_)));
    let bad = REGISTER.replace("Supported:", "Require: outbound, sec-agree\r\nSupported:");
    let v = verdict(&bad);
    assert_eq!(status(&v), Some(420));
    let EdgeVerdict::Reject { error, .. } = &v else {
        panic!()
    };
    assert_eq!(
        error,
        &SipError::BadExtension {
            tags: vec!["sec-agree".into()]
        }
    );
    let resp = v.response("t1").expect("a response can be built");
    assert_eq!(
        resp.headers.get(&HeaderName::Unsupported),
        Some("sec-agree")
    );
    assert_eq!(resp.to().unwrap().tag(), Some("t1"));
}

#[test]
fn max_forwards_zero_gets_483_on_any_request() {
    let v = verdict(&REGISTER.replace("Max-Forwards: 70", "Max-Forwards: 0"));
    assert_eq!(status(&v), Some(483));
}

#[test]
fn missing_max_forwards_is_accepted() {
    assert!(matches!(
        verdict(&REGISTER.replace("Max-Forwards: 70\r\n", "")),
        EdgeVerdict::Accept(_)
    ));
}

#[test]
fn unknown_method_gets_501_with_allow() {
    let v = verdict(&REGISTER.replace("REGISTER", "FROBNICATE"));
    assert_eq!(status(&v), Some(501));
    let resp = v.response("t").unwrap();
    assert!(resp
        .headers
        .get(&HeaderName::Allow)
        .unwrap()
        .contains("INVITE"));
}

#[test]
fn lowercase_method_is_unknown_because_methods_are_case_sensitive() {
    let v = verdict(
        &REGISTER
            .replace("REGISTER sip", "register sip")
            .replace("1 REGISTER", "1 register"),
    );
    assert_eq!(status(&v), Some(501));
}

#[test]
fn cseq_method_mismatch_gets_400() {
    let v = verdict(&REGISTER.replace("CSeq: 1 REGISTER", "CSeq: 1 INVITE"));
    assert_eq!(status(&v), Some(400));
}

#[test]
fn tel_request_uri_gets_416() {
    let v = verdict(&REGISTER.replace("REGISTER sip:example.com", "REGISTER tel:+15551234"));
    assert_eq!(status(&v), Some(416));
}

#[test]
fn other_sip_version_gets_505() {
    let v = verdict(&REGISTER.replace("sip:example.com SIP/2.0", "sip:example.com SIP/3.0"));
    assert_eq!(status(&v), Some(505));
}

#[test]
fn contact_star_needs_expires_zero() {
    let star = REGISTER.replace(
        "Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws>;reg-id=1;+sip.instance=\"<urn:uuid:f81-7dec-14a06cf1>\"",
        "Contact: *",
    );
    assert_eq!(status(&verdict(&star)), Some(400));
    assert!(matches!(
        verdict(&star.replace("Contact: *", "Contact: *\r\nExpires: 0")),
        EdgeVerdict::Accept(_)
    ));
}

const INVITE_HEAD: &str = "INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks\r\n\
From: sip:alice@example.com;tag=asdyka899\r\n\
To: sip:bob@example.com\r\n\
Call-ID: asidkj3ss\r\n\
CSeq: 1 INVITE\r\n\
Max-Forwards: 70\r\n\
Contact: <sip:alice@df7jal23ls0d.invalid;transport=ws;ob>\r\n";

#[test]
fn invite_with_non_sdp_body_gets_415_with_accept() {
    let v = verdict(&format!(
        "{INVITE_HEAD}Content-Type: text/plain\r\n\r\nhello"
    ));
    assert_eq!(status(&v), Some(415));
    assert_eq!(
        v.response("t").unwrap().headers.get(&HeaderName::Accept),
        Some("application/sdp")
    );
}

#[test]
fn message_with_text_body_is_not_a_media_type_problem() {
    let text = format!("{INVITE_HEAD}Content-Type: text/plain\r\n\r\nhello")
        .replace("INVITE sip", "MESSAGE sip")
        .replace("1 INVITE", "1 MESSAGE");
    assert!(matches!(verdict(&text), EdgeVerdict::Accept(_)));
}

#[test]
fn invite_accepting_anything_or_sdp_passes_406_check() {
    for accept in [
        "application/sdp",
        "application/*",
        "*/*",
        "text/plain, application/SDP",
    ] {
        let t = format!(
            "{INVITE_HEAD}Accept: {accept}\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n"
        );
        assert!(matches!(verdict(&t), EdgeVerdict::Accept(_)), "{accept}");
    }
    let t = format!("{INVITE_HEAD}Accept: text/html\r\n\r\n");
    assert_eq!(status(&verdict(&t)), Some(406));
}

#[test]
fn a_bad_ack_is_dropped_not_answered() {
    let ack = "ACK sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/WSS h.invalid;branch=z9hG4bK1\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@example.com>;tag=2\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\
Max-Forwards: 0\r\n\r\n";
    assert!(matches!(verdict(ack), EdgeVerdict::Drop { .. }));
    assert!(matches!(
        edge_verdict(b"ACK garbage"),
        EdgeVerdict::Drop { .. }
    ));
}

#[test]
fn malformed_responses_are_dropped() {
    for r in [
        "SIP/2.0 99 Too Low\r\n\r\n",
        "SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n",
        "SIP/2.0 200 OK\r\nFrom: <sip:a@b.example>;tag=1\r\n\r\n",
        "SIP/2.0 200 OK\r\n",
    ] {
        assert!(matches!(verdict(r), EdgeVerdict::Drop { .. }), "{r:?}");
    }
}

#[test]
fn keepalive_crlf_is_dropped() {
    assert!(matches!(
        edge_verdict(b"\r\n\r\n"),
        EdgeVerdict::Drop {
            error: SipError::Empty,
            ..
        }
    ));
    assert!(matches!(edge_verdict(b""), EdgeVerdict::Drop { .. }));
}

#[test]
fn a_request_too_broken_for_a_response_gets_no_response_message() {
    let v = edge_verdict(b"INVITE  sip:a@b.example SIP/2.0\r\n\r\n");
    assert_eq!(status(&v), Some(400));
    assert!(v.response("t").is_none());
    let v = verdict(&REGISTER.replace("Call-ID: aiuy7k9njasd\r\n", ""));
    assert_eq!(status(&v), Some(400));
    assert!(
        v.response("t").is_none(),
        "no Call-ID: nothing to match a response to"
    );
}

#[test]
fn every_error_has_a_status_and_a_one_line_reason() {
    let errors = [
        SipError::Empty,
        SipError::TooLarge { len: 1 },
        SipError::NotUtf8,
        SipError::MissingHeaderEnd,
        SipError::BadLineEnding,
        SipError::BadRequestLine,
        SipError::BadStatusLine,
        SipError::VersionNotSupported,
        SipError::BadRequestUri,
        SipError::BadHeaderLine,
        SipError::BadHeader { name: "Via" },
        SipError::MissingHeader { name: "Via" },
        SipError::DuplicateHeader { name: "Via" },
        SipError::ContentLengthTooLarge {
            declared: 2,
            actual: 1,
        },
        SipError::CseqMethodMismatch,
        SipError::EmptyBranch,
        SipError::AorNotSip,
        SipError::UnsupportedUriScheme,
        SipError::BadExtension {
            tags: vec!["x".into()],
        },
        SipError::TooManyHops,
        SipError::UnknownMethod,
        SipError::UnsupportedMediaType,
        SipError::NotAcceptable,
        SipError::BroadcastVia,
        SipError::WrongKind,
    ];
    for e in errors {
        assert!((400..=599).contains(&e.status()), "{e:?}");
        let r = e.reason();
        assert!(!r.is_empty() && !r.contains(['\r', '\n']), "{e:?}");
    }
}

#[test]
fn a_multibyte_character_in_the_version_is_a_bad_request_line_not_a_panic() {
    // Found by cargo-fuzz (shared/fuzz, target sip_parse): the version check sliced a str
    // inside a multi-byte character.
    let v = edge_verdict(
        "OPTIONS sip:a@b.example SIP\u{5927}\u{505c}\r\nContent-Length: 0\r\n\r\n".as_bytes(),
    );
    assert_eq!(status(&v), Some(400));
    let v = edge_verdict("SIP/\u{5927} 200 OK\r\n\r\n".as_bytes());
    assert!(matches!(v, EdgeVerdict::Drop { .. }));
}
