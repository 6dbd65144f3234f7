//! Encoder inputs as the task stages build them: one unpadded [`InputSequence`] per example
//! (token ids, positions, segment ids and, with K-BERT knowledge, who sees whom), and an
//! [`InputBatch`] that pads a set of them into the tensors [`crate::model::BertModel`] takes.
//! NER, relation extraction and QA all featurize into an `InputSequence`, so every encoder
//! configuration (plain, K-BERT) reaches every head the same way.
use candle_core::{DType, Device, Result, Tensor};

use super::VisibleMatrix;
use crate::model::EncoderInput;

/// One example's encoder input, without padding.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InputSequence {
    /// Token ids, `[CLS] … [SEP]`.
    pub input_ids: Vec<u32>,
    /// Position of each token (soft positions with K-BERT); same length as `input_ids`.
    pub positions: Vec<u32>,
    /// Segment id of each token; empty means all 0.
    pub token_types: Vec<u32>,
    /// Who sees whom (K-BERT); `None` means every token sees every token.
    pub visible: Option<VisibleMatrix>,
}

impl InputSequence {
    /// A sequence with positions `0..n`, one segment and full visibility.
    pub fn plain(input_ids: Vec<u32>) -> Self {
        let positions = (0..input_ids.len() as u32).collect();
        Self {
            input_ids,
            positions,
            token_types: Vec::new(),
            visible: None,
        }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }
}

/// Sequences padded to the longest of them, as `[B, L]` (and `[B, L, L]`) tensors.
#[derive(Debug, Clone)]
pub struct InputBatch {
    /// `[B, L]` token ids (0 at padding).
    pub input_ids: Tensor,
    /// `[B, L]` 1 for real tokens.
    pub attention_mask: Tensor,
    /// `[B, L]` positions.
    pub position_ids: Tensor,
    /// `[B, L]` segment ids, when some sequence has them.
    pub token_type_ids: Option<Tensor>,
    /// `[B, L, L]` visible matrix, when some sequence carries one. Sequences without one see
    /// all their real tokens; padding rows see only themselves.
    pub visible: Option<Tensor>,
    /// `L`, the padded length.
    pub len: usize,
    /// Real tokens in the batch.
    pub tokens: usize,
    /// Tokens including padding (`B·L`).
    pub padded_tokens: usize,
}

impl InputBatch {
    /// Pads `sequences` to the longest of them (at least 1).
    pub fn new(sequences: &[&InputSequence], device: &Device) -> Result<Self> {
        let b = sequences.len();
        let l = sequences.iter().map(|s| s.len()).max().unwrap_or(1).max(1);
        let mut ids = vec![0u32; b * l];
        let mut mask = vec![0u32; b * l];
        let mut pos = vec![0u32; b * l];
        let any_types = sequences.iter().any(|s| !s.token_types.is_empty());
        let mut types = vec![0u32; if any_types { b * l } else { 0 }];
        let any_visible = sequences.iter().any(|s| s.visible.is_some());
        let mut vis = vec![0u8; if any_visible { b * l * l } else { 0 }];
        for (i, s) in sequences.iter().enumerate() {
            let n = s.len();
            let row = i * l..i * l + n;
            ids[row.clone()].copy_from_slice(&s.input_ids);
            mask[row.clone()].fill(1);
            pos[row.clone()].copy_from_slice(&s.positions);
            if !s.token_types.is_empty() {
                types[row].copy_from_slice(&s.token_types);
            }
            if any_visible {
                for r in 0..l {
                    for c in 0..l {
                        let seen = match &s.visible {
                            Some(v) => r < n && c < n && v.get(r, c),
                            None => r < n && c < n,
                        };
                        vis[(i * l + r) * l + c] = u8::from(seen || r == c);
                    }
                }
            }
        }
        let tokens = sequences.iter().map(|s| s.len()).sum();
        Ok(Self {
            input_ids: Tensor::from_vec(ids, (b, l), device)?,
            attention_mask: Tensor::from_vec(mask, (b, l), device)?,
            position_ids: Tensor::from_vec(pos, (b, l), device)?,
            token_type_ids: if any_types {
                Some(Tensor::from_vec(types, (b, l), device)?)
            } else {
                None
            },
            visible: if any_visible {
                Some(Tensor::from_vec(vis, (b, l, l), device)?.to_dtype(DType::U32)?)
            } else {
                None
            },
            len: l,
            tokens,
            padded_tokens: b * l,
        })
    }

    /// The batch as the encoder's input.
    pub fn encoder_input(&self) -> EncoderInput<'_> {
        EncoderInput {
            token_type_ids: self.token_type_ids.as_ref(),
            position_ids: Some(&self.position_ids),
            attention_mask: Some(&self.attention_mask),
            visible_matrix: self.visible.as_ref(),
            ..EncoderInput::new(&self.input_ids)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_to_the_longest_and_keeps_segments_and_visibility() {
        let a = InputSequence {
            token_types: vec![0, 0, 1],
            ..InputSequence::plain(vec![2, 7, 3])
        };
        let mut v = VisibleMatrix::new(2);
        v.set(0, 0);
        v.set(1, 1);
        let b = InputSequence {
            visible: Some(v),
            ..InputSequence::plain(vec![2, 3])
        };
        let batch = InputBatch::new(&[&a, &b], &Device::Cpu).unwrap();
        assert_eq!(batch.len, 3);
        assert_eq!((batch.tokens, batch.padded_tokens), (5, 6));
        let ids = batch.input_ids.to_vec2::<u32>().unwrap();
        assert_eq!(ids, [vec![2, 7, 3], vec![2, 3, 0]]);
        let mask = batch.attention_mask.to_vec2::<u32>().unwrap();
        assert_eq!(mask, [vec![1, 1, 1], vec![1, 1, 0]]);
        let types = batch.token_type_ids.unwrap().to_vec2::<u32>().unwrap();
        assert_eq!(types, [vec![0, 0, 1], vec![0, 0, 0]]);
        let vis = batch.visible.unwrap().to_vec3::<u32>().unwrap();
        assert_eq!(vis[0], [vec![1, 1, 1], vec![1, 1, 1], vec![1, 1, 1]]);
        assert_eq!(vis[1], [vec![1, 0, 0], vec![0, 1, 0], vec![0, 0, 1]]);
    }

    #[test]
    fn plain_batches_carry_no_optional_tensors() {
        let a = InputSequence::plain(vec![2, 3]);
        let batch = InputBatch::new(&[&a], &Device::Cpu).unwrap();
        assert!(batch.token_type_ids.is_none() && batch.visible.is_none());
        let pos = batch.position_ids.to_vec2::<u32>().unwrap();
        assert_eq!(pos, [vec![0, 1]]);
    }
}
