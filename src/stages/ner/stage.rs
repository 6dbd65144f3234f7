//! The `ner` pipeline stage: named entities from a trained [`NerModel`] into `entities`. A
//! model trained with knowledge reads the `mentions` (ERNIE) and `facts` (K-BERT) that the
//! pipeline's `link`/`facts` stages wrote, after checking that the pipeline's knowledge
//! settings and KG are the ones it was trained with, and marks the facts it injected. Each
//! entity's `score` is the probability of its span; `min_score` drops the less likely.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::doc::{Document, Entity};
use crate::stages::registry::{ModelStageKind, StageContext, StageInfo};
use crate::stages::task::{mark_injected, recorded_reads, MismatchPolicy};
use crate::stages::{Field, Stage, StageError};

use super::model::META_FILE;
use super::NerModel;

/// `[ner]` options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NerStageOptions {
    /// A model directory written by `zhishi train` on a `kind = "ner"` config (its `best/`).
    pub model: PathBuf,
    /// When the model's knowledge settings (linker options, facts per mention, KG content)
    /// differ from the pipeline's: `"error"` (refuse to build) or `"warn"` (log and run).
    #[serde(default)]
    pub knowledge_mismatch: MismatchPolicy,
    /// Entities whose probability (the entity's `score`) is below this are dropped (0 to 1).
    #[serde(default, deserialize_with = "crate::config::range::unit_f32")]
    pub min_score: f32,
}

impl NerStageOptions {
    /// The stage over the model directory `model`, refusing knowledge mismatches, keeping
    /// every entity.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            knowledge_mismatch: MismatchPolicy::Error,
            min_score: 0.0,
        }
    }
}

/// Tags named entities.
pub struct NerStage {
    model: NerModel,
    min_score: f32,
    /// The instance's name in `[pipeline] stages`.
    instance: String,
}

impl NerStage {
    /// Loads the trained model onto the pipeline's device and checks its knowledge against
    /// the pipeline's.
    pub fn load(opts: &NerStageOptions, ctx: &StageContext<'_>) -> Result<Self, StageError> {
        let model = NerModel::load_at(&opts.model, ctx.device, ctx.precision)
            .map_err(|e| StageError::new(ctx.instance, e))?;
        model
            .knowledge()
            .check_pipeline(ctx.instance, ctx, opts.knowledge_mismatch)?;
        Ok(Self {
            model,
            min_score: opts.min_score,
            instance: ctx.instance.to_string(),
        })
    }
}

impl Stage for NerStage {
    fn name(&self) -> &str {
        &self.instance
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), StageError> {
        let results = self
            .model
            .predict_documents(docs)
            .map_err(|e| StageError::new(&self.instance, e))?;
        self.add(docs, results);
        Ok(())
    }

    fn process_explained(&self, docs: &mut [Document]) -> Result<(), StageError> {
        let results = self
            .model
            .predict_explained(docs)
            .map_err(|e| StageError::new(&self.instance, e))?;
        self.add(docs, results);
        Ok(())
    }
}

impl NerStage {
    /// Adds the model's entities (those scored at least `min_score`) to the documents and
    /// marks the facts it injected.
    fn add(&self, docs: &mut [Document], results: Vec<super::Tagged>) {
        for (doc, tagged) in docs.iter_mut().zip(results) {
            // Instances of one kind (`[ner_drug] kind = "ner"`) add to each other's entities,
            // each saying which produced it.
            doc.entities.extend(
                tagged
                    .entities
                    .into_iter()
                    .filter(|e| e.score.unwrap_or(1.0) >= self.min_score)
                    .map(|e| Entity {
                        source: Some(self.instance.clone()),
                        ..e
                    }),
            );
            doc.entities.sort_by_key(|e| (e.start, e.end));
            mark_injected(doc, &tagged.injected, &self.instance);
        }
    }
}

/// The `ner` stage kind, registered in [`crate::stages::registry::REGISTRY`].
pub static KIND: ModelStageKind<NerStageOptions> = ModelStageKind::new(
    StageInfo {
        name: "ner",
        summary: "named entities (BIO/BMES spans with labels, each scored with its probability) from a trained NER model; a model trained with knowledge also reads `mentions` (and `facts` for K-BERT) and marks the facts it injected",
        reads: &[],
        produces: &[Field::Entities],
        needs_kg: false,
    },
    |opts| recorded_reads(&opts.model, META_FILE),
    |opts, ctx| Ok(Box::new(NerStage::load(opts, ctx)?)),
);
