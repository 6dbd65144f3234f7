//! `zhishi kg ...`: knowledge-graph store commands.
use std::process::ExitCode;

use clap::Args;

/// Arguments of `zhishi kg`.
#[derive(Args, Debug)]
pub struct KgArgs {}

/// Runs a `zhishi kg` subcommand.
pub fn run(_args: KgArgs) -> anyhow::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
