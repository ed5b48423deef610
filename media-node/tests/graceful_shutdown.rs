//! SIGTERM makes a serving node stop accepting, log "shutting down" and exit 0.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{media_node, Running, WAIT};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// One `GET /healthz` over a fresh connection; `None` if the node does not answer.
fn get_healthz(addr: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: media-node\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response)
}

#[test]
fn sigterm_stops_a_serving_node_gracefully_with_exit_code_0() {
    let mut command = media_node();
    command
        .env("MEDIA_NODE_CONTROL_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_MEDIA_LISTEN", "127.0.0.1:0")
        .env("MEDIA_NODE_ID", "test-node")
        .env("MEDIA_NODE_REGION", "test-region")
        .env("MEDIA_NODE_DRAIN_TIMEOUT_SECS", "5")
        .env("MEDIA_NODE_FLEET_SECRET", "never-log-this-fleet-secret")
        .env("MEDIA_NODE_LOG_FORMAT", "json")
        .env("RUST_LOG", "info");
    let mut node = Running::spawn(command);

    let started = node.wait_for_line("startup", |l| l.contains("media-node started"));
    let started: serde_json::Value = serde_json::from_str(&started).expect("JSON log line");
    assert_eq!(started["id"], "test-node");
    assert_eq!(started["region"], "test-region");
    let control: SocketAddr = started["control_listen"]
        .as_str()
        .expect("control_listen field")
        .parse()
        .expect("control_listen is an address");
    let media: SocketAddr = started["media_listen"].as_str().unwrap().parse().unwrap();
    assert_ne!(control.port(), 0, "the log shows the bound port");
    assert_ne!(media.port(), 0, "the log shows the bound port");

    let deadline = Instant::now() + WAIT;
    let response = loop {
        match get_healthz(control) {
            Some(response) if response.starts_with("HTTP/1.1 200") => break response,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "/healthz never answered 200: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    assert!(response.ends_with("\r\n\r\nok"), "{response}");

    let pid = Pid::from_raw(i32::try_from(node.child.id()).unwrap());
    kill(pid, Signal::SIGTERM).expect("send SIGTERM");
    let status = node.wait_for_exit();

    let stderr = node.seen.join("\n");
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
    assert!(stderr.contains("shutting down"), "stderr:\n{stderr}");
    assert!(stderr.contains("SIGTERM"), "stderr:\n{stderr}");
    assert!(
        !stderr.contains("never-log-this-fleet-secret"),
        "secret logged:\n{stderr}"
    );
    assert!(
        TcpStream::connect_timeout(&control, Duration::from_secs(5)).is_err(),
        "control port still accepting after exit"
    );
}
