//! `zhishi train CONFIG.toml` and `zhishi eval CONFIG.toml --split test`: train or evaluate the
//! stage a TOML file describes, printing one JSON object of metrics. The file's `[task] kind`
//! picks the task from the registry ([`zhishi::stages::training::TASKS`]); `--set
//! dotted.key=value` overrides any value.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use serde::Deserialize;

use zhishi::config;
use zhishi::stages::task::{Split, TaskKind, Trainable};
use zhishi::stages::training;

/// Arguments of `zhishi train`.
#[derive(Parser, Debug)]
pub struct Args {
    /// Training configuration (TOML with a `[task] kind`).
    pub config: PathBuf,
    /// Override a value: `--set train.epochs=1` (dotted TOML path; repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Arguments of `zhishi eval`.
#[derive(Parser, Debug)]
pub struct EvalArgs {
    /// Training configuration whose trained model (`output_dir/best`) is evaluated.
    pub config: PathBuf,
    /// Which data split to evaluate: train, dev or test.
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Arithmetic of the model's dense layers: f32, bf16 or int8 (NER, relation, QA).
    #[arg(long, default_value = "f32", value_name = "P")]
    pub precision: zhishi::model::Precision,
    /// Override a value: `--set data.test=other.bmes` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// The part of any training file read before the task's own schema.
#[derive(Debug, Deserialize)]
struct Peek {
    task: PeekTask,
    #[serde(default)]
    train: Option<PeekTrain>,
}

#[derive(Debug, Deserialize)]
struct PeekTask {
    kind: String,
}

#[derive(Debug, Deserialize)]
struct PeekTrain {
    #[serde(default)]
    threads: usize,
}

/// The `task.kind` a training file names (after `overrides`).
pub fn peek_kind(path: &Path, overrides: &[String]) -> Result<String> {
    Ok(config::load::<Peek>(path, overrides)?.value.task.kind)
}

/// Reads `task.kind` (the registered task it names) and sets the compute threads from
/// `train.threads`.
pub(crate) fn peek(path: &Path, overrides: &[String]) -> Result<&'static Trainable> {
    let loaded = config::load::<Peek>(path, overrides)?;
    let threads = loaded.value.train.map_or(0, |t| t.threads);
    zhishi::model::threads::use_threads(threads);
    let kind = &loaded.value.task.kind;
    let task = kind
        .parse::<TaskKind>()
        .ok()
        .and_then(training::find)
        .ok_or_else(|| {
            loaded.source.error(
                "task.kind",
                format!(
                    "task.kind {kind:?} is not trainable (known: {})",
                    TaskKind::ALL.map(|k| format!("{:?}", k.name())).join(", ")
                ),
            )
        })?;
    Ok(task)
}

/// Runs `zhishi train`: one JSON object in the shape every task shares
/// ([`zhishi::stages::task::TaskReport::to_json`]).
pub fn run(args: Args) -> Result<ExitCode> {
    let task = peek(&args.config, &args.set)?;
    let settings = config::load(&args.config, &args.set)?.value;
    let mut report = (task.train)(&args.config, &args.set)
        .with_context(|| format!("training {}", args.config.display()))?;
    report.settings = Some(settings);
    if let Some(verdict) = report.train.as_ref().and_then(|t| t.verdict.as_ref()) {
        eprintln!("warning: {verdict}");
    }
    println!("{}", report.to_json());
    Ok(ExitCode::SUCCESS)
}

/// Runs `zhishi eval`.
pub fn run_eval(args: EvalArgs) -> Result<ExitCode> {
    let task = peek(&args.config, &args.set)?;
    let settings = config::load(&args.config, &args.set)?.value;
    let mut report = (task.evaluate)(&args.config, &args.set, args.split, args.precision)
        .with_context(|| format!("evaluating {}", args.config.display()))?;
    report.settings = Some(settings);
    println!("{}", report.to_json());
    Ok(ExitCode::SUCCESS)
}
