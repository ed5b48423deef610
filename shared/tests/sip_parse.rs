//! Parsing SIP messages and typed headers: one behaviour per test.

use std::net::{IpAddr, Ipv6Addr};

use shared::sip::{Contacts, HeaderName, Host, Method, SipError, SipMessage, StartLine, Uri};

fn data(file: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sip")
        .join(file);
    std::fs::read(path).expect("corpus file")
}

fn msg(text: &str) -> SipMessage {
    SipMessage::parse(text.as_bytes()).expect("parses")
}

const OPTIONS: &str = "OPTIONS sip:alice@example.com SIP/2.0\r\n\
Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKabc;rport\r\n\
From: \"Bob\" <sip:bob@example.com>;tag=b1\r\n\
To: <sip:alice@example.com>\r\n\
Call-ID: c1@example.com\r\n\
CSeq: 7 OPTIONS\r\n\
Max-Forwards: 70\r\n\r\n";

#[test]
fn request_line_gives_method_and_request_uri() {
    let m = msg(OPTIONS);
    assert_eq!(m.method(), Some(&Method::OPTIONS));
    let Some(Uri::Sip(uri)) = m.request_uri() else {
        panic!("sip uri")
    };
    assert_eq!(uri.user.as_deref(), Some("alice"));
    assert_eq!(uri.host, Host::Domain("example.com".into()));
    assert!(m.is_request());
}

#[test]
fn status_line_gives_code_and_reason_even_when_empty() {
    let m = SipMessage::parse(&data("rfc4475/noreason.dat")).expect("parses");
    assert_eq!(
        m.start_line,
        StartLine::Response {
            status: 100,
            reason: String::new()
        }
    );
}

#[test]
fn compact_header_forms_are_the_long_headers() {
    let m = msg(
        "INVITE sip:a@b.example SIP/2.0\r\nv: SIP/2.0/WS h.invalid;branch=z9hG4bK1\r\n\
f: <sip:x@y.example>;tag=1\r\nt: sip:a@b.example\r\ni: id1\r\nCSeq: 1 INVITE\r\n\
m: <sip:x@h.invalid;transport=ws>\r\nc: application/sdp\r\nk: outbound, path\r\nl: 0\r\n\r\n",
    );
    assert_eq!(m.vias().unwrap().len(), 1);
    assert_eq!(m.from().unwrap().tag(), Some("1"));
    assert_eq!(m.call_id().unwrap(), "id1");
    assert!(m.content_type().unwrap().unwrap().is("application", "sdp"));
    assert_eq!(m.supported().unwrap(), vec!["outbound", "path"]);
    assert_eq!(m.content_length().unwrap(), Some(0));
    assert!(matches!(m.contacts().unwrap(), Contacts::List(c) if c.len() == 1));
}

#[test]
fn header_names_match_case_insensitively() {
    let m = msg(&OPTIONS
        .replace("Call-ID", "cAll-iD")
        .replace("CSeq", "CSEQ"));
    assert_eq!(m.call_id().unwrap(), "c1@example.com");
    assert_eq!(m.cseq().unwrap().seq, 7);
    assert_eq!(HeaderName::parse("MAX-forwards"), HeaderName::MaxForwards);
    assert_eq!(HeaderName::parse("X-Foo"), HeaderName::parse("x-foo"));
}

#[test]
fn folded_headers_unfold_to_single_spaces() {
    let m = SipMessage::parse(&data("rfc4475/wsinv.dat")).expect("parses");
    let to = m.to().unwrap();
    assert_eq!(to.tag(), Some("1918181833n"));
    assert_eq!(m.cseq().unwrap().seq, 9);
    assert_eq!(m.cseq().unwrap().method, Method::INVITE);
    assert_eq!(m.max_forwards().unwrap(), Some(68));
    let from = m.from().unwrap();
    assert_eq!(from.display_name.as_deref(), Some("J Rosenberg \\\""));
    assert_eq!(from.tag(), Some("98asjd8"));
    assert_eq!(
        m.headers.get(&HeaderName::parse("NewFangledHeader")),
        Some("newfangled value continued newfangled value")
    );
}

#[test]
fn vias_across_repeated_and_comma_separated_headers_keep_order() {
    let m = SipMessage::parse(&data("rfc4475/wsinv.dat")).expect("parses");
    let vias = m.vias().unwrap();
    let branches: Vec<_> = vias.iter().map(|v| v.branch().unwrap()).collect();
    assert_eq!(branches, ["390skdjuw", "z9hG4bK9ikj8", "z9hG4bK30239"]);
    assert_eq!(vias[1].transport, "TCP");
    assert_eq!(vias[1].host, Host::Domain("spindle.example.com".into()));
}

#[test]
fn via_params_received_rport_and_ipv6_sent_by_are_typed() {
    let m = msg(&OPTIONS.replace(
        "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKabc;rport",
        "Via: SIP/2.0/UDP [2001:db8::9:1]:5070;branch=z9hG4bKas3;received=2001:db8::9:255;rport=5071",
    ));
    let via = m.top_via().unwrap();
    assert_eq!(
        via.host,
        Host::Ipv6("2001:db8::9:1".parse::<Ipv6Addr>().unwrap())
    );
    assert_eq!(via.port, Some(5070));
    assert_eq!(
        via.received_ip(),
        Some("2001:db8::9:255".parse::<IpAddr>().unwrap())
    );
    assert_eq!(via.rport(), Some(Some(5071)));
    let plain = msg(OPTIONS).top_via().unwrap();
    assert_eq!(plain.rport(), Some(None));
    assert_eq!(plain.transport, "WSS");
}

#[test]
fn bracketed_received_ipv6_is_understood() {
    let m = msg(&OPTIONS.replace(";rport", ";received=[2001:db8::9:255]"));
    assert_eq!(
        m.top_via().unwrap().received_ip(),
        Some("2001:db8::9:255".parse::<IpAddr>().unwrap())
    );
}

#[test]
fn sip_uri_keeps_escapes_params_and_headers() {
    let m = SipMessage::parse(&data("rfc4475/esc01.dat")).expect("parses");
    let Some(Uri::Sip(ruri)) = m.request_uri() else {
        panic!()
    };
    assert_eq!(ruri.user.as_deref(), Some("sips%3Auser%40example.com"));
    assert_eq!(ruri.user_unescaped().unwrap(), b"sips:user@example.com");
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    let Uri::Sip(cu) = &c[0].uri else { panic!() };
    assert_eq!(cu.params.get("n%61me"), Some(Some("v%61lue%25%34%31")));
    assert_eq!(
        cu.to_string(),
        "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31"
    );

    let m = SipMessage::parse(&data("rfc4475/regescrt.dat")).expect("parses");
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    let Uri::Sip(cu) = &c[0].uri else { panic!() };
    assert_eq!(
        cu.headers,
        vec![("Route".to_owned(), "%3Csip:sip.example.com%3E".to_owned())]
    );
}

#[test]
fn escaped_nul_in_user_is_not_truncated() {
    let m = SipMessage::parse(&data("rfc4475/escnull.dat")).expect("parses");
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    assert_eq!(c.len(), 2);
    let users: Vec<Vec<u8>> = c
        .iter()
        .map(|n| n.uri.as_sip().unwrap().user_unescaped().unwrap())
        .collect();
    assert_eq!(users, vec![vec![0u8], vec![0u8, 0u8]]);
}

#[test]
fn unusual_but_legal_characters_parse() {
    let m = SipMessage::parse(&data("rfc4475/intmeth.dat")).expect("parses");
    assert_eq!(
        m.method(),
        Some(&Method::Other(
            "!interesting-Method0123456789_*+`.%indeed'~".into()
        ))
    );
    let Some(Uri::Sip(u)) = m.request_uri() else {
        panic!()
    };
    assert_eq!(
        u.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        u.password.as_deref(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(
        m.to().unwrap().display_name.as_deref(),
        Some("BEL:\x07 NUL:\0 DEL:\x7f")
    );
    assert_eq!(
        m.from().unwrap().display_name.as_deref(),
        Some("token1~` token2'+_ token3*%!.-")
    );
    assert_eq!(m.from().unwrap().tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        m.call_id().unwrap(),
        "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    );
}

#[test]
fn other_uri_schemes_are_kept_as_text() {
    let m = SipMessage::parse(&data("rfc4475/unksm2.dat")).expect("parses");
    let Uri::Other(to) = m.to().unwrap().uri else {
        panic!()
    };
    assert_eq!(
        (to.scheme.as_str(), to.rest.as_str()),
        ("isbn", "2983792873")
    );
    let tel = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap();
    assert!(!tel.is_sip());
    assert_eq!(
        tel.to_string(),
        "tel:+1-201-555-0123;phone-context=example.com"
    );
}

#[test]
fn contact_star_multiple_contacts_and_outbound_params() {
    let m = msg(&OPTIONS.replace("OPTIONS", "REGISTER").replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nContact: *\r\nExpires: 0\r\n",
    ));
    assert_eq!(m.contacts().unwrap(), Contacts::Any);
    assert_eq!(m.expires().unwrap(), Some(0));

    let m = SipMessage::parse(&data("rfc7118/8.1-F3-REGISTER.sip")).expect("parses");
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    assert_eq!(c[0].reg_id(), Some(1));
    assert_eq!(
        c[0].sip_instance().as_deref(),
        Some("<urn:uuid:f81-7dec-14a06cf1>")
    );
    assert_eq!(c[0].uri.as_sip().unwrap().transport(), Some("ws"));

    let m = msg(&OPTIONS.replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nContact: <sip:a@h1.invalid>;expires=60;q=0.5, \"X\" <sip:b@h2.invalid>\r\n",
    ));
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    assert_eq!(c.len(), 2);
    assert_eq!(c[0].expires(), Some(60));
    assert_eq!(c[1].display_name.as_deref(), Some("X"));
}

#[test]
fn contact_header_param_and_uri_param_are_told_apart() {
    let m = SipMessage::parse(&data("rfc4475/cparam01.dat")).expect("parses");
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    assert!(c[0].params.contains("unknownparam"));
    assert!(c[0].uri.as_sip().unwrap().params.is_empty());
    let m = SipMessage::parse(&data("rfc4475/cparam02.dat")).expect("parses");
    let Contacts::List(c) = m.contacts().unwrap() else {
        panic!()
    };
    assert!(c[0].params.is_empty());
    assert!(c[0].uri.as_sip().unwrap().params.contains("unknownparam"));
}

#[test]
fn route_and_record_route_lists_parse_in_order() {
    let m = SipMessage::parse(&data("rfc7118/8.2-F3-INVITE-proxy-to-bob.sip")).expect("parses");
    let rr = m.record_routes().unwrap();
    assert_eq!(rr.len(), 2);
    assert_eq!(rr[0].uri.as_sip().unwrap().transport(), Some("udp"));
    assert!(rr[1].uri.as_sip().unwrap().params.contains("lr"));
    let m = SipMessage::parse(&data("rfc7118/8.2-F6-ACK-alice-to-proxy.sip")).expect("parses");
    assert_eq!(m.routes().unwrap().len(), 2, "trailing comma tolerated");
}

#[test]
fn digest_credentials_and_challenges_expose_params() {
    let m = msg(&OPTIONS.replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nAuthorization: Digest username=\"alice\", realm=\"example.com\", \
nonce=\"ea9c8e88df84f1cec4341ae6cbe5a359\", uri=\"sip:example.com\", qop=auth, nc=00000001, \
cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5\r\n\
WWW-Authenticate: Digest realm=\"a.example\", nonce=\"n1\", algorithm=SHA-256, \
Digest realm=\"a.example\", nonce=\"n1\", algorithm=MD5\r\n",
    ));
    let creds = m.authorization().unwrap();
    assert_eq!(creds.len(), 1);
    assert!(creds[0].is_digest());
    assert_eq!(creds[0].param("username").as_deref(), Some("alice"));
    assert_eq!(creds[0].param("qop").as_deref(), Some("auth"));
    assert_eq!(creds[0].param("nc").as_deref(), Some("00000001"));
    let ch = m.www_authenticate().unwrap();
    assert_eq!(ch.len(), 2, "two challenges in one header");
    assert_eq!(ch[1].param("algorithm").as_deref(), Some("MD5"));
    let shown = format!("{:?} {:?}", creds[0], m.headers);
    assert!(
        !shown.contains("6629fae4"),
        "Debug must not show credentials: {shown}"
    );
}

#[test]
fn unknown_auth_scheme_parses() {
    let m = SipMessage::parse(&data("rfc4475/regaut01.dat")).expect("parses");
    let a = m.authorization().unwrap();
    assert_eq!(a[0].scheme, "NoOneKnowsThisScheme");
    assert_eq!(a[0].param("opaque-data").as_deref(), Some("here"));
}

#[test]
fn cseq_above_u32_max_is_rejected() {
    let m = SipMessage::parse(&data("rfc4475/scalarlg.dat")).expect("framing is fine");
    assert_eq!(m.cseq(), Err(SipError::BadHeader { name: "CSeq" }));
    let m = msg(&OPTIONS.replace("CSeq: 7", "CSeq: 4294967295"));
    assert_eq!(m.cseq().unwrap().seq, u32::MAX);
    let m = msg(&OPTIONS.replace("CSeq: 7", "CSeq: 4294967296"));
    assert!(m.cseq().is_err());
}

#[test]
fn max_forwards_above_255_is_invalid() {
    let m = msg(&OPTIONS.replace("Max-Forwards: 70", "Max-Forwards: 256"));
    assert!(m.max_forwards().is_err());
}

#[test]
fn repeated_single_value_headers_are_errors() {
    let m = SipMessage::parse(&data("rfc4475/multi01.dat")).expect("framing is fine");
    assert_eq!(
        m.call_id(),
        Err(SipError::DuplicateHeader { name: "Call-ID" })
    );
    assert_eq!(m.cseq(), Err(SipError::DuplicateHeader { name: "CSeq" }));
}

#[test]
fn missing_content_length_takes_the_whole_rest_as_body() {
    let m = msg("MESSAGE sip:a@b.example SIP/2.0\r\nContent-Type: text/plain\r\n\r\nhello\r\n");
    assert_eq!(m.body(), b"hello\r\n");
    assert_eq!(m.content_length().unwrap(), Some(7));
}

#[test]
fn bytes_beyond_content_length_are_ignored() {
    let m = SipMessage::parse(&data("rfc4475/dblreq.dat")).expect("parses");
    assert_eq!(m.body(), b"");
    assert_eq!(m.method(), Some(&Method::REGISTER));
}

#[test]
fn framing_errors_are_errors_not_incomplete() {
    assert_eq!(SipMessage::parse(b""), Err(SipError::Empty));
    assert_eq!(SipMessage::parse(b"\r\n\r\n"), Err(SipError::Empty));
    assert_eq!(
        SipMessage::parse(b"OPTIONS sip:a@b.example SIP/2.0\r\nVia: x\r\n"),
        Err(SipError::MissingHeaderEnd)
    );
    assert_eq!(
        SipMessage::parse(b"OPTIONS sip:a@b.example SIP/2.0\nVia: x\n\n"),
        Err(SipError::MissingHeaderEnd)
    );
    assert_eq!(
        SipMessage::parse(b"OPTIONS sip:a@b.example SIP/2.0\r\nVia: x\ny: z\r\n\r\n"),
        Err(SipError::BadLineEnding)
    );
    assert_eq!(
        SipMessage::parse(b"OPTIONS sip:a@b.example SIP/2.0\r\nContent-Length: 10\r\n\r\nabc"),
        Err(SipError::ContentLengthTooLarge {
            declared: 10,
            actual: 3
        })
    );
}

#[test]
fn leading_crlfs_before_the_start_line_are_skipped() {
    let m = SipMessage::parse(format!("\r\n\r\n{OPTIONS}").as_bytes()).expect("parses");
    assert_eq!(m.method(), Some(&Method::OPTIONS));
}

#[test]
fn other_sip_versions_are_version_not_supported() {
    let e = SipMessage::parse(
        OPTIONS
            .replace("SIP/2.0\r\nVia", "SIP/7.0\r\nVia")
            .as_bytes(),
    );
    assert_eq!(e, Err(SipError::VersionNotSupported));
    let e = SipMessage::parse(
        OPTIONS
            .replace("SIP/2.0\r\nVia", "HTTP/1.1\r\nVia")
            .as_bytes(),
    );
    assert_eq!(e, Err(SipError::BadRequestLine));
}

#[test]
fn non_utf8_header_section_is_rejected_but_binary_body_is_fine() {
    let mut bad = OPTIONS.as_bytes().to_vec();
    bad.splice(30..30, [0xff, 0xfe]);
    assert_eq!(SipMessage::parse(&bad), Err(SipError::NotUtf8));
    let mut ok = OPTIONS
        .replace(
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\r\nContent-Length: 3\r\n",
        )
        .into_bytes();
    ok.extend_from_slice(&[0xff, 0x00, 0xfe]);
    assert_eq!(SipMessage::parse(&ok).unwrap().body(), [0xff, 0x00, 0xfe]);
}

#[test]
fn spaces_inside_angle_brackets_make_the_header_invalid() {
    let m = SipMessage::parse(&data("rfc4475/badaspec.dat")).expect("framing is fine");
    assert_eq!(m.to(), Err(SipError::BadHeader { name: "To" }));
}

#[test]
fn unquoted_display_name_with_comma_is_invalid() {
    let mut bytes = data("rfc4475/baddn.dat");
    bytes.extend_from_slice(b"\r\n");
    let m = SipMessage::parse(&bytes).expect("framing is fine with the empty line");
    assert_eq!(m.from(), Err(SipError::BadHeader { name: "From" }));
}

#[test]
fn accept_lists_media_ranges() {
    let m = SipMessage::parse(&data("rfc4475/sdp01.dat")).expect("parses");
    let acc = m.accept().unwrap().unwrap();
    assert!(acc[0].is("text", "nobodyKnowsThis"));
}
