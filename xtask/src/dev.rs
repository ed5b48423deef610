//! `cargo xtask dev`: the whole platform on 127.0.0.1, as DESIGN.md describes it.

use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;
use tests::edge::{Edge, EdgeOptions};
use tests::process::{wait_for, ProcessGuard};

use crate::setup;
use crate::{step, worker};

/// Options of `cargo xtask dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Port for the edge (wrangler dev) on 127.0.0.1.
    #[arg(long, default_value_t = 8787)]
    pub port: u16,
    /// SIP server (TCP) that numbers other than the demo accounts and `*43` are sent to.
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: Option<String>,
    /// How many media nodes to start.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub nodes: u16,
}

const DEFAULT_TOKEN: &str = "dev-operator-token";
/// Local accounts of the demo tenant.
const DEMO_ACCOUNTS: [&str; 2] = ["1001", "1002"];

/// Builds everything and runs the local stack until Ctrl-C.
pub fn run(args: &DevArgs) -> Result<()> {
    let upstream = args.upstream.as_deref().map(parse_upstream).transpose()?;
    if TcpListener::bind(("127.0.0.1", args.port)).is_err() {
        bail!(
            "port {} on 127.0.0.1 is in use (another `cargo xtask dev`?): stop it or pass --port",
            args.port
        );
    }
    let tools = setup::ensure()?;
    worker::build(&tools)?;
    step("building the media node and the HTTP/3 gateway (cargo build --release)");
    setup::run(
        Command::new("cargo")
            .args([
                "build",
                "--quiet",
                "--release",
                "-p",
                "media-node",
                "-p",
                "h3-gateway",
            ])
            .current_dir(setup::root()),
        "cargo build -p media-node -p h3-gateway",
    )?;

    let state = setup::root().join(".dev-state");
    std::fs::create_dir_all(&state).context("creating .dev-state")?;
    // Shared by the Worker and the media nodes: signs control requests and reports. New every run.
    let fleet_secret = tests::edge::random_hex(24)?;
    step(&format!(
        "starting the edge (wrangler dev) on 127.0.0.1:{}",
        args.port
    ));
    let custom_token = std::env::var("WEBPHONE_OPERATOR_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let token = custom_token
        .clone()
        .unwrap_or_else(|| DEFAULT_TOKEN.to_owned());
    let edge = Edge::start(&EdgeOptions {
        port: Some(args.port),
        state_dir: state.join("edge"),
        operator_token: token,
        vars: Vec::new(),
        fleet_secret: Some(fleet_secret.clone()),
    })?;

    // Cloudflare's edge terminates HTTP/3 in front of the Worker; locally h3-gateway does, on the
    // same port number over UDP, so the nodes' reports take the QUIC path here too.
    step(&format!(
        "starting the HTTP/3 gateway on udp 127.0.0.1:{}",
        args.port
    ));
    let cert = state.join("h3-gateway-cert.pem");
    let _ = std::fs::remove_file(&cert);
    let mut gw = Command::new(setup::root().join("target/release/h3-gateway"));
    gw.args(["--listen", &format!("127.0.0.1:{}", args.port)])
        .args(["--upstream", &format!("127.0.0.1:{}", args.port)])
        .arg("--cert-out")
        .arg(&cert);
    let mut gateway = ProcessGuard::spawn("h3-gateway", gw, &state.join("h3-gateway.log"))?;
    if wait_for(Duration::from_secs(10), || cert.exists().then_some(())).is_none() {
        bail!(
            "h3-gateway did not start; its log ends:\n{}",
            gateway.log_tail(20)
        );
    }

    let mut nodes = Vec::new();
    for i in 1..=args.nodes {
        nodes.push(start_media_node(
            i,
            &state,
            &fleet_secret,
            args.port,
            &cert,
        )?);
    }

    step("seeding the demo tenant through the operator API");
    let mut demo = json!({
        "domain": "localhost",
        "brand_name": "Demo Phone",
        "webrtc_host": "127.0.0.1",
        "template_customer": { "payments": [{ "amount": "5.00", "description": "Starting credit" }] },
        "menu": [
            { "title": "Dialpad", "icon": "mdi-dialpad", "position": 1, "page": "dialpad" },
            { "title": "History", "icon": "mdi-history", "position": 2, "page": "history" },
            { "title": "Settings", "icon": "mdi-cog", "position": 3, "page": "settings" }
        ],
        "flags": { "edit_settings": true, "display_balance": true }
    });
    if let Some((host, port)) = &upstream {
        demo["sip"] = json!({ "registration": "local", "upstream": { "host": host, "port": port, "transport": "tcp" } });
    }
    let resp = edge.send(&edge.admin("PUT", "/admin/tenants/localhost").json(&demo))?;
    if !(resp.status == 200 || resp.status == 201) {
        bail!(
            "seeding the demo tenant failed: {} {}",
            resp.status,
            resp.text()
        );
    }

    let demo_password = std::env::var("WEBPHONE_DEMO_PASSWORD")
        .ok()
        .filter(|p| !p.is_empty());
    for user in DEMO_ACCOUNTS {
        let password = demo_password
            .clone()
            .unwrap_or_else(|| format!("demo-{user}"));
        let body = json!({ "password": password, "display_name": format!("Demo {user}") });
        let resp = edge.send(
            &edge
                .admin("PUT", &format!("/admin/tenants/localhost/accounts/{user}"))
                .json(&body),
        )?;
        if !(resp.status == 200 || resp.status == 201) {
            bail!(
                "creating demo account {user} failed: {} {}",
                resp.status,
                resp.text()
            );
        }
    }

    let port = args.port;
    println!("\nThe local stack is running:");
    println!("  phone (Domain A)        http://localhost:{port}/   config: http://localhost:{port}/api/config");
    println!("  WebRTC host (Domain B)  http://127.0.0.1:{port}/   SIP WebSocket: ws://127.0.0.1:{port}/ws");
    println!("  demo tenant             \"Demo Phone\" (domain localhost, webrtc_host 127.0.0.1)");
    match demo_password {
        Some(_) => {
            println!("  demo accounts           1001, 1002 (password from WEBPHONE_DEMO_PASSWORD)")
        }
        None => println!("  demo accounts           1001, 1002 (password demo-<username>)"),
    }
    match &upstream {
        Some((h, p)) => println!("  upstream SIP server     {h}:{p} (TCP)"),
        None => println!("  upstream SIP server     none (pass --upstream HOST:PORT)"),
    }
    match custom_token {
        Some(_) => println!("  operator API            http://127.0.0.1:{port}/admin/ (token from WEBPHONE_OPERATOR_TOKEN)"),
        None => println!("  operator API            http://127.0.0.1:{port}/admin/ (token {DEFAULT_TOKEN})"),
    }
    for (i, (_, control, media)) in nodes.iter().enumerate() {
        println!(
            "  media node {}            control http://{control}  media udp {media}",
            i + 1
        );
    }
    println!("  node reports            HTTP/3 through h3-gateway on udp 127.0.0.1:{port} (fleet: /admin/fleet)");
    println!("  logs and local state    {}", state.display());
    println!("Press Ctrl-C to stop.");

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    let mut edge = edge;
    while !stop.load(Ordering::SeqCst) {
        if let Ok(Some(status)) = edge.process().try_wait() {
            bail!(
                "wrangler dev exited ({status}); its log ends:\n{}",
                edge.log_tail(20)
            );
        }
        if let Ok(Some(status)) = gateway.try_wait() {
            bail!(
                "h3-gateway exited ({status}); its log ends:\n{}",
                gateway.log_tail(20)
            );
        }
        for (guard, _, _) in &mut nodes {
            if let Ok(Some(status)) = guard.try_wait() {
                bail!(
                    "{} exited ({status}); its log ends:\n{}",
                    guard.name(),
                    guard.log_tail(20)
                );
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    println!("\nstopping");
    Ok(())
}

fn parse_upstream(s: &str) -> Result<(String, u16)> {
    let (host, port) = s
        .rsplit_once(':')
        .with_context(|| format!("--upstream {s:?}: write it as HOST:PORT, e.g. 127.0.0.1:5060"))?;
    let port: u16 = port
        .parse()
        .with_context(|| format!("--upstream {s:?}: {port:?} is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    shared::host::Hostname::parse(host)
        .map_err(|e| anyhow::anyhow!("--upstream {s:?}: host {e}"))?;
    Ok((host.to_owned(), port))
}

/// Starts media node `i` on free loopback ports; returns it with its control and media addresses.
fn start_media_node(
    i: u16,
    state: &std::path::Path,
    fleet_secret: &str,
    edge_port: u16,
    gateway_cert: &std::path::Path,
) -> Result<(ProcessGuard, String, String)> {
    let control = format!("127.0.0.1:{}", tests::free_tcp_port()?);
    let media = format!("127.0.0.1:{}", free_udp_port()?);
    let base = 40000 + (i - 1) * 1000;
    let mut cmd = Command::new(setup::root().join("target/release/media-node"));
    cmd.env("MEDIA_NODE_ID", format!("dev-node-{i}"))
        .env("MEDIA_NODE_REGION", "local")
        .env("MEDIA_NODE_CONTROL_LISTEN", &control)
        .env("MEDIA_NODE_MEDIA_LISTEN", &media)
        .env("MEDIA_NODE_RTP_PORT_MIN", base.to_string())
        .env("MEDIA_NODE_RTP_PORT_MAX", (base + 999).to_string())
        .env("MEDIA_NODE_FLEET_SECRET", fleet_secret)
        .env(
            "MEDIA_NODE_REPORT_URL",
            format!("http://127.0.0.1:{edge_port}/fleet/report"),
        )
        .env("MEDIA_NODE_REPORT_CA_FILE", gateway_cert);
    let log = state.join(format!("media-node-{i}.log"));
    let guard = ProcessGuard::spawn(&format!("media node {i}"), cmd, &log)?;
    let addr: std::net::SocketAddr = control.parse()?;
    let healthy = wait_for(Duration::from_secs(20), || {
        let resp = tests::http::Request::new("GET", "127.0.0.1", "/healthz")
            .send(addr)
            .ok()?;
        (resp.status == 200).then_some(())
    });
    if healthy.is_none() {
        bail!(
            "media node {i} did not answer /healthz; its log ends:\n{}",
            guard.log_tail(20)
        );
    }
    Ok((guard, control, media))
}

fn free_udp_port() -> Result<u16> {
    Ok(std::net::UdpSocket::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
