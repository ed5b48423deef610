//! Errors of the control API, with their HTTP status.

use serde::{Deserialize, Serialize};

/// Why a control request failed. Sent as the body of the error response (postcard, like every
/// control body); never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ControlError {
    /// No session with this id (never allocated, released, or expired for lack of media). 404.
    #[error("no such session; it was released, expired without media, or never allocated")]
    UnknownSession,
    /// An SDP in the request cannot be used. 400.
    #[error("unusable SDP: {reason}")]
    BadSdp {
        /// What is wrong with it and what to fix.
        reason: String,
    },
    /// The body is not the message this endpoint expects. 400.
    #[error("bad request body: {reason}")]
    BadBody {
        /// What is wrong with it.
        reason: String,
    },
    /// Every RTP port (or the node's capacity) is in use; try another node. 503.
    #[error("no free RTP port or capacity left on this node; allocate on another node")]
    NoFreePort,
    /// The node is draining: no new sessions, existing ones continue. 503.
    #[error("this node is draining and takes no new sessions; allocate on another node")]
    Draining,
    /// The request is not signed with the fleet secret, or the signature or timestamp is wrong.
    /// 401.
    #[error("request not authenticated: {reason}")]
    Unauthorized {
        /// Which check failed (never the expected signature).
        reason: String,
    },
    /// The request's nonce was already used inside the validity window. 401.
    #[error("replayed request: this nonce was already used; sign every request with a fresh one")]
    Replay,
    /// The body's version byte is not the one this node speaks. 400.
    #[error("control protocol version {received:?} not supported; this node speaks {supported}")]
    Version {
        /// The version this side speaks.
        supported: u8,
        /// The version received (`None`: empty body).
        received: Option<u8>,
    },
}

impl ControlError {
    /// The HTTP status of a response carrying this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::UnknownSession => 404,
            Self::BadSdp { .. } | Self::BadBody { .. } | Self::Version { .. } => 400,
            Self::NoFreePort | Self::Draining => 503,
            Self::Unauthorized { .. } | Self::Replay => 401,
        }
    }

    /// Shorthand for [`ControlError::BadSdp`].
    pub fn bad_sdp(reason: impl Into<String>) -> Self {
        Self::BadSdp {
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_http_meaning() {
        let cases = [
            (ControlError::UnknownSession, 404),
            (ControlError::bad_sdp("x"), 400),
            (ControlError::BadBody { reason: "x".into() }, 400),
            (ControlError::NoFreePort, 503),
            (ControlError::Draining, 503),
            (ControlError::Unauthorized { reason: "x".into() }, 401),
            (ControlError::Replay, 401),
            (
                ControlError::Version {
                    supported: 1,
                    received: Some(2),
                },
                400,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(error.http_status(), status, "{error:?}");
            assert!(!error.to_string().is_empty());
        }
    }
}
