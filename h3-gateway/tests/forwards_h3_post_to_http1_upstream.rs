//! The real `h3-gateway` binary takes an HTTP/3 POST (client trusting the certificate it wrote
//! to `--cert-out`), forwards it as HTTP/1.1 to a plain TCP server with `x-webphone-via: h3`,
//! relays the upstream's status and body back, and exits 0 on SIGTERM.

use std::convert::Infallible;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf as _, Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rustls::pki_types::{pem::PemObject as _, CertificateDer};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(30);

/// What the upstream saw.
#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    via: Option<String>,
    host: Option<String>,
    content_type: Option<String>,
    body: Bytes,
}

/// A plain HTTP/1.1 server on 127.0.0.1:0 that answers every request with 202 and
/// `accepted:<len>`, and reports what it saw.
async fn upstream() -> (SocketAddr, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let tx = tx.clone();
                async move {
                    let header = |name: &str| {
                        request
                            .headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned)
                    };
                    let (via, host, content_type) = (
                        header("x-webphone-via"),
                        header("host"),
                        header("content-type"),
                    );
                    let method = request.method().to_string();
                    let path = request.uri().to_string();
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let reply = format!("accepted:{}", body.len());
                    let _ = tx.send(Seen {
                        method,
                        path,
                        via,
                        host,
                        content_type,
                        body,
                    });
                    Ok::<_, Infallible>(
                        hyper::Response::builder()
                            .status(202)
                            .header("x-upstream", "yes")
                            .body(Full::new(Bytes::from(reply)))
                            .unwrap(),
                    )
                }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    (addr, rx)
}

struct Gateway {
    child: Child,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary and returns it with the address from its first stdout line.
fn start_gateway(upstream: SocketAddr, cert_out: &std::path::Path) -> (Gateway, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_h3-gateway"))
        .args(["--listen", "127.0.0.1:0", "--upstream"])
        .arg(upstream.to_string())
        .arg("--cert-out")
        .arg(cert_out)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn h3-gateway");
    let stdout = child.stdout.take().unwrap();
    let gateway = Gateway { child };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(WAIT).expect("no `listening on` line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first stdout line: {line:?}"))
        .parse()
        .expect("an address");
    (gateway, addr)
}

fn client_endpoint(cert_pem: &[u8]) -> quinn::Endpoint {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    endpoint
}

async fn h3_post(
    endpoint: &quinn::Endpoint,
    gateway: SocketAddr,
    body: &'static [u8],
) -> (http::Response<()>, Bytes) {
    let connection = endpoint
        .connect(gateway, "127.0.0.1")
        .unwrap()
        .await
        .expect("QUIC handshake with the gateway");
    let (mut driver, mut send_request) = h3::client::new(h3_quinn::Connection::new(connection))
        .await
        .unwrap();
    let drive = tokio::spawn(async move { driver.wait_idle().await });
    let request = http::Request::post(format!("https://127.0.0.1:{}/fleet/report", gateway.port()))
        .header("content-type", "application/x-postcard")
        .body(())
        .unwrap();
    let mut stream = send_request.send_request(request).await.unwrap();
    stream.send_data(Bytes::from_static(body)).await.unwrap();
    stream.finish().await.unwrap();
    let response = stream.recv_response().await.unwrap();
    let mut received = BytesMut::new();
    while let Some(mut chunk) = stream.recv_data().await.unwrap() {
        while chunk.has_remaining() {
            let n = chunk.chunk().len();
            received.extend_from_slice(chunk.chunk());
            chunk.advance(n);
        }
    }
    drop(send_request);
    drive.abort();
    (response, received.freeze())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_post_reaches_the_http1_upstream_marked_and_the_answer_comes_back() {
    let dir = std::env::temp_dir().join(format!("h3-gateway-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_path = dir.join("gateway-cert.pem");
    let (upstream_addr, mut seen) = upstream().await;
    let (mut gateway, gateway_addr) = start_gateway(upstream_addr, &cert_path);
    assert_ne!(gateway_addr.port(), 0);

    let cert = std::fs::read(&cert_path).expect("--cert-out written before `listening on`");
    let endpoint = client_endpoint(&cert);
    let (response, body) = tokio::time::timeout(
        WAIT,
        h3_post(&endpoint, gateway_addr, b"\x01postcard-report"),
    )
    .await
    .expect("HTTP/3 request timed out");

    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["x-upstream"], "yes");
    assert_eq!(body.as_ref(), b"accepted:16");

    let seen = tokio::time::timeout(WAIT, seen.recv())
        .await
        .expect("upstream saw nothing")
        .unwrap();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/fleet/report");
    assert_eq!(seen.via.as_deref(), Some("h3"));
    assert_eq!(
        seen.host.as_deref(),
        Some(format!("127.0.0.1:{}", gateway_addr.port()).as_str())
    );
    assert_eq!(seen.content_type.as_deref(), Some("application/x-postcard"));
    assert_eq!(seen.body.as_ref(), b"\x01postcard-report");
    endpoint.close(0u32.into(), b"done");

    let pid = Pid::from_raw(i32::try_from(gateway.child.id()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = gateway.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "h3-gateway ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}
