//! A BERT forward pass that keeps what TinyBERT-style distillation (Jiao et al., 2020)
//! matches between a teacher and a student: every layer's output hidden states and its
//! attention scores. Candle ops only (the fused kernels keep no intermediate state), so
//! gradients reach every parameter of a [`Kernels::Differentiable`] model.
use candle_core::{Result, Tensor};

use super::{AttentionBias, BertLayer, BertModel, EncoderInput, Kernels};
use crate::model::Dropout;

/// The intermediate states of one forward pass.
#[derive(Debug, Clone)]
pub struct Trace {
    /// The output of every layer in order, `[B, L, H]` each; the last is `last_hidden_state`.
    pub hidden: Vec<Tensor>,
    /// Every layer's scaled attention scores `QKᵀ/√d`, `[B, heads, L, L]` each, before the
    /// padding/visibility bias is added.
    pub scores: Vec<Tensor>,
    /// The batch's additive attention bias `[B, R, L]` (0 where a query may attend a key).
    pub bias: AttentionBias,
}

impl Trace {
    /// `last_hidden_state [B, L, H]`.
    pub fn last(&self) -> Result<&Tensor> {
        self.hidden
            .last()
            .ok_or_else(|| candle_core::Error::Msg("a model without layers has no output".into()))
    }
}

impl BertLayer {
    /// [`BertLayer::forward`] that also returns the layer's attention scores.
    fn forward_traced(
        &self,
        x: &Tensor,
        bias: &AttentionBias,
        dropout: &Dropout,
    ) -> Result<(Tensor, Tensor)> {
        let (context, scores) = self.attention.self_attention.attend(x, bias, dropout)?;
        let h = self.attention.output.forward(&context, x, dropout)?;
        let i = self.intermediate.forward(&h)?;
        Ok((self.output.forward(&i, &h, dropout)?, scores))
    }
}

impl BertModel {
    /// [`BertModel::forward_train`] keeping every layer's output and attention scores. Needs
    /// a model loaded with [`Kernels::Differentiable`].
    pub fn forward_traced(&self, input: &EncoderInput, dropout: &Dropout) -> Result<Trace> {
        if self.config.kernels != Kernels::Differentiable {
            candle_core::bail!(
                "a traced forward pass needs the differentiable kernels, not {:?}",
                self.config.kernels
            );
        }
        let (b, l) = input.input_ids.dims2()?;
        let device = input.input_ids.device();
        let bias = AttentionBias::new(input.attention_mask, input.visible_matrix, (b, l), device)?;
        let x =
            self.embeddings
                .forward(input.input_ids, input.token_type_ids, input.position_ids)?;
        let mut h = self.encoder.map_in(&dropout.forward(&x)?)?;
        let depth = self.config.num_hidden_layers;
        let (mut hidden, mut scores) = (Vec::with_capacity(depth), Vec::with_capacity(depth));
        for layer in self.encoder.stack() {
            let (out, s) = layer.forward_traced(&h, &bias, dropout)?;
            h = out;
            hidden.push(h.clone());
            scores.push(s);
        }
        Ok(Trace {
            hidden,
            scores,
            bias,
        })
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap};

    use super::*;
    use crate::model::BertConfig;

    #[test]
    fn the_traced_pass_ends_where_the_plain_pass_does() {
        let cfg = BertConfig {
            vocab_size: 12,
            hidden_size: 8,
            num_hidden_layers: 3,
            num_attention_heads: 2,
            intermediate_size: 16,
            max_position_embeddings: 16,
            kernels: Kernels::Differentiable,
            ..BertConfig::default()
        };
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = BertModel::load(vb, &cfg).unwrap();
        let ids = Tensor::new(&[[2u32, 5, 6, 7, 3], [2, 8, 3, 0, 0]], &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &Device::Cpu).unwrap();
        let input = EncoderInput {
            attention_mask: Some(&mask),
            ..EncoderInput::new(&ids)
        };
        let plain = model.forward(&input).unwrap();
        let trace = model.forward_traced(&input, &Dropout::disabled()).unwrap();
        assert_eq!((trace.hidden.len(), trace.scores.len()), (3, 3));
        assert_eq!(trace.scores[0].dims(), [2, 2, 5, 5]);
        let diff = (trace.last().unwrap() - &plain)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "{diff}");
    }
}
