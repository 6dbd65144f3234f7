//! The `ner` pipeline stage: named entities from a trained [`NerModel`] into `entities`.
use std::path::PathBuf;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::doc::Document;
use crate::stages::registry::{ModelStageKind, StageInfo};
use crate::stages::{Field, Stage, StageError};

use super::NerModel;

/// `[ner]` options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NerStageOptions {
    /// A model directory written by `zhishi train` on a `kind = "ner"` config (its `best/`).
    pub model: PathBuf,
}

/// Tags named entities.
pub struct NerStage {
    model: NerModel,
}

impl NerStage {
    /// Loads the trained model onto `device`.
    pub fn load(opts: &NerStageOptions, device: &Device) -> Result<Self, StageError> {
        let model =
            NerModel::load_on(&opts.model, device).map_err(|e| StageError::new("ner", e))?;
        Ok(Self { model })
    }
}

impl Stage for NerStage {
    fn name(&self) -> &'static str {
        "ner"
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), StageError> {
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let entities = self
            .model
            .predict(&texts)
            .map_err(|e| StageError::new("ner", e))?;
        for (doc, entities) in docs.iter_mut().zip(entities) {
            doc.entities = entities;
        }
        Ok(())
    }
}

/// The `ner` stage kind, registered in [`crate::stages::registry::REGISTRY`].
pub static KIND: ModelStageKind<NerStageOptions> = ModelStageKind::new(
    StageInfo {
        name: "ner",
        summary: "named entities (BIO/BMES spans with labels) from a trained NER model",
        reads: &[],
        produces: &[Field::Entities],
        needs_kg: false,
    },
    |_| Vec::new(),
    |opts, device| Ok(Box::new(NerStage::load(opts, device)?)),
);
