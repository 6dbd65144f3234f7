//! The TOML tables every trainable task stage shares (`[task]`, `[encoder]`, `[knowledge]`,
//! `[train]`), with their defaults next to the fields.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::train::{AdamWConfig, Batching, TrainOptions, TrainOutput, POOL_BATCHES};

/// `[task]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskTable {
    /// The task kind (`"ner"`, `"relation"`).
    pub kind: String,
}

/// `[encoder]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderTable {
    /// Hugging Face model directory (`config.json`, weights, `vocab.txt`), e.g. `"${M3E_DIR}"`,
    /// or a model id `hf:ORG/NAME[@REVISION]` ([`crate::model::hub`]).
    pub model: PathBuf,
    /// Train only the head, keeping the encoder fixed.
    #[serde(default)]
    pub freeze: bool,
    /// Dropout probability during training, before the classifier and inside the encoder
    /// (embeddings, attention probabilities and both projections of every layer, where BERT
    /// applies `hidden_dropout_prob` / `attention_probs_dropout_prob`).
    #[serde(
        default = "default_dropout",
        deserialize_with = "crate::config::range::unit_f32"
    )]
    pub dropout: f32,
}

fn default_dropout() -> f32 {
    0.1
}

/// How knowledge enters the encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KnowledgeMode {
    /// Characters only.
    #[default]
    Plain,
    /// K-BERT tree injection of facts about linked mentions.
    Kbert,
    /// ERNIE-THU: TransE vectors of linked entities fused into the top `ernie_layers` layers.
    Ernie,
    /// K-BERT injection and ERNIE fusion together (injected tokens carry no entity).
    Both,
}

impl KnowledgeMode {
    /// Whether facts are injected K-BERT style.
    pub fn injects(self) -> bool {
        matches!(self, Self::Kbert | Self::Both)
    }

    /// Whether the encoder fuses entity vectors (ERNIE).
    pub fn fuses_entities(self) -> bool {
        matches!(self, Self::Ernie | Self::Both)
    }

    /// Every mode, in the order the TOML documents them.
    pub const ALL: [Self; 4] = [Self::Plain, Self::Kbert, Self::Ernie, Self::Both];

    /// The name in the TOML.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Kbert => "kbert",
            Self::Ernie => "ernie",
            Self::Both => "both",
        }
    }
}

impl std::str::FromStr for KnowledgeMode {
    type Err = String;

    /// A mode by its TOML name.
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|m| m.name()).collect();
                format!(
                    "unknown knowledge mode {s:?} (expected {})",
                    names.join(", ")
                )
            })
    }
}

/// `[knowledge]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeTable {
    /// `plain`, `kbert`, `ernie` or `both`.
    #[serde(default)]
    pub mode: KnowledgeMode,
    /// Triples file (`subject<TAB>predicate<TAB>object`, e.g. K-BERT's `Medical.spo`).
    #[serde(default)]
    pub kg: Option<PathBuf>,
    /// Facts injected per linked mention.
    #[serde(default = "default_max_entities")]
    pub max_entities: usize,
    /// Inject `predicate + object` rather than the object alone.
    #[serde(default)]
    pub with_predicate: bool,
    /// Mentions the linker scores below this are not linked.
    #[serde(
        default = "default_nil_threshold",
        deserialize_with = "crate::config::range::unit_f32"
    )]
    pub nil_threshold: f32,
    /// ERNIE: a TransE directory (`zhishi transe train --export DIR` layout:
    /// `transe.safetensors` + `entity2id.txt`, 100-wide vectors). When it does not exist the
    /// vectors are trained on `kg` and written there; when absent they are trained in-process
    /// for this run only. Either way the trained model keeps its own copy.
    #[serde(default)]
    pub transe: Option<PathBuf>,
    /// ERNIE: TransE epochs when the vectors are trained here (other settings are
    /// `zhishi transe train`'s defaults: self-adversarial loss, 64 negatives, Adagrad, seed
    /// `train.seed`).
    #[serde(default = "default_transe_epochs")]
    pub transe_epochs: usize,
    /// ERNIE: how many of the top encoder layers become knowledgeable aggregators (`norm`
    /// layers); default half of them, rounded up.
    #[serde(
        default,
        deserialize_with = "crate::config::range::opt_count::<1, 1024, _>"
    )]
    pub ernie_layers: Option<usize>,
}

impl KnowledgeTable {
    /// The number of aggregator layers for an encoder of `num_layers` layers.
    pub fn aggregator_layers(&self, num_layers: usize) -> usize {
        self.ernie_layers.unwrap_or(num_layers.div_ceil(2))
    }
}

impl Default for KnowledgeTable {
    fn default() -> Self {
        Self {
            mode: KnowledgeMode::Plain,
            kg: None,
            max_entities: default_max_entities(),
            with_predicate: false,
            nil_threshold: default_nil_threshold(),
            transe: None,
            transe_epochs: default_transe_epochs(),
            ernie_layers: None,
        }
    }
}

fn default_transe_epochs() -> usize {
    100
}

fn default_max_entities() -> usize {
    2
}

fn default_nil_threshold() -> f32 {
    0.0
}

/// `[train]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainTable {
    /// Where `best/` (the model) and `last/` (the resumable state) are written.
    pub output_dir: PathBuf,
    /// Passes over the training data.
    #[serde(
        default = "default_epochs",
        deserialize_with = "crate::config::range::count::<1, 1_000_000, _>"
    )]
    pub epochs: usize,
    /// Examples (windows, pairs) per batch.
    #[serde(
        default = "default_batch_size",
        deserialize_with = "crate::config::range::count::<1, 65_536, _>"
    )]
    pub batch_size: usize,
    /// `"bucketed"` (similar lengths share a batch: least padding), `"random"` (consecutive
    /// shuffled examples, like a PyTorch `DataLoader`), `"tokens"` (buckets of about equal
    /// tokens) or `"packed"` (random batches, short examples packed several to an encoder
    /// row: NER and relation only). Unset: each task's default (`"packed"` for NER and
    /// relation extraction, `"bucketed"` for QA).
    #[serde(default)]
    pub batching: Option<Batching>,
    /// Batches per length-sorting pool when bucketed: small pools keep each batch's lengths
    /// mixed (better steps), large pools pad least (faster steps).
    #[serde(
        default = "default_bucket_pool",
        deserialize_with = "crate::config::range::count::<1, 65_536, _>"
    )]
    pub bucket_pool: usize,
    /// Batches per optimiser step.
    #[serde(
        default = "default_one",
        deserialize_with = "crate::config::range::count::<1, 65_536, _>"
    )]
    pub grad_accum: usize,
    /// Peak learning rate.
    #[serde(
        default = "default_lr",
        deserialize_with = "crate::config::range::positive_f64"
    )]
    pub lr: f64,
    /// Fraction of steps warming up.
    #[serde(
        default = "default_warmup",
        deserialize_with = "crate::config::range::unit_f64"
    )]
    pub warmup_ratio: f64,
    /// AdamW decoupled weight decay (not on biases and LayerNorms).
    #[serde(
        default = "default_weight_decay",
        deserialize_with = "crate::config::range::non_negative_f64"
    )]
    pub weight_decay: f64,
    /// Global gradient-norm clip (0 disables).
    #[serde(
        default = "default_one_f64",
        deserialize_with = "crate::config::range::non_negative_f64"
    )]
    pub max_grad_norm: f64,
    /// Seed for shuffling and dropout.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Compute threads (0: the machine's default).
    #[serde(default)]
    pub threads: usize,
    /// Evaluate every N optimiser steps (0: after each epoch).
    #[serde(default)]
    pub eval_every: usize,
    /// Stop after this many evaluations without dev improvement (0: never).
    #[serde(default)]
    pub patience: usize,
    /// Stop after this many optimiser steps.
    #[serde(
        default,
        deserialize_with = "crate::config::range::opt_count::<1, { usize::MAX }, _>"
    )]
    pub max_steps: Option<usize>,
    /// Continue from `output_dir/last` when it exists.
    #[serde(default)]
    pub resume: bool,
    /// Draw a progress bar.
    #[serde(default = "default_true")]
    pub progress: bool,
    /// Also save the model as it is at the end of the run to `output_dir/final/`.
    #[serde(default)]
    pub save_final: bool,
}

impl TrainTable {
    /// The loop's options, writing into the claimed `output` (see [`TrainOutput::claim`]),
    /// with the task's `default_batching` unless the TOML sets one.
    pub fn options(&self, output: TrainOutput, default_batching: Batching) -> TrainOptions {
        TrainOptions {
            epochs: self.epochs,
            batch_size: self.batch_size,
            batching: self.batching.unwrap_or(default_batching),
            bucket_pool: self.bucket_pool,
            grad_accum: self.grad_accum,
            lr: self.lr,
            warmup_ratio: self.warmup_ratio,
            adamw: AdamWConfig {
                weight_decay: self.weight_decay,
                ..AdamWConfig::default()
            },
            max_grad_norm: self.max_grad_norm,
            seed: self.seed,
            eval_every: self.eval_every,
            patience: self.patience,
            max_steps: self.max_steps,
            output,
            resume: self.resume,
            progress: self.progress,
            save_final: self.save_final,
        }
    }
}

fn default_bucket_pool() -> usize {
    POOL_BATCHES
}
fn default_true() -> bool {
    true
}
fn default_epochs() -> usize {
    3
}
fn default_batch_size() -> usize {
    32
}
fn default_one() -> usize {
    1
}
fn default_one_f64() -> f64 {
    1.0
}
fn default_lr() -> f64 {
    1e-4
}
fn default_warmup() -> f64 {
    0.1
}
fn default_weight_decay() -> f64 {
    0.01
}
fn default_seed() -> u64 {
    42
}
