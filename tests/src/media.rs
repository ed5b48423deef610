//! The media node binary (`target/debug/media-node`, built by `cargo xtask test` before the tests)
//! on free loopback ports, reporting to an edge.

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::http::Request;
use crate::process::{wait_for, ProcessGuard};

/// A running media node, stopped when dropped.
#[derive(Debug)]
pub struct MediaNode {
    /// Its id.
    pub id: String,
    /// Its control API (HTTP).
    pub control: SocketAddr,
    /// Its WebRTC media port (UDP).
    pub media: SocketAddr,
    process: ProcessGuard,
}

/// The media node binary of this workspace.
pub fn binary() -> PathBuf {
    crate::workspace_root().join("target/debug/media-node")
}

impl MediaNode {
    /// Starts node `id` with `fleet_secret`, reporting to `report_url` (if any), its RTP ports in
    /// `rtp` (inclusive), and waits until `/healthz` answers.
    pub fn start(
        id: &str,
        fleet_secret: &str,
        report_url: Option<&str>,
        rtp: (u16, u16),
        log_dir: &Path,
        extra_env: &[(&str, &str)],
    ) -> std::io::Result<Self> {
        let bin = binary();
        if !bin.exists() {
            return Err(std::io::Error::other(format!(
                "{} is missing: run `cargo build -p media-node` (cargo xtask test does)",
                bin.display()
            )));
        }
        let control = SocketAddr::from(([127, 0, 0, 1], crate::free_tcp_port()?));
        // A free port, but never one inside the node's RTP range (the node refuses that).
        let mut media_port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
        for _ in 0..64 {
            if !(rtp.0..=rtp.1).contains(&media_port) {
                break;
            }
            media_port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
        }
        let media = SocketAddr::from(([127, 0, 0, 1], media_port));
        let mut cmd = Command::new(bin);
        cmd.env("MEDIA_NODE_ID", id)
            .env("MEDIA_NODE_REGION", "local")
            .env("MEDIA_NODE_CONTROL_LISTEN", control.to_string())
            .env("MEDIA_NODE_MEDIA_LISTEN", media.to_string())
            .env("MEDIA_NODE_RTP_PORT_MIN", rtp.0.to_string())
            .env("MEDIA_NODE_RTP_PORT_MAX", rtp.1.to_string())
            .env("MEDIA_NODE_FLEET_SECRET", fleet_secret)
            .env("MEDIA_NODE_CAPACITY", "20")
            .env("RUST_LOG", "info");
        if let Some(url) = report_url {
            cmd.env("MEDIA_NODE_REPORT_URL", url)
                .env("MEDIA_NODE_REPORT_INTERVAL_SECS", "1");
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        let process = ProcessGuard::spawn(
            &format!("media node {id}"),
            cmd,
            &log_dir.join(format!("media-{id}.log")),
        )?;
        let node = Self {
            id: id.to_owned(),
            control,
            media,
            process,
        };
        let healthy = wait_for(Duration::from_secs(20), || {
            let resp = Request::new("GET", "127.0.0.1", "/healthz")
                .send(node.control)
                .ok()?;
            (resp.status == 200).then_some(())
        });
        match healthy {
            Some(()) => Ok(node),
            None => Err(std::io::Error::other(format!(
                "media node {id} did not start:\n{}",
                node.process.log_tail(20)
            ))),
        }
    }

    /// The end of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// Its process, to signal or kill it.
    pub fn process(&mut self) -> &mut ProcessGuard {
        &mut self.process
    }
}
