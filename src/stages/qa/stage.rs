//! The `qa` pipeline stage: extractive answers to each document's `question` from its `text`
//! (the context) with a trained [`QaModel`], into `answers` (best first, character spans of
//! `text`), each scored with its probability among the question's n-best candidate spans
//! (those under `min_score` dropped). A document without a question is an error (`zhishi run --question-field F`
//! fills it), which the runner sends to the errors file.
use std::path::PathBuf;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::doc::Document;
use crate::stages::registry::{ModelStageKind, StageInfo};
use crate::stages::{Field, Stage, StageError};

use super::config::DecodeOptions;
use super::QaModel;

/// `[qa]` options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QaStageOptions {
    /// A model directory written by `zhishi train` on a `kind = "qa"` config (its `best/`).
    pub model: PathBuf,
    /// Answers kept per question, best first.
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Longest answer in tokens (default: the model's).
    #[serde(default)]
    pub max_answer_len: Option<usize>,
    /// Answers whose score (their probability among the question's n-best candidate spans)
    /// is below this are dropped (0 to 1).
    #[serde(default, deserialize_with = "crate::config::range::unit_f32")]
    pub min_score: f32,
}

fn default_top_k() -> usize {
    1
}

/// Answers questions about the document text.
pub struct QaStage {
    model: QaModel,
    top_k: usize,
    min_score: f32,
    /// The instance's name in `[pipeline] stages`.
    instance: String,
}

fn stage_error(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StageError {
    StageError::new("qa", source)
}

impl QaStage {
    /// Loads the trained model onto `device` with the dense layers' arithmetic `precision`.
    pub fn load(
        opts: &QaStageOptions,
        device: &Device,
        precision: crate::model::Precision,
    ) -> Result<Self, StageError> {
        let mut model = QaModel::load_at(&opts.model, device, precision).map_err(stage_error)?;
        if let Some(max_answer_len) = opts.max_answer_len {
            let decode = DecodeOptions {
                max_answer_len,
                ..model.meta().decode
            };
            model = model.with_decode(decode);
        }
        Ok(Self {
            model,
            top_k: opts.top_k.max(1),
            min_score: opts.min_score,
            instance: "qa".into(),
        })
    }

    /// The same stage under the instance name `instance` (`[pipeline] stages`).
    pub fn named(mut self, instance: &str) -> Self {
        self.instance = instance.to_string();
        self
    }
}

impl Stage for QaStage {
    fn name(&self) -> &str {
        &self.instance
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), StageError> {
        let pairs = docs
            .iter()
            .map(|d| match &d.question {
                Some(q) => Ok((q.as_str(), d.text.as_str())),
                None => Err(stage_error(format!(
                    "document {}has no question (pass --question-field FIELD to zhishi run)",
                    d.id.as_deref()
                        .map_or(String::new(), |id| format!("{id:?} "))
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let answers = self
            .model
            .predict(&pairs, self.top_k)
            .map_err(|e| StageError::new(&self.instance, e))?;
        for (doc, mut answers) in docs.iter_mut().zip(answers) {
            answers.retain(|a| a.score >= self.min_score);
            doc.add_answers(answers, self.top_k, &self.instance);
        }
        Ok(())
    }
}

/// The `qa` stage kind, registered in [`crate::stages::registry::REGISTRY`].
pub static KIND: ModelStageKind<QaStageOptions> = ModelStageKind::new(
    StageInfo {
        name: "qa",
        summary:
            "extractive answers to each document's `question` from its text, from a trained model",
        reads: &[],
        produces: &[Field::Answers],
        needs_kg: false,
    },
    |_| Vec::new(),
    |opts, ctx| {
        Ok(Box::new(
            QaStage::load(opts, ctx.device, ctx.precision)?.named(ctx.instance),
        ))
    },
);
