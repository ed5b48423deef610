//! The node's IO shell: binds the control (TCP) and media (UDP) sockets, serves until the
//! shutdown future completes, then drains for at most `drain_timeout_secs`.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::bridge::BridgeConfig;
use crate::config::Config;
use crate::control::{self, ControlContext};
use crate::control_tls::ControlTlsError;
use crate::media::{self, Command, MediaStats};
use crate::report::records::FinishedCalls;
use crate::report::{NodeInfo, ReportSetupError, Reporter};

/// A control client has this long to send its request headers (no slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// How long the last report may take once the media thread has stopped.
const FINAL_REPORT_WAIT: Duration = Duration::from_secs(10);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The control listen address could not be bound (in use, not local, no permission).
    #[error("cannot bind control_listen {addr} (TCP): {source}")]
    BindControl {
        /// The configured address.
        addr: SocketAddr,
        /// Why binding failed.
        source: io::Error,
    },
    /// The metrics listen address could not be bound.
    #[error("cannot bind metrics_listen {addr} (TCP): {source}")]
    BindMetrics {
        /// The configured address.
        addr: SocketAddr,
        /// Why binding failed.
        source: io::Error,
    },
    /// The media listen address could not be bound.
    #[error("cannot bind media_listen {addr} (UDP): {source}")]
    BindMedia {
        /// The configured address.
        addr: SocketAddr,
        /// Why binding failed.
        source: io::Error,
    },
    /// The control API's TLS certificate or key cannot be used.
    #[error("cannot set up control API TLS: {0}")]
    ControlTls(#[from] ControlTlsError),
    /// The media thread could not start (out of threads or file descriptors).
    #[error("cannot start the media thread: {0}")]
    MediaThread(io::Error),
    /// The reporter cannot be set up (bad `report_url`, unreadable `report_ca_file`).
    #[error("cannot set up reports: {0}")]
    Report(#[from] ReportSetupError),
}

/// A node with its sockets bound, not serving yet. Binding first lets callers (and tests)
/// learn the actual addresses when the config asks for port 0.
#[derive(Debug)]
pub struct Server {
    config: Config,
    control: TcpListener,
    control_addr: SocketAddr,
    media: std::net::UdpSocket,
    media_addr: SocketAddr,
    metrics: Option<(TcpListener, SocketAddr)>,
    /// TLS of the control API (`control_tls_cert`/`control_tls_key`), if set.
    tls: Option<Arc<rustls::ServerConfig>>,
    stats: Arc<MediaStats>,
    reporter: Option<Reporter>,
}

impl Server {
    /// Binds the control and media sockets of `config` and prepares the reporter (URL, TLS
    /// roots) if `report_url` is set.
    pub async fn bind(config: Config) -> Result<Self, ServerError> {
        let reporter = Reporter::from_config(&config)?;
        let tls = match (&config.control_tls_cert, &config.control_tls_key) {
            (Some(cert), Some(key)) => Some(crate::control_tls::server_config(cert, key)?),
            _ => None,
        };
        let bind_control = |source| ServerError::BindControl {
            addr: config.control_listen,
            source,
        };
        let control = TcpListener::bind(config.control_listen)
            .await
            .map_err(bind_control)?;
        let control_addr = control.local_addr().map_err(bind_control)?;
        let bind_media = |source| ServerError::BindMedia {
            addr: config.media_listen,
            source,
        };
        let media = std::net::UdpSocket::bind(config.media_listen).map_err(bind_media)?;
        let media_addr = media.local_addr().map_err(bind_media)?;
        let metrics = match config.metrics_listen {
            Some(addr) => {
                let bind_metrics = |source| ServerError::BindMetrics { addr, source };
                let listener = TcpListener::bind(addr).await.map_err(bind_metrics)?;
                let bound = listener.local_addr().map_err(bind_metrics)?;
                Some((listener, bound))
            }
            None => None,
        };
        Ok(Self {
            config,
            control,
            control_addr,
            media,
            media_addr,
            metrics,
            tls,
            stats: Arc::default(),
            reporter,
        })
    }

    /// The bound control address.
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// The bound metrics address, if `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr)| *addr)
    }

    /// The bound media address.
    pub fn media_addr(&self) -> SocketAddr {
        self.media_addr
    }

    /// Counters of the media socket.
    pub fn media_stats(&self) -> Arc<MediaStats> {
        Arc::clone(&self.stats)
    }

    /// Serves until `shutdown` completes, then stops accepting, logs "shutting down" and waits
    /// up to the drain timeout for open control connections before returning.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let Self {
            config,
            control,
            control_addr,
            media,
            media_addr,
            metrics,
            tls,
            stats,
            reporter,
        } = self;
        let metrics_listen = metrics
            .as_ref()
            .map_or_else(|| "off".to_owned(), |(_, addr)| addr.to_string());
        let started = Instant::now();
        info!(
            id = %config.id,
            region = %config.region,
            control_listen = %control_addr,
            control_scheme = config.control_scheme(),
            media_listen = %media_addr,
            metrics_listen = %metrics_listen,
            advertised_ip = %config.advertised_ip(),
            rtp_ports = %format_args!("{}-{}", config.rtp_port_min, config.rtp_port_max),
            capacity = config.capacity,
            version = env!("CARGO_PKG_VERSION"),
            "media-node started"
        );

        if (config.rtp_port_min..=config.rtp_port_max).contains(&media_addr.port()) {
            // Only possible with media_listen port 0 (validation rejects a configured one).
            warn!(
                media_listen = %media_addr,
                "the media port the OS picked lies inside the RTP range; fine for tests, not for production"
            );
        }

        let bridge_config = BridgeConfig {
            media_addr: SocketAddr::new(config.advertised_ip(), media_addr.port()),
            rtp_ip: config.advertised_ip(),
            rtp_port_min: config.rtp_port_min,
            rtp_port_max: config.rtp_port_max,
            capacity: usize::try_from(config.capacity).unwrap_or(usize::MAX),
            media_timeout: config.media_timeout(),
        };
        let finished = reporter
            .as_ref()
            .map(|_| Arc::new(FinishedCalls::default()));
        let shell_options = media::ShellOptions {
            batch_wait: config.batch_wait(),
            socket_buffer: usize::try_from(config.media_socket_buffer_bytes).unwrap_or(usize::MAX),
        };
        let (handle, media_thread) = media::spawn(
            media,
            bridge_config,
            shell_options,
            Arc::clone(&stats),
            finished.clone(),
        )
        .map_err(ServerError::MediaThread)?;
        let reporter = reporter.zip(finished).map(|(reporter, finished)| {
            reporter.spawn(
                NodeInfo {
                    node_id: config.id.clone(),
                    region: config.region.clone(),
                    control_url: config.effective_control_url(control_addr),
                    capacity: config.capacity,
                },
                started,
                Arc::clone(&stats),
                finished,
            )
        });
        let metrics_task = metrics
            .map(|(listener, _)| tokio::spawn(crate::metrics::serve(listener, handle.clone())));
        let context = Arc::new(ControlContext::new(
            handle.clone(),
            config.fleet_secret.as_ref().map(|s| s.expose()),
        ));

        let tls = tls.map(TlsAcceptor::from);
        let graceful = GracefulShutdown::new();
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = control.accept() => match accepted {
                    Ok((stream, peer)) => serve_control(
                        stream,
                        peer,
                        tls.clone(),
                        http.clone(),
                        graceful.watcher(),
                        Arc::clone(&context),
                    ),
                    Err(e) => {
                        warn!(error = %e, "control accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        }

        info!(
            drain_timeout_secs = config.drain_timeout_secs,
            active_sessions = stats.active_sessions(),
            "shutting down"
        );
        // Draining: new allocations get 503 Draining; the control API keeps serving so the
        // worker can release calls; stop when no session is left or the drain timeout elapses.
        handle.send(Command::Drain);
        if let Some(reporter) = &reporter {
            reporter.drain();
        }
        let deadline = tokio::time::Instant::now() + config.drain_timeout();
        while stats.active_sessions() > 0 && tokio::time::Instant::now() < deadline {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
                accepted = control.accept() => if let Ok((stream, peer)) = accepted {
                    serve_control(
                        stream,
                        peer,
                        tls.clone(),
                        http.clone(),
                        graceful.watcher(),
                        Arc::clone(&context),
                    );
                },
            }
        }
        drop(control);
        if tokio::time::timeout_at(deadline, graceful.shutdown())
            .await
            .is_err()
        {
            warn!(
                drain_timeout_secs = config.drain_timeout_secs,
                active_sessions = stats.active_sessions(),
                "drain timeout elapsed; closing what is left"
            );
        }
        handle.send(Command::Stop);
        if let Some(task) = metrics_task {
            task.abort();
        }
        let _ = tokio::task::spawn_blocking(move || media_thread.join()).await;
        if let Some(reporter) = reporter {
            reporter.finish(FINAL_REPORT_WAIT).await;
        }
        info!(
            media_packets = stats.packets(),
            media_bytes = stats.bytes(),
            "media-node stopped"
        );
        Ok(())
    }
}

/// Serves one control connection on its own task: the TLS handshake first when `tls` is set
/// (bounded by the header read timeout), then HTTP/1.1, watched by the graceful shutdown.
fn serve_control(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    http: http1::Builder,
    watcher: Watcher,
    context: Arc<ControlContext>,
) {
    let service = service_fn(move |request| {
        let context = Arc::clone(&context);
        async move { Ok::<_, Infallible>(control::handle(request, &context).await) }
    });
    tokio::spawn(async move {
        let result =
            match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream))
                            .await
                        {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                debug!(%peer, error = %e, "control TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                debug!(%peer, "control TLS handshake timed out");
                                return;
                            }
                        };
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
            };
        if let Err(e) = result {
            debug!(%peer, error = %e, "control connection failed");
        }
    });
}

/// Binds the sockets of `config` and serves until `shutdown` completes (then drains).
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
    Server::bind(config).await?.run(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn loopback_config() -> Config {
        Config::from_layers([Overrides {
            control_listen: Some("127.0.0.1:0".parse().unwrap()),
            media_listen: Some("127.0.0.1:0".parse().unwrap()),
            drain_timeout_secs: Some(5),
            ..Overrides::default()
        }])
        .unwrap()
    }

    #[tokio::test]
    async fn serves_healthz_and_returns_after_shutdown() {
        let server = Server::bind(loopback_config()).await.unwrap();
        let addr = server.control_addr();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(server.run(async {
            let _ = shutdown_rx.await;
        }));

        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: node\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        tokio::time::timeout(
            Duration::from_secs(10),
            stream.read_to_string(&mut response),
        )
        .await
        .expect("no response")
        .unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\nok"), "{response}");

        shutdown_tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), running)
            .await
            .expect("server did not stop")
            .unwrap()
            .unwrap();
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "still accepting after shutdown"
        );
    }

    #[tokio::test]
    async fn bind_failure_names_the_key_and_address() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut config = loopback_config();
        config.control_listen = taken.local_addr().unwrap();
        let err = Server::bind(config).await.unwrap_err();
        assert!(matches!(err, ServerError::BindControl { .. }));
        assert!(
            err.to_string()
                .starts_with("cannot bind control_listen 127.0.0.1:"),
            "{err}"
        );
    }
}
