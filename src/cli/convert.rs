//! `zhishi convert --from FORMAT --to FORMAT IN OUT`: NER data from one format into an
//! annotation tool's (doccano JSONL, or a Label Studio JSON task array whose tasks hold the
//! spans as their annotation), so a corpus can be corrected in the tool or trained from its
//! export. Spans are read in the input's tagging scheme (BIO as conlleval reads it) and
//! written in characters (doccano: UTF-16 code units, as doccano counts). Prints one JSON
//! object.
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;

use zhishi::stages::annotation::{doccano, label_studio, OffsetUnit, ReadOptions, Shape};
use zhishi::stages::ner::data::{read_with, to_documents, DataFormat, SpanReading};

/// Arguments of `zhishi convert`.
#[derive(Parser, Debug)]
pub struct Args {
    /// The input's format: char_per_line, kbert_tsv, doccano or label_studio (NER data).
    #[arg(long, value_parser = ner_format)]
    from: DataFormat,
    /// The output's format: doccano or label_studio.
    #[arg(long, value_parser = ner_format)]
    to: DataFormat,
    /// doccano or Label Studio input: the unit of its offsets, chars or utf16 (default: the
    /// tool's own).
    #[arg(long, value_parser = offset_unit)]
    offsets: Option<OffsetUnit>,
    /// Label Studio input: read a task without an annotation from its first prediction.
    #[arg(long)]
    use_predictions: bool,
    /// The input file.
    input: PathBuf,
    /// The output file (must not exist).
    output: PathBuf,
}

fn ner_format(s: &str) -> Result<DataFormat, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|_| {
        format!("unknown format {s:?}; expected char_per_line, kbert_tsv, doccano or label_studio")
    })
}

fn offset_unit(s: &str) -> Result<OffsetUnit, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("unknown offset unit {s:?}; expected chars or utf16"))
}

/// Runs `zhishi convert`.
pub fn run(args: Args) -> Result<ExitCode> {
    if args.to.tool().is_none() {
        bail!("--to {}: expected doccano or label_studio", name(args.to));
    }
    let reading = SpanReading {
        options: ReadOptions {
            offsets: args.offsets,
            use_predictions: args.use_predictions,
        },
        ..SpanReading::default()
    };
    let sentences = read_with(&args.input, args.from, &reading)
        .with_context(|| format!("reading {}", args.input.display()))?;
    let docs = to_documents(&sentences);
    let shape = Shape {
        entities: true,
        ..Shape::default()
    };
    let mut out = String::new();
    if args.to == DataFormat::LabelStudio {
        out.push('[');
    }
    for (i, doc) in docs.iter().enumerate() {
        let value = match args.to {
            DataFormat::LabelStudio => {
                if i > 0 {
                    out.push(',');
                }
                label_studio::task_json(doc, &shape, true)
            }
            _ => doccano::to_json(doc, &shape),
        };
        out.push_str(&value.to_string());
        out.push('\n');
    }
    if args.to == DataFormat::LabelStudio {
        out.push_str("]\n");
    }
    zhishi::files::write_new_file(&args.output, out)
        .with_context(|| format!("writing {}", args.output.display()))?;
    let json = serde_json::json!({
        "from": name(args.from),
        "to": name(args.to),
        "input": args.input.display().to_string(),
        "output": args.output.display().to_string(),
        "texts": docs.len(),
        "spans": docs.iter().map(|d| d.entities.len()).sum::<usize>(),
    });
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}

fn name(format: DataFormat) -> String {
    serde_json::to_value(format)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
