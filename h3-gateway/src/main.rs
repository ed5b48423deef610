//! `h3-gateway` binary: HTTP/3 on a UDP port in, plain HTTP/1.1 to `--upstream` out. See the
//! `h3_gateway` crate docs.
//!
//! Stdout carries exactly one line, `listening on IP:PORT`, printed once the socket is bound and
//! the certificate written (so scripts and tests can wait for it); logs go to stderr.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use h3_gateway::{Gateway, GatewayConfig};
use tokio::signal::unix::{signal, SignalKind};

/// Local stand-in for Cloudflare's HTTP/3 termination: accepts HTTP/3 (self-signed
/// certificate made at start) and forwards each request as HTTP/1.1 to the upstream, adding
/// `x-webphone-via: h3`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "h3-gateway",
    version,
    after_help = "Logs: stderr, filter with RUST_LOG (default info). SIGTERM/SIGINT: stop \
                  accepting, finish requests in flight (at most 5 s), exit 0."
)]
struct Cli {
    /// UDP address to accept HTTP/3 on (port 0: any free port; the bound address is printed
    /// as `listening on IP:PORT`). UDP 8787 next to wrangler's TCP 8787 lets one URL serve
    /// both HTTP/3 and its TCP fallback.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// TCP address of the plain HTTP/1.1 upstream (wrangler dev).
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:8787")]
    upstream: SocketAddr,
    /// Write the self-signed certificate (PEM) here, for clients to trust in development.
    #[arg(long, value_name = "PATH")]
    cert_out: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "h3-gateway failed");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let gateway = Gateway::bind(&GatewayConfig {
            listen: cli.listen,
            upstream: cli.upstream,
        })?;
        if let Some(path) = &cli.cert_out {
            write_atomically(path, gateway.cert_pem().as_bytes())
                .with_context(|| format!("cannot write --cert-out {}", path.display()))?;
            tracing::info!(path = %path.display(), "certificate written");
        }
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", gateway.local_addr())
            .and_then(|()| stdout.flush())
            .context("cannot write to stdout")?;
        drop(stdout);
        gateway
            .run(async {
                let name = tokio::select! {
                    _ = terminate.recv() => "SIGTERM",
                    _ = interrupt.recv() => "SIGINT",
                };
                tracing::info!(signal = name, "signal received");
            })
            .await;
        Ok(())
    })
}

/// Writes `contents` to a temporary file beside `path`, then renames it into place, so a
/// reader never sees half a certificate.
fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}
