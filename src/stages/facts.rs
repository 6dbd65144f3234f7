//! The `facts` stage: for each linked mention, the KG triples most relevant to the sentence
//! (ranked by the linker, not in store order) into `facts` — what K-BERT injects.
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::doc::Document;
use crate::stages::registry::{self, OptionsError, StageContext, StageInfo, StageKind};
use crate::stages::{Field, Stage, StageError};
use crate::text;
use crate::text::KgLinker;

/// `[facts]` options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FactsOptions {
    /// Facts kept per mention, best first.
    pub per_mention: usize,
}

impl Default for FactsOptions {
    fn default() -> Self {
        Self { per_mention: 2 }
    }
}

/// Selects facts for every mention found by the `link` stage.
pub struct FactsStage {
    linker: Arc<KgLinker>,
    opts: FactsOptions,
}

impl FactsStage {
    /// The stage over the pipeline's shared linker.
    pub fn new(linker: Arc<KgLinker>, opts: FactsOptions) -> Self {
        Self { linker, opts }
    }
}

impl Stage for FactsStage {
    fn name(&self) -> &'static str {
        "facts"
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), StageError> {
        docs.par_iter_mut().try_for_each(|doc| {
            doc.facts = text::document_facts(&self.linker, doc, self.opts.per_mention)
                .map_err(|e| StageError::new("facts", e))?;
            Ok(())
        })
    }
}

/// The `facts` stage kind.
pub struct FactsKind;

/// Registered in [`crate::stages::registry::REGISTRY`].
pub static KIND: FactsKind = FactsKind;

impl StageKind for FactsKind {
    fn info(&self) -> StageInfo {
        StageInfo {
            name: "facts",
            summary: "each linked mention's KG triples most relevant to the text around it (what K-BERT injects)",
            reads: &[Field::Mentions],
            produces: &[Field::Facts],
            needs_kg: true,
        }
    }

    fn requires(&self, _: Option<&toml::Value>) -> Result<Vec<Field>, OptionsError> {
        Ok(vec![Field::Mentions])
    }

    fn check(
        &self,
        table: Option<&mut toml::Value>,
        _: &dyn Fn(&str, &std::path::Path) -> Result<std::path::PathBuf, OptionsError>,
    ) -> Result<(), OptionsError> {
        registry::options::<FactsOptions>("facts", table.as_deref()).map(|_| ())
    }

    fn build(
        &self,
        table: Option<&toml::Value>,
        ctx: &StageContext<'_>,
    ) -> Result<Box<dyn Stage>, StageError> {
        let opts = registry::options::<FactsOptions>("facts", table)
            .map_err(|e| StageError::new("facts", e))?;
        let linker = ctx.linker.ok_or_else(|| {
            StageError::new("facts", "needs the pipeline's knowledge graph ([kg])")
        })?;
        Ok(Box::new(FactsStage::new(Arc::clone(linker), opts)))
    }
}
