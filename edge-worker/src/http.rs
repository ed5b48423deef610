//! Small helpers for building the Worker's HTTP responses.

use serde::Serialize;
use shared::problem::{self, Problem};
use worker::{Response, Result};

/// A problem+json response.
pub fn problem(p: &Problem) -> Result<Response> {
    let mut resp = Response::from_bytes(p.to_json().into_bytes())?.with_status(p.status);
    resp.headers_mut()
        .set("content-type", problem::CONTENT_TYPE)?;
    resp.headers_mut().set("cache-control", "no-store")?;
    Ok(resp)
}

/// A problem+json response with the standard title for `status`.
pub fn error(status: u16, detail: impl Into<String>) -> Result<Response> {
    problem(&Problem::new(status, detail))
}

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: u16, value: &T, content_type: &str) -> Result<Response> {
    let body = serde_json::to_vec(value).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let mut resp = Response::from_bytes(body)?.with_status(status);
    resp.headers_mut().set("content-type", content_type)?;
    Ok(resp)
}

/// Whether the request's `Content-Type` (if any) is one of `accepted` (parameters ignored).
pub fn content_type_is(value: Option<&str>, accepted: &[&str]) -> bool {
    value.is_none_or(|v| {
        let essence = v.split(';').next().unwrap_or("").trim();
        accepted.iter().any(|a| essence.eq_ignore_ascii_case(a))
    })
}
