//! Predictions out as pre-annotations: `zhishi run --output-format doccano|label_studio`.
//!
//! A document's entities, relations and labels become one record of the tool's import
//! format ([`super::doccano::to_json`], [`super::label_studio::to_json`]). Relation arguments
//! that are not among the entities (arguments from linked mentions) become spans of type
//! [`ARGUMENT_LABEL`]. The record's shape follows what the pipeline's stages produce
//! ([`Shape`]), so every line of one run has the same form.
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::doc::Document;
use crate::stages::Field;

/// The type of a relation argument that no entity of the document covers.
pub const ARGUMENT_LABEL: &str = "ENTITY";

/// What `zhishi run` writes per document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// zhishi's own JSON document per line.
    #[default]
    Jsonl,
    /// doccano's JSONL import format.
    Doccano,
    /// Label Studio's JSON import format with `predictions` (one array; one task per line).
    LabelStudio,
}

impl OutputFormat {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Jsonl => "jsonl",
            OutputFormat::Doccano => "doccano",
            OutputFormat::LabelStudio => "label_studio",
        }
    }

    /// Whether it is zhishi's own format (the default).
    pub fn is_jsonl(&self) -> bool {
        *self == OutputFormat::Jsonl
    }
}

impl FromStr for OutputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jsonl" => Ok(OutputFormat::Jsonl),
            "doccano" => Ok(OutputFormat::Doccano),
            "label_studio" | "label-studio" => Ok(OutputFormat::LabelStudio),
            other => Err(format!(
                "unknown output format {other:?}; expected jsonl, doccano or label_studio"
            )),
        }
    }
}

/// What the pipeline writes, which decides the form of every record of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shape {
    /// Entities (NER).
    pub entities: bool,
    /// Relations.
    pub relations: bool,
    /// Labels of the whole text (classification).
    pub labels: bool,
    /// The Label Studio `model_version` (the pipeline's name).
    pub model_version: String,
}

impl Shape {
    /// The shape of a pipeline named `name` whose stages produce `fields`.
    pub fn new(name: &str, fields: &[Field]) -> Self {
        Self {
            entities: fields.contains(&Field::Entities),
            relations: fields.contains(&Field::Relations),
            labels: fields.contains(&Field::Labels),
            model_version: name.to_string(),
        }
    }
}

/// A predicted span, in characters.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictedSpan {
    /// First character.
    pub start: usize,
    /// One past the last character.
    pub end: usize,
    /// Its text.
    pub text: String,
    /// Its type.
    pub label: String,
    /// The model's confidence, when it gave one.
    pub score: Option<f32>,
}

/// A predicted relation between two of [`Prediction::spans`].
#[derive(Debug, Clone, PartialEq)]
pub struct PredictedRelation {
    /// Index of the head span.
    pub from: usize,
    /// Index of the tail span.
    pub to: usize,
    /// The relation type.
    pub label: String,
    /// The model's confidence.
    pub score: f32,
}

/// A document's predictions in the terms of an annotation tool.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prediction {
    /// Entities, then relation arguments no entity covers.
    pub spans: Vec<PredictedSpan>,
    /// Relations.
    pub relations: Vec<PredictedRelation>,
    /// Labels with their scores, best first, without repeats.
    pub labels: Vec<(String, f32)>,
}

impl Prediction {
    /// The predictions of `doc`.
    pub fn of(doc: &Document) -> Self {
        let mut p = Prediction::default();
        for e in &doc.entities {
            let known = p
                .spans
                .iter()
                .any(|s| s.start == e.start && s.end == e.end && s.label == e.label);
            if !known {
                p.spans.push(PredictedSpan {
                    start: e.start,
                    end: e.end,
                    text: e.text.clone(),
                    label: e.label.clone(),
                    score: e.score,
                });
            }
        }
        for r in &doc.relations {
            let mut index = |a: &crate::doc::Argument| match p
                .spans
                .iter()
                .position(|s| s.start == a.start && s.end == a.end)
            {
                Some(i) => i,
                None => {
                    p.spans.push(PredictedSpan {
                        start: a.start,
                        end: a.end,
                        text: a.text.clone(),
                        label: ARGUMENT_LABEL.to_string(),
                        score: None,
                    });
                    p.spans.len() - 1
                }
            };
            let (from, to) = (index(&r.head), index(&r.tail));
            p.relations.push(PredictedRelation {
                from,
                to,
                label: r.label.clone(),
                score: r.score,
            });
        }
        for l in &doc.labels {
            if !p.labels.iter().any(|(name, _)| name == &l.label) {
                p.labels.push((l.label.clone(), l.score));
            }
        }
        p
    }

    /// The lowest score of any prediction (what a reviewer should look at first), if any
    /// prediction has a score.
    pub fn min_score(&self) -> Option<f32> {
        self.spans
            .iter()
            .filter_map(|s| s.score)
            .chain(self.relations.iter().map(|r| r.score))
            .chain(self.labels.iter().map(|l| l.1))
            .reduce(f32::min)
    }
}

/// One document's line in `format` (without the line break). Label Studio's lines are the
/// elements of one JSON array: the first starts with `[`, the others with `,`
/// (`first` says which), and [`closing`] ends the array.
pub fn line(doc: &Document, format: OutputFormat, shape: &Shape, first: bool) -> Vec<u8> {
    match format {
        OutputFormat::Jsonl => serde_json::to_vec(doc).unwrap_or_default(),
        OutputFormat::Doccano => {
            serde_json::to_vec(&super::doccano::to_json(doc, shape)).unwrap_or_default()
        }
        OutputFormat::LabelStudio => {
            let mut out = vec![if first { b'[' } else { b',' }];
            out.extend(
                serde_json::to_vec(&super::label_studio::to_json(doc, shape)).unwrap_or_default(),
            );
            out
        }
    }
}

/// The line that ends a run's output in `format` after `docs` documents, if it needs one
/// (Label Studio's `]`, or `[]` for no documents).
pub fn closing(format: OutputFormat, docs: u64) -> Option<&'static [u8]> {
    match format {
        OutputFormat::LabelStudio if docs == 0 => Some(b"[]"),
        OutputFormat::LabelStudio => Some(b"]"),
        _ => None,
    }
}
