//! The `segment` stage: jieba words with POS tags and character offsets into `tokens`.
use std::sync::Arc;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::doc::{Document, Token};
use crate::stages::registry::{self, OptionsError, StageContext, StageInfo, StageKind};
use crate::stages::{Field, Stage, StageError};
use crate::text::KgLinker;
use crate::text::{KnowledgeSource, SegmentOptions, Segmenter};

/// `[segment]` options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentStageOptions {
    /// Let jieba's HMM join words missing from its dictionary.
    pub hmm: bool,
    /// Tag each token with its part of speech.
    pub pos: bool,
    /// Add every KG name as a user word so entity names stay whole (needs `[kg]`).
    pub kg_words: bool,
    /// A user dictionary in jieba's format (`word [frequency] [tag]` a line), relative to the
    /// TOML file. The stage then segments with its own jieba (the `link` stage keeps the
    /// linker's segmentation, without these words).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_dict: Option<std::path::PathBuf>,
}

impl Default for SegmentStageOptions {
    fn default() -> Self {
        Self {
            hmm: true,
            pos: true,
            kg_words: true,
            user_dict: None,
        }
    }
}

/// Where the stage's segmenter lives: its own, or the linker's when their options agree (so a
/// KG's names are added to jieba once).
enum SegmenterRef {
    Own(Box<Segmenter>),
    Linker(Arc<KgLinker>),
}

/// Segments each document into `tokens`.
pub struct SegmentStage {
    segmenter: SegmenterRef,
    pos: bool,
}

impl SegmentStage {
    /// Builds the stage, sharing `linker`'s segmenter when it was built with the same HMM and
    /// KG-word settings, else building one (adding `kg`'s names when `kg_words`).
    pub fn new(
        opts: &SegmentStageOptions,
        kg: Option<&Arc<dyn KnowledgeSource>>,
        linker: Option<&Arc<KgLinker>>,
    ) -> Result<Self, StageError> {
        let kg_words = opts.kg_words && kg.is_some();
        if let Some(linker) = linker.filter(|_| opts.user_dict.is_none()) {
            let link = linker.options();
            if link.hmm == opts.hmm && link.kg_user_words == kg_words {
                return Ok(Self {
                    segmenter: SegmenterRef::Linker(Arc::clone(linker)),
                    pos: opts.pos,
                });
            }
        }
        let mut segmenter = Segmenter::new(SegmentOptions {
            hmm: opts.hmm,
            ..SegmentOptions::default()
        });
        if let (true, Some(kg)) = (kg_words, kg) {
            let mut names = Vec::new();
            kg.for_each_name(&mut |name, _| names.push(name.to_string()))
                .map_err(|e| StageError::new("segment", e))?;
            segmenter.add_words(names.iter().map(String::as_str));
        }
        if let Some(path) = &opts.user_dict {
            segmenter
                .load_user_dict(path)
                .map_err(|e| StageError::new("segment", e))?;
        }
        Ok(Self {
            segmenter: SegmenterRef::Own(Box::new(segmenter)),
            pos: opts.pos,
        })
    }

    fn segmenter(&self) -> &Segmenter {
        match &self.segmenter {
            SegmenterRef::Own(s) => s,
            SegmenterRef::Linker(l) => l.segmenter(),
        }
    }
}

impl Stage for SegmentStage {
    fn name(&self) -> &'static str {
        "segment"
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), StageError> {
        let segmenter = self.segmenter();
        docs.par_iter_mut().for_each(|doc| {
            doc.tokens = segmenter
                .segment(&doc.text, self.pos)
                .into_iter()
                .map(|t| Token {
                    text: t.text.to_string(),
                    start: t.start,
                    end: t.end,
                    pos: t.pos,
                })
                .collect();
        });
        Ok(())
    }

    fn yields_linker_tokens(&self) -> bool {
        match &self.segmenter {
            SegmenterRef::Linker(linker) => self.pos || linker.options().exclude_pos.is_empty(),
            SegmenterRef::Own(_) => false,
        }
    }
}

/// The `segment` stage kind.
pub struct SegmentKind;

/// Registered in [`crate::stages::registry::REGISTRY`].
pub static KIND: SegmentKind = SegmentKind;

impl StageKind for SegmentKind {
    fn info(&self) -> StageInfo {
        StageInfo {
            name: "segment",
            summary: "jieba words with POS tags and character offsets (KG names stay whole with a `[kg]`)",
            reads: &[],
            produces: &[Field::Tokens],
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
        registry::options::<SegmentStageOptions>("segment", table.as_deref())?;
        registry::resolve_path("segment", "user_dict", table, resolve)
    }

    fn build(
        &self,
        table: Option<&toml::Value>,
        ctx: &StageContext<'_>,
    ) -> Result<Box<dyn Stage>, StageError> {
        let opts = registry::options::<SegmentStageOptions>("segment", table)
            .map_err(|e| StageError::new("segment", e))?;
        Ok(Box::new(SegmentStage::new(&opts, ctx.kg, ctx.linker)?))
    }
}
