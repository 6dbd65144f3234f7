//! The extractive-QA training configuration, mirroring the TOML file table for table
//! (`[task]`, `[encoder]`, `[data]`, `[decode]`, `[train]`); see `pipelines/cmrc2018-qa.toml`.
//! `[task]`, `[encoder]` and `[train]` are the same tables as NER's.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::stages::ner::config::{EncoderTable, TaskTable, TrainTable};

/// A whole QA training file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QaConfig {
    /// `[task]`: `kind = "qa"`.
    pub task: TaskTable,
    /// `[encoder]`: the pretrained model.
    pub encoder: EncoderTable,
    /// `[data]`: files and windowing.
    pub data: DataTable,
    /// `[decode]`: the span search.
    #[serde(default)]
    pub decode: DecodeOptions,
    /// `[train]`: the loop's settings.
    pub train: TrainTable,
}

/// `[data]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataTable {
    /// Training file (SQuAD v1 JSON).
    pub train: PathBuf,
    /// Dev file (evaluation during training, best checkpoint).
    pub dev: PathBuf,
    /// Test file (`zhishi eval --split test`).
    #[serde(default)]
    pub test: Option<PathBuf>,
    /// Longest input in tokens, specials included; longer contexts are windowed.
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// Context tokens between window starts.
    #[serde(default = "default_doc_stride")]
    pub doc_stride: usize,
    /// Questions are cut to this many tokens.
    #[serde(default = "default_max_query_len")]
    pub max_query_len: usize,
    /// Use only the first N training questions (0 = all).
    #[serde(default)]
    pub max_train: usize,
    /// Evaluate on only the first N questions of the dev (and test) file (0 = all).
    #[serde(default)]
    pub max_eval: usize,
}

impl DataTable {
    /// The windowing these settings describe.
    pub fn window(&self) -> WindowOptions {
        WindowOptions {
            max_len: self.max_len,
            doc_stride: self.doc_stride,
            max_query_len: self.max_query_len,
        }
    }
}

/// How `[CLS] question [SEP] context [SEP]` inputs are cut (stored with a trained model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowOptions {
    /// Longest input in tokens, specials included.
    pub max_len: usize,
    /// Context tokens between window starts.
    pub doc_stride: usize,
    /// Questions are cut to this many tokens.
    pub max_query_len: usize,
}

fn default_max_len() -> usize {
    384
}
fn default_doc_stride() -> usize {
    128
}
fn default_max_query_len() -> usize {
    64
}

/// `[decode]`: the n-best span search (stored with a trained model; the `qa` stage may
/// override it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeOptions {
    /// Start and end candidates per window (top-k each).
    #[serde(default = "default_n_best")]
    pub n_best: usize,
    /// Longest answer in tokens (one token per Chinese character).
    #[serde(default = "default_max_answer_len")]
    pub max_answer_len: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            n_best: default_n_best(),
            max_answer_len: default_max_answer_len(),
        }
    }
}

fn default_n_best() -> usize {
    20
}
fn default_max_answer_len() -> usize {
    50
}

impl crate::stages::task::TaskConfig for QaConfig {
    const KIND: crate::stages::task::TaskKind = crate::stages::task::TaskKind::Qa;

    fn task(&self) -> &TaskTable {
        &self.task
    }

    fn encoder(&self) -> &EncoderTable {
        &self.encoder
    }

    fn train(&self) -> &TrainTable {
        &self.train
    }

    fn max_len(&self) -> Option<usize> {
        Some(self.data.max_len)
    }

    fn data_paths(&self) -> crate::stages::task::DataPaths<'_> {
        crate::stages::task::DataPaths {
            train: &self.data.train,
            dev: Some(&self.data.dev),
            test: self.data.test.as_deref(),
        }
    }

    fn check(
        &self,
        source: &crate::config::ConfigSource,
    ) -> Result<(), crate::config::ConfigError> {
        let d = &self.data;
        if d.max_query_len == 0 {
            return Err(source.error("data.max_query_len", "must be at least 1"));
        }
        if d.max_len < d.max_query_len + 4 {
            return Err(source.error(
                "data.max_len",
                format!(
                    "must be at least max_query_len + 4 = {} ([CLS] question [SEP] context [SEP])",
                    d.max_query_len + 4
                ),
            ));
        }
        if d.doc_stride == 0 {
            return Err(source.error("data.doc_stride", "must be at least 1"));
        }
        if self.decode.n_best == 0 {
            return Err(source.error("decode.n_best", "must be at least 1"));
        }
        if self.decode.max_answer_len == 0 {
            return Err(source.error("decode.max_answer_len", "must be at least 1"));
        }
        if self.train.batching == Some(crate::train::Batching::Packed) {
            return Err(source.error(
                "train.batching",
                "\"packed\" is for short examples (NER, relation); QA windows fill data.max_len, \
                 so use \"bucketed\" or \"random\"",
            ));
        }
        Ok(())
    }
}
