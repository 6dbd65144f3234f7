//! Extracted relations back into the KG (`zhishi kg import --from-run`): every relation of a
//! `zhishi run` output (JSON lines of [`crate::doc::Document`]) scored at least `min_score`
//! becomes a triple `(head, label, tail)`, each argument named by its linked entity where it
//! has one, else by its text, with a [`Provenance`] record (document, score, stage, model,
//! time) in the store. Records are keyed by what identifies them (document, stage, model,
//! spans), so importing one run twice adds nothing; a run that adds nothing leaves the store
//! untouched (no new generation).
use std::collections::HashSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::doc::{Argument, Document};
use crate::kg::store::{
    NamedTriple, Pattern, Provenance, Stats, Store, StoreError, StoreOptions, StoreWriter, TermKind,
};

/// How relations are imported.
#[derive(Debug, Clone, Default)]
pub struct FromRunOptions {
    /// Relations scored below this are skipped.
    pub min_score: f32,
    /// Count what would be added without writing.
    pub dry_run: bool,
    /// The model of each stage instance, by name (e.g. `relation` -> its model directory).
    pub models: std::collections::BTreeMap<String, String>,
    /// The model of stages not in `models`, if known.
    pub model: Option<String>,
    /// The import time recorded in the provenance (seconds since the Unix epoch).
    pub time: u64,
    /// sled cache.
    pub store: StoreOptions,
}

/// What an import from a run did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FromRunReport {
    /// Documents read.
    pub documents: u64,
    /// Relations read.
    pub relations: u64,
    /// Relations skipped for a score below `min_score`.
    pub below_min_score: u64,
    /// Relations imported (scored at least `min_score`).
    pub kept: u64,
    /// Distinct triples among them.
    pub triples: u64,
    /// Of those, triples the store did not hold.
    pub new_triples: u64,
    /// Provenance records added (one per kept relation not recorded before).
    pub new_provenance: u64,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// The store's counts afterwards (unchanged with `dry_run`).
    pub stats: Stats,
}

/// Why a run could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum FromRunError {
    /// The run output could not be read.
    #[error("{}", path.display())]
    Io {
        /// The run output.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A line is not a document.
    #[error("{}:{line}: {message}", path.display())]
    Line {
        /// The run output.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong and what was expected.
        message: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One kept relation: its triple by name and its provenance.
struct Found {
    triple: (String, String, String),
    provenance: Provenance,
}

fn name(arg: &Argument) -> String {
    arg.entity
        .as_ref()
        .map_or_else(|| arg.text.trim().to_string(), |e| e.name.clone())
}

/// Reads the kept relations of the run output `run`.
fn read_run(
    run: &Path,
    opts: &FromRunOptions,
    report: &mut FromRunReport,
) -> Result<Vec<Found>, FromRunError> {
    let io = |source| FromRunError::Io {
        path: run.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(run).map_err(io)?;
    let mut found = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line_no = i + 1;
        let bad = |message: String| FromRunError::Line {
            path: run.to_path_buf(),
            line: line_no,
            message,
        };
        let line = line.map_err(|e| bad(format!("{e}; expected UTF-8 JSON lines")))?;
        let line = crate::textfile::strip_bom(&line);
        if line.trim().is_empty() {
            continue;
        }
        let doc: Document = serde_json::from_str(line).map_err(|e| {
            bad(format!(
                "{e}; expected a document of `zhishi run` output (JSON with `text` and `relations`)"
            ))
        })?;
        report.documents += 1;
        let document = doc.id.clone().unwrap_or_else(|| format!("line {line_no}"));
        for relation in &doc.relations {
            report.relations += 1;
            if relation.score.is_nan() || relation.score < opts.min_score {
                report.below_min_score += 1;
                continue;
            }
            let (head, tail) = (name(&relation.head), name(&relation.tail));
            if head.is_empty() || tail.is_empty() || relation.label.trim().is_empty() {
                return Err(bad(
                    "a relation with an empty argument or label; expected names".into(),
                ));
            }
            let stage = relation
                .source
                .clone()
                .unwrap_or_else(|| "relation".to_string());
            let model = opts.models.get(&stage).cloned().or(opts.model.clone());
            report.kept += 1;
            found.push(Found {
                triple: (head, relation.label.clone(), tail),
                provenance: Provenance {
                    document: document.clone(),
                    score: relation.score,
                    stage,
                    model,
                    time: opts.time,
                    head_span: [relation.head.start, relation.head.end],
                    tail_span: [relation.tail.start, relation.tail.end],
                },
            });
        }
    }
    Ok(found)
}

/// Imports the relations of the run output `run` into the store `db` (created if missing,
/// unless `dry_run`).
pub fn import_run(
    db: &Path,
    run: &Path,
    opts: &FromRunOptions,
) -> Result<FromRunReport, FromRunError> {
    let mut report = FromRunReport {
        dry_run: opts.dry_run,
        ..FromRunReport::default()
    };
    let found = read_run(run, opts, &mut report)?;
    let distinct: Vec<&(String, String, String)> = {
        let mut seen = HashSet::new();
        found
            .iter()
            .map(|f| &f.triple)
            .filter(|t| seen.insert(*t))
            .collect()
    };
    report.triples = distinct.len() as u64;
    if opts.dry_run {
        return dry_run(db, &found, &distinct, opts, report);
    }
    let mut writer = StoreWriter::begin_with(db, &opts.store)?;
    for (s, p, o) in &distinct {
        let known = match writer.triple_ids(s, p, o)? {
            Some(ids) => writer.holds(&ids)?,
            None => false,
        };
        report.new_triples += u64::from(!known);
    }
    let batch: Vec<NamedTriple> = distinct
        .iter()
        .map(|(s, p, o)| NamedTriple {
            subject: s.clone(),
            predicate: p.clone(),
            object: o.clone(),
            object_kind: TermKind::Entity,
        })
        .collect();
    writer.apply(&batch)?;
    for f in &found {
        let (s, p, o) = &f.triple;
        let ids = writer
            .triple_ids(s, p, o)?
            .ok_or_else(|| StoreError::Corrupt {
                path: db.to_path_buf(),
                detail: format!(
                    "the names of ({s}, {p}, {o}) are missing right after their import"
                ),
            })?;
        report.new_provenance += u64::from(writer.add_provenance(&ids, &f.provenance)?);
    }
    if report.new_triples == 0 && report.new_provenance == 0 {
        report.stats = writer.stats();
        writer.abort();
        return Ok(report);
    }
    report.stats = writer.commit()?;
    Ok(report)
}

/// [`import_run`] without writing: what a real import would add.
fn dry_run(
    db: &Path,
    found: &[Found],
    distinct: &[&(String, String, String)],
    opts: &FromRunOptions,
    mut report: FromRunReport,
) -> Result<FromRunReport, FromRunError> {
    let store = match Store::open_with(db, &opts.store) {
        Ok(store) => Some(store),
        Err(StoreError::Missing(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let ids = |(s, p, o): &(String, String, String)| -> Result<_, StoreError> {
        let Some(store) = &store else { return Ok(None) };
        let (Some(s), Some(p), Some(o)) =
            (store.term_id(s)?, store.predicate_id(p)?, store.term_id(o)?)
        else {
            return Ok(None);
        };
        let pattern = Pattern {
            subject: Some(s),
            predicate: Some(p),
            object: Some(o),
        };
        let held = store.triples(pattern).next().transpose()?;
        Ok(Some((store, held)))
    };
    for t in distinct {
        let held = ids(t)?.and_then(|(_, held)| held);
        report.new_triples += u64::from(held.is_none());
    }
    let mut seen = HashSet::new();
    for f in found {
        let held = ids(&f.triple)?.and_then(|(store, held)| held.map(|t| (store, t)));
        let known = match held {
            Some((store, t)) => store.has_provenance(&t, &f.provenance)?,
            None => false,
        };
        let key = serde_json::json!([
            f.triple,
            f.provenance.document,
            f.provenance.stage,
            f.provenance.head_span,
            f.provenance.tail_span
        ])
        .to_string();
        report.new_provenance += u64::from(!known && seen.insert(key));
    }
    report.stats = store.map(|s| s.stats()).unwrap_or_default();
    Ok(report)
}
