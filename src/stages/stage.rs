//! The contract between the pipeline runner and its stages: a [`Stage`] transforms a batch of
//! [`Document`]s in place, and declares through [`Field`] what it reads and writes so a
//! pipeline can be checked before anything heavy is loaded.
use serde::Serialize;

use crate::doc::Document;

/// A part of a [`Document`] that stages produce and consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    /// `tokens` (segmentation).
    Tokens,
    /// `mentions` (entity linking).
    Mentions,
    /// `facts` (KG knowledge for linked mentions).
    Facts,
    /// `entities` (NER).
    Entities,
    /// `relations`.
    Relations,
    /// `answers`.
    Answers,
    /// `labels` (classification).
    Labels,
}

impl Field {
    /// The JSON field name in [`Document`].
    pub fn name(self) -> &'static str {
        match self {
            Field::Tokens => "tokens",
            Field::Mentions => "mentions",
            Field::Facts => "facts",
            Field::Entities => "entities",
            Field::Relations => "relations",
            Field::Answers => "answers",
            Field::Labels => "labels",
        }
    }
}

/// One processing step. Implementations are built once (models and indexes loaded), then
/// called concurrently from many threads, so they take `&self` and must be `Send + Sync`.
pub trait Stage: Send + Sync {
    /// The stage's name as written in `[pipeline] stages`.
    fn name(&self) -> &str;

    /// Adds this stage's output to every document of `docs` (a batch, in input order).
    /// CPU stages parallelise over the batch with rayon; model stages batch inference.
    fn process(&self, docs: &mut [Document]) -> Result<(), StageError>;

    /// [`Stage::process`], and the facts behind each prediction: a model stage that injected
    /// knowledge gives each of its entities, labels or relations an `evidence` list by
    /// re-running its model without each fact that can reach the prediction (one more
    /// forward pass per such fact). Stages without injected knowledge just process.
    fn process_explained(&self, docs: &mut [Document]) -> Result<(), StageError> {
        self.process(docs)
    }

    /// Whether the `tokens` this stage writes are exactly the pipeline linker's own
    /// segmentation (with the POS tags its filter needs), so a later `link` stage can link
    /// them instead of segmenting again.
    fn yields_linker_tokens(&self) -> bool {
        false
    }
}

/// Why a stage could not be built, or failed on a batch: the stage and the error it met
/// (kept as the source, so the whole chain reaches the user).
#[derive(Debug, thiserror::Error)]
#[error("stage `{stage}`")]
pub struct StageError {
    /// The stage's name (its instance name in `[pipeline] stages`).
    pub stage: String,
    /// What went wrong.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl StageError {
    /// `source` met by `stage`.
    pub fn new(
        stage: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            stage: stage.into(),
            source: source.into(),
        }
    }
}
