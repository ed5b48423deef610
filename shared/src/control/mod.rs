//! Control messages between the edge worker and a media node: allocate, answer, renegotiate,
//! release and stats of a bridge session, and the HMAC request authentication that guards them.
//!
//! ```
//! use shared::control::{decode, encode, AllocateRequest, Mode};
//!
//! let request = AllocateRequest {
//!     call_id: "a84b4c76e66710".into(),
//!     browser_offer_sdp: "v=0\r\n...".into(),
//!     mode: Mode::Echo,
//! };
//! let body = encode(&request);
//! assert_eq!(body[0], shared::control::PROTOCOL_VERSION);
//! assert_eq!(decode::<AllocateRequest>(&body)?, request);
//! # Ok::<(), shared::control::ControlError>(())
//! ```
//!
//! # Design
//! - **HTTP paths, postcard bodies.** The node serves `POST /v1/sessions` ([`AllocateRequest`] →
//!   [`AllocateResponse`]), `POST /v1/sessions/{id}/answer` ([`ApplyAnswer`] →
//!   [`ApplyAnswerResponse`]), `POST /v1/sessions/{id}/renegotiate` ([`Renegotiate`] →
//!   [`RenegotiateResponse`]), `DELETE /v1/sessions/{id}` ([`Release`] → [`SessionStats`]) and
//!   `GET /v1/sessions/{id}/stats` (→ [`SessionStats`]). Calls from the upstream go the other
//!   way: `POST /v1/sessions/inbound` ([`AllocateInbound`] → [`AllocateInboundResponse`]), then
//!   `POST /v1/sessions/{id}/browser-answer` ([`ApplyBrowserAnswer`] →
//!   [`ApplyBrowserAnswerResponse`]). The upstream's re-offers on an established session go to
//!   `POST /v1/sessions/{id}/upstream-offer` ([`UpstreamReoffer`] → [`UpstreamReofferResponse`]).
//!   Bodies are [`CONTENT_TYPE`]; errors are a
//!   [`ControlError`] body with the status [`ControlError::http_status`] gives.
//! - **Versioned.** Every body starts with one byte, [`PROTOCOL_VERSION`], then the postcard
//!   encoding ([`encode`], [`decode`]). Postcard is not self-describing, so a change to a message is
//!   a new version; a peer speaking another version gets [`ControlError::Version`], never a
//!   misread field. Within a version, new messages may be added but existing ones are frozen.
//! - **Authenticated, not encrypted.** [`auth`] signs method, path, timestamp, nonce and body with
//!   the fleet secret (HMAC-SHA256) and checks a ±30 s window and a replay cache. Sans-IO: the
//!   caller passes the time. Transport privacy (HTTPS) is the shell's job.
//! - Pure data, no IO: it builds for wasm32 (the worker) and natively (the node, tests).

pub mod auth;
mod error;
mod messages;
pub mod report;

pub use error::ControlError;
pub use messages::{
    AllocateInbound, AllocateInboundResponse, AllocateRequest, AllocateResponse, ApplyAnswer,
    ApplyAnswerResponse, ApplyBrowserAnswer, ApplyBrowserAnswerResponse, Mode, Release,
    Renegotiate, RenegotiateResponse, SessionId, SessionStats, UpstreamReoffer,
    UpstreamReofferResponse,
};

use serde::{de::DeserializeOwned, Serialize};

/// Version byte that starts every control body.
pub const PROTOCOL_VERSION: u8 = 1;

/// Media type of control bodies.
pub const CONTENT_TYPE: &str = "application/x-postcard";

/// Largest control body accepted (SDP offers are a few KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// Encodes `message` as a control body: [`PROTOCOL_VERSION`], then postcard.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let out = vec![PROTOCOL_VERSION];
    // Postcard only fails on types serde cannot represent (maps with non-string keys are fine,
    // unsized sequences are not); the control messages are plain structs, so this cannot fail.
    match postcard::to_extend(message, out) {
        Ok(body) => body,
        Err(_) => vec![PROTOCOL_VERSION],
    }
}

/// Decodes a control body written by [`encode`].
///
/// Errors: [`ControlError::Version`] when the version byte differs (or the body is empty),
/// [`ControlError::BadBody`] when the rest is not a `T` or has bytes left over.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
    let (&version, rest) = body.split_first().ok_or(ControlError::Version {
        supported: PROTOCOL_VERSION,
        received: None,
    })?;
    if version != PROTOCOL_VERSION {
        return Err(ControlError::Version {
            supported: PROTOCOL_VERSION,
            received: Some(version),
        });
    }
    match postcard::take_from_bytes::<T>(rest) {
        Ok((value, [])) => Ok(value),
        Ok((_, extra)) => Err(ControlError::BadBody {
            reason: format!("{} unexpected bytes after the message", extra.len()),
        }),
        Err(e) => Err(ControlError::BadBody {
            reason: format!("not a valid message of this endpoint ({e})"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allocate() -> AllocateRequest {
        AllocateRequest {
            call_id: "call-1".into(),
            browser_offer_sdp: "v=0\r\n".into(),
            mode: Mode::Bridge,
        }
    }

    #[test]
    fn every_message_round_trips() {
        let id = SessionId::new("s-1");
        assert_eq!(
            decode::<AllocateRequest>(&encode(&allocate())).unwrap(),
            allocate()
        );
        let response = AllocateResponse {
            session_id: id.clone(),
            browser_answer_sdp: "v=0\r\na".into(),
            upstream_offer_sdp: None,
        };
        assert_eq!(
            decode::<AllocateResponse>(&encode(&response)).unwrap(),
            response
        );
        let answer = ApplyAnswer {
            session_id: id.clone(),
            upstream_answer_sdp: "v=0\r\nb".into(),
        };
        assert_eq!(decode::<ApplyAnswer>(&encode(&answer)).unwrap(), answer);
        let reneg = Renegotiate {
            session_id: id.clone(),
            browser_offer_sdp: "v=0\r\nc".into(),
        };
        assert_eq!(decode::<Renegotiate>(&encode(&reneg)).unwrap(), reneg);
        let reoffer = UpstreamReoffer {
            session_id: id.clone(),
            upstream_offer_sdp: "v=0\r\ng".into(),
        };
        assert_eq!(
            decode::<UpstreamReoffer>(&encode(&reoffer)).unwrap(),
            reoffer
        );
        let reoffer_answer = UpstreamReofferResponse {
            upstream_answer_sdp: "v=0\r\nh".into(),
        };
        assert_eq!(
            decode::<UpstreamReofferResponse>(&encode(&reoffer_answer)).unwrap(),
            reoffer_answer
        );
        let release = Release { session_id: id };
        assert_eq!(decode::<Release>(&encode(&release)).unwrap(), release);
        let inbound = AllocateInbound {
            call_id: "in-1".into(),
            upstream_offer_sdp: "v=0\r\nd".into(),
        };
        assert_eq!(
            decode::<AllocateInbound>(&encode(&inbound)).unwrap(),
            inbound
        );
        let inbound_response = AllocateInboundResponse {
            session_id: SessionId::new("s-2"),
            browser_offer_sdp: "v=0\r\ne".into(),
        };
        assert_eq!(
            decode::<AllocateInboundResponse>(&encode(&inbound_response)).unwrap(),
            inbound_response
        );
        let browser_answer = ApplyBrowserAnswer {
            session_id: SessionId::new("s-2"),
            browser_answer_sdp: "v=0\r\nf".into(),
        };
        assert_eq!(
            decode::<ApplyBrowserAnswer>(&encode(&browser_answer)).unwrap(),
            browser_answer
        );
        let upstream_answer = ApplyBrowserAnswerResponse {
            upstream_answer_sdp: "v=0\r\ng".into(),
        };
        assert_eq!(
            decode::<ApplyBrowserAnswerResponse>(&encode(&upstream_answer)).unwrap(),
            upstream_answer
        );
        let stats = SessionStats {
            packets_from_browser: 10,
            rtt_ms: Some(42),
            mos: Some(4.3),
            ..SessionStats::default()
        };
        assert_eq!(decode::<SessionStats>(&encode(&stats)).unwrap(), stats);
        let error = ControlError::BadSdp {
            reason: "no audio".into(),
        };
        assert_eq!(decode::<ControlError>(&encode(&error)).unwrap(), error);
    }

    #[test]
    fn another_version_is_refused_not_misread() {
        let mut body = encode(&allocate());
        body[0] = PROTOCOL_VERSION + 1;
        assert_eq!(
            decode::<AllocateRequest>(&body).unwrap_err(),
            ControlError::Version {
                supported: PROTOCOL_VERSION,
                received: Some(PROTOCOL_VERSION + 1)
            }
        );
        assert!(matches!(
            decode::<AllocateRequest>(&[]).unwrap_err(),
            ControlError::Version { received: None, .. }
        ));
    }

    #[test]
    fn truncated_or_padded_bodies_are_bad_bodies() {
        let body = encode(&allocate());
        for len in 1..body.len() {
            assert!(
                matches!(
                    decode::<AllocateRequest>(&body[..len]),
                    Err(ControlError::BadBody { .. })
                ),
                "prefix of {len} bytes"
            );
        }
        let mut padded = body.clone();
        padded.push(0);
        assert!(matches!(
            decode::<AllocateRequest>(&padded),
            Err(ControlError::BadBody { .. })
        ));
    }
}
