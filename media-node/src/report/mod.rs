//! Reports to the control plane: health, capacity, load and finished-call records, POSTed to
//! `report_url` every `report_interval_secs` as a signed postcard [`NodeReport`].
//!
//! # Design
//!
//! - **A task of its own, off the media path.** The reporter is one tokio task. It reads the
//!   active-session gauge ([`MediaStats`]) and takes finished-call records from
//!   [`records::FinishedCalls`], a bounded queue the media thread pushes to once per ended
//!   session (never per packet). Records leave the queue only when a report carrying them was
//!   accepted (2xx), so a failed report loses nothing: they go again next interval (at least
//!   once; `session_id` lets the control plane drop duplicates). Past
//!   [`records::MAX_PENDING_RECORDS`] the oldest are dropped with a warning.
//! - **Transport, browser-like** ([`policy`]): `report_transport = "auto"` (default) tries
//!   HTTP/3 (quinn + h3, [`h3`]) to the URL's host and port over UDP; if the QUIC handshake
//!   fails or takes more than 3 s, or the exchange breaks, the same report goes at once over
//!   TCP ([`tcp`]: HTTPS, or plain HTTP for an `http://` URL) and HTTP/3 is left alone for
//!   60 s, doubling per consecutive failure up to 30 min; then it is tried again. An HTTP
//!   error status is not a transport failure (HTTP/3 worked), so it does not switch paths.
//!   `"h3"` and `"https"` use one path only. HTTP/3 always runs TLS, even for an `http://`
//!   URL (see [`target`]).
//! - **Signed like control calls.** Each attempt is signed afresh with
//!   [`shared::control::auth::sign_request`]: `POST`, the URL's path (normally
//!   `/fleet/report`, `REPORT_PATH`), Unix time, a random 24-character nonce, the body. The
//!   secret is never logged; errors name the URL, the transport and the status only.
//! - **Lifecycle.** A report goes at start, then every interval ([`ReporterHandle::drain`]
//!   sends a `Draining` one at once, and later ones say `Draining`). After the media thread
//!   stopped, [`ReporterHandle::finish`] sends a last `Draining` report if the `Draining`
//!   state or some records (e.g. `shutdown` ones) were not delivered yet, bounded in time.
//! - **TLS roots** ([`tls`]): webpki-roots plus `report_ca_file` (PEM or DER) for a
//!   development gateway's self-signed certificate; aws-lc-rs crypto.

pub mod h3;
pub mod policy;
pub mod records;
pub mod target;
pub mod tcp;
pub mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::StatusCode;
use rand::distr::{Alphanumeric, SampleString as _};
use shared::control::auth::sign_request;
use shared::control::report::{NodeReport, NodeState};
use shared::control::{encode, CONTENT_TYPE, MAX_BODY};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::media::MediaStats;
use crate::secret::Secret;
use policy::{Policy, Transport};
use records::FinishedCalls;
use target::Target;

/// Largest response body read from the control plane (only shown in logs).
pub const MAX_ANSWER: usize = 4096;
/// Most call records in one report (about 150 bytes each, well under [`MAX_BODY`]).
pub const MAX_RECORDS_PER_REPORT: usize = 200;

/// Why the reporter cannot be set up (reported at start, before serving).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportSetupError {
    /// `report_url` is unusable.
    #[error("report_url: {reason}")]
    Url {
        /// What is wrong.
        reason: String,
    },
    /// `report_ca_file` cannot be read or holds no usable certificate.
    #[error("report_ca_file {}: {reason}", path.display())]
    CaFile {
        /// The configured file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The TLS configuration was refused.
    #[error("report TLS configuration: {0}")]
    Tls(String),
    /// `report_url` is set but there is no fleet secret to sign reports with.
    #[error("report_url is set but fleet_secret is not; reports must be signed")]
    NoSecret,
}

/// Why one report was not delivered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {reason}")]
    Resolve {
        /// The host of `report_url`.
        host: String,
        /// The resolver's answer.
        reason: String,
    },
    /// No connection could be made (refused, unreachable, TLS failure).
    #[error("{via}: cannot connect to {addr}: {reason}")]
    Connect {
        /// The transport.
        via: Transport,
        /// The address tried.
        addr: std::net::SocketAddr,
        /// Why.
        reason: String,
    },
    /// A step took too long.
    #[error("{via}: {what} timed out after {secs} s")]
    Timeout {
        /// The transport.
        via: Transport,
        /// Which step.
        what: &'static str,
        /// The limit.
        secs: u64,
    },
    /// The exchange broke after connecting.
    #[error("{via}: request failed: {reason}")]
    Request {
        /// The transport.
        via: Transport,
        /// Why.
        reason: String,
    },
    /// The control plane answered with a non-2xx status.
    #[error("{via}: the control plane answered {status}: {detail}")]
    Rejected {
        /// The transport that carried it.
        via: Transport,
        /// The status.
        status: u16,
        /// The start of the response body.
        detail: String,
    },
}

/// A response: status and (the start of) its body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: StatusCode,
    /// Body, at most [`MAX_ANSWER`] bytes.
    pub body: Bytes,
}

/// What the node says about itself in every report.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// `id`.
    pub node_id: String,
    /// `region`.
    pub region: String,
    /// Where the Worker reaches the control API.
    pub control_url: String,
    /// `capacity`.
    pub capacity: u32,
}

/// Where the node is in its life, as the reporter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Active,
    Draining,
    /// The media thread has stopped: send what is left, then end.
    Finishing,
}

/// A reporter ready to start: URL parsed, TLS roots loaded.
pub struct Reporter {
    target: Target,
    url: String,
    interval: Duration,
    secret: Secret,
    policy: Policy,
    h3: h3::H3Client,
    tcp: tcp::TcpClient,
}

impl std::fmt::Debug for Reporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("url", &self.url)
            .field("interval", &self.interval)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Reporter {
    /// The reporter `config` asks for, `None` when `report_url` is unset.
    pub fn from_config(config: &Config) -> Result<Option<Self>, ReportSetupError> {
        let Some(url) = &config.report_url else {
            return Ok(None);
        };
        let secret = config
            .fleet_secret
            .clone()
            .ok_or(ReportSetupError::NoSecret)?;
        let target = Target::parse(url)?;
        let roots = tls::root_store(config.report_ca_file.as_deref())?;
        let h3 = h3::H3Client::new(tls::client_config(roots.clone(), tls::ALPN_H3, true)?)?;
        let tcp = tcp::TcpClient::new(tls::client_config(roots, tls::ALPN_HTTP1, false)?);
        Ok(Some(Self {
            target,
            url: url.clone(),
            interval: config.report_interval(),
            secret,
            policy: Policy::new(config.report_transport),
            h3,
            tcp,
        }))
    }

    /// Starts the reporter task. `started` is when the node started (for `uptime_s`).
    pub fn spawn(
        self,
        info: NodeInfo,
        started: Instant,
        stats: Arc<MediaStats>,
        finished: Arc<FinishedCalls>,
    ) -> ReporterHandle {
        let (phase, phase_rx) = watch::channel(Phase::Active);
        let task = tokio::spawn(
            Running {
                reporter: self,
                info,
                started,
                stats,
                finished,
                last_via: None,
            }
            .run(phase_rx),
        );
        ReporterHandle { phase, task }
    }
}

/// Controls a running reporter.
#[derive(Debug)]
pub struct ReporterHandle {
    phase: watch::Sender<Phase>,
    task: JoinHandle<()>,
}

impl ReporterHandle {
    /// The node is draining: report that now, and in every later report.
    pub fn drain(&self) {
        self.phase.send_if_modified(|phase| {
            let changed = *phase == Phase::Active;
            if changed {
                *phase = Phase::Draining;
            }
            changed
        });
    }

    /// The media thread has stopped: sends what is left (see the module docs) and ends the
    /// task, waiting at most `within`.
    pub async fn finish(self, within: Duration) {
        let _ = self.phase.send(Phase::Finishing);
        let mut task = self.task;
        if tokio::time::timeout(within, &mut task).await.is_err() {
            warn!(
                within_secs = within.as_secs(),
                "final report not delivered in time; exiting without it"
            );
            task.abort();
        }
    }
}

struct Running {
    reporter: Reporter,
    info: NodeInfo,
    started: Instant,
    stats: Arc<MediaStats>,
    finished: Arc<FinishedCalls>,
    last_via: Option<Transport>,
}

impl Running {
    async fn run(mut self, mut phase_rx: watch::Receiver<Phase>) {
        info!(
            url = %self.reporter.url,
            interval_secs = self.reporter.interval.as_secs(),
            "reporting to the control plane"
        );
        let mut ticker = tokio::time::interval(self.reporter.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut delivered_draining = false;
        loop {
            tokio::select! {
                biased;
                changed = phase_rx.changed() => if changed.is_err() {
                    // The handle is gone without `finish` (the server failed): stop quietly.
                    break;
                },
                _ = ticker.tick() => {}
            }
            let phase = *phase_rx.borrow_and_update();
            match phase {
                Phase::Active => {
                    self.report(NodeState::Active).await;
                }
                Phase::Draining => {
                    delivered_draining |= self.report(NodeState::Draining).await;
                }
                Phase::Finishing => {
                    if !delivered_draining || !self.finished.is_empty() {
                        self.report(NodeState::Draining).await;
                    }
                    let left = self.finished.len();
                    if left > 0 {
                        warn!(records = left, "exiting with call records not delivered");
                    }
                    break;
                }
            }
        }
        self.reporter.h3.close();
    }

    /// Builds, sends and accounts for one report; true if it was delivered.
    async fn report(&mut self, state: NodeState) -> bool {
        let dropped = self.finished.take_dropped();
        if dropped > 0 {
            warn!(
                dropped,
                "call records dropped: the control plane has been unreachable too long"
            );
        }
        let mut max = MAX_RECORDS_PER_REPORT;
        let (batch, body) = loop {
            let batch = self.finished.batch(max);
            let report = NodeReport {
                node_id: self.info.node_id.clone(),
                region: self.info.region.clone(),
                control_url: self.info.control_url.clone(),
                state,
                active_calls: u32::try_from(self.stats.active_sessions()).unwrap_or(u32::MAX),
                capacity: self.info.capacity,
                uptime_s: self.started.elapsed().as_secs(),
                finished_calls: batch.records.clone(),
            };
            let body = encode(&report);
            if body.len() <= MAX_BODY || max == 0 {
                break (batch, body);
            }
            max /= 2;
        };
        let records = batch.records.len();
        match self.deliver(Bytes::from(body)).await {
            Ok(via) => {
                self.finished.confirm(&batch);
                if self.last_via != Some(via) {
                    info!(
                        via = %self.via_name(via),
                        state = ?state,
                        records,
                        "report delivered"
                    );
                    self.last_via = Some(via);
                } else {
                    debug!(via = %self.via_name(via), state = ?state, records, "report delivered");
                }
                true
            }
            Err(e) => {
                warn!(
                    url = %self.reporter.url,
                    error = %e,
                    state = ?state,
                    pending_records = self.finished.len(),
                    retry_in_secs = self.reporter.interval.as_secs(),
                    "report not delivered"
                );
                false
            }
        }
    }

    /// `h3`, `https` or `http`: what the control plane records as the report's path.
    fn via_name(&self, via: Transport) -> &'static str {
        match (via, self.reporter.target.scheme) {
            (Transport::H3, _) => "h3",
            (Transport::Tcp, target::Scheme::Https) => "https",
            (Transport::Tcp, target::Scheme::Http) => "http",
        }
    }

    /// Sends `body` along the policy's plan; the transport that carried it.
    async fn deliver(&mut self, body: Bytes) -> Result<Transport, ReportError> {
        let reporter = &mut self.reporter;
        let addr = reporter.target.resolve().await?;
        let mut last_error = None;
        for &transport in reporter.policy.plan(Instant::now()) {
            let headers = signed_headers(&reporter.secret, reporter.target.signed_path(), &body);
            let result = match transport {
                Transport::H3 => {
                    reporter
                        .h3
                        .post(&reporter.target, addr, &headers, body.clone())
                        .await
                }
                Transport::Tcp => {
                    reporter
                        .tcp
                        .post(&reporter.target, addr, &headers, body.clone())
                        .await
                }
            };
            match result {
                Ok(answer) => {
                    if transport == Transport::H3 {
                        reporter.policy.h3_worked();
                    }
                    if answer.status.is_success() {
                        return Ok(transport);
                    }
                    return Err(ReportError::Rejected {
                        via: transport,
                        status: answer.status.as_u16(),
                        detail: String::from_utf8_lossy(&answer.body).trim().to_owned(),
                    });
                }
                Err(e) => {
                    if transport == Transport::H3 {
                        if let Some(wait) = reporter.policy.h3_failed(Instant::now()) {
                            info!(
                                error = %e,
                                retry_h3_in_secs = wait.as_secs(),
                                "HTTP/3 report failed; falling back to TCP"
                            );
                        }
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or(ReportError::Request {
            via: Transport::Tcp,
            reason: "no transport to try".to_owned(),
        }))
    }
}

/// The three authentication headers plus the content type for one attempt.
fn signed_headers(secret: &Secret, path: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let now_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let nonce = Alphanumeric.sample_string(&mut rand::rng(), 24);
    let mut headers = vec![("content-type", CONTENT_TYPE.to_owned())];
    headers.extend(sign_request(
        secret.expose().as_bytes(),
        "POST",
        path,
        now_unix,
        &nonce,
        body,
    ));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::control::auth::{RequestAuth, Verifier};
    use shared::control::report::REPORT_PATH;

    #[test]
    fn signed_headers_verify_with_the_fleet_secret_and_differ_per_attempt() {
        let secret = Secret::new("fleet-secret-0123456789");
        let first = signed_headers(&secret, REPORT_PATH, b"body");
        let second = signed_headers(&secret, REPORT_PATH, b"body");
        assert_ne!(first, second, "a fresh nonce per attempt");
        assert_eq!(first[0], ("content-type", CONTENT_TYPE.to_owned()));
        let mut verifier = Verifier::new(secret.expose().as_bytes().to_vec());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        for headers in [&first, &second] {
            let auth = RequestAuth::from_pairs(headers.iter().map(|(k, v)| (*k, v.as_str())));
            verifier
                .verify(now, "POST", REPORT_PATH, &auth, b"body")
                .unwrap();
        }
        assert!(first.iter().all(|(_, v)| !v.contains("fleet-secret")));
    }
}
