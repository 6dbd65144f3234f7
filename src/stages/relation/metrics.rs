//! Relation-extraction metrics: micro precision, recall and F1 over the relation labels (the
//! no-relation label is neither a gold nor a predicted relation), per-label counts, and
//! accuracy over all pairs (no-relation included).
use std::collections::BTreeMap;

use serde::Serialize;

/// Precision, recall and F1 with the counts they come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LabelScore {
    /// Correct / predicted.
    pub precision: f64,
    /// Correct / gold.
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// Pairs with this gold label.
    pub gold: usize,
    /// Pairs predicted with this label.
    pub predicted: usize,
    /// Pairs predicted with their gold label.
    pub correct: usize,
}

impl LabelScore {
    fn new(gold: usize, predicted: usize, correct: usize) -> Self {
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let (precision, recall) = (ratio(correct, predicted), ratio(correct, gold));
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        Self {
            precision,
            recall,
            f1,
            gold,
            predicted,
            correct,
        }
    }
}

/// What `zhishi eval` prints for relation extraction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelationMetrics {
    /// Micro F1 over relation labels.
    pub f1: f64,
    /// Micro precision over relation labels.
    pub precision: f64,
    /// Micro recall over relation labels.
    pub recall: f64,
    /// Fraction of pairs whose predicted label (no-relation included) is the gold one.
    pub accuracy: f64,
    /// Pairs evaluated.
    pub examples: usize,
    /// Gold relations (pairs not labelled no-relation).
    pub gold: usize,
    /// Predicted relations.
    pub predicted: usize,
    /// Correctly predicted relations.
    pub correct: usize,
    /// Scores of each relation label.
    pub per_label: BTreeMap<String, LabelScore>,
}

/// Scores predicted label ids against gold ones; `labels[id]` names an id and `no_relation`
/// is the id of the no-relation label.
pub fn score(
    labels: &[String],
    no_relation: u32,
    gold: &[u32],
    predicted: &[u32],
) -> RelationMetrics {
    let k = labels.len();
    let (mut g, mut p, mut c) = (vec![0usize; k], vec![0usize; k], vec![0usize; k]);
    let mut agree = 0;
    for (&gl, &pl) in gold.iter().zip(predicted) {
        g[gl as usize] += 1;
        p[pl as usize] += 1;
        if gl == pl {
            c[gl as usize] += 1;
            agree += 1;
        }
    }
    let relation = |id: usize| id != no_relation as usize;
    let sum = |v: &[usize]| -> usize { (0..k).filter(|&i| relation(i)).map(|i| v[i]).sum() };
    let micro = LabelScore::new(sum(&g), sum(&p), sum(&c));
    let per_label = (0..k)
        .filter(|&i| relation(i))
        .map(|i| (labels[i].clone(), LabelScore::new(g[i], p[i], c[i])))
        .collect();
    let n = gold.len().min(predicted.len());
    RelationMetrics {
        f1: micro.f1,
        precision: micro.precision,
        recall: micro.recall,
        accuracy: if n == 0 { 0.0 } else { agree as f64 / n as f64 },
        examples: n,
        gold: micro.gold,
        predicted: micro.predicted,
        correct: micro.correct,
        per_label,
    }
}
