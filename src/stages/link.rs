//! The `link` stage: KG entity mentions with calibrated scores and candidates into `mentions`.
//! Its TOML table `[link]` is [`crate::text::LinkOptions`].
use std::sync::Arc;

use rayon::prelude::*;

use crate::doc::Document;
use crate::stages::registry::{self, OptionsError, StageContext, StageInfo, StageKind};
use crate::stages::{Field, Stage, StageError};
use crate::text;
use crate::text::KgLinker;

/// Links each document's mentions with a shared linker.
pub struct LinkStage {
    linker: Arc<KgLinker>,
    reuse_tokens: bool,
}

impl LinkStage {
    /// The stage over `linker` (built once per pipeline); it segments every text itself.
    pub fn new(linker: Arc<KgLinker>) -> Self {
        Self {
            linker,
            reuse_tokens: false,
        }
    }

    /// Links the words already in each document's `tokens` instead of segmenting again: for a
    /// pipeline whose `segment` stage ran the linker's own segmenter earlier (the mentions are
    /// then the same as without it; a document whose tokens do not tile its text is segmented).
    pub fn reusing_tokens(mut self, reuse: bool) -> Self {
        self.reuse_tokens = reuse;
        self
    }
}

impl Stage for LinkStage {
    fn name(&self) -> &'static str {
        "link"
    }

    fn process(&self, docs: &mut [Document]) -> Result<(), StageError> {
        docs.par_iter_mut()
            .for_each(|doc| text::link_document(&self.linker, doc, self.reuse_tokens));
        Ok(())
    }
}

/// The `link` stage kind. Its options table `[link]` configures the pipeline's one linker,
/// which the pipeline builds before any stage (the `facts` and `segment` stages share it).
pub struct LinkKind;

/// Registered in [`crate::stages::registry::REGISTRY`].
pub static KIND: LinkKind = LinkKind;

impl StageKind for LinkKind {
    fn info(&self) -> StageInfo {
        StageInfo {
            name: "link",
            summary: "KG entity mentions with calibrated scores and candidates",
            reads: &[],
            produces: &[Field::Mentions],
            needs_kg: true,
        }
    }

    fn requires(&self, _: Option<&toml::Value>) -> Result<Vec<Field>, OptionsError> {
        Ok(Vec::new())
    }

    fn check(
        &self,
        table: Option<&mut toml::Value>,
        _: &dyn Fn(&str, &std::path::Path) -> Result<std::path::PathBuf, OptionsError>,
    ) -> Result<(), OptionsError> {
        let opts = registry::options::<text::LinkOptions>("link", table.as_deref())?;
        match opts.problem() {
            Some((key, message)) => Err(OptionsError {
                key: format!("link.{key}"),
                message,
            }),
            None => Ok(()),
        }
    }

    fn build(
        &self,
        _: Option<&toml::Value>,
        ctx: &StageContext<'_>,
    ) -> Result<Box<dyn Stage>, StageError> {
        let linker = ctx.linker.ok_or_else(|| {
            StageError::new("link", "needs the pipeline's knowledge graph ([kg])")
        })?;
        let reuse = ctx.earlier.iter().any(|s| s.yields_linker_tokens());
        Ok(Box::new(
            LinkStage::new(Arc::clone(linker)).reusing_tokens(reuse),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Token;
    use crate::text::{KnowledgeSource, LinkOptions, Linker, MemoryKg};

    #[test]
    fn reusing_tokens_links_the_words_the_document_holds() {
        let kg: Arc<dyn KnowledgeSource> =
            Arc::new(MemoryKg::from_triples([("天安", "类别", "地名")]));
        // No POS filter: these words carry no tags, which a filter would need.
        let opts = LinkOptions {
            nil_threshold: 0.0,
            exclude_pos: Vec::new(),
            ..LinkOptions::default()
        };
        let linker = Arc::new(Linker::build(kg, opts).unwrap());
        let mut doc = Document::new("我爱北京天安门");
        let mut start = 0;
        for word in ["我", "爱", "北京", "天安", "门"] {
            let end = start + word.chars().count();
            doc.tokens.push(Token {
                text: word.into(),
                start,
                end,
                pos: None,
            });
            start = end;
        }
        let mut docs = vec![doc.clone()];
        LinkStage::new(Arc::clone(&linker))
            .process(&mut docs)
            .unwrap();
        assert!(docs[0].mentions.is_empty(), "jieba keeps 天安门 whole");
        let mut docs = vec![doc];
        LinkStage::new(linker)
            .reusing_tokens(true)
            .process(&mut docs)
            .unwrap();
        let found: Vec<&str> = docs[0].mentions.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(found, ["天安"]);
    }
}
