//! `zhishi run`'s engine: stream records from the input, process them in batches through a
//! [`Pipeline`], write one JSON document per line in input order, send bad records to an
//! errors file, and checkpoint after every batch so `--resume` finishes a killed run with each
//! record in the output exactly once.
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;

use crate::doc::Document;
use crate::pipeline::{Pipeline, PipelineError};
use crate::stages::annotation::{export, OutputFormat, Shape};

use super::checkpoint::{self, Checkpoint, InputIdentity, Saved, CHECKPOINT_VERSION};
use super::files::{open_partial, open_stream, publish, RunFiles, Target};
use super::reader::{ReaderOptions, Record, RecordReader};

/// Text bytes gathered before a batch is processed even if it has fewer documents.
const MAX_BATCH_BYTES: usize = 16 << 20;

/// Where documents come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Standard input (cannot be resumed).
    Stdin,
    /// A file.
    File(PathBuf),
}

/// Where documents go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Standard output (cannot be resumed).
    Stdout,
    /// A file (checkpointed beside it).
    File(PathBuf),
}

/// This process's part of a sharded job: records `i` with `i % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based shard number.
    pub index: u64,
    /// Number of shards.
    pub count: u64,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("bad shard {s:?}; expected K/N with 0 <= K < N, e.g. 0/4");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = k.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What to run over.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The input.
    pub input: Input,
    /// The output.
    pub output: Output,
    /// The errors file; default `OUTPUT` with extension `.errors.jsonl`, or standard error
    /// when the output is standard output or a device.
    pub errors: Option<PathBuf>,
    /// How input lines become documents.
    pub reader: ReaderOptions,
    /// What each document becomes on the output: zhishi's JSON, or an annotation tool's
    /// import format (pre-annotations).
    pub output_format: OutputFormat,
    /// Documents per batch.
    pub batch_size: usize,
    /// Continue an interrupted run from its checkpoint.
    pub resume: bool,
    /// Process only this shard of the records.
    pub shard: Option<Shard>,
    /// Give each prediction of a stage that injected knowledge its `evidence` (one forward
    /// pass more per fact that can reach a prediction).
    pub explain: bool,
    /// What else the run reads (the pipeline TOML and the KG and models it names): no
    /// output may overwrite any of it (checked with the input before anything is written).
    pub reads: crate::files::Plan,
}

/// A progress snapshot, reported after every batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Documents written (including those of a resumed run).
    pub docs: u64,
    /// Records sent to the errors file.
    pub errors: u64,
    /// Input bytes consumed.
    pub bytes_read: u64,
    /// Input size, when known.
    pub bytes_total: Option<u64>,
    /// Characters of text processed by this process.
    pub chars: u64,
    /// Time since this process started the run.
    pub elapsed: Duration,
}

/// The result of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Documents written in total (including before a resume).
    pub docs: u64,
    /// Documents processed by this process.
    pub docs_this_run: u64,
    /// Records in the errors file.
    pub errors: u64,
    /// Characters of text processed by this process.
    pub chars: u64,
    /// Input bytes consumed by this process.
    pub bytes: u64,
    /// Wall-clock seconds of this process.
    pub seconds: f64,
    /// Whether the run continued from a checkpoint.
    pub resumed: bool,
    /// The errors file, when bad records were written to one (`None`: no bad records, or
    /// they went to standard error).
    pub errors_path: Option<PathBuf>,
}

/// What can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// An output would overwrite something the run reads.
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The paths given would make the run overwrite its input or one of its own files.
    #[error("{0}")]
    Paths(String),
    /// `--resume` cannot continue this run, or an interrupted run would be overwritten.
    #[error("{0}")]
    Resume(String),
    /// The pipeline failed on every document of a batch and alone on none (a systemic error).
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

fn io_err(path: &Path) -> impl Fn(io::Error) -> RunError + '_ {
    move |error| RunError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The default errors file for an output file: its path with extension `.errors.jsonl`.
/// (With standard output or a device as output, bad records go to standard error.)
pub fn default_errors_path(output: &Path) -> PathBuf {
    output.with_extension("errors.jsonl")
}

/// One line of the errors file.
#[derive(Debug, Serialize)]
struct ErrorLine<'a> {
    line: u64,
    offset: u64,
    kind: &'a str,
    error: String,
    excerpt: &'a str,
}

/// A writer that counts its bytes so the checkpoint can record lengths without `stat` calls.
struct Counted {
    name: PathBuf,
    inner: BufWriter<Box<dyn Write>>,
    file: Option<File>,
    len: u64,
}

impl Counted {
    fn new(name: &Path, file: Option<File>, writer: Box<dyn Write>, len: u64) -> Self {
        Self {
            name: name.to_path_buf(),
            inner: BufWriter::with_capacity(1 << 20, writer),
            file,
            len,
        }
    }

    /// Opens `target` for writing after `len` vouched-for bytes.
    fn open(target: &Target, std: fn() -> Box<dyn Write>, len: u64) -> Result<Self, RunError> {
        Ok(match target {
            Target::Std => Counted::new(Path::new("-"), None, std(), 0),
            Target::Stream(path) => {
                let file = open_stream(path)?;
                Counted::new(path, None, Box::new(file), 0)
            }
            Target::File { partial, .. } => {
                let file = open_partial(partial, len)?;
                let sync = file.try_clone().map_err(io_err(partial))?;
                Counted::new(partial, Some(sync), Box::new(file), len)
            }
        })
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), RunError> {
        let name = &self.name;
        self.inner.write_all(line).map_err(io_err(name))?;
        self.inner.write_all(b"\n").map_err(io_err(name))?;
        self.len += line.len() as u64 + 1;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RunError> {
        self.inner.flush().map_err(io_err(&self.name))
    }

    /// Flushes and, for a file, makes its bytes durable before it is renamed into place.
    fn sync(&mut self) -> Result<(), RunError> {
        self.flush()?;
        match &self.file {
            Some(file) => file.sync_all().map_err(io_err(&self.name)),
            None => Ok(()),
        }
    }
}

/// The bad-record sink, opened on the first bad record (a clean run creates no file).
struct ErrorsSink {
    target: Target,
    out: Option<Counted>,
    len: u64,
}

impl ErrorsSink {
    fn new(target: &Target, len: u64) -> Result<Self, RunError> {
        let mut sink = Self {
            target: target.clone(),
            out: None,
            len,
        };
        if len > 0 {
            sink.out = Some(Counted::open(target, || Box::new(io::stderr()), len)?);
        }
        Ok(sink)
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), RunError> {
        if self.out.is_none() {
            self.out = Some(Counted::open(&self.target, || Box::new(io::stderr()), 0)?);
        }
        if let Some(out) = &mut self.out {
            out.write_line(line)?;
            if matches!(self.target, Target::File { .. }) {
                self.len = out.len;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RunError> {
        self.out.as_mut().map_or(Ok(()), Counted::flush)
    }

    fn sync(&mut self) -> Result<(), RunError> {
        self.out.as_mut().map_or(Ok(()), Counted::sync)
    }
}

/// Runs `pipeline` over the input; `on_progress` sees a snapshot after every batch.
///
/// Nothing is written before the paths are checked ([`RunFiles::plan`]); documents and bad
/// records go to `NAME.partial` files that are renamed into place at the end, and the
/// checkpoint is removed once they are.
pub fn run(
    pipeline: &Pipeline,
    opts: &RunOptions,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let files = RunFiles::plan(opts)?;
    // One writer per output: a second run into it is refused with this one's pid (and so
    // cannot be told to --resume a checkpoint the first is still writing).
    let _lock = match &files.output {
        Target::File { path, .. } => Some(crate::files::DirLock::acquire_sibling(path)?),
        _ => None,
    };
    let identity = match &opts.input {
        Input::File(path) => InputIdentity::of(path).map_err(io_err(path))?,
        Input::Stdin => InputIdentity {
            path: PathBuf::from("-"),
            len: 0,
            modified_ns: None,
            head_sha256: String::new(),
        },
    };
    let input_len = matches!(opts.input, Input::File(_)).then_some(identity.len);
    let fresh = Checkpoint {
        version: CHECKPOINT_VERSION,
        pipeline: pipeline.fingerprint().to_string(),
        input: identity,
        reader: opts.reader.clone(),
        output_format: opts.output_format,
        shard: opts.shard.map(|s| s.to_string()),
        errors_path: files.errors.display_path().map(Path::to_path_buf),
        input_offset: 0,
        lines: 0,
        records: 0,
        output_len: 0,
        errors_len: 0,
        docs: 0,
        errors: 0,
        done: false,
    };
    let (mut state, resumed) = start_state(opts, &files, fresh)?;
    let report = |state: &Checkpoint, docs_this_run, chars, bytes| RunReport {
        docs: state.docs,
        docs_this_run,
        errors: state.errors,
        chars,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        resumed,
        errors_path: match &files.errors {
            Target::File { path, .. } if state.errors_len > 0 => Some(path.clone()),
            Target::Stream(path) if state.errors > 0 => Some(path.clone()),
            _ => None,
        },
    };
    if state.done {
        // Killed while putting a finished run's files in place: finish that.
        if state.errors_len > 0 {
            put_in_place(&files.errors, state.errors_len)?;
        }
        put_in_place(&files.output, state.output_len)?;
        if let Some(ckpt) = &files.checkpoint {
            std::fs::remove_file(ckpt).map_err(io_err(ckpt))?;
        }
        return Ok(report(&state, 0, 0, 0));
    }
    if let (Some(path), false) = (&files.checkpoint, resumed) {
        // Recorded before any partial file exists, so a partial file without a checkpoint
        // is never one of ours.
        checkpoint::save(path, &state).map_err(io_err(path))?;
    }
    let mut out = Counted::open(&files.output, || Box::new(io::stdout()), state.output_len)?;
    let mut errors_out = ErrorsSink::new(&files.errors, state.errors_len)?;
    let reader: Box<dyn BufRead> = match &opts.input {
        Input::Stdin => Box::new(BufReader::with_capacity(1 << 20, io::stdin())),
        Input::File(path) => {
            let mut file = File::open(path).map_err(io_err(path))?;
            file.seek(SeekFrom::Start(state.input_offset))
                .map_err(io_err(path))?;
            Box::new(BufReader::with_capacity(1 << 20, file))
        }
    };
    let input_name = state.input.path.clone();
    let mut records =
        RecordReader::new(reader, opts.reader.clone(), state.input_offset, state.lines);
    let start_offset = state.input_offset;
    let batch_size = opts.batch_size.max(1);
    let mut chars = 0u64;
    let mut docs_this_run = 0u64;
    let shape = Shape::new(pipeline.name(), pipeline.produces());

    loop {
        let batch = read_batch(&mut records, &mut state.records, opts.shard, batch_size)
            .map_err(io_err(&input_name))?;
        if batch.records.is_empty() && batch.bad.is_empty() && batch.at_end {
            break;
        }
        let (docs, failed) = process(pipeline, batch.records, opts.explain)?;
        let written = state.docs;
        let lines: Vec<Vec<u8>> = pipeline.install(|| {
            docs.par_iter()
                .enumerate()
                .map(|(i, (_, doc))| {
                    export::line(doc, opts.output_format, &shape, written + i as u64 == 0)
                })
                .collect()
        });
        for (line, (_, doc)) in lines.iter().zip(&docs) {
            out.write_line(line)?;
            chars += doc.text.chars().count() as u64;
        }
        for (record, message, kind) in batch
            .bad
            .iter()
            .chain(failed.iter())
            .map(|b| (&b.0, &b.1, b.2))
        {
            let line = ErrorLine {
                line: record.line,
                offset: record.offset,
                kind,
                error: message.clone(),
                excerpt: &record.excerpt,
            };
            let json = serde_json::to_vec(&line).unwrap_or_default();
            errors_out.write_line(&json)?;
        }
        out.flush()?;
        errors_out.flush()?;
        docs_this_run += docs.len() as u64;
        state.docs += docs.len() as u64;
        state.errors += (batch.bad.len() + failed.len()) as u64;
        state.input_offset = records.offset();
        state.lines = records.lines();
        state.output_len = out.len;
        state.errors_len = errors_out.len;
        if let Some(path) = &files.checkpoint {
            checkpoint::save(path, &state).map_err(io_err(path))?;
        }
        on_progress(&Progress {
            docs: state.docs,
            errors: state.errors,
            bytes_read: state.input_offset,
            bytes_total: input_len,
            chars,
            elapsed: started.elapsed(),
        });
        if batch.at_end {
            break;
        }
    }
    if let Some(closing) = export::closing(opts.output_format, state.docs) {
        // Written once, after the last batch: a run killed before its checkpoint records it
        // is cut back to the last batch by --resume, which then writes it again.
        out.write_line(closing)?;
        state.output_len = out.len;
    }
    finish(&files, &mut state, &mut out, &mut errors_out)?;
    Ok(report(
        &state,
        docs_this_run,
        chars,
        state.input_offset - start_offset,
    ))
}

/// Makes the finished files durable, records that the run is done, renames the partial
/// files into place and removes the checkpoint. A kill at any point of this is finished by
/// `--resume`.
fn finish(
    files: &RunFiles,
    state: &mut Checkpoint,
    out: &mut Counted,
    errors_out: &mut ErrorsSink,
) -> Result<(), RunError> {
    out.sync()?;
    errors_out.sync()?;
    state.done = true;
    let Some(ckpt) = &files.checkpoint else {
        return Ok(());
    };
    checkpoint::save(ckpt, state).map_err(io_err(ckpt))?;
    match &files.errors {
        Target::File { path, partial } if state.errors_len > 0 => publish(partial, path)?,
        Target::File { path, .. } if path.exists() => tracing::warn!(
            "{} is from an earlier run and was left as it was (this run had no bad records)",
            path.display()
        ),
        _ => {}
    }
    if let Target::File { path, partial } = &files.output {
        publish(partial, path)?;
    }
    std::fs::remove_file(ckpt).map_err(io_err(ckpt))
}

/// Renames a finished run's partial file into place (cut to the `len` bytes the checkpoint
/// vouches for), or checks that an earlier attempt already did.
fn put_in_place(target: &Target, len: u64) -> Result<(), RunError> {
    let Target::File { path, partial } = target else {
        return Ok(());
    };
    if partial.exists() {
        open_partial(partial, len)?
            .sync_all()
            .map_err(io_err(partial))?;
        return publish(partial, path);
    }
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == len => Ok(()),
        _ => Err(RunError::Resume(format!(
            "the run finished, but neither {} nor its {len}-byte result {} is there: it was moved or changed; delete the checkpoint to start over",
            partial.display(),
            path.display()
        ))),
    }
}

/// The checkpoint to start from and whether it continues an earlier run: a fresh one, or
/// the saved one when resuming (after checking that it still describes this run).
fn start_state(
    opts: &RunOptions,
    files: &RunFiles,
    fresh: Checkpoint,
) -> Result<(Checkpoint, bool), RunError> {
    let Some(ckpt_path) = &files.checkpoint else {
        if opts.resume {
            return Err(RunError::Resume(
                "--resume needs --output FILE (standard output, devices and pipes cannot be resumed)"
                    .into(),
            ));
        }
        return Ok((fresh, false));
    };
    let saved = checkpoint::load(ckpt_path).map_err(io_err(ckpt_path))?;
    if opts.resume && opts.input == Input::Stdin {
        return Err(RunError::Resume(
            "--resume needs --input FILE (standard input cannot be re-read)".into(),
        ));
    }
    let saved = match saved {
        Saved::Old(version) => {
            return Err(RunError::Resume(format!(
                "{} was written by an older zhishi (checkpoint version {version}) and cannot be verified: delete it to start over",
                ckpt_path.display()
            )))
        }
        Saved::None => {
            for target in [&files.output, &files.errors] {
                if let Target::File { partial, .. } = target {
                    if partial.exists() {
                        return Err(RunError::Paths(format!(
                            "{} exists but {} does not, so it is not this run's file: move it away",
                            partial.display(),
                            ckpt_path.display()
                        )));
                    }
                }
            }
            if opts.resume {
                tracing::info!(
                    "no checkpoint at {}; starting from the beginning",
                    ckpt_path.display()
                );
            }
            return Ok((fresh, false));
        }
        Saved::Current(saved) => saved,
    };
    if !opts.resume {
        if saved.done {
            return Ok((fresh, false)); // killed while renaming a finished run: start anew
        }
        return Err(RunError::Resume(format!(
            "{} holds an interrupted run ({} documents written): pass --resume to finish it, or delete it to start over",
            ckpt_path.display(),
            saved.docs
        )));
    }
    let refuse = |what: String| {
        RunError::Resume(format!(
            "cannot resume from {}: {what}; finish it with the same settings, or delete the checkpoint to start over",
            ckpt_path.display()
        ))
    };
    if saved.pipeline != fresh.pipeline {
        return Err(refuse(
            "the pipeline's settings changed since the run started (its stages, their options or the KG; --set included)".into(),
        ));
    }
    if let Some(change) = fresh.input.difference(&saved.input) {
        return Err(refuse(format!(
            "the input {} changed: {change}",
            fresh.input.path.display()
        )));
    }
    if saved.output_format != fresh.output_format {
        return Err(refuse(format!(
            "the output format was {}, now {}",
            saved.output_format.name(),
            fresh.output_format.name()
        )));
    }
    if saved.reader != fresh.reader {
        return Err(refuse(format!(
            "the reader settings changed (then {:?}, now {:?})",
            saved.reader, fresh.reader
        )));
    }
    if saved.shard != fresh.shard {
        return Err(refuse(format!(
            "the shard was {:?}, now {:?}",
            saved.shard, fresh.shard
        )));
    }
    if saved.errors_path != fresh.errors_path {
        return Err(refuse(format!(
            "the errors file was {:?}, now {:?}",
            saved.errors_path, fresh.errors_path
        )));
    }
    Ok((saved, true))
}

/// A bad record with its message and kind.
type Bad = (Record, String, &'static str);

/// Processed documents with their records, and the records the pipeline failed on.
type Processed = (Vec<(Record, Document)>, Vec<Bad>);

struct Batch {
    records: Vec<(Record, Document)>,
    bad: Vec<Bad>,
    at_end: bool,
}

/// Reads up to `batch_size` good records of this shard (and the bad ones in between).
fn read_batch<R: BufRead>(
    reader: &mut RecordReader<R>,
    seen: &mut u64,
    shard: Option<Shard>,
    batch_size: usize,
) -> io::Result<Batch> {
    let mut batch = Batch {
        records: Vec::with_capacity(batch_size.min(4096)),
        bad: Vec::new(),
        at_end: false,
    };
    let mut bytes = 0usize;
    while batch.records.len() < batch_size && bytes < MAX_BATCH_BYTES {
        let Some(mut record) = reader.next_record()? else {
            batch.at_end = true;
            break;
        };
        let index = *seen;
        *seen += 1;
        if shard.is_some_and(|s| index % s.count != s.index) {
            continue;
        }
        match std::mem::replace(&mut record.content, Ok(Document::default())) {
            Ok(doc) => {
                bytes += doc.text.len();
                batch.records.push((record, doc));
            }
            Err(e) => {
                let kind = e.kind();
                batch.bad.push((record, crate::error::report(&e), kind));
            }
        }
    }
    Ok(batch)
}

/// Runs the batch; if the pipeline fails, retries each document alone so one bad document
/// goes to the errors file instead of stopping the run. Fails only if every document fails.
fn process(
    pipeline: &Pipeline,
    batch: Vec<(Record, Document)>,
    explain: bool,
) -> Result<Processed, PipelineError> {
    let (records, mut docs): (Vec<Record>, Vec<Document>) = batch.into_iter().unzip();
    let batch_error = match pipeline.run_with(&mut docs, explain) {
        Ok(()) => return Ok((records.into_iter().zip(docs).collect(), Vec::new())),
        Err(e) => e,
    };
    let total = docs.len();
    let mut ok = Vec::with_capacity(total);
    let mut failed = Vec::new();
    for (record, doc) in records.into_iter().zip(docs) {
        let mut one = [Document {
            id: doc.id,
            question: doc.question,
            ..Document::new(doc.text)
        }];
        match pipeline.run_with(&mut one, explain) {
            Ok(()) => {
                let [doc] = one;
                ok.push((record, doc));
            }
            Err(e) => failed.push((record, crate::error::report(&e), "stage")),
        }
    }
    if total > 1 && ok.is_empty() {
        return Err(batch_error);
    }
    Ok((ok, failed))
}
