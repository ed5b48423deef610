//! Typed access to what the bridge reads from a description, and the errors bad input gets.

use std::net::{IpAddr, Ipv6Addr};

use shared::sdp::{
    AddrType, Attribute, Candidate, CandidateType, Codec, Direction, MediaType, Port, Proto,
    SdpError, SessionDescription, Setup,
};

fn sample(name: &str) -> SessionDescription {
    let path = format!("{}/tests/data/sdp/{name}.sdp", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    SessionDescription::parse(&text).unwrap()
}

const MINIMAL: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n";

fn with_media(lines: &str) -> Result<SessionDescription, SdpError> {
    SessionDescription::parse(&format!("{MINIMAL}m=audio 4000 RTP/AVP 0 8 96\r\n{lines}"))
}

#[test]
fn origin_fields_are_typed() {
    let sd = sample("rfc3665_sip_rtpavp_pcmu_offer");
    assert_eq!(sd.origin.username, "alice");
    assert_eq!(sd.origin.session_id, "2890844526");
    assert_eq!(sd.origin.session_version, 2890844526);
    assert_eq!(sd.origin.addrtype, AddrType::Ip4);
    assert_eq!(sd.origin.address, "client.atlanta.example.com");
}

#[test]
fn session_level_connection_applies_to_media_without_its_own() {
    let sd = sample("rfc3665_sip_rtpavp_pcmu_offer");
    let audio = &sd.media[0];
    assert!(audio.connection().is_none());
    let c = sd.connection_for(audio).unwrap();
    assert_eq!(c.ip(), Some(IpAddr::from([192, 0, 2, 101])));
}

#[test]
fn connection_with_ipv6_address_parses() {
    let sd = with_media("c=IN IP6 2001:db8::1\r\n").unwrap();
    let c = sd.media[0].connection().unwrap();
    assert_eq!(c.addrtype, AddrType::Ip6);
    assert_eq!(c.ip(), Some("2001:db8::1".parse::<IpAddr>().unwrap()));
}

#[test]
fn connection_with_host_name_has_no_ip() {
    let sd = with_media("c=IN IP4 media.example.com\r\n").unwrap();
    assert_eq!(sd.media[0].connection().unwrap().ip(), None);
}

#[test]
fn media_line_exposes_type_port_proto_and_payload_types() {
    let sd = sample("chromium156_debian_headless_audio_only_offer_with_candidates");
    let m = &sd.media[0];
    assert_eq!(m.media.media_type, MediaType::Audio);
    assert_eq!(m.port(), Some(58477));
    assert_eq!(m.media.proto, Proto::UdpTlsRtpSavpf);
    assert!(m.media.proto.is_dtls_srtp());
    let pts: Vec<u8> = m.payload_types().collect();
    assert_eq!(pts, [111, 63, 9, 0, 8, 13, 110, 126]);
    let plain = sample("rfc3665_sip_rtpavp_pcmu_offer");
    assert_eq!(plain.media[0].media.proto, Proto::RtpAvp);
    assert!(!plain.media[0].media.proto.is_dtls_srtp());
}

#[test]
fn sipp_template_port_is_kept_as_a_placeholder() {
    let sd = sample("sipp361_uac_builtin_template");
    let m = &sd.media[0];
    assert_eq!(m.media.port, Port::Template("[media_port]".into()));
    assert_eq!(m.port(), None);
    assert_eq!(
        sd.origin.addrtype,
        AddrType::Other("IP[local_ip_type]".into())
    );
}

#[test]
fn rejected_media_section_has_port_zero() {
    let sd = sample("sdp-transform_jsep");
    assert!(!sd.media[0].is_rejected());
    assert!(sd.media[1].is_rejected());
}

#[test]
fn rtpmap_fmtp_and_rtcp_fb_are_found_by_payload_type() {
    let sd = sample("chromium120_offer_audio_video");
    let audio = &sd.media[0];
    let opus = audio.rtpmap(111).unwrap();
    assert_eq!(
        (opus.encoding.as_str(), opus.clock_rate, opus.channels),
        ("opus", 48000, Some(2))
    );
    let fmtp = audio.fmtp(111).unwrap();
    assert_eq!(fmtp.get("useinbandfec"), Some("1"));
    assert_eq!(fmtp.get("minptime"), Some("10"));
    let fb: Vec<String> = audio.rtcp_feedback(111).map(|f| f.to_string()).collect();
    assert_eq!(fb, ["111 transport-cc"]);
    let video = &sd.media[1];
    let nack: Vec<_> = video
        .rtcp_feedback(96)
        .filter(|f| f.feedback == "nack")
        .map(|f| f.param.clone())
        .collect();
    assert_eq!(nack, [None, Some("pli".to_string())]);
}

#[test]
fn rtcp_fb_wildcard_applies_to_every_payload_type() {
    let sd = sample("sdp-transform_normal");
    let video = &sd.media[1];
    assert!(video
        .rtcp_feedback(97)
        .any(|f| f.payload_type.is_none() && f.feedback == "nack"));
    assert_eq!(video.rtcp_feedback(98).count(), 3);
}

#[test]
fn static_payload_types_without_rtpmap_are_recognised() {
    let sd = with_media("").unwrap();
    let m = &sd.media[0];
    assert_eq!(m.codec(0), Some(Codec::PCMU));
    assert_eq!(m.codec(8), Some(Codec::PCMA));
    assert_eq!(Codec::from_static_payload_type(9), Some(Codec::G722));
    assert_eq!(m.codec(96), None, "dynamic without rtpmap is unknown");
}

#[test]
fn rtpmap_with_explicit_single_channel_equals_codec_without() {
    let sd = sample("firefox121_offer_audio_video");
    assert_eq!(sd.media[0].codec(9), Some(Codec::G722));
    assert_eq!(sd.media[0].codec(101), Some(Codec::TELEPHONE_EVENT_8000));
}

#[test]
fn direction_is_typed_and_defaults_to_sendrecv() {
    let obs = sample("obs30_whip_offer_audio_video");
    assert_eq!(obs.media[0].direction(), Some(Direction::SendOnly));
    assert_eq!(obs.direction_for(&obs.media[0]), Direction::SendOnly);
    let plain = sample("rfc3665_sip_rtpavp_pcmu_offer");
    assert_eq!(plain.media[0].direction(), None);
    assert_eq!(plain.direction_for(&plain.media[0]), Direction::SendRecv);
    assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
}

#[test]
fn bundle_group_and_mids_are_read() {
    let sd = sample("sdp-transform_jsep");
    assert_eq!(sd.bundle_group().unwrap().mids, ["a1", "v1"]);
    assert_eq!(sd.media[1].mid(), Some("v1"));
    assert!(sd.media_by_mid("a1").is_some());
    let obs = sample("obs30_whip_offer_audio_video");
    assert_eq!(obs.groups().count(), 2);
}

#[test]
fn ice_credentials_and_options_are_read_per_media_or_session() {
    let chrome = sample("chromium120_offer_audio_video");
    let audio = &chrome.media[0];
    assert_eq!(audio.ice_ufrag(), Some("nWnq"));
    assert_eq!(
        audio.ice_pwd().unwrap().expose(),
        "DTdCVj00s9nGkNgWra0P30A2"
    );
    assert_eq!(audio.ice_options(), Some("trickle"));
    assert!(!chrome.ice_lite());

    let obs = sample("obs30_whip_offer_audio_video");
    assert_eq!(obs.media[0].ice_ufrag(), None);
    assert_eq!(obs.ice_ufrag_for(&obs.media[0]), Some("v3f/"));
    assert_eq!(
        obs.ice_pwd_for(&obs.media[0]).unwrap().expose(),
        "4b+Ogzsq+Xx0AEkYvTvG/n"
    );
    assert_eq!(obs.ice_options(), Some("ice2,trickle"));
}

#[test]
fn ice_lite_flag_is_read() {
    let sd = SessionDescription::parse(&format!("{MINIMAL}a=ice-lite\r\n")).unwrap();
    assert!(sd.ice_lite());
}

#[test]
fn candidate_with_ipv6_address_parses() {
    let sd = sample("chromium156_debian_headless_audio_only_offer_with_candidates");
    let c: Vec<&Candidate> = sd.media[0].candidates().collect();
    assert_eq!(c.len(), 4);
    let v6 = c[1];
    assert_eq!(v6.foundation, "1411885529");
    assert_eq!(v6.component, 1);
    assert!(v6.is_udp());
    assert_eq!(v6.priority, 2122265343);
    assert_eq!(
        v6.ip(),
        Some(IpAddr::V6("fd00::2".parse::<Ipv6Addr>().unwrap()))
    );
    assert_eq!(v6.port, 50651);
    assert_eq!(v6.kind, CandidateType::Host);
    assert_eq!(v6.extension("network-id"), Some("2"));
}

#[test]
fn tcp_candidate_keeps_tcptype_extension() {
    let sd = sample("chromium156_debian_headless_audio_only_offer_with_candidates");
    let tcp = sd.media[0].candidates().nth(2).unwrap();
    assert!(!tcp.is_udp());
    assert_eq!(tcp.extension("tcptype"), Some("active"));
    assert_eq!(tcp.extensions[0], ("tcptype".into(), "active".into()));
}

#[test]
fn candidate_with_related_address_and_extensions_parses() {
    let sd = sample("sdp-transform_normal");
    let srflx = sd.media[0].candidates().nth(2).unwrap();
    assert_eq!(srflx.kind, CandidateType::Srflx);
    assert_eq!(srflx.related_address.as_deref(), Some("192.168.1.145"));
    assert_eq!(srflx.related_port, Some(54402));
    assert_eq!(srflx.extension("network-cost"), Some("10"));
    assert_eq!(srflx.transport, "UDP", "case kept as written");
}

#[test]
fn trickled_candidate_string_parses_with_or_without_prefix() {
    let bare = "1 1 udp 2122260223 192.0.2.5 50000 typ host generation 0";
    let a: Candidate = bare.parse().unwrap();
    let b: Candidate = format!("candidate:{bare}").parse().unwrap();
    let c: Candidate = format!("a=candidate:{bare}").parse().unwrap();
    assert_eq!(a, b);
    assert_eq!(a, c);
    assert_eq!(a.socket_addr(), Some("192.0.2.5:50000".parse().unwrap()));
    assert_eq!(a.to_string(), bare);
}

#[test]
fn mdns_candidate_address_is_kept_as_a_name() {
    let c: Candidate = "1 1 udp 1 6f1a2b3c-0000-4000-8000-000000000000.local 5000 typ host"
        .parse()
        .unwrap();
    assert_eq!(c.ip(), None);
    assert!(c.address.ends_with(".local"));
}

#[test]
fn candidate_errors_say_what_is_wrong() {
    let err = "1 1 udp 1 192.0.2.1 5000 host"
        .parse::<Candidate>()
        .unwrap_err();
    assert!(err.to_string().contains("at least 8 fields"), "{err}");
    let err = "1 1 udp 1 192.0.2.1 5000 kind host"
        .parse::<Candidate>()
        .unwrap_err();
    assert!(err.to_string().contains("`typ`"), "{err}");
    let err = "1 1 udp 1 192.0.2.1 70000 typ host"
        .parse::<Candidate>()
        .unwrap_err();
    assert!(err.to_string().contains("port"), "{err}");
    let err = "1 1 udp 1 192.0.2.1 5000 typ host generation"
        .parse::<Candidate>()
        .unwrap_err();
    assert!(err.to_string().contains("has no value"), "{err}");
}

#[test]
fn fingerprint_hex_is_decoded_to_bytes() {
    let sd = sample("chromium120_offer_audio_video");
    let fp = sd.media[0].fingerprints().next().unwrap();
    assert_eq!(fp.hash_function, "sha-256");
    assert_eq!(fp.bytes.len(), 32);
    assert_eq!(&fp.bytes[..3], &[0xA4, 0x67, 0x3A]);
}

#[test]
fn lowercase_fingerprint_serializes_as_received() {
    let sd = sample("sdp-transform_normal");
    let fp = sd.fingerprints().next().unwrap();
    assert_eq!(fp.hash_function, "sha-1");
    assert_eq!(fp.bytes.len(), 20);
    assert!(fp.to_string().starts_with("sha-1 42:89:c5:c6"));
}

#[test]
fn session_level_fingerprint_applies_to_media_without_its_own() {
    let sd = sample("firefox121_offer_audio_video");
    assert_eq!(sd.media[0].fingerprints().count(), 0);
    let fps = sd.fingerprints_for(&sd.media[0]);
    assert_eq!(fps.len(), 1);
    assert_eq!(fps[0].bytes[0], 0x75);
}

#[test]
fn setup_rtcp_mux_and_rtcp_attribute_are_typed() {
    let sd = sample("sdp-transform_jsep");
    let audio = &sd.media[0];
    assert_eq!(audio.setup(), Some(Setup::Actpass));
    assert_eq!(Setup::Actpass.answer(), Setup::Active);
    assert!(audio.rtcp_mux());
    let rtcp = audio.rtcp().unwrap();
    assert_eq!(rtcp.port, 56501);
    assert_eq!(
        rtcp.connection.as_ref().and_then(|c| c.ip()),
        Some(IpAddr::from([192, 0, 2, 1]))
    );
    let obs = sample("obs30_whip_offer_audio_video");
    assert_eq!(obs.setup_for(&obs.media[0]), Some(Setup::Actpass));
}

#[test]
fn ptime_and_maxptime_are_read() {
    assert_eq!(sample("sdp-transform_normal").media[0].ptime(), Some(20));
    assert_eq!(sample("sdp-transform_jsep").media[0].maxptime(), Some(120));
}

#[test]
fn ssrc_lines_are_split_into_id_attribute_and_value() {
    let sd = sample("sdp-transform_normal");
    let ssrcs: Vec<_> = sd.media[1].ssrcs().collect();
    assert_eq!(ssrcs.len(), 3);
    assert_eq!(ssrcs[0].ssrc, 1399694169);
    assert_eq!(
        (ssrcs[0].attribute.as_str(), ssrcs[0].value.as_deref()),
        ("foo", Some("bar"))
    );
    assert_eq!(
        (ssrcs[1].attribute.as_str(), ssrcs[1].value.as_deref()),
        ("baz", None)
    );
    let chrome = sample("chromium120_offer_audio_video");
    let msid = chrome.media[0].ssrcs().nth(1).unwrap();
    assert_eq!(msid.attribute, "msid");
    assert_eq!(
        msid.value.as_deref(),
        Some("- 06574f1e-f4bf-4b6d-b66c-3493cd7ab50f")
    );
}

#[test]
fn crypto_line_parses_and_its_key_is_redacted_in_debug() {
    let sd = sample("sdp-transform_normal");
    let c = sd.media[1].crypto().next().unwrap();
    assert_eq!(c.tag, 1);
    assert_eq!(c.suite, "AES_CM_128_HMAC_SHA1_32");
    assert!(c.key_params.expose().starts_with("inline:keNcG3"));
    let debug = format!("{sd:?}");
    assert!(!debug.contains("keNcG3"), "SDES key leaked into Debug");
    assert!(!debug.contains("x9cml"), "ICE password leaked into Debug");
    assert!(sd.to_string().contains("inline:keNcG3"));
}

#[test]
fn extmap_with_direction_parses() {
    let sd = sample("firefox121_offer_audio_video");
    let ext: Vec<_> = sd.media[0].extmaps().collect();
    assert_eq!(ext.len(), 3);
    assert_eq!(ext[1].id, 2);
    assert_eq!(ext[1].direction, Some(Direction::RecvOnly));
    assert_eq!(ext[1].uri, "urn:ietf:params:rtp-hdrext:csrc-audio-level");
}

#[test]
fn unknown_attributes_are_kept_verbatim_in_order() {
    let sd = sample("chromium120_offer_audio_video");
    let other: Vec<String> = sd
        .attributes()
        .filter(|a| matches!(a, Attribute::Other { .. }))
        .map(|a| a.to_string())
        .collect();
    assert_eq!(other, ["extmap-allow-mixed", "msid-semantic: WMS"]);
    assert!(sd.media[1].has_attribute("rtcp-rsize"));
}

#[test]
fn out_of_order_connection_stays_where_it_was() {
    let sd = sample("sdp-transform_normal");
    let kinds: String = sd.lines.iter().take(2).map(|l| l.kind()).collect();
    assert_eq!(kinds, "tc");
}

#[test]
fn empty_input_is_rejected() {
    assert_eq!(SessionDescription::parse(""), Err(SdpError::Empty));
    assert_eq!(SessionDescription::parse("\r\n\r\n"), Err(SdpError::Empty));
}

#[test]
fn description_must_start_with_version_zero() {
    let err = SessionDescription::parse("o=- 1 1 IN IP4 x\r\n").unwrap_err();
    assert_eq!(err, SdpError::BadVersion { line: 1 });
    let err = SessionDescription::parse("v=1\r\no=- 1 1 IN IP4 x\r\ns=-\r\n").unwrap_err();
    assert_eq!(err.line(), Some(1));
}

#[test]
fn missing_origin_or_session_name_is_reported() {
    assert_eq!(
        SessionDescription::parse("v=0\r\n"),
        Err(SdpError::Missing { kind: 'o' })
    );
    assert_eq!(
        SessionDescription::parse("v=0\r\no=- 1 1 IN IP4 x\r\n"),
        Err(SdpError::Missing { kind: 's' })
    );
    let err = SessionDescription::parse("v=0\r\ns=-\r\no=- 1 1 IN IP4 x\r\n").unwrap_err();
    assert!(
        matches!(
            err,
            SdpError::Misplaced {
                line: 2,
                kind: 's',
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn line_without_equals_sign_reports_its_line_number() {
    let err = SessionDescription::parse(&format!("{MINIMAL}garbage\r\n")).unwrap_err();
    assert_eq!(err.line(), Some(5));
    assert!(err.to_string().starts_with("line 5:"), "{err}");
}

#[test]
fn payload_type_above_127_is_rejected_with_its_line() {
    let err = with_media("a=rtpmap:200 foo/8000\r\n").unwrap_err();
    assert_eq!(err.line(), Some(6));
    assert_eq!(
        err.to_string(),
        "line 6: `a=rtpmap`: payload type 200 is above 127"
    );
    let err =
        SessionDescription::parse(&format!("{MINIMAL}m=audio 4000 RTP/AVP 0 300\r\n")).unwrap_err();
    assert!(err.to_string().contains("`m=`: payload type 300"), "{err}");
}

#[test]
fn malformed_known_attributes_are_rejected_with_a_reason() {
    let cases = [
        ("a=fingerprint:sha-256 ZZ:00\r\n", "not a hex byte"),
        ("a=setup:maybe\r\n", "not actpass"),
        ("a=ptime:twenty\r\n", "not a number"),
        ("a=sendrecv:yes\r\n", "takes no value"),
        ("a=rtpmap\r\n", "value is missing"),
        ("a=rtpmap:96 opus\r\n", "clock rate is missing"),
        ("a=extmap:1/sideways urn:x\r\n", "not a direction"),
        ("a=mid:\r\n", "value is empty"),
    ];
    for (line, why) in cases {
        let err = with_media(line).unwrap_err();
        assert_eq!(err.line(), Some(6), "{line}");
        assert!(err.to_string().contains(why), "{line}: {err}");
    }
}

#[test]
fn invalid_crypto_line_does_not_echo_the_key() {
    let err = with_media("a=crypto:x AES_CM_128_HMAC_SHA1_80 inline:SECRETKEY\r\n").unwrap_err();
    assert!(!err.to_string().contains("SECRETKEY"), "{err}");
}

#[test]
fn session_only_lines_inside_a_media_section_are_rejected() {
    let err = with_media("t=0 0\r\n").unwrap_err();
    assert!(
        matches!(
            err,
            SdpError::Misplaced {
                line: 6,
                kind: 't',
                ..
            }
        ),
        "{err}"
    );
    let err = with_media("o=- 1 1 IN IP4 x\r\n").unwrap_err();
    assert!(
        matches!(err, SdpError::Misplaced { kind: 'o', .. }),
        "{err}"
    );
}

#[test]
fn stray_carriage_return_or_nul_inside_a_line_is_rejected() {
    let err = with_media("a=foo\rbar\r\n").unwrap_err();
    assert_eq!(
        err,
        SdpError::ControlCharacter {
            line: 6,
            byte: b'\r'
        }
    );
    let err = with_media("a=foo\0\r\n").unwrap_err();
    assert_eq!(err, SdpError::ControlCharacter { line: 6, byte: 0 });
}

#[test]
fn extra_spaces_between_fields_are_tolerated() {
    let sd = with_media("a=rtpmap:96  opus/48000/2\r\nc=IN  IP4   192.0.2.9\r\n").unwrap();
    assert_eq!(
        sd.media[0].rtpmap(96).unwrap().to_string(),
        "96 opus/48000/2"
    );
    assert_eq!(
        sd.media[0].connection().unwrap().ip(),
        Some(IpAddr::from([192, 0, 2, 9]))
    );
}

#[test]
fn non_utf8_bytes_are_rejected_with_their_line() {
    let mut body = MINIMAL.as_bytes().to_vec();
    body.extend_from_slice(b"a=tool:\xff\xfe\r\n");
    assert_eq!(
        SessionDescription::parse_bytes(&body),
        Err(SdpError::NotUtf8 { line: 5 })
    );
    assert!(SessionDescription::parse_bytes(MINIMAL.as_bytes()).is_ok());
}
