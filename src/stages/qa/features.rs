//! From (question, context) pairs to encoder inputs: `[CLS] question [SEP] window [SEP]` with
//! segment ids 0 for the question part and 1 for the context part. The question is cut to
//! `max_query_len` tokens; the context is tokenised once (WordPiece: one token per Chinese
//! character, Latin words and digits as word pieces, whitespace dropped) and cut into windows
//! that start every `doc_stride` tokens, so no part of a long context is lost. Every context
//! token keeps its character offsets into the original context, so predicted token spans map
//! back to exact character spans.
use candle_core::{Device, Result, Tensor};

use super::config::WindowOptions;
use super::QaError;
use crate::doc::Span;
use crate::knowledge::{InputBatch, InputSequence};
use crate::model::BertTokenizer;

/// One window of one question's context, encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Index of the question in its set.
    pub record: usize,
    /// The encoder input, `[CLS] question [SEP] context tokens [SEP]`.
    pub input: InputSequence,
    /// Index in `input` of the window's first context token.
    pub context_start: usize,
    /// `(start, end)` character offsets in the context of each context token of the window.
    pub offsets: Vec<(usize, usize)>,
    /// Training label: the answer's first token in `input`, 0 (`[CLS]`) when the window
    /// does not contain the whole answer.
    pub start: u32,
    /// Training label: the answer's last token in `input`, 0 when not in the window.
    pub end: u32,
}

impl Window {
    /// Tokens the encoder runs over.
    pub fn len(&self) -> usize {
        self.input.len()
    }

    /// Whether there are no tokens (never: the specials are always there).
    pub fn is_empty(&self) -> bool {
        self.input.is_empty()
    }

    /// The character span of context tokens `first..=last` of this window.
    pub fn char_span(&self, first: usize, last: usize) -> Span {
        Span::new(self.offsets[first].0, self.offsets[last].1)
    }
}

/// Token ids with character offsets, specials removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pieces {
    /// Vocabulary ids.
    pub ids: Vec<u32>,
    /// `(start, end)` character offsets of each token in its text.
    pub offsets: Vec<(usize, usize)>,
}

/// Turns questions and contexts into windowed encoder inputs.
pub struct QaFeaturizer {
    tokenizer: BertTokenizer,
    cls: u32,
    sep: u32,
    window: WindowOptions,
}

impl QaFeaturizer {
    /// A featurizer for `window`; the tokenizer must know `[CLS]` and `[SEP]`, and
    /// `max_len` must leave room for one context token after the longest question.
    pub fn new(
        tokenizer: BertTokenizer,
        window: WindowOptions,
    ) -> std::result::Result<Self, String> {
        let id = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| format!("the vocabulary has no {t}"))
        };
        let (cls, sep) = (id("[CLS]")?, id("[SEP]")?);
        if window.max_len < window.max_query_len + 4 {
            return Err(format!(
                "max_len {} leaves no room for context after a question of max_query_len {} (needs max_query_len + 4)",
                window.max_len, window.max_query_len
            ));
        }
        if window.doc_stride == 0 {
            return Err("doc_stride must be at least 1".into());
        }
        Ok(Self {
            tokenizer,
            cls,
            sep,
            window,
        })
    }

    /// The windowing settings.
    pub fn window(&self) -> WindowOptions {
        self.window
    }

    /// Tokenises `text` without `[CLS]`/`[SEP]`, keeping character offsets.
    pub fn pieces(&self, text: &str) -> std::result::Result<Pieces, QaError> {
        let enc = self.tokenizer.encode(text)?;
        let mut out = Pieces::default();
        for (&id, &(s, e)) in enc.ids.iter().zip(&enc.offsets) {
            if (id == self.cls || id == self.sep) && s == e {
                continue;
            }
            out.ids.push(id);
            out.offsets.push((s, e));
        }
        Ok(out)
    }

    /// The context windows `(first token, token count)` over `n` context tokens when the
    /// question takes `q` tokens; every token is in at least one window.
    pub fn windows(&self, n: usize, q: usize) -> Vec<(usize, usize)> {
        let room = self.window.max_len - q - 3;
        let stride = self.window.doc_stride.min(room);
        let mut out = Vec::new();
        let mut start = 0;
        loop {
            let len = room.min(n - start);
            out.push((start, len));
            if start + len >= n {
                return out;
            }
            start += stride;
        }
    }

    /// Encodes every window of one question. `answer` (a character span of the context)
    /// sets the training labels.
    pub fn encode(
        &self,
        record: usize,
        question: &str,
        context: &str,
        answer: Option<Span>,
    ) -> std::result::Result<Vec<Window>, QaError> {
        let mut q = self.pieces(question)?;
        q.ids.truncate(self.window.max_query_len);
        let c = self.pieces(context)?;
        let gold = answer.and_then(|span| token_span(&c.offsets, span));
        let context_start = q.ids.len() + 2;
        Ok(self
            .windows(c.ids.len(), q.ids.len())
            .into_iter()
            .map(|(first, len)| {
                let mut ids = Vec::with_capacity(context_start + len + 1);
                ids.push(self.cls);
                ids.extend_from_slice(&q.ids);
                ids.push(self.sep);
                ids.extend_from_slice(&c.ids[first..first + len]);
                ids.push(self.sep);
                let mut token_types = vec![0; context_start];
                token_types.resize(ids.len(), 1);
                let (start, end) = match gold {
                    Some((s, e)) if s >= first && e < first + len => (
                        (context_start + s - first) as u32,
                        (context_start + e - first) as u32,
                    ),
                    _ => (0, 0),
                };
                Window {
                    record,
                    input: InputSequence {
                        token_types,
                        ..InputSequence::plain(ids)
                    },
                    context_start,
                    offsets: c.offsets[first..first + len].to_vec(),
                    start,
                    end,
                }
            })
            .collect())
    }
}

/// The first and last token covering the character span `span`, if any token overlaps it.
pub fn token_span(offsets: &[(usize, usize)], span: Span) -> Option<(usize, usize)> {
    let first = offsets.iter().position(|&(_, e)| e > span.start)?;
    let last = offsets.iter().rposition(|&(s, _)| s < span.end)?;
    (first <= last).then_some((first, last))
}

/// A padded batch of windows with their labels.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The padded encoder input.
    pub input: InputBatch,
    /// `[B]` gold start token of each window.
    pub start: Tensor,
    /// `[B]` gold end token of each window.
    pub end: Tensor,
}

impl Batch {
    /// Pads `windows` to the longest of them.
    pub fn new(windows: &[&Window], device: &Device) -> Result<Self> {
        let sequences: Vec<&InputSequence> = windows.iter().map(|w| &w.input).collect();
        let input = InputBatch::new(&sequences, device)?;
        let b = windows.len();
        let start: Vec<u32> = windows.iter().map(|w| w.start).collect();
        let end: Vec<u32> = windows.iter().map(|w| w.end).collect();
        Ok(Self {
            input,
            start: Tensor::from_vec(start, b, device)?,
            end: Tensor::from_vec(end, b, device)?,
        })
    }
}
