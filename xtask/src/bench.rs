//! `cargo xtask bench sip`: how many SIP messages one account's Durable Objects handle in local
//! workerd, and the workerd CPU time per message (measured from /proc, not wall time).
//! `cargo xtask bench media`: see [`crate::bench_media`].

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use tests::edge::{Edge, EdgeOptions};
use tests::sip_ws::SipWsClient;

use crate::{setup, step, worker};

/// What to benchmark.
#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// SIP messages per second through one account object, and workerd CPU per message.
    Sip {
        /// Requests to send.
        #[arg(long, default_value_t = 2000)]
        messages: u32,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 8)]
        window: u32,
    },
    /// Our media node and rtpengine side by side: SRTP<->RTP G.711 calls per CPU core at 0%
    /// loss, added latency, memory per call.
    Media(crate::bench_media::MediaArgs),
}

/// Runs a benchmark.
pub fn run(bench: &Bench) -> Result<()> {
    match bench {
        Bench::Sip { messages, window } => sip(*messages, (*window).max(1)),
        Bench::Media(args) => crate::bench_media::run(args),
    }
}

fn sip(messages: u32, window: u32) -> Result<()> {
    let tools = setup::ensure()?;
    worker::build(&tools)?;
    step("starting wrangler dev with the rate limit lifted");
    let dir = tests::scratch_dir("bench-sip")?;
    let mut edge = Edge::start(&EdgeOptions {
        port: None,
        state_dir: dir,
        operator_token: "bench-token".into(),
        vars: vec![("SIP_RATE_PER_S".into(), "1000000".into())],
        fleet_secret: None,
    })?;
    let tenant =
        json!({ "domain": "bench.test", "brand_name": "Bench", "webrtc_host": "sip.bench.test" });
    edge.send(&edge.admin("POST", "/admin/tenants").json(&tenant))?;
    let account = json!({ "password": "bench-password" });
    edge.send(
        &edge
            .admin("PUT", "/admin/tenants/bench.test/accounts/1001")
            .json(&account),
    )?;
    let mut client = SipWsClient::connect(edge.addr, "sip.bench.test", "1001", "bench.test")?;
    let reg = client.register("bench-password", 3600)?;
    if reg.status() != Some(200) {
        bail!("REGISTER answered {:?}", reg.status());
    }
    let pgid = edge.process().pid();
    let options = |client: &mut SipWsClient, i: u32| {
        let branch = client.token();
        format!(
            "OPTIONS sip:bench.test SIP/2.0\r\nVia: SIP/2.0/WSS b.invalid;branch=z9hG4bK{branch}\r\nMax-Forwards: 70\r\n\
             To: <sip:bench.test>\r\nFrom: <sip:1001@bench.test>;tag=bench\r\nCall-ID: bench-{i}\r\n\
             CSeq: {i} OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
    };
    // Warm up (JIT, object creation), then measure.
    for i in 0..50 {
        let m = options(&mut client, i);
        client.send_raw(&m)?;
        client.wait_response(&format!("bench-{i}"), "OPTIONS", 200)?;
    }
    step(&format!("sending {messages} OPTIONS, {window} in flight"));
    let cpu_before = group_cpu_ticks(pgid)?;
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(messages as usize);
    let mut next = 1000;
    let mut sent_at = std::collections::HashMap::new();
    let mut done = 0;
    while done < messages {
        while next - 1000 < messages && sent_at.len() < window as usize {
            let m = options(&mut client, next);
            sent_at.insert(format!("bench-{next}"), Instant::now());
            client.send_raw(&m)?;
            next += 1;
        }
        let resp = client.wait_for("an OPTIONS answer", Duration::from_secs(30), |m| {
            m.status() == Some(200)
        })?;
        let id = resp.call_id().map(str::to_owned).unwrap_or_default();
        if let Some(t) = sent_at.remove(&id) {
            latencies.push(t.elapsed());
            done += 1;
        }
    }
    let elapsed = started.elapsed();
    let cpu_after = group_cpu_ticks(pgid)?;
    let ticks_per_s = 100.0; // USER_HZ on Linux
    let cpu_s = (cpu_after - cpu_before) as f64 / ticks_per_s;
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!("sip bench: {messages} OPTIONS through one account object in {elapsed:.2?}");
    println!(
        "  throughput: {:.0} messages/s",
        f64::from(messages) / elapsed.as_secs_f64()
    );
    println!("  latency: p50 {:.2?} p99 {:.2?}", pct(0.5), pct(0.99));
    println!(
        "  workerd CPU: {:.2} s total, {:.3} ms per message (workerd: the Worker, both objects and the runtime; not wrangler's proxy)",
        cpu_s,
        cpu_s * 1000.0 / f64::from(messages)
    );
    Ok(())
}

/// utime + stime of the `workerd` processes in the process group (not wrangler's Node proxy), in
/// clock ticks.
fn group_cpu_ticks(pgid: u32) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc")
        .context("reading /proc")?
        .flatten()
    {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which may contain spaces) start after the last ')'.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        if !head.ends_with("(workerd") {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // rest[0] = state (field 3); pgrp is field 5, utime 14, stime 15.
        if fields.get(2).and_then(|p| p.parse::<u32>().ok()) == Some(pgid) {
            let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
            let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
            total += utime + stime;
        }
    }
    Ok(total)
}
