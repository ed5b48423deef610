//! The HTTP/3 path: quinn + h3. One QUIC connection is kept between reports (the control
//! plane's idle timeout permitting) and made again after any failure.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf as _, Bytes, BytesMut};
use http::Request;
use tokio::task::JoinHandle;
use tracing::debug;

use super::target::Target;
use super::{Answer, ReportError, ReportSetupError, MAX_ANSWER};
use crate::report::policy::Transport;

/// How long the QUIC + HTTP/3 handshake may take before HTTP/3 counts as blocked.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one report exchange may take once connected.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

type SendRequest = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

struct Open {
    addr: SocketAddr,
    connection: quinn::Connection,
    send: SendRequest,
    driver: JoinHandle<()>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.connection.close(0u32.into(), b"");
        self.driver.abort();
    }
}

/// An HTTP/3 client for reports.
pub struct H3Client {
    config: quinn::ClientConfig,
    endpoint: Option<quinn::Endpoint>,
    open: Option<Open>,
}

impl std::fmt::Debug for H3Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H3Client")
            .field("connected_to", &self.open.as_ref().map(|o| o.addr))
            .finish_non_exhaustive()
    }
}

fn failed(reason: impl std::fmt::Display) -> ReportError {
    ReportError::Request {
        via: Transport::H3,
        reason: reason.to_string(),
    }
}

impl H3Client {
    /// A client trusting `tls` (which must offer ALPN `h3` and TLS 1.3).
    pub fn new(tls: rustls::ClientConfig) -> Result<Self, ReportSetupError> {
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|e| ReportSetupError::Tls(e.to_string()))?;
        Ok(Self {
            config: quinn::ClientConfig::new(Arc::new(quic)),
            endpoint: None,
            open: None,
        })
    }

    /// Closes the connection, if any (politely: the server frees its state at once).
    pub fn close(&mut self) {
        self.open = None;
        if let Some(endpoint) = self.endpoint.take() {
            endpoint.close(0u32.into(), b"");
        }
    }

    /// Makes sure there is a connection to `addr`; true if it was made just now.
    async fn connect(&mut self, target: &Target, addr: SocketAddr) -> Result<bool, ReportError> {
        if let Some(open) = &self.open {
            if open.addr == addr && open.connection.close_reason().is_none() {
                return Ok(false);
            }
        }
        self.open = None;
        let local: SocketAddr = if addr.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let endpoint = match &self.endpoint {
            Some(endpoint)
                if endpoint
                    .local_addr()
                    .is_ok_and(|a| a.is_ipv4() == addr.is_ipv4()) =>
            {
                endpoint.clone()
            }
            _ => {
                let mut endpoint =
                    quinn::Endpoint::client(local).map_err(|e| ReportError::Connect {
                        via: Transport::H3,
                        addr,
                        reason: format!("cannot open a UDP socket: {e}"),
                    })?;
                endpoint.set_default_client_config(self.config.clone());
                self.endpoint = Some(endpoint.clone());
                endpoint
            }
        };
        let handshake = async {
            let connection = endpoint
                .connect(addr, &target.host)
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
            let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(connection.clone()))
                .await
                .map_err(|e| e.to_string())?;
            let driver = tokio::spawn(async move {
                let closed = driver.wait_idle().await;
                debug!(reason = %closed, "HTTP/3 report connection closed");
            });
            Ok::<_, String>(Open {
                addr,
                connection,
                send,
                driver,
            })
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, handshake).await {
            Ok(Ok(open)) => {
                self.open = Some(open);
                Ok(true)
            }
            Ok(Err(reason)) => Err(ReportError::Connect {
                via: Transport::H3,
                addr,
                reason,
            }),
            Err(_) => Err(ReportError::Timeout {
                via: Transport::H3,
                what: "QUIC handshake",
                secs: CONNECT_TIMEOUT.as_secs(),
            }),
        }
    }

    /// POSTs `body` with `headers` to `target` at `addr` and returns the answer. A failure on
    /// a kept connection (the server may have closed it meanwhile) is retried once on a new
    /// one before it counts.
    pub async fn post(
        &mut self,
        target: &Target,
        addr: SocketAddr,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<Answer, ReportError> {
        let fresh = self.connect(target, addr).await?;
        match self.exchange(target, headers, body.clone()).await {
            Err(e) if !fresh => {
                debug!(error = %e, "HTTP/3 report failed on a kept connection; reconnecting");
                self.connect(target, addr).await?;
                self.exchange(target, headers, body).await
            }
            result => result,
        }
    }

    async fn exchange(
        &mut self,
        target: &Target,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<Answer, ReportError> {
        let Some(open) = &self.open else {
            return Err(failed("no connection"));
        };
        let mut send = open.send.clone();
        let mut request = Request::post(target.h3_uri());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(()).map_err(failed)?;
        let exchange = async {
            let mut stream = send.send_request(request).await.map_err(failed)?;
            stream.send_data(body).await.map_err(failed)?;
            stream.finish().await.map_err(failed)?;
            let response = stream.recv_response().await.map_err(failed)?;
            let mut answer = BytesMut::new();
            while let Some(mut chunk) = stream.recv_data().await.map_err(failed)? {
                while chunk.has_remaining() {
                    let part = chunk.chunk();
                    let take = part.len().min(MAX_ANSWER.saturating_sub(answer.len()));
                    answer.extend_from_slice(&part[..take]);
                    let n = part.len();
                    chunk.advance(n);
                }
            }
            Ok(Answer {
                status: response.status(),
                body: answer.freeze(),
            })
        };
        let result = match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ReportError::Timeout {
                via: Transport::H3,
                what: "report exchange",
                secs: REQUEST_TIMEOUT.as_secs(),
            }),
        };
        if result.is_err() {
            self.open = None;
        }
        result
    }
}
