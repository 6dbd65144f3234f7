//! `zhishi link`: entity linking of text lines (or JSONL records) against a
//! KG store; one `{"mentions": [...]}` object per input line, in input order.
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use serde::Serialize;

use zhishi::corpus::reader::RecordReader;
use zhishi::corpus::{InputFormat, ReaderOptions};
use zhishi::doc::{Document, Fact, Mention};
use zhishi::pipeline::Pipeline;
use zhishi::stages::facts::FactsOptions;
use zhishi::text::{LinkOptions, OverlapPolicy, FUNCTION_WORD_TAGS};

/// Lines linked in parallel per batch; output order is the input order.
const BATCH_LINES: usize = 4096;

/// Text bytes gathered before a batch is linked even if it has fewer lines.
const BATCH_BYTES: usize = 16 << 20;

/// Arguments of `zhishi link`.
#[derive(Args, Debug)]
pub struct LinkArgs {
    /// KG store directory (from `zhishi kg import`), or a triple file read into memory.
    #[arg(long)]
    db: PathBuf,
    /// Write one JSON object per input line (otherwise a readable summary).
    #[arg(long)]
    json: bool,
    /// Input is JSONL; link the string in this field of each record.
    #[arg(long, value_name = "F")]
    text_field: Option<String>,
    /// Overlap policy: all, longest or best_score (as in `[link] overlap`).
    #[arg(long, value_parser = parse_overlap, default_value = "best_score")]
    overlap: OverlapPolicy,
    /// Drop links whose calibrated score is below this (NIL).
    #[arg(long, default_value_t = LinkOptions::default().nil_threshold, value_parser = super::bounds::unit_f32)]
    nil_threshold: f32,
    /// Shortest mention, in chars.
    #[arg(long, default_value_t = 1)]
    min_chars: usize,
    /// Drop single-word mentions with these POS tags (comma-separated; default: pronouns and
    /// function words; `--exclude-pos ''` links every word class).
    #[arg(long, value_delimiter = ',', default_values_t = FUNCTION_WORD_TAGS.map(String::from))]
    exclude_pos: Vec<String>,
    /// Disable typo candidates (swapped chars, same pinyin).
    #[arg(long)]
    no_fuzzy: bool,
    /// Also accept mentions that cut through words.
    #[arg(long)]
    ignore_boundaries: bool,
    /// Add the K most relevant triples of each linked entity (`facts`, as the pipeline's
    /// `facts` stage writes them).
    #[arg(long, value_name = "K", default_value_t = 0)]
    knowledge: usize,
    /// Longest accepted input line in bytes (at most 1 GiB); longer lines are reported and
    /// skipped, never loaded whole.
    #[arg(long, value_name = "N", default_value_t = 1 << 20, value_parser = super::bounds::count_in::<1, { 1 << 30 }>)]
    max_record_bytes: usize,
    /// Input file (default: stdin).
    file: Option<PathBuf>,
}

/// The TOML spellings (`[link] overlap`); `best-score` is accepted too.
fn parse_overlap(s: &str) -> Result<OverlapPolicy, String> {
    match s {
        "all" => Ok(OverlapPolicy::All),
        "longest" => Ok(OverlapPolicy::Longest),
        "best_score" | "best-score" => Ok(OverlapPolicy::BestScore),
        other => Err(format!(
            "unknown overlap policy `{other}` (all, longest, best_score)"
        )),
    }
}

/// Runs `zhishi link`.
pub fn run(args: LinkArgs) -> anyhow::Result<ExitCode> {
    let opts = LinkOptions {
        overlap: args.overlap,
        nil_threshold: args.nil_threshold,
        min_chars: args.min_chars,
        exclude_pos: args
            .exclude_pos
            .iter()
            .filter(|tag| !tag.is_empty())
            .cloned()
            .collect(),
        fuzzy: !args.no_fuzzy,
        respect_boundaries: !args.ignore_boundaries,
        ..LinkOptions::default()
    };
    // The pipeline's own link (and facts) stages: the output is the pipeline's JSON, with
    // character offsets, by construction.
    let mut builder = Pipeline::builder().name("link").link(opts);
    builder = if args.db.is_file() {
        tracing::info!(
            "{} is a triple file: reading it into memory (import it once with `zhishi kg import` for a store)",
            args.db.display()
        );
        builder.kg_triples([&args.db])
    } else {
        builder.kg_store(&args.db)
    };
    if args.knowledge > 0 {
        builder = builder.facts(FactsOptions {
            per_mention: args.knowledge,
        });
    }
    let pipeline = builder
        .build()
        .with_context(|| format!("loading the KG {}", args.db.display()))?;
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
        text_b_field: None,
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
        let mut docs: Vec<Document> = batch
            .iter_mut()
            .filter_map(|r| r.content.as_mut().ok().map(std::mem::take))
            .collect();
        pipeline.run(&mut docs).context("linking")?;
        let mut docs = docs.into_iter();
        for record in &batch {
            // One output line per input line: blank input lines give empty results.
            while lines_out + 1 < record.line {
                writeln!(out, "{}", empty_line(args.json))?;
                lines_out += 1;
            }
            match (&record.content, args.json) {
                (Ok(_), json) => {
                    let doc = docs.next().context("one document per good record")?;
                    writeln!(out, "{}", render(&doc, json, args.knowledge > 0)?)?;
                    linked += 1;
                }
                (Err(error), json) => {
                    let where_ = match &args.file {
                        Some(path) => format!("{}:{}", path.display(), record.line),
                        None => format!("line {}", record.line),
                    };
                    eprintln!("zhishi link: {where_}: {error}");
                    let line =
                        serde_json::json!({ "line": record.line, "error": error.to_string() });
                    writeln!(
                        out,
                        "{}",
                        if json {
                            line.to_string()
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

/// The output line of a linked document: the pipeline's `mentions` (and `facts`) JSON, or a
/// readable `text->entity (score)` list.
fn render(doc: &Document, json: bool, with_facts: bool) -> anyhow::Result<String> {
    if !json {
        let parts: Vec<String> = doc
            .mentions
            .iter()
            .map(|m| format!("{}->{} ({:.2})", m.text, m.entity.name, m.score))
            .collect();
        return Ok(parts.join("\t"));
    }
    Ok(serde_json::to_string(&LineOut {
        mentions: &doc.mentions,
        facts: with_facts.then_some(&doc.facts),
    })?)
}

/// One output line: the same `Mention` and `Fact` JSON as `zhishi run` and `zhishi serve`.
#[derive(Serialize)]
struct LineOut<'a> {
    mentions: &'a [Mention],
    #[serde(skip_serializing_if = "Option::is_none")]
    facts: Option<&'a [Fact]>,
}
