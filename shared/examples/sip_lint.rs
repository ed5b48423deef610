//! `sip_lint FILE...`: what the SIP-over-WebSocket edge does with each file's bytes, taken as one
//! WebSocket message from a browser. Prints one line per file, the FILE exactly as given:
//! `FILE: accept`, `FILE: reject CODE REASON` or `FILE: drop REASON`. A file that cannot be read
//! is reported on stderr and makes the exit status non-zero; the other files are still checked.

use std::io::Write;
use std::process::ExitCode;

use shared::sip::{edge_verdict, EdgeVerdict};

fn main() -> ExitCode {
    let files: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: sip_lint FILE...");
        return ExitCode::from(2);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut failed = false;
    for file in files {
        let name = file.to_string_lossy();
        let bytes = match std::fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("sip_lint: cannot read {name}: {e}");
                failed = true;
                continue;
            }
        };
        let line = match edge_verdict(&bytes) {
            EdgeVerdict::Accept(_) => format!("{name}: accept"),
            EdgeVerdict::Reject { status, reason, .. } => {
                format!("{name}: reject {status} {reason}")
            }
            EdgeVerdict::Drop { reason, .. } => format!("{name}: drop {reason}"),
        };
        // A closed stdout (e.g. piped into `head`) ends the run quietly instead of panicking.
        if writeln!(out, "{line}").is_err() {
            return ExitCode::FAILURE;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
