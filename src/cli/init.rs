//! `zhishi init config --task ner|relation|qa|kbqa [--knowledge plain|kbert|ernie|both]` and
//! `zhishi init pipeline`: print a complete, commented TOML file with every key at its default
//! and its meaning above it (from `docs/config.md`), to stdout or `--output FILE`. Its paths
//! are written for the file's directory (the current directory on stdout).
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

use zhishi::files::FilesError;
use zhishi::reference::template::{self, Place, DEMO_KG};
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
    /// Write to FILE instead of stdout (`-` is stdout), its paths relative to FILE's
    /// directory (on stdout: to the current directory); an existing file is kept unless
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
    let out = match &args.what {
        What::Config(c) => &c.out,
        What::Pipeline(out) => out,
    };
    let file = out.output.as_deref().filter(|p| *p != Path::new("-"));
    let place = place_for(file)?;
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
            (template::training(task, mode, &place)?.render(), c.out)
        }
        What::Pipeline(out) => (template::pipeline(&place)?.render(), out),
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
    } else {
        match zhishi::files::write_new_file(path, text) {
            Err(FilesError::FileExists { .. }) => bail!(
                "{} already exists; pass --force to overwrite it",
                path.display()
            ),
            other => other?,
        }
    }
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Where the file's paths resolve from: `file`'s directory, or the current directory when
/// printing; and the zhishi checkout holding the shipped files, looked for above that
/// directory, above the current directory, then where this binary was built.
fn place_for(file: Option<&Path>) -> Result<Place> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let dir = match file {
        Some(path) => lexical(&cwd.join(path.parent().unwrap_or(Path::new("")))),
        None => cwd.clone(),
    };
    let built = Path::new(env!("CARGO_MANIFEST_DIR"));
    let checkout = dir
        .ancestors()
        .chain(cwd.ancestors())
        .chain(std::iter::once(built))
        .find(|d| d.join(DEMO_KG).is_file() && d.join("pipelines").is_dir())
        .map(|d| std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf()));
    // The file's directory as the checkout sees it (symlinks resolved where it exists).
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    Ok(Place {
        dir,
        checkout,
        printed: file.is_none(),
    })
}

/// `path` with `.` and `..` components folded, without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
