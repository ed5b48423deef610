//! The control API over HTTPS: with `control_tls_cert`/`control_tls_key` (a self-signed rcgen
//! certificate for 127.0.0.1) the real binary serves `/healthz` and a signed echo allocation
//! over TLS to a client trusting only that certificate, says `https` in its started line, and
//! refuses plain HTTP on the same port.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{media_node, Running};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use shared::control::auth::sign_request;
use shared::control::CONTENT_TYPE;
use shared::control::{decode, encode, AllocateRequest, AllocateResponse, ControlError, Mode};
use shared::sdp::{SessionDescription, Setup};

const SECRET: &str = "integration-test-fleet-secret";
const OFFER: &str = include_str!("data/chromium156_audio_offer.sdp");

struct Tls {
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

fn self_signed() -> Tls {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("media-node-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.join("control-cert.pem"), dir.join("control-key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    Tls {
        cert,
        key,
        der: certified.cert.der().clone(),
    }
}

fn start(tls: &Tls) -> (Running, SocketAddr, SocketAddr, serde_json::Value) {
    let mut command = media_node();
    command
        .env("MEDIA_NODE_CONTROL_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_MEDIA_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_RTP_PORT_MIN", "43100")
        .env("MEDIA_NODE_RTP_PORT_MAX", "43119")
        .env("MEDIA_NODE_CAPACITY", "10")
        .env("MEDIA_NODE_FLEET_SECRET", SECRET)
        .env("MEDIA_NODE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .arg("--control-tls-cert")
        .arg(&tls.cert)
        .env("MEDIA_NODE_CONTROL_TLS_KEY", &tls.key);
    let mut running = Running::spawn(command);
    let started = running.wait_for_line("startup", |l| l.contains("media-node started"));
    let started: serde_json::Value = serde_json::from_str(&started).unwrap();
    let addr = |key: &str| -> SocketAddr { started[key].as_str().unwrap().parse().unwrap() };
    (
        running,
        addr("control_listen"),
        addr("media_listen"),
        started,
    )
}

/// One HTTPS exchange with hyper over tokio-rustls, trusting only `trusted`.
async fn https(
    trusted: &CertificateDer<'static>,
    control: SocketAddr,
    request: http::Request<Full<Bytes>>,
) -> (u16, Vec<u8>) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(control).await.unwrap();
    let name = ServerName::IpAddress(control.ip().into());
    let stream = connector.connect(name, tcp).await.expect("TLS handshake");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn control_api_serves_healthz_and_a_signed_allocation_over_https_only() {
    let tls = self_signed();
    let (_running, control, media, started) = start(&tls);
    assert_eq!(started["control_scheme"], "https", "{started}");

    let healthz = http::Request::get("/healthz")
        .header("host", "media-node")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, body) = tokio::time::timeout(common::WAIT, https(&tls.der, control, healthz))
        .await
        .expect("healthz timed out");
    assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));

    let body = encode(&AllocateRequest {
        call_id: "https-call".into(),
        browser_offer_sdp: OFFER.into(),
        mode: Mode::Echo,
    });
    let mut request = http::Request::post("/v1/sessions")
        .header("host", "media-node")
        .header("content-type", CONTENT_TYPE);
    for (name, value) in sign_request(
        SECRET.as_bytes(),
        "POST",
        "/v1/sessions",
        unix_now(),
        &format!("https-nonce-{}", std::process::id()),
        &body,
    ) {
        request = request.header(name, value);
    }
    let request = request.body(Full::new(Bytes::from(body))).unwrap();
    let (status, body) = tokio::time::timeout(common::WAIT, https(&tls.der, control, request))
        .await
        .expect("allocation timed out");
    assert_eq!(status, 200, "{:?}", decode::<ControlError>(&body));
    let response: AllocateResponse = decode(&body).unwrap();
    let answer: SessionDescription = response.browser_answer_sdp.parse().unwrap();
    let audio = &answer.media[0];
    assert_eq!(answer.setup_for(audio), Some(Setup::Passive));
    assert_eq!(answer.fingerprints_for(audio).len(), 1);
    let candidates: Vec<_> = audio.candidates().collect();
    assert_eq!(candidates[0].socket_addr(), Some(media));

    // Plain HTTP to the TLS port gets no HTTP response.
    let plain = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect_timeout(&control, Duration::from_secs(5)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: media-node\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        response
    })
    .await
    .unwrap();
    assert!(
        !plain.starts_with(b"HTTP/"),
        "plain HTTP answered: {:?}",
        String::from_utf8_lossy(&plain)
    );
}
