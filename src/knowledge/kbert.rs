//! K-BERT input construction (Liu et al., "K-BERT: Enabling Language Representation with
//! Knowledge Graph", AAAI 2020, <https://arxiv.org/abs/1909.07606>): a [`SentenceTree`] is
//! flattened into one token sequence where each word's characters are followed by the
//! characters of the knowledge strings injected after it.
//!
//! * Soft positions: a branch continues from the last position of its anchor word, sibling
//!   branches share positions, and the sentence continues from the anchor's end + 1, so the
//!   sentence keeps the positions it would have without knowledge.
//! * Visibility: a sentence token sees every sentence token and the branches of its own word;
//!   a branch token sees its own branch and its anchor word only.
//!
//! Two modes. [`InjectionMode::Compat`] reproduces the authors' `add_knowledge_with_vm`
//! bit for bit: `[CLS]` is prepended as a word of its own, every character (whitespace
//! included) is a token, at most `max_entities` strings per word, the flattened sequence is
//! cut at `max_length` after injection (so knowledge can push sentence characters out), and
//! padding tokens get position `max_length - 1` and see nothing. [`InjectionMode::Improved`]
//! (the default) writes `[CLS] sentence [SEP]` like a standard BERT input, skips whitespace
//! characters, never gives up a sentence token for knowledge (when knowledge does not fit it
//! drops the lowest-ranked strings first: all words' second-best strings before any word's
//! best one, later words before earlier ones), and lets padding tokens see themselves (their
//! position is `max_length - 1` in both modes; the attention mask hides them anyway).
use std::ops::Range;

use super::tree::{is_special_token, SentenceTree, CLS_TOKEN, PAD_TOKEN, SEP_TOKEN};
use super::visible::{set_bits, VisibleMatrix};
use super::vocab::TokenIds;

/// How faithfully to follow the original K-BERT code; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InjectionMode {
    /// Never truncates sentence tokens for knowledge; `[CLS] ... [SEP]`; drops knowledge by rank.
    #[default]
    Improved,
    /// Bit-for-bit K-BERT (`brain/knowgraph.py`, `add_knowledge_with_vm`).
    Compat,
}

/// Options of the flattening: output length, knowledge per word and mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KbertConfig {
    /// Length of every output sequence (inputs are padded or cut to it).
    pub max_length: usize,
    /// At most this many knowledge strings are injected after one word.
    pub max_entities: usize,
    /// Compat or improved behaviour.
    pub mode: InjectionMode,
}

impl KbertConfig {
    /// K-BERT's default number of knowledge strings per word (`MAX_ENTITIES`).
    pub const DEFAULT_MAX_ENTITIES: usize = 2;

    /// Improved mode, `max_entities` 2, sequences of `max_length` tokens.
    pub fn new(max_length: usize) -> Self {
        Self {
            max_length,
            max_entities: Self::DEFAULT_MAX_ENTITIES,
            mode: InjectionMode::Improved,
        }
    }

    /// Sets the number of knowledge strings kept per word.
    pub fn max_entities(mut self, max_entities: usize) -> Self {
        self.max_entities = max_entities;
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: InjectionMode) -> Self {
        self.mode = mode;
        self
    }

    fn min_length(&self) -> usize {
        match self.mode {
            InjectionMode::Compat => 1,
            InjectionMode::Improved => 2,
        }
    }
}

/// Errors flattening a sentence tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KbertError {
    /// `max_length` cannot hold the mandatory special tokens.
    #[error("max_length {max_length} is too small: the {mode:?} mode needs at least {min}")]
    MaxLengthTooSmall {
        /// The configured length.
        max_length: usize,
        /// The smallest usable length.
        min: usize,
        /// The configured mode.
        mode: InjectionMode,
    },
    /// A tree word has no characters (it would have no position to hang knowledge on).
    #[error("word {index} of the sentence tree is empty; every word needs at least one character")]
    EmptyWord {
        /// Zero-based index of the word in the tree.
        index: usize,
    },
}

/// One flattened K-BERT input of exactly `max_length` tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KbertInput {
    /// The tokens: sentence characters, injected characters, special tokens, `[PAD]`.
    pub tokens: Vec<String>,
    /// Vocabulary ids of `tokens`.
    pub input_ids: Vec<u32>,
    /// Soft position of each token (the model's `position_ids`).
    pub soft_positions: Vec<u32>,
    /// 1 for injected knowledge tokens, 0 for sentence, special and padding tokens.
    pub knowledge_mask: Vec<u8>,
    /// Which token sees which.
    pub visible: VisibleMatrix,
    /// For each character of the sentence (the tree's words concatenated), the index of its
    /// token, or `None` when it has none (whitespace in improved mode, characters cut by
    /// truncation, the second and later characters of a special token such as `[SEP]`).
    /// NER labels go through this map, so they never land on knowledge tokens.
    pub char_to_token: Vec<Option<usize>>,
    /// Number of tokens before padding.
    pub real_len: usize,
    /// The knowledge strings that made it into the input, as `(tree word, index in its
    /// injected list)`: a string is missing when it repeats an earlier one of its word, is
    /// beyond `max_entities`, is all whitespace, or was dropped to fit `max_length`.
    pub injected: Vec<(usize, usize)>,
}

impl KbertInput {
    /// 1 for real tokens, 0 for padding (the usual BERT `attention_mask`).
    pub fn attention_mask(&self) -> Vec<u8> {
        (0..self.tokens.len())
            .map(|i| u8::from(i < self.real_len))
            .collect()
    }
}

/// Flattens `tree` into a K-BERT input as configured; ids come from `vocab`.
///
/// ```
/// use zhishi::knowledge::{flatten, CharVocab, KbertConfig, SentenceTree};
/// let vocab = CharVocab::from_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]"]).unwrap();
/// let tree = SentenceTree::new().word("北京", ["首都"]).plain("好");
/// let input = flatten(&tree, &vocab, &KbertConfig::new(8)).unwrap();
/// assert_eq!(input.tokens[..7], ["[CLS]", "北", "京", "首", "都", "好", "[SEP]"]);
/// assert_eq!(input.soft_positions[..7], [0, 1, 2, 3, 4, 3, 4]);
/// ```
pub fn flatten(
    tree: &SentenceTree,
    vocab: &impl TokenIds,
    config: &KbertConfig,
) -> Result<KbertInput, KbertError> {
    if config.max_length < config.min_length() {
        return Err(KbertError::MaxLengthTooSmall {
            max_length: config.max_length,
            min: config.min_length(),
            mode: config.mode,
        });
    }
    let (mut words, char_count) = prepare(tree, config)?;
    if config.mode == InjectionMode::Improved {
        fit_improved(&mut words, config.max_length);
    }
    let mut layout = Layout::from_words(&words);
    // Compat cuts after injection; in improved mode the layout already fits.
    layout.truncate(config.max_length);
    Ok(layout.into_input(vocab, config, char_count))
}

/// A sentence token and the sentence character it comes from.
struct Piece {
    token: String,
    source: Option<usize>,
}

/// A tree word ready to flatten: its tokens and its kept branches, best first.
struct Word {
    tokens: Vec<Piece>,
    branches: Vec<Vec<String>>,
    /// The word's index in the tree (`None` for `[CLS]`/`[SEP]`).
    origin: Option<usize>,
    /// For each branch, the index of its string in the tree word's injected list.
    branch_sources: Vec<usize>,
}

impl Word {
    fn special(token: &str) -> Self {
        Self {
            tokens: vec![Piece {
                token: token.to_string(),
                source: None,
            }],
            branches: Vec::new(),
            origin: None,
            branch_sources: Vec::new(),
        }
    }
}

/// Splits words and knowledge into tokens, dedups and caps the knowledge, adds `[CLS]`
/// (and `[SEP]` in improved mode). Returns the words and the sentence length in characters.
fn prepare(tree: &SentenceTree, config: &KbertConfig) -> Result<(Vec<Word>, usize), KbertError> {
    let keep_whitespace = config.mode == InjectionMode::Compat;
    let keep = |c: &char| keep_whitespace || !c.is_whitespace();
    let mut words = vec![Word::special(CLS_TOKEN)];
    let mut char_start = 0;
    for (index, tree_word) in tree.words.iter().enumerate() {
        if tree_word.word.is_empty() {
            return Err(KbertError::EmptyWord { index });
        }
        let tokens: Vec<Piece> = if is_special_token(&tree_word.word) {
            vec![Piece {
                token: tree_word.word.clone(),
                source: Some(char_start),
            }]
        } else {
            tree_word
                .word
                .chars()
                .enumerate()
                .filter(|(_, c)| keep(c))
                .map(|(offset, c)| Piece {
                    token: c.to_string(),
                    source: Some(char_start + offset),
                })
                .collect()
        };
        char_start += tree_word.word.chars().count();
        let mut branches: Vec<Vec<String>> = Vec::new();
        let mut branch_sources = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (source, injected) in tree_word.injected.iter().enumerate() {
            if tokens.is_empty() || branches.len() == config.max_entities {
                break;
            }
            // K-BERT keeps knowledge in a set, so a repeated string is injected once.
            if seen.contains(&injected.as_str()) {
                continue;
            }
            seen.push(injected);
            let branch: Vec<String> = injected
                .chars()
                .filter(keep)
                .map(|c| c.to_string())
                .collect();
            if !branch.is_empty() {
                branches.push(branch);
                branch_sources.push(source);
            }
        }
        words.push(Word {
            tokens,
            branches,
            origin: Some(index),
            branch_sources,
        });
    }
    if config.mode == InjectionMode::Improved {
        words.push(Word::special(SEP_TOKEN));
    }
    Ok((words, char_start))
}

/// Improved mode: cuts the sentence only if it alone exceeds `max_length` (keeping the final
/// `[SEP]`), then keeps the best-ranked branches that fit in the remaining room.
fn fit_improved(words: &mut Vec<Word>, max_length: usize) {
    let sentence_len: usize = words.iter().map(|w| w.tokens.len()).sum();
    if sentence_len > max_length {
        // The last word is [SEP]; keep max_length - 1 tokens before it.
        let sep = words.pop();
        let mut room = max_length - 1;
        words.retain_mut(|word| {
            word.branches.clear();
            word.tokens.truncate(room);
            room -= word.tokens.len();
            !word.tokens.is_empty()
        });
        words.extend(sep);
        return;
    }
    let mut room = max_length - sentence_len;
    let max_rank = words.iter().map(|w| w.branches.len()).max().unwrap_or(0);
    let mut kept = vec![0usize; words.len()];
    'ranks: for rank in 0..max_rank {
        for (index, word) in words.iter().enumerate() {
            if let Some(branch) = word.branches.get(rank) {
                if branch.len() > room {
                    break 'ranks;
                }
                room -= branch.len();
                kept[index] = rank + 1;
            }
        }
    }
    for (word, kept) in words.iter_mut().zip(kept) {
        word.branches.truncate(kept);
    }
}

/// A flattened token before vocabulary lookup.
struct Flat {
    token: String,
    position: u32,
    knowledge: bool,
    source: Option<usize>,
}

/// Where one word landed in the flat sequence.
struct Span {
    sentence: Range<usize>,
    branches: Vec<Range<usize>>,
    /// The word's tree index and its branches' injected-list indices.
    origin: Option<usize>,
    branch_sources: Vec<usize>,
}

/// The flat sequence with each word's token ranges, from which visibility follows.
struct Layout {
    flat: Vec<Flat>,
    spans: Vec<Span>,
}

impl Layout {
    fn from_words(words: &[Word]) -> Self {
        let mut flat = Vec::new();
        let mut spans = Vec::with_capacity(words.len());
        // Position of the next sentence token.
        let mut next: u32 = 0;
        for word in words {
            let start = flat.len();
            for piece in &word.tokens {
                flat.push(Flat {
                    token: piece.token.clone(),
                    position: next,
                    knowledge: false,
                    source: piece.source,
                });
                next += 1;
            }
            let sentence = start..flat.len();
            let mut branches = Vec::with_capacity(word.branches.len());
            for branch in &word.branches {
                let start = flat.len();
                // Branches continue from the anchor's last position (= next - 1).
                for (offset, token) in (0u32..).zip(branch) {
                    flat.push(Flat {
                        token: token.clone(),
                        position: next + offset,
                        knowledge: true,
                        source: None,
                    });
                }
                branches.push(start..flat.len());
            }
            spans.push(Span {
                sentence,
                branches,
                origin: word.origin,
                branch_sources: word.branch_sources.clone(),
            });
        }
        Self { flat, spans }
    }

    fn truncate(&mut self, max_length: usize) {
        self.flat.truncate(max_length);
        let clip = |r: &mut Range<usize>| {
            r.start = r.start.min(max_length);
            r.end = r.end.min(max_length);
        };
        for span in &mut self.spans {
            clip(&mut span.sentence);
            span.branches.iter_mut().for_each(clip);
        }
    }

    fn visible(&self, len: usize, pads_see_themselves: bool) -> VisibleMatrix {
        let mut visible = VisibleMatrix::new(len);
        let mut sentence_row = vec![0u64; len.div_ceil(64)];
        for span in &self.spans {
            set_bits(&mut sentence_row, span.sentence.clone());
        }
        for span in &self.spans {
            let Span {
                sentence, branches, ..
            } = span;
            if let Some(first) = sentence.clone().next() {
                visible.row_mut(first).copy_from_slice(&sentence_row);
                for branch in branches {
                    visible.set_range(first, branch.clone());
                }
                sentence
                    .clone()
                    .skip(1)
                    .for_each(|row| visible.copy_row(first, row));
            }
            for branch in branches {
                if let Some(first) = branch.clone().next() {
                    visible.set_range(first, branch.clone());
                    visible.set_range(first, sentence.clone());
                    branch
                        .clone()
                        .skip(1)
                        .for_each(|row| visible.copy_row(first, row));
                }
            }
        }
        if pads_see_themselves {
            (self.flat.len()..len).for_each(|pad| visible.set(pad, pad));
        }
        visible
    }

    fn into_input(
        self,
        vocab: &impl TokenIds,
        config: &KbertConfig,
        char_count: usize,
    ) -> KbertInput {
        let len = config.max_length;
        let real_len = self.flat.len();
        let visible = self.visible(len, config.mode == InjectionMode::Improved);
        let injected = self
            .spans
            .iter()
            .filter_map(|span| Some((span.origin?, span)))
            .flat_map(|(word, span)| {
                span.branches
                    .iter()
                    .zip(&span.branch_sources)
                    .filter(|(range, _)| !range.is_empty())
                    .map(move |(_, &source)| (word, source))
            })
            .collect();
        let mut char_to_token = vec![None; char_count];
        for (index, flat) in self.flat.iter().enumerate() {
            if let Some(c) = flat.source {
                char_to_token[c] = Some(index);
            }
        }
        let pad_position = u32::try_from(len - 1).unwrap_or(u32::MAX);
        let mut tokens = Vec::with_capacity(len);
        let mut soft_positions = Vec::with_capacity(len);
        let mut knowledge_mask = Vec::with_capacity(len);
        for flat in self.flat {
            tokens.push(flat.token);
            soft_positions.push(flat.position);
            knowledge_mask.push(u8::from(flat.knowledge));
        }
        tokens.resize(len, PAD_TOKEN.to_string());
        soft_positions.resize(len, pad_position);
        knowledge_mask.resize(len, 0);
        let input_ids = tokens.iter().map(|t| vocab.token_id(t)).collect();
        KbertInput {
            tokens,
            input_ids,
            soft_positions,
            knowledge_mask,
            visible,
            char_to_token,
            real_len,
            injected,
        }
    }
}
