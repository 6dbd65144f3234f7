//! The `ner` pipeline stage: named entities from a trained [`NerModel`] into `entities`.
use std::path::PathBuf;

use candle_core::Device;
use serde::{Deserialize, Serialize};

use crate::doc::Document;
use crate::stages::registry::{self, OptionsError, StageContext, StageInfo, StageKind};
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

/// The `ner` stage kind.
pub struct NerKind;

/// Registered in [`crate::stages::registry::REGISTRY`].
pub static KIND: NerKind = NerKind;

impl StageKind for NerKind {
    fn info(&self) -> StageInfo {
        StageInfo {
            name: "ner",
            summary: "named entities (BIO/BMES spans with labels) from a trained NER model",
            produces: &[Field::Entities],
            needs_kg: false,
        }
    }

    fn requires(&self, _: Option<&toml::Value>) -> Result<Vec<Field>, OptionsError> {
        Ok(Vec::new())
    }

    fn check(
        &self,
        table: Option<&mut toml::Value>,
        resolve: &dyn Fn(&str, &std::path::Path) -> Result<std::path::PathBuf, OptionsError>,
    ) -> Result<(), OptionsError> {
        registry::required_options::<NerStageOptions>("ner", table.as_deref())?;
        registry::resolve_path("ner", "model", table, resolve)
    }

    fn build(
        &self,
        table: Option<&toml::Value>,
        ctx: &StageContext<'_>,
    ) -> Result<Box<dyn Stage>, StageError> {
        let opts = registry::required_options::<NerStageOptions>("ner", table)
            .map_err(|e| StageError::new("ner", e))?;
        Ok(Box::new(NerStage::load(&opts, ctx.device)?))
    }
}
