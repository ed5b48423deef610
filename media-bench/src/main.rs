//! `media-bench`: one step of the media bridge benchmark (see the library docs). Prints one JSON
//! line with the step's figures on stdout; progress and errors go to stderr.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use media_bench::runner::{run_step, StepConfig};
use media_bench::target::{Ours, Rtpengine, Target};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    /// Our media node (HTTP control API).
    Ours,
    /// rtpengine (ng protocol over UDP).
    Rtpengine,
}

/// One step: N WebRTC callers and N plain-RTP far ends through a bridge for a steady window.
#[derive(Debug, Parser)]
#[command(name = "media-bench")]
struct Args {
    /// Which bridge.
    #[arg(long, value_enum)]
    target: Kind,
    /// Its control address: the media node's HTTP control API, or rtpengine's ng port (UDP).
    #[arg(long)]
    control: SocketAddr,
    /// The bridge's process id (CPU time and memory are read from /proc).
    #[arg(long)]
    pid: u32,
    /// Concurrent calls.
    #[arg(long, default_value_t = 50)]
    calls: u32,
    /// Seconds measured once every call is up.
    #[arg(long, default_value_t = 10.0)]
    window_secs: f64,
    /// Seconds of media before the window.
    #[arg(long, default_value_t = 2.0)]
    warmup_secs: f64,
    /// Generator threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Fleet secret of the media node (ours only).
    #[arg(long, env = "MEDIA_BENCH_FLEET_SECRET", hide_env_values = true)]
    fleet_secret: Option<String>,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("media-bench: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args = Args::parse();
    let mut target: Box<dyn Target> = match args.target {
        Kind::Ours => Box::new(Ours::new(
            args.control,
            args.fleet_secret
                .as_deref()
                .context("--target ours needs MEDIA_BENCH_FLEET_SECRET")?,
        )),
        Kind::Rtpengine => Box::new(Rtpengine::new(
            args.control,
            &format!("{}-{}", std::process::id(), args.calls),
        )?),
    };
    let config = StepConfig {
        calls: args.calls,
        window: Duration::from_secs_f64(args.window_secs.max(0.5)),
        warmup: Duration::from_secs_f64(args.warmup_secs.max(0.0)),
        threads: args.threads,
        bridge_pid: args.pid,
        connect_timeout: Duration::from_secs(20) + Duration::from_millis(20) * args.calls,
    };
    let report = run_step(target.as_mut(), &config)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
