//! The control API over HTTP/1.1: `GET /healthz`, and the worker's bridge calls under
//! `/v1/sessions` (postcard bodies, HMAC-signed; see `shared::control`).
//!
//! | method and path                   | request body     | response body          |
//! |-----------------------------------|------------------|------------------------|
//! | `POST /v1/sessions`               | `AllocateRequest`| `AllocateResponse`     |
//! | `POST /v1/sessions/{id}/answer`   | `ApplyAnswer`    | `ApplyAnswerResponse`  |
//! | `POST /v1/sessions/{id}/renegotiate` | `Renegotiate` | `RenegotiateResponse`  |
//! | `POST /v1/sessions/inbound`       | `AllocateInbound`| `AllocateInboundResponse` |
//! | `POST /v1/sessions/{id}/browser-answer` | `ApplyBrowserAnswer` | `ApplyBrowserAnswerResponse` |
//! | `POST /v1/sessions/{id}/upstream-offer` | `UpstreamReoffer` | `UpstreamReofferResponse` |
//! | `DELETE /v1/sessions/{id}`        | none             | `SessionStats` (final) |
//! | `GET /v1/sessions/{id}/stats`     | none             | `SessionStats`         |
//!
//! Errors are a `ControlError` body with its HTTP status. Without a fleet secret (allowed only
//! on a loopback control address) requests are not authenticated.

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;

/// Body type of every control response.
pub type Body = Full<Bytes>;

/// Answers `request` (pure: no IO, so it is tested without sockets).
pub fn respond<B>(request: &Request<B>) -> Response<Body> {
    match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/healthz") => plain(StatusCode::OK, "ok"),
        (_, "/healthz") => {
            let mut response = problem(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method Not Allowed",
                "/healthz accepts GET and HEAD",
            );
            response
                .headers_mut()
                .insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
            response
        }
        _ => problem(
            StatusCode::NOT_FOUND,
            "Not Found",
            "no such endpoint; try GET /healthz",
        ),
    }
}

fn plain(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// An RFC 9457 problem body; `title` and `detail` are fixed strings (no user input echoed).
fn problem(status: StatusCode, title: &'static str, detail: &'static str) -> Response<Body> {
    let body = format!(
        r#"{{"type":"about:blank","title":"{title}","status":{},"detail":"{detail}"}}"#,
        status.as_u16()
    );
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/problem+json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn request(method: Method, path: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
    }

    async fn body_text(response: Response<Body>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn healthz_answers_200_ok() {
        let response = respond(&request(Method::GET, "/healthz"));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(body_text(response).await, "ok");
    }

    #[tokio::test]
    async fn unknown_path_is_a_404_problem() {
        let response = respond(&request(Method::GET, "/admin"));
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert!(body_text(response).await.contains("\"status\":404"));
    }

    #[test]
    fn wrong_method_on_healthz_is_405_with_allow() {
        let response = respond(&request(Method::POST, "/healthz"));
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()[header::ALLOW], "GET, HEAD");
    }
}

pub use api::{handle, ControlContext};

/// The `/v1/sessions` routes.
mod api {
    use std::sync::Mutex;
    use std::time::{SystemTime, UNIX_EPOCH};

    use bytes::Bytes;
    use http::{header, Method, Request, Response, StatusCode};
    use http_body_util::{BodyExt, Full, Limited};
    use shared::control::auth::{RequestAuth, Verifier};
    use shared::control::{
        self, AllocateInbound, ApplyAnswer, ApplyBrowserAnswer, ControlError, Release, Renegotiate,
        SessionId, UpstreamReoffer, CONTENT_TYPE, MAX_BODY,
    };

    use super::Body;
    use crate::media::{Command, MediaHandle};

    /// What the control routes share: the media thread and the request verifier.
    #[derive(Debug)]
    pub struct ControlContext {
        media: MediaHandle,
        /// `None`: no fleet secret configured (loopback only), requests are not authenticated.
        /// A lock on the control path only, never on the media path.
        verifier: Option<Mutex<Verifier>>,
    }

    impl ControlContext {
        /// Routes to `media`, verifying requests with `fleet_secret` when there is one.
        pub fn new(media: MediaHandle, fleet_secret: Option<&str>) -> Self {
            Self {
                media,
                verifier: fleet_secret.map(|s| Mutex::new(Verifier::new(s.as_bytes().to_vec()))),
            }
        }
    }

    fn unix_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    fn reply(status: StatusCode, body: Vec<u8>) -> Response<Body> {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(CONTENT_TYPE),
        );
        response
    }

    fn error(e: &ControlError) -> Response<Body> {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        reply(status, control::encode(e))
    }

    fn ok<T: serde::Serialize>(result: Result<T, ControlError>) -> Response<Body> {
        match result {
            Ok(value) => reply(StatusCode::OK, control::encode(&value)),
            Err(e) => error(&e),
        }
    }

    enum Route {
        Allocate,
        AllocateInbound,
        BrowserAnswer(SessionId),
        Answer(SessionId),
        Renegotiate(SessionId),
        UpstreamReoffer(SessionId),
        Release(SessionId),
        Stats(SessionId),
    }

    /// `None`: not a `/v1/sessions` path; `Some(Err)`: such a path with a wrong method or id.
    fn route(method: &Method, path: &str) -> Option<Result<Route, ControlError>> {
        let rest = path.strip_prefix("/v1/sessions")?;
        let parts: Vec<&str> = rest.split('/').skip(1).collect();
        let bad = |what: &str| {
            Some(Err(ControlError::BadBody {
                reason: what.to_owned(),
            }))
        };
        let id = |segment: &str| SessionId::parse(segment);
        Some(Ok(match (method, rest.is_empty(), parts.as_slice()) {
            (&Method::POST, true, []) => Route::Allocate,
            (_, true, []) => return bad("/v1/sessions accepts POST"),
            (&Method::POST, _, ["inbound"]) => Route::AllocateInbound,
            (&Method::POST, _, [segment, "browser-answer"]) => match id(segment) {
                Some(id) => Route::BrowserAnswer(id),
                None => return Some(Err(ControlError::UnknownSession)),
            },
            (&Method::DELETE, _, [segment]) => match id(segment) {
                Some(id) => Route::Release(id),
                None => return Some(Err(ControlError::UnknownSession)),
            },
            (&Method::POST, _, [segment, "answer"]) => match id(segment) {
                Some(id) => Route::Answer(id),
                None => return Some(Err(ControlError::UnknownSession)),
            },
            (&Method::POST, _, [segment, "renegotiate"]) => match id(segment) {
                Some(id) => Route::Renegotiate(id),
                None => return Some(Err(ControlError::UnknownSession)),
            },
            (&Method::POST, _, [segment, "upstream-offer"]) => match id(segment) {
                Some(id) => Route::UpstreamReoffer(id),
                None => return Some(Err(ControlError::UnknownSession)),
            },
            (&Method::GET, _, [segment, "stats"]) => match id(segment) {
                Some(id) => Route::Stats(id),
                None => return Some(Err(ControlError::UnknownSession)),
            },
            _ => return None,
        }))
    }

    fn same_session(path: &SessionId, body: &SessionId) -> Result<(), ControlError> {
        if path == body {
            Ok(())
        } else {
            Err(ControlError::BadBody {
                reason: "session_id in the body differs from the one in the path".into(),
            })
        }
    }

    /// Serves one control request (health, or a `/v1/sessions` call).
    pub async fn handle<B>(request: Request<B>, context: &ControlContext) -> Response<Body>
    where
        B: http_body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let route = match route(&method, &path) {
            None => return super::respond(&request),
            Some(Err(e)) => return error(&e),
            Some(Ok(route)) => route,
        };
        let auth_headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return error(&ControlError::BadBody {
                    reason: format!("body unreadable or larger than {MAX_BODY} bytes"),
                })
            }
        };
        if let Some(verifier) = &context.verifier {
            let auth =
                RequestAuth::from_pairs(auth_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let verdict = match verifier.lock() {
                Ok(mut verifier) => {
                    verifier.verify(unix_now(), method.as_str(), &path, &auth, &body)
                }
                Err(_) => Err(ControlError::Unauthorized {
                    reason: "verifier unavailable".into(),
                }),
            };
            if let Err(e) = verdict {
                tracing::info!(%method, %path, error = %e, "control request refused");
                return error(&e);
            }
        }
        let media = &context.media;
        match route {
            Route::Allocate => match control::decode(&body) {
                Ok(request) => ok(media.call(|r| Command::Allocate(request, r)).await),
                Err(e) => error(&e),
            },
            Route::Answer(id) => match control::decode::<ApplyAnswer>(&body)
                .and_then(|a| same_session(&id, &a.session_id).map(|()| a))
            {
                Ok(request) => ok(media.call(|r| Command::Answer(request, r)).await),
                Err(e) => error(&e),
            },
            Route::AllocateInbound => match control::decode::<AllocateInbound>(&body) {
                Ok(request) => ok(media.call(|r| Command::AllocateInbound(request, r)).await),
                Err(e) => error(&e),
            },
            Route::BrowserAnswer(id) => match control::decode::<ApplyBrowserAnswer>(&body)
                .and_then(|a| same_session(&id, &a.session_id).map(|()| a))
            {
                Ok(request) => ok(media.call(|r| Command::BrowserAnswer(request, r)).await),
                Err(e) => error(&e),
            },
            Route::Renegotiate(id) => match control::decode::<Renegotiate>(&body)
                .and_then(|a| same_session(&id, &a.session_id).map(|()| a))
            {
                Ok(request) => ok(media.call(|r| Command::Renegotiate(request, r)).await),
                Err(e) => error(&e),
            },
            Route::UpstreamReoffer(id) => match control::decode::<UpstreamReoffer>(&body)
                .and_then(|a| same_session(&id, &a.session_id).map(|()| a))
            {
                Ok(request) => ok(media.call(|r| Command::UpstreamReoffer(request, r)).await),
                Err(e) => error(&e),
            },
            Route::Release(id) => {
                if !body.is_empty() {
                    if let Err(e) = control::decode::<Release>(&body)
                        .and_then(|r| same_session(&id, &r.session_id))
                    {
                        return error(&e);
                    }
                }
                ok(media.call(|r| Command::Release(id, r)).await)
            }
            Route::Stats(id) => ok(media.call(|r| Command::Stats(id, r)).await),
        }
    }
}
