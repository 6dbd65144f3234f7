//! The KBQA training/evaluation configuration, mirroring the TOML file one-to-one
//! (`pipelines/nlpcc-kbqa.toml`).
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A whole KBQA TOML file: `[task]`, `[data]`, `[kg]`, `[encoder]`, `[link]`, `[train]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbqaConfig {
    /// `[task] kind = "kbqa"`.
    pub task: TaskSection,
    /// The question file and its split.
    pub data: DataSection,
    /// The KG store answers come from.
    pub kg: KgSection,
    /// The sentence encoder.
    pub encoder: EncoderSection,
    /// Candidate generation from the linker.
    #[serde(default)]
    pub link: CandidateOptions,
    /// Scorer training.
    pub train: TrainSection,
}

/// `[task]`: which stage the file trains.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSection {
    /// Must be `"kbqa"`.
    pub kind: String,
}

/// `[data]`: an NLPCC 2016 KBQA question file (question / gold triple / answer blocks).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// The question file, relative to the TOML file's directory.
    pub path: PathBuf,
    /// The first `train_questions` questions are for training (and dev); the rest are the test.
    pub train_questions: usize,
    /// How many of the training questions (taken from their end) form the dev split used to
    /// pick the best epoch.
    #[serde(default = "default_dev_questions")]
    pub dev_questions: usize,
}

fn default_dev_questions() -> usize {
    1000
}

/// `[kg]`: the sled store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KgSection {
    /// The store directory, relative to the TOML file's directory.
    pub store: PathBuf,
    /// When the store does not exist, build it from the gold triples of `data.path`.
    #[serde(default = "yes")]
    pub import_gold: bool,
    /// Import the gold triples of only the first N questions (default: all). With
    /// `gold_questions = 12609` the test questions ask about entities outside the store, which
    /// measures how well the NIL threshold (`link.nil_threshold`) refuses to answer.
    #[serde(default)]
    pub gold_questions: Option<usize>,
}

fn yes() -> bool {
    true
}

/// `[encoder]`: the BERT checkpoint used for question and predicate embeddings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderSection {
    /// A Hugging Face BERT directory (`config.json`, weights, `tokenizer.json` or `vocab.txt`).
    pub model: PathBuf,
    /// Texts per encoder batch.
    #[serde(
        default = "default_batch",
        deserialize_with = "crate::config::range::count::<1, 65_536, _>"
    )]
    pub batch_size: usize,
    /// Longest tokenised input kept, `[CLS]` and `[SEP]` included (longer questions are cut).
    #[serde(
        default = "default_max_len",
        deserialize_with = "crate::config::range::count::<3, 8192, _>"
    )]
    pub max_len: usize,
}

fn default_batch() -> usize {
    32
}

fn default_max_len() -> usize {
    64
}

/// `[link]`: which linked entities contribute candidate triples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CandidateOptions {
    /// Mentions considered, best linker score first.
    pub mentions: usize,
    /// Candidate entities considered per mention.
    pub candidates: usize,
    /// Outgoing triples read per candidate entity.
    pub max_facts: usize,
    /// Answers whose confidence (answer probability times the link score of its subject) is
    /// below this are dropped, so a question about an entity the KG lacks gets no answer. The
    /// default 0.3 was chosen on the NLPCC dev questions (see the README): of the questions
    /// whose subject is missing from the store it still answers 29% (69% with no threshold),
    /// and it costs 0.1 points of accuracy on the others.
    #[serde(deserialize_with = "crate::config::range::unit_f32")]
    pub nil_threshold: f32,
}

impl Default for CandidateOptions {
    fn default() -> Self {
        Self {
            mentions: 4,
            candidates: 3,
            max_facts: 256,
            nil_threshold: 0.3,
        }
    }
}

/// `[train]`: the scorer's optimisation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Where the trained model is written (and read by evaluation).
    pub output: PathBuf,
    /// Passes over the training questions.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Adam learning rate.
    #[serde(
        default = "default_lr",
        deserialize_with = "crate::config::range::positive_f32"
    )]
    pub lr: f32,
    /// L2 penalty on every weight.
    #[serde(
        default = "default_l2",
        deserialize_with = "crate::config::range::non_negative_f32"
    )]
    pub l2: f32,
    /// Questions per optimiser step.
    #[serde(
        default = "default_train_batch",
        deserialize_with = "crate::config::range::count::<1, 65_536, _>"
    )]
    pub batch_size: usize,
    /// Rank of the learned question-predicate bilinear interaction (0 = none).
    #[serde(default = "default_rank")]
    pub rank: usize,
    /// Seed for initialisation and shuffling.
    #[serde(default)]
    pub seed: u64,
}

fn default_epochs() -> usize {
    20
}

fn default_lr() -> f32 {
    0.01
}

fn default_l2() -> f32 {
    1e-5
}

fn default_train_batch() -> usize {
    32
}

fn default_rank() -> usize {
    16
}
