//! `zhishi kbqa train|eval|ask CONFIG`: the KBQA stage's own entry points (hidden; `zhishi train`
//! and `zhishi eval` dispatch here by `task.kind` once they exist).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use zhishi::config;
use zhishi::stages::kbqa::{self, KbqaConfig, KbqaModel, Split};

/// Arguments of `zhishi kbqa`.
#[derive(Args, Debug)]
pub struct KbqaArgs {
    #[command(subcommand)]
    command: KbqaCommand,
}

#[derive(Subcommand, Debug)]
enum KbqaCommand {
    /// Train the scorer; prints the training report as JSON.
    Train(ConfigArgs),
    /// Evaluate the trained model on a split; prints one JSON object of metrics.
    Eval {
        #[command(flatten)]
        config: ConfigArgs,
        /// train, dev or test.
        #[arg(long, default_value = "test")]
        split: Split,
    },
    /// Answer questions given as arguments with a trained model directory; prints JSON lines.
    Ask {
        /// The model directory (`train.output`).
        #[arg(long)]
        model: PathBuf,
        /// Questions.
        questions: Vec<String>,
    },
}

#[derive(Args, Debug)]
struct ConfigArgs {
    /// The TOML configuration.
    config: PathBuf,
    /// Override a TOML value: `--set train.epochs=5` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn load(args: &ConfigArgs) -> anyhow::Result<config::Loaded<KbqaConfig>> {
    Ok(config::load(&args.config, &args.overrides)?)
}

/// Runs `zhishi kbqa ...`.
pub fn run(args: KbqaArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        KbqaCommand::Train(c) => {
            let report = kbqa::train(&load(&c)?).context("KBQA training failed")?;
            println!("{}", serde_json::to_string(&report)?);
        }
        KbqaCommand::Eval { config, split } => {
            let metrics =
                kbqa::evaluate(&load(&config)?, split).context("KBQA evaluation failed")?;
            println!("{}", serde_json::to_string(&metrics)?);
        }
        KbqaCommand::Ask { model, questions } => {
            let model = KbqaModel::load(&model)
                .with_context(|| format!("cannot load KBQA model {}", model.display()))?;
            for q in &questions {
                let answers = model.answer(q)?;
                let line = serde_json::json!({"question": q, "answers": answers.iter().take(3).collect::<Vec<_>>()});
                println!("{line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
