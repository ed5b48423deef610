//! The few SDP edits the bridge makes itself, without asking the media node: reading and setting
//! the media direction, carrying the `o=` line on with its version bumped, and telling a session
//! refresh (the same description again) from a real change.

use crate::sdp::{Direction, SessionDescription};

/// The direction of the first media section (its own attribute, else the session's, else
/// `sendrecv`); `None` when `sdp` does not parse.
pub(crate) fn direction(sdp: &str) -> Option<Direction> {
    let parsed: SessionDescription = sdp.parse().ok()?;
    let media = parsed.media.first()?;
    Some(parsed.direction_for(media))
}

/// `sdp` as our next description in a session whose previous one was `previous`: the `o=` line
/// of `previous` with its version plus one (RFC 3264 §8: same origin, version bumped), and, with
/// `direction`, that direction on every media section (session-level direction attributes go).
/// `None` when `sdp` does not parse; an unparseable `previous` leaves `o=` as `sdp` has it, with
/// its own version bumped.
pub(crate) fn next_version(
    sdp: &str,
    previous: &str,
    direction: Option<Direction>,
) -> Option<String> {
    let mut parsed: SessionDescription = sdp.parse().ok()?;
    let mut origin = previous
        .parse::<SessionDescription>()
        .map(|p| p.origin)
        .unwrap_or_else(|_| parsed.origin.clone());
    origin.session_version = origin.session_version.saturating_add(1);
    parsed.origin = origin;
    if let Some(d) = direction {
        parsed.retain_attributes(|a| !matches!(a, crate::sdp::Attribute::Direction(_)));
        for m in &mut parsed.media {
            m.set_direction(d);
        }
    }
    Some(parsed.to_string())
}

/// The direction that allows only what both `a` and `b` allow (sending, receiving).
pub(crate) fn intersect(a: Direction, b: Direction) -> Direction {
    let allows = |d: Direction| match d {
        Direction::SendRecv => (true, true),
        Direction::SendOnly => (true, false),
        Direction::RecvOnly => (false, true),
        Direction::Inactive => (false, false),
    };
    let ((s1, r1), (s2, r2)) = (allows(a), allows(b));
    match (s1 && s2, r1 && r2) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

/// Whether `a` describes the same session as `b`, `o=` line aside (a session refresh repeats
/// the description, sometimes with a bumped version): a cheap line-by-line comparison.
pub(crate) fn same_session(a: &str, b: &str) -> bool {
    let lines = |s: &'_ str| -> Vec<String> {
        s.lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty() && !l.starts_with("o="))
            .map(str::to_owned)
            .collect()
    };
    lines(a) == lines(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = "v=0\r\no=- 7 1 IN IP4 10.9.0.1\r\ns=-\r\nc=IN IP4 10.9.0.1\r\nt=0 0\r\n\
m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";

    #[test]
    fn hold_keeps_the_media_and_bumps_the_version() {
        let held = next_version(OURS, OURS, Some(Direction::SendOnly)).unwrap();
        assert!(held.contains("o=- 7 2 IN IP4 10.9.0.1\r\n"), "{held}");
        assert!(held.contains("a=sendonly\r\n") && !held.contains("a=sendrecv"));
        assert!(held.contains("m=audio 30000 RTP/AVP 0 101\r\n"));
        assert_eq!(direction(&held), Some(Direction::SendOnly));
        assert_eq!(direction(OURS), Some(Direction::SendRecv));
    }

    #[test]
    fn a_new_description_takes_the_previous_origin() {
        let node = "v=0\r\no=- 99 1 IN IP4 10.9.0.1\r\ns=-\r\nc=IN IP4 10.9.0.1\r\nt=0 0\r\n\
a=inactive\r\nm=audio 30002 RTP/AVP 8\r\n";
        let next = next_version(node, OURS, Some(Direction::RecvOnly)).unwrap();
        assert!(next.contains("o=- 7 2 IN IP4"), "{next}");
        assert!(!next.contains("a=inactive"), "{next}");
        assert_eq!(direction(&next), Some(Direction::RecvOnly));
        assert!(next_version("garbage", OURS, None).is_none());
    }

    #[test]
    fn intersection_keeps_only_what_both_allow() {
        use Direction::*;
        assert_eq!(intersect(SendRecv, SendRecv), SendRecv);
        assert_eq!(intersect(RecvOnly, SendRecv), RecvOnly);
        assert_eq!(intersect(SendRecv, SendOnly), SendOnly);
        assert_eq!(intersect(RecvOnly, SendOnly), Inactive);
        assert_eq!(intersect(Inactive, SendRecv), Inactive);
    }

    #[test]
    fn a_refresh_is_the_same_session_a_move_is_not() {
        let refresh = OURS.replace(" 7 1 ", " 7 2 ").replace("\r\n", "\n");
        assert!(same_session(OURS, &refresh));
        assert!(!same_session(OURS, &OURS.replace("30000", "30002")));
        assert!(!same_session(OURS, &OURS.replace("sendrecv", "sendonly")));
    }
}
