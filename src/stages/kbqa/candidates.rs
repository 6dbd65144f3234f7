//! CandidateTriple answers of a question: its best linked mentions (what the pipeline's `link` stage
//! wrote into the document), their best candidate entities, and every outgoing triple of those
//! entities read from the pipeline's KG, each with hand-made features saying how well the
//! triple fits the question (link score, predicate/question character overlap, answer already
//! in the question, ...). The encoder similarity is filled in later by the model.
use rustc_hash::FxHashSet;

use crate::doc::{Mention, Triple};
use crate::text::{KnowledgeSource, SourceError};

use super::config::CandidateOptions;

/// Names of the features, in vector order (saved with the model).
pub const FEATURES: [&str; N_FEATURES] = [
    "link_score",
    "top_candidate",
    "best_mention",
    "mention_rank",
    "mention_chars",
    "name_is_mention",
    "predicate_coverage",
    "predicate_in_question",
    "predicate_common_substring",
    "predicate_common_chars",
    "object_in_question",
    "object_coverage",
    "entity_facts",
    "encoder_cosine",
];

/// Number of features per candidate.
pub const N_FEATURES: usize = 14;

/// Index of the linker's score of the subject entity.
pub const LINK_SCORE: usize = 0;

/// Index of the encoder cosine feature (filled by the model, not here).
pub const COSINE: usize = 13;

/// A candidate triple with its features.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateTriple {
    /// Index into [`Gathered::mentions`] of the mention whose entity is the subject.
    pub mention: usize,
    /// The subject entity's store id.
    pub entity: u32,
    /// The triple; its object is the proposed answer.
    pub triple: Triple,
    /// Feature values, in [`FEATURES`] order.
    pub features: [f32; N_FEATURES],
}

/// The mentions considered for a question and the candidates they produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Gathered {
    /// Character spans of the mentions used, best first.
    pub mentions: Vec<(usize, usize)>,
    /// CandidateTriple triples, grouped by mention then candidate entity, in store order.
    pub candidates: Vec<CandidateTriple>,
}

/// The triples in `kg` of the best candidates of `question`'s best `mentions` (linked over
/// the question's text), with their features.
pub fn gather<S: KnowledgeSource + ?Sized>(
    kg: &S,
    question: &str,
    mentions: &[Mention],
    opts: &CandidateOptions,
) -> Result<Gathered, SourceError> {
    let mut mentions: Vec<&Mention> = mentions.iter().collect();
    mentions.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    mentions.truncate(opts.mentions);
    let chars: Vec<char> = question.chars().collect();
    let mut out = Gathered::default();
    let mut seen = FxHashSet::default();
    for (rank, m) in mentions.iter().enumerate() {
        let span = (m.start, m.end);
        let rest: String = chars
            .iter()
            .enumerate()
            .filter(|(i, _)| *i < span.0 || *i >= span.1)
            .map(|(_, c)| *c)
            .collect();
        let rest = fold(&rest);
        let whole = fold(question);
        let index = out.mentions.len();
        out.mentions.push(span);
        for (crank, c) in m.candidates.iter().take(opts.candidates).enumerate() {
            if !seen.insert((c.id, span)) {
                continue;
            }
            let facts = kg.facts(c.id, opts.max_facts)?;
            let n_facts = facts.len();
            for fact in facts {
                let predicate = fold(&fact.predicate);
                let object = fold(&fact.object);
                let mut f = [0f32; N_FEATURES];
                f[LINK_SCORE] = c.score;
                f[1] = (crank == 0) as u8 as f32;
                f[2] = (rank == 0) as u8 as f32;
                f[3] = rank as f32;
                f[4] = (m.end - m.start) as f32 / 8.0;
                f[5] = (fold(&c.name) == fold(&m.text)) as u8 as f32;
                f[6] = coverage(&predicate, &rest);
                f[7] = (!predicate.is_empty() && rest.contains(&predicate)) as u8 as f32;
                let common = longest_common_substring(&predicate, &rest) as f32;
                f[8] = common / predicate.chars().count().max(1) as f32;
                f[9] = common.min(6.0) / 3.0;
                f[10] = (!object.is_empty() && whole.contains(&object)) as u8 as f32;
                f[11] = coverage(&object, &rest);
                f[12] = (1.0 + n_facts as f32).ln();
                out.candidates.push(CandidateTriple {
                    mention: index,
                    entity: c.id,
                    triple: Triple {
                        subject: c.name.clone(),
                        predicate: fact.predicate,
                        object: fact.object,
                    },
                    features: f,
                });
            }
        }
    }
    Ok(out)
}

/// Lower-cases and drops whitespace, so `ISBN` matches `isbn` and `作 者` matches `作者`.
fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Fraction of the distinct characters of `part` that occur in `text`.
fn coverage(part: &str, text: &str) -> f32 {
    let distinct: FxHashSet<char> = part.chars().collect();
    if distinct.is_empty() {
        return 0.0;
    }
    let hits = distinct.iter().filter(|c| text.contains(**c)).count();
    hits as f32 / distinct.len() as f32
}

/// Length in characters of the longest common substring of `a` and `b`.
fn longest_common_substring(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev = vec![0usize; b.len() + 1];
    let mut best = 0;
    for ca in &a {
        let mut cur = vec![0usize; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            if ca == cb {
                cur[j + 1] = prev[j] + 1;
                best = best.max(cur[j + 1]);
            }
        }
        prev = cur;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_measures_on_a_real_question() {
        let rest = fold("这本书的作者是谁？");
        assert_eq!(longest_common_substring("作者", &rest), 2);
        assert_eq!(longest_common_substring("出版社", &rest), 0);
        assert_eq!(coverage("作品", &rest), 0.5);
        assert_eq!(fold("ISBN 号"), "isbn号");
    }
}
