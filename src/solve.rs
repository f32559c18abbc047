//! `sidan solve`: batch assignment from a problem file.

use std::process::ExitCode;

/// Arguments of `sidan solve`.
#[derive(Debug, clap::Args)]
pub struct SolveArgs {}

/// Runs `sidan solve`.
pub fn run(_args: &SolveArgs) -> ExitCode {
    ExitCode::FAILURE
}
