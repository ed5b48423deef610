//! `cargo xtask`: the project's two front doors and their helpers.
//!
//! - `cargo xtask dev`: install what is missing, build everything, run the local stack.
//! - `cargo xtask test`: install what is missing, run every check and test; non-zero on any failure.
//! - `cargo xtask build`: build the Worker (wasm) and print its size.
//!
//! Each step says what it does. Tools built from source are cached outside the clone (see
//! [`setup::tools_dir`]) so later runs and CI reuse them; npm packages come from `package-lock.json`.

mod bench;
mod bench_media;
mod dev;
mod setup;
mod test;
mod worker;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, run and test the webphone platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install what is missing, build, and run the local stack on 127.0.0.1 (Ctrl-C stops it).
    Dev(dev::DevArgs),
    /// Install what is missing and run every check and test.
    Test(test::TestArgs),
    /// Build the edge Worker to wasm and print its size.
    Build,
    /// Run a benchmark and print its figures.
    #[command(subcommand)]
    Bench(bench::Bench),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Dev(args) => dev::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Build => setup::ensure().and_then(|tools| worker::build(&tools).map(|_| ())),
        Command::Bench(bench) => bench::run(&bench),
    };
    if let Err(e) = result {
        eprintln!("\nerror: {e:#}");
        std::process::exit(1);
    }
}

/// Prints a step heading.
pub fn step(what: &str) {
    println!("==> {what}");
}
