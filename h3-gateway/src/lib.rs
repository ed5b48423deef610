//! The local stand-in for Cloudflare's HTTP/3 termination: accepts HTTP/3 on a UDP port and
//! forwards every request as plain HTTP/1.1 to an upstream (wrangler dev), marked with
//! `x-webphone-via: h3`, then relays the upstream's response back over HTTP/3.
//!
//! # Design
//!
//! - **Why it exists.** In production, media nodes POST their reports over HTTP/3 to
//!   Cloudflare's edge, which terminates QUIC and hands the Worker an ordinary request.
//!   `wrangler dev` speaks only HTTP/1.1 over TCP, so locally this binary plays the edge:
//!   `h3-gateway --listen 127.0.0.1:8787 --upstream 127.0.0.1:8787 --cert-out PATH` listens on
//!   UDP 8787 while wrangler listens on TCP 8787, so one report URL
//!   (`http://127.0.0.1:8787/fleet/report`) serves both the node's HTTP/3 attempt and its TCP
//!   fallback, as `Alt-Svc` would in production.
//! - **Marking.** The gateway sets [`VIA_HEADER`]`: `[`VIA_VALUE`] on every forwarded request
//!   (replacing any the client sent), so the Worker can record that a report came over HTTP/3.
//!   It also sets `x-forwarded-for` (client IP) and `x-forwarded-proto: https`.
//! - **TLS.** A fresh self-signed certificate (rcgen) for `localhost`, `127.0.0.1`, `::1` and
//!   the listen IP is made at start; [`Gateway::cert_pem`] gives it so clients can trust it in
//!   development (the binary writes it to `--cert-out`). TLS 1.3 only, ALPN `h3`. Crypto is
//!   aws-lc-rs, the one stack the workspace already has through str0m (no ring).
//! - **Forwarding** ([`forward`]): bodies are buffered (at most [`MAX_BODY`] each way; reports
//!   are a few KiB), hop-by-hop headers dropped, `Host` taken from `:authority`. One TCP
//!   connection per request to the upstream: this is a development tool, not a proxy under
//!   load. Upstream failures become `502`/`504` with a plain-text body saying what failed.
//! - **Shutdown is an argument** ([`Gateway::run`]): when the future completes the gateway
//!   refuses new connections, sends GOAWAY on open ones, gives requests in flight up to
//!   [`SHUTDOWN_GRACE`] to finish, then closes the endpoint. The binary wires SIGTERM/SIGINT
//!   to it and exits 0.

pub mod forward;
pub mod tls;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{Response, StatusCode};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

pub use forward::{VIA_HEADER, VIA_VALUE};

/// Largest request or response body relayed.
pub const MAX_BODY: usize = 1024 * 1024;
/// How long requests in flight may take to finish once shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The self-signed certificate could not be made.
    #[error("cannot generate the self-signed certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// The TLS configuration was refused (no usable cipher suite or key).
    #[error("cannot configure TLS: {0}")]
    Tls(String),
    /// The UDP listen address could not be bound.
    #[error("cannot bind --listen {addr} (UDP): {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// Why binding failed.
        source: io::Error,
    },
}

/// What to listen on and where to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// UDP address for HTTP/3 (port 0: any free port).
    pub listen: SocketAddr,
    /// TCP address of the HTTP/1.1 upstream.
    pub upstream: SocketAddr,
}

/// A gateway with its UDP socket bound and its certificate made, not serving yet.
#[derive(Debug)]
pub struct Gateway {
    endpoint: quinn::Endpoint,
    local_addr: SocketAddr,
    upstream: SocketAddr,
    cert: tls::SelfSigned,
}

impl Gateway {
    /// Makes the certificate and binds the UDP socket. Must run inside a tokio runtime.
    pub fn bind(config: &GatewayConfig) -> Result<Self, GatewayError> {
        let cert = tls::SelfSigned::generate(config.listen.ip())?;
        let server_config = tls::server_config(&cert)?;
        let bind = |source| GatewayError::Bind {
            addr: config.listen,
            source,
        };
        let endpoint = quinn::Endpoint::server(server_config, config.listen).map_err(bind)?;
        let local_addr = endpoint.local_addr().map_err(bind)?;
        Ok(Self {
            endpoint,
            local_addr,
            upstream: config.upstream,
            cert,
        })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert.pem
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert.der
    }

    /// Serves until `shutdown` completes, then shuts down gracefully (see the crate docs).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Self {
            endpoint,
            local_addr,
            upstream,
            cert: _,
        } = self;
        info!(listen = %local_addr, %upstream, "h3-gateway started");
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                incoming = endpoint.accept() => match incoming {
                    Some(incoming) => {
                        connections.spawn(serve_connection(incoming, upstream, stop_rx.clone()));
                    }
                    None => break,
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }

        info!(connections = connections.len(), "shutting down");
        endpoint.set_server_config(None);
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                grace_secs = SHUTDOWN_GRACE.as_secs(),
                "requests still in flight after the grace period; closing them"
            );
            connections.abort_all();
        }
        endpoint.close(0u32.into(), b"shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(2), endpoint.wait_idle()).await;
        info!("h3-gateway stopped");
    }
}

type ServerConnection = h3::server::Connection<h3_quinn::Connection, Bytes>;
type RequestStream = h3::server::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>;

async fn serve_connection(
    incoming: quinn::Incoming,
    upstream: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let client = incoming.remote_address();
    let connection = match incoming.await {
        Ok(connection) => connection,
        Err(e) => {
            debug!(%client, error = %e, "QUIC handshake failed");
            return;
        }
    };
    let mut h3: ServerConnection = match h3::server::builder()
        .build(h3_quinn::Connection::new(connection))
        .await
    {
        Ok(h3) => h3,
        Err(e) => {
            debug!(%client, error = %e, "HTTP/3 connection setup failed");
            return;
        }
    };
    debug!(%client, "HTTP/3 connection");
    let mut requests = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => {
                // GOAWAY: no new requests; the ones accepted finish below.
                let _ = h3.shutdown(0).await;
                break;
            }
            accepted = h3.accept() => match accepted {
                Ok(Some(resolver)) => {
                    requests.spawn(async move {
                        match resolver.resolve_request().await {
                            Ok((request, stream)) => {
                                handle_request(request, stream, upstream, client).await;
                            }
                            Err(e) => debug!(%client, error = %e, "bad HTTP/3 request"),
                        }
                    });
                }
                Ok(None) => break,
                Err(e) => {
                    if !e.is_h3_no_error() {
                        debug!(%client, error = %e, "HTTP/3 connection ended");
                    }
                    break;
                }
            },
            Some(_) = requests.join_next(), if !requests.is_empty() => {}
        }
    }
    while requests.join_next().await.is_some() {}
}

async fn handle_request(
    request: http::Request<()>,
    mut stream: RequestStream,
    upstream: SocketAddr,
    client: SocketAddr,
) {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = match read_body(&mut stream).await {
        Ok(body) => forward::forward(request, body, upstream, client).await,
        Err(BodyError::TooLarge) => forward::problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("h3-gateway: request body larger than {MAX_BODY} bytes"),
        ),
        Err(BodyError::Stream(e)) => {
            debug!(%client, error = %e, "request body not received");
            return;
        }
    };
    info!(%client, %method, path, status = response.status().as_u16(), "forwarded");
    let (parts, body) = response.into_parts();
    let sent = async {
        stream
            .send_response(Response::from_parts(parts, ()))
            .await?;
        if !body.is_empty() {
            stream.send_data(body).await?;
        }
        stream.finish().await
    };
    if let Err(e) = sent.await {
        debug!(%client, error = %e, "response not delivered");
    }
}

enum BodyError {
    TooLarge,
    Stream(h3::error::StreamError),
}

async fn read_body(stream: &mut RequestStream) -> Result<Bytes, BodyError> {
    let mut body = BytesMut::new();
    while let Some(mut chunk) = stream.recv_data().await.map_err(BodyError::Stream)? {
        if body.len() + chunk.remaining() > MAX_BODY {
            return Err(BodyError::TooLarge);
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(body.freeze())
}
