//! The `sidan` command-line tool: a thin layer of argument parsing and wiring
//! over the library crates.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => simulate::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Solve(args) => solve::run(&args),
    }
}
