//! The n-best span search: in each window the `n_best` highest start logits and the
//! `n_best` highest end logits among the context tokens are paired; a pair counts when the
//! end is not before the start and the span is at most `max_answer_len` tokens. Its score is
//! start logit + end logit. Candidates from all windows of a question are merged (the same
//! character span from overlapping windows keeps its best score) and the best become
//! answers, mapped to character spans of the original context.
use std::collections::HashMap;

use super::config::DecodeOptions;
use super::features::Window;
use crate::doc::{Answer, Span};

/// A candidate answer span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpanCandidate {
    /// Character span in the context.
    pub span: Span,
    /// Start logit + end logit.
    pub score: f32,
}

/// Indices of the `k` largest values, largest first (ties: lower index first).
fn top_k(values: &[f32], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// The candidates of one window from its context tokens' start and end logits (`start[i]`,
/// `end[i]` belong to context token `i` of the window).
pub fn window_candidates(
    window: &Window,
    start: &[f32],
    end: &[f32],
    opts: &DecodeOptions,
) -> Vec<SpanCandidate> {
    let n = window.offsets.len().min(start.len()).min(end.len());
    let (start, end) = (&start[..n], &end[..n]);
    let ends = top_k(end, opts.n_best);
    let mut out = Vec::new();
    for s in top_k(start, opts.n_best) {
        for &e in &ends {
            if e >= s && e - s < opts.max_answer_len {
                out.push(SpanCandidate {
                    span: window.char_span(s, e),
                    score: start[s] + end[e],
                });
            }
        }
    }
    out
}

/// The best `k` distinct spans of `candidates` (any number of windows), best first.
pub fn best(candidates: impl IntoIterator<Item = SpanCandidate>, k: usize) -> Vec<SpanCandidate> {
    let mut by_span: HashMap<Span, f32> = HashMap::new();
    for c in candidates {
        let slot = by_span.entry(c.span).or_insert(f32::NEG_INFINITY);
        *slot = slot.max(c.score);
    }
    let mut out: Vec<SpanCandidate> = by_span
        .into_iter()
        .map(|(span, score)| SpanCandidate { span, score })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.span.cmp(&b.span)));
    out.truncate(k);
    out
}

/// Answers from ranked candidates: the span's text in `context`, and as score the
/// candidate's probability under a softmax over the listed candidates.
pub fn to_answers(context: &str, ranked: &[SpanCandidate]) -> Vec<Answer> {
    let chars: Vec<char> = context.chars().collect();
    let max = ranked.first().map_or(0.0, |c| c.score);
    let weights: Vec<f32> = ranked.iter().map(|c| (c.score - max).exp()).collect();
    let total: f32 = weights.iter().sum();
    ranked
        .iter()
        .zip(&weights)
        .map(|(c, w)| Answer {
            text: chars[c.span.start.min(chars.len())..c.span.end.min(chars.len())]
                .iter()
                .collect(),
            span: Some(c.span),
            score: w / total,
            triple: None,
            source: None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::InputSequence;

    /// A window over the context 北京是中国的首都 (one token per character) starting at
    /// character `first`, `n` tokens long.
    fn window(first: usize, n: usize) -> Window {
        Window {
            record: 0,
            input: InputSequence::plain(vec![0; n + 3]),
            context_start: 2,
            offsets: (first..first + n).map(|c| (c, c + 1)).collect(),
            start: 0,
            end: 0,
        }
    }

    const OPTS: DecodeOptions = DecodeOptions {
        n_best: 3,
        max_answer_len: 3,
    };

    #[test]
    fn end_before_start_and_too_long_spans_are_never_chosen() {
        let w = window(0, 8);
        // The best start (6) is after the best end (1): not a valid pair.
        let start = [0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 9.0, 0.0];
        let end = [0.0, 8.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0];
        let c = best(window_candidates(&w, &start, &end, &OPTS), 10);
        // Tokens 6..=7 score 14, 1..=1 scores 9; 1..=7 would be 7 tokens long.
        assert_eq!(c[0].span, Span::new(6, 8));
        assert_eq!(c[0].score, 14.0);
        assert!(c.iter().all(|c| c.span.len() <= 3), "{c:?}");
        assert!(!c.iter().any(|c| c.span == Span::new(1, 8)));
        let answers = to_answers("北京是中国的首都", &c[..2]);
        assert_eq!(answers[0].text, "首都");
        assert_eq!(answers[1].text, "京");
        assert!(answers[0].score > answers[1].score);
        assert!((answers[0].score + answers[1].score - 1.0).abs() < 1e-6);
    }

    #[test]
    fn the_best_span_across_windows_wins_and_duplicates_merge() {
        // Windows over characters 0..5 and 3..8 of 北京是中国的首都.
        let (a, b) = (window(0, 5), window(3, 5));
        let ca = window_candidates(
            &a,
            &[5.0, 0.0, 0.0, 1.0, 0.0],
            &[0.0, 5.0, 0.0, 0.0, 1.0],
            &OPTS,
        );
        let cb = window_candidates(
            &b,
            &[0.0, 0.0, 0.0, 6.0, 0.0],
            &[0.0, 0.0, 0.0, 0.0, 6.0],
            &OPTS,
        );
        let ranked = best(ca.into_iter().chain(cb), 10);
        assert_eq!(
            ranked[0].span,
            Span::new(6, 8),
            "首都 from window b scores 12"
        );
        assert_eq!(
            ranked[1].span,
            Span::new(0, 2),
            "北京 from window a scores 10"
        );
        // 中国 (3..5) is a candidate in both windows (scores 2 and 0): listed once, with 2.
        let zhongguo: Vec<&SpanCandidate> = ranked
            .iter()
            .filter(|c| c.span == Span::new(3, 5))
            .collect();
        assert_eq!(zhongguo.len(), 1);
        assert_eq!(zhongguo[0].score, 2.0);
        assert_eq!(best(ranked.clone(), 2).len(), 2);
    }
}
