//! Encoder inputs as the task stages build them: one unpadded [`InputSequence`] per example
//! (token ids, positions, segment ids and, with K-BERT knowledge, who sees whom), and an
//! [`InputBatch`] that lays a set of them out as the tensors [`crate::model::BertModel`] takes:
//! one sequence per row, padded ([`Layout::Padded`]), or several short sequences back to back
//! in a row ([`Layout::Packed`]), kept apart by a block-diagonal visible matrix and positions
//! that restart at each sequence, so each sequence is encoded exactly as if it were alone
//! while almost no compute goes to padding.
//! NER, relation extraction and QA all featurize into an `InputSequence`, so every encoder
//! configuration (plain, K-BERT, ERNIE entities, both) reaches every head the same way
//! through [`crate::model::Encoder`].
use candle_core::{DType, Device, Result, Tensor};

use super::VisibleMatrix;
use crate::model::{EncoderBatch, EncoderInput, EntityTable};

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
    /// ERNIE entity of each token: a row of the entity table, `-1` for none (ERNIE-THU puts
    /// a linked entity on the first token of its mention). Empty means no entity anywhere.
    pub entities: Vec<i64>,
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
            entities: Vec::new(),
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

/// How the sequences of a batch are laid out in rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// One sequence per row, padded to the longest.
    #[default]
    Padded,
    /// Sequences packed back to back into as few rows as the longest of them allows (first
    /// fit, longest first); attention never crosses from one sequence to another.
    Packed,
}

/// Sequences laid out as `[B, L]` (and `[B, L, L]`) tensors, one per row or packed.
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
    /// `[B, L]` entity rows (i64, `-1` = none, padding included), when some sequence has
    /// entities.
    pub entity_ids: Option<Tensor>,
    /// `[B, L]` 1 for tokens that carry an entity (u32), alongside `entity_ids`.
    pub entity_mask: Option<Tensor>,
    /// `L`, the row length.
    pub len: usize,
    /// For each sequence (in the order given), the flat index into `[B·L]` of its first token;
    /// its token `t` sits at `starts[i] + t`.
    pub starts: Vec<usize>,
    /// Real tokens in the batch.
    pub tokens: usize,
    /// Tokens including padding (`B·L`).
    pub padded_tokens: usize,
}

impl InputBatch {
    /// Pads `sequences` to the longest of them (at least 1), one per row.
    pub fn new(sequences: &[&InputSequence], device: &Device) -> Result<Self> {
        Self::with_layout(sequences, Layout::Padded, device)
    }

    /// Lays `sequences` out as `layout` says.
    pub fn with_layout(
        sequences: &[&InputSequence],
        layout: Layout,
        device: &Device,
    ) -> Result<Self> {
        let l = sequences.iter().map(|s| s.len()).max().unwrap_or(1).max(1);
        let rows = match layout {
            Layout::Padded => (0..sequences.len()).map(|i| vec![i]).collect(),
            Layout::Packed => pack_rows(sequences, l),
        };
        let b = rows.len();
        let mut ids = vec![0u32; b * l];
        let mut mask = vec![0u32; b * l];
        let mut pos = vec![0u32; b * l];
        let any_types = sequences.iter().any(|s| !s.token_types.is_empty());
        let mut types = vec![0u32; if any_types { b * l } else { 0 }];
        let any_visible = layout == Layout::Packed || sequences.iter().any(|s| s.visible.is_some());
        let mut vis = vec![0u8; if any_visible { b * l * l } else { 0 }];
        let any_entities = sequences.iter().any(|s| !s.entities.is_empty());
        let mut ents = vec![-1i64; if any_entities { b * l } else { 0 }];
        let mut starts = vec![0; sequences.len()];
        for (r, row) in rows.iter().enumerate() {
            let mut at = 0;
            for &i in row {
                let s = sequences[i];
                let n = s.len();
                starts[i] = r * l + at;
                let span = r * l + at..r * l + at + n;
                ids[span.clone()].copy_from_slice(&s.input_ids);
                mask[span.clone()].fill(1);
                pos[span.clone()].copy_from_slice(&s.positions);
                if !s.token_types.is_empty() {
                    types[span.clone()].copy_from_slice(&s.token_types);
                }
                if !s.entities.is_empty() {
                    if s.entities.len() != n {
                        candle_core::bail!(
                            "sequence {i} has {} entity slots for {n} tokens",
                            s.entities.len()
                        );
                    }
                    ents[span].copy_from_slice(&s.entities);
                }
                if any_visible {
                    // The sequence's own block; everything outside it stays invisible.
                    for q in 0..n {
                        let line = (r * l + at + q) * l + at;
                        for (k, seen) in vis[line..line + n].iter_mut().enumerate() {
                            *seen = u8::from(s.visible.as_ref().is_none_or(|v| v.get(q, k)));
                        }
                    }
                }
                at += n;
            }
            if any_visible {
                // Every row (padding included) sees at least itself.
                for q in 0..l {
                    vis[(r * l + q) * l + q] = 1;
                }
            }
        }
        let tokens = sequences.iter().map(|s| s.len()).sum();
        let entity_mask: Vec<u32> = ents.iter().map(|&e| u32::from(e >= 0)).collect();
        let (entity_ids, entity_mask) = if any_entities {
            (
                Some(Tensor::from_vec(ents, (b, l), device)?),
                Some(Tensor::from_vec(entity_mask, (b, l), device)?),
            )
        } else {
            (None, None)
        };
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
            entity_ids,
            entity_mask,
            len: l,
            starts,
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

    /// `[B, L, 100]` entity vectors looked up in `table` (zero vectors where there is no
    /// entity) and the `[B, L]` entity mask; all zeros when no sequence has entities.
    pub fn entity_vectors(&self, table: &EntityTable) -> Result<(Tensor, Tensor)> {
        let (b, l) = self.input_ids.dims2()?;
        let device = self.input_ids.device();
        match (&self.entity_ids, &self.entity_mask) {
            (Some(ids), Some(mask)) => Ok((table.lookup(ids)?, mask.clone())),
            _ => Ok((
                Tensor::zeros((b, l, table.dim()), table.dtype(), device)?,
                Tensor::zeros((b, l), DType::U32, device)?,
            )),
        }
    }
}

impl EncoderBatch for InputBatch {
    fn encoder_input(&self) -> EncoderInput<'_> {
        InputBatch::encoder_input(self)
    }

    fn entity_vectors(&self, table: &EntityTable) -> Result<(Tensor, Tensor)> {
        InputBatch::entity_vectors(self, table)
    }
}

/// Groups sequences into rows of at most `capacity` tokens: longest first, each into the
/// first row with room (ties keep input order, so the packing is deterministic).
fn pack_rows(sequences: &[&InputSequence], capacity: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..sequences.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(sequences[i].len()));
    let mut rows: Vec<(usize, Vec<usize>)> = Vec::new();
    for i in order {
        let n = sequences[i].len();
        match rows.iter_mut().find(|(used, _)| used + n <= capacity) {
            Some((used, row)) => {
                *used += n;
                row.push(i);
            }
            None => rows.push((n, vec![i])),
        }
    }
    rows.into_iter().map(|(_, row)| row).collect()
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
    fn entities_are_padded_with_minus_one_and_masked() {
        let a = InputSequence {
            entities: vec![-1, 1, -1],
            ..InputSequence::plain(vec![2, 7, 3])
        };
        let b = InputSequence::plain(vec![2, 3]);
        let batch = InputBatch::new(&[&a, &b], &Device::Cpu).unwrap();
        let ids = batch.entity_ids.as_ref().unwrap().to_vec2::<i64>().unwrap();
        assert_eq!(ids, [vec![-1, 1, -1], vec![-1, -1, -1]]);
        let mask = batch
            .entity_mask
            .as_ref()
            .unwrap()
            .to_vec2::<u32>()
            .unwrap();
        assert_eq!(mask, [vec![0, 1, 0], vec![0, 0, 0]]);
        let table = Tensor::new(&[[1f32, 2.0], [3.0, 4.0]], &Device::Cpu).unwrap();
        let table = EntityTable::new(&table).unwrap();
        let (vectors, _) = batch.entity_vectors(&table).unwrap();
        let v = vectors.to_vec3::<f32>().unwrap();
        assert_eq!(v[0], [vec![0.0, 0.0], vec![3.0, 4.0], vec![0.0, 0.0]]);
        assert_eq!(v[1], vec![vec![0.0, 0.0]; 3]);

        let wrong = InputSequence {
            entities: vec![-1],
            ..InputSequence::plain(vec![2, 3])
        };
        let err = InputBatch::new(&[&wrong], &Device::Cpu).unwrap_err();
        assert!(
            err.to_string().contains("1 entity slots for 2 tokens"),
            "{err}"
        );
    }

    #[test]
    fn packed_rows_keep_sequences_apart() {
        let long = InputSequence::plain(vec![2, 5, 6, 7, 3]);
        let a = InputSequence::plain(vec![2, 8, 3]);
        let mut v = VisibleMatrix::new(2);
        v.set(0, 0);
        v.set(1, 1);
        let b = InputSequence {
            visible: Some(v),
            entities: vec![-1, 4],
            ..InputSequence::plain(vec![2, 3])
        };
        let batch =
            InputBatch::with_layout(&[&a, &long, &b], Layout::Packed, &Device::Cpu).unwrap();
        // Rows of 5: [long], [a b].
        assert_eq!(batch.len, 5);
        assert_eq!(batch.starts, [5, 0, 8]);
        assert_eq!((batch.tokens, batch.padded_tokens), (10, 10));
        let ids = batch.input_ids.to_vec2::<u32>().unwrap();
        assert_eq!(ids, [vec![2, 5, 6, 7, 3], vec![2, 8, 3, 2, 3]]);
        let pos = batch.position_ids.to_vec2::<u32>().unwrap();
        assert_eq!(pos, [vec![0, 1, 2, 3, 4], vec![0, 1, 2, 0, 1]]);
        let ents = batch.entity_ids.as_ref().unwrap().to_vec2::<i64>().unwrap();
        assert_eq!(ents, [vec![-1; 5], vec![-1, -1, -1, -1, 4]]);
        let vis = batch.visible.unwrap().to_vec3::<u32>().unwrap();
        assert_eq!(vis[0], vec![vec![1; 5]; 5]);
        assert_eq!(
            vis[1],
            [
                vec![1, 1, 1, 0, 0],
                vec![1, 1, 1, 0, 0],
                vec![1, 1, 1, 0, 0],
                vec![0, 0, 0, 1, 0],
                vec![0, 0, 0, 0, 1],
            ]
        );
        // The padded layout of the same sequences: one row each, starts at row starts.
        let padded = InputBatch::new(&[&a, &long, &b], &Device::Cpu).unwrap();
        assert_eq!(padded.starts, [0, 5, 10]);
        assert_eq!(padded.padded_tokens, 15);
    }

    #[test]
    fn plain_batches_carry_no_optional_tensors() {
        let a = InputSequence::plain(vec![2, 3]);
        let batch = InputBatch::new(&[&a], &Device::Cpu).unwrap();
        assert!(batch.token_type_ids.is_none() && batch.visible.is_none());
        assert!(batch.entity_ids.is_none() && batch.entity_mask.is_none());
        let pos = batch.position_ids.to_vec2::<u32>().unwrap();
        assert_eq!(pos, [vec![0, 1]]);
    }
}
