//! The TCP path: HTTP/1.1 with hyper, over rustls for `https://` URLs and plain for `http://`.
//! A new connection per report: it is the fallback, used while UDP is blocked.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tracing::debug;

use super::target::{Scheme, Target};
use super::{Answer, ReportError, MAX_ANSWER};
use crate::report::policy::Transport;

/// How long the TCP connect and TLS handshake may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one report exchange may take once connected.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP/1.1 client for reports.
#[derive(Clone)]
pub struct TcpClient {
    tls: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for TcpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpClient").finish_non_exhaustive()
    }
}

fn failed(reason: impl std::fmt::Display) -> ReportError {
    ReportError::Request {
        via: Transport::Tcp,
        reason: reason.to_string(),
    }
}

impl TcpClient {
    /// A client using `tls` for `https://` URLs.
    pub fn new(tls: rustls::ClientConfig) -> Self {
        Self {
            tls: tokio_rustls::TlsConnector::from(Arc::new(tls)),
        }
    }

    /// POSTs `body` with `headers` to `target` at `addr` and returns the answer.
    pub async fn post(
        &self,
        target: &Target,
        addr: SocketAddr,
        headers: &[(&'static str, String)],
        body: Bytes,
    ) -> Result<Answer, ReportError> {
        let connect_error = |reason: String| ReportError::Connect {
            via: Transport::Tcp,
            addr,
            reason,
        };
        let connect = async {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|e| connect_error(e.to_string()))?;
            let _ = stream.set_nodelay(true);
            Ok::<_, ReportError>(stream)
        };
        let timed_out = |what| ReportError::Timeout {
            via: Transport::Tcp,
            what,
            secs: CONNECT_TIMEOUT.as_secs(),
        };
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|_| timed_out("TCP connect"))??;
        let mut request = Request::post(target.path.as_str())
            .header(http::header::HOST, target.authority.as_str())
            .header(http::header::CONTENT_LENGTH, body.len());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(Full::new(body)).map_err(failed)?;
        match target.scheme {
            Scheme::Http => exchange(stream, request).await,
            Scheme::Https => {
                let name = ServerName::try_from(target.host.clone())
                    .map_err(|e| connect_error(format!("bad TLS server name: {e}")))?;
                let tls = tokio::time::timeout(CONNECT_TIMEOUT, self.tls.connect(name, stream))
                    .await
                    .map_err(|_| timed_out("TLS handshake"))?
                    .map_err(|e| connect_error(format!("TLS: {e}")))?;
                exchange(tls, request).await
            }
        }
    }
}

async fn exchange<IO>(io: IO, request: Request<Full<Bytes>>) -> Result<Answer, ReportError>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let exchange = async {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(failed)?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(error = %e, "report connection ended with an error");
            }
        });
        let response = sender.send_request(request).await.map_err(failed)?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        drop(sender);
        connection.abort();
        Ok(Answer { status, body })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or(Err(ReportError::Timeout {
            via: Transport::Tcp,
            what: "report exchange",
            secs: REQUEST_TIMEOUT.as_secs(),
        }))
}
