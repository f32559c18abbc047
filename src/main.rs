//! The `sidan` command-line tool: a thin layer of argument parsing and wiring
//! over the library crates. It logs to stderr, filtered by `RUST_LOG`
//! (`warn` by default; `RUST_LOG=info` adds the engine's start, snapshots
//! and shutdown, `RUST_LOG=sidan_runtime=debug` every batch).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc: a replay or a simulation allocates and frees millions of small values; in one
/// run each it took the engine bench from 129 k to 164 k commands/s (docs/ARCHITECTURE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod demo;
mod events;
mod simulate;
mod solve;

/// Volunteer-service dispatch engine.
#[derive(Debug, Parser)]
#[command(name = "sidan", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The main job: run a seeded city for a week through the engine, with
    /// simulated teams and residents, and report what became of every request.
    Simulate(simulate::SimulateArgs),
    /// Generate (or load) a county and show, for a few requests, the ranked
    /// teams with their score terms and why nearby teams were not eligible.
    Demo(demo::DemoArgs),
    /// Solve a batch assignment problem file and print the plan as JSON.
    Solve(solve::SolveArgs),
    /// Print a SQLite store's event log as JSON lines (contacts masked).
    Events(events::EventsArgs),
}

/// Installs the one subscriber: stderr, `RUST_LOG` (invalid directives are ignored), `warn` by default.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::filter::LevelFilter;
    let filter = EnvFilter::builder().with_default_directive(LevelFilter::WARN.into()).from_env_lossy();
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => simulate::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Solve(args) => solve::run(&args),
        Command::Events(args) => events::run(&args),
    }
}
