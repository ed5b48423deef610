//! The control messages. Frozen within a [`PROTOCOL_VERSION`](super::PROTOCOL_VERSION): change a
//! field and the version must change.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Opaque id of a bridge session, chosen by the node (URL-safe characters only).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

impl SessionId {
    /// Wraps an id. Ids from URLs should go through [`SessionId::parse`].
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// An id from a URL path segment: 1-64 of `A-Z a-z 0-9 - _`, else `None`.
    pub fn parse(segment: &str) -> Option<Self> {
        let ok = !segment.is_empty()
            && segment.len() <= 64
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(segment.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a session does with the browser's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// Bridge the browser (WebRTC) to the upstream (plain RTP/AVP).
    Bridge,
    /// Send the browser's audio back to it (the `*43` echo test); no upstream leg.
    Echo,
}

/// `POST /v1/sessions`: create a session for a browser's offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateRequest {
    /// SIP Call-ID of the call (for logs and stats; not interpreted).
    pub call_id: String,
    /// The browser's SDP offer (UDP/TLS/RTP/SAVPF with ICE and DTLS).
    pub browser_offer_sdp: String,
    /// Bridge or echo.
    pub mode: Mode,
}

/// Reply to [`AllocateRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateResponse {
    /// The new session.
    pub session_id: SessionId,
    /// The answer for the browser: ICE-lite, the node's fingerprint, `setup:passive`, one host
    /// candidate on the node's media port, the codecs both sides have. In bridge mode the codecs
    /// narrow to the upstream's choice in [`ApplyAnswerResponse::browser_answer_sdp`].
    pub browser_answer_sdp: String,
    /// The plain RTP/AVP offer for the upstream (the node's address and a port from its RTP
    /// range); `None` in echo mode.
    pub upstream_offer_sdp: Option<String>,
}

/// `POST /v1/sessions/{id}/answer`: the upstream answered the offer of [`AllocateResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyAnswer {
    /// The session (must match the path).
    pub session_id: SessionId,
    /// The upstream's SDP answer.
    pub upstream_answer_sdp: String,
}

/// Reply to [`ApplyAnswer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyAnswerResponse {
    /// The final answer for the browser: like the allocation's, with only the codecs the upstream
    /// accepted (so the browser sends nothing the upstream cannot take).
    pub browser_answer_sdp: String,
}

/// `POST /v1/sessions/{id}/renegotiate`: a new offer from the browser (hold, resume, ICE restart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Renegotiate {
    /// The session (must match the path).
    pub session_id: SessionId,
    /// The browser's new offer.
    pub browser_offer_sdp: String,
}

/// Reply to [`Renegotiate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenegotiateResponse {
    /// The answer for the browser.
    pub browser_answer_sdp: String,
}

/// `POST /v1/sessions/{id}/upstream-offer`: a new offer from the upstream on an established
/// session (a re-INVITE or UPDATE: a new address or port, other codecs, hold or resume). Added
/// within version 1: a node that predates it answers 404 without a control body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamReoffer {
    /// The session (must match the path).
    pub session_id: SessionId,
    /// The upstream's new SDP offer (plain RTP/AVP).
    pub upstream_offer_sdp: String,
}

/// Reply to [`UpstreamReoffer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamReofferResponse {
    /// The plain RTP/AVP answer for the upstream: the node's address and the session's RTP port
    /// (unchanged), the offered codecs the browser leg has, under the upstream's payload type
    /// numbers, the direction mirroring the offer's (sendonly -> recvonly, inactive ->
    /// inactive).
    pub upstream_answer_sdp: String,
}

/// `DELETE /v1/sessions/{id}` (body optional): end the session and free its ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The session (must match the path).
    pub session_id: SessionId,
}

/// `GET /v1/sessions/{id}/stats` and the reply to [`Release`]: what the session carried.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionStats {
    /// RTP packets received from the browser (after SRTP).
    pub packets_from_browser: u64,
    /// RTP payload bytes received from the browser.
    pub bytes_from_browser: u64,
    /// RTP packets received from the upstream.
    pub packets_from_upstream: u64,
    /// RTP bytes received from the upstream.
    pub bytes_from_upstream: u64,
    /// Packets the node dropped (unknown payload type, not latched, malformed).
    pub packets_dropped: u64,
    /// Fraction of the browser's packets lost, 0.0-1.0 (from sequence numbers).
    pub loss_from_browser: f32,
    /// Fraction of the upstream's packets lost, 0.0-1.0.
    pub loss_from_upstream: f32,
    /// Interarrival jitter of the upstream's stream (RFC 3550 §6.4.1), milliseconds.
    pub jitter_ms: f32,
    /// Round-trip time to the browser, milliseconds, once RTCP has measured it.
    pub rtt_ms: Option<u32>,
    /// Estimated listening quality (E-model, 1.0-4.5), once there is media.
    pub mos: Option<f32>,
    /// Seconds since the session was allocated.
    pub age_secs: u64,
}

/// `POST /v1/sessions/inbound`: create a session for a call coming in from the SIP upstream,
/// whose INVITE carried a plain RTP/AVP offer. The node makes the WebRTC offer for the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateInbound {
    /// SIP Call-ID of the call (for logs and stats; not interpreted).
    pub call_id: String,
    /// The upstream's SDP offer (plain RTP/AVP).
    pub upstream_offer_sdp: String,
}

/// Reply to [`AllocateInbound`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateInboundResponse {
    /// The new session.
    pub session_id: SessionId,
    /// The offer for the browser: ICE-lite, the node's fingerprint, `setup:actpass`, rtcp-mux,
    /// one host candidate on the node's media port, the upstream's codecs the node relays
    /// (PCMU, PCMA, G722, opus, telephone-event) with the node's payload type numbers.
    pub browser_offer_sdp: String,
}

/// `POST /v1/sessions/{id}/browser-answer`: the browser answered the offer of
/// [`AllocateInboundResponse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyBrowserAnswer {
    /// The session (must match the path).
    pub session_id: SessionId,
    /// The browser's SDP answer.
    pub browser_answer_sdp: String,
}

/// Reply to [`ApplyBrowserAnswer`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyBrowserAnswerResponse {
    /// The plain RTP/AVP answer for the upstream: the node's address and RTP port, the codecs
    /// the browser accepted and telephone-event, with the upstream's payload type numbers.
    pub upstream_answer_sdp: String,
}
