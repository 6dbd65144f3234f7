//! The `link` stage: KG entity mentions with calibrated scores and candidates into `mentions`.
//! Its TOML table `[link]` is [`crate::text::LinkOptions`].
use std::sync::Arc;

use rayon::prelude::*;

use crate::doc::{Candidate, Document, EntityRef, Mention};
use crate::pipeline::{KgLinker, PipelineError, Stage};
use crate::text;

/// Links each document's mentions with a shared linker.
pub struct LinkStage {
    linker: Arc<KgLinker>,
}

impl LinkStage {
    /// The stage over `linker` (built once per pipeline).
    pub fn new(linker: Arc<KgLinker>) -> Self {
        Self { linker }
    }
}

impl Stage for LinkStage {
    fn name(&self) -> &'static str {
        "link"
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), PipelineError> {
        docs.par_iter_mut().for_each(|doc| {
            doc.mentions = self
                .linker
                .link(&doc.text)
                .into_iter()
                .map(to_doc)
                .collect();
        });
        Ok(())
    }
}

/// The linker's mention as the document model's.
fn to_doc(m: text::Mention) -> Mention {
    Mention {
        start: m.char_start,
        end: m.char_end,
        text: m.text,
        entity: EntityRef {
            id: m.entity.id,
            name: m.entity.name,
        },
        score: m.score,
        candidates: m
            .candidates
            .into_iter()
            .map(|c| Candidate {
                id: c.id,
                name: c.name,
                score: c.score,
            })
            .collect(),
    }
}
