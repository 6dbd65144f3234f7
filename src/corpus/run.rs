//! `zhishi run`'s engine: stream records from the input, process them in batches through a
//! [`Pipeline`], write one JSON document per line in input order, send bad records to an
//! errors file, and checkpoint after every batch so `--resume` finishes a killed run with each
//! record in the output exactly once.
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Serialize;

use crate::doc::Document;
use crate::pipeline::{Pipeline, PipelineError};

use super::checkpoint::{self, Checkpoint, CHECKPOINT_VERSION};
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
    /// The errors file; default `OUTPUT` with extension `.errors.jsonl` (or `errors.jsonl`
    /// when writing to standard output).
    pub errors: Option<PathBuf>,
    /// How input lines become documents.
    pub reader: ReaderOptions,
    /// Documents per batch.
    pub batch_size: usize,
    /// Continue an interrupted run from its checkpoint.
    pub resume: bool,
    /// Process only this shard of the records.
    pub shard: Option<Shard>,
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
    /// The errors file.
    pub errors_path: PathBuf,
}

/// What can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
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

/// The default errors file for an output.
pub fn default_errors_path(output: &Output) -> PathBuf {
    match output {
        Output::Stdout => PathBuf::from("errors.jsonl"),
        Output::File(path) => path.with_extension("errors.jsonl"),
    }
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

/// Counts a writer's bytes so the checkpoint can record lengths without `stat` calls.
struct Counted<W: Write> {
    inner: BufWriter<W>,
    len: u64,
}

impl<W: Write> Counted<W> {
    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.inner.write_all(line)?;
        self.inner.write_all(b"\n")?;
        self.len += line.len() as u64 + 1;
        Ok(())
    }
}

/// The errors file, created on the first bad record (a clean run leaves none behind).
struct ErrorsFile {
    path: PathBuf,
    out: Option<Counted<File>>,
    len: u64,
}

impl ErrorsFile {
    /// Keeps the first `len` bytes of an existing file (a resumed run's errors); a fresh run
    /// (`len` 0) removes a stale file from an earlier run.
    fn open(path: &Path, len: u64) -> Result<Self, RunError> {
        let out = if len > 0 {
            Some(Counted {
                inner: BufWriter::new(open_truncated(path, len)?),
                len,
            })
        } else {
            if path.is_file() {
                std::fs::remove_file(path).map_err(io_err(path))?;
            }
            None
        };
        Ok(Self {
            path: path.to_path_buf(),
            out,
            len,
        })
    }

    fn write_line(&mut self, line: &[u8]) -> Result<(), RunError> {
        if self.out.is_none() {
            self.out = Some(Counted {
                inner: BufWriter::new(open_truncated(&self.path, 0)?),
                len: 0,
            });
        }
        if let Some(out) = &mut self.out {
            out.write_line(line).map_err(io_err(&self.path))?;
            self.len = out.len;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), RunError> {
        match &mut self.out {
            Some(out) => out.inner.flush().map_err(io_err(&self.path)),
            None => Ok(()),
        }
    }

    fn len(&self) -> u64 {
        self.len
    }
}

/// Runs `pipeline` over the input; `on_progress` sees a snapshot after every batch.
pub fn run(
    pipeline: &Pipeline,
    opts: &RunOptions,
    on_progress: &mut dyn FnMut(&Progress),
) -> Result<RunReport, RunError> {
    let started = Instant::now();
    let errors_path = opts
        .errors
        .clone()
        .unwrap_or_else(|| default_errors_path(&opts.output));
    let ckpt_path = match &opts.output {
        Output::File(path) => Some(checkpoint::checkpoint_path(path)),
        Output::Stdout => None,
    };
    let (input_path, input_len) = match &opts.input {
        Input::File(path) => (
            path.clone(),
            Some(std::fs::metadata(path).map_err(io_err(path))?.len()),
        ),
        Input::Stdin => (PathBuf::from("-"), None),
    };
    let mut state = start_state(opts, &input_path, input_len, ckpt_path.as_deref())?;
    let resumed = state.input_offset > 0 || state.docs > 0 || state.errors > 0;
    if state.done {
        return Ok(RunReport {
            docs: state.docs,
            docs_this_run: 0,
            errors: state.errors,
            chars: 0,
            bytes: 0,
            seconds: started.elapsed().as_secs_f64(),
            resumed,
            errors_path,
        });
    }

    let mut errors_out = ErrorsFile::open(&errors_path, state.errors_len)?;
    let mut out: Counted<Box<dyn Write>> = match &opts.output {
        Output::Stdout => Counted {
            inner: BufWriter::with_capacity(1 << 20, Box::new(io::stdout())),
            len: 0,
        },
        Output::File(path) => Counted {
            inner: BufWriter::with_capacity(
                1 << 20,
                Box::new(open_truncated(path, state.output_len)?),
            ),
            len: state.output_len,
        },
    };
    let reader: Box<dyn BufRead> = match &opts.input {
        Input::Stdin => Box::new(BufReader::with_capacity(1 << 20, io::stdin())),
        Input::File(path) => {
            let mut file = File::open(path).map_err(io_err(path))?;
            file.seek(SeekFrom::Start(state.input_offset))
                .map_err(io_err(path))?;
            Box::new(BufReader::with_capacity(1 << 20, file))
        }
    };
    let mut records =
        RecordReader::new(reader, opts.reader.clone(), state.input_offset, state.lines);
    let start_offset = state.input_offset;
    let batch_size = opts.batch_size.max(1);
    let mut chars = 0u64;
    let mut docs_this_run = 0u64;

    loop {
        let batch = read_batch(&mut records, &mut state.records, opts.shard, batch_size)
            .map_err(io_err(&input_path))?;
        if batch.records.is_empty() && batch.bad.is_empty() && batch.at_end {
            break;
        }
        let (docs, failed) = process(pipeline, batch.records)?;
        let lines: Vec<Vec<u8>> = pipeline.install(|| {
            docs.par_iter()
                .map(|(_, doc)| serde_json::to_vec(doc).unwrap_or_default())
                .collect()
        });
        for (line, (_, doc)) in lines.iter().zip(&docs) {
            out.write_line(line)
                .map_err(io_err(output_name(&opts.output)))?;
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
        out.inner
            .flush()
            .map_err(io_err(output_name(&opts.output)))?;
        errors_out.flush()?;
        docs_this_run += docs.len() as u64;
        state.docs += docs.len() as u64;
        state.errors += (batch.bad.len() + failed.len()) as u64;
        state.input_offset = records.offset();
        state.lines = records.lines();
        state.output_len = out.len;
        state.errors_len = errors_out.len();
        state.done = batch.at_end;
        if let Some(path) = &ckpt_path {
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
    if let (Some(path), false) = (&ckpt_path, state.done) {
        state.done = true;
        checkpoint::save(path, &state).map_err(io_err(path))?;
    }
    Ok(RunReport {
        docs: state.docs,
        docs_this_run,
        errors: state.errors,
        chars,
        bytes: state.input_offset - start_offset,
        seconds: started.elapsed().as_secs_f64(),
        resumed,
        errors_path,
    })
}

fn output_name(output: &Output) -> &Path {
    match output {
        Output::Stdout => Path::new("-"),
        Output::File(path) => path,
    }
}

/// The checkpoint to start from: a fresh one, or the saved one when resuming.
fn start_state(
    opts: &RunOptions,
    input_path: &Path,
    input_len: Option<u64>,
    ckpt_path: Option<&Path>,
) -> Result<Checkpoint, RunError> {
    let fresh = Checkpoint {
        version: CHECKPOINT_VERSION,
        input: input_path.to_path_buf(),
        input_len: input_len.unwrap_or(0),
        shard: opts.shard.map(|s| s.to_string()),
        input_offset: 0,
        lines: 0,
        records: 0,
        output_len: 0,
        errors_len: 0,
        docs: 0,
        errors: 0,
        done: false,
    };
    let Some(ckpt_path) = ckpt_path else {
        if opts.resume {
            return Err(RunError::Resume(
                "--resume needs --output FILE (standard output cannot be resumed)".into(),
            ));
        }
        return Ok(fresh);
    };
    let saved = checkpoint::load(ckpt_path).map_err(io_err(ckpt_path))?;
    if !opts.resume {
        if let Some(saved) = saved.filter(|c| !c.done) {
            return Err(RunError::Resume(format!(
                "{} holds an interrupted run ({} documents written): pass --resume to finish it, or delete it to start over",
                ckpt_path.display(),
                saved.docs
            )));
        }
        return Ok(fresh);
    }
    if opts.input == Input::Stdin {
        return Err(RunError::Resume(
            "--resume needs --input FILE (standard input cannot be re-read)".into(),
        ));
    }
    let Some(saved) = saved else {
        tracing::info!(
            "no checkpoint at {}; starting from the beginning",
            ckpt_path.display()
        );
        return Ok(fresh);
    };
    let mismatch = |what: &str, then: String, now: String| {
        RunError::Resume(format!(
            "cannot resume from {}: the {what} was {then}, now {now}",
            ckpt_path.display()
        ))
    };
    if saved.version != CHECKPOINT_VERSION {
        return Err(mismatch(
            "checkpoint version",
            saved.version.to_string(),
            CHECKPOINT_VERSION.to_string(),
        ));
    }
    if saved.input != fresh.input {
        return Err(mismatch(
            "input",
            saved.input.display().to_string(),
            fresh.input.display().to_string(),
        ));
    }
    if saved.input_len != fresh.input_len {
        return Err(mismatch(
            "input size",
            saved.input_len.to_string(),
            fresh.input_len.to_string(),
        ));
    }
    if saved.shard != fresh.shard {
        return Err(mismatch(
            "shard",
            format!("{:?}", saved.shard),
            format!("{:?}", fresh.shard),
        ));
    }
    Ok(saved)
}

/// Opens `path` for writing, cut to `len` bytes (dropping a torn tail), positioned at its end.
fn open_truncated(path: &Path, len: u64) -> Result<File, RunError> {
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(len == 0)
        .open(path)
        .map_err(io_err(path))?;
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Ok(file); // a device or pipe such as /dev/null: nothing to cut
    }
    let actual = meta.len();
    if actual < len {
        return Err(RunError::Resume(format!(
            "{} is {actual} bytes but the checkpoint recorded {len}: it was changed after the run stopped",
            path.display()
        )));
    }
    file.set_len(len).map_err(io_err(path))?;
    file.seek(SeekFrom::Start(len)).map_err(io_err(path))?;
    Ok(file)
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
        records: Vec::with_capacity(batch_size),
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
                batch.bad.push((record, e.to_string(), kind));
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
) -> Result<Processed, PipelineError> {
    let (records, mut docs): (Vec<Record>, Vec<Document>) = batch.into_iter().unzip();
    let batch_error = match pipeline.run(&mut docs) {
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
        match pipeline.run(&mut one) {
            Ok(()) => {
                let [doc] = one;
                ok.push((record, doc));
            }
            Err(e) => failed.push((record, e.to_string(), "stage")),
        }
    }
    if total > 1 && ok.is_empty() {
        return Err(batch_error);
    }
    Ok((ok, failed))
}
