//! The inputs of one BERT forward pass: the token tensors ([`EncoderInput`]) and the additive
//! attention bias every layer adds to its scores ([`AttentionBias`]).
use candle_core::{DType, Device, Result, Tensor};

use super::MASK_BIAS;

/// The additive attention bias of one batch, `[B, R, L]` with `R = 1` (padding mask only,
/// broadcast over queries) or `R = L` (a visible matrix, possibly combined with padding).
#[derive(Debug, Clone)]
pub struct AttentionBias {
    bias: Tensor,
}

impl AttentionBias {
    /// Builds the bias from an optional padding mask `[B, L]` (1 = real token) and an optional
    /// visible matrix `[B, L, L]` (1 = query row may attend key column); each masked entry adds
    /// `-10000`. With neither, nothing is masked.
    pub fn new(
        attention_mask: Option<&Tensor>,
        visible_matrix: Option<&Tensor>,
        (b, l): (usize, usize),
        device: &Device,
    ) -> Result<Self> {
        let to_bias = |m: &Tensor| -> Result<Tensor> {
            m.to_dtype(DType::F32)?.affine(-MASK_BIAS, MASK_BIAS)
        };
        let pad = attention_mask
            .map(|m| to_bias(m)?.reshape((b, 1, l)))
            .transpose()?;
        let vis = visible_matrix
            .map(|m| to_bias(m)?.reshape((b, l, l)))
            .transpose()?;
        let bias = match (pad, vis) {
            (None, None) => Tensor::zeros((b, 1, l), DType::F32, device)?,
            (Some(p), None) => p,
            (None, Some(v)) => v,
            (Some(p), Some(v)) => v.broadcast_add(&p)?,
        };
        Ok(Self { bias })
    }

    /// The bias tensor, `[B, R, L]` in f32.
    pub fn tensor(&self) -> &Tensor {
        &self.bias
    }
}

/// Inputs of one batch; everything but `input_ids` is optional.
#[derive(Debug, Clone, Copy)]
pub struct EncoderInput<'a> {
    /// Token ids `[B, L]` (u32 or i64).
    pub input_ids: &'a Tensor,
    /// Segment ids `[B, L]`; default all 0.
    pub token_type_ids: Option<&'a Tensor>,
    /// Position ids `[B, L]`; default `0..L` (K-BERT passes soft positions).
    pub position_ids: Option<&'a Tensor>,
    /// Padding mask `[B, L]`, 1 for real tokens.
    pub attention_mask: Option<&'a Tensor>,
    /// Visible matrix `[B, L, L]` of 0/1, applied in every layer.
    pub visible_matrix: Option<&'a Tensor>,
}

impl<'a> EncoderInput<'a> {
    /// Input with token ids only.
    pub fn new(input_ids: &'a Tensor) -> Self {
        Self {
            input_ids,
            token_type_ids: None,
            position_ids: None,
            attention_mask: None,
            visible_matrix: None,
        }
    }
}
