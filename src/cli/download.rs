//! `zhishi download ORG/NAME [--revision R]`: fetches the files a model needs (config,
//! tokenizer, weights: [`zhishi::model::hub::NEEDED`]) into the Hugging Face cache, with a
//! progress bar per file on a terminal, from `$HF_ENDPOINT` (default the Hugging Face hub).
//! Files already cached are not fetched again. Prints one JSON object:
//! `{"model": "hf:ORG/NAME", "revision", "commit", "dir", "files": [...]}`; `dir` is a model
//! directory, and `hf:ORG/NAME` names it wherever a model directory is accepted.
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;

use zhishi::model::hub::{self, HubId};

/// Arguments of `zhishi download`.
#[derive(Parser, Debug)]
pub struct Args {
    /// The model: `ORG/NAME` (or `hf:ORG/NAME[@REVISION]`), e.g. `hfl/rbt3`.
    pub model: String,
    /// Branch, tag or commit (default: the id's own, else `main`).
    #[arg(long)]
    pub revision: Option<String>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

/// Runs `zhishi download`.
pub fn run(args: Args) -> Result<ExitCode> {
    let mut id = HubId::parse(&args.model)?;
    if let Some(revision) = &args.revision {
        id = HubId::parse(&format!("{}@{revision}", id.repo))?;
    }
    let cache = hub::cache_dir()?;
    let snapshot = hub::download(&id, &cache, !args.quiet)?;
    println!("{}", serde_json::to_string(&snapshot)?);
    Ok(ExitCode::SUCCESS)
}
