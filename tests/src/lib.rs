//! The harness that starts the platform's real processes, for the end-to-end tests and for
//! `cargo xtask dev`.
//!
//! # Design
//! Like corrosion's test agents: every test starts its own processes on free loopback ports with its own
//! state folder, and a guard stops the whole process group when the test ends, pass or fail.
//! - [`process`]: spawning in a new process group, stopping it on drop, bounded waits.
//! - [`media`]: the media node binary on loopback ports, reporting to an edge.
//! - [`phone`]: the demo tenant on a fresh edge, media nodes reporting to it, and the phone's browser scripts.
//! - [`http`]: a minimal HTTP/1.1 client (any `Host` header, bodies, problem+json) over a plain socket.
//! - [`sipp`]: sipp as the upstream SIP server (TCP), running a scenario a bounded number of times.
//! - [`rtp`]: a plain RTP far end (G.711, Goertzel tone detector, RFC 4733 events, a paced PCMU tone)
//!   and a WAV writer for the browser's fake microphone.
//! - [`sip_ws`]: a SIP-over-WebSocket test client (RFC 7118) with digest answers, and the dialog of
//!   a call it places.
//! - `webrtc` (feature `webrtc`, on by default): a browser's WebRTC media without a browser (str0m:
//!   ICE, DTLS-SRTP, PCMU), for bridged calls.
//! - [`upstream`]: a minimal upstream SIP server over TCP that answers calls at once (or after a
//!   183 with early media it streams itself) and records every request it gets (with its `Reason`),
//!   for tests that check what the edge sends upstream.
//! - [`edge`]: the edge Worker under `wrangler dev` (local workerd, D1, Durable Objects) with migrations
//!   applied and an operator token.

pub mod edge;
pub mod http;
pub mod media;
pub mod phone;
pub mod process;
pub mod rtp;
pub mod sip_ws;
pub mod sipp;
pub mod upstream;
#[cfg(feature = "webrtc")]
pub mod webrtc;

use std::net::TcpListener;
use std::path::PathBuf;

/// The workspace root (where `wrangler.toml` and `node_modules/` are).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_tcp_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A fresh folder under `target/test-state/` for one test's files (logs, local Worker state).
pub fn scratch_dir(name: &str) -> std::io::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = workspace_root()
        .join("target")
        .join("test-state")
        .join(format!("{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
