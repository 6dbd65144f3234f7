//! The NER model stage's exact inputs, written out so that a reference implementation
//! (`benches/ner_reference.py`: PyTorch and ONNX Runtime) runs the very same K-BERT inputs as
//! zhishi and decodes them the same way.
//!
//! The file is JSON lines: one [`DumpHeader`], then one [`DumpedWindow`] per encoder window
//! in prediction order. Windows of the same `group` (one pipeline batch of documents) are
//! predicted together as [`super::predict::predict_labels`] does: sorted by length (stable),
//! cut into batches of `predict_batch`, padded to the longest; each character takes its
//! scores from the window where it is most central (`min(c, n - 1 - c)` over the window's
//! `n` characters, the first such window winning ties); characters without a token score
//! `O`; each document is then decoded as one sequence.
use std::io::Write;

use serde::{Deserialize, Serialize};

use super::features::Example;
use super::model::ModelMeta;
use super::predict::PREDICT_BATCH;

/// The `format` of a dump header.
pub const DUMP_FORMAT: &str = "zhishi-ner-inputs/1";

/// First line of a dump: how to batch and decode the windows that follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpHeader {
    /// Always [`DUMP_FORMAT`].
    pub format: String,
    /// Label names by id (`O` first).
    pub labels: Vec<String>,
    /// Tagging scheme (`bio`, `bioes`, `bmes`).
    pub scheme: String,
    /// Whether a CRF decodes (else the arg-max of each character's scores).
    pub crf: bool,
    /// `allowed[from][to]`: transitions the scheme permits (1) — Viterbi never takes others.
    pub allowed: Vec<Vec<u8>>,
    /// Labels a sequence may start with (1).
    pub allowed_start: Vec<u8>,
    /// Labels a sequence may end with (1).
    pub allowed_end: Vec<u8>,
    /// Windows per forward pass.
    pub predict_batch: usize,
    /// Score of `O` (and minus the score of every other label) for characters without a token.
    pub no_token_o: f32,
}

impl DumpHeader {
    /// The header of a model with these settings.
    pub fn new(meta: &ModelMeta) -> Self {
        let labels = &meta.labels;
        let k = labels.len();
        let bit = |b: bool| u8::from(b);
        Self {
            format: DUMP_FORMAT.to_string(),
            labels: labels.labels.clone(),
            scheme: format!("{:?}", labels.scheme).to_lowercase(),
            crf: meta.crf,
            allowed: (0..k)
                .map(|from| (0..k).map(|to| bit(labels.allowed(from, to))).collect())
                .collect(),
            allowed_start: (0..k).map(|i| bit(labels.allowed_start(i))).collect(),
            allowed_end: (0..k).map(|i| bit(labels.allowed_end(i))).collect(),
            predict_batch: PREDICT_BATCH,
            no_token_o: super::predict::NO_TOKEN_O,
        }
    }
}

/// One encoder window as the model stage feeds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DumpedWindow {
    /// The pipeline batch of documents it was predicted with.
    pub group: usize,
    /// Its document's index in the corpus (0-based).
    pub doc: usize,
    /// Characters in the document.
    pub doc_chars: usize,
    /// The window's first character in the document.
    pub offset: usize,
    /// Token ids, `[CLS] … [SEP]` with K-BERT knowledge injected.
    pub input_ids: Vec<u32>,
    /// Position ids (K-BERT soft positions).
    pub positions: Vec<u32>,
    /// The visible matrix (`len × len`, row = query) as hex of its bits packed row-major,
    /// most significant bit first (`numpy.packbits`); `null` when every token sees every token.
    pub visible: Option<String>,
    /// For each character of the window, the index of its token (`null`: no token, scored `O`).
    pub char_tokens: Vec<Option<usize>>,
}

impl DumpedWindow {
    /// The dump line of `example`, a window of document `doc` (`doc_chars` characters) in
    /// pipeline batch `group`. Errors for ERNIE inputs (entity vectors), which the reference
    /// does not run.
    pub fn new(
        group: usize,
        doc: usize,
        doc_chars: usize,
        example: &Example,
    ) -> Result<Self, super::NerError> {
        let input = &example.input;
        if input.entities.iter().any(|&e| e >= 0) || !input.token_types.is_empty() {
            return Err(super::NerError::NotDumpable);
        }
        Ok(Self {
            group,
            doc,
            doc_chars,
            offset: example.offset,
            input_ids: input.input_ids.clone(),
            positions: input.positions.clone(),
            visible: input.visible.as_ref().map(|v| {
                let n = input.len();
                pack_bits((0..n * n).map(|i| v.get(i / n, i % n)))
            }),
            char_tokens: example.char_tokens.clone(),
        })
    }

    /// The visible matrix unpacked (`len × len`, row-major), `None` when absent or malformed.
    pub fn visible_bits(&self) -> Option<Vec<bool>> {
        let hex = self.visible.as_ref()?;
        let n = self.input_ids.len();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<_>>()?;
        if bytes.len() != (n * n).div_ceil(8) {
            return None;
        }
        Some(
            (0..n * n)
                .map(|i| bytes[i / 8] & (0x80 >> (i % 8)) != 0)
                .collect(),
        )
    }
}

/// Bits packed MSB first into bytes, as lowercase hex.
fn pack_bits(bits: impl Iterator<Item = bool>) -> String {
    let mut bytes = Vec::new();
    for (i, b) in bits.enumerate() {
        if i % 8 == 0 {
            bytes.push(0u8);
        }
        if b {
            if let Some(last) = bytes.last_mut() {
                *last |= 0x80 >> (i % 8);
            }
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes one JSON line.
pub fn write_line(out: &mut impl Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::{InputSequence, VisibleMatrix};
    use crate::stages::ner::tags::{LabelMap, TagScheme};
    use crate::stages::task::KnowledgeRecord;

    #[test]
    fn a_window_round_trips_through_its_dump_line() {
        let mut visible = VisibleMatrix::new(5);
        for q in 0..5 {
            visible.set_range(q, 0..3);
            visible.set(q, q);
        }
        visible.set(3, 4);
        let example = Example {
            sentence: 0,
            offset: 2,
            input: InputSequence {
                positions: vec![0, 1, 2, 2, 3],
                visible: Some(visible.clone()),
                ..InputSequence::plain(vec![2, 10, 11, 12, 3])
            },
            char_tokens: vec![Some(1), None, Some(2)],
            labels: Vec::new(),
        };
        let line = DumpedWindow::new(4, 7, 9, &example).unwrap();
        let json = serde_json::to_string(&line).unwrap();
        let back: DumpedWindow = serde_json::from_str(&json).unwrap();
        assert_eq!(back, line);
        assert_eq!(
            (back.group, back.doc, back.doc_chars, back.offset),
            (4, 7, 9, 2)
        );
        assert_eq!(back.positions, [0, 1, 2, 2, 3]);
        let bits = back.visible_bits().unwrap();
        for q in 0..5 {
            for k in 0..5 {
                assert_eq!(bits[q * 5 + k], visible.get(q, k), "({q}, {k})");
            }
        }
        // 25 bits -> 4 bytes -> 8 hex digits; row 0 is 11100, row 1 starts 111.
        assert_eq!(back.visible.as_deref().map(str::len), Some(8));
        assert!(json.contains("\"char_tokens\":[1,null,2]"), "{json}");
    }

    #[test]
    fn the_header_spells_out_the_decoding_constraints() {
        let meta = ModelMeta {
            labels: LabelMap::new(TagScheme::Bio, ["X".to_string()]),
            max_len: 16,
            stride: 8,
            crf: true,
            knowledge: KnowledgeRecord::plain(),
        };
        let header = DumpHeader::new(&meta);
        assert_eq!(header.labels, ["O", "B-X", "I-X"]);
        assert_eq!(header.scheme, "bio");
        // O -> I-X is forbidden under BIO; so is starting on I-X.
        assert_eq!(header.allowed[0], [1, 1, 0]);
        assert_eq!(header.allowed_start, [1, 1, 0]);
        assert_eq!(header.predict_batch, PREDICT_BATCH);
    }
}
