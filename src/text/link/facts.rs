//! Fact selection for knowledge injection: a linked entity's triples ranked against the text
//! around its mention ([`fact_context`]), by [`Linker::select_knowledge`] and
//! [`Linker::select_facts`].
use rustc_hash::FxHashSet;

use super::{EntityRef, LinkError, LinkedMention, Linker, RankedFact};
use crate::kg::source::KnowledgeSource;
use crate::text::disambiguate::SentenceChars;
use crate::text::normalize::{normalize, normalize_key};

impl<S: KnowledgeSource> Linker<S> {
    /// The triples of a linked entity ranked by relevance to the text around the mention
    /// ([`fact_context`] of `text`), best `k` first. Alias triples that only repeat the
    /// mention are skipped; ties keep store order.
    pub fn select_knowledge(
        &self,
        text: &str,
        mention: &LinkedMention,
        k: usize,
    ) -> Result<Vec<RankedFact>, LinkError> {
        let context = fact_context(text, mention.start, mention.end);
        self.select_facts(context, &mention.text, &mention.entity, k)
    }

    /// [`Linker::select_knowledge`] for a mention known only by its surface text and entity
    /// (e.g. one read back from a serialised document).
    pub fn select_facts(
        &self,
        text: &str,
        mention_text: &str,
        entity: &EntityRef,
        k: usize,
    ) -> Result<Vec<RankedFact>, LinkError> {
        let norm = self.opts.normalize;
        let sentence = SentenceChars::new(normalize(text, norm).as_str());
        let mention_key = normalize_key(mention_text, norm);
        let entity_key = normalize_key(&entity.name, norm);
        let facts = self.source.facts(entity.id, 4096)?;
        let mut seen = FxHashSet::default();
        let mut ranked: Vec<(usize, RankedFact)> = Vec::new();
        for (i, fact) in facts.into_iter().enumerate() {
            let object_key = normalize_key(&fact.object, norm);
            if object_key == mention_key || object_key == entity_key {
                continue;
            }
            if !seen.insert((fact.predicate.clone(), object_key)) {
                continue;
            }
            let score = sentence.fact_relevance(&fact.predicate, &fact.object, &mention_key, norm);
            ranked.push((
                i,
                RankedFact {
                    predicate: fact.predicate,
                    object: fact.object,
                    score,
                },
            ));
        }
        ranked.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
        Ok(ranked.into_iter().take(k).map(|(_, kn)| kn).collect())
    }
}

/// Characters on each side of a mention that its facts are ranked against.
pub const FACT_CONTEXT_CHARS: usize = 256;

/// The text a mention's facts are ranked against: up to [`FACT_CONTEXT_CHARS`] characters on
/// each side of the mention at bytes `start..end` (the whole text when it is that short).
/// Costs O(window), so ranking every mention's facts stays linear in the document's length.
pub fn fact_context(text: &str, start: usize, end: usize) -> &str {
    let before = &text[..start];
    let from = before
        .char_indices()
        .rev()
        .nth(FACT_CONTEXT_CHARS - 1)
        .map_or(0, |(b, _)| b);
    let after = &text[end..];
    let to = after
        .char_indices()
        .nth(FACT_CONTEXT_CHARS)
        .map_or(text.len(), |(b, _)| end + b);
    &text[from..to]
}
