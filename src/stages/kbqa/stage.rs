//! The `kbqa` pipeline stage: answers each document (the question, or the text when there is
//! none) from the pipeline's KG with a trained [`KbqaModel`], into `answers`. It reads the
//! `mentions` the `link` stage wrote (a document's `question` is linked with the pipeline's
//! one linker), and refuses a pipeline whose linker or KG differ from the training run's.
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::doc::{Document, Mention};
use crate::stages::registry::{ModelStageKind, StageContext, StageInfo};
use crate::stages::task::{pipeline_differences, refuse_or_warn, MismatchPolicy};
use crate::stages::{Field, Stage, StageError};
use crate::text::{link_document, KgLinker, KnowledgeSource};

use super::{KbqaModel, LinkedQuestion};

/// `[kbqa]` options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KbqaStageOptions {
    /// A model directory written by `zhishi train` on a `kind = "kbqa"` config.
    pub model: PathBuf,
    /// Answers kept per question, best first.
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Overrides the model's NIL threshold: answers less confident than this are dropped.
    #[serde(default, deserialize_with = "crate::config::range::opt_unit_f32")]
    pub nil_threshold: Option<f32>,
    /// Answers whose score (the scorer's probability of the answer's triple times the link
    /// score of its subject) is below this are dropped (0 to 1), after the model's NIL
    /// threshold.
    #[serde(default, deserialize_with = "crate::config::range::unit_f32")]
    pub min_score: f32,
    /// When the pipeline's `[link]` or KG differ from the training run's: `"error"` (refuse
    /// to build, the default) or `"warn"` (log the differences and run).
    #[serde(default)]
    pub knowledge_mismatch: MismatchPolicy,
}

fn default_top_k() -> usize {
    1
}

/// Answers questions over the KG.
pub struct KbqaStage {
    model: KbqaModel,
    kg: Arc<dyn KnowledgeSource>,
    linker: Arc<KgLinker>,
    top_k: usize,
    min_score: f32,
    /// The instance's name in `[pipeline] stages`.
    instance: String,
}

impl KbqaStage {
    /// Loads the trained model (it holds its encoder) at the pipeline's precision, answering
    /// from the pipeline's KG; its linker settings and KG identity are checked against the
    /// pipeline's.
    pub fn load(opts: &KbqaStageOptions, ctx: &StageContext<'_>) -> Result<Self, StageError> {
        let fail = |e| StageError::new(ctx.instance, e);
        let mut model = KbqaModel::load_at(&opts.model, ctx.device, ctx.precision).map_err(fail)?;
        if let Some(threshold) = opts.nil_threshold {
            model = model.with_nil_threshold(threshold);
        }
        let meta = model.meta();
        let problems = pipeline_differences(Some(&meta.linker), meta.kg_identity.as_ref(), ctx)
            .map_err(|e| StageError::new(ctx.instance, e))?;
        let what = format!(
            "KBQA{}",
            meta.kg_name
                .as_ref()
                .map(|n| format!(", KG {n}"))
                .unwrap_or_default()
        );
        refuse_or_warn(ctx.instance, &what, &problems, opts.knowledge_mismatch)?;
        let (Some(kg), Some(linker)) = (ctx.kg, ctx.linker) else {
            return Err(StageError::new(
                ctx.instance,
                "the pipeline has no knowledge graph: add a [kg] table and the `link` stage",
            ));
        };
        Ok(Self {
            model,
            kg: Arc::clone(kg),
            linker: Arc::clone(linker),
            top_k: opts.top_k.max(1),
            min_score: opts.min_score,
            instance: ctx.instance.to_string(),
        })
    }
}

impl Stage for KbqaStage {
    fn name(&self) -> &str {
        &self.instance
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), StageError> {
        // A question is not the text the `link` stage linked: link it with the same linker.
        let question_mentions: Vec<Option<Vec<Mention>>> = docs
            .iter()
            .map(|d| {
                d.question.as_deref().map(|q| {
                    let mut question = Document::new(q);
                    link_document(&*self.linker, &mut question, false);
                    question.mentions
                })
            })
            .collect();
        let linked: Vec<LinkedQuestion<'_>> = docs
            .iter()
            .zip(&question_mentions)
            .map(|(d, own)| match (d.question.as_deref(), own) {
                (Some(q), Some(mentions)) => (q, mentions.as_slice()),
                _ => (d.text.as_str(), d.mentions.as_slice()),
            })
            .collect();
        let answers = self
            .model
            .answer_linked(&*self.kg, &linked)
            .map_err(|e| StageError::new(&self.instance, e))?;
        for (doc, mut answers) in docs.iter_mut().zip(answers) {
            answers.retain(|a| a.score >= self.min_score);
            doc.add_answers(answers, self.top_k, &self.instance);
        }
        Ok(())
    }
}

/// The `kbqa` stage kind, registered in [`crate::stages::registry::REGISTRY`].
pub static KIND: ModelStageKind<KbqaStageOptions> = ModelStageKind::new(
    StageInfo {
        name: "kbqa",
        summary: "answers to each document's question (or text) from the KG, from a trained KBQA model and the linked mentions",
        reads: &[Field::Mentions],
        produces: &[Field::Answers],
        needs_kg: true,
    },
    |_| vec![Field::Mentions],
    |opts, ctx| Ok(Box::new(KbqaStage::load(opts, ctx)?)),
);
