//! `cargo xtask bench media`: our media node and rtpengine side by side on this machine, under
//! the same load generator (`media-bench`), ramping the number of concurrent SRTP<->RTP G.711
//! calls until a step fails (loss, added latency p99 >= 5 ms, calls not connecting, or the
//! generator falling behind).
//!
//! For each bridge and repeat: a fresh bridge process on loopback ports, then one `media-bench`
//! run per step (each prints one JSON line). The largest passing N and the calls per fully used
//! core at that N (N / bridge CPU cores used in the window) are kept; the tables show every
//! step of every repeat and the spread over repeats. The last line is
//! `media calls/core: ours=N rtpengine=M ratio=R` (medians over repeats).
//!
//! A step that fails because the generator fell behind schedule (generator-limited) is tried
//! up to [`GENERATOR_RETRIES`] more times before it ends the ramp.
//!
//! Every process started here runs under a [`ProcessGuard`] (its own process group, stopped on
//! drop, also on error). rtpengine is started as a plain foreground process, never as a service.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use tests::http::Request;
use tests::process::{wait_for, ProcessGuard};

use crate::{setup, step};

/// Which bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    /// Our media node (release build).
    Ours,
    /// rtpengine (Debian `rtpengine-daemon`), userspace forwarding.
    Rtpengine,
}

impl Which {
    fn name(self) -> &'static str {
        match self {
            Self::Ours => "ours",
            Self::Rtpengine => "rtpengine",
        }
    }
}

/// Options of `cargo xtask bench media`.
#[derive(Debug, Clone, clap::Args)]
pub struct MediaArgs {
    /// Concurrent calls per step, ascending; the ramp stops at the first failing step.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "50,100,200,400,700,1000,1400"
    )]
    pub steps: Vec<u32>,
    /// Seconds measured at each step once every call is up.
    #[arg(long, default_value_t = 10.0)]
    pub window_secs: f64,
    /// Seconds of media before each window.
    #[arg(long, default_value_t = 2.0)]
    pub warmup_secs: f64,
    /// Ramps per bridge (the spread is shown as min/median/max).
    #[arg(long, default_value_t = 3)]
    pub repeats: u32,
    /// Benchmark only this bridge.
    #[arg(long, value_enum)]
    pub only: Option<Which>,
    /// Generator threads (the machine's cores minus the one the bridge uses, at least 1).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Ports for the media node's upstream RTP (2 per call) and rtpengine's (4 per call: RTP and
/// RTCP on each side). Both below Linux's ephemeral range (32768-60999), where the generator's
/// own sockets land.
const OURS_RTP: (u16, u16) = (20_000, 29_999);
const RTPENGINE_RTP: (u16, u16) = (10_000, 19_999);

/// Extra tries of a step that failed only because the generator fell behind.
const GENERATOR_RETRIES: u32 = 2;

/// One step's outcome, from media-bench's JSON line.
#[derive(Debug, Clone)]
struct Step {
    calls: u32,
    json: Value,
}

impl Step {
    fn f(&self, key: &str) -> f64 {
        self.json[key].as_f64().unwrap_or(f64::NAN)
    }
    fn pass(&self) -> bool {
        self.json["pass"].as_bool().unwrap_or(false)
    }
    fn generator_limited(&self) -> bool {
        self.json["generator_limited"].as_bool().unwrap_or(false)
    }
}

/// One ramp of one bridge.
#[derive(Debug, Clone, Default)]
struct Ramp {
    steps: Vec<Step>,
    /// Why the ramp stopped (the failing step's reasons), if it did.
    stopped: Option<String>,
}

impl Ramp {
    fn best(&self) -> Option<&Step> {
        self.steps.iter().rev().find(|s| s.pass())
    }
}

/// Runs the benchmark.
pub fn run(args: &MediaArgs) -> Result<()> {
    let mut steps = args.steps.clone();
    steps.sort_unstable();
    steps.dedup();
    steps.retain(|&n| n > 0);
    let Some(&max_calls) = steps.last() else {
        bail!("--steps needs at least one positive number of calls");
    };
    let targets: Vec<Which> = match args.only {
        Some(only) => vec![only],
        None => vec![Which::Ours, Which::Rtpengine],
    };
    check_port_ranges(max_calls)?;
    if targets.contains(&Which::Rtpengine) {
        setup::ensure_apt(&[("/usr/bin/rtpengine", "rtpengine-daemon")])?;
    }
    let root = setup::root();
    step("building media-node and media-bench (release)");
    setup::run(
        Command::new("cargo")
            .args([
                "build",
                "--release",
                "--quiet",
                "-p",
                "media-node",
                "-p",
                "media-bench",
            ])
            .current_dir(&root),
        "cargo build --release -p media-node -p media-bench",
    )?;
    let bench_bin = root.join("target/release/media-bench");
    let node_bin = root.join("target/release/media-node");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = args.threads.unwrap_or(cores.saturating_sub(1)).max(1);
    let dir = tests::scratch_dir("bench-media")?;
    println!(
        "media bench: steps {steps:?}, window {}s after {}s warm-up, {} repeat(s), {threads} \
         generator thread(s), {cores} cores; logs in {}",
        args.window_secs,
        args.warmup_secs,
        args.repeats,
        dir.display()
    );
    let mut results: Vec<(Which, Vec<Ramp>)> = Vec::new();
    for &target in &targets {
        let mut ramps = Vec::new();
        for repeat in 1..=args.repeats.max(1) {
            step(&format!(
                "{}: repeat {repeat} of {}",
                target.name(),
                args.repeats.max(1)
            ));
            let bridge = Bridge::start(target, &node_bin, max_calls, &dir, repeat)?;
            let mut ramp = Ramp::default();
            for &calls in &steps {
                let mut step = bridge.run_step(&bench_bin, calls, args, threads)?;
                println!("    {}", step_line(&step));
                // A generator-limited step says nothing about the bridge; on a shared machine it
                // is often another process's burst. Try again before ending the ramp.
                for _ in 0..GENERATOR_RETRIES {
                    if step.pass() || !step.generator_limited() {
                        break;
                    }
                    println!("    generator-limited: trying {calls} calls again");
                    step = bridge.run_step(&bench_bin, calls, args, threads)?;
                    println!("    {}", step_line(&step));
                }
                let passed = step.pass();
                let reasons = step.json["failures"]
                    .as_array()
                    .map(|f| {
                        f.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                    .unwrap_or_default();
                ramp.steps.push(step);
                if !passed {
                    ramp.stopped = Some(format!("at {calls} calls: {reasons}"));
                    break;
                }
            }
            drop(bridge);
            ramps.push(ramp);
        }
        results.push((target, ramps));
    }
    println!();
    let mut medians = Vec::new();
    for (target, ramps) in &results {
        print_table(*target, ramps);
        medians.push((*target, median_calls_per_core(ramps)));
    }
    let figure = |w: Which| medians.iter().find(|(t, _)| *t == w).and_then(|(_, m)| *m);
    let (ours, theirs) = (figure(Which::Ours), figure(Which::Rtpengine));
    if let (Some(o), Some(r)) = (ours, theirs) {
        println!(
            "ours / rtpengine: {:.2}x the calls per core",
            if r > 0.0 { o / r } else { f64::NAN }
        );
    }
    let int = |v: Option<f64>| v.map_or(0, |v| v.round() as u64);
    let ratio = match (ours, theirs) {
        (Some(o), Some(r)) if r > 0.0 => o / r,
        _ => 0.0,
    };
    println!(
        "media calls/core: ours={} rtpengine={} ratio={ratio:.2}",
        int(ours),
        int(theirs)
    );
    Ok(())
}

fn check_port_ranges(max_calls: u32) -> Result<()> {
    let ours = u32::from(OURS_RTP.1 - OURS_RTP.0 + 1) / 2;
    let theirs = u32::from(RTPENGINE_RTP.1 - RTPENGINE_RTP.0 + 1) / 4;
    if max_calls > ours.min(theirs) {
        bail!(
            "--steps goes up to {max_calls} calls; the RTP port ranges here hold {} (ours) and {} \
             (rtpengine)",
            ours,
            theirs
        );
    }
    Ok(())
}

/// A running bridge.
struct Bridge {
    which: Which,
    control: SocketAddr,
    secret: Option<String>,
    process: ProcessGuard,
}

fn free_udp_port() -> Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Bridge {
    fn start(
        which: Which,
        node_bin: &Path,
        max_calls: u32,
        dir: &Path,
        repeat: u32,
    ) -> Result<Self> {
        let log = dir.join(format!("{}-{repeat}.log", which.name()));
        match which {
            Which::Ours => {
                let control = SocketAddr::from(([127, 0, 0, 1], tests::free_tcp_port()?));
                let media = SocketAddr::from(([127, 0, 0, 1], free_udp_port()?));
                let secret = format!("bench-{}-{repeat}-fleet-secret", std::process::id());
                let mut cmd = Command::new(node_bin);
                cmd.env("MEDIA_NODE_ID", "bench")
                    .env("MEDIA_NODE_REGION", "local")
                    .env("MEDIA_NODE_CONTROL_LISTEN", control.to_string())
                    .env("MEDIA_NODE_MEDIA_LISTEN", media.to_string())
                    .env("MEDIA_NODE_RTP_PORT_MIN", OURS_RTP.0.to_string())
                    .env("MEDIA_NODE_RTP_PORT_MAX", OURS_RTP.1.to_string())
                    .env("MEDIA_NODE_CAPACITY", max_calls.max(1).to_string())
                    .env("MEDIA_NODE_FLEET_SECRET", &secret)
                    .env("RUST_LOG", "warn");
                let process = ProcessGuard::spawn("media node (bench)", cmd, &log)?;
                let healthy = wait_for(Duration::from_secs(20), || {
                    let resp = Request::new("GET", "127.0.0.1", "/healthz")
                        .send(control)
                        .ok()?;
                    (resp.status == 200).then_some(())
                });
                if healthy.is_none() {
                    bail!("the media node did not start:\n{}", process.log_tail(20));
                }
                Ok(Self {
                    which,
                    control,
                    secret: Some(secret),
                    process,
                })
            }
            Which::Rtpengine => {
                let ng = SocketAddr::from(([127, 0, 0, 1], free_udp_port()?));
                let mut cmd = Command::new("rtpengine");
                cmd.args([
                    "--config-file=none",
                    "--table=-1",
                    "--interface=127.0.0.1",
                    &format!("--listen-ng={ng}"),
                    &format!("--port-min={}", RTPENGINE_RTP.0),
                    &format!("--port-max={}", RTPENGINE_RTP.1),
                    "--foreground",
                    "--log-stderr",
                    "--log-level=4",
                    "--num-threads=1",
                    "--delete-delay=0",
                ]);
                let process = ProcessGuard::spawn("rtpengine (bench)", cmd, &log)?;
                let pong = wait_for(Duration::from_secs(20), || ng_ping(ng).ok());
                if pong.is_none() {
                    bail!(
                        "rtpengine did not answer an ng ping:\n{}",
                        process.log_tail(20)
                    );
                }
                Ok(Self {
                    which,
                    control: ng,
                    secret: None,
                    process,
                })
            }
        }
    }

    fn run_step(
        &self,
        bench_bin: &Path,
        calls: u32,
        args: &MediaArgs,
        threads: usize,
    ) -> Result<Step> {
        let pid = self.process.pid();
        let mut cmd = Command::new(bench_bin);
        cmd.args([
            "--target",
            self.which.name(),
            "--control",
            &self.control.to_string(),
            "--pid",
            &pid.to_string(),
            "--calls",
            &calls.to_string(),
            "--window-secs",
            &args.window_secs.to_string(),
            "--warmup-secs",
            &args.warmup_secs.to_string(),
            "--threads",
            &threads.to_string(),
        ]);
        if let Some(secret) = &self.secret {
            cmd.env("MEDIA_BENCH_FLEET_SECRET", secret);
        }
        let out = cmd
            .output()
            .with_context(|| format!("could not start {}", bench_bin.display()))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout.lines().rev().find(|l| l.starts_with('{'));
        let json: Value = line
            .and_then(|l| serde_json::from_str(l).ok())
            .ok_or_else(|| {
                anyhow!(
                    "media-bench at {calls} calls ({}) printed no result: {}\n{}\nbridge log:\n{}",
                    self.which.name(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr),
                    self.process.log_tail(20)
                )
            })?;
        Ok(Step { calls, json })
    }
}

/// rtpengine's `ping` over ng.
fn ng_ping(ng: SocketAddr) -> Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_millis(300)))?;
    socket.send_to(b"xtask_ping d7:command4:pinge", ng)?;
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf)?;
    if buf[..n].windows(4).any(|w| w == b"pong") {
        Ok(())
    } else {
        bail!("unexpected ng reply")
    }
}

fn step_line(s: &Step) -> String {
    format!(
        "{:>5} calls: {} loss {:.3}% latency p50 {:.2} ms p99 {:.2} ms | bridge {:.3} cores, \
         {:.1} us/packet (user {:.1}, sys {:.1}), {:.0} calls/core, RSS +{:.0} KiB/call | \
         generator {:.0}% busy, lag p99 {:.2} ms{}",
        s.calls,
        if s.pass() { "PASS" } else { "FAIL" },
        s.f("loss_pct"),
        s.f("latency_p50_us") / 1000.0,
        s.f("latency_p99_us") / 1000.0,
        s.f("bridge_cores"),
        s.f("cpu_us_per_packet"),
        s.f("user_us_per_packet"),
        s.f("system_us_per_packet"),
        s.f("calls_per_core"),
        s.f("rss_per_call_kib"),
        s.f("generator_utilisation") * 100.0,
        s.f("generator_lag_p99_us") / 1000.0,
        if s.generator_limited() {
            " (generator-limited)"
        } else {
            ""
        }
    )
}

fn spread(mut values: Vec<f64>) -> Option<(f64, f64, f64)> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    Some((values[0], median, values[n - 1]))
}

fn median_calls_per_core(ramps: &[Ramp]) -> Option<f64> {
    spread(
        ramps
            .iter()
            .filter_map(Ramp::best)
            .map(|s| s.f("calls_per_core"))
            .collect(),
    )
    .map(|(_, m, _)| m)
}

fn print_table(target: Which, ramps: &[Ramp]) {
    let crypto = ramps
        .iter()
        .flat_map(|r| r.steps.first())
        .find_map(|s| s.json["caller_crypto"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    println!("== {} (caller side {crypto})", target.name());
    println!(
        "| repeat | calls | pass | loss % | p50 ms | p99 ms | bridge cores | us/packet | user | sys | calls/core | KiB/call | gen busy | gen lag p99 ms |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (i, ramp) in ramps.iter().enumerate() {
        for s in &ramp.steps {
            println!(
                "| {} | {} | {} | {:.3} | {:.2} | {:.2} | {:.3} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.0}% | {:.2} |",
                i + 1,
                s.calls,
                if s.pass() {
                    "yes"
                } else if s.generator_limited() {
                    "no (generator)"
                } else {
                    "no"
                },
                s.f("loss_pct"),
                s.f("latency_p50_us") / 1000.0,
                s.f("latency_p99_us") / 1000.0,
                s.f("bridge_cores"),
                s.f("cpu_us_per_packet"),
                s.f("user_us_per_packet"),
                s.f("system_us_per_packet"),
                s.f("calls_per_core"),
                s.f("rss_per_call_kib"),
                s.f("generator_utilisation") * 100.0,
                s.f("generator_lag_p99_us") / 1000.0,
            );
        }
        match (&ramp.stopped, ramp.best()) {
            (Some(why), _) => println!("repeat {}: stopped {why}", i + 1),
            (None, Some(best)) => println!(
                "repeat {}: every step passed, up to {} calls (the ramp's end, not the bridge's limit)",
                i + 1,
                best.calls
            ),
            (None, None) => {}
        }
    }
    let best: Vec<&Step> = ramps.iter().filter_map(Ramp::best).collect();
    let show = |name: &str, values: Vec<f64>, decimals: usize| match spread(values) {
        Some((lo, mid, hi)) => {
            println!("{name}: min {lo:.decimals$} / median {mid:.decimals$} / max {hi:.decimals$}")
        }
        None => println!("{name}: no passing step"),
    };
    println!(
        "at the largest passing N of each repeat ({} of {} repeats passed a step):",
        best.len(),
        ramps.len()
    );
    show(
        "  largest passing N",
        best.iter().map(|s| f64::from(s.calls)).collect(),
        0,
    );
    show(
        "  calls per core",
        best.iter().map(|s| s.f("calls_per_core")).collect(),
        0,
    );
    show(
        "  bridge CPU us per packet",
        best.iter().map(|s| s.f("cpu_us_per_packet")).collect(),
        1,
    );
    show(
        "    of which user space",
        best.iter().map(|s| s.f("user_us_per_packet")).collect(),
        1,
    );
    show(
        "    of which kernel",
        best.iter().map(|s| s.f("system_us_per_packet")).collect(),
        1,
    );
    show(
        "  added latency p99 ms",
        best.iter()
            .map(|s| s.f("latency_p99_us") / 1000.0)
            .collect(),
        2,
    );
    show(
        "  memory per call KiB",
        best.iter().map(|s| s.f("rss_per_call_kib")).collect(),
        0,
    );
    println!();
}
