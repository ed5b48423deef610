//! The real binary with `metrics_listen`: after an echo allocation through the control API,
//! `GET /metrics` is valid Prometheus text exposition with the node gauges and the session's.

mod common;

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{media_node, Running};
use shared::control::auth::sign_request;
use shared::control::{decode, encode, AllocateRequest, AllocateResponse, Mode};

const SECRET: &str = "integration-test-fleet-secret";
const OFFER: &str = include_str!("data/chromium156_audio_offer.sdp");

/// Checks every line of a text exposition: `# HELP name text`, `# TYPE name kind`, or
/// `name{label="value",...} number`. Returns the samples as (name, labels, value).
fn parse_exposition(text: &str) -> Vec<(String, String, f64)> {
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !s.starts_with(|c: char| c.is_ascii_digit())
    };
    let mut samples = Vec::new();
    let mut typed = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect(line);
            assert!(is_name(name) && !help.is_empty(), "{line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect(line);
            assert!(is_name(name), "{line}");
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            typed.push(name.to_owned());
        } else {
            let (series, value) = line.rsplit_once(' ').expect(line);
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let labels = rest.strip_suffix('}').expect(line);
                    for pair in labels.split(',') {
                        let (key, quoted) = pair.split_once('=').expect(line);
                        assert!(is_name(key), "{line}");
                        assert!(
                            quoted.len() >= 2 && quoted.starts_with('"') && quoted.ends_with('"'),
                            "{line}"
                        );
                    }
                    (name, labels)
                }
                None => (series, ""),
            };
            assert!(is_name(name), "{line}");
            assert!(typed.iter().any(|t| t == name), "no # TYPE before {line}");
            samples.push((name.to_owned(), labels.to_owned(), value));
        }
    }
    samples
}

#[test]
fn metrics_endpoint_serves_node_and_session_gauges() {
    let mut command = media_node();
    command
        .env("MEDIA_NODE_CONTROL_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_MEDIA_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_METRICS_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_RTP_PORT_MIN", "43100")
        .env("MEDIA_NODE_RTP_PORT_MAX", "43119")
        .env("MEDIA_NODE_CAPACITY", "10")
        .env("MEDIA_NODE_FLEET_SECRET", SECRET)
        .env("MEDIA_NODE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    let mut running: Running = Running::spawn(command);
    let started = running.wait_for_line("startup", |l| l.contains("media-node started"));
    let started: serde_json::Value = serde_json::from_str(&started).unwrap();
    let addr = |key: &str| -> SocketAddr { started[key].as_str().unwrap().parse().unwrap() };
    let control = addr("control_listen");
    let metrics = addr("metrics_listen");

    let body = encode(&AllocateRequest {
        call_id: "metrics-call".into(),
        browser_offer_sdp: OFFER.into(),
        mode: Mode::Echo,
    });
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let headers = sign_request(
        SECRET.as_bytes(),
        "POST",
        "/v1/sessions",
        now,
        &format!("nonce-{}-{:012}", std::process::id(), 1),
        &body,
    );
    let pairs: Vec<(&str, String)> = headers.iter().map(|(k, v)| (*k, v.clone())).collect();
    let (status, _, body) = common::http_exchange(control, "POST", "/v1/sessions", &pairs, &body);
    assert_eq!(status, 200);
    let allocated: AllocateResponse = decode(&body).unwrap();
    let session = allocated.session_id.to_string();

    let (status, head, body) = common::http_exchange(metrics, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let text = String::from_utf8(body).unwrap();
    let samples = parse_exposition(&text);
    let value = |name: &str, labels: &str| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|(_, _, v)| *v)
            .unwrap_or_else(|| panic!("no {name}{{{labels}}} in\n{text}"))
    };
    assert_eq!(value("media_node_active_sessions", ""), 1.0);
    assert_eq!(value("media_node_capacity", ""), 10.0);
    assert_eq!(value("media_node_draining", ""), 0.0);
    assert_eq!(value("media_node_sessions_allocated_total", ""), 1.0);
    assert_eq!(
        value("media_node_sessions_ended_total", "reason=\"released\""),
        0.0
    );
    let label = format!("session=\"{session}\"");
    assert_eq!(
        value("media_node_session_packets_from_browser", &label),
        0.0
    );
    assert_eq!(value("media_node_session_loss_from_browser", &label), 0.0);
    assert_eq!(value("media_node_session_jitter_ms", &label), 0.0);
    value("media_node_garbage_packets_total", "");

    let (status, _, _) = common::http_exchange(metrics, "GET", "/nope", &[], b"");
    assert_eq!(status, 404);
}
