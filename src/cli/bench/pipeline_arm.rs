//! The hidden child `zhishi bench run-arm`: one pipeline at one precision and thread count
//! over a corpus, in this process, timing every stage; optionally writes each document's
//! entities and the NER model stage's exact inputs (`zhishi::stages::ner::dump`) for the
//! reference implementations. Prints one JSON object.
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use zhishi::doc::Document;
use zhishi::model::Precision;
use zhishi::pipeline::Pipeline;
use zhishi::stages::ner::dump::{write_line, DumpHeader, DumpedWindow};
use zhishi::stages::ner::NerModel;

/// Arguments of `zhishi bench run-arm`.
#[derive(Args, Debug)]
pub struct RunArmArgs {
    /// The pipeline TOML.
    pub pipeline: PathBuf,
    /// The corpus: one document per non-empty line.
    #[arg(long)]
    pub corpus: PathBuf,
    /// The NER model directory (sets `ner.model`).
    #[arg(long)]
    pub model: PathBuf,
    /// Arithmetic of the model stages.
    #[arg(long, default_value = "f32")]
    pub precision: Precision,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Override a pipeline TOML value (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Write each document's entities here (JSON lines of `[start, end, label]` lists).
    #[arg(long)]
    pub entities: Option<PathBuf>,
    /// Write the NER model stage's inputs here (after the timed run; not timed).
    #[arg(long)]
    pub dump_inputs: Option<PathBuf>,
}

/// Runs the pipeline over the corpus and returns the timings.
pub fn run_arm(args: &RunArmArgs) -> anyhow::Result<Value> {
    let texts = read_corpus(&args.corpus)?;
    let mut overrides = args.overrides.clone();
    overrides.push(format!("pipeline.threads={}", args.threads));
    overrides.push(format!("pipeline.precision=\"{}\"", args.precision));
    overrides.push(format!("ner.model={}", toml_string(&args.model)));
    let loading = Instant::now();
    let pipeline = Pipeline::from_toml_with(&args.pipeline, &overrides)
        .with_context(|| format!("building {}", args.pipeline.display()))?;
    let load_seconds = loading.elapsed().as_secs_f64();
    let names = pipeline.stage_names();
    let batch = pipeline.batch_size().max(1);
    let mut docs: Vec<Document> = texts.iter().map(|t| Document::new(t.as_str())).collect();
    let mut stage_seconds = vec![0.0; names.len()];
    let start = Instant::now();
    for chunk in docs.chunks_mut(batch) {
        let times = pipeline.run_timed(chunk)?;
        for (total, t) in stage_seconds.iter_mut().zip(times) {
            *total += t;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let chars: usize = docs.iter().map(|d| d.text.chars().count()).sum();
    let mut out = json!({
        "precision": args.precision.to_string(), "threads": args.threads,
        "docs": docs.len(), "chars": chars, "batch_size": batch,
        "load_seconds": load_seconds, "seconds": seconds,
        "stage_seconds": names.iter().zip(&stage_seconds)
            .map(|(n, s)| (n.to_string(), json!(s))).collect::<serde_json::Map<_, _>>(),
    });
    if let Some(path) = &args.entities {
        write_entities(path, &docs)?;
    }
    if let Some(path) = &args.dump_inputs {
        let (windows, tokens) = dump_inputs(path, &args.model, &docs, batch)?;
        out["windows"] = json!(windows);
        out["model_tokens"] = json!(tokens);
    }
    Ok(out)
}

/// The non-empty lines of the corpus.
fn read_corpus(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        bail!("{} has no non-empty line", path.display());
    }
    Ok(lines)
}

/// A path as a TOML string literal (for `--set`).
fn toml_string(path: &Path) -> String {
    toml::Value::String(path.to_string_lossy().into_owned()).to_string()
}

/// One line per document: its entities as `[start, end, label]`.
fn write_entities(path: &Path, docs: &[Document]) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    for doc in docs {
        let spans: Vec<Value> = doc
            .entities
            .iter()
            .map(|e| json!([e.start, e.end, e.label]))
            .collect();
        write_line(&mut out, &spans)?;
    }
    out.flush()?;
    Ok(())
}

/// Writes the NER stage's windows of every document (which carry the pipeline's mentions and
/// facts), grouped by pipeline batch; returns the number of windows and of real tokens.
fn dump_inputs(
    path: &Path,
    model_dir: &Path,
    docs: &[Document],
    batch: usize,
) -> anyhow::Result<(usize, usize)> {
    let model =
        NerModel::load(model_dir).with_context(|| format!("loading {}", model_dir.display()))?;
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::new(file);
    write_line(&mut out, &DumpHeader::new(model.meta()))?;
    let (mut windows, mut tokens) = (0, 0);
    for (group, chunk) in docs.chunks(batch).enumerate() {
        for (i, (doc, examples)) in chunk.iter().zip(model.windows(chunk)?).enumerate() {
            let n = doc.text.chars().count();
            for ex in &examples {
                write_line(
                    &mut out,
                    &DumpedWindow::new(group, group * batch + i, n, ex)?,
                )?;
                windows += 1;
                tokens += ex.len();
            }
        }
    }
    out.flush()?;
    Ok((windows, tokens))
}
