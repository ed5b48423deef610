//! Prometheus metrics at `GET /metrics` on `metrics_listen` (text exposition format 0.0.4).
//!
//! **How the numbers get here without touching the per-packet path.** The media thread already
//! keeps every counter it needs (per-session [`crate::bridge::rtp::ReceiveStats`], drop and
//! garbage counts, sessions allocated and ended by reason, totals of ended sessions, all plain
//! integers it owns). A scrape sends [`Command::Metrics`] over the existing control channel;
//! the media thread answers it between two batches of datagrams with a
//! [`BridgeMetrics`] snapshot (built there, so it allocates once per scrape, never per
//! packet), and this module renders it on the tokio side. No lock and no atomic is added to
//! the packet path; a scrape costs the media thread one pass over the live sessions.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::bridge::{BridgeMetrics, EndReason};
use crate::media::{Command, MediaHandle};

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Renders `m` in the Prometheus text format. Session ids are `[A-Za-z0-9_-]` (the node
/// makes them), so label values need no escaping.
pub fn render(m: &BridgeMetrics) -> String {
    let mut out = String::with_capacity(2048 + 1024 * m.sessions.len());
    let o = &mut out;
    header(
        o,
        "media_node_active_sessions",
        "gauge",
        "Sessions in progress.",
    );
    let _ = writeln!(o, "media_node_active_sessions {}", m.active);
    header(
        o,
        "media_node_capacity",
        "gauge",
        "Concurrent sessions this node accepts.",
    );
    let _ = writeln!(o, "media_node_capacity {}", m.capacity);
    header(
        o,
        "media_node_draining",
        "gauge",
        "1 while the node refuses new sessions.",
    );
    let _ = writeln!(o, "media_node_draining {}", u8::from(m.draining));
    header(
        o,
        "media_node_sessions_allocated_total",
        "counter",
        "Sessions allocated.",
    );
    let _ = writeln!(o, "media_node_sessions_allocated_total {}", m.allocated);
    header(
        o,
        "media_node_sessions_ended_total",
        "counter",
        "Sessions ended, by end reason.",
    );
    for (reason, count) in EndReason::ALL.iter().zip(m.ended) {
        let _ = writeln!(
            o,
            "media_node_sessions_ended_total{{reason=\"{}\"}} {count}",
            reason.as_str()
        );
    }
    let t = &m.totals;
    header(
        o,
        "media_node_rtp_packets_total",
        "counter",
        "RTP packets received, by direction.",
    );
    let _ = writeln!(
        o,
        "media_node_rtp_packets_total{{from=\"browser\"}} {}",
        t.packets_from_browser
    );
    let _ = writeln!(
        o,
        "media_node_rtp_packets_total{{from=\"upstream\"}} {}",
        t.packets_from_upstream
    );
    header(
        o,
        "media_node_rtp_bytes_total",
        "counter",
        "RTP payload bytes received, by direction.",
    );
    let _ = writeln!(
        o,
        "media_node_rtp_bytes_total{{from=\"browser\"}} {}",
        t.bytes_from_browser
    );
    let _ = writeln!(
        o,
        "media_node_rtp_bytes_total{{from=\"upstream\"}} {}",
        t.bytes_from_upstream
    );
    header(
        o,
        "media_node_packets_dropped_total",
        "counter",
        "Packets sessions dropped (unknown payload type, not latched, malformed).",
    );
    let _ = writeln!(o, "media_node_packets_dropped_total {}", t.packets_dropped);
    header(
        o,
        "media_node_garbage_packets_total",
        "counter",
        "Datagrams that belonged to no session or were malformed.",
    );
    let _ = writeln!(o, "media_node_garbage_packets_total {}", m.garbage);

    type Gauge = fn(&crate::bridge::SessionMetrics) -> Option<f64>;
    let per_session: [(&str, &str, Gauge); 9] = [
        (
            "media_node_session_packets_from_browser",
            "RTP packets received from the browser.",
            |s| Some(s.stats.packets_from_browser as f64),
        ),
        (
            "media_node_session_packets_from_upstream",
            "RTP packets received from the upstream.",
            |s| Some(s.stats.packets_from_upstream as f64),
        ),
        (
            "media_node_session_packets_dropped",
            "Packets the session dropped.",
            |s| Some(s.stats.packets_dropped as f64),
        ),
        (
            "media_node_session_loss_from_browser",
            "Fraction of the browser's packets lost (0-1).",
            |s| Some(f64::from(s.stats.loss_from_browser)),
        ),
        (
            "media_node_session_loss_from_upstream",
            "Fraction of the upstream's packets lost (0-1).",
            |s| Some(f64::from(s.stats.loss_from_upstream)),
        ),
        (
            "media_node_session_jitter_ms",
            "Interarrival jitter of the upstream's stream, milliseconds.",
            |s| Some(f64::from(s.stats.jitter_ms)),
        ),
        (
            "media_node_session_rtt_ms",
            "Round trip to the browser from RTCP, milliseconds.",
            |s| s.stats.rtt_ms.map(f64::from),
        ),
        (
            "media_node_session_upstream_rtt_ms",
            "Round trip to the upstream from RTCP, milliseconds.",
            |s| s.upstream_rtt_ms.map(f64::from),
        ),
        (
            "media_node_session_mos",
            "Estimated listening quality (E-model, 1-4.5).",
            |s| s.stats.mos.map(f64::from),
        ),
    ];
    for (name, help, value) in per_session {
        header(o, name, "gauge", help);
        for session in &m.sessions {
            if let Some(v) = value(session) {
                let _ = writeln!(o, "{name}{{session=\"{}\"}} {v}", session.id);
            }
        }
    }
    out
}

async fn respond(
    request: Request<hyper::body::Incoming>,
    media: &MediaHandle,
) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, content_type: &'static str, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static(content_type),
        );
        response
    };
    if request.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "try GET /metrics\n".into(),
        );
    }
    if request.method() != Method::GET {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        );
    }
    match media.call(Command::Metrics).await {
        Ok(metrics) => reply(StatusCode::OK, CONTENT_TYPE, render(&metrics)),
        Err(_) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "media thread stopped\n".into(),
        ),
    }
}

/// Serves `/metrics` on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, media: MediaHandle) {
    let media = Arc::new(media);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                warn!(error = %e, "metrics accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let media = Arc::clone(&media);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let media = Arc::clone(&media);
                async move { Ok::<_, Infallible>(respond(request, &media).await) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(%peer, error = %e, "metrics connection failed");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::{SessionMetrics, Totals};
    use shared::control::{SessionId, SessionStats};

    #[test]
    fn renders_node_and_session_metrics_in_the_text_format() {
        let metrics = BridgeMetrics {
            active: 1,
            capacity: 10,
            draining: false,
            allocated: 3,
            ended: [1, 1, 0, 0, 0],
            totals: Totals {
                packets_from_browser: 5,
                ..Totals::default()
            },
            garbage: 2,
            sessions: vec![SessionMetrics {
                id: SessionId::new("sabc"),
                stats: SessionStats {
                    rtt_ms: Some(40),
                    mos: Some(4.25),
                    ..SessionStats::default()
                },
                upstream_rtt_ms: None,
            }],
        };
        let text = render(&metrics);
        assert!(text.contains("media_node_active_sessions 1\n"), "{text}");
        assert!(text.contains("media_node_sessions_ended_total{reason=\"media-timeout\"} 1\n"));
        assert!(text.contains("media_node_rtp_packets_total{from=\"browser\"} 5\n"));
        assert!(text.contains("media_node_session_rtt_ms{session=\"sabc\"} 40\n"));
        assert!(text.contains("media_node_session_mos{session=\"sabc\"} 4.25\n"));
        assert!(
            !text.contains("media_node_session_upstream_rtt_ms{"),
            "absent until measured"
        );
        for line in text.lines() {
            assert!(
                line.starts_with("# HELP ")
                    || line.starts_with("# TYPE ")
                    || line
                        .rsplit_once(' ')
                        .is_some_and(|(_, v)| v.parse::<f64>().is_ok()),
                "{line}"
            );
        }
    }
}
