//! The NER training configuration, mirroring the TOML file table for table (`[task]`,
//! `[encoder]`, `[knowledge]`, `[data]`, `[head]`, `[train]`); see `pipelines/resume-ner.toml`.
use std::path::PathBuf;

use serde::Deserialize;

use super::data::DataFormat;
use super::tags::TagScheme;
use crate::stages::annotation::{OffsetUnit, ReadOptions};
pub use crate::stages::task::config::{
    EncoderTable, KnowledgeMode, KnowledgeTable, TaskTable, TrainTable,
};

/// A whole NER training file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NerConfig {
    /// `[task]`: `kind = "ner"`.
    pub task: TaskTable,
    /// `[encoder]`: the pretrained model.
    pub encoder: EncoderTable,
    /// `[knowledge]`: what is injected (default: nothing).
    #[serde(default)]
    pub knowledge: KnowledgeTable,
    /// `[data]`: files and windowing.
    pub data: DataTable,
    /// `[head]`: CRF or not.
    #[serde(default)]
    pub head: HeadTable,
    /// `[train]`: the loop's settings.
    pub train: TrainTable,
}

/// `[data]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataTable {
    /// `char_per_line`, `kbert_tsv`, `doccano` or `label_studio`.
    pub format: DataFormat,
    /// `bio`, `bioes` or `bmes`; detected from the training tags when absent (span formats:
    /// BIO).
    #[serde(default)]
    pub scheme: Option<TagScheme>,
    /// doccano and Label Studio: the unit of the files' offsets (default: the tool's own).
    #[serde(default)]
    pub offsets: Option<OffsetUnit>,
    /// Label Studio: read a task without an annotation from its first prediction.
    #[serde(default)]
    pub use_predictions: bool,
    /// Training file.
    pub train: PathBuf,
    /// Dev file (evaluation during training, early stopping). Leave it out and set
    /// `dev_holdout` for corpora without a dev split (MSRA).
    #[serde(default)]
    pub dev: Option<PathBuf>,
    /// Hold out the last N sentences of the training file as the dev set (0 = use `dev`).
    #[serde(default)]
    pub dev_holdout: usize,
    /// Test file (`zhishi eval --split test`).
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// Longest input in tokens, `[CLS]` and `[SEP]` included; longer sentences are windowed.
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// Characters between window starts, 1 to `max_len - 2` (default: half a window).
    #[serde(
        default,
        deserialize_with = "crate::config::range::opt_count::<1, 8192, _>"
    )]
    pub stride: Option<usize>,
    /// Use only the first N training sentences (0 = all); counted after `dev_holdout`.
    #[serde(default)]
    pub max_train: usize,
}

impl DataTable {
    /// How span formats are read, their spans tagged in `scheme` (BIO when unset).
    pub fn span_reading(&self, scheme: Option<TagScheme>) -> super::data::SpanReading {
        super::data::SpanReading {
            scheme: scheme.or(self.scheme).unwrap_or(TagScheme::Bio),
            options: ReadOptions {
                offsets: self.offsets,
                use_predictions: self.use_predictions,
            },
        }
    }
}

fn default_max_len() -> usize {
    256
}

/// `[head]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadTable {
    /// Put a CRF over the classifier's scores.
    #[serde(default = "default_true")]
    pub crf: bool,
    /// The CRF's learning rate as a multiple of `train.lr` (its scores start at zero).
    #[serde(
        default = "default_crf_lr_scale",
        deserialize_with = "crate::config::range::non_negative_f64"
    )]
    pub crf_lr_scale: f64,
}

impl Default for HeadTable {
    fn default() -> Self {
        Self {
            crf: true,
            crf_lr_scale: default_crf_lr_scale(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_crf_lr_scale() -> f64 {
    100.0
}

impl crate::stages::task::TaskConfig for NerConfig {
    const KIND: crate::stages::task::TaskKind = crate::stages::task::TaskKind::Ner;

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

    fn data_paths(&self) -> crate::stages::task::DataPaths<'_> {
        crate::stages::task::DataPaths {
            train: &self.data.train,
            dev: self.data.dev.as_deref(),
            test: self.data.test.as_deref(),
        }
    }

    fn check(
        &self,
        source: &crate::config::ConfigSource,
    ) -> Result<(), crate::config::ConfigError> {
        if self.data.max_len < 3 {
            return Err(source.error(
                "data.max_len",
                "must be at least 3 ([CLS], one character, [SEP])",
            ));
        }
        let window = self.data.max_len - 2;
        if let Some(stride) = self.data.stride.filter(|&s| s > window) {
            return Err(source.error(
                "data.stride",
                format!(
                    "{stride} is out of range; expected 1 to {window} (max_len - 2): a larger \
                     stride skips characters"
                ),
            ));
        }
        match (&self.data.dev, self.data.dev_holdout) {
            (Some(_), 0) => {}
            (None, n) if n > 0 => {}
            (Some(_), _) => {
                return Err(source.error(
                    "data.dev_holdout",
                    "set either data.dev or data.dev_holdout, not both",
                ))
            }
            (None, _) => {
                return Err(source.error(
                    "data.dev",
                    "a dev file is required, or data.dev_holdout = N to hold out the last N \
                     training sentences",
                ))
            }
        }
        if self.knowledge.mode.fuses_entities() && self.knowledge.transe_epochs == 0 {
            return Err(source.error("knowledge.transe_epochs", "must be at least 1"));
        }
        Ok(())
    }
}
