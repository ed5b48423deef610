//! The real binary reports over HTTP/3 through a local h3-gateway (trusted via
//! `report_ca_file`) to a control-plane stub that checks the HMAC: reports carry the node's
//! id, region, capacity, control URL and load, arrive marked `x-webphone-via: h3`, carry the
//! record of a released call, and after SIGTERM a `Draining` report arrives (with the
//! `shutdown` record of the call still up).

mod common;

use std::net::SocketAddr;

use common::control_plane::{signed_call, ControlPlane};
use common::{media_node, Running};
use h3_gateway::{Gateway, GatewayConfig};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shared::control::report::NodeState;
use shared::control::{decode, encode, AllocateRequest, AllocateResponse, Mode};

const SECRET: &str = "report-test-fleet-secret-h3";
const OFFER: &str = include_str!("data/chromium156_audio_offer.sdp");

fn allocate_echo(control: SocketAddr, call_id: &str) -> String {
    let request = AllocateRequest {
        call_id: call_id.into(),
        browser_offer_sdp: OFFER.into(),
        mode: Mode::Echo,
    };
    let (status, body) = signed_call(control, SECRET, "POST", "/v1/sessions", &encode(&request));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    decode::<AllocateResponse>(&body)
        .unwrap()
        .session_id
        .as_str()
        .to_owned()
}

#[test]
fn reports_arrive_over_h3_with_records_and_a_draining_report_after_sigterm() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let control_plane = runtime.block_on(ControlPlane::start(SECRET));
    let gateway = runtime
        .block_on(async {
            Gateway::bind(&GatewayConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                upstream: control_plane.addr,
            })
        })
        .unwrap();
    let gateway_addr = gateway.local_addr();
    let dir = std::env::temp_dir().join(format!("media-node-h3-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("gateway-cert.pem");
    std::fs::write(&cert, gateway.cert_pem()).unwrap();
    let (stop_gateway, stopped) = tokio::sync::oneshot::channel::<()>();
    let gateway_task = runtime.spawn(gateway.run(async {
        let _ = stopped.await;
    }));

    let mut command = media_node();
    command
        .env("MEDIA_NODE_ID", "h3-node")
        .env("MEDIA_NODE_REGION", "test-region")
        .env("MEDIA_NODE_CONTROL_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_MEDIA_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_RTP_PORT_MIN", "43100")
        .env("MEDIA_NODE_RTP_PORT_MAX", "43119")
        .env("MEDIA_NODE_CAPACITY", "7")
        .env("MEDIA_NODE_FLEET_SECRET", SECRET)
        // http:// on purpose: the HTTP/3 attempt still uses TLS (the gateway's certificate).
        .env(
            "MEDIA_NODE_REPORT_URL",
            format!("http://127.0.0.1:{}/fleet/report", gateway_addr.port()),
        )
        .env("MEDIA_NODE_REPORT_TRANSPORT", "auto")
        .env("MEDIA_NODE_REPORT_INTERVAL_SECS", "1")
        .env("MEDIA_NODE_REPORT_CA_FILE", &cert)
        .env("MEDIA_NODE_DRAIN_TIMEOUT_SECS", "1")
        .env("MEDIA_NODE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    let mut node = Running::spawn(command);
    let started = node.wait_for_line("startup", |l| l.contains("media-node started"));
    let started: serde_json::Value = serde_json::from_str(&started).unwrap();
    let control: SocketAddr = started["control_listen"].as_str().unwrap().parse().unwrap();

    let first = control_plane.next("first", |_| true);
    assert_eq!(first.via.as_deref(), Some("h3"), "{first:?}");
    let report = &first.report;
    assert_eq!(report.node_id, "h3-node");
    assert_eq!(report.region, "test-region");
    assert_eq!(report.capacity, 7);
    assert_eq!(report.state, NodeState::Active);
    assert_eq!(report.control_url, format!("http://{control}"));

    // A released call's record comes in a later report; a call still up shows as load.
    let released = allocate_echo(control, "released-call");
    let (status, _) = signed_call(
        control,
        SECRET,
        "DELETE",
        &format!("/v1/sessions/{released}"),
        b"",
    );
    assert_eq!(status, 200);
    let open = allocate_echo(control, "open-call");
    let with_record = control_plane.next("with the released call", |r| {
        r.report
            .finished_calls
            .iter()
            .any(|c| c.session_id == released)
    });
    assert_eq!(with_record.via.as_deref(), Some("h3"));
    let record = &with_record.report.finished_calls[0];
    assert_eq!(record.call_id, "released-call");
    assert_eq!(record.end_reason, "released");
    assert_eq!(with_record.report.active_calls, 1);
    // Delivered records are not sent again.
    let later = control_plane.next("after the record", |_| true);
    assert!(
        later.report.finished_calls.is_empty(),
        "{:?}",
        later.report.finished_calls
    );

    let pid = Pid::from_raw(i32::try_from(node.child.id()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    let draining = control_plane.next("Draining", |r| r.report.state == NodeState::Draining);
    assert_eq!(draining.via.as_deref(), Some("h3"));
    assert_eq!(draining.report.node_id, "h3-node");
    // The call still up when the node stops is recorded as ended by the shutdown.
    let shutdown = control_plane.next("with the shutdown record", |r| {
        r.report.finished_calls.iter().any(|c| c.session_id == open)
    });
    assert_eq!(shutdown.report.state, NodeState::Draining);
    assert_eq!(shutdown.report.finished_calls[0].end_reason, "shutdown");

    let status = node.wait_for_exit();
    let stderr = node.seen.join("\n");
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains(SECRET), "secret logged:\n{stderr}");
    assert!(
        !stderr.contains("report not delivered"),
        "stderr:\n{stderr}"
    );

    let _ = stop_gateway.send(());
    runtime
        .block_on(async { tokio::time::timeout(common::WAIT, gateway_task).await })
        .expect("gateway did not stop")
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
