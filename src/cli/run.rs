//! `zhishi run`: a pipeline over a whole corpus, streaming, parallel, resumable; one JSON
//! document per input record on the output, in input order.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use zhishi::corpus::{
    self, Input, InputFormat, Output, Progress, ReaderOptions, RunOptions, Shard,
};
use zhishi::pipeline::spec::{MAX_BATCH_SIZE, MAX_THREADS};
use zhishi::pipeline::Pipeline;

use super::bounds::count_in;

/// Arguments of `zhishi run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The pipeline TOML.
    pipeline: PathBuf,
    /// Input file, or `-` for standard input.
    #[arg(long, default_value = "-")]
    input: String,
    /// Output JSONL file, or `-` for standard output.
    #[arg(long, default_value = "-")]
    output: String,
    /// What each document becomes: `jsonl` (zhishi's documents), `doccano` (doccano's JSONL
    /// import format) or `label_studio` (a Label Studio JSON task array with `predictions`);
    /// see docs/annotation.md.
    #[arg(long, value_name = "FORMAT", default_value = "jsonl")]
    output_format: zhishi::stages::annotation::OutputFormat,
    /// Input format (default: jsonl for *.jsonl/*.json inputs, else txt).
    #[arg(long, value_parser = clap::value_parser!(InputFormat))]
    format: Option<InputFormat>,
    /// JSONL field holding the text.
    #[arg(long, default_value = "text", value_name = "F")]
    text_field: String,
    /// JSONL field copied to the document's `id`.
    #[arg(long, value_name = "F")]
    id_field: Option<String>,
    /// JSONL field copied to the document's `question`.
    #[arg(long, value_name = "F")]
    question_field: Option<String>,
    /// JSONL field copied to the document's `text_b` (the second text of a pair, for a
    /// `classify` stage trained on pairs).
    #[arg(long, value_name = "F")]
    text_b_field: Option<String>,
    /// Worker threads (overrides `pipeline.threads`; 0 = one per core).
    #[arg(long, value_name = "N", value_parser = count_in::<0, MAX_THREADS>)]
    threads: Option<usize>,
    /// Documents per batch (overrides `pipeline.batch_size`).
    #[arg(long, value_name = "N", value_parser = count_in::<1, MAX_BATCH_SIZE>)]
    batch_size: Option<usize>,
    /// Arithmetic of the model stages' dense layers: f32, bf16 or int8 (overrides
    /// `pipeline.precision`; a resumed run must keep the precision it started with).
    #[arg(long, value_name = "P")]
    precision: Option<zhishi::model::Precision>,
    /// Finish an interrupted run from its checkpoint (`OUTPUT.checkpoint.json`).
    #[arg(long)]
    resume: bool,
    /// Process only shard K of N (0-based): records i with i % N == K.
    #[arg(long, value_name = "K/N")]
    shard: Option<Shard>,
    /// Where bad records go (default: OUTPUT with extension .errors.jsonl; standard error when
    /// the output is standard output or a device).
    #[arg(long, value_name = "PATH")]
    errors: Option<PathBuf>,
    /// Longest accepted record in bytes (at most 1 GiB).
    #[arg(long, value_name = "N", default_value_t = 1 << 20, value_parser = count_in::<1, { 1 << 30 }>)]
    max_record_bytes: usize,
    /// Override a pipeline TOML value: `--set dotted.key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Give each entity, label and relation of a stage that injected K-BERT knowledge its
    /// `evidence`: the facts that can reach it and the change of its score when each is
    /// withheld (one forward pass more per such fact; see docs/run.md).
    #[arg(long)]
    explain: bool,
    /// Print the final summary as JSON on stderr (always printed as JSON when not a TTY).
    #[arg(long)]
    json: bool,
}

/// Runs `zhishi run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut overrides = args.overrides.clone();
    if let Some(threads) = args.threads {
        overrides.push(format!("pipeline.threads={threads}"));
    }
    if let Some(batch) = args.batch_size {
        overrides.push(format!("pipeline.batch_size={batch}"));
    }
    if let Some(precision) = args.precision {
        overrides.push(format!("pipeline.precision=\"{precision}\""));
    }
    let loading = Instant::now();
    // What the pipeline reads, to check the outputs against before anything is written.
    let reads = super::plan::config_reads(&args.pipeline, &overrides)?;
    let pipeline = Pipeline::from_toml_with(&args.pipeline, &overrides)?;
    tracing::info!(
        "loaded pipeline {} ({}) in {:.2}s",
        pipeline.name(),
        pipeline.stage_names().join(" -> "),
        loading.elapsed().as_secs_f64()
    );
    let input = match args.input.as_str() {
        "-" => Input::Stdin,
        path => Input::File(PathBuf::from(path)),
    };
    let output = match args.output.as_str() {
        "-" => Output::Stdout,
        path => Output::File(PathBuf::from(path)),
    };
    let format = args.format.unwrap_or(match &input {
        Input::File(p) if p.extension().is_some_and(|e| e == "jsonl" || e == "json") => {
            InputFormat::Jsonl
        }
        _ => InputFormat::Txt,
    });
    let opts = RunOptions {
        input,
        output,
        errors: args.errors.clone(),
        reader: ReaderOptions {
            format,
            text_field: args.text_field.clone(),
            id_field: args.id_field.clone(),
            question_field: args.question_field.clone(),
            text_b_field: args.text_b_field.clone(),
            max_record_bytes: args.max_record_bytes,
        },
        output_format: args.output_format,
        batch_size: pipeline.batch_size(),
        resume: args.resume,
        shard: args.shard,
        explain: args.explain,
        reads,
    };

    let tty = std::io::stderr().is_terminal();
    let bar = progress_bar(&opts, tty);
    let mut last_log = Instant::now();
    // One cadence for every command's progress lines (`$ZHISHI_PROGRESS_EVERY`, 10 s).
    let log_every = zhishi::train::progress::line_every();
    let report = corpus::run(&pipeline, &opts, &mut |p: &Progress| {
        if let Some(total) = p.bytes_total {
            bar.set_length(total);
        }
        bar.set_position(p.bytes_read);
        let secs = p.elapsed.as_secs_f64().max(1e-9);
        bar.set_message(format!(
            "{} docs, {} errors, {:.0} chars/s",
            p.docs,
            p.errors,
            p.chars as f64 / secs
        ));
        if !tty && last_log.elapsed() >= log_every {
            last_log = Instant::now();
            let pct = p
                .bytes_total
                .filter(|&t| t > 0)
                .map(|t| format!(" ({:.1}%)", 100.0 * p.bytes_read as f64 / t as f64))
                .unwrap_or_default();
            eprintln!(
                "zhishi run: {} docs, {} errors, {} bytes read{pct}, {:.0} chars/s",
                p.docs,
                p.errors,
                p.bytes_read,
                p.chars as f64 / secs
            );
        }
    })
    .with_context(|| format!("running {}", args.pipeline.display()))?;
    bar.finish_and_clear();

    let secs = report.seconds.max(1e-9);
    let summary = serde_json::json!({
        "pipeline": pipeline.name(),
        "docs": report.docs,
        "docs_this_run": report.docs_this_run,
        "errors": report.errors,
        "errors_file": report.errors_path,
        "resumed": report.resumed,
        "seconds": report.seconds,
        "chars": report.chars,
        "docs_per_s": report.docs_this_run as f64 / secs,
        "chars_per_s": report.chars as f64 / secs,
    });
    if args.json || !tty {
        eprintln!("{summary}");
    } else {
        let bad = match &report.errors_path {
            Some(path) => format!("{} bad records in {}", report.errors, path.display()),
            None => format!("{} bad records", report.errors),
        };
        eprintln!(
            "{} documents ({} this run) in {:.1}s: {:.0} docs/s, {:.0} chars/s; {bad}",
            report.docs,
            report.docs_this_run,
            report.seconds,
            report.docs_this_run as f64 / secs,
            report.chars as f64 / secs,
        );
    }
    if report.docs == 0 && report.errors > 0 {
        eprintln!(
            "zhishi run: no record succeeded ({} bad records)",
            report.errors
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(opts: &RunOptions, tty: bool) -> ProgressBar {
    if !tty {
        return ProgressBar::hidden();
    }
    let bar = match &opts.input {
        Input::File(_) => ProgressBar::new(0),
        Input::Stdin => ProgressBar::new_spinner(),
    };
    let template = match &opts.input {
        Input::File(_) => "{bar:30} {bytes}/{total_bytes} {msg} ETA {eta}",
        Input::Stdin => "{spinner} {bytes} {msg}",
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}
