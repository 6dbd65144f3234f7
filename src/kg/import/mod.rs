//! Streaming importers: TSV / K-BERT `.spo`, NLPCC 2016 KBQA, OpenKE id files and N-Triples.
//!
//! Files are read in chunks of lines, each chunk parsed in parallel (rayon) and applied to a
//! [`StoreWriter`] as one batch, so memory stays constant whatever the file size. The whole
//! import is one write session: it becomes visible only when every file has been read, and a
//! failed or interrupted import leaves the previous store as it was.
mod delimited;
mod ntriples;
mod openke;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::store::{NamedTriple, Stats, StoreError, StoreOptions, StoreWriter};
use delimited::{parse_nlpcc, parse_tsv};
use ntriples::parse_ntriples;
use openke::OpenKeMaps;

/// Input formats understood by the importer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Decide per file from its name and first lines.
    Auto,
    /// `subject<TAB>predicate<TAB>object`.
    Tsv,
    /// K-BERT's name for TSV triples.
    Spo,
    /// NLPCC 2016 KBQA: `s ||| p ||| o` KB lines, or the question/triple/answer training file.
    Nlpcc,
    /// OpenKE `train2id.txt` (`h t r` ids) with `entity2id.txt` / `relation2id.txt` beside it.
    Openke,
    /// RDF N-Triples.
    #[serde(alias = "nt")]
    Ntriples,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Format::Auto),
            "tsv" => Ok(Format::Tsv),
            "spo" => Ok(Format::Spo),
            "nlpcc" => Ok(Format::Nlpcc),
            "openke" => Ok(Format::Openke),
            "ntriples" | "nt" => Ok(Format::Ntriples),
            other => Err(format!(
                "unknown format {other:?}; expected auto, tsv, spo, nlpcc, openke or ntriples"
            )),
        }
    }
}

/// Options of an import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Input format (or auto-detection).
    pub format: Format,
    /// Fail on the first bad line instead of skipping it.
    pub strict: bool,
    /// Lines per parsed and applied batch.
    pub batch_lines: usize,
    /// How many bad-line examples to keep for the report.
    pub max_examples: usize,
    /// Store options (cache size).
    pub store: StoreOptions,
}

impl Default for ImportOptions {
    fn default() -> Self {
        Self {
            format: Format::Auto,
            strict: false,
            batch_lines: 100_000,
            max_examples: 5,
            store: StoreOptions::default(),
        }
    }
}

/// A line that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineError {
    /// The input file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: u64,
    /// What was wrong and what was expected.
    pub message: String,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Errors that abort an import (the store is left unchanged).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The store could not be opened or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An input file does not exist.
    #[error("input file {} does not exist", .0.display())]
    MissingFile(PathBuf),
    /// An input file could not be read.
    #[error("cannot read {}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// `--strict` and a bad line.
    #[error("{0} (strict mode: nothing was imported)")]
    BadLine(LineError),
    /// The format of a file could not be determined or its companion files are wrong.
    #[error("{}: {reason}", .path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No input line held a valid triple.
    #[error("nothing imported: no valid triple in the input ({bad_lines} bad lines{})", first_example(.examples))]
    NothingImported {
        /// Number of bad lines.
        bad_lines: u64,
        /// The first bad lines.
        examples: Vec<LineError>,
    },
}

fn first_example(examples: &[LineError]) -> String {
    examples
        .first()
        .map(|e| format!("; first: {e}"))
        .unwrap_or_default()
}

/// Per-file summary.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// The format used.
    pub format: Format,
    /// Lines read.
    pub lines: u64,
    /// Valid triples parsed (duplicates included).
    pub triples: u64,
    /// Lines skipped as bad.
    pub bad_lines: u64,
}

/// What an import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// Per-file summaries.
    pub files: Vec<FileReport>,
    /// Valid triples parsed over all files.
    pub parsed_triples: u64,
    /// Triples that were new to the store.
    pub new_triples: u64,
    /// Parsed triples already present (in the store or earlier in the input).
    pub duplicate_triples: u64,
    /// Bad lines skipped.
    pub bad_lines: u64,
    /// The first bad lines.
    pub examples: Vec<LineError>,
    /// Store counters after the import.
    pub stats: Stats,
    /// Wall time of the import.
    pub seconds: f64,
}

/// Progress of an import, reported after every batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Bytes read so far over all files.
    pub bytes_done: u64,
    /// Total bytes of all files.
    pub bytes_total: u64,
    /// Valid triples parsed so far.
    pub parsed_triples: u64,
}

/// Imports `files` into the store at `db` (created if missing) as one atomic write.
pub fn import_files(
    db: &Path,
    files: &[PathBuf],
    options: &ImportOptions,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let mut writer = StoreWriter::begin_with(db, &options.store)?;
    let triples_before = writer.stats().triples;
    let parsed = parse_files(
        files,
        options,
        &mut |batch| writer.apply(batch).map_err(ImportError::from),
        on_progress,
    );
    let mut report = match parsed {
        Ok(report) => report,
        Err(e) => {
            // Nothing of the failed import stays behind (its work copy can be large).
            writer.abort();
            return Err(e);
        }
    };
    report.stats = writer.commit()?;
    report.new_triples = report.stats.triples - triples_before;
    report.duplicate_triples = report.parsed_triples - report.new_triples;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Parses `files` into memory (for small KGs used without a store, e.g. a pipeline's
/// `[kg] triples`), with the same formats, validation and bad-line reporting as
/// [`import_files`]. Duplicate triples are kept; the report's `stats` stay empty.
pub fn read_files(
    files: &[PathBuf],
    options: &ImportOptions,
) -> Result<(Vec<NamedTriple>, ImportReport), ImportError> {
    let mut triples = Vec::new();
    let report = read_files_with(files, options, &mut |batch| {
        triples.extend_from_slice(batch)
    })?;
    Ok((triples, report))
}

/// Parses `files` like [`read_files`] but hands each parsed chunk's valid triples to `sink`
/// instead of collecting them, so a caller can keep what it needs (e.g. distinct triples).
pub fn read_files_with(
    files: &[PathBuf],
    options: &ImportOptions,
    sink: &mut dyn FnMut(&[NamedTriple]),
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let mut report = parse_files(
        files,
        options,
        &mut |batch| {
            sink(batch);
            Ok(())
        },
        &mut |_| {},
    )?;
    report.new_triples = report.parsed_triples;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Parses every file, handing each chunk's valid triples to `sink`; fails if none is valid.
fn parse_files(
    files: &[PathBuf],
    options: &ImportOptions,
    sink: &mut dyn FnMut(&[NamedTriple]) -> Result<(), ImportError>,
    on_progress: &mut dyn FnMut(Progress),
) -> Result<ImportReport, ImportError> {
    let mut plans = Vec::with_capacity(files.len());
    for path in files {
        plans.push(plan_file(path, options.format)?);
    }
    let bytes_total = plans.iter().map(|p| p.bytes).sum();
    let mut report = ImportReport {
        files: Vec::new(),
        parsed_triples: 0,
        new_triples: 0,
        duplicate_triples: 0,
        bad_lines: 0,
        examples: Vec::new(),
        stats: Stats::default(),
        seconds: 0.0,
    };
    let mut bytes_done = 0u64;
    for plan in &plans {
        let file_report = import_one(sink, plan, options, &mut report, &mut |bytes, parsed| {
            on_progress(Progress {
                bytes_done: bytes_done + bytes,
                bytes_total,
                parsed_triples: parsed,
            })
        })?;
        bytes_done += plan.bytes;
        report.files.push(file_report);
    }
    if report.parsed_triples == 0 {
        return Err(ImportError::NothingImported {
            bad_lines: report.bad_lines,
            examples: report.examples,
        });
    }
    Ok(report)
}

/// A file with its resolved format and, for OpenKE, its id maps' location.
struct FilePlan {
    path: PathBuf,
    format: Format,
    bytes: u64,
}

fn plan_file(path: &Path, format: Format) -> Result<FilePlan, ImportError> {
    if !path.exists() {
        return Err(ImportError::MissingFile(path.to_path_buf()));
    }
    let mut path = path.to_path_buf();
    if path.is_dir() {
        let train = path.join("train2id.txt");
        if matches!(format, Format::Auto | Format::Openke) && train.is_file() {
            path = train;
        } else {
            return Err(ImportError::Format {
                path,
                reason: "is a directory; give a file (or an OpenKE directory with train2id.txt)"
                    .into(),
            });
        }
    }
    let format = match format {
        Format::Auto => detect_format(&path)?,
        Format::Spo => Format::Tsv,
        other => other,
    };
    let bytes = std::fs::metadata(&path)
        .map_err(|source| ImportError::Io {
            path: path.clone(),
            source,
        })?
        .len();
    Ok(FilePlan {
        path,
        format,
        bytes,
    })
}

/// Guesses a file's format from its name, then from its first non-empty line.
pub fn detect_format(path: &Path) -> Result<Format, ImportError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if name.ends_with(".nt") {
        return Ok(Format::Ntriples);
    }
    if name.ends_with(".spo") || name.ends_with(".tsv") {
        return Ok(Format::Tsv);
    }
    if name.ends_with("2id.txt") {
        return Ok(Format::Openke);
    }
    let file = File::open(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut head = Vec::new();
    file.take(64 * 1024)
        .read_to_end(&mut head)
        .map_err(|source| ImportError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let head = String::from_utf8_lossy(crate::textfile::strip_bom_bytes(&head));
    let first = head.lines().map(str::trim).find(|l| !l.is_empty());
    let Some(first) = first else {
        return Err(ImportError::Format {
            path: path.to_path_buf(),
            reason: "is empty; cannot detect its format (give --format)".into(),
        });
    };
    if first.starts_with("<question") || first.contains(" ||| ") {
        Ok(Format::Nlpcc)
    } else if (first.starts_with('<') || first.starts_with("_:")) && first.ends_with('.') {
        Ok(Format::Ntriples)
    } else if first.split('\t').count() == 3 {
        Ok(Format::Tsv)
    } else {
        Err(ImportError::Format {
            path: path.to_path_buf(),
            reason: format!(
                "cannot detect the format from its first line {first:?}; give --format tsv|spo|nlpcc|openke|ntriples"
            ),
        })
    }
}

/// Parses one line; `Ok(None)` for lines that carry no triple (blank, comments, NLPCC
/// question/answer lines, OpenKE count line).
type LineParser<'a> = dyn Fn(&str, u64) -> Result<Option<NamedTriple>, String> + Sync + 'a;

fn import_one(
    sink: &mut dyn FnMut(&[NamedTriple]) -> Result<(), ImportError>,
    plan: &FilePlan,
    options: &ImportOptions,
    report: &mut ImportReport,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<FileReport, ImportError> {
    let openke_maps;
    let parser: Box<LineParser> = match plan.format {
        Format::Tsv | Format::Spo => Box::new(|line, _| parse_tsv(line)),
        Format::Nlpcc => Box::new(|line, _| parse_nlpcc(line)),
        Format::Ntriples => Box::new(|line, _| parse_ntriples(line)),
        Format::Openke => {
            openke_maps = OpenKeMaps::load(&plan.path)?;
            let maps = &openke_maps;
            Box::new(move |line, number| maps.parse(line, number))
        }
        Format::Auto => unreachable!("resolved by plan_file"),
    };
    let io_err = |source| ImportError::Io {
        path: plan.path.clone(),
        source,
    };
    let file = File::open(&plan.path).map_err(io_err)?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut file_report = FileReport {
        path: plan.path.clone(),
        format: plan.format,
        lines: 0,
        triples: 0,
        bad_lines: 0,
    };
    let mut bytes_read = 0u64;
    let mut line_number = 0u64;
    loop {
        let mut chunk: Vec<(u64, Vec<u8>)> = Vec::with_capacity(options.batch_lines);
        while chunk.len() < options.batch_lines {
            let mut buf = Vec::new();
            let n = reader.read_until(b'\n', &mut buf).map_err(io_err)?;
            if n == 0 {
                break;
            }
            bytes_read += n as u64;
            line_number += 1;
            chunk.push((line_number, buf));
        }
        if chunk.is_empty() {
            break;
        }
        file_report.lines += chunk.len() as u64;
        let parsed: Vec<(u64, Result<Option<NamedTriple>, String>)> = chunk
            .par_iter()
            .map(|(number, bytes)| {
                let bytes = if *number == 1 {
                    crate::textfile::strip_bom_bytes(bytes)
                } else {
                    bytes
                };
                (*number, decode_line(bytes).and_then(|l| parser(l, *number)))
            })
            .collect();
        let mut batch = Vec::with_capacity(parsed.len());
        for (number, result) in parsed {
            match result {
                Ok(Some(triple)) => batch.push(triple),
                Ok(None) => {}
                Err(message) => {
                    let error = LineError {
                        file: plan.path.clone(),
                        line: number,
                        message,
                    };
                    if options.strict {
                        return Err(ImportError::BadLine(error));
                    }
                    file_report.bad_lines += 1;
                    report.bad_lines += 1;
                    if report.examples.len() < options.max_examples {
                        report.examples.push(error);
                    }
                }
            }
        }
        file_report.triples += batch.len() as u64;
        report.parsed_triples += batch.len() as u64;
        sink(&batch)?;
        on_progress(bytes_read, report.parsed_triples);
    }
    Ok(file_report)
}

fn decode_line(bytes: &[u8]) -> Result<&str, String> {
    let line = std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "invalid UTF-8 at byte {} of the line; expected UTF-8 text",
            e.valid_up_to()
        )
    })?;
    Ok(line.trim_end_matches(['\n', '\r']))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kg::store::TermKind;

    pub(super) fn spo(t: Option<NamedTriple>) -> (String, String, String, TermKind) {
        let t = t.unwrap();
        (t.subject, t.predicate, t.object, t.object_kind)
    }

    #[test]
    fn invalid_utf8_is_a_line_error() {
        assert!(decode_line(b"a\t\xff\tc\n").unwrap_err().contains("UTF-8"));
        assert_eq!(decode_line(b"a\tb\tc\r\n").unwrap(), "a\tb\tc");
    }
}
