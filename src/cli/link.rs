//! `zhishi link`: entity linking of text lines (or JSONL records) against a
//! KG store; one `{"mentions": [...]}` object per input line, in input order.
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use rayon::prelude::*;
use serde::Serialize;

use zhishi::corpus::reader::RecordReader;
use zhishi::corpus::{InputFormat, ReaderOptions};
use zhishi::kg::store::Store;
use zhishi::text::{Knowledge, KnowledgeSource, LinkOptions, Linker, Mention, OverlapPolicy};

/// Lines linked in parallel per batch; output order is the input order.
const BATCH_LINES: usize = 4096;

/// Text bytes gathered before a batch is linked even if it has fewer lines.
const BATCH_BYTES: usize = 16 << 20;

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
    /// Longest accepted input line in bytes (at most 1 GiB); longer lines are reported and
    /// skipped, never loaded whole.
    #[arg(long, value_name = "N", default_value_t = 1 << 20, value_parser = super::bounds::count_in::<1, { 1 << 30 }>)]
    max_record_bytes: usize,
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
        Some(path) => Box::new(BufReader::with_capacity(
            1 << 20,
            File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )),
        None => Box::new(BufReader::with_capacity(1 << 20, io::stdin().lock())),
    };
    let reader_opts = ReaderOptions {
        format: match args.text_field {
            Some(_) => InputFormat::Jsonl,
            None => InputFormat::Txt,
        },
        text_field: args.text_field.clone().unwrap_or_else(|| "text".into()),
        id_field: None,
        question_field: None,
        max_record_bytes: args.max_record_bytes,
    };
    let mut records = RecordReader::new(input, reader_opts, 0, 0);
    let mut out = BufWriter::new(io::stdout().lock());
    let (mut lines_out, mut linked, mut bad) = (0u64, 0u64, 0u64);
    loop {
        let mut batch = Vec::with_capacity(BATCH_LINES);
        let mut bytes = 0usize;
        while batch.len() < BATCH_LINES && bytes < BATCH_BYTES {
            let Some(record) = records.next_record().context("reading input")? else {
                break;
            };
            bytes += record.content.as_ref().map_or(0, |d| d.text.len());
            batch.push(record);
        }
        if batch.is_empty() {
            break;
        }
        let rendered: Vec<Result<String, String>> = batch
            .par_iter()
            .map(|record| match &record.content {
                Ok(doc) => render(&linker, &args, &doc.text).map_err(|e| format!("{e:#}")),
                Err(e) => Err(e.to_string()),
            })
            .collect();
        for (record, line) in batch.iter().zip(rendered) {
            // One output line per input line: blank input lines give empty results.
            while lines_out + 1 < record.line {
                writeln!(out, "{}", empty_line(args.json))?;
                lines_out += 1;
            }
            match line {
                Ok(line) => {
                    writeln!(out, "{line}")?;
                    linked += 1;
                }
                Err(error) => {
                    let where_ = match &args.file {
                        Some(path) => format!("{}:{}", path.display(), record.line),
                        None => format!("line {}", record.line),
                    };
                    eprintln!("zhishi link: {where_}: {error}");
                    let json = serde_json::json!({ "line": record.line, "error": error });
                    writeln!(
                        out,
                        "{}",
                        if args.json {
                            json.to_string()
                        } else {
                            String::new()
                        }
                    )?;
                    bad += 1;
                }
            }
            lines_out = record.line;
        }
    }
    while lines_out < records.lines() {
        writeln!(out, "{}", empty_line(args.json))?;
        lines_out += 1;
    }
    out.flush()?;
    if bad > 0 {
        bail!(
            "{bad} input lines could not be linked ({linked} were); each is reported above and stands as {{\"line\", \"error\"}} in the output"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The output line of a blank input line.
fn empty_line(json: bool) -> &'static str {
    if json {
        r#"{"mentions":[]}"#
    } else {
        ""
    }
}

/// Links one input line and renders the output line.
fn render<S: KnowledgeSource>(
    linker: &Linker<S>,
    args: &LinkArgs,
    text: &str,
) -> anyhow::Result<String> {
    let mentions = linker.link(text);
    if !args.json {
        let parts: Vec<String> = mentions
            .iter()
            .map(|m| format!("{}->{} ({:.2})", m.text, m.entity.name, m.score))
            .collect();
        return Ok(parts.join("\t"));
    }
    let mut out = Vec::with_capacity(mentions.len());
    for mention in &mentions {
        let knowledge = if args.knowledge > 0 {
            Some(linker.select_knowledge(text, mention, args.knowledge)?)
        } else {
            None
        };
        out.push(MentionOut { mention, knowledge });
    }
    Ok(serde_json::to_string(&LineOut { mentions: out })?)
}

/// One output line: serialised straight to text (a `serde_json::Value` per mention cost
/// ~10 KB each on lines with hundreds of thousands of mentions).
#[derive(Serialize)]
struct LineOut<'a> {
    mentions: Vec<MentionOut<'a>>,
}

/// A mention with, when asked for, its most relevant facts.
#[derive(Serialize)]
struct MentionOut<'a> {
    #[serde(flatten)]
    mention: &'a Mention,
    #[serde(skip_serializing_if = "Option::is_none")]
    knowledge: Option<Vec<Knowledge>>,
}
