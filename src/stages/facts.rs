//! The `facts` stage: for each linked mention, the KG triples most relevant to the sentence
//! (ranked by the linker, not in store order) into `facts` — what K-BERT injects.
use std::sync::Arc;

use rayon::prelude::*;
use serde::Deserialize;

use crate::doc::{Document, Fact};
use crate::pipeline::{KgLinker, PipelineError, Stage};
use crate::text;

/// `[facts]` options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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

    fn facts_of(&self, doc: &Document) -> Result<Vec<Fact>, PipelineError> {
        let mut out = Vec::new();
        for (index, m) in doc.mentions.iter().enumerate() {
            let entity = text::EntityRef {
                id: m.entity.id,
                name: m.entity.name.clone(),
            };
            let ranked =
                self.linker
                    .select_facts(&doc.text, &m.text, &entity, self.opts.per_mention)?;
            out.extend(ranked.into_iter().map(|k| Fact {
                mention: index,
                subject: m.entity.name.clone(),
                predicate: k.predicate,
                object: k.object,
                score: k.score,
            }));
        }
        Ok(out)
    }
}

impl Stage for FactsStage {
    fn name(&self) -> &'static str {
        "facts"
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), PipelineError> {
        docs.par_iter_mut().try_for_each(|doc| {
            doc.facts = self.facts_of(doc)?;
            Ok(())
        })
    }
}
