//! Turning an HTTP/3 request into an HTTP/1.1 one for the upstream, and the answer back.
//!
//! [`upstream_request`] and [`downstream_response`] are pure (header rewriting, unit-tested);
//! [`forward`] does the TCP part.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tracing::debug;

use crate::MAX_BODY;

/// Header the gateway adds to every forwarded request.
pub const VIA_HEADER: &str = "x-webphone-via";
/// Its value: the request arrived over HTTP/3.
pub const VIA_VALUE: &str = "h3";

/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the upstream may take to answer (headers and body).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Headers that describe one hop, never forwarded (RFC 9110 §7.6.1), plus the ones the
/// gateway sets itself.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
    "content-length",
];

fn copy_end_to_end(from: &HeaderMap, to: &mut HeaderMap) {
    // Also drop whatever a Connection header names (HTTP/3 has none, an HTTP/1.1 upstream may).
    let named: Vec<String> = from
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    for (name, value) in from {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || named.iter().any(|x| x == n) {
            continue;
        }
        to.append(name.clone(), value.clone());
    }
}

/// The HTTP/1.1 request for the upstream: same method, path and query, end-to-end headers,
/// `Host` from `:authority` (else the upstream address), `content-length`, and
/// [`VIA_HEADER`]` `, `x-forwarded-for`, `x-forwarded-proto` set by the gateway.
pub fn upstream_request(
    request: &Request<()>,
    body: Bytes,
    upstream: SocketAddr,
    client: SocketAddr,
) -> Result<Request<Full<Bytes>>, http::Error> {
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let host = request
        .uri()
        .authority()
        .map_or_else(|| upstream.to_string(), |a| a.as_str().to_owned());
    let length = body.len();
    let mut out = Request::new(Full::new(body));
    *out.method_mut() = request.method().clone();
    *out.uri_mut() = path.parse::<http::Uri>()?;
    *out.version_mut() = http::Version::HTTP_11;
    let headers = out.headers_mut();
    copy_end_to_end(request.headers(), headers);
    headers.insert(header::HOST, HeaderValue::from_str(&host)?);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(
        HeaderName::from_static(VIA_HEADER),
        HeaderValue::from_static(VIA_VALUE),
    );
    headers.insert(
        HeaderName::from_static("x-forwarded-for"),
        HeaderValue::from_str(&client.ip().to_string())?,
    );
    headers.insert(
        HeaderName::from_static("x-forwarded-proto"),
        HeaderValue::from_static("https"),
    );
    Ok(out)
}

/// The HTTP/3 response from the upstream's: status and end-to-end headers, full body with its
/// length.
pub fn downstream_response(
    status: StatusCode,
    upstream_headers: &HeaderMap,
    body: Bytes,
) -> Response<Bytes> {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = status;
    copy_end_to_end(upstream_headers, response.headers_mut());
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    *response.body_mut() = body;
    response
}

/// A plain-text error response made by the gateway itself.
pub fn problem(status: StatusCode, text: String) -> Response<Bytes> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    downstream_response(status, &headers, Bytes::from(text))
}

/// Sends `request` (with `body`) to `upstream` over a new TCP connection and returns its
/// answer; connection failures give 502, timeouts 504.
pub async fn forward(
    request: Request<()>,
    body: Bytes,
    upstream: SocketAddr,
    client: SocketAddr,
) -> Response<Bytes> {
    let outgoing = match upstream_request(&request, body, upstream, client) {
        Ok(outgoing) => outgoing,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("h3-gateway: cannot forward this request: {e}"),
            )
        }
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            return problem(
                StatusCode::BAD_GATEWAY,
                format!("h3-gateway: cannot connect to upstream {upstream}: {e}"),
            )
        }
        Err(_) => {
            return problem(
                StatusCode::GATEWAY_TIMEOUT,
                format!("h3-gateway: connecting to upstream {upstream} timed out"),
            )
        }
    };
    let exchange = async {
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(error = %e, "upstream connection ended with an error");
            }
        });
        let response = sender.send_request(outgoing).await?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_BODY)
            .collect()
            .await
            .map_err(UpstreamError::Body)?
            .to_bytes();
        Ok::<_, UpstreamError>(downstream_response(parts.status, &parts.headers, body))
    };
    match tokio::time::timeout(RESPONSE_TIMEOUT, exchange).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => problem(
            StatusCode::BAD_GATEWAY,
            format!("h3-gateway: upstream {upstream}: {e}"),
        ),
        Err(_) => problem(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "h3-gateway: upstream {upstream} did not answer within {}s",
                RESPONSE_TIMEOUT.as_secs()
            ),
        ),
    }
}

#[derive(Debug, thiserror::Error)]
enum UpstreamError {
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("response body: {0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn request_keeps_method_path_and_end_to_end_headers_and_is_marked_h3() {
        let request = Request::post("https://fleet.example:8787/fleet/report?x=1")
            .header("content-type", "application/x-postcard")
            .header("x-webphone-signature", "abc")
            .header("x-webphone-via", "https") // a client cannot claim another path
            .header("te", "trailers")
            .body(())
            .unwrap();
        let out = upstream_request(
            &request,
            Bytes::from_static(b"body"),
            addr("127.0.0.1:9"),
            addr("10.1.2.3:5555"),
        )
        .unwrap();
        assert_eq!(out.method(), http::Method::POST);
        assert_eq!(out.uri(), "/fleet/report?x=1");
        let h = out.headers();
        assert_eq!(h["host"], "fleet.example:8787");
        assert_eq!(h["content-type"], "application/x-postcard");
        assert_eq!(h["x-webphone-signature"], "abc");
        assert_eq!(h.get_all("x-webphone-via").iter().count(), 1);
        assert_eq!(h["x-webphone-via"], "h3");
        assert_eq!(h["x-forwarded-for"], "10.1.2.3");
        assert_eq!(h["content-length"], "4");
        assert!(h.get("te").is_none());
    }

    #[test]
    fn request_without_authority_gets_the_upstream_as_host() {
        let request = Request::get("/healthz").body(()).unwrap();
        let out = upstream_request(
            &request,
            Bytes::new(),
            addr("127.0.0.1:8787"),
            addr("127.0.0.1:1"),
        )
        .unwrap();
        assert_eq!(out.headers()["host"], "127.0.0.1:8787");
        assert_eq!(out.uri(), "/healthz");
    }

    #[test]
    fn response_drops_hop_by_hop_and_connection_named_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("connection", HeaderValue::from_static("close, x-private"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        let response =
            downstream_response(StatusCode::ACCEPTED, &headers, Bytes::from_static(b"ok"));
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let h = response.headers();
        assert!(h.get("connection").is_none());
        assert!(h.get("x-private").is_none());
        assert!(h.get("transfer-encoding").is_none());
        assert_eq!(h["content-type"], "text/plain");
        assert_eq!(h["content-length"], "2");
        assert_eq!(response.body().as_ref(), b"ok");
    }
}
