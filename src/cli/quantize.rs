//! `zhishi quantize --model DIR --output DIR`: saves a model directory with its dense layers
//! in int8 ([`zhishi::model::quantized`]): an encoder, a trained stage model (NER, relation,
//! QA, KBQA with its `encoder/`) or a pretraining checkpoint. The copy runs anywhere the
//! original runs, at every precision; at `int8` its outputs equal the original's at `int8`
//! bit for bit, and it is smaller and loads without quantising. Prints one JSON object.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use zhishi::model::quantized::{quantize_dir, FORMAT};

/// Arguments of `zhishi quantize`.
#[derive(Parser, Debug)]
pub struct Args {
    /// The model directory to quantise, or a model id `hf:ORG/NAME[@REVISION]`.
    #[arg(long)]
    pub model: PathBuf,
    /// Where to write the quantised copy (must not exist, or be empty).
    #[arg(long, short = 'o')]
    pub output: PathBuf,
}

/// Runs `zhishi quantize`.
pub fn run(mut args: Args) -> Result<ExitCode> {
    args.model = super::model_dir(&args.model)?;
    let report = quantize_dir(&args.model, &args.output).with_context(|| {
        format!(
            "quantising {} into {}",
            args.model.display(),
            args.output.display()
        )
    })?;
    let files: Vec<_> = report
        .files
        .iter()
        .map(|(path, f)| {
            serde_json::json!({
                "file": path.display().to_string(),
                "quantized_tensors": f.quantized_tensors,
                "kept_tensors": f.kept_tensors,
                "bytes_before": f.bytes_before,
                "bytes_after": f.bytes_after,
            })
        })
        .collect();
    let json = serde_json::json!({
        "model": args.model.display().to_string(),
        "output": args.output.display().to_string(),
        "format": FORMAT,
        "files": files,
        "copied_files": report.copied_files,
        "bytes_before": report.bytes_before,
        "bytes_after": report.bytes_after,
    });
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}
