//! What linking returns: [`LinkedMention`]s with their [`EntityRef`] and scored [`Candidate`]s,
//! the [`RankedFact`] triples selected for a linked entity, and the mapping of scored
//! mentions back to the original text's byte and character offsets.
use serde::Serialize;

use super::score::Scored;
use crate::kg::source::EntityId;
use crate::text::candidates::MatchKind;
use crate::text::disambiguate::Features;
use crate::text::normalize::Normalized;

/// A linked entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntityRef {
    /// Entity id in the store.
    pub id: EntityId,
    /// Canonical name.
    pub name: String,
}

/// One candidate entity of a mention.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Entity id in the store.
    pub id: EntityId,
    /// Canonical name.
    pub name: String,
    /// Calibrated probability that this is the right entity.
    pub score: f32,
    /// How the candidate was found.
    #[serde(rename = "match")]
    pub kind: MatchKind,
    /// The features behind the score (for calibration and debugging).
    #[serde(skip)]
    pub features: Features,
}

/// A mention linked to an entity. `start`/`end` are byte offsets into the
/// input (`&text[start..end] == text`), `char_start`/`char_end` Unicode-scalar offsets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkedMention {
    /// Byte offset of the mention in the input.
    pub start: usize,
    /// Byte end of the mention in the input.
    pub end: usize,
    /// Char offset of the mention.
    pub char_start: usize,
    /// Char end of the mention.
    pub char_end: usize,
    /// The mention as written in the input.
    pub text: String,
    /// The best candidate.
    pub entity: EntityRef,
    /// Score of the best candidate.
    pub score: f32,
    /// Best candidates, best first (at most `max_candidates`).
    pub candidates: Vec<Candidate>,
}

/// A triple of a linked entity, ranked for knowledge injection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankedFact {
    /// Predicate name.
    pub predicate: String,
    /// Object name.
    pub object: String,
    /// Relevance to the sentence (higher first).
    pub score: f32,
}

/// Maps scored mentions back to the original text.
pub(super) fn to_mentions(text: &str, norm: &Normalized, kept: Vec<Scored>) -> Vec<LinkedMention> {
    let mut out = Vec::with_capacity(kept.len());
    let (mut byte_cursor, mut char_cursor) = (0usize, 0usize);
    for m in kept {
        let (start, end) = norm.original_span(m.start, m.end);
        if start >= byte_cursor {
            char_cursor += text[byte_cursor..start].chars().count();
        } else {
            char_cursor -= text[start..byte_cursor].chars().count();
        }
        byte_cursor = start;
        let char_len = text[start..end].chars().count();
        let best = &m.cands[0];
        out.push(LinkedMention {
            start,
            end,
            char_start: char_cursor,
            char_end: char_cursor + char_len,
            text: text[start..end].to_string(),
            entity: EntityRef {
                id: best.id,
                name: best.name.clone(),
            },
            score: best.score,
            candidates: m.cands,
        });
    }
    out
}
