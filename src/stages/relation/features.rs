//! From a sentence and a (head, tail) pair to encoder inputs, ERNIE-THU style: the head is
//! wrapped in a head marker and the tail in a tail marker (`[CLS] … # 幽兰 # 在 $ 山谷 $ … [SEP]`),
//! and the classifier reads `[CLS]` and the two opening markers.
//!
//! Markers: by default `#` around the head and `$` around the tail, as ERNIE-THU's relation
//! classification code does; both are ordinary characters of the BERT vocabulary, so their
//! embeddings are trained (the `[unusedN]` rows of m3e's vocabulary are not). Any vocabulary
//! token can be configured (`data.markers`). In the K-BERT sentence tree the markers are
//! single words that carry no knowledge; they take a position like any sentence token.
//!
//! Long sentences: the window (`max_len - 6` characters: `[CLS]`, `[SEP]` and four markers) is
//! centred on the pair, so both arguments stay inside; if even the span from one argument to
//! the other is longer, the window keeps a half-window around each argument and drops the text
//! between them. K-BERT knowledge never pushes sentence tokens out (the lowest-ranked facts go
//! first).
use candle_core::{Device, Result, Tensor};

use super::RelationError;
use crate::doc::{Document, Span};
use crate::knowledge::{
    flatten, CharVocab, DocumentKnowledge, DocumentTree, InjectionMode, InputBatch, InputSequence,
    KbertConfig, Layout, SentenceTree, TokenIds, TreeWord,
};
use crate::stages::task::Injection;

/// The tree word standing for the head marker (kept whole by the flattening).
const HEAD_WORD: &str = "[SUB]";
/// The tree word standing for the tail marker.
const TAIL_WORD: &str = "[OBJ]";
/// Tokens besides the sentence's characters: `[CLS]`, `[SEP]` and four markers.
const OVERHEAD: usize = 6;

/// One (head, tail) pair of one sentence, encoded.
#[derive(Debug, Clone)]
pub struct Example {
    /// The encoder input (soft positions and visibility with K-BERT).
    pub input: InputSequence,
    /// Token index of the head's opening marker.
    pub head_token: usize,
    /// Token index of the tail's opening marker.
    pub tail_token: usize,
    /// Gold label id (0 when predicting).
    pub label: u32,
}

impl Example {
    /// Tokens the encoder runs over.
    pub fn len(&self) -> usize {
        self.input.len()
    }

    /// Whether there are no tokens (never: `[CLS]` and `[SEP]` are always there).
    pub fn is_empty(&self) -> bool {
        self.input.is_empty()
    }
}

/// Turns sentences with a marked pair into encoder inputs.
pub struct Featurizer {
    vocab: CharVocab,
    markers: [u32; 2],
    max_len: usize,
    injection: Injection,
}

impl Featurizer {
    /// A featurizer for inputs of at most `max_len` tokens, marking heads and tails with the
    /// tokens `markers` (head, tail), which must be in `vocab`.
    pub fn new(
        vocab: CharVocab,
        markers: [&str; 2],
        max_len: usize,
        injection: Injection,
    ) -> std::result::Result<Self, RelationError> {
        let unk = vocab.token_id("[UNK]");
        let mut ids = [0u32; 2];
        for (id, marker) in ids.iter_mut().zip(markers) {
            *id = vocab.token_id(marker);
            if *id == unk {
                return Err(RelationError::Marker(marker.to_string()));
            }
        }
        Ok(Self {
            vocab,
            markers: ids,
            max_len: max_len.max(OVERHEAD + 2),
            injection,
        })
    }

    /// The character ranges of a sentence of `n` characters kept for the pair: all of it when
    /// it fits, else a window centred on the pair, else a half-window around each argument.
    pub fn window(&self, n: usize, head: Span, tail: Span) -> Vec<(usize, usize)> {
        let budget = self.max_len - OVERHEAD;
        if n <= budget {
            return vec![(0, n)];
        }
        let lo = head.start.min(tail.start);
        let hi = head.end.max(tail.end);
        if hi - lo <= budget {
            let start = lo.saturating_sub((budget - (hi - lo)) / 2).min(n - budget);
            return vec![(start, start + budget)];
        }
        let half = budget / 2;
        let around = |s: Span, width: usize| {
            let extra = width.saturating_sub(s.len());
            let start = s.start.saturating_sub(extra / 2).min(n - width);
            (start, start + width)
        };
        let (first, second) = if head.start <= tail.start {
            (head, tail)
        } else {
            (tail, head)
        };
        let a = around(first, half);
        let b = around(second, budget - half);
        if a.1 >= b.0 {
            vec![(a.0, b.1.max(a.1))]
        } else {
            vec![a, b]
        }
    }

    /// Encodes one pair of `doc`'s text, with the knowledge its mentions and facts carry;
    /// `label` is the gold label id (0 when predicting). Returns the example and the indices
    /// of the document's facts injected into it.
    pub fn encode(
        &self,
        doc: &Document,
        head: Span,
        tail: Span,
        label: u32,
    ) -> std::result::Result<(Example, Vec<usize>), RelationError> {
        self.encode_in(&DocumentKnowledge::new(doc), head, tail, label)
    }

    /// [`Featurizer::encode`] for a document already prepared once for all its pairs.
    pub fn encode_in(
        &self,
        cut: &DocumentKnowledge<'_>,
        head: Span,
        tail: Span,
        label: u32,
    ) -> std::result::Result<(Example, Vec<usize>), RelationError> {
        let n = cut.len();
        for (role, s) in [("head", head), ("tail", tail)] {
            if s.start >= s.end || s.end > n {
                return Err(RelationError::Span {
                    role,
                    start: s.start,
                    end: s.end,
                    len: n,
                });
            }
        }
        let ranges = self.window(n, head, tail);
        // Where each sentence character landed in the window.
        let mut at = vec![None; n + 1];
        let mut kept = 0;
        for &(s, e) in &ranges {
            for (i, slot) in at.iter_mut().enumerate().take(e).skip(s) {
                *slot = Some(kept + i - s);
            }
            kept += e - s;
            at[e] = Some(kept);
        }
        // An argument cut by the window keeps the part inside it.
        let local = |s: Span| -> Span {
            let start = (s.start..s.end).find_map(|i| at[i]).unwrap_or(0);
            let end = (s.start + 1..=s.end)
                .rev()
                .find_map(|i| at[i])
                .unwrap_or(start + 1)
                .max(start + 1);
            Span::new(start, end)
        };
        let (h, t) = (local(head), local(tail));
        let ranges: Vec<std::ops::Range<usize>> = ranges.iter().map(|&(s, e)| s..e).collect();
        let tree = self.injection.tree(cut, &ranges);
        let (tree, marker_chars) = insert_markers(&tree, h, t);
        let config = KbertConfig::new(self.max_len)
            .mode(InjectionMode::Improved)
            .max_entities(self.injection.max_entities());
        let [head_id, tail_id] = self.markers;
        let ids = |token: &str| match token {
            HEAD_WORD => head_id,
            TAIL_WORD => tail_id,
            other => self.vocab.token_id(other),
        };
        let input = flatten(&tree.tree, &ids, &config)?;
        let token = |c: usize| {
            input
                .char_to_token
                .get(c)
                .copied()
                .flatten()
                .ok_or(RelationError::MarkerLost)
        };
        let (head_token, tail_token) = (token(marker_chars[0])?, token(marker_chars[1])?);
        let len = input.real_len;
        let knowledge = input.knowledge_mask[..len].contains(&1);
        let injected = tree.injected_facts(&input);
        let example = Example {
            input: InputSequence {
                positions: input.soft_positions[..len].to_vec(),
                visible: knowledge.then_some(input.visible),
                ..InputSequence::plain(input.input_ids[..len].to_vec())
            },
            head_token,
            tail_token,
            label,
        };
        Ok((example, injected))
    }
}

/// Inserts marker words around `head` and `tail` (character spans of the tree's text), splitting
/// words at the boundaries (a split word's knowledge, and the facts behind it, stay with its
/// last piece). Returns the new tree and the tree-text character offsets of the head's and the
/// tail's opening markers.
///
/// At one boundary closing markers come before opening ones; an inner span closes first and
/// an outer span opens first, so nested and adjacent arguments stay well bracketed.
pub fn insert_markers(tree: &DocumentTree, head: Span, tail: Span) -> (DocumentTree, [usize; 2]) {
    let mut marks: Vec<Mark> = Vec::new();
    for (role, s, word) in [(0, head, HEAD_WORD), (1, tail, TAIL_WORD)] {
        // Opening: outer (longer) first; the head before the tail on equal spans.
        marks.push(Mark {
            pos: s.start,
            order: (1, -(s.len() as i64) * 2 + role as i64),
            word,
            opening: Some(role),
        });
        // Closing: inner (later-starting) first.
        marks.push(Mark {
            pos: s.end,
            order: (0, -(s.start as i64) * 2 - role as i64),
            word,
            opening: None,
        });
    }
    marks.sort_by_key(|m| (m.pos, m.order));
    let mut words: Vec<TreeWord> = Vec::new();
    let mut facts: Vec<Vec<usize>> = Vec::new();
    let mut openings = [0usize; 2];
    let mut out_chars = 0usize;
    let mut k = 0;
    let mut pos = 0usize;
    let mut push_marks = |pos: usize,
                          k: &mut usize,
                          words: &mut Vec<TreeWord>,
                          facts: &mut Vec<Vec<usize>>,
                          out: &mut usize| {
        while *k < marks.len() && marks[*k].pos <= pos {
            let Mark { word, opening, .. } = marks[*k];
            if let Some(role) = opening {
                openings[role] = *out;
            }
            words.push(TreeWord {
                word: word.to_string(),
                injected: Vec::new(),
            });
            facts.push(Vec::new());
            *out += word.chars().count();
            *k += 1;
        }
    };
    for (w, w_facts) in tree.tree.words.iter().zip(&tree.facts) {
        let mut piece = String::new();
        for c in w.word.chars() {
            if k < marks.len() && marks[k].pos <= pos {
                if !piece.is_empty() {
                    out_chars += piece.chars().count();
                    words.push(TreeWord {
                        word: std::mem::take(&mut piece),
                        injected: Vec::new(),
                    });
                    facts.push(Vec::new());
                }
                push_marks(pos, &mut k, &mut words, &mut facts, &mut out_chars);
            }
            piece.push(c);
            pos += 1;
        }
        if !piece.is_empty() {
            out_chars += piece.chars().count();
            words.push(TreeWord {
                word: piece,
                injected: w.injected.clone(),
            });
            facts.push(w_facts.clone());
        }
    }
    push_marks(usize::MAX, &mut k, &mut words, &mut facts, &mut out_chars);
    (
        DocumentTree {
            tree: SentenceTree { words },
            facts,
        },
        openings,
    )
}

/// A marker word to insert before the tree-text character `pos`.
#[derive(Clone, Copy)]
struct Mark {
    pos: usize,
    /// Closing (0) before opening (1), then the nesting order.
    order: (u8, i64),
    word: &'static str,
    /// `Some(0)` opens the head, `Some(1)` the tail; `None` closes.
    opening: Option<usize>,
}

/// A batch of examples as tensors.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The encoder input (padded or packed).
    pub input: InputBatch,
    /// Flat indices into `[B·L]`: `[CLS]`, head marker, tail marker of each example.
    pub pooled_index: Tensor,
    /// `[B]` gold label ids.
    pub labels: Tensor,
}

impl Batch {
    /// Pads `examples` to the longest of them.
    pub fn new(examples: &[&Example], device: &Device) -> Result<Self> {
        Self::with_layout(examples, Layout::Padded, device)
    }

    /// Lays `examples` out as `layout` says (the loss does not depend on it).
    pub fn with_layout(examples: &[&Example], layout: Layout, device: &Device) -> Result<Self> {
        let sequences: Vec<&InputSequence> = examples.iter().map(|e| &e.input).collect();
        let input = InputBatch::with_layout(&sequences, layout, device)?;
        let mut index = Vec::with_capacity(examples.len() * 3);
        for (e, &at) in examples.iter().zip(&input.starts) {
            index.extend([at, at + e.head_token, at + e.tail_token].map(|x| x as u32));
        }
        let labels: Vec<u32> = examples.iter().map(|e| e.label).collect();
        let n = index.len();
        Ok(Self {
            input,
            pooled_index: Tensor::from_vec(index, n, device)?,
            labels: Tensor::from_vec(labels, examples.len(), device)?,
        })
    }
}
