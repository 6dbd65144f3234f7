//! The `classify` pipeline stage: labels of each document's text (or of its `text` and
//! `text_b` pair) from a trained [`ClassifyModel`] into `labels`, best first, each with the
//! model's probability. A model trained with knowledge reads the `mentions` and `facts` the
//! pipeline's `link`/`facts` stages wrote for `text` (after checking that the pipeline's
//! knowledge settings and KG are the ones it was trained with) and links `text_b` itself with
//! the pipeline's linker, as training did; it marks the facts of `text` it injected.
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::doc::{Document, Evidence, Label};
use crate::stages::registry::{ModelStageKind, StageContext, StageInfo};
use crate::stages::task::{mark_injected, recorded_reads, KnowledgeMode, MismatchPolicy};
use crate::stages::{Field, Stage, StageError};
use crate::text::{annotate, KgLinker};

use super::model::META_FILE;
use super::ClassifyModel;

/// `[classify]` options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifyStageOptions {
    /// A model directory written by `zhishi train` on a `kind = "classify"` config (its
    /// `best/`).
    pub model: PathBuf,
    /// Labels kept per document, best first (a multi-label model keeps those at or above its
    /// threshold, at most this many).
    #[serde(
        default = "default_top_k",
        deserialize_with = "crate::config::range::count::<1, 1000, _>"
    )]
    pub top_k: usize,
    /// When the model's knowledge settings differ from the pipeline's: `"error"` (refuse to
    /// build) or `"warn"` (log and run).
    #[serde(default)]
    pub knowledge_mismatch: MismatchPolicy,
    /// Labels whose probability is below this are dropped (0 to 1).
    #[serde(default, deserialize_with = "crate::config::range::unit_f32")]
    pub min_score: f32,
}

fn default_top_k() -> usize {
    1
}

impl ClassifyStageOptions {
    /// The stage over the model directory `model`, keeping the best label.
    pub fn new(model: impl Into<PathBuf>) -> Self {
        Self {
            model: model.into(),
            top_k: default_top_k(),
            knowledge_mismatch: MismatchPolicy::Error,
            min_score: 0.0,
        }
    }
}

/// Labels whole texts and pairs.
pub struct ClassifyStage {
    model: ClassifyModel,
    top_k: usize,
    min_score: f32,
    /// Links the second text of pairs for a knowledge model.
    linker: Option<Arc<KgLinker>>,
    /// The instance's name in `[pipeline] stages`.
    instance: String,
}

impl ClassifyStage {
    /// Loads the trained model onto the pipeline's device and checks its knowledge against
    /// the pipeline's.
    pub fn load(opts: &ClassifyStageOptions, ctx: &StageContext<'_>) -> Result<Self, StageError> {
        let model = ClassifyModel::load_at(&opts.model, ctx.device, ctx.precision)
            .map_err(|e| StageError::new(ctx.instance, e))?;
        model
            .knowledge()
            .check_pipeline(ctx.instance, ctx, opts.knowledge_mismatch)?;
        let uses_knowledge = model.knowledge().mode != KnowledgeMode::Plain;
        Ok(Self {
            linker: uses_knowledge.then(|| ctx.linker.cloned()).flatten(),
            model,
            top_k: opts.top_k,
            min_score: opts.min_score,
            instance: ctx.instance.to_string(),
        })
    }

    fn stage_error(
        &self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> StageError {
        StageError::new(&self.instance, source)
    }

    /// The document of a second text, linked as training linked it.
    fn second(&self, text: &str) -> Result<Document, StageError> {
        match &self.linker {
            Some(linker) => annotate(linker.as_ref(), text, self.model.knowledge().max_entities)
                .map_err(|e| self.stage_error(e)),
            None => Ok(Document::new(text)),
        }
    }
}

impl Stage for ClassifyStage {
    fn name(&self) -> &str {
        &self.instance
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), StageError> {
        let pairs = self.pairs(docs)?;
        let scored = self
            .model
            .predict_documents(docs, &pairs)
            .map_err(|e| self.stage_error(e))?;
        let n = scored.len();
        self.add(docs, scored.into_iter().zip(std::iter::repeat_n(None, n)));
        Ok(())
    }

    fn process_explained(&self, docs: &mut [Document]) -> Result<(), StageError> {
        let pairs = self.pairs(docs)?;
        let explained = self
            .model
            .predict_explained(docs, &pairs)
            .map_err(|e| self.stage_error(e))?;
        let injects = self.model.knowledge().mode.injects();
        self.add(
            docs,
            explained
                .into_iter()
                .map(|x| (x.scored, injects.then_some(x.without))),
        );
        Ok(())
    }
}

/// Label probabilities without each fact: `(fact, probabilities)`.
type Without = Vec<(usize, Vec<f32>)>;

impl ClassifyStage {
    /// The second text of each document, linked, for a model trained on pairs.
    fn pairs(&self, docs: &[Document]) -> Result<Vec<Option<Document>>, StageError> {
        let pairs_model = self.model.meta().pairs;
        docs.iter()
            .map(|d| match (&d.text_b, pairs_model) {
                (Some(b), true) => self.second(b).map(Some),
                (None, true) => Err(self.stage_error(format!(
                    "document {}has no text_b, and the model classifies pairs (pass --text-b-field FIELD to zhishi run, or \"text_b\" over HTTP)",
                    d.id.as_deref().map_or(String::new(), |id| format!("{id:?} "))
                ))),
                (_, false) => Ok(None),
            })
            .collect()
    }

    /// Adds each document's best labels (with their evidence, when `without` is given) and
    /// marks the facts the model injected.
    fn add(
        &self,
        docs: &mut [Document],
        scored: impl Iterator<Item = (super::model::Scored, Option<Without>)>,
    ) {
        let labels = self.model.labels();
        for (doc, (s, without)) in docs.iter_mut().zip(scored) {
            let chosen = self.model.decide(&s.probabilities);
            let mut order: Vec<usize> = (0..s.probabilities.len()).collect();
            order.sort_by(|&a, &b| s.probabilities[b].total_cmp(&s.probabilities[a]));
            let keep = |i: &usize| !self.model.meta().multi_label || chosen.contains(&(*i as u32));
            let evidence = |i: usize| {
                without.as_ref().map(|w| {
                    Evidence::ranked(
                        s.probabilities[i],
                        w.iter()
                            .map(|(f, p)| (*f, p.get(i).copied().unwrap_or(0.0))),
                    )
                })
            };
            // Instances of one kind add to each other's labels, each saying which produced it.
            doc.labels.extend(
                order
                    .into_iter()
                    .filter(keep)
                    .take(self.top_k)
                    .filter(|&i| s.probabilities[i] >= self.min_score)
                    .map(|i| Label {
                        label: labels[i].clone(),
                        score: s.probabilities[i],
                        source: Some(self.instance.clone()),
                        evidence: evidence(i),
                    }),
            );
            mark_injected(doc, &s.injected.a, &self.instance);
        }
    }
}

/// The `classify` stage kind, registered in [`crate::stages::registry::REGISTRY`].
pub static KIND: ModelStageKind<ClassifyStageOptions> = ModelStageKind::new(
    StageInfo {
        name: "classify",
        summary: "labels of the whole text (or of the `text` + `text_b` pair) with their probabilities, best first, from a trained classification model; a model trained with knowledge also reads `mentions` (and `facts` for K-BERT)",
        reads: &[],
        produces: &[Field::Labels],
        needs_kg: false,
    },
    |opts| recorded_reads(&opts.model, META_FILE),
    |opts, ctx| Ok(Box::new(ClassifyStage::load(opts, ctx)?)),
);
