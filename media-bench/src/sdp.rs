//! The little SDP the generator needs: where a plain RTP offer wants media, and the far end's
//! plain RTP/AVP answer.

use std::net::{IpAddr, SocketAddr};

/// The address of the first audio stream: its port from `m=audio`, its IP from the media-level
/// `c=` line, else the session-level one. `None` when either is missing or unparsable.
pub fn audio_address(sdp: &str) -> Option<SocketAddr> {
    let mut session_ip: Option<IpAddr> = None;
    let mut media: Option<(u16, Option<IpAddr>)> = None;
    for line in sdp.lines().map(str::trim_end) {
        if let Some(rest) = line.strip_prefix("m=") {
            if media.is_some() {
                break; // only the first audio stream
            }
            let mut fields = rest.split_whitespace();
            if fields.next() == Some("audio") {
                media = Some((fields.next()?.parse().ok()?, None));
            }
        } else if let Some(rest) = line.strip_prefix("c=") {
            let ip = rest
                .split_whitespace()
                .nth(2)?
                .split('/')
                .next()?
                .parse()
                .ok();
            match media.as_mut() {
                Some((_, media_ip)) => *media_ip = ip,
                None => session_ip = ip,
            }
        }
    }
    let (port, media_ip) = media?;
    Some(SocketAddr::new(media_ip.or(session_ip)?, port))
}

/// The far end's answer: PCMU only, 20 ms, its RTP at `addr`, its stream's `ssrc`.
pub fn far_end_answer(addr: SocketAddr, ssrc: u32, session: u64) -> String {
    let family = if addr.is_ipv4() { "IP4" } else { "IP6" };
    let ip = addr.ip();
    let port = addr.port();
    format!(
        "v=0\r\no=- {session} 1 IN {family} {ip}\r\ns=-\r\nc=IN {family} {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n\
         a=ssrc:{ssrc} cname:far-end-{session}\r\n"
    )
}

/// `sdp` with a session-level `a=group:BUNDLE <mid>` for its first `a=mid`, when it has no
/// `a=group` line. rtpengine 10.5's WebRTC answers carry `a=mid` but no BUNDLE group, which
/// browsers accept (they just do not bundle) and str0m refuses; with one m-line the group
/// changes nothing on the wire.
pub fn with_bundle_group(sdp: &str) -> String {
    if sdp.lines().any(|l| l.starts_with("a=group:")) {
        return sdp.to_owned();
    }
    let Some(mid) = sdp
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("a=mid:"))
    else {
        return sdp.to_owned();
    };
    let mut out = String::with_capacity(sdp.len() + 32);
    let mut added = false;
    for line in sdp.split_inclusive('\n') {
        if !added && line.starts_with("m=") {
            out.push_str(&format!("a=group:BUNDLE {mid}\r\n"));
            added = true;
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_without_a_bundle_group_gets_one_for_its_mid() {
        let answer = "v=0\r\ns=-\r\nt=0 0\r\nm=audio 1 UDP/TLS/RTP/SAVPF 0\r\na=mid:abc\r\n";
        assert_eq!(
            with_bundle_group(answer),
            "v=0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE abc\r\nm=audio 1 UDP/TLS/RTP/SAVPF 0\r\na=mid:abc\r\n"
        );
        let grouped = "v=0\r\na=group:BUNDLE 0\r\nm=audio 1 RTP/AVP 0\r\na=mid:0\r\n";
        assert_eq!(with_bundle_group(grouped), grouped);
        let no_mid = "v=0\r\nm=audio 1 RTP/AVP 0\r\n";
        assert_eq!(with_bundle_group(no_mid), no_mid);
    }

    #[test]
    fn the_media_level_connection_wins_over_the_session_one() {
        let sdp = "v=0\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 40002 RTP/AVP 0\r\n\
                   c=IN IP4 127.0.0.1\r\nm=audio 5 RTP/AVP 0\r\nc=IN IP4 10.9.9.9\r\n";
        assert_eq!(audio_address(sdp), "127.0.0.1:40002".parse().ok());
        let session_only = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 30000 RTP/AVP 0\r\n";
        assert_eq!(audio_address(session_only), "127.0.0.1:30000".parse().ok());
    }

    #[test]
    fn an_offer_without_audio_or_address_has_no_audio_address() {
        assert_eq!(audio_address("v=0\r\nc=IN IP4 127.0.0.1\r\n"), None);
        assert_eq!(audio_address("v=0\r\nm=audio 4000 RTP/AVP 0\r\n"), None);
        assert_eq!(
            audio_address("m=audio x RTP/AVP 0\r\nc=IN IP4 1.2.3.4"),
            None
        );
    }

    #[test]
    fn the_far_end_answer_points_at_its_socket() {
        let addr: SocketAddr = "127.0.0.1:41000".parse().unwrap_or_else(|_| unreachable!());
        let answer = far_end_answer(addr, 42, 7);
        assert_eq!(audio_address(&answer), Some(addr));
        assert!(answer.contains("m=audio 41000 RTP/AVP 0\r\n"));
    }
}
