//! `zhishi init config --task ner|relation|qa|kbqa [--knowledge plain|kbert|ernie|both]` and
//! `zhishi init pipeline`: print a complete, commented TOML file with every key at its default
//! and its meaning above it (from `docs/config.md`), to stdout or `--output FILE`.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

use zhishi::reference::template;
use zhishi::reference::TrainingTask;
use zhishi::stages::task::KnowledgeMode;

/// Arguments of `zhishi init`.
#[derive(Parser, Debug)]
pub struct InitArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug)]
enum What {
    /// A training file for `zhishi train` (`[task] kind`), every key at its default.
    Config(ConfigArgs),
    /// A pipeline file for `zhishi run` / `zhishi serve`: segment, link and facts over the
    /// demo KG, with the model stages' tables commented out.
    Pipeline(OutputArgs),
}

/// Arguments of `zhishi init config`.
#[derive(ClapArgs, Debug)]
struct ConfigArgs {
    /// The task the file trains.
    #[arg(long, value_enum)]
    task: Task,
    /// How knowledge enters the encoder (`[knowledge] mode`; NER takes all four, relation
    /// extraction plain and kbert, QA and KBQA plain).
    #[arg(long, value_enum, default_value = "plain")]
    knowledge: Knowledge,
    #[command(flatten)]
    out: OutputArgs,
}

/// Where the file goes.
#[derive(ClapArgs, Debug)]
struct OutputArgs {
    /// Write to FILE instead of stdout (`-` is stdout); an existing file is kept unless
    /// `--force`.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Overwrite an existing `--output` file.
    #[arg(long)]
    force: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Task {
    Ner,
    Relation,
    Qa,
    Kbqa,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Knowledge {
    Plain,
    Kbert,
    Ernie,
    Both,
}

/// Runs `zhishi init`.
pub fn run(args: InitArgs) -> Result<ExitCode> {
    let (text, out) = match args.what {
        What::Config(c) => {
            let task = match c.task {
                Task::Ner => TrainingTask::Ner,
                Task::Relation => TrainingTask::Relation,
                Task::Qa => TrainingTask::Qa,
                Task::Kbqa => TrainingTask::Kbqa,
            };
            let mode = match c.knowledge {
                Knowledge::Plain => KnowledgeMode::Plain,
                Knowledge::Kbert => KnowledgeMode::Kbert,
                Knowledge::Ernie => KnowledgeMode::Ernie,
                Knowledge::Both => KnowledgeMode::Both,
            };
            (template::training(task, mode)?.render(), c.out)
        }
        What::Pipeline(out) => (template::pipeline()?.render(), out),
    };
    match out.output.as_deref() {
        None => print(&text)?,
        Some(p) if p == Path::new("-") => print(&text)?,
        Some(path) => write_file(path, &text, out.force)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// Writes `text` to `path`, refusing to replace an existing file unless `force`.
fn write_file(path: &Path, text: &str, force: bool) -> Result<()> {
    if force {
        // Whole: an interrupted --force leaves the old file, never a torn one.
        zhishi::files::write_file(path, text)?;
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    let mut file = match options.open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{} already exists; pass --force to overwrite it",
            path.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
    };
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
