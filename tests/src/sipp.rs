//! sipp (Debian `sip-tester`) as the upstream SIP server: a TCP listener on a free loopback port running
//! a built-in or XML scenario a bounded number of times.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::process::ProcessGuard;

/// A running sipp, stopped when dropped.
#[derive(Debug)]
pub struct Sipp {
    /// Where it listens (TCP).
    pub addr: SocketAddr,
    process: ProcessGuard,
}

/// Which scenario to run.
#[derive(Debug, Clone, Copy)]
pub enum Scenario<'a> {
    /// A built-in one, e.g. `uas`.
    Builtin(&'a str),
    /// An XML file.
    File(&'a Path),
}

impl Sipp {
    /// Starts sipp as a TCP server running `scenario` for `calls` calls.
    pub fn server(scenario: Scenario<'_>, calls: u32, log_dir: &Path) -> std::io::Result<Self> {
        let port = crate::free_tcp_port()?;
        let mut cmd = Command::new("sipp");
        match scenario {
            Scenario::Builtin(name) => cmd.args(["-sn", name]),
            Scenario::File(path) => cmd.arg("-sf").arg(path),
        };
        cmd.args([
            "-t",
            "t1",
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            &calls.to_string(),
        ])
        .args([
            "-timeout",
            "60s",
            "-timeout_error",
            "-trace_err",
            "-trace_msg",
            "-nostdin",
        ])
        .current_dir(log_dir);
        let process = ProcessGuard::spawn("sipp", cmd, &log_dir.join("sipp.log"))?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        // Wait until it listens.
        let ready = crate::process::wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()
        });
        if ready.is_none() {
            return Err(std::io::Error::other(format!(
                "sipp did not listen on {addr}"
            )));
        }
        Ok(Self { addr, process })
    }

    /// Waits up to `timeout` for sipp to finish its calls; `None` if it is still running.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.process.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// The end of its output and message trace, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = self.process.log_tail(lines);
        if let Some(dir) = self.process.log_path().parent() {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if name.ends_with("_messages.log") || name.ends_with("_errors.log") {
                        let body = std::fs::read_to_string(entry.path()).unwrap_or_default();
                        let tail: Vec<&str> = body.lines().rev().take(lines).collect();
                        text.push_str(&format!("\n--- {name} ---\n"));
                        text.push_str(&tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
                    }
                }
            }
        }
        text
    }
}
