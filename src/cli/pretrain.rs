//! `zhishi pretrain CONFIG.toml`: continued masked-LM pretraining (`[task] kind =
//! "pretrain"`), the same as `zhishi train` on such a file; prints one JSON object.
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::train::{self, Args};

/// Runs `zhishi pretrain`, refusing a file of another task kind.
pub fn run(args: Args) -> Result<ExitCode> {
    let kind = train::peek_kind(&args.config, &args.set)?;
    if kind != "pretrain" {
        bail!(
            "{}: task.kind is {kind:?}; `zhishi pretrain` runs \"pretrain\" files (use `zhishi train`)",
            args.config.display()
        );
    }
    train::run(args)
}
