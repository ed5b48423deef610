//! A stand-in for the Worker's report endpoint: a plain HTTP/1.1 server on 127.0.0.1:0 that
//! checks each report's HMAC with `shared::control::auth::Verifier`, decodes the `NodeReport`
//! and hands it to the test with the `x-webphone-via` header it came with. Plus a signed
//! control-API call, to make sessions whose records the reports carry.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use shared::control::auth::{sign_request, RequestAuth, Verifier};
use shared::control::report::{NodeReport, REPORT_PATH};
use shared::control::{decode, CONTENT_TYPE};
use tokio::net::TcpListener;

use super::WAIT;

/// One report as the control plane received it.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `x-webphone-via` header (`Some("h3")` through the gateway).
    pub via: Option<String>,
    /// The decoded report.
    pub report: NodeReport,
}

/// The running stub.
pub struct ControlPlane {
    /// Its TCP address.
    pub addr: SocketAddr,
    reports: mpsc::Receiver<Result<Received, String>>,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

impl ControlPlane {
    /// Starts the stub on the current tokio runtime, verifying with `secret`.
    pub async fn start(secret: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, reports) = mpsc::channel();
        let verifier = Arc::new(Mutex::new(Verifier::new(secret.as_bytes().to_vec())));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let tx = tx.clone();
                let verifier = Arc::clone(&verifier);
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    let verifier = Arc::clone(&verifier);
                    async move {
                        let (parts, body) = request.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        let header = |name: &str| {
                            parts
                                .headers
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned)
                        };
                        let checked = (|| {
                            if parts.method != "POST" || parts.uri.path() != REPORT_PATH {
                                return Err(format!("unexpected {} {}", parts.method, parts.uri));
                            }
                            if header("content-type").as_deref() != Some(CONTENT_TYPE) {
                                return Err(format!("content-type {:?}", header("content-type")));
                            }
                            let pairs = parts
                                .headers
                                .iter()
                                .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
                            let auth = RequestAuth::from_pairs(pairs);
                            verifier
                                .lock()
                                .unwrap()
                                .verify(unix_now(), "POST", REPORT_PATH, &auth, &body)
                                .map_err(|e| format!("HMAC check failed: {e}"))?;
                            let report = decode::<NodeReport>(&body)
                                .map_err(|e| format!("not a NodeReport: {e}"))?;
                            Ok(Received {
                                via: header("x-webphone-via"),
                                report,
                            })
                        })();
                        let status = if checked.is_ok() { 204 } else { 401 };
                        let _ = tx.send(checked);
                        Ok::<_, Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::new()))
                                .unwrap(),
                        )
                    }
                });
                tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
            }
        });
        Self { addr, reports }
    }

    /// Waits (bounded) for a report satisfying `wanted`, skipping others; panics on a report
    /// that failed verification.
    pub fn next(&self, what: &str, wanted: impl Fn(&Received) -> bool) -> Received {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.reports.recv_timeout(left) {
                Ok(Ok(received)) if wanted(&received) => return received,
                Ok(Ok(_)) => {}
                Ok(Err(problem)) => panic!("bad report: {problem}"),
                Err(e) => panic!("no {what} report within {WAIT:?} ({e:?})"),
            }
        }
    }
}

/// One signed control-API exchange with the node; returns status and body.
pub fn signed_call(
    control: SocketAddr,
    secret: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let headers = sign_request(
        secret.as_bytes(),
        method,
        path,
        unix_now(),
        &super::fresh_nonce(),
        body,
    );
    let pairs: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, v.clone())).collect();
    let (status, _, body) = super::http_exchange(control, method, path, &pairs, body);
    (status, body)
}
