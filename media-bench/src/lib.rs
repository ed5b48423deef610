//! `media-bench`: the load generator behind `cargo xtask bench media`. It plays N WebRTC callers
//! and N plain-RTP far ends through a media bridge (our media node, or rtpengine for comparison)
//! and measures what the bridge costs and what it does to the packets.
//!
//! # Design
//!
//! - **Real protocols on real sockets.** Each caller is a str0m 0.25 `Rtc` (the media node's own
//!   WebRTC stack) as a browser would be: full ICE as the controlling agent, DTLS client,
//!   SRTP, PCMU at 20 ms (160-byte payloads, 50 packets/s). Each far end is plain RTP/AVP
//!   from a UDP socket, also 50 packets/s. Signalling is the bridge's real control API:
//!   [`target::Ours`] signs postcard bodies with the fleet secret over HTTP;
//!   [`target::Rtpengine`] speaks ng (bencode, [`bencode`], over UDP) with flags turning the
//!   caller's WebRTC offer into plain RTP toward the far end and the far end's answer back into
//!   ICE + DTLS-SRTP (`ICE: force`, `DTLS: passive`).
//! - **Stamped payloads** ([`payload`]): each packet carries its call, direction, a per-stream
//!   sequence and its monotonic send time. The receiver, in the same process, computes
//!   one-way added latency and loss without clock sync, counting packets by send time inside
//!   the measurement window; duplicates cannot hide loss.
//! - **The generator must not be the bottleneck** ([`engine`]): calls are sharded over threads
//!   (`--threads`), each shard polls its sockets with mio and paces sends on a 20-slot timer
//!   wheel (no thread per call), sockets get large buffers, and each shard's far ends share one
//!   socket. A shard records how late its slots run; when they run late (p99 over 2 ms) or the
//!   generator's threads are over 90% busy, the step is reported as generator-limited, which
//!   says nothing about the bridge.
//! - **Bridge cost from the kernel's accounting** ([`procfs`]): utime + stime of the bridge's
//!   whole process (all threads) over the window, and VmRSS before the calls and during them.
//!   Calls per core = calls / (bridge CPU seconds / window seconds).
//! - **One step per process run** ([`runner::run_step`]): `media-bench` prints one JSON line
//!   ([`runner::StepReport`]); `cargo xtask bench media` starts the bridges, ramps N, repeats,
//!   and prints the tables.
//!
//! # Running
//!
//! ```text
//! cargo xtask bench media                       # both bridges, the whole ramp
//! cargo xtask bench media --only ours --steps 50,200 --window-secs 5 --repeats 1
//! ```

pub mod bencode;
pub mod engine;
pub mod payload;
pub mod procfs;
pub mod runner;
pub mod sdp;
pub mod target;
