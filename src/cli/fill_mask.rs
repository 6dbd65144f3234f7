//! `zhishi fill-mask --model DIR [--top-k 5]`: lines holding `[MASK]` on stdin (or `--input`),
//! one JSON object per line on stdout:
//! `{"masks":[{"position":2,"candidates":[{"token":"滨","score":0.93},...]}]}`. `position` is
//! the character index (Unicode scalars, from 0) of the mask's `[` in the line; candidates are
//! softmax probabilities over the vocabulary, best first. Input lines must be UTF-8 of at most
//! [`MAX_LINE_BYTES`]; an error names the file (or `stdin`) and line.
use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use zhishi::stages::pretrain::FillMask;

/// Arguments of `zhishi fill-mask`.
#[derive(Parser, Debug)]
pub struct Args {
    /// A masked-LM directory (`zhishi pretrain` output, or any BERT checkpoint with
    /// `cls.predictions`), or a model id `hf:ORG/NAME[@REVISION]`.
    #[arg(long)]
    pub model: PathBuf,
    /// Candidates per mask (1 to 1000).
    #[arg(long, default_value_t = 5, value_parser = super::bounds::count_in::<1, 1000>)]
    pub top_k: usize,
    /// Read lines from this file instead of stdin.
    #[arg(long)]
    pub input: Option<PathBuf>,
}

/// The longest input line read, in bytes (a line is one model input, far shorter than this).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Runs `zhishi fill-mask`.
pub fn run(mut args: Args) -> Result<ExitCode> {
    args.model = super::model_dir(&args.model)?;
    let model =
        FillMask::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let (reader, name): (Box<dyn BufRead>, &Path) = match &args.input {
        Some(p) => (
            Box::new(std::io::BufReader::new(
                std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?,
            )),
            p,
        ),
        None => (Box::new(std::io::stdin().lock()), Path::new("stdin")),
    };
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in zhishi::textfile::lines(name, reader, MAX_LINE_BYTES) {
        let (number, line) = line?;
        if line.trim().is_empty() {
            continue;
        }
        let masks = model
            .fill(&line, args.top_k)
            .with_context(|| format!("{}:{number}", name.display()))?;
        writeln!(out, "{}", serde_json::json!({ "masks": masks }))?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
