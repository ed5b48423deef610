//! The edge Worker under `wrangler dev`: real workerd with local D1, KV and Durable Objects.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::http::{self, Request, Response};
use crate::process::{wait_for, ProcessGuard};
use crate::workspace_root;

/// How to start the edge.
#[derive(Debug, Clone)]
pub struct EdgeOptions {
    /// Port on 127.0.0.1; a free one when `None`.
    pub port: Option<u16>,
    /// Where local D1/KV/Durable Object state and the log live.
    pub state_dir: PathBuf,
    /// The operator API token (the `OPERATOR_TOKEN` secret).
    pub operator_token: String,
    /// Further Worker variables.
    pub vars: Vec<(String, String)>,
    /// The fleet secret; a random one when `None`.
    pub fleet_secret: Option<String>,
}

/// Errors starting the edge.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// The Worker is not built or wrangler is not installed.
    #[error("{0} is missing: run `cargo xtask test` or `cargo xtask dev`, which build the Worker and install wrangler")]
    NotBuilt(PathBuf),
    /// Something failed to start or run.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A wrangler command failed.
    #[error("{what} failed:\n{log}")]
    Wrangler {
        /// The command.
        what: String,
        /// Its output.
        log: String,
    },
    /// wrangler dev did not answer in time.
    #[error("wrangler dev did not become ready within {0:?}; its log ends:\n{1}")]
    NotReady(Duration, String),
}

/// A running local edge, stopped when dropped.
#[derive(Debug)]
pub struct Edge {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The operator token it was started with.
    pub operator_token: String,
    /// The fleet secret (`FLEET_SECRET`) media nodes must share with it.
    pub fleet_secret: String,
    process: ProcessGuard,
}

/// The wrangler launcher installed by `npm ci`.
pub fn wrangler_bin() -> PathBuf {
    workspace_root()
        .join("node_modules")
        .join(".bin")
        .join("wrangler")
}

/// A `wrangler` command run from the workspace root, with telemetry and Cloudflare look-ups off.
pub fn wrangler_command() -> Command {
    let mut cmd = Command::new(wrangler_bin());
    cmd.current_dir(workspace_root())
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_LOG_SANITIZE", "true")
        .env("NO_COLOR", "1");
    cmd
}

/// Applies the D1 migrations to the local state in `state_dir`.
pub fn apply_migrations(state_dir: &Path) -> Result<(), EdgeError> {
    let out = wrangler_command()
        .args(["d1", "migrations", "apply", "DB", "--local", "--persist-to"])
        .arg(state_dir)
        .env("CI", "true")
        .output()
        .map_err(|source| EdgeError::Io {
            what: "running wrangler d1 migrations apply".into(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(EdgeError::Wrangler {
            what: "wrangler d1 migrations apply".into(),
            log: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

/// `len` random bytes as hex, from the OS.
pub fn random_hex(len: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = vec![0u8; len];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Edge {
    /// Applies migrations, starts `wrangler dev` and waits until it answers.
    pub fn start(opts: &EdgeOptions) -> Result<Self, EdgeError> {
        for needed in [
            wrangler_bin(),
            workspace_root().join("edge-worker/build/index.js"),
        ] {
            if !needed.exists() {
                return Err(EdgeError::NotBuilt(needed));
            }
        }
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| EdgeError::Io { what, source }
        };
        std::fs::create_dir_all(&opts.state_dir).map_err(io("creating the state folder"))?;
        apply_migrations(&opts.state_dir)?;
        let fleet_secret = match &opts.fleet_secret {
            Some(s) => s.clone(),
            None => random_hex(24).map_err(io("reading /dev/urandom"))?,
        };
        let nonce_secret = random_hex(32).map_err(io("reading /dev/urandom"))?;
        // A port picked free can be taken by another process before wrangler binds it (tests start
        // several stacks at once): when that is why it stopped, try again with other ports.
        let attempts = if opts.port.is_some() { 1 } else { 4 };
        let mut last_log = String::new();
        for _ in 0..attempts {
            let port = match opts.port {
                Some(p) => p,
                None => crate::free_tcp_port().map_err(io("finding a free port"))?,
            };
            let inspector = crate::free_tcp_port().map_err(io("finding a free port"))?;
            let mut cmd = wrangler_command();
            cmd.args([
                "dev",
                "--ip",
                "127.0.0.1",
                "--show-interactive-dev-session=false",
                "--persist-to",
            ])
            .arg(&opts.state_dir)
            .args([
                "--port",
                &port.to_string(),
                "--inspector-port",
                &inspector.to_string(),
            ])
            .args(["--var", &format!("OPERATOR_TOKEN:{}", opts.operator_token)])
            .args(["--var", &format!("SIP_NONCE_SECRET:{nonce_secret}")])
            .args(["--var", &format!("FLEET_SECRET:{fleet_secret}")]);
            for (k, v) in &opts.vars {
                cmd.args(["--var", &format!("{k}:{v}")]);
            }
            let log = opts.state_dir.join("wrangler.log");
            let _ = std::fs::remove_file(&log);
            let process = ProcessGuard::spawn("wrangler dev", cmd, &log)
                .map_err(io("starting wrangler dev"))?;
            let mut edge = Self {
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                operator_token: opts.operator_token.clone(),
                fleet_secret: fleet_secret.clone(),
                process,
            };
            let timeout = Duration::from_secs(90);
            let (mut exited, mut port_taken) = (false, false);
            let ready = wait_for(timeout, || {
                if edge.process.log_tail(40).contains("Address already in use") {
                    port_taken = true;
                    return Some(false);
                }
                if matches!(edge.process.try_wait(), Ok(Some(_))) {
                    exited = true;
                    return Some(false);
                }
                let resp = Request::new("GET", "127.0.0.1", "/admin/openapi.json")
                    .send(edge.addr)
                    .ok()?;
                (resp.status == 200).then_some(true)
            });
            last_log = edge.process.log_tail(30);
            match ready {
                Some(true) => return Ok(edge),
                // Dropping `edge` stops this attempt's processes before the next one starts.
                _ if port_taken => continue,
                _ if exited => {
                    return Err(EdgeError::Wrangler {
                        what: "wrangler dev".into(),
                        log: last_log,
                    })
                }
                _ => return Err(EdgeError::NotReady(timeout, last_log)),
            }
        }
        Err(EdgeError::Wrangler {
            what: "wrangler dev (every port it was given was taken)".into(),
            log: last_log,
        })
    }

    /// Sends `req`.
    pub fn send(&self, req: &Request) -> Result<Response, http::HttpError> {
        req.send(self.addr)
    }

    /// A request to the operator API with the right token (on the `127.0.0.1` host).
    pub fn admin(&self, method: &str, path: &str) -> Request {
        Request::new(method, "127.0.0.1", path).bearer(&self.operator_token)
    }

    /// The end of wrangler's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// The process group, e.g. to wait on it.
    pub fn process(&mut self) -> &mut ProcessGuard {
        &mut self.process
    }
}
