//! `zhishi distill CONFIG.toml`: distils a trained NER model into a student with fewer
//! layers (`[task] kind = "distill"`), the same as `zhishi train` on such a file; prints one
//! JSON object.
use std::process::ExitCode;

use anyhow::{bail, Result};

use super::train::{self, Args};

/// Runs `zhishi distill`, refusing a file of another task kind.
pub fn run(args: Args) -> Result<ExitCode> {
    let kind = train::peek_kind(&args.config, &args.set)?;
    if kind != "distill" {
        bail!(
            "{}: task.kind is {kind:?}; `zhishi distill` runs \"distill\" files (use `zhishi train`)",
            args.config.display()
        );
    }
    train::run(args)
}
