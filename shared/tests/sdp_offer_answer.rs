//! RFC 3264 codec intersection, payload type mapping between legs, and the mutators used to build an
//! answer or rewrite a description for the other leg.

use std::net::{IpAddr, SocketAddr};

use shared::sdp::{
    answer_codecs, offered_codecs, Attribute, Candidate, Codec, Connection, Direction, Fingerprint,
    Line, Media, MediaDescription, MediaType, Origin, PayloadTypeMap, Proto, Secret,
    SessionDescription, Setup,
};

fn sample(name: &str) -> SessionDescription {
    let path = format!("{}/tests/data/sdp/{name}.sdp", env!("CARGO_MANIFEST_DIR"));
    SessionDescription::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn audio_offer(m_line: &str, attrs: &str) -> SessionDescription {
    SessionDescription::parse(&format!(
        "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n{m_line}\r\n{attrs}"
    ))
    .unwrap()
}

fn pts(codecs: &[shared::sdp::PayloadCodec]) -> Vec<u8> {
    codecs.iter().map(|c| c.payload_type).collect()
}

#[test]
fn answer_keeps_offerer_payload_type_numbers() {
    let offer = sample("firefox121_offer_audio_video");
    let answer = answer_codecs(&offer.media[0], &Codec::BRIDGE_AUDIO);
    assert_eq!(pts(&answer), [109, 9, 0, 8, 101]);
    assert_eq!(answer[0].codec, Codec::OPUS);
    assert_eq!(answer[4].codec, Codec::TELEPHONE_EVENT_8000);
}

#[test]
fn answer_keeps_offerer_preference_order() {
    let offer = audio_offer("m=audio 4000 RTP/AVP 8 0 9", "");
    let supported = [Codec::PCMU, Codec::G722, Codec::PCMA];
    assert_eq!(pts(&answer_codecs(&offer.media[0], &supported)), [8, 0, 9]);
}

#[test]
fn answer_drops_codecs_the_answerer_does_not_support() {
    let offer = sample("chromium120_offer_audio_video");
    let answer = answer_codecs(&offer.media[0], &Codec::BRIDGE_AUDIO);
    // red (63) and CN (13) are not bridged.
    assert_eq!(pts(&answer), [111, 9, 0, 8, 110, 126]);
    assert_eq!(
        answer[0].fmtp.as_deref(),
        Some("minptime=10;useinbandfec=1")
    );
}

#[test]
fn answer_keeps_telephone_event_only_at_a_kept_clock_rate() {
    let offer = sample("chromium120_offer_audio_video");
    let answer = answer_codecs(
        &offer.media[0],
        &[
            Codec::PCMU,
            Codec::TELEPHONE_EVENT_8000,
            Codec::TELEPHONE_EVENT_48000,
        ],
    );
    assert_eq!(
        pts(&answer),
        [0, 126],
        "telephone-event/48000 (110) has no 48 kHz codec"
    );
}

#[test]
fn answer_is_empty_when_no_audio_codec_is_common() {
    let offer = audio_offer(
        "m=audio 4000 RTP/AVP 18 101",
        "a=rtpmap:18 G729/8000\r\na=rtpmap:101 telephone-event/8000\r\n",
    );
    assert!(answer_codecs(&offer.media[0], &Codec::BRIDGE_AUDIO).is_empty());
}

#[test]
fn static_payload_types_without_rtpmap_take_part_in_the_answer() {
    let offer = audio_offer("m=audio 4000 RTP/AVP 0 8 9 13", "");
    let answer = answer_codecs(&offer.media[0], &Codec::BRIDGE_AUDIO);
    assert_eq!(pts(&answer), [0, 8, 9]);
    assert_eq!(answer[2].codec, Codec::G722);
}

#[test]
fn dynamic_payload_type_without_rtpmap_is_not_offered() {
    let offer = audio_offer("m=audio 4000 RTP/AVP 0 96", "");
    assert_eq!(pts(&offered_codecs(&offer.media[0])), [0]);
}

#[test]
fn codec_names_match_case_insensitively() {
    let offer = sample("obs30_whip_offer_audio_video");
    let answer = answer_codecs(&offer.media[0], &[Codec::OPUS]);
    assert_eq!(pts(&answer), [111]);
    assert_eq!(answer[0].codec.name, "OPUS");
}

#[test]
fn payload_type_map_translates_telephone_event_between_legs() {
    let upstream = audio_offer(
        "m=audio 4000 RTP/AVP 0 101",
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n",
    );
    let browser = sample("chromium156_debian_headless_audio_only_offer_with_candidates");
    let up = answer_codecs(&upstream.media[0], &Codec::BRIDGE_AUDIO);
    let br = answer_codecs(&browser.media[0], &Codec::BRIDGE_AUDIO);
    let map = PayloadTypeMap::between(&up, &br);
    assert_eq!(map.a_to_b(101), Some(126));
    assert_eq!(map.b_to_a(126), Some(101));
    assert_eq!(map.a_to_b(0), Some(0));
    assert_eq!(map.b_to_a(111), None, "opus is not on the upstream leg");
    assert_eq!(map.pairs(), [(0, 0), (101, 126)]);
}

#[test]
fn payload_type_map_is_empty_without_common_codecs() {
    let a = audio_offer("m=audio 4000 RTP/AVP 0", "");
    let b = audio_offer("m=audio 4000 RTP/AVP 8", "");
    let map = PayloadTypeMap::between(&offered_codecs(&a.media[0]), &offered_codecs(&b.media[0]));
    assert!(map.is_empty());
}

#[test]
fn set_connection_replaces_the_existing_line_in_place() {
    let mut sd = sample("sdp-transform_normal");
    sd.set_connection(Connection::from_ip(IpAddr::from([198, 51, 100, 7])));
    assert_eq!(sd.lines[1].to_string(), "c=IN IP4 198.51.100.7");
    assert_eq!(sd.lines.iter().filter(|l| l.kind() == 'c').count(), 1);
}

#[test]
fn set_connection_inserts_before_attributes_when_absent() {
    let mut sd = sample("chromium120_offer_audio_video");
    let audio = &mut sd.media[0];
    audio.lines.retain(|l| l.kind() != 'c');
    audio.set_connection(Connection::from_ip("2001:db8::7".parse().unwrap()));
    assert_eq!(audio.lines[0].to_string(), "c=IN IP6 2001:db8::7");
}

#[test]
fn set_port_rewrites_the_media_line() {
    let mut sd = sample("sipp361_uac_builtin_template");
    sd.media[0].set_port(30000);
    assert_eq!(sd.media[0].media.to_string(), "audio 30000 RTP/AVP 0");
}

#[test]
fn set_ice_credentials_replaces_them_in_place() {
    let mut sd = sample("chromium120_offer_audio_video");
    let audio = &mut sd.media[0];
    let before: Vec<char> = audio.lines.iter().map(Line::kind).collect();
    audio.set_ice_credentials("node", Secret::new("0123456789abcdefghijkl"));
    let after: Vec<char> = audio.lines.iter().map(Line::kind).collect();
    assert_eq!(before, after);
    assert_eq!(audio.lines[2].to_string(), "a=ice-ufrag:node");
    assert_eq!(
        audio.lines[3].to_string(),
        "a=ice-pwd:0123456789abcdefghijkl"
    );
}

#[test]
fn set_candidates_replaces_all_and_marks_gathering_complete() {
    let mut sd = sample("chromium156_debian_headless_audio_only_offer_with_candidates");
    let addr: SocketAddr = "203.0.113.10:40000".parse().unwrap();
    sd.media[0].set_candidates([Candidate::host("1", addr)], true);
    let cands: Vec<_> = sd.media[0].candidates().collect();
    assert_eq!(cands.len(), 1);
    assert_eq!(cands[0].socket_addr(), Some(addr));
    assert!(sd.media[0].end_of_candidates());
    // Written where the first old candidate was: right after `a=rtcp`.
    assert_eq!(
        sd.media[0].lines[2].to_string(),
        "a=candidate:1 1 udp 2130706431 203.0.113.10 40000 typ host"
    );
    assert_eq!(sd.media[0].lines[3].to_string(), "a=end-of-candidates");
}

#[test]
fn set_fingerprint_and_setup_replace_the_offerers() {
    let mut sd = sample("firefox121_offer_audio_video");
    sd.set_fingerprint(Fingerprint::new("sha-256", vec![0xAB; 32]));
    sd.media[0].set_setup(Setup::Passive);
    let fps: Vec<String> = sd.fingerprints().map(|f| f.to_string()).collect();
    assert_eq!(fps.len(), 1);
    assert!(fps[0].starts_with("sha-256 AB:AB:"));
    assert_eq!(sd.media[0].setup(), Some(Setup::Passive));
    assert_eq!(sd.setup_for(&sd.media[1]), Some(Setup::Actpass));
}

#[test]
fn retain_payload_types_drops_their_attributes() {
    let mut sd = sample("chromium120_offer_audio_video");
    let audio = &mut sd.media[0];
    audio.retain_payload_types(|pt| pt == 0 || pt == 126);
    assert_eq!(audio.payload_types().collect::<Vec<_>>(), [0, 126]);
    assert!(audio.rtpmap(111).is_none());
    assert!(audio.fmtp(111).is_none());
    assert_eq!(audio.rtcp_feedback(111).count(), 0);
    assert!(audio.rtpmap(126).is_some());
    assert!(audio.ssrcs().count() == 2, "unrelated lines stay");
}

#[test]
fn set_codecs_rewrites_formats_rtpmaps_and_fmtps() {
    let mut sd = sample("chromium120_offer_audio_video");
    let answer = answer_codecs(&sd.media[0], &[Codec::OPUS, Codec::TELEPHONE_EVENT_48000]);
    sd.media[0].set_codecs(&answer);
    let audio = &sd.media[0];
    assert_eq!(audio.media.to_string(), "audio 9 UDP/TLS/RTP/SAVPF 111 110");
    let codec_lines: Vec<String> = audio
        .attributes()
        .filter(|a| {
            matches!(
                a,
                Attribute::Rtpmap(_) | Attribute::Fmtp(_) | Attribute::RtcpFb(_)
            )
        })
        .map(|a| a.to_string())
        .collect();
    assert_eq!(
        codec_lines,
        [
            "rtpmap:111 opus/48000/2",
            "fmtp:111 minptime=10;useinbandfec=1",
            "rtpmap:110 telephone-event/48000",
            "rtcp-fb:111 transport-cc",
        ]
    );
}

#[test]
fn bridge_answer_to_a_browser_offer_round_trips() {
    let offer = sample("chromium156_debian_headless_audio_only_offer_with_candidates");
    let om = &offer.media[0];
    let node: SocketAddr = "203.0.113.10:40000".parse().unwrap();

    let mut answer = SessionDescription::new(Origin::new("4242", 1, node.ip()));
    answer.set_ice_lite(true);
    let group = offer.bundle_group().cloned().unwrap();
    answer.push_attribute(Attribute::Group(group));
    let mut m = MediaDescription::new(Media::rtp(
        MediaType::Audio,
        node.port(),
        Proto::UdpTlsRtpSavpf,
        &[],
    ));
    m.set_connection(Connection::from_ip(node.ip()));
    m.push_attribute(Attribute::Mid(om.mid().unwrap().to_owned()));
    m.set_ice_credentials("node", Secret::new("0123456789abcdefghijkl"));
    m.set_fingerprint(Fingerprint::new("sha-256", vec![0x11; 32]));
    m.set_setup(offer.setup_for(om).unwrap().answer());
    m.set_direction(offer.direction_for(om).reversed());
    m.push_attribute(Attribute::RtcpMux);
    m.set_codecs(&answer_codecs(
        om,
        &[Codec::PCMU, Codec::PCMA, Codec::TELEPHONE_EVENT_8000],
    ));
    m.set_candidates([Candidate::host("1", node)], true);
    answer.media.push(m);

    let text = answer.to_string();
    let parsed = SessionDescription::parse(&text).unwrap();
    assert_eq!(parsed, answer);
    let pm = &parsed.media[0];
    assert!(parsed.ice_lite());
    assert_eq!(pm.payload_types().collect::<Vec<_>>(), [0, 8, 126]);
    assert_eq!(pm.setup(), Some(Setup::Active));
    assert_eq!(pm.direction(), Some(Direction::SendRecv));
    assert_eq!(pm.port(), Some(40000));
    assert!(
        text.starts_with("v=0\r\no=- 4242 1 IN IP4 203.0.113.10\r\ns=-\r\nt=0 0\r\na=ice-lite\r\n")
    );
}
