//! Annotation tools in and out: the exports of doccano ([`doccano`]) and Label Studio
//! ([`label_studio`]) read as training data for NER, relation extraction and classification,
//! and pipeline predictions written in each tool's import format (pre-annotations).
//!
//! One reader per tool turns a file into [`Annotated`] texts (spans with a type, relations
//! between spans, labels of the whole text), with character offsets; each task turns those
//! into its own examples (`ner::data`, `relation::data`, `classify::data`).
//!
//! **Offsets.** zhishi counts characters (Unicode scalar values, Python's `str` indexing). The
//! tools are JavaScript front ends: doccano records offsets in UTF-16 code units (its
//! issue #2290: an emoji or a CJK Extension B character such as 𠀀 counts twice), Label Studio
//! records code points since its frontend fix (label-studio#1559 / label-studio-frontend#308;
//! earlier versions wrote UTF-16 code units). So a doccano file is read in UTF-16 code units
//! and a Label Studio file in characters unless `[data] offsets` says otherwise, and a Label
//! Studio span whose `value.text` matches the text only under the other unit is read in that
//! unit. For text without characters beyond U+FFFF (most Chinese text) the units agree.
use std::fmt;
use std::path::{Path, PathBuf};

pub mod doccano;
pub mod export;
pub mod label_studio;
pub mod offsets;

pub use export::{OutputFormat, Shape};
pub use offsets::OffsetUnit;

/// An annotation tool whose export zhishi reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// doccano's JSONL export.
    Doccano,
    /// Label Studio's JSON export (an array of tasks).
    LabelStudio,
}

/// How an export is read: the `[data]` keys `offsets` and `use_predictions`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// The unit of the file's offsets; `None`: the tool's own (doccano UTF-16 code units,
    /// Label Studio characters).
    pub offsets: Option<OffsetUnit>,
    /// Label Studio: a task without an annotation (or only cancelled ones) is read from its
    /// first prediction instead of being skipped.
    pub use_predictions: bool,
}

/// Where a record sits in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A JSONL line (1-based).
    Line(usize),
    /// A task of a JSON array: its 0-based index and its `id`, if it has one.
    Task {
        /// 0-based index in the array.
        index: usize,
        /// The task's `id`.
        id: Option<String>,
    },
}

impl Location {
    /// A 1-based number for examples that carry a line: the line, or the task index + 1.
    pub fn line(&self) -> usize {
        match self {
            Location::Line(n) => *n,
            Location::Task { index, .. } => index + 1,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, ":{n}"),
            Location::Task { index, id: None } => write!(f, ": task at index {index}"),
            Location::Task {
                index,
                id: Some(id),
            } => write!(f, ": task at index {index} (id {id})"),
        }
    }
}

/// A typed span of an annotated text, in characters, end exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanAnnotation {
    /// The tool's id of the span (relations refer to it), if any.
    pub id: Option<String>,
    /// First character.
    pub start: usize,
    /// One past the last character.
    pub end: usize,
    /// The entity type.
    pub label: String,
}

/// A relation between two spans of the same text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationAnnotation {
    /// Index of the head span in [`Annotated::spans`].
    pub from: usize,
    /// Index of the tail span.
    pub to: usize,
    /// The relation type.
    pub label: String,
}

/// One annotated text of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotated {
    /// The text as the tool holds it.
    pub text: String,
    /// Typed spans, in file order (identical duplicates removed).
    pub spans: Vec<SpanAnnotation>,
    /// Relations between the spans.
    pub relations: Vec<RelationAnnotation>,
    /// Labels of the whole text (classification).
    pub labels: Vec<String>,
    /// Where it is in the file.
    pub at: Location,
}

impl Annotated {
    /// `text` with nothing annotated yet (its location set by the reader afterwards).
    pub fn new(text: String) -> Self {
        Self {
            text,
            spans: Vec::new(),
            relations: Vec::new(),
            labels: Vec::new(),
            at: Location::Line(0),
        }
    }

    /// The spans sorted by position; an error names two spans that overlap (a tag sequence
    /// cannot hold both).
    pub fn sorted_disjoint_spans(&self) -> Result<Vec<&SpanAnnotation>, String> {
        let mut spans: Vec<&SpanAnnotation> = self.spans.iter().collect();
        spans.sort_by_key(|s| (s.start, s.end));
        for pair in spans.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b.start < a.end {
                return Err(format!(
                    "spans {} and {} overlap; expected non-overlapping entity spans (one tag per character)",
                    self.describe(a),
                    self.describe(b)
                ));
            }
        }
        Ok(spans)
    }

    /// `[start, end) TYPE "text"` for messages.
    pub fn describe(&self, span: &SpanAnnotation) -> String {
        let text: String = self
            .text
            .chars()
            .skip(span.start)
            .take(span.end.saturating_sub(span.start))
            .collect();
        format!("[{}, {}) {} {text:?}", span.start, span.end, span.label)
    }
}

/// Why an export cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum AnnotationError {
    /// The file is not UTF-8 text (names the file and line).
    #[error(transparent)]
    Read(#[from] crate::textfile::TextFileError),
    /// A record is malformed or inconsistent.
    #[error("{}{at}: {message}", path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// The record.
        at: Location,
        /// What is wrong and what was expected.
        message: String,
    },
}

impl AnnotationError {
    /// A record error.
    pub fn record(path: &Path, at: &Location, message: impl Into<String>) -> Self {
        AnnotationError::Record {
            path: path.to_path_buf(),
            at: at.clone(),
            message: message.into(),
        }
    }
}

/// Reads the export `path` of `tool`; a file without any annotated record is an error.
pub fn read(
    path: &Path,
    tool: Tool,
    options: ReadOptions,
) -> Result<Vec<Annotated>, AnnotationError> {
    let text = crate::textfile::read(path)?;
    let out = match tool {
        Tool::Doccano => doccano::parse(&text, path, options)?,
        Tool::LabelStudio => label_studio::parse(&text, path, options)?,
    };
    Ok(out)
}

/// Checks a span's character range against the text and adds it (identical duplicates are
/// dropped); returns its index.
pub(crate) fn push_span(
    spans: &mut Vec<SpanAnnotation>,
    span: SpanAnnotation,
    chars: usize,
) -> Result<usize, String> {
    if span.start >= span.end {
        return Err(format!(
            "span [{}, {}) {} is empty or reversed; expected start < end",
            span.start, span.end, span.label
        ));
    }
    if span.end > chars {
        return Err(format!(
            "span [{}, {}) {} ends beyond the text of {chars} characters",
            span.start, span.end, span.label
        ));
    }
    if span.label.trim().is_empty() {
        return Err(format!(
            "span [{}, {}) has an empty label",
            span.start, span.end
        ));
    }
    if let Some(i) = spans.iter().position(|s| {
        s.start == span.start && s.end == span.end && s.label == span.label && s.id == span.id
    }) {
        return Ok(i);
    }
    spans.push(span);
    Ok(spans.len() - 1)
}

/// A JSON value as a label: a non-empty string (trimmed), a number or a boolean.
pub(crate) fn label_of(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A JSON id (string or number) as a string.
pub(crate) fn id_of(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
