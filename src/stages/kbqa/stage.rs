//! The `kbqa` pipeline stage: answers each document (the question, or the text when there is
//! none) from the KG with a trained [`KbqaModel`], into `answers`.
use std::path::PathBuf;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::doc::Document;
use crate::stages::registry::{ModelStageKind, StageInfo};
use crate::stages::{Field, Stage, StageError};

use super::KbqaModel;

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
}

fn default_top_k() -> usize {
    1
}

/// Answers questions over the KG.
pub struct KbqaStage {
    model: KbqaModel,
    top_k: usize,
}

impl KbqaStage {
    /// Loads the trained model (its encoder and store are named in the model directory), with
    /// the encoder on `device`.
    pub fn load(opts: &KbqaStageOptions, device: &Device) -> Result<Self, StageError> {
        let model = KbqaModel::load_with(&opts.model, device, None, opts.nil_threshold)
            .map_err(|e| StageError::new("kbqa", e))?;
        Ok(Self {
            model,
            top_k: opts.top_k.max(1),
        })
    }
}

impl Stage for KbqaStage {
    fn name(&self) -> &'static str {
        "kbqa"
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), StageError> {
        let questions: Vec<&str> = docs
            .iter()
            .map(|d| d.question.as_deref().unwrap_or(&d.text))
            .collect();
        let answers = self
            .model
            .answer_batch(&questions)
            .map_err(|e| StageError::new("kbqa", e))?;
        for (doc, mut answers) in docs.iter_mut().zip(answers) {
            answers.truncate(self.top_k);
            doc.answers = answers;
        }
        Ok(())
    }
}

/// The `kbqa` stage kind, registered in [`crate::stages::registry::REGISTRY`].
pub static KIND: ModelStageKind<KbqaStageOptions> = ModelStageKind::new(
    StageInfo {
        name: "kbqa",
        summary:
            "answers to each document's question (or text) from the KG, from a trained KBQA model",
        reads: &[],
        produces: &[Field::Answers],
        needs_kg: false,
    },
    |_| Vec::new(),
    |opts, ctx| Ok(Box::new(KbqaStage::load(opts, ctx.device)?)),
);
