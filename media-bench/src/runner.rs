//! One step of the benchmark: N calls through a bridge, a steady window, the figures.
//!
//! 1. Resident memory of the bridge before the calls.
//! 2. Calls are set up one by one on this thread (caller offer -> bridge -> far end answer ->
//!    bridge -> caller) and handed to the shards, which start ICE + DTLS at once and media as
//!    soon as their caller is connected.
//! 3. Once every call is connected: a warm-up, then the window. The bridge's CPU time (all
//!    threads, from /proc) and this process's are read at the window's edges, the bridge's memory
//!    at its end.
//! 4. Media stops, late packets get [`DRAIN`] to arrive, the shards report, the calls are
//!    released.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use socket2::{Domain, Socket, Type};
use str0m::change::SdpAnswer;
use str0m::media::{Direction as MediaDirection, MediaKind};
use str0m::{Candidate, Rtc};

use crate::engine::{self, CallSetup, ShardReport, Shared};
use crate::payload::{Clock, DirectionStats, Histogram, Window};
use crate::procfs;
use crate::sdp;
use crate::target::Target;

/// How long late packets may still arrive after media stops (counted lost after that).
pub const DRAIN: Duration = Duration::from_millis(500);
/// Pass criterion: added latency p99 below this.
pub const MAX_P99_US: u64 = 5_000;
/// A slot running this late (p99) means the generator is not keeping its schedule.
pub const MAX_GENERATOR_LAG_P99_US: u64 = 2_000;
/// Generator threads busier than this (CPU time / wall time) are saturated.
pub const MAX_GENERATOR_UTILISATION: f64 = 0.9;

/// What one step does.
#[derive(Debug, Clone)]
pub struct StepConfig {
    /// Concurrent calls.
    pub calls: u32,
    /// Seconds measured once every call is up.
    pub window: Duration,
    /// Seconds of media before the window.
    pub warmup: Duration,
    /// Generator threads.
    pub threads: usize,
    /// The bridge's process (CPU and memory from /proc).
    pub bridge_pid: u32,
    /// Longest wait for every call to connect.
    pub connect_timeout: Duration,
}

/// Figures of one direction.
#[derive(Debug, Clone, Serialize)]
pub struct DirectionFigures {
    /// Packets sent in the window.
    pub sent: u64,
    /// Of those, received.
    pub received: u64,
    /// Received twice.
    pub duplicates: u64,
    /// One-way latency p50, µs.
    pub p50_us: u64,
    /// p99, µs.
    pub p99_us: u64,
    /// Maximum, µs.
    pub max_us: u64,
}

impl From<&DirectionStats> for DirectionFigures {
    fn from(d: &DirectionStats) -> Self {
        Self {
            sent: d.sent,
            received: d.received,
            duplicates: d.duplicates,
            p50_us: d.latency.quantile_us(0.5),
            p99_us: d.latency.quantile_us(0.99),
            max_us: d.latency.max_us(),
        }
    }
}

/// Everything one step measured (one JSON line on stdout).
#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// Calls asked for.
    pub calls: u32,
    /// Calls set up by the bridge's control API.
    pub set_up: u32,
    /// Calls whose caller finished ICE + DTLS.
    pub connected: u32,
    /// Caller-side security (DTLS-SRTP, or SDES-SRTP where stated).
    pub caller_crypto: String,
    /// Seconds measured.
    pub window_secs: f64,
    /// Caller -> far end.
    pub to_far_end: DirectionFigures,
    /// Far end -> caller.
    pub to_caller: DirectionFigures,
    /// Lost / sent, both directions, percent.
    pub loss_pct: f64,
    /// Added latency over both directions, µs.
    pub latency_p50_us: u64,
    /// p99, µs.
    pub latency_p99_us: u64,
    /// Bridge CPU seconds (utime + stime, all threads) in the window.
    pub bridge_cpu_secs: f64,
    /// Bridge CPU seconds per window second (1.0 = one core fully used).
    pub bridge_cores: f64,
    /// Bridge CPU µs per forwarded packet (both directions).
    pub cpu_us_per_packet: f64,
    /// The part of it in user space (utime).
    pub user_us_per_packet: f64,
    /// The part of it in the kernel (stime: system calls and the softirq work on its CPU).
    pub system_us_per_packet: f64,
    /// Calls one fully used core would carry at this load: calls / bridge_cores.
    pub calls_per_core: f64,
    /// Bridge resident memory before the calls, KiB.
    pub rss_before_kib: u64,
    /// At the end of the window, KiB.
    pub rss_during_kib: u64,
    /// (during - before) / calls, KiB.
    pub rss_per_call_kib: f64,
    /// This generator's CPU seconds per window second per generator thread.
    pub generator_utilisation: f64,
    /// How late the generator's send slots ran, p99 and max, µs.
    pub generator_lag_p99_us: u64,
    /// Max, µs.
    pub generator_lag_max_us: u64,
    /// Datagrams the generator could not send.
    pub generator_send_errors: u64,
    /// Packets that were not stamped payloads for the receiving call.
    pub foreign_packets: u64,
    /// The generator could not keep its schedule: the figures say nothing about the bridge.
    pub generator_limited: bool,
    /// 0% loss, p99 < 5 ms, every call connected, generator on schedule.
    pub pass: bool,
    /// Why it did not pass.
    pub failures: Vec<String>,
}

/// `cpu` spread over `packets`, in µs (0 when nothing was forwarded).
fn per_packet_us(cpu: Duration, packets: u64) -> f64 {
    if packets == 0 {
        0.0
    } else {
        cpu.as_secs_f64() * 1e6 / packets as f64
    }
}

/// Runs one step against `target`.
pub fn run_step(target: &mut dyn Target, config: &StepConfig) -> Result<StepReport> {
    let pid = config.bridge_pid;
    let rss_before = procfs::rss_kib(pid)
        .with_context(|| format!("no /proc/{pid}/status: is the bridge running?"))?;
    let clock = Clock::new();
    let shared = Arc::new(Shared::new(clock));
    let threads = config.threads.max(1);
    let mut senders = Vec::with_capacity(threads);
    let mut far_addrs = Vec::with_capacity(threads);
    let mut handles = Vec::with_capacity(threads);
    for shard in 0..threads {
        let far = udp_socket(4 << 20)?;
        far_addrs.push(far.local_addr()?);
        let (tx, rx) = mpsc::channel::<CallSetup>();
        senders.push(tx);
        let shared = Arc::clone(&shared);
        handles.push(
            std::thread::Builder::new()
                .name(format!("shard-{shard}"))
                .spawn(move || engine::run_shard(shared, rx, far))?,
        );
    }
    let cert = str0m::crypto::from_feature_flags()
        .dtls_provider
        .generate_certificate()
        .ok_or_else(|| anyhow!("str0m could not generate a DTLS certificate"))?;

    // Set up the calls.
    let mut handles_by_call: Vec<(u32, String)> = Vec::new();
    let mut setup_errors = Vec::new();
    for call in 0..config.calls {
        let shard = call as usize % threads;
        match set_up_call(target, call, &cert, far_addrs[shard]) {
            Ok((handle, setup)) => {
                handles_by_call.push((call, handle));
                if senders[shard].send(setup).is_err() {
                    bail!("generator thread {shard} stopped");
                }
            }
            Err(e) if call == 0 => {
                stop(&shared, handles);
                return Err(e.context("setting up the first call"));
            }
            Err(e) => setup_errors.push(format!("call {call}: {e:#}")),
        }
    }
    let set_up = handles_by_call.len() as u32;

    // Wait for ICE + DTLS.
    let deadline = Instant::now() + config.connect_timeout;
    while shared.connected.load(Ordering::Acquire) < set_up as usize && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let connected = shared.connected.load(Ordering::Acquire) as u32;

    // Warm up, then measure.
    let start = Instant::now() + config.warmup;
    let end = start + config.window;
    shared.set_window(Window {
        start_ns: clock.ns(start),
        end_ns: clock.ns(end),
    });
    sleep_until(start);
    let bridge_cpu_0 = procfs::cpu_times(pid);
    let own_cpu_0 = procfs::cpu_times(std::process::id());
    let measured_from = Instant::now();
    sleep_until(end);
    let bridge_cpu_1 = procfs::cpu_times(pid);
    let own_cpu_1 = procfs::cpu_times(std::process::id());
    let measured_secs = measured_from.elapsed().as_secs_f64();
    let rss_during = procfs::rss_kib(pid).unwrap_or(0);
    shared.stop_sending.store(true, Ordering::Release);
    std::thread::sleep(DRAIN);
    let shards = stop(&shared, handles);

    // Release.
    let mut release_errors = 0;
    for (call, handle) in &handles_by_call {
        if target.release(*call, handle).is_err() {
            release_errors += 1;
        }
    }

    let mut merged = ShardReport::default();
    let mut shard_errors = Vec::new();
    for shard in shards {
        match shard {
            Ok(r) => {
                for (a, b) in merged.directions.iter_mut().zip(&r.directions) {
                    a.merge(b);
                }
                merged.lag.merge(&r.lag);
                merged.send_errors += r.send_errors;
                merged.foreign += r.foreign;
                merged.failed += r.failed;
            }
            Err(e) => shard_errors.push(e),
        }
    }
    if let Some(e) = shard_errors.first() {
        bail!("a generator thread failed: {e}");
    }
    let [up, down] = &merged.directions;
    let mut both = Histogram::default();
    both.merge(&up.latency);
    both.merge(&down.latency);
    let sent = up.sent + down.sent;
    let lost = up.lost() + down.lost();
    let loss_pct = if sent == 0 {
        100.0
    } else {
        lost as f64 * 100.0 / sent as f64
    };
    let bridge_cpu = match (bridge_cpu_0, bridge_cpu_1) {
        (Some(a), Some(b)) => b.since(&a),
        _ => bail!("the bridge (pid {pid}) exited during the window"),
    };
    let bridge_cpu_secs = bridge_cpu.total().as_secs_f64();
    let own_cpu_secs = match (own_cpu_0, own_cpu_1) {
        (Some(a), Some(b)) => b.since(&a).total().as_secs_f64(),
        _ => 0.0,
    };
    let bridge_cores = bridge_cpu_secs / measured_secs;
    let forwarded = up.received + down.received;
    let generator_utilisation = own_cpu_secs / measured_secs / threads as f64;
    let lag_p99 = merged.lag.quantile_us(0.99);
    let generator_limited =
        lag_p99 > MAX_GENERATOR_LAG_P99_US || generator_utilisation > MAX_GENERATOR_UTILISATION;

    let mut failures = Vec::new();
    if let Some(first) = setup_errors.first() {
        failures.push(format!(
            "{} of {} calls not set up (first: {first})",
            setup_errors.len(),
            config.calls
        ));
    }
    if connected < set_up {
        failures.push(format!(
            "{} of {set_up} calls did not connect (ICE + DTLS) within {:?}",
            set_up - connected,
            config.connect_timeout
        ));
    }
    if merged.failed > 0 {
        failures.push(format!("{} callers failed (str0m error)", merged.failed));
    }
    if lost > 0 || sent == 0 {
        failures.push(format!(
            "loss {loss_pct:.4}% ({} of {} to the far end, {} of {} to the caller)",
            up.lost(),
            up.sent,
            down.lost(),
            down.sent
        ));
    }
    if both.quantile_us(0.99) >= MAX_P99_US {
        failures.push(format!(
            "added latency p99 {} us >= {MAX_P99_US} us",
            both.quantile_us(0.99)
        ));
    }
    if generator_limited {
        failures.push(format!(
            "generator-limited: send slots late by p99 {lag_p99} us, generator threads {:.0}% busy",
            generator_utilisation * 100.0
        ));
    }
    if merged.send_errors > 0 {
        failures.push(format!(
            "generator could not send {} datagrams",
            merged.send_errors
        ));
    }
    if release_errors > 0 {
        failures.push(format!("{release_errors} releases failed"));
    }
    Ok(StepReport {
        calls: config.calls,
        set_up,
        connected,
        caller_crypto: target.caller_crypto().to_owned(),
        window_secs: measured_secs,
        to_far_end: up.into(),
        to_caller: down.into(),
        loss_pct,
        latency_p50_us: both.quantile_us(0.5),
        latency_p99_us: both.quantile_us(0.99),
        bridge_cpu_secs,
        bridge_cores,
        cpu_us_per_packet: per_packet_us(bridge_cpu.total(), forwarded),
        user_us_per_packet: per_packet_us(bridge_cpu.user, forwarded),
        system_us_per_packet: per_packet_us(bridge_cpu.system, forwarded),
        calls_per_core: if bridge_cores > 0.0 {
            f64::from(connected) / bridge_cores
        } else {
            0.0
        },
        rss_before_kib: rss_before,
        rss_during_kib: rss_during,
        rss_per_call_kib: rss_during.saturating_sub(rss_before) as f64
            / f64::from(connected.max(1)),
        generator_utilisation,
        generator_lag_p99_us: lag_p99,
        generator_lag_max_us: merged.lag.max_us(),
        generator_send_errors: merged.send_errors,
        foreign_packets: merged.foreign,
        generator_limited,
        pass: failures.is_empty(),
        failures,
    })
}

fn stop(
    shared: &Shared,
    handles: Vec<std::thread::JoinHandle<std::io::Result<ShardReport>>>,
) -> Vec<std::io::Result<ShardReport>> {
    shared.stop_sending.store(true, Ordering::Release);
    shared.exit.store(true, Ordering::Release);
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(std::io::Error::other("generator thread panicked")))
        })
        .collect()
}

fn sleep_until(at: Instant) {
    let now = Instant::now();
    if at > now {
        std::thread::sleep(at - now);
    }
}

/// A non-blocking UDP socket on 127.0.0.1 with `buffer` bytes of send and receive buffer.
fn udp_socket(buffer: usize) -> Result<UdpSocket> {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    // The kernel caps these at net.core.rmem_max / wmem_max; best effort.
    let _ = socket.set_recv_buffer_size(buffer);
    let _ = socket.set_send_buffer_size(buffer);
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    Ok(socket.into())
}

/// Signalling for one call: the caller's offer through the bridge to the far end and back.
fn set_up_call(
    target: &mut dyn Target,
    call: u32,
    cert: &str0m::config::DtlsCert,
    far_addr: SocketAddr,
) -> Result<(String, CallSetup)> {
    let socket = udp_socket(256 << 10)?;
    let local = socket.local_addr()?;
    let now = Instant::now();
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_pcmu(true, false)
        .set_dtls_cert(cert.clone())
        .build(now);
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    let mut change = rtc.sdp_api();
    let mid = change.add_media(MediaKind::Audio, MediaDirection::SendRecv, None, None, None);
    let (offer, pending) = change
        .apply()
        .ok_or_else(|| anyhow!("str0m made no offer"))?;
    let offer = offer.to_sdp_string();
    let dump = call == 0 && std::env::var_os("MEDIA_BENCH_DUMP_SDP").is_some();
    if dump {
        eprintln!("--- caller offer\n{offer}");
    }
    let (handle, plain_offer) = target.offer(call, &offer)?;
    if dump {
        eprintln!("--- bridge's plain offer\n{plain_offer}");
    }
    let far_target = sdp::audio_address(&plain_offer)
        .ok_or_else(|| anyhow!("the bridge's plain offer has no audio address:\n{plain_offer}"))?;
    let far_answer = sdp::far_end_answer(far_addr, 0x4d42_0000 ^ call, u64::from(call));
    let webrtc_answer = target.answer(call, &handle, &far_answer)?;
    if dump {
        eprintln!("--- far end answer\n{far_answer}--- bridge's WebRTC answer\n{webrtc_answer}");
    }
    let answer = SdpAnswer::from_sdp_string(&webrtc_answer)
        .with_context(|| format!("the bridge's WebRTC answer does not parse:\n{webrtc_answer}"))?;
    rtc.sdp_api()
        .accept_answer(pending, answer)
        .context("the caller refused the bridge's answer")?;
    Ok((
        handle,
        CallSetup {
            index: call,
            rtc,
            mid,
            socket,
            far_target,
        },
    ))
}
