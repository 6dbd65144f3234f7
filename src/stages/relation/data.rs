//! Readers for relation-extraction data. Every example is a sentence with a head and a tail
//! span (character offsets) and the relation label between them.
//!
//! - **SanWen** (`head<TAB>tail<TAB>relation<TAB>sentence`, thunlp Chinese_NRE): the names are
//!   looked up in the sentence. A name that does not occur is an error naming the file and line
//!   (none in SanWen). A name that occurs several times (7% of SanWen's pairs) is resolved to
//!   the pair of occurrences that do not overlap and lie closest together, the earliest on a
//!   tie (the sentence states the relation between the two mentions that are near each other);
//!   such examples are counted in [`Corpus::ambiguous`], never dropped.
//! - **DuIE** (JSON lines `{"text", "spo_list": [{"subject", "predicate", "object": {"@value"}}]}`):
//!   each spo is a positive example (subject = head, object `@value` = tail; the extra slots of
//!   complex objects such as `inWork` are not used). Negatives are ordered pairs of the
//!   sentence's entity mentions (all subjects and objects) that no spo relates, closest pairs
//!   first, at most `max_negatives` per sentence, labelled with the no-relation label.
//! - **doccano** and **Label Studio** exports ([`crate::stages::annotation`]): each relation
//!   between two annotated spans is a positive example; negatives are ordered pairs of the
//!   text's (non-overlapping) spans that no relation links, closest first, at most
//!   `max_negatives` per text, as in DuIE.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::RelationError;
use crate::doc::Span;
use crate::stages::annotation::{Annotated, ReadOptions, Tool};

/// One (head, tail) pair in a sentence and its relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationExample {
    /// The sentence.
    pub text: String,
    /// Head (subject) span, in characters.
    pub head: Span,
    /// Tail (object) span, in characters.
    pub tail: Span,
    /// Relation label (the no-relation label for negatives).
    pub label: String,
    /// 1-based line of the file, for error messages.
    pub line: usize,
}

/// The on-disk format of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    /// `head<TAB>tail<TAB>relation<TAB>sentence` (SanWen).
    Sanwen,
    /// JSON lines with an `spo_list` (DuIE).
    Duie,
    /// doccano's JSONL export (`entities` and `relations`).
    Doccano,
    /// Label Studio's JSON export (span and relation results).
    #[serde(rename = "label_studio")]
    LabelStudio,
}

/// The examples of a file and how many needed a choice between repeated names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Corpus {
    /// The examples in file order.
    pub examples: Vec<RelationExample>,
    /// Examples whose head or tail name occurs more than once in the sentence.
    pub ambiguous: usize,
}

/// Reads a data file; `no_relation` labels DuIE's negatives, of which at most `max_negatives`
/// are made per sentence.
pub fn read(
    path: &Path,
    format: DataFormat,
    no_relation: &str,
    max_negatives: usize,
) -> Result<Corpus, RelationError> {
    read_with(
        path,
        format,
        no_relation,
        max_negatives,
        ReadOptions::default(),
    )
}

/// [`read`], annotation exports read with `options` (`[data] offsets`, `use_predictions`).
pub fn read_with(
    path: &Path,
    format: DataFormat,
    no_relation: &str,
    max_negatives: usize,
    options: ReadOptions,
) -> Result<Corpus, RelationError> {
    let corpus = match format {
        DataFormat::Doccano | DataFormat::LabelStudio => {
            let tool = if format == DataFormat::Doccano {
                Tool::Doccano
            } else {
                Tool::LabelStudio
            };
            let records = crate::stages::annotation::read(path, tool, options)?;
            from_annotations(&records, no_relation, max_negatives)
        }
        DataFormat::Sanwen => parse_sanwen(&crate::textfile::read(path)?, path)?,
        DataFormat::Duie => parse_duie(
            &crate::textfile::read(path)?,
            path,
            no_relation,
            max_negatives,
        )?,
    };
    if corpus.examples.is_empty() {
        return Err(data_error(path, 1, "no examples".into()));
    }
    Ok(corpus)
}

fn data_error(path: &Path, line: usize, message: String) -> RelationError {
    RelationError::Data {
        path: PathBuf::from(path),
        line,
        message,
    }
}

/// Character spans of every (non-overlapping) occurrence of `name` in `text`.
pub fn occurrences(text: &str, name: &str) -> Vec<Span> {
    if name.is_empty() {
        return Vec::new();
    }
    let n = name.chars().count();
    text.match_indices(name)
        .map(|(byte, _)| {
            let start = text[..byte].chars().count();
            Span::new(start, start + n)
        })
        .collect()
}

/// The (head, tail) occurrences a sentence most likely relates: non-overlapping first, then
/// the smallest gap between them, then the earliest. `None` if either list is empty.
pub fn closest_pair(heads: &[Span], tails: &[Span]) -> Option<(Span, Span)> {
    heads
        .iter()
        .flat_map(|&h| tails.iter().map(move |&t| (h, t)))
        .min_by_key(|&(h, t)| {
            let overlap = h.start < t.end && t.start < h.end;
            let gap = if overlap {
                0
            } else {
                t.start.saturating_sub(h.end) + h.start.saturating_sub(t.end)
            };
            (overlap, gap, h.start, t.start)
        })
}

/// Locates `head` and `tail` in `text` (see the module doc); the flag says whether either
/// occurs more than once.
fn locate(
    text: &str,
    head: &str,
    tail: &str,
    path: &Path,
    line: usize,
) -> Result<(Span, Span, bool), RelationError> {
    let heads = occurrences(text, head);
    let tails = occurrences(text, tail);
    for (role, name, found) in [("head", head, &heads), ("tail", tail, &tails)] {
        if found.is_empty() {
            return Err(data_error(
                path,
                line,
                format!("{role} {name:?} does not occur in the sentence {text:?}"),
            ));
        }
    }
    let (h, t) = closest_pair(&heads, &tails).ok_or_else(|| {
        data_error(
            path,
            line,
            "head or tail does not occur in the sentence".into(),
        )
    })?;
    Ok((h, t, heads.len() > 1 || tails.len() > 1))
}

/// Parses SanWen's `head<TAB>tail<TAB>relation<TAB>sentence` lines (blank lines are skipped).
pub fn parse_sanwen(text: &str, path: &Path) -> Result<Corpus, RelationError> {
    let mut corpus = Corpus::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [head, tail, label, sentence] = fields[..] else {
            return Err(data_error(
                path,
                n,
                format!(
                    "expected 4 tab-separated fields `head<TAB>tail<TAB>relation<TAB>sentence`, found {}",
                    fields.len()
                ),
            ));
        };
        for (what, value) in [("head", head), ("tail", tail), ("relation", label)] {
            if value.trim().is_empty() {
                return Err(data_error(path, n, format!("empty {what}")));
            }
        }
        let (h, t, ambiguous) = locate(sentence, head, tail, path, n)?;
        corpus.ambiguous += usize::from(ambiguous);
        corpus.examples.push(RelationExample {
            text: sentence.to_string(),
            head: h,
            tail: t,
            label: label.to_string(),
            line: n,
        });
    }
    Ok(corpus)
}

/// The examples of annotated texts: every relation, then per text at most `max_negatives`
/// unrelated ordered pairs of non-overlapping spans, closest first.
pub fn from_annotations(records: &[Annotated], no_relation: &str, max_negatives: usize) -> Corpus {
    let mut corpus = Corpus::default();
    for r in records {
        let line = r.at.line();
        let span = |i: usize| Span::new(r.spans[i].start, r.spans[i].end);
        let mut related: Vec<(Span, Span)> = Vec::new();
        for rel in &r.relations {
            let (head, tail) = (span(rel.from), span(rel.to));
            let example = RelationExample {
                text: r.text.clone(),
                head,
                tail,
                label: rel.label.clone(),
                line,
            };
            if !corpus.examples.contains(&example) {
                corpus.examples.push(example);
            }
            related.push((head, tail));
        }
        let mut mentions: Vec<Span> = (0..r.spans.len()).map(span).collect();
        mentions.sort();
        mentions.dedup();
        let mut negatives: Vec<(usize, Span, Span)> = Vec::new();
        for &h in &mentions {
            for &t in &mentions {
                let overlap = h.start < t.end && t.start < h.end;
                if overlap || related.contains(&(h, t)) {
                    continue;
                }
                negatives.push((t.start.abs_diff(h.start), h, t));
            }
        }
        negatives.sort_by_key(|n| n.0);
        corpus.examples.extend(
            negatives
                .into_iter()
                .take(max_negatives)
                .map(|(_, head, tail)| RelationExample {
                    text: r.text.clone(),
                    head,
                    tail,
                    label: no_relation.to_string(),
                    line,
                }),
        );
    }
    corpus
}

/// One DuIE line.
#[derive(Deserialize)]
struct DuieLine {
    text: String,
    #[serde(default)]
    spo_list: Vec<Spo>,
}

#[derive(Deserialize)]
struct Spo {
    subject: String,
    predicate: String,
    object: DuieObject,
}

/// DuIE 2.0 objects are `{"@value": ..., other slots}`; DuIE 1.0 objects are strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum DuieObject {
    Plain(String),
    Slots {
        #[serde(rename = "@value")]
        value: String,
    },
}

impl DuieObject {
    fn value(&self) -> &str {
        match self {
            DuieObject::Plain(v) | DuieObject::Slots { value: v } => v,
        }
    }
}

/// Parses DuIE JSON lines: spo triples as positives, unrelated mention pairs as negatives.
pub fn parse_duie(
    text: &str,
    path: &Path,
    no_relation: &str,
    max_negatives: usize,
) -> Result<Corpus, RelationError> {
    let mut corpus = Corpus::default();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let record: DuieLine = serde_json::from_str(line).map_err(|e| {
            data_error(
                path,
                n,
                format!("expected a JSON object {{\"text\", \"spo_list\": [{{\"subject\", \"predicate\", \"object\"}}]}}: {e}"),
            )
        })?;
        let mut names: Vec<&str> = Vec::new();
        let mut related: Vec<(&str, &str)> = Vec::new();
        for spo in &record.spo_list {
            let (s, o) = (spo.subject.as_str(), spo.object.value());
            let (h, t, ambiguous) = locate(&record.text, s, o, path, n)?;
            corpus.ambiguous += usize::from(ambiguous);
            corpus.examples.push(RelationExample {
                text: record.text.clone(),
                head: h,
                tail: t,
                label: spo.predicate.clone(),
                line: n,
            });
            related.push((s, o));
            for name in [s, o] {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        let mut negatives: Vec<(usize, RelationExample)> = Vec::new();
        for &a in &names {
            for &b in &names {
                if a == b || related.contains(&(a, b)) {
                    continue;
                }
                let (h, t) =
                    closest_pair(&occurrences(&record.text, a), &occurrences(&record.text, b))
                        .ok_or_else(|| {
                            data_error(path, n, format!("{a:?} or {b:?} is not in the text"))
                        })?;
                let gap = t.start.abs_diff(h.start);
                negatives.push((
                    gap,
                    RelationExample {
                        text: record.text.clone(),
                        head: h,
                        tail: t,
                        label: no_relation.to_string(),
                        line: n,
                    },
                ));
            }
        }
        // Closest pairs first (stable: ties keep mention order).
        negatives.sort_by_key(|(gap, _)| *gap);
        corpus
            .examples
            .extend(negatives.into_iter().take(max_negatives).map(|(_, e)| e));
    }
    Ok(corpus)
}
