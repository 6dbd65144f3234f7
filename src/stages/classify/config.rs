//! The classification training configuration, mirroring the TOML file table for table
//! (`[task]`, `[encoder]`, `[knowledge]`, `[data]`, `[head]`, `[train]`); see
//! `pipelines/chnsenticorp-cls.toml`.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::data::DataFormat;
use crate::config::{ConfigError, ConfigSource};
use crate::stages::task::{
    DataPaths, EncoderTable, KnowledgeTable, TaskConfig, TaskKind, TaskTable, TrainTable,
};

/// A whole classification training file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyConfig {
    /// `[task]`: `kind = "classify"`.
    pub task: TaskTable,
    /// `[encoder]`: the pretrained model.
    pub encoder: EncoderTable,
    /// `[knowledge]`: what is injected (default: nothing).
    #[serde(default)]
    pub knowledge: KnowledgeTable,
    /// `[data]`: files, format, fields.
    pub data: DataTable,
    /// `[head]`: pooling, single or multi-label, class weights.
    #[serde(default)]
    pub head: HeadTable,
    /// `[train]`: the loop's settings.
    pub train: TrainTable,
}

/// `[data]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataTable {
    /// `tsv` (a header naming the columns; K-BERT/UER's layout), `jsonl` (CLUE's), `csv`,
    /// `doccano` or `label_studio`.
    pub format: DataFormat,
    /// doccano and Label Studio: the unit of the files' offsets (default: the tool's own).
    #[serde(default)]
    pub offsets: Option<crate::stages::annotation::OffsetUnit>,
    /// Label Studio: read a task without an annotation from its first prediction.
    #[serde(default)]
    pub use_predictions: bool,
    /// Training file.
    pub train: PathBuf,
    /// Dev file (evaluation during training, early stopping).
    pub dev: PathBuf,
    /// Test file (`zhishi eval --split test`).
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// The column or key of the text (default `text_a` in TSV and CSV, `text` in JSONL).
    #[serde(default)]
    pub text_field: Option<String>,
    /// The column or key of the second text of a pair (default `text_b` in TSV and CSV
    /// when the header has it; none in JSONL).
    #[serde(default)]
    pub text_b_field: Option<String>,
    /// The column or key of the label (default `label`).
    #[serde(default = "default_label_field")]
    pub label_field: String,
    /// With `head.multi_label`, what separates the labels of one TSV or CSV cell (JSONL
    /// gives a list).
    #[serde(default = "default_label_separator")]
    pub label_separator: String,
    /// Longest input in tokens (`[CLS]` and `[SEP]`s included); the longer text of a pair
    /// is cut first.
    #[serde(
        default = "default_max_len",
        deserialize_with = "crate::config::range::count::<4, 8192, _>"
    )]
    pub max_len: usize,
    /// Train on the first N examples (0 = all).
    #[serde(default)]
    pub max_train: usize,
}

fn default_label_field() -> String {
    "label".into()
}

fn default_label_separator() -> String {
    ",".into()
}

fn default_max_len() -> usize {
    256
}

/// How the head reads the encoder's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// `[CLS]` through the pooler (dense + tanh; the checkpoint's when it has one).
    #[default]
    Pooler,
    /// The mean of every token's hidden state.
    Mean,
}

/// How classes are weighted in the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassWeights {
    /// Every example counts the same.
    #[default]
    None,
    /// Each class weighs `examples / (classes · examples of the class)` (scikit-learn's
    /// "balanced"); with `multi_label`, positives of a label weigh `negatives / positives`.
    Balanced,
}

/// `[head]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HeadTable {
    /// `pooler` or `mean`.
    #[serde(default)]
    pub pooling: Pooling,
    /// Several labels per example (sigmoid per label) instead of one (softmax).
    #[serde(default)]
    pub multi_label: bool,
    /// With `multi_label`, the probability from which a label is predicted.
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// `none` or `balanced`.
    #[serde(default)]
    pub class_weights: ClassWeights,
}

impl Default for HeadTable {
    fn default() -> Self {
        Self {
            pooling: Pooling::default(),
            multi_label: false,
            threshold: default_threshold(),
            class_weights: ClassWeights::default(),
        }
    }
}

fn default_threshold() -> f32 {
    0.5
}

impl TaskConfig for ClassifyConfig {
    const KIND: TaskKind = TaskKind::Classify;

    fn task(&self) -> &TaskTable {
        &self.task
    }

    fn encoder(&self) -> &EncoderTable {
        &self.encoder
    }

    fn train(&self) -> &TrainTable {
        &self.train
    }

    fn knowledge(&self) -> Option<&KnowledgeTable> {
        Some(&self.knowledge)
    }

    fn max_len(&self) -> Option<usize> {
        Some(self.data.max_len)
    }

    fn data_paths(&self) -> DataPaths<'_> {
        DataPaths {
            train: &self.data.train,
            dev: Some(&self.data.dev),
            test: self.data.test.as_deref(),
        }
    }

    fn check(&self, source: &ConfigSource) -> Result<(), ConfigError> {
        let d = &self.data;
        if d.max_len < 4 {
            return Err(source.error(
                "data.max_len",
                "must be at least 4 ([CLS], two [SEP]s and a character)",
            ));
        }
        for (key, field) in [
            ("data.text_field", d.text_field.as_deref()),
            ("data.text_b_field", d.text_b_field.as_deref()),
            ("data.label_field", Some(d.label_field.as_str())),
        ] {
            if field.is_some_and(str::is_empty) {
                return Err(source.error(key, "expected a column or key name"));
            }
        }
        if d.label_separator.is_empty() {
            return Err(source.error("data.label_separator", "expected a separator, e.g. \",\""));
        }
        let t = self.head.threshold;
        if !(t > 0.0 && t < 1.0) {
            return Err(source.error(
                "head.threshold",
                format!("must lie strictly between 0 and 1, found {t}"),
            ));
        }
        Ok(())
    }
}
