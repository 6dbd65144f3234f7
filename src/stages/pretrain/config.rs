//! The TOML file of `zhishi pretrain` (`[task] kind = "pretrain"`): the shared `[task]`,
//! `[encoder]`, `[knowledge]` (its `kg` feeds entity masking) and `[train]` tables, plus the
//! corpus (`[data]`) and the masking (`[masking]`).
use std::path::PathBuf;

use serde::Deserialize;

use super::masking::{MaskingOptions, Strategy};
use crate::stages::task::{EncoderTable, KnowledgeTable, TaskTable, TrainTable};

/// A pretraining configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    /// `[task]`: `kind = "pretrain"`.
    pub task: TaskTable,
    /// `[encoder]`: the checkpoint to continue from.
    pub encoder: EncoderTable,
    /// `[knowledge]`: `kg` is the KG whose linked mentions entity masking hides.
    #[serde(default)]
    pub knowledge: KnowledgeTable,
    /// `[data]`: the corpus.
    pub data: DataTable,
    /// `[masking]`: strategies and rates.
    #[serde(default)]
    pub masking: MaskingTable,
    /// `[train]`: the loop.
    pub train: TrainTable,
}

/// How corpus lines hold their text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CorpusFormat {
    /// One text per line.
    #[default]
    Txt,
    /// One JSON object per line, the text under `text_field`.
    Jsonl,
}

/// `[data]` of a pretraining file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataTable {
    /// The corpus file, streamed (never read whole).
    pub corpus: PathBuf,
    /// `txt` (a text per line) or `jsonl`.
    #[serde(default)]
    pub format: CorpusFormat,
    /// The JSONL key holding the text.
    #[serde(default = "default_text_field")]
    pub text_field: String,
    /// Tokens per sequence, `[CLS]` and `[SEP]` included; consecutive lines are packed up to it.
    #[serde(default = "default_max_len")]
    pub max_len: usize,
    /// A held-out file (same format); unset: the last `dev_holdout` sequences of the corpus.
    #[serde(default)]
    pub dev: Option<PathBuf>,
    /// Sequences held out from the end of the corpus when `dev` is unset.
    #[serde(default = "default_dev_holdout")]
    pub dev_holdout: usize,
    /// Use at most this many training sequences (0: all).
    #[serde(default)]
    pub max_train: usize,
}

fn default_text_field() -> String {
    "text".into()
}
fn default_max_len() -> usize {
    128
}
fn default_dev_holdout() -> usize {
    64
}

/// `[masking]`: which units are hidden and how. The four weights mix strategies per sequence.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingTable {
    /// Weight of BERT's single-token masking.
    #[serde(default, deserialize_with = "crate::config::range::non_negative_f64")]
    pub token: f64,
    /// Weight of whole-word masking (jieba words).
    #[serde(
        default = "default_one",
        deserialize_with = "crate::config::range::non_negative_f64"
    )]
    pub whole_word: f64,
    /// Weight of entity masking (mentions of `knowledge.kg` entities; needs the KG).
    #[serde(default, deserialize_with = "crate::config::range::non_negative_f64")]
    pub entity: f64,
    /// Weight of phrase masking (chunks of adjacent jieba words).
    #[serde(default, deserialize_with = "crate::config::range::non_negative_f64")]
    pub phrase: f64,
    /// Share of a sequence's tokens predicted.
    #[serde(
        default = "default_mask_prob",
        deserialize_with = "crate::config::range::unit_f64"
    )]
    pub mask_prob: f64,
    /// Share of predicted tokens replaced by `[MASK]`.
    #[serde(
        default = "default_mask_token",
        deserialize_with = "crate::config::range::unit_f64"
    )]
    pub mask_token: f64,
    /// Share of predicted tokens replaced by a random token (the rest stay themselves).
    #[serde(
        default = "default_random_token",
        deserialize_with = "crate::config::range::unit_f64"
    )]
    pub random_token: f64,
    /// Words per phrase chunk at most.
    #[serde(
        default = "default_phrase_words",
        deserialize_with = "crate::config::range::count::<1, 64, _>"
    )]
    pub phrase_words: usize,
    /// ERNIE mode (dEA): share of token-entity alignments whose entity input is absent.
    #[serde(
        default = "default_dea_mask",
        deserialize_with = "crate::config::range::unit_f64"
    )]
    pub dea_mask: f64,
    /// ERNIE mode (dEA): share of alignments whose entity input is a random KG entity.
    #[serde(
        default = "default_dea_random",
        deserialize_with = "crate::config::range::unit_f64"
    )]
    pub dea_random: f64,
}

impl Default for MaskingTable {
    fn default() -> Self {
        Self {
            token: 0.0,
            whole_word: 1.0,
            entity: 0.0,
            phrase: 0.0,
            mask_prob: default_mask_prob(),
            mask_token: default_mask_token(),
            random_token: default_random_token(),
            phrase_words: default_phrase_words(),
            dea_mask: default_dea_mask(),
            dea_random: default_dea_random(),
        }
    }
}

impl MaskingTable {
    /// The masker's options.
    pub fn options(&self) -> MaskingOptions {
        MaskingOptions {
            weights: Strategy::ALL
                .into_iter()
                .zip([self.token, self.whole_word, self.entity, self.phrase])
                .collect(),
            mask_prob: self.mask_prob,
            mask_token: self.mask_token,
            random_token: self.random_token,
        }
    }
}

fn default_one() -> f64 {
    1.0
}
fn default_mask_prob() -> f64 {
    0.15
}
fn default_mask_token() -> f64 {
    0.8
}
fn default_random_token() -> f64 {
    0.1
}
fn default_phrase_words() -> usize {
    3
}
fn default_dea_mask() -> f64 {
    0.15
}
fn default_dea_random() -> f64 {
    0.05
}
