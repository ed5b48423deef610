//! SDP for the two legs: what the browser offered and may be answered, the plain RTP/AVP offer
//! to the upstream, and what the upstream answered. Pure functions over `shared::sdp`.

use std::net::{IpAddr, SocketAddr};

use shared::control::ControlError;

use crate::leg::BrowserSdp;
use shared::sdp::{
    answer_codecs, offered_codecs, Attribute, Codec, Connection, Direction, Media,
    MediaDescription, MediaType, Origin, PayloadCodec, Proto, SessionDescription,
};

/// The audio section of a browser offer, checked: what its browser leg needs and the codecs
/// the node can answer.
#[derive(Debug, Clone)]
pub struct BrowserOffer {
    /// ICE credentials, fingerprints, setup, mid and direction, for the browser leg.
    pub leg: BrowserSdp,
    /// Codecs both the browser and the bridge have, in the browser's order, with its PTs.
    pub codecs: Vec<PayloadCodec>,
}

/// Checks a browser offer (parsed once): one usable DTLS-SRTP audio section with ICE
/// credentials, a usable fingerprint and a mid, and at least one codec the bridge relays.
pub fn browser_offer(text: &str) -> Result<BrowserOffer, ControlError> {
    let sdp: SessionDescription = text
        .parse()
        .map_err(|e| ControlError::bad_sdp(format!("browser offer: {e}")))?;
    let audio = sdp
        .media
        .iter()
        .find(|m| m.media.media_type == MediaType::Audio && !m.is_rejected())
        .ok_or_else(|| ControlError::bad_sdp("browser offer has no active audio section"))?;
    if !audio.media.proto.is_dtls_srtp() {
        return Err(ControlError::bad_sdp(format!(
            "browser offer's audio uses {}; WebRTC browsers offer UDP/TLS/RTP/SAVPF",
            audio.media.proto
        )));
    }
    let leg =
        BrowserSdp::from_parsed_offer(&sdp).map_err(|e| ControlError::bad_sdp(e.to_string()))?;
    let codecs = answer_codecs(audio, &Codec::BRIDGE_AUDIO);
    if !codecs.iter().any(|c| !c.codec.is_auxiliary()) {
        return Err(ControlError::bad_sdp(
            "no audio codec in common: the node relays PCMU, PCMA, G722 and opus",
        ));
    }
    Ok(BrowserOffer { leg, codecs })
}

/// The plain RTP/AVP offer to the upstream: the node's address and RTP port, `codecs` with the
/// browser's payload type numbers, sendrecv, 20 ms packets.
pub fn upstream_offer(
    ip: IpAddr,
    rtp_port: u16,
    codecs: &[PayloadCodec],
    session_id: u64,
    version: u64,
) -> String {
    plain_audio(ip, rtp_port, codecs, false, session_id, version)
}

/// The plain RTP/AVP answer to an upstream's offer (an inbound call): the node's address and
/// RTP port, `codecs` with the upstream's payload type numbers, sendrecv, 20 ms packets, and
/// `a=rtcp-mux` when the upstream offered it.
pub fn upstream_inbound_answer(
    ip: IpAddr,
    rtp_port: u16,
    codecs: &[PayloadCodec],
    rtcp_mux: bool,
    session_id: u64,
) -> String {
    plain_audio(ip, rtp_port, codecs, rtcp_mux, session_id, 1)
}

fn plain_audio(
    ip: IpAddr,
    rtp_port: u16,
    codecs: &[PayloadCodec],
    rtcp_mux: bool,
    session_id: u64,
    version: u64,
) -> String {
    let mut sdp = SessionDescription::new(Origin::new(session_id.to_string(), version, ip));
    sdp.set_connection(Connection::from_ip(ip));
    let pts: Vec<u8> = codecs.iter().map(|c| c.payload_type).collect();
    let mut audio =
        MediaDescription::new(Media::rtp(MediaType::Audio, rtp_port, Proto::RtpAvp, &pts));
    audio.set_codecs(codecs);
    audio.push_attribute(Attribute::Ptime(20));
    if rtcp_mux {
        audio.push_attribute(Attribute::RtcpMux);
    }
    audio.set_direction(Direction::SendRecv);
    sdp.media.push(audio);
    sdp.to_string()
}

/// What an upstream offered for an inbound call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamOffer {
    /// Codecs the node relays, in the upstream's order, with its payload type numbers
    /// (telephone-event only at the rate of a kept audio codec).
    pub codecs: Vec<PayloadCodec>,
    /// Where the upstream receives RTP (`None` for a `0.0.0.0` hold address).
    pub remote: Option<SocketAddr>,
    /// Where it receives RTCP (see [`UpstreamAnswer::rtcp`]).
    pub rtcp: Option<SocketAddr>,
    /// Whether it offered `a=rtcp-mux`.
    pub rtcp_mux: bool,
}

/// Checks an upstream's offer for an inbound call: plain RTP/AVP audio, an address, and at
/// least one codec the node relays (PCMU, PCMA, G722, opus).
pub fn upstream_inbound_offer(text: &str) -> Result<UpstreamOffer, ControlError> {
    let sdp: SessionDescription = text
        .parse()
        .map_err(|e| ControlError::bad_sdp(format!("upstream offer: {e}")))?;
    let audio = sdp
        .media
        .iter()
        .find(|m| m.media.media_type == MediaType::Audio && !m.is_rejected())
        .ok_or_else(|| ControlError::bad_sdp("upstream offer has no active audio section"))?;
    if audio.media.proto != Proto::RtpAvp {
        return Err(ControlError::bad_sdp(format!(
            "upstream offer's audio uses {}; the node takes plain RTP/AVP from the upstream",
            audio.media.proto
        )));
    }
    let codecs = answer_codecs(audio, &Codec::BRIDGE_AUDIO);
    if !codecs.iter().any(|c| !c.codec.is_auxiliary()) {
        return Err(ControlError::bad_sdp(
            "no audio codec in common: the node relays PCMU, PCMA, G722 and opus",
        ));
    }
    let (remote, rtcp, rtcp_mux) = addresses(&sdp, audio, "upstream offer")?;
    Ok(UpstreamOffer {
        codecs,
        remote,
        rtcp,
        rtcp_mux,
    })
}

/// The payload types a browser accepted in its answer to the node's offer.
pub fn browser_answer_payload_types(text: &str) -> Result<Vec<u8>, ControlError> {
    let sdp: SessionDescription = text
        .parse()
        .map_err(|e| ControlError::bad_sdp(format!("browser answer: {e}")))?;
    let audio = sdp
        .media
        .iter()
        .find(|m| m.media.media_type == MediaType::Audio)
        .ok_or_else(|| ControlError::bad_sdp("browser answer has no audio section"))?;
    if audio.is_rejected() {
        return Err(ControlError::bad_sdp("browser rejected the audio (port 0)"));
    }
    if !audio.media.proto.is_dtls_srtp() {
        return Err(ControlError::bad_sdp(format!(
            "browser answer's audio uses {}; expected UDP/TLS/RTP/SAVPF",
            audio.media.proto
        )));
    }
    Ok(audio.payload_types().collect())
}

/// RTP address, RTCP address and rtcp-mux of a plain audio section.
fn addresses(
    sdp: &SessionDescription,
    audio: &MediaDescription,
    what: &str,
) -> Result<(Option<SocketAddr>, Option<SocketAddr>, bool), ControlError> {
    let ip = sdp
        .connection_for(audio)
        .and_then(Connection::ip)
        .ok_or_else(|| ControlError::bad_sdp(format!("{what} has no usable c= address")))?;
    let remote = match audio.port() {
        Some(port) if !ip.is_unspecified() => Some(SocketAddr::new(ip, port)),
        _ => None,
    };
    let rtcp_mux = audio.rtcp_mux();
    let rtcp = remote.and_then(|rtp| {
        if rtcp_mux {
            return Some(rtp);
        }
        match audio.rtcp() {
            Some(a) => {
                let ip = a
                    .connection
                    .as_ref()
                    .and_then(Connection::ip)
                    .unwrap_or(rtp.ip());
                Some(SocketAddr::new(ip, a.port))
            }
            None => rtp
                .port()
                .checked_add(1)
                .map(|p| SocketAddr::new(rtp.ip(), p)),
        }
    });
    Ok((remote, rtcp, rtcp_mux))
}

/// What the upstream answered: where it receives RTP and the codecs it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamAnswer {
    /// Address from `c=` and the `m=` port (RTP is sent here until the peer's real source is
    /// latched); `None` for a `0.0.0.0` hold address.
    pub remote: Option<SocketAddr>,
    /// Accepted codecs with the upstream's payload type numbers.
    pub codecs: Vec<PayloadCodec>,
    /// Where the upstream takes RTCP: `remote` itself with `a=rtcp-mux`, the `a=rtcp`
    /// port (and address) if given, else the RTP port + 1 (RFC 3550 §11).
    pub rtcp: Option<SocketAddr>,
    /// Whether the upstream multiplexes RTCP on its RTP port (`a=rtcp-mux`).
    pub rtcp_mux: bool,
}

/// Reads the upstream's answer to an offer of `offered` codecs.
pub fn upstream_answer(
    text: &str,
    offered: &[PayloadCodec],
) -> Result<UpstreamAnswer, ControlError> {
    let sdp: SessionDescription = text
        .parse()
        .map_err(|e| ControlError::bad_sdp(format!("upstream answer: {e}")))?;
    let audio = sdp
        .media
        .iter()
        .find(|m| m.media.media_type == MediaType::Audio)
        .ok_or_else(|| ControlError::bad_sdp("upstream answer has no audio section"))?;
    if audio.is_rejected() {
        return Err(ControlError::bad_sdp(
            "upstream rejected the audio (port 0)",
        ));
    }
    let codecs: Vec<PayloadCodec> = offered_codecs(audio)
        .into_iter()
        .filter(|c| offered.iter().any(|o| o.codec == c.codec))
        .collect();
    if !codecs.iter().any(|c| !c.codec.is_auxiliary()) {
        return Err(ControlError::bad_sdp(
            "upstream answer accepts none of the offered audio codecs",
        ));
    }
    let (remote, rtcp, rtcp_mux) = addresses(&sdp, audio, "upstream answer")?;
    Ok(UpstreamAnswer {
        remote,
        codecs,
        rtcp,
        rtcp_mux,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const CHROMIUM_OFFER: &str =
        include_str!("../../tests/data/chromium156_audio_offer.sdp");

    #[test]
    fn chromium_offer_keeps_the_relayable_codecs_in_its_order() {
        let offer = browser_offer(CHROMIUM_OFFER).unwrap();
        let pts: Vec<u8> = offer.codecs.iter().map(|c| c.payload_type).collect();
        assert_eq!(pts, [111, 9, 0, 8, 110, 126]);
        assert_eq!(offer.leg.mid, "0");
    }

    #[test]
    fn unusable_browser_offers_say_why() {
        let plain = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n\
                     m=audio 4000 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\n";
        assert!(browser_offer(plain)
            .unwrap_err()
            .to_string()
            .contains("UDP/TLS/RTP/SAVPF"));
        assert!(matches!(
            browser_offer("hello"),
            Err(ControlError::BadSdp { .. })
        ));
        let video_codecs_only = CHROMIUM_OFFER.replace(
            "m=audio 58477 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
            "m=audio 58477 UDP/TLS/RTP/SAVPF 63 13",
        );
        assert!(browser_offer(&video_codecs_only)
            .unwrap_err()
            .to_string()
            .contains("no audio codec"));
        // What the browser leg needs is checked in the same pass.
        let strip = |prefix: &str| {
            CHROMIUM_OFFER
                .lines()
                .filter(|l| !l.starts_with(prefix))
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        };
        for (prefix, why) in [
            ("a=fingerprint", "a=fingerprint"),
            ("a=ice-ufrag", "a=ice-ufrag"),
            ("a=mid", "a=mid"),
        ] {
            let error = browser_offer(&strip(prefix)).unwrap_err().to_string();
            assert!(error.contains(why), "{prefix}: {error}");
        }
    }

    #[test]
    fn upstream_offer_is_plain_rtp_avp_on_the_given_port() {
        let codecs = browser_offer(CHROMIUM_OFFER).unwrap().codecs;
        let text = upstream_offer("192.0.2.9".parse().unwrap(), 40_002, &codecs, 7, 1);
        let sdp: SessionDescription = text.parse().unwrap();
        let audio = &sdp.media[0];
        assert_eq!(audio.media.proto, Proto::RtpAvp);
        assert_eq!(audio.port(), Some(40_002));
        assert_eq!(
            audio.payload_types().collect::<Vec<_>>(),
            [111, 9, 0, 8, 110, 126]
        );
        assert_eq!(
            sdp.connection_for(audio).and_then(Connection::ip),
            Some("192.0.2.9".parse().unwrap())
        );
        assert!(!text.contains("ice-"), "{text}");
        assert!(!text.contains("fingerprint"), "{text}");
    }

    #[test]
    fn upstream_answer_gives_address_and_accepted_codecs() {
        let offered = browser_offer(CHROMIUM_OFFER).unwrap().codecs;
        let answer =
            "v=0\r\no=- 1 1 IN IP4 198.51.100.4\r\ns=-\r\nc=IN IP4 198.51.100.4\r\nt=0 0\r\n\
                      m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
        let parsed = upstream_answer(answer, &offered).unwrap();
        assert_eq!(parsed.remote, Some("198.51.100.4:30000".parse().unwrap()));
        assert_eq!(parsed.rtcp, Some("198.51.100.4:30001".parse().unwrap()));
        assert!(!parsed.rtcp_mux);
        let with_rtcp = answer.replace("a=rtpmap", "a=rtcp:30011\r\na=rtpmap");
        let parsed = upstream_answer(&with_rtcp, &offered).unwrap();
        assert_eq!(parsed.rtcp, Some("198.51.100.4:30011".parse().unwrap()));
        let muxed = answer.replace("a=rtpmap", "a=rtcp-mux\r\na=rtpmap");
        let parsed = upstream_answer(&muxed, &offered).unwrap();
        assert_eq!(parsed.rtcp, parsed.remote);
        assert!(parsed.rtcp_mux);
        let pts: Vec<u8> = parsed.codecs.iter().map(|c| c.payload_type).collect();
        assert_eq!(pts, [0, 101]);
        let rejected = answer.replace("m=audio 30000", "m=audio 0");
        assert!(upstream_answer(&rejected, &offered).is_err());
        let only_g729 = answer.replace("RTP/AVP 0 101", "RTP/AVP 18");
        assert!(upstream_answer(&only_g729, &offered).is_err());
    }
}
