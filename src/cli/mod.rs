//! Command-line front end. Each subcommand group lives in its own file and
//! exposes an `Args` struct (clap) plus a `run` function returning `anyhow::Result`.
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod bench;
mod bounds;
mod chart;
mod compare;
mod convert;
mod distill;
mod download;
mod encode;
mod fill_mask;
mod init;
mod kbert;
mod kg;
mod kg_from_run;
mod link;
mod plan;
mod pretrain;
mod quantize;
mod run;
mod serve;
mod train;
mod transe;
mod transe_predict;

/// zhishi (知识): knowledge-enhanced Chinese NLP.
#[derive(Parser, Debug)]
#[command(name = "zhishi", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Knowledge-graph store: import, stats, query, neighbours, paths.
    Kg(kg::KgArgs),
    /// Benchmarks that print JSON results.
    Bench(bench::BenchArgs),
    /// Bar charts (SVG) of benchmark JSON: zhishi's ratios against the reference implementations.
    Chart(chart::ChartArgs),
    /// K-BERT inputs: sentence tree -> tokens, soft positions, visible matrix.
    Kbert(kbert::KbertArgs),
    /// Run a pipeline (TOML) over a corpus: streaming, parallel, resumable.
    Run(run::RunArgs),
    /// Serve a pipeline over HTTP: POST /v1/process, GET /healthz, a demo page at /.
    Serve(serve::ServeArgs),
    /// Entity linking: mentions of KG entities in text lines or JSONL records.
    Link(link::LinkArgs),
    /// Run the BERT encoder over JSONL batches of token ids.
    Encode(encode::Args),
    /// TransE knowledge-graph embeddings: train on a store, benchmark link prediction.
    Transe(transe::TranseArgs),
    /// Train a stage from a TOML file (`[task] kind`); prints one JSON object of metrics.
    Train(train::Args),
    /// Evaluate a trained stage on a data split; prints one JSON object of metrics.
    Eval(train::EvalArgs),
    /// Print a complete, commented training or pipeline TOML with every key at its default.
    Init(init::InitArgs),
    /// Does the KG help? Train and evaluate a task per knowledge mode and seed; one table.
    Compare(compare::Args),
    /// Continue masked-LM pretraining of an encoder (`[task] kind = "pretrain"` TOML).
    Pretrain(train::Args),
    /// Distil a trained NER model into a student with fewer layers (`[task] kind = "distill"` TOML).
    Distill(train::Args),
    /// Predict the `[MASK]`s of text lines with a masked LM; one JSON object per line.
    FillMask(fill_mask::Args),
    /// Save a model directory with its dense layers in int8 (smaller; loads without quantising).
    Quantize(quantize::Args),
    /// Convert NER data into an annotation tool's format (doccano, Label Studio).
    Convert(convert::Args),
    /// Fetch a Hugging Face model (`ORG/NAME`) into the Hugging Face cache, for `hf:ORG/NAME`.
    Download(download::Args),
}

/// Parses arguments, runs the subcommand and maps errors to a non-zero exit code.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let matches = allow_negative_numbers(Cli::command()).get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if !matches!(cli.command, Command::Serve(_)) {
        quiet_broken_pipe();
    }
    let result = match cli.command {
        Command::Kg(args) => kg::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Chart(args) => chart::run(args),
        Command::Kbert(args) => kbert::run(args),
        Command::Run(args) => run::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Link(args) => link::run(args),
        Command::Encode(args) => encode::run(args),
        Command::Transe(args) => transe::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => train::run_eval(args),
        Command::Init(args) => init::run(args),
        Command::Pretrain(args) => pretrain::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Distill(args) => distill::run(args),
        Command::FillMask(args) => fill_mask::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::Download(args) => download::run(args),
        Command::Convert(args) => convert::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            let err: &(dyn std::error::Error + 'static) = err.as_ref();
            eprintln!("error: {}", zhishi::error::report(err));
            ExitCode::FAILURE
        }
    }
}

/// The model directory a `--model` flag names: an `hf:ORG/NAME[@REVISION]` id resolved
/// through the Hugging Face cache ([`zhishi::model::hub`]), else the path as given.
fn model_dir(model: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    Ok(zhishi::model::hub::resolve(model)?)
}

/// `cmd` and all its subcommands with negative numbers taken as values, so that `--limit -1`
/// is refused as an invalid value of `--limit` (naming the flag) rather than as an unknown
/// argument `-1`.
fn allow_negative_numbers(cmd: clap::Command) -> clap::Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    names
        .into_iter()
        .fold(cmd.allow_negative_numbers(true), |cmd, name| {
            cmd.mut_subcommand(name, allow_negative_numbers)
        })
}

/// Printing into a closed pipe (`zhishi kg neighbors ... | head -c1`) ends the process quietly,
/// as coreutils do: Rust ignores SIGPIPE, so without this every `println!` into a closed pipe
/// panics. The server keeps ignoring it (a client hanging up must not end the process).
fn quiet_broken_pipe() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
