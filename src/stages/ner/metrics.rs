//! Entity-level evaluation: a predicted entity counts only when its span and type both equal a
//! gold entity's. Micro precision/recall/F1 over all entities, and the same per type; with
//! the entities' scores, the calibration of those scores and the scores at `min_score`
//! thresholds.
use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::stages::calibration::Calibration;

/// Precision, recall and F1 with the counts behind them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Prf {
    /// Correct / predicted.
    pub precision: f64,
    /// Correct / gold.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1: f64,
    /// Gold entities.
    pub gold: usize,
    /// Predicted entities.
    pub predicted: usize,
    /// Predicted entities that are gold.
    pub correct: usize,
}

impl Prf {
    /// The scores of `correct` right predictions among `predicted`, against `gold`.
    pub fn from_counts(correct: usize, predicted: usize, gold: usize) -> Self {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (p, r) = (ratio(correct, predicted), ratio(correct, gold));
        let f1 = if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        };
        Self {
            precision: p,
            recall: r,
            f1,
            gold,
            predicted,
            correct,
        }
    }
}

/// Micro scores and per-type scores of a corpus.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NerMetrics {
    /// Over all entities.
    #[serde(flatten)]
    pub micro: Prf,
    /// By entity type.
    pub per_type: BTreeMap<String, Prf>,
    /// The calibration of the predicted entities' scores (a prediction is right when it is
    /// gold: span and type); evaluation only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
    /// Micro scores keeping only the entities scored at least some `min_score` (as the
    /// `[ner]` stage's option would); evaluation only.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub at_min_score: Vec<AtMinScore>,
}

/// Micro scores of the entities scored at least `min_score`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AtMinScore {
    /// The threshold.
    pub min_score: f64,
    /// The scores of the entities kept.
    #[serde(flatten)]
    pub scores: Prf,
}

/// Accumulates gold and predicted spans sentence by sentence.
#[derive(Debug, Clone, Default)]
pub struct SpanCounter {
    counts: BTreeMap<String, (usize, usize, usize)>,
}

impl SpanCounter {
    /// Adds one sentence's gold and predicted spans `(start, end, type)`.
    pub fn add(&mut self, gold: &[(usize, usize, String)], predicted: &[(usize, usize, String)]) {
        let gold_set: HashSet<&(usize, usize, String)> = gold.iter().collect();
        let pred_set: HashSet<&(usize, usize, String)> = predicted.iter().collect();
        for g in &gold_set {
            self.counts.entry(g.2.clone()).or_default().2 += 1;
        }
        for p in &pred_set {
            let c = self.counts.entry(p.2.clone()).or_default();
            c.1 += 1;
            if gold_set.contains(p) {
                c.0 += 1;
            }
        }
    }

    /// The scores so far.
    pub fn metrics(&self) -> NerMetrics {
        let (mut c, mut p, mut g) = (0, 0, 0);
        let mut per_type = BTreeMap::new();
        for (kind, &(tc, tp, tg)) in &self.counts {
            c += tc;
            p += tp;
            g += tg;
            per_type.insert(kind.clone(), Prf::from_counts(tc, tp, tg));
        }
        NerMetrics {
            micro: Prf::from_counts(c, p, g),
            per_type,
            ..NerMetrics::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(start: usize, end: usize, kind: &str) -> (usize, usize, String) {
        (start, end, kind.to_string())
    }

    #[test]
    fn exact_span_and_type_count() {
        let mut c = SpanCounter::default();
        // Sentence 1: one right, one wrong type, one missed.
        c.add(
            &[s(0, 2, "PER"), s(3, 5, "LOC"), s(6, 7, "ORG")],
            &[s(0, 2, "PER"), s(3, 5, "ORG")],
        );
        // Sentence 2: one right, one boundary error.
        c.add(
            &[s(0, 3, "LOC"), s(4, 6, "PER")],
            &[s(0, 3, "LOC"), s(4, 5, "PER")],
        );
        let m = c.metrics();
        // 2 correct of 4 predicted and 5 gold: P 0.5, R 0.4, F1 = 2·0.5·0.4/0.9 = 4/9.
        assert_eq!(
            (m.micro.correct, m.micro.predicted, m.micro.gold),
            (2, 4, 5)
        );
        assert!((m.micro.precision - 0.5).abs() < 1e-12);
        assert!((m.micro.recall - 0.4).abs() < 1e-12);
        assert!((m.micro.f1 - 4.0 / 9.0).abs() < 1e-12);
        let per = &m.per_type;
        assert_eq!(
            (per["PER"].correct, per["PER"].predicted, per["PER"].gold),
            (1, 2, 2)
        );
        assert_eq!(
            (per["ORG"].correct, per["ORG"].predicted, per["ORG"].gold),
            (0, 1, 1)
        );
        assert_eq!(per["LOC"].recall, 0.5);
        assert_eq!(per["LOC"].precision, 1.0);
    }
}
