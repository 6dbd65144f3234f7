//! The BERT encoder ([Devlin et al., 2019](https://arxiv.org/abs/1810.04805)) as candle modules,
//! one struct per layer of the paper, with tensor names equal to the Hugging Face checkpoint's.
//!
//! Beyond the stock candle-transformers model it takes explicit `position_ids` (K-BERT soft
//! positions) and a per-example visible matrix `[B, L, L]`, added as `(1 - m) * -10000` to the
//! attention scores of every layer together with the padding mask, and it runs either fused CPU
//! kernels for inference or differentiable candle ops for training ([`Kernels`]).
//!
//! The same structs run an ALBERT ([`super::albert`]): narrower embedding tables projected to
//! the hidden width by the encoder, and a stack whose positions share layers.
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};

use super::config::{BertConfig, HiddenAct, Kernels};
use super::kernels::{self, Act, AttnShape};
use super::linear::Linear;
use super::Dropout;

/// The additive bias for masked attention scores (BERT's convention).
pub const MASK_BIAS: f64 = -10000.0;

/// LayerNorm over the last dimension with `weight`/`bias` and the config's epsilon.
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
    kernels: Kernels,
}

impl LayerNorm {
    /// Loads `weight` and `bias` of width `size`.
    pub fn load(vb: VarBuilder, size: usize, cfg: &BertConfig) -> Result<Self> {
        Ok(Self {
            weight: vb.get_with_hints(size, "weight", candle_nn::Init::Const(1.0))?,
            bias: vb.get_with_hints(size, "bias", candle_nn::Init::Const(0.0))?,
            eps: cfg.layer_norm_eps,
            kernels: cfg.kernels,
        })
    }

    /// Normalises row-major data in place (fused kernel).
    /// Switches between the fused kernel and candle ops.
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.kernels = kernels;
    }

    /// Normalises row-major data in place (fused kernel).
    fn forward_in_place(&self, xs: &mut [f32]) -> Result<()> {
        kernels::with_slice(&self.weight, |g| {
            kernels::with_slice(&self.bias, |b| {
                kernels::layer_norm_in_place(xs, g, b, self.eps as f32)
            })
        })?
    }
}

impl Module for LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.kernels.is_fast() && kernels::supported(x) {
            let mut data = kernels::with_slice(x, |s| s.to_vec())?;
            self.forward_in_place(&mut data)?;
            return Tensor::from_vec(data, x.shape(), x.device());
        }
        // Differentiable: candle-nn's `LayerNorm` module and `ops::layer_norm` have no backward.
        kernels::grad::layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

/// Word + position + token-type embeddings, summed and normalised; `E` wide
/// ([`BertConfig::embedding_size`]: `H` for BERT, ALBERT's `embedding_size`).
#[derive(Debug, Clone)]
pub struct BertEmbeddings {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    token_type_embeddings: Embedding,
    layer_norm: LayerNorm,
}

impl BertEmbeddings {
    /// Loads the three tables and the LayerNorm from `embeddings.*`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let e = cfg.embedding_size();
        Ok(Self {
            word_embeddings: candle_nn::embedding(cfg.vocab_size, e, vb.pp("word_embeddings"))?,
            position_embeddings: candle_nn::embedding(
                cfg.max_position_embeddings,
                e,
                vb.pp("position_embeddings"),
            )?,
            token_type_embeddings: candle_nn::embedding(
                cfg.type_vocab_size,
                e,
                vb.pp("token_type_embeddings"),
            )?,
            layer_norm: LayerNorm::load(vb.pp("LayerNorm"), e, cfg)?,
        })
    }

    /// `input_ids [B, L]` with optional `token_type_ids` (default 0) and `position_ids`
    /// (default `0..L`, or K-BERT soft positions) -> `[B, L, E]`.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        token_type_ids: Option<&Tensor>,
        position_ids: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, l) = input_ids.dims2()?;
        let words = self.word_embeddings.forward(input_ids)?;
        let positions = match position_ids {
            Some(p) => self.position_embeddings.forward(p)?,
            None => {
                let p = Tensor::arange(0u32, l as u32, input_ids.device())?;
                self.position_embeddings.forward(&p)?.unsqueeze(0)?
            }
        };
        let types = match token_type_ids {
            Some(t) => self.token_type_embeddings.forward(t)?,
            None => {
                let t = Tensor::zeros((b, l), DType::U32, input_ids.device())?;
                self.token_type_embeddings.forward(&t)?
            }
        };
        let sum = words.broadcast_add(&positions)?.add(&types)?;
        self.layer_norm.forward(&sum)
    }

    /// The word-embedding table `[vocab, E]`.
    pub fn word_embeddings(&self) -> &Tensor {
        self.word_embeddings.embeddings()
    }

    /// Switches the LayerNorm's kernels.
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.layer_norm.set_kernels(kernels);
    }
}

/// The query/key/value projections: separate (trainable) or stacked into one GEMM (inference).
#[derive(Debug, Clone)]
enum Projections {
    Separate {
        query: Linear,
        key: Linear,
        value: Linear,
    },
    Fused(Linear),
}

/// Multi-head self-attention with an additive bias (`attention.self.*`).
#[derive(Debug, Clone)]
pub struct BertSelfAttention {
    projections: Projections,
    num_heads: usize,
    head_dim: usize,
}

impl BertSelfAttention {
    /// Loads `query`, `key` and `value`; with [`Kernels::Fast`] they are stacked into one matrix.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let query = Linear::load(vb.pp("query"), h, h)?;
        let key = Linear::load(vb.pp("key"), h, h)?;
        let value = Linear::load(vb.pp("value"), h, h)?;
        let projections = if cfg.kernels.is_fast() {
            Projections::Fused(Linear::concat(&[query, key, value])?.prepare(cfg.kernels)?)
        } else {
            Projections::Separate { query, key, value }
        };
        Ok(Self {
            projections,
            num_heads: cfg.num_attention_heads,
            head_dim: cfg.head_dim(),
        })
    }

    /// Readies the projections for `kernels`: stacked into one (and packed) for the fused
    /// kernels, separate for candle ops.
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        let h = self.num_heads * self.head_dim;
        let parts = match &self.projections {
            Projections::Separate { query, key, value } => {
                [query.clone(), key.clone(), value.clone()]
            }
            Projections::Fused(qkv) => {
                [qkv.narrow(0, h)?, qkv.narrow(h, h)?, qkv.narrow(2 * h, h)?]
            }
        };
        self.projections = if kernels.is_fast() {
            Projections::Fused(Linear::concat(&parts)?.prepare(kernels)?)
        } else {
            let [query, key, value] = parts;
            Projections::Separate { query, key, value }
        };
        Ok(())
    }

    /// `[B, L, H]` -> attention context `[B, L, H]`, with `dropout` on the attention
    /// probabilities: on the CPU one fused op ([`kernels::attention`]), elsewhere candle ops.
    pub fn forward(&self, x: &Tensor, bias: &AttentionBias, dropout: &Dropout) -> Result<Tensor> {
        let (b, l, h) = x.dims3()?;
        let (q, k, v) = self.heads(x)?;
        let fused =
            kernels::attention::fused_attention(&q, &k, &v, bias.tensor(), self.scale(), dropout)?;
        let context = match fused {
            Some(context) => context,
            None => self.attend_heads(&q, &k, &v, bias, dropout)?.0,
        };
        context.transpose(1, 2)?.contiguous()?.reshape((b, l, h))
    }

    /// [`BertSelfAttention::forward`] with candle ops that also returns the scaled scores
    /// `QKᵀ/√d` `[B, heads, L, L]` before the bias is added (what TinyBERT's attention loss
    /// matches).
    fn attend(
        &self,
        x: &Tensor,
        bias: &AttentionBias,
        dropout: &Dropout,
    ) -> Result<(Tensor, Tensor)> {
        let (b, l, h) = x.dims3()?;
        let (q, k, v) = self.heads(x)?;
        let (context, raw) = self.attend_heads(&q, &k, &v, bias, dropout)?;
        Ok((
            context.transpose(1, 2)?.contiguous()?.reshape((b, l, h))?,
            raw,
        ))
    }

    /// `1/√d`, the scores' scale.
    fn scale(&self) -> f64 {
        1.0 / (self.head_dim as f64).sqrt()
    }

    /// The query, key and value projections of `x [B, L, H]`, each `[B, heads, L, d]`.
    fn heads(&self, x: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
        let (b, l, h) = x.dims3()?;
        let (q, k, v) = match &self.projections {
            Projections::Separate { query, key, value } => {
                (query.forward(x)?, key.forward(x)?, value.forward(x)?)
            }
            Projections::Fused(qkv) => {
                let y = qkv.forward(x)?;
                (
                    y.narrow(2, 0, h)?,
                    y.narrow(2, h, h)?,
                    y.narrow(2, 2 * h, h)?,
                )
            }
        };
        let split = |t: Tensor| -> Result<Tensor> {
            t.reshape((b, l, self.num_heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        Ok((split(q)?, split(k)?, split(v)?))
    }

    /// Attention over `[B, heads, L, d]` heads with candle ops: the context `[B, heads, L, d]`
    /// and the scaled scores.
    fn attend_heads(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        bias: &AttentionBias,
        dropout: &Dropout,
    ) -> Result<(Tensor, Tensor)> {
        let raw = (kernels::batched::batched_matmul(q, &k.t()?)? * self.scale())?;
        let mask = bias.tensor().to_dtype(raw.dtype())?.unsqueeze(1)?;
        let scores = raw.broadcast_add(&mask)?;
        let probs = dropout.forward(&kernels::grad::softmax_last_dim(&scores)?)?;
        let context = kernels::batched::batched_matmul(&probs, v)?;
        Ok((context, raw))
    }

    /// Fused-kernel forward on row-major `[B, L, H]` data with bias `[B, R, L]`.
    fn forward_fast(&self, x: &[f32], bias: &[f32], shape: AttnShape) -> Result<Vec<f32>> {
        let qkv = match &self.projections {
            Projections::Fused(qkv) => qkv.forward_fast(x, None, Act::Identity)?,
            Projections::Separate { .. } => {
                candle_core::bail!("fused attention needs the stacked projections")
            }
        };
        Ok(kernels::attention(&qkv, bias, shape))
    }
}

/// Projection of the attention context plus residual and LayerNorm (`attention.output.*`).
#[derive(Debug, Clone)]
pub struct BertSelfOutput {
    dense: Linear,
    layer_norm: LayerNorm,
}

impl BertSelfOutput {
    /// Loads `dense` and `LayerNorm`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        Ok(Self {
            dense: Linear::load(vb.pp("dense"), cfg.hidden_size, cfg.hidden_size)?
                .prepare(cfg.kernels)?,
            layer_norm: LayerNorm::load(vb.pp("LayerNorm"), cfg.hidden_size, cfg)?,
        })
    }

    /// `LayerNorm(dropout(dense(context)) + input)`.
    pub fn forward(&self, context: &Tensor, input: &Tensor, dropout: &Dropout) -> Result<Tensor> {
        let projected = dropout.forward(&self.dense.forward(context)?)?;
        self.layer_norm.forward(&projected.add(input)?)
    }

    /// Readies the dense layer and the LayerNorm for `kernels`.
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        self.layer_norm.set_kernels(kernels);
        self.dense.set_kernels(kernels)
    }

    fn forward_fast(&self, context: &[f32], input: &[f32]) -> Result<Vec<f32>> {
        let mut y = self
            .dense
            .forward_fast(context, Some(input), Act::Identity)?;
        self.layer_norm.forward_in_place(&mut y)?;
        Ok(y)
    }
}

/// Self-attention followed by its output block (`attention.*`).
#[derive(Debug, Clone)]
pub struct BertAttention {
    self_attention: BertSelfAttention,
    output: BertSelfOutput,
}

impl BertAttention {
    /// Loads `self` and `output`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        Ok(Self {
            self_attention: BertSelfAttention::load(vb.pp("self"), cfg)?,
            output: BertSelfOutput::load(vb.pp("output"), cfg)?,
        })
    }

    /// `[B, L, H]` -> `[B, L, H]`.
    pub fn forward(&self, x: &Tensor, bias: &AttentionBias, dropout: &Dropout) -> Result<Tensor> {
        let context = self.self_attention.forward(x, bias, dropout)?;
        self.output.forward(&context, x, dropout)
    }

    /// Readies both parts for `kernels`.
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        self.self_attention.set_kernels(kernels)?;
        self.output.set_kernels(kernels)
    }

    fn forward_fast(&self, x: &[f32], bias: &[f32], shape: AttnShape) -> Result<Vec<f32>> {
        let context = self.self_attention.forward_fast(x, bias, shape)?;
        self.output.forward_fast(&context, x)
    }
}

/// The feed-forward expansion with its activation (`intermediate.*`).
#[derive(Debug, Clone)]
pub struct BertIntermediate {
    dense: Linear,
    act: HiddenAct,
}

impl BertIntermediate {
    /// Loads `dense`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        Ok(Self {
            dense: Linear::load(vb.pp("dense"), cfg.hidden_size, cfg.intermediate_size)?
                .prepare(cfg.kernels)?,
            act: cfg.hidden_act,
        })
    }

    /// `act(dense(x))`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.act.forward(&self.dense.forward(x)?)
    }

    /// Readies the dense layer for `kernels`.
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        self.dense.set_kernels(kernels)
    }

    fn forward_fast(&self, x: &[f32]) -> Result<Vec<f32>> {
        self.dense.forward_fast(x, None, Act::of(self.act))
    }
}

/// The feed-forward contraction plus residual and LayerNorm (`output.*`).
#[derive(Debug, Clone)]
pub struct BertOutput {
    dense: Linear,
    layer_norm: LayerNorm,
}

impl BertOutput {
    /// Loads `dense` and `LayerNorm`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        Ok(Self {
            dense: Linear::load(vb.pp("dense"), cfg.intermediate_size, cfg.hidden_size)?
                .prepare(cfg.kernels)?,
            layer_norm: LayerNorm::load(vb.pp("LayerNorm"), cfg.hidden_size, cfg)?,
        })
    }

    /// `LayerNorm(dropout(dense(x)) + input)`.
    pub fn forward(&self, x: &Tensor, input: &Tensor, dropout: &Dropout) -> Result<Tensor> {
        let projected = dropout.forward(&self.dense.forward(x)?)?;
        self.layer_norm.forward(&projected.add(input)?)
    }

    /// Readies the dense layer and the LayerNorm for `kernels`.
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        self.layer_norm.set_kernels(kernels);
        self.dense.set_kernels(kernels)
    }

    fn forward_fast(&self, x: &[f32], input: &[f32]) -> Result<Vec<f32>> {
        let mut y = self.dense.forward_fast(x, Some(input), Act::Identity)?;
        self.layer_norm.forward_in_place(&mut y)?;
        Ok(y)
    }
}

/// One transformer layer (`encoder.layer.N.*`).
#[derive(Debug, Clone)]
pub struct BertLayer {
    attention: BertAttention,
    intermediate: BertIntermediate,
    output: BertOutput,
}

impl BertLayer {
    /// Loads `attention`, `intermediate` and `output`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        Ok(Self {
            attention: BertAttention::load(vb.pp("attention"), cfg)?,
            intermediate: BertIntermediate::load(vb.pp("intermediate"), cfg)?,
            output: BertOutput::load(vb.pp("output"), cfg)?,
        })
    }

    /// `[B, L, H]` -> `[B, L, H]` with candle ops; `dropout` as in BERT's training (attention
    /// probabilities and both projections before their residuals).
    pub fn forward(&self, x: &Tensor, bias: &AttentionBias, dropout: &Dropout) -> Result<Tensor> {
        let h = self.attention.forward(x, bias, dropout)?;
        let i = self.intermediate.forward(&h)?;
        self.output.forward(&i, &h, dropout)
    }

    /// Readies every sub-layer for `kernels`.
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        self.attention.set_kernels(kernels)?;
        self.intermediate.set_kernels(kernels)?;
        self.output.set_kernels(kernels)
    }

    /// The same on row-major data with the fused kernels.
    pub(crate) fn forward_fast(
        &self,
        x: &[f32],
        bias: &[f32],
        shape: AttnShape,
    ) -> Result<Vec<f32>> {
        let h = self.attention.forward_fast(x, bias, shape)?;
        let i = self.intermediate.forward_fast(&h)?;
        self.output.forward_fast(&i, &h)
    }
}

/// The layer stack (`encoder.layer.*`): the distinct layers and, for each position of the
/// stack, the one it runs (each its own for BERT; ALBERT's positions share their group's),
/// after ALBERT's projection of the embeddings to the hidden width
/// (`encoder.embedding_hidden_mapping_in`).
#[derive(Debug, Clone)]
pub struct BertEncoder {
    mapping_in: Option<Linear>,
    layers: Vec<BertLayer>,
    schedule: Vec<usize>,
    num_heads: usize,
    hidden_size: usize,
    kernels: Kernels,
}

impl BertEncoder {
    /// Loads `layer.0` .. `layer.{d-1}` for the `d` distinct layers of `cfg`
    /// ([`BertConfig::distinct_layers`]; `num_hidden_layers` for BERT), and ALBERT's
    /// `embedding_hidden_mapping_in`. Positions that share a layer share its tensors (and,
    /// loaded from a VarMap, its variables).
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let layers = (0..cfg.distinct_layers())
            .map(|i| BertLayer::load(vb.pp(format!("layer.{i}")), cfg))
            .collect::<Result<Vec<_>>>()?;
        let schedule = cfg.layer_schedule();
        if let Some(&i) = schedule.iter().find(|&&i| i >= layers.len()) {
            candle_core::bail!("layer schedule names layer {i} of {}", layers.len());
        }
        let mapping_in = cfg
            .albert
            .map(|a| {
                Linear::load(
                    vb.pp("embedding_hidden_mapping_in"),
                    a.embedding_size,
                    cfg.hidden_size,
                )?
                .prepare(cfg.kernels)
            })
            .transpose()?;
        Ok(Self {
            mapping_in,
            layers,
            schedule,
            num_heads: cfg.num_attention_heads,
            hidden_size: cfg.hidden_size,
            kernels: cfg.kernels,
        })
    }

    /// Readies every layer (each shared one once) for `kernels`.
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        if let Some(m) = &mut self.mapping_in {
            m.set_kernels(kernels)?;
        }
        for layer in &mut self.layers {
            layer.set_kernels(kernels)?;
        }
        self.kernels = kernels;
        Ok(())
    }

    /// The layer each position of the stack runs, bottom first.
    pub(crate) fn stack(&self) -> impl Iterator<Item = &BertLayer> {
        self.schedule.iter().map(|&i| &self.layers[i])
    }

    /// The embeddings `[B, L, E]` projected to `[B, L, H]` (ALBERT; BERT's pass unchanged),
    /// with candle ops.
    pub(crate) fn map_in(&self, x: &Tensor) -> Result<Tensor> {
        match &self.mapping_in {
            Some(m) => m.forward(x),
            None => Ok(x.clone()),
        }
    }

    /// Runs every layer over the embeddings `[B, L, E]` and returns `[B, L, H]` (the fused
    /// kernels serve inference only: with an active `dropout` the candle path runs).
    pub fn forward(&self, x: &Tensor, bias: &AttentionBias, dropout: &Dropout) -> Result<Tensor> {
        if self.kernels.is_fast() && kernels::supported(x) && !dropout.is_active() {
            return self.forward_fast(x, bias);
        }
        let mut h = self.map_in(x)?;
        for layer in self.stack() {
            h = layer.forward(&h, bias, dropout)?;
        }
        Ok(h)
    }

    fn forward_fast(&self, x: &Tensor, bias: &AttentionBias) -> Result<Tensor> {
        let (batch, len, _) = x.dims3()?;
        let hidden = self.hidden_size;
        let (_, bias_rows, _) = bias.tensor().dims3()?;
        let shape = AttnShape {
            batch,
            len,
            heads: self.num_heads,
            head_dim: hidden / self.num_heads,
            bias_rows,
        };
        let mut h = kernels::with_slice(x, |s| match &self.mapping_in {
            Some(m) => m.forward_fast(s, None, Act::Identity),
            None => Ok(s.to_vec()),
        })??;
        kernels::with_slice(bias.tensor(), |bias| -> Result<()> {
            for layer in self.stack() {
                h = layer.forward_fast(&h, bias, shape)?;
            }
            Ok(())
        })??;
        Tensor::from_vec(h, (batch, len, hidden), x.device())
    }
}

/// The BERT model without pooler: embeddings then encoder, producing `last_hidden_state`.
#[derive(Debug, Clone)]
pub struct BertModel {
    embeddings: BertEmbeddings,
    encoder: BertEncoder,
    config: BertConfig,
}

impl BertModel {
    /// Loads `embeddings.*` and `encoder.*` (a VarBuilder without the `bert.` prefix; for an
    /// ALBERT config, the canonical names of [`super::albert`]).
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        Ok(Self {
            embeddings: BertEmbeddings::load(vb.pp("embeddings"), cfg)?,
            encoder: BertEncoder::load(vb.pp("encoder"), cfg)?,
            config: cfg.clone(),
        })
    }

    /// The configuration the model was loaded with.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// The embedding layer (e.g. to read the word-embedding table).
    pub fn embeddings(&self) -> &BertEmbeddings {
        &self.embeddings
    }

    /// Switches a loaded model to `kernels` (`config().kernels` follows): packs or unpacks
    /// every dense layer's weight and stacks or splits the attention projections, as loading
    /// with `kernels` would have. E.g. `model.set_kernels(Kernels::inference(precision))`.
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        self.embeddings.set_kernels(kernels);
        self.encoder.set_kernels(kernels)?;
        self.config.kernels = kernels;
        Ok(())
    }

    /// Quantises a loaded model's dense layers to int8 for inference
    /// ([`Kernels::FastInt8`]; the same as loading with it).
    pub fn quantize(&mut self) -> Result<()> {
        self.set_kernels(Kernels::FastInt8)
    }

    /// `last_hidden_state [B, L, H]` of one batch (inference: no dropout).
    pub fn forward(&self, input: &EncoderInput) -> Result<Tensor> {
        self.forward_train(input, &Dropout::disabled())
    }

    /// [`BertModel::forward`] in training mode: `dropout` on the embeddings' output and inside
    /// every layer, where BERT puts `hidden_dropout_prob` and `attention_probs_dropout_prob`.
    pub fn forward_train(&self, input: &EncoderInput, dropout: &Dropout) -> Result<Tensor> {
        let (b, l) = input.input_ids.dims2()?;
        let device = input.input_ids.device();
        let bias = AttentionBias::new(input.attention_mask, input.visible_matrix, (b, l), device)?;
        let x =
            self.embeddings
                .forward(input.input_ids, input.token_type_ids, input.position_ids)?;
        self.encoder.forward(&dropout.forward(&x)?, &bias, dropout)
    }
}

mod input;
mod trace;
pub use input::{AttentionBias, EncoderInput};
pub use trace::Trace;

#[cfg(test)]
mod tests;

/// The int8 path ([`Kernels::FastInt8`]) of whole models against f32 on random weights.
#[cfg(test)]
pub(crate) mod int8_tests;
