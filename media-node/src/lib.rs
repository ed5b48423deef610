//! The media node: bridges WebRTC calls from browsers (ICE-lite, DTLS-SRTP on one multiplexed
//! UDP port) to plain RTP/AVP with the upstream SIP side, under the control of the edge worker.
//!
//! # Design
//!
//! - **The browser leg is our own, audio-only** ([`leg`], composed of [`ice`], [`dtls`] and
//!   [`srtp`]). The node first used str0m 0.25 for it, chosen over webrtc-rs (`rtc` 0.21, its
//!   sans-IO rewrite, and the async `webrtc`): str0m's whole API is `handle_input` /
//!   `poll_output` on a caller-owned clock (no internal `Rc`, `Mutex` or channels), it has an
//!   RTP mode that takes and hands raw RTP packets (what codec passthrough needs), its ICE-lite
//!   and DTLS ran against headless Chromium here at once, and it ships scenario tests on a
//!   virtual clock; `rtc` is a pion port built as a handler pipeline with queues of tagged
//!   messages per layer and a peer-connection API shaped after the browser's. Measured in
//!   the bridge, though, str0m's general-purpose per-call state was 56 KiB set up and 65 KiB
//!   after traffic (98% of a call's heap: streams with resend buffers and receive registers,
//!   pacer, statistics) and its per-packet bookkeeping most of the node's user-space CPU, and
//!   no setting removed either. What an audio relay needs is much less: an ICE-lite agent
//!   (answer checks with MESSAGE-INTEGRITY and FINGERPRINT, nomination, RFC 7675 consent, ICE
//!   restart; RFC 5769 vectors), one DTLS 1.2 handshake per call on `dimpl` (the DTLS engine
//!   inside str0m's aws-lc-rs backend, with one node certificate and the RFC 8122 fingerprint
//!   check; its state is dropped once the browser's first SRTP authenticates), SRTP/SRTCP in
//!   place for AES_CM_128_HMAC_SHA1_80, AEAD_AES_128_GCM and AEAD_AES_256_GCM (RFC 3711 and
//!   RFC 7714 vectors, byte-identical with str0m's output), RTCP toward the browser (SR/RR with
//!   SDES, RTT and loss from its reports) and the SDP the node writes. That is [`leg`]; str0m
//!   stays as the browser stand-in of the tests and benches and as the load generator's
//!   callers, so every part is checked against an independent implementation, and real
//!   Chromium is the judge end to end. Crypto is aws-lc-rs: **no system packages** (no
//!   `libssl-dev`/`pkg-config`; `aws-lc-sys` needs only the C compiler from
//!   `build-essential`). dimpl (and str0m, in the tests) need Rust 1.89, so this crate says
//!   `rust-version = "1.89"`.
//! - **The per-packet path is ours.** One thread ([`media`]) owns every UDP socket and the
//!   [`bridge::Bridge`] core, polls the sockets with `mio`, and feeds them to the core: no lock,
//!   no task and no channel per packet; control calls reach it over a channel plus a waker.
//!   Upstream RTP is parsed and re-headered without allocating ([`bridge::rtp`]); outgoing
//!   datagrams use recycled buffers. System calls are batched ([`udp_batch`]): `recvmmsg` per
//!   readable socket (32 datagrams a call, and no extra call to find it empty), one `sendmmsg`
//!   per wakeup for everything bound to browsers (they all leave from the one media socket);
//!   the upstream leg sends one `sendto` per packet, as every call has its own socket. A
//!   wakeup that moved packets lasts at least `batch_wait_us` (500 µs by default; interrupt
//!   moderation, as NICs do it), so a busy node handles packets in batches. Session deadlines
//!   live in an indexed min-heap, so a wakeup never scans every session. The media socket asks
//!   for `media_socket_buffer_bytes` (4 MiB) of buffer: every browser shares it. A browser's
//!   datagram is copied once, into a recycled buffer, where it is unprotected, re-headed and
//!   sent on; an upstream packet is written once, with the browser-side header, into a
//!   recycled buffer and protected there.
//! - **Memory per call.** A call's heap is its browser leg (the ICE integrity key and
//!   credentials, the two SRTP contexts, a small transmit queue and report buffer), its
//!   session record (codecs, payload type maps, counters) and its upstream leg's counters. The
//!   DTLS handshake state (5-11 KiB) lives only from the browser's first ICE check to its first
//!   SRTP packet, and the answer carries no transport-cc, NACK or header extensions, so
//!   nothing grows per packet. `BRIDGE_PATH_SESSIONS=100 cargo bench -p media-node --bench
//!   bridge_path`: **14.5 KiB per call set up, 7.0 KiB after 7 s of traffic** (with str0m as
//!   the leg: 56.0 and 66.0 KiB). The leg alone (`cargo bench -p media-node --bench
//!   leg_path`, 100 legs against str0m browsers): 12.9 KiB connected, 3.7 KiB after traffic,
//!   against 54.4 and 63.6 KiB for the str0m peers themselves.
//! - **Sans-IO core, thin IO shell.** [`bridge::Bridge`] takes `handle_receive(now, source,
//!   destination, bytes)`, `handle_timeout(now)` and the control calls, and gives
//!   `poll_transmit()`, `poll_timeout()` and `poll_event()`. Browser leg: one
//!   [`leg::BrowserLeg`] per session, ICE-lite, `setup:passive` (or `active` when the browser
//!   offers `passive`), rtcp-mux, one host candidate on the multiplexed port; datagrams are
//!   demultiplexed per RFC 7983 ([`demux`]), STUN by the local ICE ufrag in USERNAME,
//!   DTLS/SRTP by the source address ICE saw. SRTP profile: as DTLS 1.2 server dimpl picks
//!   from the browser's `use_srtp` list by a fixed priority, AEAD_AES_256_GCM,
//!   AEAD_AES_128_GCM, AES128_CM_SHA1_80 (so GCM whenever offered; a test pins it). Upstream leg: an even RTP
//!   port and the RTCP port above it from `rtp_port_min..=rtp_port_max` per session, symmetric
//!   RTP (latched to the first source sending a negotiated payload type; others dropped).
//!   Codecs: the browser offer intersected with PCMU, PCMA, G.722, Opus and telephone-event;
//!   the upstream offer lists the same with the browser's numbers; the upstream answer narrows
//!   the browser answer and sets the payload type map both ways (e.g. telephone-event 126 on
//!   the browser side, 101 upstream). Echo mode sends the browser's RTP back to it. A session
//!   that receives nothing (RTP, RTCP or ICE consent checks, so held calls live) for
//!   `media_timeout_secs` is released, and so is one whose browser, once heard from, has been
//!   silent that long while the upstream still sends (the browser vanished without a BYE);
//!   garbage on any port is counted and dropped.
//! - **Control API** in [`control`]: `POST /v1/sessions`, `POST /v1/sessions/{id}/answer`,
//!   `POST /v1/sessions/{id}/renegotiate`, `DELETE /v1/sessions/{id}`,
//!   `GET /v1/sessions/{id}/stats`, and for calls from the upstream
//!   `POST /v1/sessions/inbound` (the upstream's RTP/AVP offer in, a WebRTC offer for the
//!   browser out: the node as an ICE-lite offerer with `setup:actpass`, which Chromium answers
//!   with `setup:active`) and `POST /v1/sessions/{id}/browser-answer` (the browser's answer
//!   in, the RTP/AVP answer for the upstream out, in the upstream's payload type numbers),
//!   postcard bodies from `shared::control`, HMAC-SHA256 signed
//!   with the fleet secret (±30 s, replay cache). With `control_tls_cert`/`control_tls_key`
//!   ([`control_tls`]) the API serves HTTPS (rustls on aws-lc-rs, TLS 1.2/1.3, HTTP/1.1);
//!   a non-loopback `control_listen` requires them, plain HTTP is for loopback only. While
//!   draining, allocations get 503 `Draining` and the API keeps serving until the last call
//!   ends.
//! - **Reports to the control plane** in [`report`]: a tokio task (never on the media path)
//!   POSTs a signed postcard `NodeReport` (state, load, capacity, uptime, finished-call
//!   records) to `report_url` every `report_interval_secs`, over HTTP/3 (quinn + h3) with a
//!   browser-like HTTPS fallback when UDP is blocked (`report_transport`); a `Draining`
//!   report goes as soon as a shutdown starts. Records stay queued (bounded) until delivered.
//!   rustls uses aws-lc-rs, the crypto of DTLS and SRTP: one crypto stack.
//! - **Metrics** in [`metrics`]: with `metrics_listen` set, `GET /metrics` serves the
//!   Prometheus text format (node gauges, counters by direction and end reason, per-session
//!   quality gauges labelled `session`). A scrape is a command to the media thread, answered
//!   between packets from counters the bridge keeps anyway: nothing is added per packet.
//! - **Call quality**: loss and jitter from the RTP streams themselves (RFC 3550 A.3/A.8),
//!   RTT and reported loss from the browser's RTCP (its report blocks on our SRs) and from the upstream's RTCP
//!   RRs, an E-model MOS ([`bridge::rtp::mos_estimate`]). The upstream leg sends an SR (or an
//!   RR before it has sent RTP) every 5 s ([`bridge::rtcp`]) to the RTP port + 1, the
//!   `a=rtcp` port or the RTP port with `a=rtcp-mux`.
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
//! # Benchmark
//!
//! `cargo xtask bench media` (crate `media-bench`, driven by `xtask/src/bench_media.rs`) runs
//! this node (release build) and rtpengine 10.5 (Debian `rtpengine-daemon`, userspace
//! forwarding, `--num-threads=1`) side by side on loopback under one load generator: N
//! str0m callers (full ICE, DTLS client, SRTP, PCMU 20 ms both ways) and N plain-RTP far ends,
//! each payload stamped with its send time and sequence. It ramps N (`--steps`, default
//! 50,100,200,400,700,1000,1400; `--window-secs 10` after a 2 s warm-up; `--repeats 3`;
//! `--only ours|rtpengine`) until a step fails (any loss, added latency p99 >= 5 ms, a call not
//! connecting, or the generator falling behind its schedule), and prints per step the loss,
//! latency, bridge CPU (utime + stime of the whole process over the window), CPU per packet
//! (and its user-space and kernel parts) and RSS growth per call, then `media calls/core: ours=N rtpengine=M ratio=R`: calls per
//! fully used core (N / bridge cores used) at the largest passing N, median over repeats.
//! Both bridges get DTLS-SRTP on the caller side.
//!
//! Measured on the 2-core Debian 12 development VM, nothing else running (but for a short
//! compile during ours' first 700-call step),
//! `cargo xtask bench media --repeats 2 --steps 200,400,700,1000` (min / median / max over the
//! repeats at each repeat's largest passing N; CPU per packet split into user space and kernel
//! from the process's utime and stime):
//!
//! | | largest passing N | calls per core | CPU µs/packet | user | kernel | latency p99 |
//! |---|---|---|---|---|---|---|
//! | ours | 1000 / 1000 / 1000 | 1672 / 1800 / 1927 | 5.2 / 5.6 / 6.0 | 0.6 / 0.8 / 1.1 | 4.6 / 4.7 / 4.9 | 2.54 / 2.94 / 3.34 ms |
//! | rtpengine | 400 / 550 / 700 | 993 / 1068 / 1144 | 8.7 / 9.4 / 10.1 | 2.9 / 3.7 / 4.5 | 5.6 / 5.7 / 5.8 | 0.92 / 2.57 / 4.23 ms |
//!
//! `media calls/core: ours=1800 rtpengine=1068 ratio=1.68`
//!
//! Every step of ours passed up to 1000 calls, the ramp's end; rtpengine's ramp stopped at 700
//! and 1000 calls (added latency p99 over 5 ms). Per step ours was 1439-1927 calls per core
//! (5.2-7.0 µs per packet), rtpengine 927-1374 (7.3-10.8 µs). Memory: RSS growth per call
//! of ours was 14 KiB at the first step of a process (5 and then 0-4 after: see below),
//! rtpengine's 178-179 KiB and then 79-91. Runs vary by about 10%. History, same command:
//! with str0m as the browser leg ours was at 1098 against rtpengine's 1093 (ratio 1.00, user
//! space 4.3 µs per packet), and before batching, interrupt moderation and the timer heap at
//! 0.88 of rtpengine. The in-process core alone (`cargo bench -p media-node --bench
//! bridge_path`, no sockets) costs 0.24-0.29 µs per packet each way at 100 and 500 sessions,
//! SRTP included (with str0m: 0.9-1.9 µs), and adds 0.43-0.66 µs p99.
//!
//! ## The socket floor
//!
//! `cargo bench -p media-node --bench socket_floor` measures what the UDP path alone costs
//! here: a forwarder thread that does no user-space work at all (no SRTP, no parsing, an array
//! index to find the call) moves 172-byte datagrams every 20 ms per call and direction between
//! a loopback peer and itself, in two layouts: `ours` (one multiplexed browser socket read and
//! written in `recvmmsg`/`sendmmsg` batches, one socket per call upstream, one `sendto` per
//! packet, the same 500 µs interrupt moderation) and `single` (both sides multiplexed and
//! batched: the cheapest any socket design can be). `SOCKET_FLOOR_CALLS=400,700`:
//!
//! | layout | calls | CPU µs/packet | user | kernel | calls per core at that cost |
//! |---|---|---|---|---|---|
//! | ours | 400 | 6.31 | 0.40 | 5.92 | 1585 |
//! | single | 400 | 5.88 | 0.05 | 5.80 | 1701 |
//! | ours | 700 | 5.63 | 0.29 | 5.34 | 1776 |
//! | single | 700 | 4.92 | 0.10 | 4.81 | 2034 |
//!
//! (Repeated runs vary by about 10%; without moderation, `SOCKET_FLOOR_BATCH_WAIT_US=0`, the
//! floor is 7.5-8.0 µs per packet.)
//!
//! What limits it now:
//! - **The kernel's UDP path.** Our node now spends 4.6-4.9 µs per packet in the kernel and
//!   0.6-1.1 µs in user space, so it runs at the socket floor: the forwarder that does no
//!   user-space work at all costs 4.9-6.3 µs per packet (1,585-2,034 calls per core). On
//!   loopback the sender also runs the delivery into the receiving socket and the wakeup of
//!   its reader (this kernel does not account softirq time apart), as a NIC's receive path
//!   would be paid on a real node. Batching is already worth what it can be: rtpengine, one
//!   system call per packet each way, spends 5.6-5.8 µs in the kernel, we spend 4.7; fully
//!   batched, the floor says 0.5-0.7 µs more at most. Twice rtpengine's calls per core here
//!   (4.7 µs per packet against its 9.4) is the floor itself.
//! - **User space** (0.6-1.1 µs per packet): the shell (event loop, lookups, the one copy of
//!   each browser datagram), SRTP (AES-GCM, about 0.1 µs), RTP statistics and the leg's
//!   bookkeeping. With str0m as the leg it was 3.9-4.6 µs (stream lookup, NACK and receive
//!   registers, pacer and timeout polling, `poll_output` through ICE and DTLS state).
//! - **The machine ends the ramp**: the generator does the same SRTP work as a bridge, so at
//!   1000 calls it is 67-83% busy on one of the 2 cores; ours still passed there, rtpengine's
//!   latency did not. Calls per core comes from the bridge's own CPU accounting, so it is the
//!   figure to compare; an idle machine with more cores gives a higher largest N.
//! - Latency: `batch_wait_us` (500 µs) adds up to half a millisecond per packet by design;
//!   our p50 is 0.7-1.1 ms against rtpengine's 0.3-0.7 ms. Set it to 0 for latency first (the
//!   floor above says what that costs in CPU).
//! - Memory per call is RSS growth across a step; allocators keep freed memory between steps
//!   and a retried step reuses the same process, so figures after the first step of a process
//!   read low. The in-process bench measures the Rust heap exactly: 14.5-14.6 KiB per call when
//!   set up, 5.9-7.0 KiB after 7 s of traffic.
//!
//! Next levers, in order: (1) past the socket floor the kernel's UDP path itself has to go:
//! AF_XDP or XDP/eBPF for the plain RTP leg (rewrite and redirect in the kernel, no copy to
//! user space), which needs a NIC driver with native XDP, not loopback; io_uring only saves the
//! system call entries that batching already amortises (the `single` floor); (2) the upstream
//! leg's one `sendto` per packet could go into a `sendmmsg` per socket per wakeup (the `ours`
//! and `single` floors differ by 0.4-0.7 µs); (3) one media thread per core, each with its own
//! media port and sessions sharded by it, for calls per node (it does not change calls per
//! core).
//!
//! # Running
//!
//! ```text
//! cargo run -p media-node -- --help
//! cargo run -p media-node -- --config media-node/media-node.example.toml --check-config
//! MEDIA_NODE_CONTROL_LISTEN=127.0.0.1:0 cargo run -p media-node
//! curl http://127.0.0.1:9090/healthz   # -> ok
//! ```

pub mod bridge;
pub mod cli;
pub mod config;
pub mod control;
pub mod control_tls;
pub mod demux;
pub mod dtls;
pub mod ice;
pub mod leg;
pub mod media;
pub mod metrics;
pub mod report;
pub mod secret;
pub mod server;
pub mod signals;
pub mod srtp;
pub mod telemetry;
#[cfg(test)]
mod test_util;
pub mod udp_batch;

pub use cli::Cli;
pub use config::{Config, ConfigError, Overrides};
pub use secret::Secret;
pub use server::{run, Server, ServerError};
