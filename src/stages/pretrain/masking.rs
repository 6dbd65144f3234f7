//! Which tokens a pretraining sequence hides, and how: BERT's token masking, whole-word
//! masking over jieba words, ERNIE 1.0's entity masking over mentions the linker finds in the
//! KG, and phrase masking over chunks of adjacent words
//! ([Sun et al., 2019](https://arxiv.org/abs/1904.09223)).
//!
//! Every strategy works the same way: the sequence's units (single tokens, words, entity
//! mentions or phrases, each a run of consecutive tokens) are shuffled and taken whole until
//! `mask_prob` of the real tokens are covered (a unit that would overshoot the budget is
//! skipped, as in BERT's whole-word masking). Entity and phrase masking fill what their units
//! leave of the budget with whole words, so every strategy hides about the same share of the
//! text. Each chosen token becomes `[MASK]` with probability `mask_token`, a uniformly random
//! vocabulary id with probability `random_token`, and stays itself otherwise (BERT's 80/10/10);
//! its original id is the label either way.
//!
//! Strategies mix by weight: each sequence draws one. Masking is a pure function of the
//! sequence and the [`Rng`] it is given; training derives that from the seed, the epoch and
//! the sequence (dynamic masking: each epoch hides other tokens, the same ones on every run).
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::model::Rng;

/// The label of a position that is not predicted (Hugging Face's ignore index).
pub const IGNORE: i64 = -100;

/// A masking strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Single tokens (BERT).
    Token,
    /// Whole jieba words.
    WholeWord,
    /// Whole linked entity mentions (ERNIE 1.0), then whole words.
    Entity,
    /// Chunks of up to three adjacent jieba words (ERNIE 1.0 phrases), then whole words.
    Phrase,
}

impl Strategy {
    /// Every strategy, in the order the config lists them.
    pub const ALL: [Strategy; 4] = [
        Strategy::Token,
        Strategy::WholeWord,
        Strategy::Entity,
        Strategy::Phrase,
    ];
}

/// The character spans a sequence's strategies mask as units; tokens outside every span of a
/// list are units of their own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Spans {
    /// Word spans (jieba), in text order.
    pub words: Vec<Range<usize>>,
    /// Linked entity mentions.
    pub entities: Vec<Range<usize>>,
    /// Phrase chunks.
    pub phrases: Vec<Range<usize>>,
}

/// How a [`Masker`] masks.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskingOptions {
    /// Weight of each strategy (those with weight 0 are never drawn).
    pub weights: Vec<(Strategy, f64)>,
    /// Share of a sequence's real tokens to predict.
    pub mask_prob: f64,
    /// Share of the chosen tokens replaced by `[MASK]`.
    pub mask_token: f64,
    /// Share of the chosen tokens replaced by a random id.
    pub random_token: f64,
}

impl Default for MaskingOptions {
    fn default() -> Self {
        Self {
            weights: vec![(Strategy::Token, 1.0)],
            mask_prob: 0.15,
            mask_token: 0.8,
            random_token: 0.1,
        }
    }
}

/// A chosen unit: its tokens and the strategy that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedSpan {
    /// Token indices (into the sequence, `[CLS]` = 0).
    pub tokens: Range<usize>,
    /// [`Strategy::Entity`] for linked mentions; the fallback words of entity masking are
    /// [`Strategy::WholeWord`].
    pub strategy: Strategy,
}

/// A masked sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Masked {
    /// The input ids with the chosen tokens replaced.
    pub input_ids: Vec<u32>,
    /// The original id at chosen positions, [`IGNORE`] elsewhere.
    pub labels: Vec<i64>,
    /// The chosen units.
    pub spans: Vec<MaskedSpan>,
    /// The strategy this sequence drew.
    pub strategy: Strategy,
}

/// Masks token sequences.
#[derive(Debug, Clone)]
pub struct Masker {
    options: MaskingOptions,
    mask_id: u32,
    vocab_size: usize,
}

impl Masker {
    /// A masker replacing with `mask_id` and random ids below `vocab_size`.
    pub fn new(options: MaskingOptions, mask_id: u32, vocab_size: usize) -> Self {
        Self {
            options,
            mask_id,
            vocab_size,
        }
    }

    /// The options.
    pub fn options(&self) -> &MaskingOptions {
        &self.options
    }

    /// Draws a strategy by weight.
    fn draw(&self, rng: &mut Rng) -> Strategy {
        let total: f64 = self.options.weights.iter().map(|w| w.1.max(0.0)).sum();
        let live: Vec<&(Strategy, f64)> =
            self.options.weights.iter().filter(|w| w.1 > 0.0).collect();
        match live.as_slice() {
            [] => Strategy::Token,
            [only] => only.0,
            _ => {
                let mut x = rng.next_f32() as f64 * total;
                for (s, w) in &live {
                    if x < *w {
                        return *s;
                    }
                    x -= w;
                }
                live[live.len() - 1].0
            }
        }
    }

    /// Masks `ids` (a `[CLS] … [SEP]` sequence) whose tokens cover the characters `offsets`
    /// (`(0, 0)` for special tokens, which are never masked), with the units of `spans`.
    pub fn mask(
        &self,
        ids: &[u32],
        offsets: &[(usize, usize)],
        spans: &Spans,
        rng: &mut Rng,
    ) -> Masked {
        let strategy = self.draw(rng);
        let real: Vec<usize> = (0..ids.len())
            .filter(|&i| offsets.get(i).is_some_and(|o| o.1 > o.0))
            .collect();
        let budget = ((real.len() as f64 * self.options.mask_prob).round() as usize)
            .max(usize::from(!real.is_empty()));
        let tokens = units(&real, offsets, &[]);
        let words = units(&real, offsets, &spans.words);
        let mut candidates: Vec<(Range<usize>, Strategy)> = Vec::new();
        let mut push = |list: &[Range<usize>], s: Strategy, rng: &mut Rng| {
            let mut list = list.to_vec();
            rng.shuffle(&mut list);
            candidates.extend(list.into_iter().map(|u| (u, s)));
        };
        match strategy {
            Strategy::Token => push(&tokens, Strategy::Token, rng),
            Strategy::WholeWord => push(&words, Strategy::WholeWord, rng),
            Strategy::Entity | Strategy::Phrase => {
                let primary = if strategy == Strategy::Entity {
                    &spans.entities
                } else {
                    &spans.phrases
                };
                let own: Vec<Range<usize>> = units(&real, offsets, primary)
                    .into_iter()
                    .filter(|u| covered_by_span(u, offsets, primary))
                    .collect();
                push(&own, strategy, rng);
                push(&words, Strategy::WholeWord, rng);
            }
        }
        let mut chosen = vec![false; ids.len()];
        let mut count = 0;
        let mut out = Vec::new();
        for (unit, s) in candidates {
            if count >= budget {
                break;
            }
            if count + unit.len() > budget || unit.clone().any(|i| chosen[i]) {
                continue;
            }
            for i in unit.clone() {
                chosen[i] = true;
            }
            count += unit.len();
            out.push(MaskedSpan {
                tokens: unit,
                strategy: s,
            });
        }
        out.sort_by_key(|s| s.tokens.start);
        let mut input_ids = ids.to_vec();
        let mut labels = vec![IGNORE; ids.len()];
        for (i, &c) in chosen.iter().enumerate() {
            if !c {
                continue;
            }
            labels[i] = i64::from(ids[i]);
            let r = rng.next_f32() as f64;
            if r < self.options.mask_token {
                input_ids[i] = self.mask_id;
            } else if r < self.options.mask_token + self.options.random_token {
                input_ids[i] = rng.below(self.vocab_size.max(1)) as u32;
            }
        }
        Masked {
            input_ids,
            labels,
            spans: out,
            strategy,
        }
    }
}

/// Whether the token run `unit` lies inside one of `spans`.
fn covered_by_span(
    unit: &Range<usize>,
    offsets: &[(usize, usize)],
    spans: &[Range<usize>],
) -> bool {
    let (start, end) = (offsets[unit.start].0, offsets[unit.end - 1].1);
    spans.iter().any(|s| s.start <= start && end <= s.end)
}

/// The real tokens `real` grouped into units: consecutive tokens inside the same span of
/// `spans` form one unit; every other token is a unit of its own.
fn units(real: &[usize], offsets: &[(usize, usize)], spans: &[Range<usize>]) -> Vec<Range<usize>> {
    let span_of = |i: usize| {
        let (s, e) = offsets[i];
        spans.iter().position(|sp| sp.start <= s && e <= sp.end)
    };
    let mut out: Vec<Range<usize>> = Vec::new();
    let mut last: Option<(usize, usize)> = None; // (token, span)
    for &i in real {
        let span = span_of(i);
        match (span, last, out.last_mut()) {
            (Some(sp), Some((prev, prev_sp)), Some(unit)) if sp == prev_sp && prev + 1 == i => {
                unit.end = i + 1;
            }
            _ => out.push(i..i + 1),
        }
        last = span.map(|sp| (i, sp));
    }
    out
}

/// Phrase chunks of `words` (char spans in text order): runs of up to `max_words` adjacent
/// words, a chunk ending at a gap between words or a word that is not made of letters or
/// CJK characters (punctuation); one-character single-word chunks are left out.
pub fn phrase_chunks(text: &str, words: &[Range<usize>], max_words: usize) -> Vec<Range<usize>> {
    let chars: Vec<char> = text.chars().collect();
    let wordy = |r: &Range<usize>| {
        chars
            .get(r.clone())
            .is_some_and(|cs| !cs.is_empty() && cs.iter().all(|c| c.is_alphanumeric()))
    };
    let mut out = Vec::new();
    let mut current: Option<(Range<usize>, usize)> = None;
    for w in words {
        if !wordy(w) {
            out.extend(current.take().map(|c| c.0));
            continue;
        }
        current = match current.take() {
            Some((c, n)) if c.end == w.start && n < max_words.max(1) => {
                Some((c.start..w.end, n + 1))
            }
            Some((c, _)) => {
                out.push(c);
                Some((w.clone(), 1))
            }
            None => Some((w.clone(), 1)),
        };
    }
    out.extend(current.map(|c| c.0));
    out.retain(|c| c.len() > 1);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[CLS]` + one token per character of `text` + `[SEP]`.
    fn chars(text: &str) -> (Vec<u32>, Vec<(usize, usize)>) {
        let n = text.chars().count();
        let mut ids = vec![2];
        let mut offsets = vec![(0, 0)];
        for i in 0..n {
            ids.push(10 + i as u32);
            offsets.push((i, i + 1));
        }
        ids.push(3);
        offsets.push((0, 0));
        (ids, offsets)
    }

    fn masker(strategy: Strategy, mask_prob: f64) -> Masker {
        Masker::new(
            MaskingOptions {
                weights: vec![(strategy, 1.0)],
                mask_prob,
                mask_token: 1.0,
                random_token: 0.0,
            },
            1,
            100,
        )
    }

    fn masked_positions(m: &Masked) -> Vec<usize> {
        (0..m.labels.len())
            .filter(|&i| m.labels[i] != IGNORE)
            .collect()
    }

    #[test]
    fn token_masking_with_a_fixed_seed_hides_the_same_positions() {
        // 19 characters, 15% -> 3 tokens.
        let text = "患者三天前出现头痛发热伴有咳嗽无胸痛。";
        let (ids, offsets) = chars(text);
        let m =
            masker(Strategy::Token, 0.15).mask(&ids, &offsets, &Spans::default(), &mut Rng::new(7));
        assert_eq!(masked_positions(&m), vec![9, 11, 12]);
        for &i in &masked_positions(&m) {
            assert_eq!((m.input_ids[i], m.labels[i]), (1, i64::from(ids[i])));
        }
        assert_eq!(
            (m.input_ids[0], m.labels[0]),
            (2, IGNORE),
            "[CLS] is never masked"
        );
        let again =
            masker(Strategy::Token, 0.15).mask(&ids, &offsets, &Spans::default(), &mut Rng::new(7));
        assert_eq!(again, m);
    }

    #[test]
    fn whole_word_masking_hides_whole_words() {
        let text = "患者出现头痛发热";
        let (ids, offsets) = chars(text);
        let spans = Spans {
            words: vec![0..2, 2..4, 4..6, 6..8],
            ..Spans::default()
        };
        // 8 tokens at 50% -> 4 tokens: two whole words.
        let m = masker(Strategy::WholeWord, 0.5).mask(&ids, &offsets, &spans, &mut Rng::new(3));
        assert_eq!(masked_positions(&m), vec![3, 4, 7, 8]);
        assert_eq!(
            m.spans.iter().map(|s| s.tokens.clone()).collect::<Vec<_>>(),
            vec![3..5, 7..9]
        );
    }

    #[test]
    fn entity_masking_hides_the_mention_first_then_fills_with_words() {
        let text = "患者出现头痛发热";
        let (ids, offsets) = chars(text);
        let spans = Spans {
            words: vec![0..2, 2..4, 4..6, 6..8],
            entities: std::iter::once(4..6).collect(),
            phrases: vec![],
        };
        // Budget 2: exactly the mention 头痛 (tokens 5 and 6).
        let m = masker(Strategy::Entity, 0.25).mask(&ids, &offsets, &spans, &mut Rng::new(1));
        assert_eq!(masked_positions(&m), vec![5, 6]);
        assert_eq!(
            m.spans,
            vec![MaskedSpan {
                tokens: 5..7,
                strategy: Strategy::Entity
            }]
        );
        // Budget 4: the mention and one more whole word.
        let m = masker(Strategy::Entity, 0.5).mask(&ids, &offsets, &spans, &mut Rng::new(1));
        assert_eq!(m.spans.len(), 2);
        assert!(m.spans.contains(&MaskedSpan {
            tokens: 5..7,
            strategy: Strategy::Entity
        }));
        assert_eq!(masked_positions(&m).len(), 4);
    }

    #[test]
    fn replacements_follow_80_10_10() {
        let text: String = std::iter::repeat_n('字', 200).collect();
        let (ids, offsets) = chars(&text);
        let masker = Masker::new(MaskingOptions::default(), 1, 1000);
        let (mut total, mut masked, mut random, mut kept) = (0, 0, 0, 0);
        for seed in 0..200 {
            let m = masker.mask(&ids, &offsets, &Spans::default(), &mut Rng::new(seed));
            for i in masked_positions(&m) {
                total += 1;
                match m.input_ids[i] {
                    1 => masked += 1,
                    x if x == ids[i] => kept += 1,
                    _ => random += 1,
                }
            }
        }
        assert_eq!(total, 200 * 30, "15% of 200 tokens per sequence");
        let share = |n: i32| n as f64 / total as f64;
        assert!((share(masked) - 0.8).abs() < 0.02, "{}", share(masked));
        // A random id may equal the original (1 in 1000): counted as kept.
        assert!((share(random) - 0.1).abs() < 0.015, "{}", share(random));
        assert!((share(kept) - 0.1).abs() < 0.015, "{}", share(kept));
    }

    #[test]
    fn strategies_mix_by_weight() {
        let (ids, offsets) = chars("患者出现头痛发热");
        let masker = Masker::new(
            MaskingOptions {
                weights: vec![(Strategy::Token, 1.0), (Strategy::WholeWord, 3.0)],
                ..MaskingOptions::default()
            },
            1,
            100,
        );
        let words = (0..1000)
            .filter(|&s| {
                masker
                    .mask(&ids, &offsets, &Spans::default(), &mut Rng::new(s))
                    .strategy
                    == Strategy::WholeWord
            })
            .count();
        assert!((700..800).contains(&words), "{words}");
    }

    #[test]
    fn phrases_chunk_adjacent_words_and_stop_at_punctuation() {
        let text = "患者出现头痛，发热。";
        let words = vec![0..2, 2..4, 4..6, 6..7, 7..9, 9..10];
        assert_eq!(phrase_chunks(text, &words, 2), vec![0..4, 4..6, 7..9]);
        assert_eq!(phrase_chunks(text, &words, 3), vec![0..6, 7..9]);
    }
}
