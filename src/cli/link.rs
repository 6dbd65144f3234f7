//! `zhishi link`: entity linking of text lines (or JSONL records) against a
//! KG store; one `{"mentions": [...]}` object per input line, in input order.
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use rayon::prelude::*;
use serde_json::Value;

use zhishi::kg::store::Store;
use zhishi::text::{KnowledgeSource, LinkOptions, Linker, Mention, OverlapPolicy};

/// Lines linked in parallel per batch; output order is the input order.
const BATCH_LINES: usize = 4096;

/// Arguments of `zhishi link`.
#[derive(Args, Debug)]
pub struct LinkArgs {
    /// KG store directory (from `zhishi kg import`).
    #[arg(long)]
    db: PathBuf,
    /// Write one JSON object per input line (otherwise a readable summary).
    #[arg(long)]
    json: bool,
    /// Input is JSONL; link the string in this field of each record.
    #[arg(long, value_name = "F")]
    text_field: Option<String>,
    /// Overlap policy: all, longest or best-score.
    #[arg(long, value_parser = parse_overlap, default_value = "best-score")]
    overlap: OverlapPolicy,
    /// Drop links whose calibrated score is below this (NIL).
    #[arg(long, default_value_t = LinkOptions::default().nil_threshold, value_parser = super::bounds::unit_f32)]
    nil_threshold: f32,
    /// Shortest mention, in chars.
    #[arg(long, default_value_t = 1)]
    min_chars: usize,
    /// Drop single-word mentions with these POS tags (comma-separated, e.g. r,v,d).
    #[arg(long, value_delimiter = ',')]
    exclude_pos: Vec<String>,
    /// Disable typo candidates (swapped chars, same pinyin).
    #[arg(long)]
    no_fuzzy: bool,
    /// Also accept mentions that cut through words.
    #[arg(long)]
    ignore_boundaries: bool,
    /// Add the K most relevant triples of each linked entity (`knowledge` field).
    #[arg(long, value_name = "K", default_value_t = 0)]
    knowledge: usize,
    /// Input file (default: stdin).
    file: Option<PathBuf>,
}

fn parse_overlap(s: &str) -> Result<OverlapPolicy, String> {
    match s {
        "all" => Ok(OverlapPolicy::All),
        "longest" => Ok(OverlapPolicy::Longest),
        "best-score" | "best_score" => Ok(OverlapPolicy::BestScore),
        other => Err(format!(
            "unknown overlap policy `{other}` (all, longest, best-score)"
        )),
    }
}

/// Runs `zhishi link`.
pub fn run(args: LinkArgs) -> anyhow::Result<ExitCode> {
    let store =
        Store::open(&args.db).with_context(|| format!("opening KG store {}", args.db.display()))?;
    let opts = LinkOptions {
        overlap: args.overlap,
        nil_threshold: args.nil_threshold,
        min_chars: args.min_chars,
        exclude_pos: args.exclude_pos.clone(),
        fuzzy: !args.no_fuzzy,
        respect_boundaries: !args.ignore_boundaries,
        ..LinkOptions::default()
    };
    let linker = Linker::build(store, opts).context("building the linker from the store")?;
    let input: Box<dyn BufRead> = match &args.file {
        Some(path) => Box::new(BufReader::new(
            File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => Box::new(BufReader::new(io::stdin().lock())),
    };
    let mut out = BufWriter::new(io::stdout().lock());
    let mut batch: Vec<String> = Vec::with_capacity(BATCH_LINES);
    let mut first_line = 1usize;
    let mut lines = input.lines();
    loop {
        batch.clear();
        for line in lines.by_ref().take(BATCH_LINES) {
            batch.push(line.context("reading input")?);
        }
        if batch.is_empty() {
            break;
        }
        let rendered: Vec<anyhow::Result<String>> = batch
            .par_iter()
            .enumerate()
            .map(|(i, line)| render(&linker, &args, line, first_line + i))
            .collect();
        for r in rendered {
            writeln!(out, "{}", r?)?;
        }
        first_line += batch.len();
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Links one input line and renders the output line.
fn render<S: KnowledgeSource>(
    linker: &Linker<S>,
    args: &LinkArgs,
    line: &str,
    line_no: usize,
) -> anyhow::Result<String> {
    let text = match &args.text_field {
        None => line.to_string(),
        Some(field) => {
            if line.trim().is_empty() {
                String::new()
            } else {
                let record: Value = serde_json::from_str(line)
                    .with_context(|| format!("line {line_no}: not a JSON object"))?;
                match record.get(field) {
                    Some(Value::String(s)) => s.clone(),
                    Some(_) => bail!("line {line_no}: field `{field}` is not a string"),
                    None => bail!("line {line_no}: no field `{field}`"),
                }
            }
        }
    };
    let mentions = linker.link(&text);
    if !args.json {
        let parts: Vec<String> = mentions
            .iter()
            .map(|m| format!("{}->{} ({:.2})", m.text, m.entity.name, m.score))
            .collect();
        return Ok(parts.join("\t"));
    }
    let mut json = Vec::with_capacity(mentions.len());
    for m in &mentions {
        json.push(mention_json(linker, &text, m, args.knowledge)?);
    }
    Ok(serde_json::json!({ "mentions": json }).to_string())
}

fn mention_json<S: KnowledgeSource>(
    linker: &Linker<S>,
    text: &str,
    m: &Mention,
    k: usize,
) -> anyhow::Result<Value> {
    let mut value = serde_json::to_value(m)?;
    if k > 0 {
        let knowledge = linker.select_knowledge(text, m, k)?;
        value["knowledge"] = serde_json::to_value(knowledge)?;
    }
    Ok(value)
}
