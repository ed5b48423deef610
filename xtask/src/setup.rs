//! Installs what the build and tests need, once, and finds it again later.
//!
//! - Node.js 20+ and npm must be on the machine (Debian: `apt-get install nodejs npm`); the npm
//!   packages (wrangler with workerd, esbuild, binaryen's wasm-opt) are installed from the lockfile.
//! - The wasm32 target: `rustup target add` where rustup can; otherwise Debian's `rustc-web`
//!   toolchain with the standard library built from source (`build-std`), as on machines whose rustup
//!   cannot download targets.
//! - `wasm-bindgen-cli` and `worker-build` at the versions `Cargo.lock` pins, built once into
//!   [`tools_dir`].
//! - Debian packages that tests need, installed with apt-get when missing (root only).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::step;

/// Where the wasm target comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmToolchain {
    /// rustup's `wasm32-unknown-unknown` target.
    Rustup,
    /// Debian's rustc-web in /usr/bin, building std from source.
    DebianBuildStd,
}

/// The tools the build uses.
#[derive(Debug, Clone)]
pub struct Tools {
    /// How wasm is built.
    pub wasm: WasmToolchain,
    /// `wasm-bindgen` binary.
    pub wasm_bindgen: PathBuf,
    /// `worker-build` binary.
    pub worker_build: PathBuf,
}

/// The workspace root.
pub fn root() -> PathBuf {
    tests::workspace_root()
}

/// Cache for tools built from source: `$WEBPHONE_TOOLS_DIR`, else `$XDG_CACHE_HOME/webphone/tools`,
/// else `~/.cache/webphone/tools`.
pub fn tools_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEBPHONE_TOOLS_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    cache.join("webphone").join("tools")
}

/// Makes sure everything is installed; returns where the tools are.
pub fn ensure() -> Result<Tools> {
    check_node()?;
    npm_ci(&root())?;
    npm_ci(&root().join("edge-worker/pwa"))?;
    let wasm = ensure_wasm_target()?;
    let wasm_bindgen_version = locked_version("wasm-bindgen")?;
    let worker_version = locked_version("worker")?;
    let wasm_bindgen = cargo_install("wasm-bindgen-cli", &wasm_bindgen_version, "wasm-bindgen")?;
    let worker_build = cargo_install("worker-build", &worker_version, "worker-build")?;
    Ok(Tools {
        wasm,
        wasm_bindgen,
        worker_build,
    })
}

fn check_node() -> Result<()> {
    let out = Command::new("node").arg("--version").output().context(
        "Node.js is missing: install Node.js 20 or newer with npm (Debian: `apt-get install nodejs npm`)",
    )?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        bail!("Node.js {version} is too old: install Node.js 20 or newer");
    }
    if Command::new("npm").arg("--version").output().is_err() {
        bail!("npm is missing: install it with Node.js (Debian: `apt-get install npm`)");
    }
    Ok(())
}

/// `npm ci` in `dir` when its node_modules does not match its package-lock.json.
fn npm_ci(dir: &Path) -> Result<()> {
    let lock_path = dir.join("package-lock.json");
    let lock =
        std::fs::read(&lock_path).with_context(|| format!("reading {}", lock_path.display()))?;
    let stamp = dir.join("node_modules").join(".webphone-lock");
    if std::fs::read(&stamp).ok().as_deref() == Some(lock.as_slice()) {
        return Ok(());
    }
    step(&format!(
        "installing npm packages from {} (npm ci)",
        lock_path.display()
    ));
    run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(dir),
        "npm ci",
    )?;
    std::fs::write(&stamp, &lock).context("writing the npm stamp")?;
    Ok(())
}

fn has_rustup_wasm_target() -> bool {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output();
    sysroot.ok().is_some_and(|o| {
        let root = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
        root.join("lib/rustlib/wasm32-unknown-unknown/lib").is_dir()
    })
}

fn ensure_wasm_target() -> Result<WasmToolchain> {
    if has_rustup_wasm_target() {
        return Ok(WasmToolchain::Rustup);
    }
    step("adding the wasm32-unknown-unknown target (rustup target add)");
    let added = Command::new("rustup")
        .args(["target", "add", "wasm32-unknown-unknown"])
        .status();
    if added.is_ok_and(|s| s.success()) && has_rustup_wasm_target() {
        return Ok(WasmToolchain::Rustup);
    }
    step("rustup cannot add wasm32 here: using Debian's rustc-web with build-std");
    ensure_apt(&[
        ("/usr/bin/rustc", "rustc-web"),
        ("/usr/bin/cargo", "cargo-web"),
        ("/usr/lib/rustlib/src/rust/library", "rust-web-src"),
        ("/usr/bin/rust-lld", "lld-22"),
    ])
    .context("installing Debian's wasm toolchain")?;
    // worker-build checks that the target exists in the sysroot; std itself comes from build-std.
    std::fs::create_dir_all("/usr/lib/rustlib/wasm32-unknown-unknown/lib")
        .context("creating /usr/lib/rustlib/wasm32-unknown-unknown/lib (run as root)")?;
    Ok(WasmToolchain::DebianBuildStd)
}

/// Environment for cargo commands that build wasm.
pub fn wasm_env(tools: &Tools, cmd: &mut Command) {
    if tools.wasm == WasmToolchain::DebianBuildStd {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("/usr/bin:{path}"))
            .env("RUSTC_BOOTSTRAP", "1")
            .env("CARGO_UNSTABLE_BUILD_STD", "std,panic_abort")
            .env_remove("RUSTUP_TOOLCHAIN")
            .env_remove("RUSTC")
            .env_remove("CARGO");
    }
}

/// The version of `package` in Cargo.lock.
fn locked_version(package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).context("reading Cargo.lock")?;
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock
        .find(&needle)
        .with_context(|| format!("{package} is not in Cargo.lock"))?
        + needle.len();
    Ok(lock[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned())
}

/// `cargo install crate@version` into the tools cache, once.
fn cargo_install(krate: &str, version: &str, bin: &str) -> Result<PathBuf> {
    let dir = tools_dir().join(format!("{krate}-{version}"));
    let path = dir.join("bin").join(bin);
    if path.exists() {
        return Ok(path);
    }
    step(&format!(
        "building {krate} {version} into {} (once; a few minutes)",
        dir.display()
    ));
    // Without --locked: one of wasm-bindgen-cli's locked dependency versions is no longer published.
    run(
        Command::new("cargo")
            .args(["install", "--quiet", krate, "--version", version, "--root"])
            .arg(&dir),
        &format!("cargo install {krate}"),
    )?;
    Ok(path)
}

/// Installs Debian packages whose marker path is missing.
pub fn ensure_apt(packages: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|(p, _)| !Path::new(p).exists())
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step(&format!(
        "installing Debian packages: {}",
        missing.join(" ")
    ));
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    if !is_root {
        bail!(
            "these Debian packages are missing: {0}. Install them with `sudo apt-get install {0}`",
            missing.join(" ")
        );
    }
    run(
        Command::new("apt-get").args(["update", "-qq"]),
        "apt-get update",
    )?;
    run(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install",
    )
}

/// Runs a command, failing with its name when it fails.
pub fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not start {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}
