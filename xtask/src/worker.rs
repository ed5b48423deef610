//! Builds the edge Worker with worker-build and reports its size.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::setup::{self, Tools};
use crate::step;

/// Builds `edge-worker/build/` (wasm + JS glue) and prints the wasm size, raw and gzipped.
pub fn build(tools: &Tools) -> Result<PathBuf> {
    let root = setup::root();
    step("building the phone (PWA: npm run build in edge-worker/pwa)");
    setup::run(
        Command::new("npm")
            .args(["run", "build", "--silent"])
            .current_dir(root.join("edge-worker/pwa")),
        "npm run build (edge-worker/pwa)",
    )?;
    step("building the edge Worker (worker-build --release)");
    let node_modules = root.join("node_modules");
    let mut cmd = Command::new(&tools.worker_build);
    cmd.arg("--release")
        .current_dir(root.join("edge-worker"))
        .env("WASM_BINDGEN_BIN", &tools.wasm_bindgen)
        .env(
            "ESBUILD_BIN",
            node_modules.join("@esbuild/linux-x64/bin/esbuild"),
        )
        .env("WASM_OPT_BIN", node_modules.join("binaryen/bin/wasm-opt"));
    setup::wasm_env(tools, &mut cmd);
    setup::run(&mut cmd, "worker-build")?;
    let wasm = root.join("edge-worker/build/index_bg.wasm");
    let bytes = std::fs::read(&wasm).with_context(|| format!("reading {}", wasm.display()))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&bytes)?;
    let gzipped = gz.finish()?.len();
    println!(
        "worker wasm size: {} bytes raw, {} bytes gzipped ({:.0} KiB / {:.0} KiB)",
        bytes.len(),
        gzipped,
        bytes.len() as f64 / 1024.0,
        gzipped as f64 / 1024.0
    );
    Ok(wasm)
}
