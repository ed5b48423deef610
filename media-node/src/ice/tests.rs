//! RFC 5769 vectors, Chrome-shaped checks, hostile input (bad credentials, flipped bits,
//! truncation, garbage), nomination, consent, restart, and interop with str0m's STUN.

use super::*;
use crate::test_util::{hex, Noise};

use str0m::ice::{StunMessage, StunMessageBuilder, TransId};

// ---- RFC 5769 ---------------------------------------------------------------------------

const RFC5769_PWD: &str = "VOkJxbRl1RmTxUk/WvJxBt";
const RFC5769_TRANSACTION_ID: [u8; 12] = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];

/// RFC 5769 §2.1: SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME "evtj:h6vY" (padded with
/// spaces), MESSAGE-INTEGRITY, FINGERPRINT.
fn rfc5769_request() -> Vec<u8> {
    hex("00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
         00 24 00 04 6e 00 01 ff
         80 29 00 08 93 2f f9 b1 51 26 3b 36
         00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
         00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
         80 28 00 04 e5 7a 3b cf")
}

/// RFC 5769 §2.2: 192.0.2.1:32853.
fn rfc5769_ipv4_response() -> Vec<u8> {
    hex("01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
         00 20 00 08 00 01 a1 47 e1 12 a6 43
         00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
         80 28 00 04 c0 7d 4c 96")
}

/// RFC 5769 §2.3: [2001:db8:1234:5678:11:2233:4455:6677]:32853.
fn rfc5769_ipv6_response() -> Vec<u8> {
    hex("01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
         80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
         00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
         00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
         80 28 00 04 c8 fb 0b 4c")
}

fn rfc5769_ipv4_address() -> SocketAddr {
    "192.0.2.1:32853".parse().unwrap()
}

fn rfc5769_ipv6_address() -> SocketAddr {
    "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .unwrap()
}

#[test]
fn crc32_matches_the_standard_check_value() {
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    assert_eq!(crc32(b""), 0);
}

#[test]
fn rfc5769_sample_request_integrity_and_fingerprint_verify() {
    let request = rfc5769_request();
    let header = Header::parse(&request).unwrap();
    assert_eq!(header.msg_type, BINDING_REQUEST);
    assert_eq!(header.transaction_id, RFC5769_TRANSACTION_ID);
    let attrs = Attributes::walk(&request).unwrap();
    assert!(attrs.fingerprint, "FINGERPRINT present and verified");
    assert_eq!(attrs.username, Some(&b"evtj:h6vY"[..]));
    assert_eq!(attrs.priority, Some(0x6e00_01ff));
    assert!(attrs.ice_controlled);
    assert!(
        attrs.unknown.is_empty(),
        "SOFTWARE is comprehension-optional"
    );
    let integrity_at = attrs.integrity_at.unwrap();
    assert!(integrity_verifies(
        &request,
        integrity_at,
        &integrity_key(RFC5769_PWD)
    ));
    assert!(!integrity_verifies(
        &request,
        integrity_at,
        &integrity_key("VOkJxbRl1RmTxUk/WvJxBu")
    ));
    let mut broken = request.clone();
    *broken.last_mut().unwrap() ^= 1;
    assert_eq!(
        Attributes::walk(&broken).unwrap_err(),
        IceError::BadFingerprint
    );
}

#[test]
fn rfc5769_sample_request_carries_ice_controlled_so_a_lite_agent_answers_487() {
    let mut agent = IceLite::new(Credentials::new("evtj", RFC5769_PWD).unwrap());
    agent.set_remote(Credentials::new("h6vY", "browserPasswordBrowserPwd").unwrap());
    let mut out = [0; MAX_RESPONSE_LEN];
    let err = agent
        .handle_request(
            Instant::now(),
            rfc5769_ipv4_address(),
            &rfc5769_request(),
            &mut out,
        )
        .unwrap_err();
    let IceError::RoleConflict { response_len } = err else {
        panic!("expected a role conflict, got {err:?}");
    };
    assert_eq!(err.response_len(), Some(response_len));
    let response = parse_response(&out[..response_len], RFC5769_PWD).unwrap();
    assert_eq!(response.transaction_id, RFC5769_TRANSACTION_ID);
    assert_eq!(
        response.outcome,
        ResponseOutcome::Error {
            code: 487,
            unknown_attributes: vec![]
        }
    );
    assert!(!agent.is_connected());
    assert_eq!(agent.selected(), None);
}

#[test]
fn rfc5769_ipv4_response_verifies_and_decodes() {
    let response = parse_response(&rfc5769_ipv4_response(), RFC5769_PWD).unwrap();
    assert_eq!(response.transaction_id, RFC5769_TRANSACTION_ID);
    assert_eq!(
        response.outcome,
        ResponseOutcome::Success {
            mapped_address: rfc5769_ipv4_address()
        }
    );
    assert_eq!(
        parse_response(&rfc5769_ipv4_response(), "VOkJxbRl1RmTxUk/WvJxBT"),
        Err(IceError::BadIntegrity)
    );
    let mut broken = rfc5769_ipv4_response();
    *broken.last_mut().unwrap() ^= 0x80;
    assert_eq!(
        parse_response(&broken, RFC5769_PWD),
        Err(IceError::BadFingerprint)
    );
}

#[test]
fn rfc5769_ipv6_response_verifies_and_decodes() {
    let response = parse_response(&rfc5769_ipv6_response(), RFC5769_PWD).unwrap();
    assert_eq!(response.transaction_id, RFC5769_TRANSACTION_ID);
    assert_eq!(
        response.outcome,
        ResponseOutcome::Success {
            mapped_address: rfc5769_ipv6_address()
        }
    );
    assert_eq!(
        parse_response(&rfc5769_ipv6_response(), "wrong-password-wrong-password"),
        Err(IceError::BadIntegrity)
    );
}

#[test]
fn our_xor_mapped_address_encoding_matches_rfc5769_bytes() {
    // The attribute (header and value) sits at bytes 36.. in both responses, after SOFTWARE.
    for (address, vector, value_len) in [
        (rfc5769_ipv4_address(), rfc5769_ipv4_response(), 8),
        (rfc5769_ipv6_address(), rfc5769_ipv6_response(), 20),
    ] {
        let mut value = [0; 20];
        let len = encode_xor_mapped_address(address, &RFC5769_TRANSACTION_ID, &mut value);
        assert_eq!(len, value_len);
        assert_eq!(&value[..len], &vector[40..40 + len], "{address}");

        // And the same bytes in a whole response from the agent to a request with that id.
        let mut agent = agent();
        let request = BindingRequest {
            transaction_id: RFC5769_TRANSACTION_ID,
            ..chrome_request_fields(false)
        }
        .to_bytes();
        let mut out = [0; MAX_RESPONSE_LEN];
        let handled = agent
            .handle_request(Instant::now(), address, &request, &mut out)
            .unwrap();
        assert_eq!(&out[8..20], &RFC5769_TRANSACTION_ID);
        assert_eq!(&out[20..24 + len], &vector[36..40 + len], "{address}");
        assert_eq!(handled.response_len, 20 + 4 + len + 24 + 8);
    }
}

// ---- Chrome-shaped checks ---------------------------------------------------------------

const NODE_UFRAG: &str = "n0deUfrg";
const NODE_PWD: &str = "n0dePassw0rdN0dePassw0rd";
const BROWSER_UFRAG: &str = "Br0w";
const BROWSER_PWD: &str = "br0wserPassw0rdBr0wserPa";
const USERNAME_OK: &str = "n0deUfrg:Br0w";
/// GOOG-NETWORK-INFO: network id 1, cost 10 (comprehension-optional, unknown to us).
const GOOG_NETWORK_INFO: (u16, &[u8]) = (0xc057, &[0x00, 0x01, 0x00, 0x0a]);
const CHROME_PRIORITY: u32 = 0x6e7f_1eff;
const TIE_BREAKER: u64 = 0x1234_5678_9abc_def0;

fn local() -> Credentials {
    Credentials::new(NODE_UFRAG, NODE_PWD).unwrap()
}

fn remote() -> Credentials {
    Credentials::new(BROWSER_UFRAG, BROWSER_PWD).unwrap()
}

fn agent() -> IceLite {
    let mut agent = IceLite::new(local());
    agent.set_remote(remote());
    agent
}

fn chrome_request_fields(use_candidate: bool) -> BindingRequest<'static> {
    BindingRequest {
        transaction_id: rand::random(),
        username: USERNAME_OK,
        pwd: NODE_PWD,
        priority: CHROME_PRIORITY,
        use_candidate,
        role: Some(Role::Controlling(TIE_BREAKER)),
        extra_attributes: &[GOOG_NETWORK_INFO],
        without_fingerprint: false,
    }
}

/// USERNAME, GOOG-NETWORK-INFO, ICE-CONTROLLING, USE-CANDIDATE, PRIORITY,
/// MESSAGE-INTEGRITY, FINGERPRINT: what Chrome sends.
fn chrome_request(use_candidate: bool) -> Vec<u8> {
    chrome_request_fields(use_candidate).to_bytes()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Handles `request` and returns the result with the response bytes.
fn handle(
    agent: &mut IceLite,
    now: Instant,
    source: SocketAddr,
    request: &[u8],
) -> Result<(Handled, Vec<u8>), IceError> {
    let mut out = [0; MAX_RESPONSE_LEN];
    let handled = agent.handle_request(now, source, request, &mut out)?;
    Ok((handled, out[..handled.response_len].to_vec()))
}

/// A message with exactly these attributes, sealed with MESSAGE-INTEGRITY and FINGERPRINT
/// when `pwd` is given.
fn message(msg_type: u16, attributes: &[(u16, &[u8])], pwd: Option<&str>) -> Vec<u8> {
    let mut buf = [0; 512];
    let mut w = Writer::start(&mut buf, msg_type, &rand::random()).unwrap();
    for (kind, value) in attributes {
        w.attribute(*kind, value).unwrap();
    }
    let len = match pwd {
        Some(pwd) => w.seal(&integrity_key(pwd)).unwrap(),
        None => w.len,
    };
    buf[..len].to_vec()
}

#[test]
fn chrome_like_request_gets_a_response_that_verifies_with_our_pwd_and_maps_the_source() {
    for source in [addr("198.51.100.7:53211"), addr("[2001:db8::7]:40000")] {
        let mut agent = agent();
        let request = chrome_request(false);
        let (handled, response) = handle(&mut agent, Instant::now(), source, &request).unwrap();
        assert_eq!(handled.response_len, if source.is_ipv4() { 64 } else { 76 });
        assert!(!handled.nominated);
        assert!(handled.new_address);
        let parsed = parse_response(&response, NODE_PWD).unwrap();
        assert_eq!(parsed.transaction_id, request[8..20]);
        assert_eq!(
            parsed.outcome,
            ResponseOutcome::Success {
                mapped_address: source
            }
        );
        assert_eq!(
            parse_response(&response, BROWSER_PWD),
            Err(IceError::BadIntegrity)
        );
        assert!(agent.is_connected());
        assert_eq!(agent.selected(), None, "no USE-CANDIDATE, nothing selected");
    }
}

#[test]
fn use_candidate_nominates_and_a_second_address_moves_the_nomination() {
    let mut agent = agent();
    let now = Instant::now();
    let (a, b) = (addr("198.51.100.7:53211"), addr("203.0.113.9:61000"));

    let (handled, _) = handle(&mut agent, now, a, &chrome_request(true)).unwrap();
    assert!(handled.nominated && handled.selected_changed && handled.new_address);
    assert_eq!(agent.selected(), Some(a));

    // A check from b without USE-CANDIDATE is valid but does not move the selection.
    let (handled, _) = handle(
        &mut agent,
        now + Duration::from_secs(1),
        b,
        &chrome_request(false),
    )
    .unwrap();
    assert!(!handled.nominated && !handled.selected_changed && handled.new_address);
    assert_eq!(agent.selected(), Some(a));

    // Consent checks on the selected pair keep nominating it: no change.
    let (handled, _) = handle(
        &mut agent,
        now + Duration::from_secs(2),
        a,
        &chrome_request(true),
    )
    .unwrap();
    assert!(handled.nominated && !handled.selected_changed && !handled.new_address);

    // b nominated: the latest nomination wins.
    let later = now + Duration::from_secs(3);
    let (handled, _) = handle(&mut agent, later, b, &chrome_request(true)).unwrap();
    assert!(handled.nominated && handled.selected_changed && !handled.new_address);
    assert_eq!(agent.selected(), Some(b));
    assert_eq!(agent.addresses().collect::<Vec<_>>(), vec![b, a]);
}

#[test]
fn ipv4_mapped_source_is_reported_as_the_ipv4_address() {
    let mut agent = agent();
    let source = addr("[::ffff:198.51.100.7]:5000");
    let (handled, response) =
        handle(&mut agent, Instant::now(), source, &chrome_request(true)).unwrap();
    assert_eq!(handled.response_len, 64);
    assert_eq!(
        parse_response(&response, NODE_PWD).unwrap().outcome,
        ResponseOutcome::Success {
            mapped_address: addr("198.51.100.7:5000")
        }
    );
    assert_eq!(
        agent.selected(),
        Some(source),
        "media goes where the socket saw it"
    );
}

#[test]
fn request_without_fingerprint_is_accepted() {
    let mut agent = agent();
    let request = BindingRequest {
        without_fingerprint: true,
        ..chrome_request_fields(true)
    }
    .to_bytes();
    let source = addr("198.51.100.7:53211");
    let (handled, _) = handle(&mut agent, Instant::now(), source, &request).unwrap();
    assert!(handled.nominated);
}

#[test]
fn checks_before_the_remote_ufrag_is_known_are_answered() {
    let mut agent = IceLite::new(local());
    let source = addr("198.51.100.7:53211");
    let request = BindingRequest {
        username: "n0deUfrg:AnyBrowserUfrag",
        ..chrome_request_fields(true)
    }
    .to_bytes();
    handle(&mut agent, Instant::now(), source, &request).unwrap();
    assert_eq!(agent.selected(), Some(source));

    // Once known, the remote half must match.
    agent.set_remote(remote());
    assert_eq!(
        handle(&mut agent, Instant::now(), source, &request).unwrap_err(),
        IceError::UnknownUsername
    );
    handle(&mut agent, Instant::now(), source, &chrome_request(true)).unwrap();
}

// ---- Rejections -------------------------------------------------------------------------

#[test]
fn wrong_password_is_bad_integrity_with_no_response_and_no_state_change() {
    let mut agent = agent();
    let request = BindingRequest {
        pwd: "s0meOtherPassw0rdS0meOther",
        ..chrome_request_fields(true)
    }
    .to_bytes();
    let mut out = [0xaa; MAX_RESPONSE_LEN];
    let err = agent
        .handle_request(Instant::now(), addr("198.51.100.7:1"), &request, &mut out)
        .unwrap_err();
    assert_eq!(err, IceError::BadIntegrity);
    assert_eq!(err.response_len(), None);
    assert!(out.iter().all(|&b| b == 0xaa), "nothing written");
    assert!(!agent.is_connected());
    assert_eq!(agent.selected(), None);
    assert_eq!(agent.addresses().count(), 0);
}

#[test]
fn wrong_username_is_rejected() {
    let mut agent = agent();
    for username in [
        "otherUfr:Br0w",  // not our ufrag
        "n0deUfrg:Oth3r", // not the browser's
        "n0deUfrg:",      // no remote half
        "n0deUfrg",       // no colon
        "Br0w:n0deUfrg",  // the halves swapped
        "n0deUfrgX:Br0w", // our ufrag as a prefix
        "",
    ] {
        let request = BindingRequest {
            username,
            ..chrome_request_fields(true)
        }
        .to_bytes();
        assert_eq!(
            handle(&mut agent, Instant::now(), addr("198.51.100.7:1"), &request).unwrap_err(),
            IceError::UnknownUsername,
            "{username:?}"
        );
    }
    assert!(!agent.is_connected());
}

#[test]
fn ice_controlled_request_gets_487_role_conflict_and_changes_nothing() {
    let mut agent = agent();
    let request = BindingRequest {
        role: Some(Role::Controlled(TIE_BREAKER)),
        ..chrome_request_fields(true)
    }
    .to_bytes();
    let mut out = [0; MAX_RESPONSE_LEN];
    let err = agent
        .handle_request(Instant::now(), addr("198.51.100.7:1"), &request, &mut out)
        .unwrap_err();
    let response_len = err.response_len().expect("a 487 to send");
    assert!(matches!(err, IceError::RoleConflict { .. }));
    let response = parse_response(&out[..response_len], NODE_PWD).unwrap();
    assert_eq!(response.transaction_id, request[8..20]);
    assert_eq!(
        response.outcome,
        ResponseOutcome::Error {
            code: 487,
            unknown_attributes: vec![]
        }
    );
    assert!(!agent.is_connected());
    assert_eq!(agent.selected(), None);

    // No role attribute at all is fine.
    let request = BindingRequest {
        role: None,
        ..chrome_request_fields(true)
    }
    .to_bytes();
    handle(&mut agent, Instant::now(), addr("198.51.100.7:1"), &request).unwrap();
}

#[test]
fn unknown_comprehension_required_attribute_gets_420_listing_it() {
    let mut agent = agent();
    let extra: &[(u16, &[u8])] = &[
        GOOG_NETWORK_INFO,
        (0x7777, b"abc"),
        (0x0003, &[0, 0, 0, 0]), // CHANGE-REQUEST (RFC 5780): not ours to know
        (0x7777, b"again"),      // listed once
        (0xc0de, b"optional"),   // comprehension-optional: not listed
    ];
    let request = BindingRequest {
        extra_attributes: extra,
        ..chrome_request_fields(true)
    }
    .to_bytes();
    let mut out = [0; MAX_RESPONSE_LEN];
    let err = agent
        .handle_request(Instant::now(), addr("198.51.100.7:1"), &request, &mut out)
        .unwrap_err();
    assert!(matches!(err, IceError::UnknownAttributes { .. }), "{err:?}");
    let response = parse_response(&out[..err.response_len().unwrap()], NODE_PWD).unwrap();
    assert_eq!(
        response.outcome,
        ResponseOutcome::Error {
            code: 420,
            unknown_attributes: vec![0x7777, 0x0003]
        }
    );
    assert!(!agent.is_connected());
    assert_eq!(agent.selected(), None);

    // Unauthenticated, the same request gets nothing.
    let request = BindingRequest {
        extra_attributes: extra,
        pwd: "s0meOtherPassw0rdS0meOther",
        ..chrome_request_fields(true)
    }
    .to_bytes();
    assert_eq!(
        handle(&mut agent, Instant::now(), addr("198.51.100.7:1"), &request).unwrap_err(),
        IceError::BadIntegrity
    );
}

#[test]
fn the_longest_420_fits_max_response_len() {
    let mut agent = agent();
    let extra: Vec<(u16, &[u8])> = (0x7000u16..0x7010).map(|t| (t, &b"x"[..])).collect();
    let request = BindingRequest {
        extra_attributes: &extra,
        ..chrome_request_fields(true)
    }
    .to_bytes();
    let mut out = [0; MAX_RESPONSE_LEN];
    let err = agent
        .handle_request(Instant::now(), addr("198.51.100.7:1"), &request, &mut out)
        .unwrap_err();
    assert_eq!(err.response_len(), Some(MAX_RESPONSE_LEN));
    let ResponseOutcome::Error {
        code,
        unknown_attributes,
    } = parse_response(&out, NODE_PWD).unwrap().outcome
    else {
        panic!("not an error response");
    };
    assert_eq!(code, 420);
    assert_eq!(
        unknown_attributes,
        (0x7000u16..0x7000 + MAX_UNKNOWN_ATTRIBUTES as u16).collect::<Vec<_>>()
    );
}

#[test]
fn attributes_after_message_integrity_are_ignored() {
    // An unknown comprehension-required attribute and a second USE-CANDIDATE after
    // MESSAGE-INTEGRITY, then a fresh FINGERPRINT: neither counts (RFC 5389 §15.4).
    let request = chrome_request(false);
    let mut tampered = request[..request.len() - 8].to_vec();
    tampered.extend_from_slice(&[0x77, 0x77, 0x00, 0x00, 0x00, 0x25, 0x00, 0x00]);
    let length = (tampered.len() + 8 - HEADER_LEN) as u16;
    tampered[2..4].copy_from_slice(&length.to_be_bytes());
    let crc = crc32(&tampered) ^ FINGERPRINT_XOR;
    tampered.extend_from_slice(&[0x80, 0x28, 0x00, 0x04]);
    tampered.extend_from_slice(&crc.to_be_bytes());

    let mut agent = agent();
    let (handled, _) = handle(
        &mut agent,
        Instant::now(),
        addr("198.51.100.7:1"),
        &tampered,
    )
    .unwrap();
    assert!(!handled.nominated);
}

#[test]
fn missing_username_integrity_or_priority_is_dropped() {
    let mut agent = agent();
    let source = addr("198.51.100.7:1");
    let username = (USERNAME, USERNAME_OK.as_bytes());
    let priority = (PRIORITY, &CHROME_PRIORITY.to_be_bytes()[..]);
    let controlling = (ICE_CONTROLLING, &TIE_BREAKER.to_be_bytes()[..]);
    for request in [
        message(BINDING_REQUEST, &[priority, controlling], Some(NODE_PWD)),
        message(BINDING_REQUEST, &[username, controlling], Some(NODE_PWD)),
        message(BINDING_REQUEST, &[username, priority, controlling], None),
        message(BINDING_REQUEST, &[], None),
    ] {
        assert_eq!(
            handle(&mut agent, Instant::now(), source, &request).unwrap_err(),
            IceError::MissingAttribute
        );
    }
    // With all three it goes through.
    let request = message(
        BINDING_REQUEST,
        &[username, priority, controlling],
        Some(NODE_PWD),
    );
    handle(&mut agent, Instant::now(), source, &request).unwrap();
}

#[test]
fn wrong_attribute_lengths_are_bad_length() {
    let mut agent = agent();
    let username = (USERNAME, USERNAME_OK.as_bytes());
    let priority = (PRIORITY, &CHROME_PRIORITY.to_be_bytes()[..]);
    for attributes in [
        vec![username, (PRIORITY, &[1, 2, 3][..])],
        vec![username, priority, (USE_CANDIDATE, &[0][..])],
        vec![username, priority, (ICE_CONTROLLING, &[0; 4][..])],
        vec![username, priority, (ICE_CONTROLLED, &[0; 9][..])],
    ] {
        let request = message(BINDING_REQUEST, &attributes, Some(NODE_PWD));
        assert_eq!(
            handle(&mut agent, Instant::now(), addr("198.51.100.7:1"), &request).unwrap_err(),
            IceError::BadLength
        );
    }
    // MESSAGE-INTEGRITY of 19 bytes.
    let request = message(
        BINDING_REQUEST,
        &[username, priority, (MESSAGE_INTEGRITY, &[0; 19])],
        None,
    );
    assert_eq!(
        handle(&mut agent, Instant::now(), addr("198.51.100.7:1"), &request).unwrap_err(),
        IceError::BadLength
    );
}

#[test]
fn fingerprint_must_match_and_be_last() {
    let mut agent = agent();
    let source = addr("198.51.100.7:1");
    let mut request = chrome_request(true);
    let last = request.len() - 1;
    request[last] ^= 0x01;
    assert_eq!(
        handle(&mut agent, Instant::now(), source, &request).unwrap_err(),
        IceError::BadFingerprint
    );
    request[last] ^= 0x01;

    // Something after FINGERPRINT.
    request.extend_from_slice(&[0x80, 0x22, 0x00, 0x00]);
    let length = (request.len() - HEADER_LEN) as u16;
    request[2..4].copy_from_slice(&length.to_be_bytes());
    assert_eq!(
        handle(&mut agent, Instant::now(), source, &request).unwrap_err(),
        IceError::BadFingerprint
    );
    assert!(!agent.is_connected());
}

#[test]
fn non_requests_are_told_apart() {
    let mut agent = agent();
    let source = addr("198.51.100.7:1");
    let indication = message(0x0011, &[], None);
    let (_, success) = handle(
        &mut self::agent(),
        Instant::now(),
        source,
        &chrome_request(true),
    )
    .unwrap();
    let allocate = message(
        0x0003,
        &[(USERNAME, USERNAME_OK.as_bytes())],
        Some(NODE_PWD),
    );
    for (datagram, expected) in [
        (indication, IceError::NotBindingRequest),
        (success, IceError::NotBindingRequest),
        (allocate, IceError::NotBindingRequest),
        (vec![], IceError::NotStun),
        (vec![0; 19], IceError::NotStun),
        // DTLS record (content type 22): top bits clear, but no magic cookie.
        (
            hex("16 fe fd 00 00 00 00 00 00 00 00 00 30 01 00 00 24 00 00 00"),
            IceError::NotStun,
        ),
        // RTP (version 2).
        (
            hex("80 00 12 34 00 00 00 a0 12 34 56 78 00 00 00 00 00 00 00 00"),
            IceError::NotStun,
        ),
        // ChannelData-like first bits.
        (
            hex("40 00 00 00 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 00"),
            IceError::NotStun,
        ),
        // Length not a multiple of 4, and length beyond the datagram.
        (
            hex("00 01 00 02 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 00 00 00"),
            IceError::BadLength,
        ),
        (
            hex("00 01 00 08 21 12 a4 42 00 00 00 00 00 00 00 00 00 00 00 00"),
            IceError::BadLength,
        ),
    ] {
        assert_eq!(
            handle(&mut agent, Instant::now(), source, &datagram).unwrap_err(),
            expected,
            "{datagram:02x?}"
        );
    }
}

#[test]
fn truncation_at_every_length_is_an_error() {
    for request in [
        chrome_request(true),
        BindingRequest {
            without_fingerprint: true,
            ..chrome_request_fields(true)
        }
        .to_bytes(),
    ] {
        let mut agent = agent();
        for len in 0..request.len() {
            let mut out = [0; MAX_RESPONSE_LEN];
            let result = agent.handle_request(
                Instant::now(),
                addr("198.51.100.7:1"),
                &request[..len],
                &mut out,
            );
            assert!(result.is_err(), "prefix of {len} bytes: {result:?}");
        }
        // Longer than the header says.
        let mut longer = request.clone();
        longer.extend_from_slice(&[0; 4]);
        assert_eq!(
            handle(&mut agent, Instant::now(), addr("198.51.100.7:1"), &longer).unwrap_err(),
            IceError::BadLength
        );
        assert!(!agent.is_connected());
    }
}

#[test]
fn every_flipped_bit_is_rejected() {
    // Without FINGERPRINT, MESSAGE-INTEGRITY covers every byte but its own value, which it is.
    let request = BindingRequest {
        without_fingerprint: true,
        ..chrome_request_fields(true)
    }
    .to_bytes();
    for bit in 0..request.len() * 8 {
        let mut flipped = request.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let mut agent = agent();
        let result = handle(&mut agent, Instant::now(), addr("198.51.100.7:1"), &flipped);
        assert!(result.is_err(), "bit {bit}: {result:?}");
        assert!(!agent.is_connected());
    }

    // With FINGERPRINT, every flip is caught, except in FINGERPRINT's own type: that turns it
    // into an attribute after MESSAGE-INTEGRITY, which RFC 5389 §15.4 says to ignore, and
    // leaves an authentic request without FINGERPRINT.
    let request = chrome_request(true);
    let fingerprint_type = request.len() - 8..request.len() - 6;
    for bit in 0..request.len() * 8 {
        let mut flipped = request.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let mut agent = agent();
        let result = handle(&mut agent, Instant::now(), addr("198.51.100.7:1"), &flipped);
        if fingerprint_type.contains(&(bit / 8)) {
            let (handled, response) = result.unwrap();
            assert!(handled.nominated);
            parse_response(&response, NODE_PWD).unwrap();
        } else {
            assert!(result.is_err(), "bit {bit}: {result:?}");
            assert!(!agent.is_connected());
        }
    }
}

#[test]
fn garbage_and_mutated_requests_never_panic_and_never_pass_unauthenticated() {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let mut agent = agent();
    let source = addr("198.51.100.7:1");
    let mut out = [0; MAX_RESPONSE_LEN];
    let request = chrome_request(true);
    for round in 0..20_000 {
        let datagram: Vec<u8> = if round % 2 == 0 {
            // Random bytes, often with a STUN-looking header and a consistent length.
            let len = noise.below(160);
            let mut d: Vec<u8> = (0..len).map(|_| noise.next() as u8).collect();
            if d.len() >= 20 && noise.below(2) == 0 {
                d[0] &= 0x3f;
                d[4..8].copy_from_slice(&MAGIC_COOKIE);
                let body = ((d.len() - 20) / 4 * 4) as u16;
                d.truncate(20 + usize::from(body));
                d[2..4].copy_from_slice(&body.to_be_bytes());
            }
            d
        } else {
            // A valid request with a few random bytes changed, the length kept consistent.
            let mut d = request.clone();
            for _ in 0..1 + noise.below(4) {
                let at = 20 + noise.below(d.len() - 20);
                d[at] = noise.next() as u8;
            }
            d
        };
        match agent.handle_request(Instant::now(), source, &datagram, &mut out) {
            // Only a request whose authenticated part is intact may pass.
            Ok(_) => {
                let integrity_at = Attributes::walk(&datagram).unwrap().integrity_at.unwrap();
                assert_eq!(datagram[..integrity_at + 24], request[..integrity_at + 24]);
            }
            Err(e) => assert!(e.response_len().is_none_or(|n| n <= MAX_RESPONSE_LEN)),
        }
    }
    // Random bytes through the response parser too.
    for _ in 0..5_000 {
        let len = noise.below(120);
        let d: Vec<u8> = (0..len).map(|_| noise.next() as u8).collect();
        let _ = parse_response(&d, NODE_PWD);
    }
}

#[test]
fn output_buffer_too_small_is_an_error_and_changes_nothing() {
    let mut agent = agent();
    let request = chrome_request(true);
    let source = addr("198.51.100.7:1");
    for len in [0, 19, 20, 40, 63] {
        let mut out = vec![0; len];
        assert_eq!(
            agent
                .handle_request(Instant::now(), source, &request, &mut out)
                .unwrap_err(),
            IceError::BufferTooSmall
        );
        assert!(!agent.is_connected());
    }
    let mut out = [0; 64];
    agent
        .handle_request(Instant::now(), source, &request, &mut out)
        .unwrap();
    assert_eq!(agent.selected(), Some(source));
}

// ---- State ------------------------------------------------------------------------------

#[test]
fn consent_expires_30_s_after_the_last_valid_check_and_a_check_renews_it() {
    let mut agent = agent();
    let t0 = Instant::now();
    let source = addr("198.51.100.7:1");
    assert!(
        !agent.consent_expired(t0 + Duration::from_secs(3600)),
        "nothing to expire yet"
    );
    assert_eq!(agent.consent_deadline(), None);

    handle(&mut agent, t0, source, &chrome_request(true)).unwrap();
    assert_eq!(agent.last_valid_check(), Some(t0));
    assert_eq!(agent.consent_deadline(), Some(t0 + CONSENT_TIMEOUT));
    assert!(!agent.consent_expired(t0 + Duration::from_millis(29_999)));
    assert!(agent.consent_expired(t0 + CONSENT_TIMEOUT));

    // A consent check (no USE-CANDIDATE, as browsers send them) at 25 s renews it.
    let t1 = t0 + Duration::from_secs(25);
    handle(&mut agent, t1, source, &chrome_request(false)).unwrap();
    assert!(!agent.consent_expired(t0 + Duration::from_secs(40)));
    assert!(agent.consent_expired(t1 + CONSENT_TIMEOUT));

    // Bad checks renew nothing.
    let bad = BindingRequest {
        pwd: "s0meOtherPassw0rdS0meOther",
        ..chrome_request_fields(false)
    }
    .to_bytes();
    let t2 = t1 + Duration::from_secs(20);
    handle(&mut agent, t2, source, &bad).unwrap_err();
    assert_eq!(agent.consent_deadline(), Some(t1 + CONSENT_TIMEOUT));
    assert!(agent.is_connected(), "connected stays once a check arrived");
}

#[test]
fn consent_follows_the_selected_address() {
    let mut agent = agent();
    let t0 = Instant::now();
    let (a, b) = (addr("198.51.100.7:1"), addr("203.0.113.9:2"));
    // Before a nomination, any valid check counts.
    handle(&mut agent, t0, b, &chrome_request(false)).unwrap();
    assert_eq!(agent.consent_deadline(), Some(t0 + CONSENT_TIMEOUT));

    let t1 = t0 + Duration::from_secs(1);
    handle(&mut agent, t1, a, &chrome_request(true)).unwrap();
    // Checks on another pair do not keep the selected one alive.
    let t2 = t1 + Duration::from_secs(20);
    handle(&mut agent, t2, b, &chrome_request(false)).unwrap();
    assert_eq!(agent.last_valid_check(), Some(t2));
    assert_eq!(agent.consent_deadline(), Some(t1 + CONSENT_TIMEOUT));
    assert!(agent.consent_expired(t1 + CONSENT_TIMEOUT));
}

#[test]
fn the_address_set_keeps_the_most_recently_checked() {
    let mut agent = agent();
    let t0 = Instant::now();
    let addresses: Vec<SocketAddr> = (1..=MAX_ADDRESSES as u16 + 1)
        .map(|port| SocketAddr::new(Ipv4Addr::new(198, 51, 100, 7).into(), port))
        .collect();
    for (i, &a) in addresses.iter().enumerate() {
        let (handled, _) = handle(
            &mut agent,
            t0 + Duration::from_secs(i as u64),
            a,
            &chrome_request(false),
        )
        .unwrap();
        assert!(handled.new_address);
    }
    let mut expected: Vec<SocketAddr> = addresses[1..].to_vec();
    expected.reverse();
    assert_eq!(agent.addresses().collect::<Vec<_>>(), expected);

    // The first one was forgotten: it is new again, and pushes out the next oldest.
    let later = t0 + Duration::from_secs(60);
    let (handled, _) = handle(&mut agent, later, addresses[0], &chrome_request(false)).unwrap();
    assert!(handled.new_address);
    assert!(!agent.addresses().any(|a| a == addresses[1]));
    assert_eq!(agent.addresses().next(), Some(addresses[0]));
}

#[test]
fn restart_swaps_credentials_and_keeps_the_selected_address_until_renominated() {
    let mut agent = agent();
    let t0 = Instant::now();
    let (a, b) = (addr("198.51.100.7:1"), addr("203.0.113.9:2"));
    handle(&mut agent, t0, a, &chrome_request(true)).unwrap();

    let new_local = Credentials::new("n3wUfrag", "n3wPassw0rdN3wPassw0rd+/").unwrap();
    agent.restart(new_local.clone(), None);
    assert_eq!(agent.local_credentials(), &new_local);
    assert_eq!(agent.remote_credentials(), None);
    assert_eq!(agent.selected(), Some(a));
    assert_eq!(agent.addresses().count(), 0);

    // The old credentials no longer work.
    assert_eq!(
        handle(&mut agent, t0, a, &chrome_request(true)).unwrap_err(),
        IceError::UnknownUsername
    );
    // The new ones do, before the browser's new ufrag is known; b nominated takes over.
    let request = BindingRequest {
        username: "n3wUfrag:N3wB",
        pwd: new_local.pwd(),
        ..chrome_request_fields(true)
    }
    .to_bytes();
    let t1 = t0 + Duration::from_secs(2);
    let (handled, response) = handle(&mut agent, t1, b, &request).unwrap();
    assert!(handled.selected_changed);
    assert_eq!(agent.selected(), Some(b));
    parse_response(&response, new_local.pwd()).unwrap();
    assert_eq!(
        parse_response(&response, NODE_PWD),
        Err(IceError::BadIntegrity)
    );

    agent.set_remote(Credentials::new("N3wB", BROWSER_PWD).unwrap());
    handle(&mut agent, t1, b, &request).unwrap();
}

#[test]
fn credentials_are_validated_and_the_password_stays_out_of_debug() {
    assert_eq!(
        Credentials::new("abc", NODE_PWD),
        Err(CredentialsError::BadUfrag)
    );
    assert_eq!(
        Credentials::new("ab:cd", NODE_PWD),
        Err(CredentialsError::BadUfrag)
    );
    assert_eq!(
        Credentials::new("a".repeat(257), NODE_PWD),
        Err(CredentialsError::BadUfrag)
    );
    assert_eq!(
        Credentials::new("abcd", "a".repeat(21)),
        Err(CredentialsError::BadPwd)
    );
    assert_eq!(
        Credentials::new("abcd", format!("{}-", "a".repeat(22))),
        Err(CredentialsError::BadPwd)
    );
    assert!(Credentials::new("a+/d", format!("{}+/", "a".repeat(20))).is_ok());
    assert!(Credentials::new("a".repeat(256), "b".repeat(256)).is_ok());

    let random = Credentials::random();
    let again = Credentials::new(random.ufrag(), random.pwd()).unwrap();
    assert_eq!(random, again);
    assert_eq!((random.ufrag().len(), random.pwd().len()), (8, 24));
    assert_ne!(Credentials::random(), random);

    let debug = format!("{random:?} {:?}", IceLite::new(random.clone()));
    assert!(debug.contains(random.ufrag()));
    assert!(!debug.contains(random.pwd()), "{debug}");
}

// ---- Interop with str0m's STUN ----------------------------------------------------------

fn sha1_hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 20] {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let mut ctx = hmac::Context::with_key(&key);
    for part in parts {
        ctx.update(part);
    }
    ctx.sign().as_ref().try_into().unwrap()
}

#[test]
fn str0m_built_request_is_answered_and_str0m_verifies_our_response() {
    let username = USERNAME_OK;
    let mut agent = agent();
    let source = addr("198.51.100.7:53211");
    for (use_candidate, network_cost) in [(false, false), (true, true)] {
        let mut builder = StunMessageBuilder::new()
            .binding()
            .request()
            .username(username)
            .ice_controlling(TIE_BREAKER)
            .prio(CHROME_PRIORITY);
        if use_candidate {
            builder = builder.use_candidate();
        }
        if network_cost {
            builder = builder.network_cost(1, 10); // GOOG-NETWORK-INFO
        }
        let mut buf = [0; 256];
        let len = builder
            .build(TransId::new())
            .to_bytes(Some(NODE_PWD.as_bytes()), &mut buf, sha1_hmac)
            .unwrap();
        let request = &buf[..len];

        let (handled, response) = handle(&mut agent, Instant::now(), source, request).unwrap();
        assert_eq!(handled.nominated, use_candidate);

        let ours = StunMessage::parse(&response).unwrap();
        assert!(ours.is_successful_binding_response());
        assert_eq!(
            ours.trans_id(),
            StunMessage::parse(request).unwrap().trans_id()
        );
        assert_eq!(ours.mapped_address(), Some(source));
        assert!(ours.verify(NODE_PWD.as_bytes(), sha1_hmac));
        assert!(!ours.verify(BROWSER_PWD.as_bytes(), sha1_hmac));
    }
    assert_eq!(agent.selected(), Some(source));

    // str0m's request signed with another password.
    let mut buf = [0; 256];
    let len = StunMessage::binding_request(username, TransId::new(), true, TIE_BREAKER, 1, true)
        .to_bytes(Some(BROWSER_PWD.as_bytes()), &mut buf, sha1_hmac)
        .unwrap();
    assert_eq!(
        handle(&mut agent, Instant::now(), source, &buf[..len]).unwrap_err(),
        IceError::BadIntegrity
    );
}

#[test]
fn str0m_reads_our_487_and_our_requests() {
    // Our 487 to a str0m request claiming ICE-CONTROLLED.
    let mut agent = agent();
    let mut buf = [0; 256];
    let len =
        StunMessage::binding_request(USERNAME_OK, TransId::new(), false, TIE_BREAKER, 1, false)
            .to_bytes(Some(NODE_PWD.as_bytes()), &mut buf, sha1_hmac)
            .unwrap();
    let mut out = [0; MAX_RESPONSE_LEN];
    let err = agent
        .handle_request(
            Instant::now(),
            addr("198.51.100.7:1"),
            &buf[..len],
            &mut out,
        )
        .unwrap_err();
    let response = StunMessage::parse(&out[..err.response_len().unwrap()]).unwrap();
    assert!(response.is_failed_binding_response());
    assert_eq!(response.error_code(), Some((487, "Role Conflict")));
    assert!(response.verify(NODE_PWD.as_bytes(), sha1_hmac));

    // Our request builder, as str0m's ICE agent would read it.
    let request = chrome_request(true);
    let parsed = StunMessage::parse(&request).unwrap();
    assert!(parsed.is_binding_request());
    assert_eq!(parsed.split_username(), Some((NODE_UFRAG, BROWSER_UFRAG)));
    assert_eq!(parsed.prio(), Some(CHROME_PRIORITY));
    assert!(parsed.use_candidate());
    assert_eq!(parsed.ice_controlling(), Some(TIE_BREAKER));
    assert_eq!(parsed.network_cost(), Some((1, 10)));
    assert!(parsed.verify(NODE_PWD.as_bytes(), sha1_hmac));
    assert_eq!(
        binding_request(
            request[8..20].try_into().unwrap(),
            USERNAME_OK,
            NODE_PWD,
            CHROME_PRIORITY,
            true,
            TIE_BREAKER
        )
        .len(),
        request.len() - 8,
        "the plain helper leaves GOOG-NETWORK-INFO out"
    );
}

#[test]
fn agent_state_stays_small() {
    // Inline state per call; the HMAC key (about 1.2 KiB) and the credential strings are on
    // the heap.
    let size = std::mem::size_of::<IceLite>();
    eprintln!("IceLite is {size} bytes inline");
    assert!(size <= 512, "{size}");
}
