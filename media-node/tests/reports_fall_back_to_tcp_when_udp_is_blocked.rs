//! With `report_transport = "auto"` and nothing answering HTTP/3 on the report URL's UDP port,
//! the real binary's reports still reach the control plane, over TCP (no `x-webphone-via`
//! header), and after SIGTERM a `Draining` report arrives the same way.

mod common;

use common::control_plane::ControlPlane;
use common::{media_node, Running};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use shared::control::report::NodeState;

const SECRET: &str = "report-test-fleet-secret-tcp";

#[test]
fn reports_go_over_tcp_when_h3_gets_no_answer() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Only the TCP server exists: the same host:port over UDP has no listener.
    let control_plane = runtime.block_on(ControlPlane::start(SECRET));

    let mut command = media_node();
    command
        .env("MEDIA_NODE_ID", "tcp-node")
        .env("MEDIA_NODE_CONTROL_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_MEDIA_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_CAPACITY", "3")
        .env("MEDIA_NODE_FLEET_SECRET", SECRET)
        .env(
            "MEDIA_NODE_REPORT_URL",
            format!("http://{}/fleet/report", control_plane.addr),
        )
        .env("MEDIA_NODE_REPORT_TRANSPORT", "auto")
        .env("MEDIA_NODE_REPORT_INTERVAL_SECS", "1")
        .env("MEDIA_NODE_DRAIN_TIMEOUT_SECS", "1")
        .env("MEDIA_NODE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    let mut node = Running::spawn(command);
    node.wait_for_line("startup", |l| l.contains("media-node started"));

    for _ in 0..2 {
        let received = control_plane.next("Active", |_| true);
        assert_eq!(received.via, None, "came through an HTTP/3 gateway?");
        assert_eq!(received.report.node_id, "tcp-node");
        assert_eq!(received.report.capacity, 3);
        assert_eq!(received.report.state, NodeState::Active);
    }
    node.wait_for_line("fallback", |l| {
        l.contains("HTTP/3 report failed; falling back to TCP")
    });

    let pid = Pid::from_raw(i32::try_from(node.child.id()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    let draining = control_plane.next("Draining", |r| r.report.state == NodeState::Draining);
    assert_eq!(draining.via, None);

    let status = node.wait_for_exit();
    let stderr = node.seen.join("\n");
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(!stderr.contains(SECRET), "secret logged:\n{stderr}");
}
