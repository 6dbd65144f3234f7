//! From a text, or a pair of texts, to encoder inputs: `[CLS] a [SEP]` or
//! `[CLS] a [SEP] b [SEP]` with token types 0 (through the first `[SEP]`) and 1 (after it).
//!
//! Long inputs: the texts are cut from their ends to fit `max_len`, the longer text of a pair
//! first (as BERT's and K-BERT's classification code do). With K-BERT knowledge each text gets
//! its own sentence tree and the two trees are flattened as one sequence, so a text's injected
//! knowledge is visible only to the word it hangs on (never to the other text), soft
//! positions run on through the pair, and knowledge never pushes a text character out (the
//! lowest-ranked facts go first). With ERNIE fusion each linked mention's entity sits on its
//! first token, in either text.
use std::ops::Range;

use candle_core::{Device, Result, Tensor};

use super::ClassifyError;
use crate::knowledge::{
    flatten, CharVocab, DocumentKnowledge, InjectionMode, InputBatch, InputSequence, KbertConfig,
    Layout, SentenceTree, TreeWord,
};
use crate::stages::task::Injection;

/// The word between the two texts of a pair (a special token, kept whole).
const SEP_WORD: &str = "[SEP]";

/// One text or pair, encoded.
#[derive(Debug, Clone)]
pub struct Example {
    /// The encoder input (soft positions and visibility with K-BERT; token types for pairs).
    pub input: InputSequence,
    /// Gold label ids (empty when predicting).
    pub labels: Vec<u32>,
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

/// The facts of each text that made it into an encoded input (indices into the documents'
/// `facts`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Injected {
    /// Facts of the first text's document.
    pub a: Vec<usize>,
    /// Facts of the second text's document.
    pub b: Vec<usize>,
}

/// Turns texts and pairs into encoder inputs.
pub struct Featurizer {
    vocab: CharVocab,
    max_len: usize,
    injection: Injection,
}

impl Featurizer {
    /// A featurizer for inputs of at most `max_len` tokens (at least 4).
    pub fn new(vocab: CharVocab, max_len: usize, injection: Injection) -> Self {
        Self {
            vocab,
            max_len: max_len.max(4),
            injection,
        }
    }

    /// Characters kept of texts of `a` and `b` characters: all when they fit, else the longer
    /// one is cut first.
    pub fn budget(&self, a: usize, b: Option<usize>) -> (usize, usize) {
        match b {
            None => (a.min(self.max_len - 2), 0),
            Some(b) => {
                let room = self.max_len - 3;
                let (mut a, mut b) = (a, b);
                while a + b > room {
                    if b > a {
                        b -= 1;
                    } else {
                        a -= 1;
                    }
                }
                (a, b)
            }
        }
    }

    /// Encodes the text of `a` (and of `b`, for a pair), with the knowledge their mentions and
    /// facts carry; `labels` are the gold label ids (empty when predicting).
    pub fn encode(
        &self,
        a: &DocumentKnowledge<'_>,
        b: Option<&DocumentKnowledge<'_>>,
        labels: Vec<u32>,
    ) -> std::result::Result<(Example, Injected), ClassifyError> {
        let (keep_a, keep_b) = self.budget(a.len(), b.map(DocumentKnowledge::len));
        let ranges_a = std::slice::from_ref(&(0..keep_a)).to_vec();
        let tree_a = self.injection.tree(a, &ranges_a);
        let mut words: Vec<TreeWord> = tree_a.tree.words.clone();
        let words_a = words.len();
        let tree_b = b.map(|b| {
            let tree = self.injection.tree(b, std::slice::from_ref(&(0..keep_b)));
            words.push(TreeWord {
                word: SEP_WORD.into(),
                injected: Vec::new(),
            });
            words.extend(tree.tree.words.iter().cloned());
            tree
        });
        let tree = SentenceTree { words };
        let config = KbertConfig::new(self.max_len)
            .mode(InjectionMode::Improved)
            .max_entities(self.injection.max_entities());
        let input = flatten(&tree, &self.vocab, &config)?;
        let n = input.real_len;
        // The token of the `[SEP]` between the texts: the first of text b's segment.
        let sep_token = b.and_then(|_| input.char_to_token.get(keep_a).copied().flatten());
        let token_types = match sep_token {
            Some(sep) => (0..n).map(|t| u32::from(t > sep)).collect(),
            None => Vec::new(),
        };
        let mut entities = self
            .injection
            .entity_rows(a, &ranges_a, &input.char_to_token, n);
        if let (Some(b), Some(_)) = (b, sep_token) {
            let after_sep = (keep_a + SEP_WORD.chars().count()).min(input.char_to_token.len());
            let rows_b = self.injection.entity_rows(
                b,
                std::slice::from_ref(&(0..keep_b)),
                &input.char_to_token[after_sep..],
                n,
            );
            entities = merge_rows(entities, rows_b);
        }
        let knowledge = input.knowledge_mask[..n].contains(&1);
        let mut injected = Injected::default();
        for &(word, string) in &input.injected {
            if word < words_a {
                injected
                    .a
                    .extend(tree_a.facts.get(word).and_then(|f| f.get(string)));
            } else if let Some(tb) = &tree_b {
                let w = word - words_a - 1;
                injected
                    .b
                    .extend(tb.facts.get(w).and_then(|f| f.get(string)));
            }
        }
        let example = Example {
            input: InputSequence {
                positions: input.soft_positions[..n].to_vec(),
                token_types,
                visible: knowledge.then_some(input.visible),
                entities,
                ..InputSequence::plain(input.input_ids[..n].to_vec())
            },
            labels,
        };
        Ok((example, injected))
    }
}

/// Entity rows of two texts of one input (each `-1` where its text has none).
fn merge_rows(a: Vec<i64>, b: Vec<i64>) -> Vec<i64> {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b,
        (_, true) => a,
        _ => a
            .into_iter()
            .zip(b)
            .map(|(x, y)| if x >= 0 { x } else { y })
            .collect(),
    }
}

/// A batch of examples as tensors.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The encoder input (padded or packed).
    pub input: InputBatch,
    /// Flat index into `[B·L]` of each example's `[CLS]`.
    pub cls_index: Tensor,
    /// `[N, B·L]`: each example's tokens weighted `1 / tokens` (mean pooling).
    pub mean_weights: Tensor,
    /// Gold label ids, per example.
    pub labels: Vec<Vec<u32>>,
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
        let n = examples.len();
        let flat = input.padded_tokens;
        let cls: Vec<u32> = input.starts.iter().map(|&s| s as u32).collect();
        let mut weights = vec![0f32; n * flat];
        for (i, (e, &start)) in examples.iter().zip(&input.starts).enumerate() {
            let len = e.len().max(1);
            let row: Range<usize> = i * flat + start..i * flat + start + len;
            weights[row].fill(1.0 / len as f32);
        }
        Ok(Self {
            cls_index: Tensor::from_vec(cls, n, device)?,
            mean_weights: Tensor::from_vec(weights, (n, flat), device)?,
            labels: examples.iter().map(|e| e.labels.clone()).collect(),
            input,
        })
    }
}
