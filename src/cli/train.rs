//! `zhishi train CONFIG.toml` and `zhishi eval CONFIG.toml --split test`: train or evaluate the
//! stage a TOML file describes, printing one JSON object of metrics. The file's `[task] kind`
//! picks the stage; `--set dotted.key=value` overrides any value.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde::Deserialize;
use serde_json::json;

use zhishi::config;
use zhishi::stages::{kbqa, ner, qa, relation};

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
    pub split: String,
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

/// Reads `task.kind` and sets the compute threads from `train.threads`.
fn peek(path: &Path, overrides: &[String]) -> Result<String> {
    let loaded = config::load::<Peek>(path, overrides)?;
    let threads = loaded.value.train.map_or(0, |t| t.threads);
    if threads > 0 {
        // candle's GEMM reads the variable; rayon's global pool is built here first.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .ok();
    }
    Ok(loaded.value.task.kind)
}

/// Runs `zhishi train`.
pub fn run(args: Args) -> Result<ExitCode> {
    let kind = peek(&args.config, &args.set)?;
    let out = match kind.as_str() {
        "ner" => {
            let r = ner::train_config(&args.config, &args.set)
                .with_context(|| format!("training {}", args.config.display()))?;
            json!({
                "task": "ner",
                "f1": r.dev["f1"],
                "precision": r.dev["precision"],
                "recall": r.dev["recall"],
                "split": "dev",
                "dev": r.dev,
                "steps": r.train.steps,
                "best_step": r.train.best_step,
                "stopped_early": r.train.stopped_early,
                "train_seconds": r.train.train_seconds,
                "tokens": r.train.tokens,
                "padded_tokens": r.train.padded_tokens,
                "tokens_per_s": r.train.tokens_per_s,
                "padded_tokens_per_s": r.train.padded_tokens_per_s,
                "dev_metric": r.train.dev_metric,
                "history": r.train.history,
                "model_dir": r.model_dir,
            })
        }
        "kbqa" => {
            let loaded = config::load::<kbqa::KbqaConfig>(&args.config, &args.set)?;
            let r = kbqa::train(&loaded)
                .with_context(|| format!("training {}", args.config.display()))?;
            let mut v = serde_json::to_value(r.dev)?;
            v["task"] = json!("kbqa");
            v["split"] = json!("dev");
            v["report"] = serde_json::to_value(&r)?;
            v
        }
        "relation" => {
            let r = relation::train_config(&args.config, &args.set)
                .with_context(|| format!("training {}", args.config.display()))?;
            let mut v = r.dev.clone();
            v["task"] = json!("relation");
            v["split"] = json!("dev");
            v["report"] = serde_json::to_value(&r)?;
            v
        }
        "qa" => {
            let r = qa::train_config(&args.config, &args.set)
                .with_context(|| format!("training {}", args.config.display()))?;
            let mut v = r.dev.clone();
            v["task"] = json!("qa");
            v["split"] = json!("dev");
            v["report"] = serde_json::to_value(&r)?;
            v
        }
        other => bail!(
            "{}: task.kind {other:?} is not trainable (known: \"ner\", \"kbqa\", \"relation\", \"qa\")",
            args.config.display()
        ),
    };
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}

/// Runs `zhishi eval`.
pub fn run_eval(args: EvalArgs) -> Result<ExitCode> {
    let kind = peek(&args.config, &args.set)?;
    let out = match kind.as_str() {
        "ner" => {
            let m = ner::evaluate_config(&args.config, &args.set, &args.split)
                .with_context(|| format!("evaluating {}", args.config.display()))?;
            let mut v = serde_json::to_value(&m)?;
            v["task"] = json!("ner");
            v["split"] = json!(args.split);
            v
        }
        "kbqa" => {
            let loaded = config::load::<kbqa::KbqaConfig>(&args.config, &args.set)?;
            let split: kbqa::Split = args.split.parse().map_err(anyhow::Error::msg)?;
            let m = kbqa::evaluate(&loaded, split)
                .with_context(|| format!("evaluating {}", args.config.display()))?;
            let mut v = serde_json::to_value(m)?;
            v["task"] = json!("kbqa");
            v["split"] = json!(args.split);
            v
        }
        "relation" => {
            let m = relation::evaluate_config(&args.config, &args.set, &args.split)
                .with_context(|| format!("evaluating {}", args.config.display()))?;
            let mut v = serde_json::to_value(&m)?;
            v["task"] = json!("relation");
            v["split"] = json!(args.split);
            v
        }
        "qa" => {
            let m = qa::evaluate_config(&args.config, &args.set, &args.split)
                .with_context(|| format!("evaluating {}", args.config.display()))?;
            let mut v = serde_json::to_value(&m)?;
            v["task"] = json!("qa");
            v["split"] = json!(args.split);
            v
        }
        other => bail!(
            "{}: task.kind {other:?} cannot be evaluated (known: \"ner\", \"kbqa\", \"relation\", \"qa\")",
            args.config.display()
        ),
    };
    println!("{out}");
    Ok(ExitCode::SUCCESS)
}
