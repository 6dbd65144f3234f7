//! The entity linker: finds KG names in text (respecting word boundaries),
//! adds fuzzy candidates, scores every candidate with the calibrated model of
//! `disambiguate.rs`, drops weak links (NIL) and resolves overlaps.
//!
//! A [`Linker`] is built once from a [`KnowledgeSource`] and is `Send + Sync`;
//! `link` takes `&self`, so one linker serves any number of threads.
mod detect;
mod facts;
mod mention;
mod options;
mod overlap;
mod score;

use rayon::prelude::*;
use rustc_hash::{FxHashMap, FxHashSet};

pub use facts::{fact_context, FACT_CONTEXT_CHARS};
pub use mention::{Candidate, EntityRef, LinkedMention, RankedFact};
pub use options::{LinkOptions, OverlapPolicy, FUNCTION_WORD_TAGS};

use super::candidates::{IndexError, NameIndex};
use super::disambiguate::{rarity, EntityProfile, ProfileTable, PROFILE_FACTS};
use super::normalize::{normalize, Normalized};
use super::segment::{NormToken, SegmentOptions, Segmenter};
use crate::kg::source::{
    derived_aliases, EntityId, EntityInfo, Fact, KnowledgeSource, SourceError,
};
use detect::{sentence_windows, tile_words};
use mention::to_mentions;
use overlap::resolve_overlaps;
use score::UnitVectors;

/// Failure building a linker.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The knowledge graph could not be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The name automaton could not be built.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// An option is out of its range (`link.KEY` and what was expected).
    #[error("link.{key}: {message}")]
    Options {
        /// The option's key in `[link]`.
        key: &'static str,
        /// What was expected.
        message: String,
    },
}

/// The entity linker.
pub struct Linker<S> {
    source: S,
    opts: LinkOptions,
    segmenter: Segmenter,
    index: NameIndex,
    profiles: ProfileTable,
    /// TransE entity vectors scaled to unit length, when the KG has them.
    vectors: Option<UnitVectors>,
}

impl<S> std::fmt::Debug for Linker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Linker")
            .field("names", &self.index.len())
            .field("entities", &self.profiles.len())
            .field("embeddings", &self.vectors.is_some())
            .field("opts", &self.opts)
            .finish()
    }
}

impl<S: KnowledgeSource> Linker<S> {
    /// Builds the linker: reads every name and each named entity's facts once.
    pub fn build(source: S, opts: LinkOptions) -> Result<Self, LinkError> {
        if let Some((key, message)) = opts.problem() {
            return Err(LinkError::Options { key, message });
        }
        let mut names: Vec<(String, EntityId)> = Vec::new();
        source.for_each_name(&mut |name, id| {
            names.push((name.to_string(), id));
            for alias in derived_aliases(name) {
                names.push((alias, id));
            }
        })?;
        let mut ids: Vec<EntityId> = names.iter().map(|(_, id)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let norm = opts.normalize;
        type Facts = (EntityId, EntityInfo, Vec<Fact>);
        let entities: Result<Vec<Facts>, SourceError> = ids
            .par_iter()
            .filter_map(|&id| match source.entity(id) {
                Ok(Some(info)) => Some(source.facts(id, PROFILE_FACTS).map(|f| (id, info, f))),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            })
            .collect();
        let entities = entities?;
        // How many profiled entities have each predicate and each object,
        // for the rarity weights of context overlap.
        let mut predicate_holders: FxHashMap<&str, usize> = FxHashMap::default();
        let mut object_holders: FxHashMap<EntityId, usize> = FxHashMap::default();
        for (_, _, facts) in &entities {
            let mut seen_p = FxHashSet::default();
            let mut seen_o = FxHashSet::default();
            for f in facts {
                if seen_p.insert(f.predicate.as_str()) {
                    *predicate_holders.entry(f.predicate.as_str()).or_default() += 1;
                }
                if seen_o.insert(f.object_id) {
                    *object_holders.entry(f.object_id).or_default() += 1;
                }
            }
        }
        let n = entities.len();
        let weight = |f: &Fact| {
            (
                rarity(
                    predicate_holders
                        .get(f.predicate.as_str())
                        .copied()
                        .unwrap_or(0),
                    n,
                ),
                rarity(object_holders.get(&f.object_id).copied().unwrap_or(0), n),
            )
        };
        let profiles: Vec<(EntityId, EntityProfile)> = entities
            .par_iter()
            .map(|(id, info, facts)| {
                let profile =
                    EntityProfile::weighted(&info.name, info.degree, facts, norm, &weight);
                (*id, profile)
            })
            .collect();
        let profiles = ProfileTable::new(profiles);
        let vectors = source.embeddings()?.map(UnitVectors::new);
        names.retain(|(_, id)| profiles.get(*id).is_some());

        let mut segmenter = Segmenter::new(SegmentOptions {
            hmm: opts.hmm,
            normalize: norm,
        });
        if opts.kg_user_words {
            segmenter.add_words(names.iter().map(|(n, _)| n.as_str()));
        }
        let index = NameIndex::build(names, norm, opts.fuzzy)?;
        Ok(Linker {
            source,
            opts,
            segmenter,
            index,
            profiles,
            vectors,
        })
    }

    /// The knowledge source the linker was built from.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The options the linker runs with.
    pub fn options(&self) -> &LinkOptions {
        &self.opts
    }

    /// The segmenter (jieba plus the KG names when `kg_user_words`).
    pub fn segmenter(&self) -> &Segmenter {
        &self.segmenter
    }

    /// Number of distinct normalised names the linker matches.
    pub fn name_count(&self) -> usize {
        self.index.len()
    }

    /// Finds and links the mentions of `text`, in text order.
    pub fn link(&self, text: &str) -> Vec<LinkedMention> {
        let norm = normalize(text, self.opts.normalize);
        if norm.as_str().is_empty() || self.index.is_empty() {
            return Vec::new();
        }
        let tokens = self.segment(&norm);
        self.link_segmented(text, &norm, &tokens)
    }

    /// [`Linker::link`] for a text already cut into `words` (each with its POS tag, if tagged),
    /// e.g. by a pipeline's `segment` stage running this linker's [`Linker::segmenter`]: the
    /// words are the text's own slices in order, as [`Segmenter::segment`] returns them, and
    /// their boundaries are the word boundaries mentions respect. Linking then skips its own
    /// segmentation. Words that do not tile the text (whitespace aside, when the linker strips
    /// it), or that lack the POS tags `exclude_pos` needs, are ignored and the text is
    /// segmented as [`Linker::link`] does.
    pub fn link_words<'w>(
        &self,
        text: &str,
        words: impl IntoIterator<Item = (&'w str, Option<&'w str>)>,
    ) -> Vec<LinkedMention> {
        let norm = normalize(text, self.opts.normalize);
        if norm.as_str().is_empty() || self.index.is_empty() {
            return Vec::new();
        }
        let need_pos = !self.opts.exclude_pos.is_empty();
        let tokens = tile_words(norm.as_str(), self.opts.normalize, words, need_pos)
            .unwrap_or_else(|| self.segment(&norm));
        self.link_segmented(text, &norm, &tokens)
    }

    /// The linker's own segmentation of a normalised text (tagged when `exclude_pos` needs it).
    fn segment<'s>(&'s self, norm: &'s Normalized) -> Vec<NormToken<'s>> {
        self.segmenter
            .segment_normalized(norm.as_str(), !self.opts.exclude_pos.is_empty())
    }

    /// Links the normalised text `norm` of `text`, cut into `tokens`.
    fn link_segmented(
        &self,
        text: &str,
        norm: &Normalized,
        tokens: &[NormToken<'_>],
    ) -> Vec<LinkedMention> {
        let s = norm.as_str();
        let sentences = sentence_windows(s, tokens);
        let raws = self.detect(s, tokens, &sentences);
        let mut scored = self.score(s, &sentences, raws);
        scored.retain(|m| m.cands[0].score >= self.opts.nil_threshold);
        let kept = resolve_overlaps(scored, self.opts.overlap);
        let mut mentions = to_mentions(text, norm, kept);
        for m in &mut mentions {
            for c in &mut m.candidates {
                if let Some(p) = self.profiles.get(c.id) {
                    c.name = p.name.to_string();
                }
            }
            m.entity.name = m.candidates[0].name.clone();
        }
        mentions
    }

    /// Whether the linker found TransE vectors for coherence.
    pub fn has_embeddings(&self) -> bool {
        self.vectors.is_some()
    }
}
