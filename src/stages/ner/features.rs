//! From characters to encoder inputs: long sentences are cut into overlapping windows (never
//! silently truncated), each window is flattened into `[CLS] chars [SEP]`, with K-BERT
//! knowledge injected after linked mentions and ERNIE entities on the first token of linked
//! mentions when configured, and every character keeps the index of its token so labels and
//! predictions skip injected knowledge tokens.
use std::ops::Range;

use candle_core::{Device, Result, Tensor};

use crate::doc::Document;
use crate::knowledge::{
    flatten, CharVocab, DocumentKnowledge, InjectionMode, InputBatch, InputSequence, KbertConfig,
    Layout,
};
use crate::stages::task::Injection;

use super::NerError;

/// One window of one sentence, encoded.
#[derive(Debug, Clone)]
pub struct Example {
    /// Index of the sentence in its corpus.
    pub sentence: usize,
    /// First character (item) of the window in the sentence.
    pub offset: usize,
    /// The encoder input, `[CLS] … [SEP]` (soft positions and visibility with K-BERT).
    pub input: InputSequence,
    /// For each character of the window, its token; `None` for characters without one
    /// (whitespace), which are predicted `O`.
    pub char_tokens: Vec<Option<usize>>,
    /// Gold label ids of the window's characters (empty when predicting).
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

    /// `(character, label)` pairs of the characters that have a token, in order.
    pub fn labelled(&self) -> impl Iterator<Item = (usize, u32)> + '_ {
        self.char_tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| t.map(|_| (i, self.labels.get(i).copied().unwrap_or(0))))
    }
}

/// The windows of one sentence and the document facts injected into any of them.
#[derive(Debug, Clone, Default)]
pub struct Encoded {
    /// The windows, in order.
    pub examples: Vec<Example>,
    /// Indices into the document's `facts` of every fact fed to the encoder, ascending.
    pub injected: Vec<usize>,
}

/// Turns sentences with their knowledge (a [`Document`] each) into windowed encoder inputs.
pub struct Featurizer {
    vocab: CharVocab,
    max_len: usize,
    stride: usize,
    injection: Injection,
}

impl Featurizer {
    /// A featurizer for inputs of at most `max_len` tokens (`[CLS]`/`[SEP]` included); windows
    /// of `max_len - 2` characters start every `stride` characters.
    pub fn new(vocab: CharVocab, max_len: usize, stride: usize, injection: Injection) -> Self {
        let max_len = max_len.max(3);
        Self {
            vocab,
            max_len,
            stride: stride.clamp(1, max_len - 2),
            injection,
        }
    }

    /// The windows `(offset, len)` covering a sentence of `n` characters; every character is
    /// in at least one.
    pub fn windows(&self, n: usize) -> Vec<(usize, usize)> {
        let w = self.max_len - 2;
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            out.push((start, w.min(n - start.min(n))));
            if start + w >= n {
                return out;
            }
            start += self.stride;
        }
    }

    /// Encodes every window of one sentence: `items` (one string per character, as the data
    /// files give them) concatenate to `doc.text`, whose mentions and facts are the
    /// knowledge; `labels` (one per item) may be empty.
    pub fn encode(
        &self,
        sentence: usize,
        doc: &Document,
        items: &[String],
        labels: &[u32],
    ) -> std::result::Result<Encoded, NerError> {
        self.encode_cut(sentence, &DocumentKnowledge::new(doc), items, labels)
    }

    /// [`Featurizer::encode`] of a prepared document (e.g. one with a fact withheld, see
    /// [`DocumentKnowledge::without`]).
    pub fn encode_cut(
        &self,
        sentence: usize,
        cut: &DocumentKnowledge<'_>,
        items: &[String],
        labels: &[u32],
    ) -> std::result::Result<Encoded, NerError> {
        // Character offset where each item starts (and the end).
        let mut starts = Vec::with_capacity(items.len() + 1);
        let mut at = 0;
        for item in items {
            starts.push(at);
            at += item.chars().count();
        }
        starts.push(at);
        let mut out = Encoded::default();
        for (offset, len) in self.windows(items.len()) {
            let window = &items[offset..offset + len];
            let chars = starts[offset]..starts[offset + len];
            let (mut ex, injected) = self.encode_window(cut, window, chars)?;
            ex.sentence = sentence;
            ex.offset = offset;
            if !labels.is_empty() {
                ex.labels = labels[offset..offset + len].to_vec();
            }
            out.examples.push(ex);
            out.injected.extend(injected);
        }
        out.injected.sort_unstable();
        out.injected.dedup();
        Ok(out)
    }

    fn encode_window(
        &self,
        cut: &DocumentKnowledge<'_>,
        items: &[String],
        chars: Range<usize>,
    ) -> std::result::Result<(Example, Vec<usize>), NerError> {
        let ranges = [chars];
        let tree = self.injection.tree(cut, &ranges);
        let config = KbertConfig::new(self.max_len)
            .mode(InjectionMode::Improved)
            .max_entities(self.injection.max_entities());
        let input = flatten(&tree.tree, &self.vocab, &config)?;
        let n = input.real_len;
        // Character index (in `char`s) where each item starts.
        let mut char_tokens = Vec::with_capacity(items.len());
        let mut at = 0;
        for c in items {
            char_tokens.push(input.char_to_token.get(at).copied().flatten());
            at += c.chars().count();
        }
        let knowledge = input.knowledge_mask[..n].contains(&1);
        let entities = self
            .injection
            .entity_rows(cut, &ranges, &input.char_to_token, n);
        let injected = tree.injected_facts(&input);
        let example = Example {
            sentence: 0,
            offset: 0,
            input: InputSequence {
                positions: input.soft_positions[..n].to_vec(),
                visible: knowledge.then_some(input.visible),
                entities,
                ..InputSequence::plain(input.input_ids[..n].to_vec())
            },
            char_tokens,
            labels: Vec::new(),
        };
        Ok((example, injected))
    }
}

/// A batch of examples as tensors.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The encoder input (padded or packed).
    pub input: InputBatch,
    /// Flat indices into `[B·L]` of the labelled characters' tokens, example by example.
    pub char_index: Tensor,
    /// Labelled characters per example.
    pub char_counts: Vec<usize>,
    /// Gold labels of the labelled characters, per example.
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
        let mut char_index = Vec::new();
        let mut char_counts = Vec::with_capacity(examples.len());
        let mut labels = Vec::with_capacity(examples.len());
        for (i, e) in examples.iter().enumerate() {
            let mut gold = Vec::new();
            for (ch, label) in e.labelled() {
                if let Some(tok) = e.char_tokens[ch] {
                    char_index.push((input.starts[i] + tok) as u32);
                    gold.push(label);
                }
            }
            char_counts.push(gold.len());
            labels.push(gold);
        }
        let n_chars = char_index.len();
        Ok(Self {
            input,
            char_index: Tensor::from_vec(char_index, n_chars, device)?,
            char_counts,
            labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::{annotate, LinkOptions, Linker, MemoryKg};

    /// `text` linked over `spo` (NIL threshold 0) with one fact per mention.
    fn linked(spo: &[(&str, &str, &str)], text: &str) -> Document {
        let options = LinkOptions {
            nil_threshold: 0.0,
            ..Default::default()
        };
        let linker = Linker::build(MemoryKg::from_triples(spo.iter().copied()), options).unwrap();
        annotate(&linker, text, 1).unwrap()
    }

    fn vocab() -> CharVocab {
        CharVocab::from_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "头", "痛", "发", "热"])
            .unwrap()
    }

    fn chars(s: &str) -> Vec<String> {
        s.chars().map(String::from).collect()
    }

    #[test]
    fn long_sentences_are_windowed_not_truncated() {
        let f = Featurizer::new(vocab(), 6, 2, Injection::plain());
        assert_eq!(f.windows(3), vec![(0, 3)]);
        assert_eq!(f.windows(9), vec![(0, 4), (2, 4), (4, 4), (6, 3)]);
        let text = "头痛发热头痛";
        let ex = f
            .encode(0, &Document::new(text), &chars(text), &[1, 2, 0, 0, 1, 2])
            .unwrap()
            .examples;
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[1].offset, 2);
        assert_eq!(ex[1].input.input_ids, [2, 6, 7, 4, 5, 3]);
        assert_eq!(ex[1].labels, [0, 0, 1, 2]);
        assert_eq!(ex[1].char_tokens, [Some(1), Some(2), Some(3), Some(4)]);
    }

    #[test]
    fn kbert_knowledge_tokens_get_no_labels() {
        let doc = linked(&[("头痛", "类别", "症状")], "患者头痛");
        let vocab = CharVocab::from_tokens([
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "患", "者", "头", "痛", "症", "状",
        ])
        .unwrap();
        let f = Featurizer::new(vocab, 16, 8, Injection::kbert(1, false));
        // 患者头痛: O O B-Symptom I-Symptom; 症状 is injected after 头痛.
        let encoded = f
            .encode(0, &doc, &chars("患者头痛"), &[0, 0, 1, 2])
            .unwrap();
        assert_eq!(encoded.injected, [0], "the one fact was fed to the model");
        let ex = encoded.examples;
        assert_eq!(ex[0].input.input_ids, [2, 4, 5, 6, 7, 8, 9, 3]);
        assert_eq!(ex[0].input.positions, [0, 1, 2, 3, 4, 5, 6, 5]);
        assert_eq!(ex[0].char_tokens, [Some(1), Some(2), Some(3), Some(4)]);
        let batch = Batch::new(&[&ex[0]], &Device::Cpu).unwrap();
        assert_eq!(batch.char_index.to_vec1::<u32>().unwrap(), [1, 2, 3, 4]);
        assert_eq!(batch.labels, [vec![0, 0, 1, 2]]);
        let vis = batch.input.visible.unwrap().to_vec3::<u32>().unwrap();
        assert_eq!(vis[0][1][5], 0, "患 does not see the injected 症");
        assert_eq!(vis[0][3][5], 1, "头 sees its own knowledge");
    }

    #[test]
    fn ernie_entities_sit_on_mention_starts_and_never_on_injected_tokens() {
        use crate::kg::store::NamedTriple;
        use crate::knowledge::EntityVectors;
        let spo = [("头痛", "类别", "症状"), ("发热", "类别", "症状")];
        let triples: Vec<NamedTriple> = spo
            .iter()
            .map(|(s, p, o)| NamedTriple::literal(s, p, o))
            .collect();
        let config = crate::kg::transe::TrainConfig {
            epochs: 1,
            negatives: 1,
            batch_size: 2,
            ..Default::default()
        };
        let vectors = EntityVectors::train(&triples, config).unwrap();
        let (headache, fever) = (vectors.row("头痛").unwrap(), vectors.row("发热").unwrap());
        let doc = linked(&spo, "患者头痛发热");
        let vocab = CharVocab::from_tokens([
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "患", "者", "头", "痛", "发", "热", "症", "状",
        ])
        .unwrap();
        let f = Featurizer::new(
            vocab,
            16,
            8,
            Injection::kbert(1, false).with_vectors(vectors),
        );
        // [CLS] 患 者 头 痛 症 状 发 热 症 状 [SEP]: 症状 injected after each symptom.
        let ex = f
            .encode(0, &doc, &chars("患者头痛发热"), &[])
            .unwrap()
            .examples;
        assert_eq!(
            ex[0].input.input_ids,
            [2, 4, 5, 6, 7, 10, 11, 8, 9, 10, 11, 3]
        );
        let (h, v) = (i64::from(headache), i64::from(fever));
        assert_eq!(
            ex[0].input.entities,
            [-1, -1, -1, h, -1, -1, -1, v, -1, -1, -1, -1]
        );
    }
}
