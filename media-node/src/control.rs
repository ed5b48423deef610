//! The control API over HTTP/1.1. Today only `GET /healthz`; the worker's authenticated
//! allocate/update/release calls will be routed here.

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
