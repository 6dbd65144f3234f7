//! The contract between the pipeline runner and its stages: a [`Stage`] transforms a batch of
//! [`Document`]s in place, and declares through [`Field`] what it reads and writes so a
//! pipeline can be checked before anything heavy is loaded.
use serde::Serialize;

use crate::doc::Document;

use super::PipelineError;

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
        }
    }
}

/// One processing step. Implementations are built once (models and indexes loaded), then
/// called concurrently from many threads, so they take `&self` and must be `Send + Sync`.
pub trait Stage: Send + Sync {
    /// The stage's name as written in `[pipeline] stages`.
    fn name(&self) -> &'static str;

    /// Adds this stage's output to every document of `docs` (a batch, in input order).
    /// CPU stages parallelise over the batch with rayon; model stages batch inference.
    fn process(&self, docs: &mut [Document]) -> Result<(), PipelineError>;
}
