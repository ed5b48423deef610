//! `cargo xtask test`: every check the project has, in the order that fails fastest.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Result};

use crate::setup::{self, WasmToolchain};
use crate::{step, worker};

/// Options of `cargo xtask test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Only run tests whose name contains this (passed to `cargo test`).
    pub filter: Option<String>,
}

/// Runs formatting and lint checks, then every test (native and end-to-end).
pub fn run(args: &TestArgs) -> Result<()> {
    let started = Instant::now();
    let tools = setup::ensure()?;
    // Real peers the end-to-end tests use.
    setup::ensure_apt(&[
        ("/usr/bin/sipp", "sip-tester"),
        ("/usr/bin/chromium", "chromium"),
    ])?;
    worker::build(&tools)?;
    let root = setup::root();
    let mut failures = Vec::new();
    let mut check = |name: &str, cmd: &mut Command| {
        step(name);
        let t = Instant::now();
        if cmd.get_current_dir().is_none() {
            cmd.current_dir(&root);
        }
        let ok = cmd.status().is_ok_and(|s| s.success());
        println!(
            "    {} in {:.0?}",
            if ok { "passed" } else { "FAILED" },
            t.elapsed()
        );
        if !ok {
            failures.push(name.to_owned());
        }
    };
    check(
        "cargo fmt --check",
        Command::new("cargo").args(["fmt", "--all", "--check"]),
    );
    check(
        "clippy (native crates)",
        Command::new("cargo").args(["clippy", "--quiet", "--all-targets", "--", "-D", "warnings"]),
    );
    if tools.wasm == WasmToolchain::Rustup {
        check(
            "clippy (wasm32: edge-worker, shared)",
            Command::new("cargo").args([
                "clippy",
                "--quiet",
                "--target",
                "wasm32-unknown-unknown",
                "-p",
                "edge-worker",
                "-p",
                "shared",
                "--",
                "-D",
                "warnings",
            ]),
        );
    } else {
        println!("==> clippy (wasm32) not run: Debian's rustc-web has no clippy; the wasm build above compiled it");
    }
    // The end-to-end tests start these binaries.
    check(
        "build the media node for the end-to-end tests",
        Command::new("cargo").args(["build", "--quiet", "-p", "media-node"]),
    );
    let mut test = Command::new("cargo");
    test.args(["test", "--no-fail-fast"]);
    if let Some(filter) = &args.filter {
        test.arg(filter);
    }
    check("cargo test (unit, integration and end-to-end)", &mut test);
    check(
        "phone UI tests (headless Chromium: npm test in edge-worker/pwa)",
        Command::new("npm")
            .args(["test", "--silent"])
            .current_dir(root.join("edge-worker/pwa")),
    );
    println!("\ntotal time {:.0?}", started.elapsed());
    if failures.is_empty() {
        println!("all checks passed");
        Ok(())
    } else {
        bail!("failed: {}", failures.join(", "))
    }
}
