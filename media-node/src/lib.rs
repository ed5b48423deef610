//! The media node: bridges WebRTC calls from browsers (ICE-lite, DTLS-SRTP on one multiplexed
//! UDP port) to plain RTP/AVP with the upstream SIP side, under the control of the edge worker.
//!
//! # Design
//!
//! This crate is today a skeleton with the shape the bridge will fill in:
//!
//! - **Sans-IO core, thin IO shell.** Protocol logic (demultiplexing per RFC 7983 in
//!   [`demux`], and later ICE-lite, DTLS-SRTP, the RTP relay and bridge state) is plain code fed
//!   bytes and time. [`server`] owns the sockets, the clock and the tasks: it binds the control
//!   TCP listener and the media UDP socket, feeds datagrams to the core (for now: classified,
//!   counted in [`media::MediaStats`] and dropped) and serves the control API in [`control`]
//!   (`GET /healthz` now; the worker's authenticated allocate/update/release calls later).
//! - **Shutdown is an argument.** [`server::run`] takes a future that completes when the node
//!   should stop (mini-redis style), so tests stop it without signals. The binary wires it to
//!   [`signals`]: the first SIGTERM/SIGINT stops accepting, logs `shutting down` and drains for
//!   at most `drain_timeout_secs` (once there are calls: no new calls, existing ones finish);
//!   a second signal exits at once with status 128+signal.
//! - **Configuration in layers.** [`config::Config::load`]: built-in loopback defaults, then
//!   the TOML file (`--config`, unknown keys rejected), then `MEDIA_NODE_*` variables and
//!   `RUST_LOG`, then flags. Validation lists every problem with the key, the environment
//!   variable and the flag to fix it. The fleet secret is a [`secret::Secret`]: never printed,
//!   logged or serialized, and it has no flag (command lines are world-readable).
//! - **Errors**: one `thiserror` enum per boundary ([`config::ConfigError`],
//!   [`server::ServerError`], [`telemetry::TelemetryError`]); `anyhow` only in `main.rs`.
//!   Exit status: 0 after a graceful shutdown, 1 on a runtime error, 2 on a configuration or
//!   usage error.
//! - **Logs** go through `tracing` to stderr as text or JSON ([`telemetry`]), with the bound
//!   addresses in the `media-node started` line (so `127.0.0.1:0` is usable by tests).
//!
//! # Running
//!
//! ```text
//! cargo run -p media-node -- --help
//! cargo run -p media-node -- --config media-node/media-node.example.toml --check-config
//! MEDIA_NODE_CONTROL_LISTEN=127.0.0.1:0 cargo run -p media-node
//! curl http://127.0.0.1:9090/healthz   # -> ok
//! ```

pub mod cli;
pub mod config;
pub mod control;
pub mod demux;
pub mod media;
pub mod secret;
pub mod server;
pub mod signals;
pub mod telemetry;

pub use cli::Cli;
pub use config::{Config, ConfigError, Overrides};
pub use secret::Secret;
pub use server::{run, Server, ServerError};
