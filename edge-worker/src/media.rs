//! Talking to media nodes: signed control requests (`shared::control`) over `fetch`.

use serde::{de::DeserializeOwned, Serialize};
use shared::control::{self, auth::sign_request, ControlError};
use worker::{Env, Method, Request, RequestInit};

/// Why a control request failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The node answered with a control error.
    #[error("media node refused: {0}")]
    Refused(ControlError),
    /// The node could not be reached or answered something unreadable.
    #[error("media node unreachable: {0}")]
    Transport(String),
    /// FLEET_SECRET is not set.
    #[error("the FLEET_SECRET secret is not configured")]
    NoSecret,
}

impl MediaError {
    /// The SIP status and reason to answer a call with.
    pub fn sip_status(&self) -> (u16, String) {
        match self {
            MediaError::Refused(ControlError::BadSdp { .. }) => (488, "Not Acceptable Here".into()),
            _ => (503, "Media Node Unavailable".into()),
        }
    }
}

impl From<worker::Error> for MediaError {
    fn from(e: worker::Error) -> Self {
        MediaError::Transport(e.to_string())
    }
}

/// Sends a signed control request to the node at `control_url` and decodes its answer.
pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
    env: &Env,
    control_url: &str,
    method: Method,
    path: &str,
    body: Option<&Req>,
) -> Result<Resp, MediaError> {
    let secret = env
        .secret("FLEET_SECRET")
        .map_err(|_| MediaError::NoSecret)?
        .to_string();
    let bytes = body.map(control::encode).unwrap_or_default();
    let nonce = crate::random_hex(16)?;
    let now_s = worker::Date::now().as_millis() / 1000;
    let headers = worker::Headers::new();
    for (name, value) in sign_request(
        secret.as_bytes(),
        method.as_ref(),
        path,
        now_s,
        &nonce,
        &bytes,
    ) {
        headers.set(name, &value)?;
    }
    headers.set("content-type", control::CONTENT_TYPE)?;
    let mut init = RequestInit::new();
    init.with_method(method).with_headers(headers);
    if !bytes.is_empty() {
        init.with_body(Some(js_sys::Uint8Array::from(bytes.as_slice()).into()));
    }
    let url = format!("{}{path}", control_url.trim_end_matches('/'));
    let mut resp = worker::Fetch::Request(Request::new_with_init(&url, &init)?)
        .send()
        .await?;
    let status = resp.status_code();
    let answer = resp.bytes().await?;
    if (200..300).contains(&status) {
        control::decode(&answer)
            .map_err(|e| MediaError::Transport(format!("unreadable answer: {e}")))
    } else {
        Err(match control::decode::<ControlError>(&answer) {
            Ok(e) => MediaError::Refused(e),
            Err(_) => MediaError::Transport(format!("HTTP {status}")),
        })
    }
}
