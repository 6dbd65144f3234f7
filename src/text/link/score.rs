//! Scoring: calibrated features for every candidate of a detected mention, coherence
//! between the mentions of one sentence window (shared KG edges, else TransE vectors), and
//! the scored mentions that overlap resolution and output work on.
use super::detect::Raw;
use super::{Candidate, Linker};
use crate::kg::source::{EntityId, KnowledgeSource};
use crate::kg::transe::TransE;
use crate::text::candidates::MatchKind;
use crate::text::disambiguate::{Features, SentenceChars};

/// TransE entity vectors scaled to unit length, so relatedness is a dot product.
pub(super) struct UnitVectors {
    dim: usize,
    rows: Vec<f32>,
}

impl UnitVectors {
    pub(super) fn new(model: TransE) -> Self {
        let dim = model.dim.max(1);
        let mut rows = model.entity;
        for row in rows.chunks_mut(dim) {
            let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|x| *x /= norm);
            }
        }
        UnitVectors { dim, rows }
    }

    /// Cosine of the two entities' vectors clamped at 0; 0 if either has none.
    fn relatedness(&self, a: EntityId, b: EntityId) -> f32 {
        let row = |id: EntityId| {
            self.rows
                .get(id as usize * self.dim..(id as usize + 1) * self.dim)
        };
        match (row(a), row(b)) {
            (Some(x), Some(y)) => x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>().max(0.0),
            _ => 0.0,
        }
    }
}

/// A scored mention in normalised coordinates.
pub(super) struct Scored {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) chars: usize,
    pub(super) cands: Vec<Candidate>,
}

impl<S: KnowledgeSource> Linker<S> {
    /// Features and calibrated scores for every candidate, coherence included.
    pub(super) fn score(
        &self,
        s: &str,
        sentences: &[(usize, usize)],
        raws: Vec<Raw>,
    ) -> Vec<Scored> {
        let contexts: Vec<SentenceChars> = sentences
            .iter()
            .map(|&(a, b)| SentenceChars::new(&s[a..b]))
            .collect();
        let w = &self.opts.weights;
        let mut scored: Vec<(usize, Scored)> = Vec::with_capacity(raws.len());
        for raw in raws {
            let mention = &s[raw.start..raw.end];
            let ctx = &contexts[raw.sentence.min(contexts.len().saturating_sub(1))];
            let total: f32 = raw
                .cands
                .iter()
                .filter_map(|(id, _)| self.profiles.get(id))
                .map(|p| p.degree as f32)
                .sum::<f32>()
                .max(1.0);
            let mut cands: Vec<Candidate> = raw
                .cands
                .iter()
                .filter_map(|(id, kind)| {
                    let p = self.profiles.get(id)?;
                    let alias = kind == MatchKind::Exact && &*p.key != mention;
                    let mut f = Features::basic(kind, mention, p.degree, alias);
                    f.prior_share = p.degree as f32 / total;
                    f.crosses_word = raw.crosses as u8 as f32;
                    (f.context_predicate, f.context_object) = ctx.context(p, mention);
                    // The name is filled in for kept mentions only (`to_mentions`).
                    Some(Candidate {
                        id,
                        name: String::new(),
                        score: w.score(&f),
                        kind,
                        features: f,
                    })
                })
                .collect();
            if cands.is_empty() {
                continue;
            }
            sort_candidates(&mut cands);
            cands.truncate(self.opts.max_candidates.max(1));
            scored.push((
                raw.sentence,
                Scored {
                    start: raw.start,
                    end: raw.end,
                    chars: raw.chars,
                    cands,
                },
            ));
        }
        self.add_coherence(&mut scored);
        scored.into_iter().map(|(_, m)| m).collect()
    }

    /// Marks candidates linked in the KG to a candidate of another,
    /// non-overlapping mention of the same sentence window, and rescores them.
    fn add_coherence(&self, scored: &mut [(usize, Scored)]) {
        scored.sort_by_key(|(sent, m)| (*sent, m.start, m.end));
        let w = &self.opts.weights;
        let mut a = 0;
        while a < scored.len() {
            let mut b = a;
            while b < scored.len() && scored[b].0 == scored[a].0 {
                b += 1;
            }
            let group = &mut scored[a..b];
            if group.len() > 1 {
                let mut relatedness: Vec<Vec<f32>> = Vec::with_capacity(group.len());
                for (i, (_, m)) in group.iter().enumerate() {
                    relatedness.push(
                        m.cands
                            .iter()
                            .map(|c| {
                                group
                                    .iter()
                                    .enumerate()
                                    .filter(|(j, (_, o))| {
                                        *j != i && (o.end <= m.start || m.end <= o.start)
                                    })
                                    .flat_map(|(_, (_, o))| o.cands.iter())
                                    .map(|oc| self.related(c.id, oc.id))
                                    .fold(0.0, f32::max)
                            })
                            .collect(),
                    );
                }
                for ((_, m), r) in group.iter_mut().zip(relatedness) {
                    for (c, coh) in m.cands.iter_mut().zip(r) {
                        if coh > 0.0 {
                            c.features.coherence = coh;
                            c.score = w.score(&c.features);
                        }
                    }
                    sort_candidates(&mut m.cands);
                }
            }
            a = b;
        }
    }

    /// Relatedness of two entities in [0, 1]: 1 if they share a KG edge
    /// (either direction), else the cosine of their TransE vectors (clamped
    /// at 0) when the KG has vectors, else 0.
    fn related(&self, a: EntityId, b: EntityId) -> f32 {
        if a == b {
            return 0.0;
        }
        let edge = self.profiles.get(a).is_some_and(|p| p.links_to(b))
            || self.profiles.get(b).is_some_and(|p| p.links_to(a));
        if edge {
            return 1.0;
        }
        self.vectors.as_ref().map_or(0.0, |v| v.relatedness(a, b))
    }
}

fn sort_candidates(cands: &mut [Candidate]) {
    cands.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
}
