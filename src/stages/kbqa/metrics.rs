//! KBQA answer metrics: exact match of the top answer, and character-level precision, recall and
//! F1 of the top answer against the gold answer (bags of characters after dropping whitespace and
//! lower-casing, as CMRC-style QA scores), averaged over questions. A question without an answer
//! scores 0 on every measure.
use rustc_hash::FxHashMap;
use serde::Serialize;

/// Averages over an evaluated question set (the JSON `zhishi eval` prints).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metrics {
    /// Fraction of questions whose top answer equals the gold answer.
    pub accuracy: f64,
    /// Mean character-level F1.
    pub f1: f64,
    /// Mean character-level precision.
    pub precision: f64,
    /// Mean character-level recall.
    pub recall: f64,
    /// Number of questions.
    pub questions: usize,
    /// Fraction of questions given an answer (the rest fell below the NIL threshold or
    /// mentioned no KG entity).
    pub answered: f64,
}

fn fold(s: &str) -> Vec<char> {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// `(exact, precision, recall, f1)` of one predicted answer against the gold one.
pub fn score_answer(predicted: Option<&str>, gold: &str) -> (bool, f64, f64, f64) {
    let Some(predicted) = predicted else {
        return (false, 0.0, 0.0, 0.0);
    };
    let (p, g) = (fold(predicted), fold(gold));
    if p == g {
        return (true, 1.0, 1.0, 1.0);
    }
    let mut counts: FxHashMap<char, i32> = FxHashMap::default();
    for c in &g {
        *counts.entry(*c).or_default() += 1;
    }
    let mut common = 0usize;
    for c in &p {
        if let Some(n) = counts.get_mut(c) {
            if *n > 0 {
                *n -= 1;
                common += 1;
            }
        }
    }
    if common == 0 {
        return (false, 0.0, 0.0, 0.0);
    }
    let precision = common as f64 / p.len() as f64;
    let recall = common as f64 / g.len() as f64;
    (
        false,
        precision,
        recall,
        2.0 * precision * recall / (precision + recall),
    )
}

/// Metrics of `(top predicted answer, gold answer)` pairs.
pub fn metrics<'a>(pairs: impl IntoIterator<Item = (Option<&'a str>, &'a str)>) -> Metrics {
    let mut sums = [0f64; 4];
    let mut n = 0usize;
    let mut answered = 0usize;
    for (predicted, gold) in pairs {
        answered += predicted.is_some() as usize;
        let (exact, p, r, f) = score_answer(predicted, gold);
        sums[0] += exact as u8 as f64;
        sums[1] += f;
        sums[2] += p;
        sums[3] += r;
        n += 1;
    }
    let d = n.max(1) as f64;
    Metrics {
        accuracy: sums[0] / d,
        f1: sums[1] / d,
        precision: sums[2] / d,
        recall: sums[3] / d,
        questions: n,
        answered: answered as f64 / d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computed_values() {
        // 1: exact. 2: "武汉大学" vs "武汉大学出版社": common 4, P 4/4, R 4/7, F1 8/11.
        // 3: no answer. 4: nothing in common.
        let m = metrics([
            (Some("杨可桢"), "杨可桢"),
            (Some("武汉大学"), "武汉大学出版社"),
            (None, "男"),
            (Some("女"), "男"),
        ]);
        assert_eq!(m.questions, 4);
        assert!((m.accuracy - 0.25).abs() < 1e-12);
        assert!((m.precision - 2.0 / 4.0).abs() < 1e-12);
        assert!((m.recall - (1.0 + 4.0 / 7.0) / 4.0).abs() < 1e-12);
        assert!((m.f1 - (1.0 + 8.0 / 11.0) / 4.0).abs() < 1e-12);
    }

    #[test]
    fn case_and_spaces_do_not_count() {
        assert!(score_answer(Some("ISBN 978"), "isbn978").0);
        let (_, p, r, _) = score_answer(Some("aab"), "ab");
        assert!((p - 2.0 / 3.0).abs() < 1e-12 && (r - 1.0).abs() < 1e-12);
    }
}
