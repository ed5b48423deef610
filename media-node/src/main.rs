//! `media-node` binary: parse the command line, load the configuration, run the server until
//! SIGTERM/SIGINT. See the `media_node` crate docs.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use media_node::signals::{self, ShutdownSignal};
use media_node::{server, telemetry, Cli, Config};
use tokio::sync::oneshot;

/// Exit status for a configuration or usage error (clap uses it for usage errors too).
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), std::env::vars_os(), cli.overrides) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("media-node: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if cli.check_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = telemetry::init(config.log_format, &config.log_filter) {
        eprintln!("media-node: {e}");
        return ExitCode::FAILURE;
    }
    match run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "media-node failed");
            ExitCode::FAILURE
        }
    }
}

fn run(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        let received = signals::install().context("cannot install signal handlers")?;
        let (first_tx, first_rx) = oneshot::channel::<ShutdownSignal>();
        tokio::spawn(async move {
            if let Some(second) = signals::two_stage(received, first_tx).await {
                tracing::warn!(signal = second.name(), "second signal: exiting immediately");
                std::process::exit(i32::from(second.exit_code()));
            }
        });
        let shutdown = async {
            match first_rx.await {
                Ok(signal) => tracing::info!(signal = signal.name(), "signal received"),
                // No signal can arrive any more: serve until killed.
                Err(_) => std::future::pending().await,
            }
        };
        server::run(config, shutdown).await?;
        Ok(())
    })
}
