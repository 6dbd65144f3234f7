//! ERNIE-THU ([Zhang et al., 2019](https://arxiv.org/abs/1905.07129)): BERT layers that fuse
//! knowledge-graph entity vectors into the tokens they are linked to.
//!
//! Layer kinds follow `layer_types` in the config: `sim` is a plain BERT layer (entities pass
//! through), `mix` fuses the entity inputs without attending over them, `norm` (the
//! knowledgeable aggregator) also runs multi-head attention over the entity sequence. Fusion:
//! `h = act(W_t w + W_e e + b)`, then `w' = LN(W'_t h + w)`, `e' = LN_ent(W'_e h + e)`. Entity
//! vectors sit on the first word piece of each linked mention; `ent_mask` marks those tokens.
//! Parameter names are those of the authors' checkpoints (`attention.self_ent.*`,
//! `attention.output_ent.*`, `intermediate.dense_ent`, `output.dense_ent`,
//! `output.LayerNorm_ent`), so their weights load unchanged.
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::bert::{
    AttentionBias, BertAttention, BertEmbeddings, BertLayer, BertSelfAttention, BertSelfOutput,
    EncoderInput, LayerNorm,
};
use super::config::{BertConfig, HiddenAct, Kernels, LayerType};
use super::linear::Linear;
use super::Dropout;

/// Width of the entity vectors (TransE, fixed at 100 in ERNIE-THU's code).
pub const ENTITY_DIM: usize = 100;
/// Attention heads over the entity sequence in `norm` layers.
pub const ENTITY_HEADS: usize = 4;

/// The config of the entity-side sub-layers: BERT's, narrowed to the entity width.
pub fn entity_config(cfg: &BertConfig) -> BertConfig {
    BertConfig {
        hidden_size: ENTITY_DIM,
        num_attention_heads: ENTITY_HEADS,
        ..cfg.clone()
    }
}

/// `cfg` with its top `aggregators` layers turned into `norm` (knowledgeable aggregator)
/// layers and the others `sim`: how a plain BERT checkpoint becomes an ERNIE encoder whose
/// fresh entity-side weights are learnt during fine-tuning.
pub fn aggregator_config(cfg: &BertConfig, aggregators: usize) -> BertConfig {
    let n = cfg.num_hidden_layers;
    let k = aggregators.min(n);
    let mut types = vec![LayerType::Sim; n - k];
    types.extend(std::iter::repeat_n(LayerType::Norm, k));
    BertConfig {
        layer_types: Some(types),
        ..cfg.clone()
    }
}

/// Fusion of tokens and entities: `act(dense(tokens) + dense_ent(entities))` (`intermediate.*`).
#[derive(Debug, Clone)]
pub struct ErnieIntermediate {
    dense: Linear,
    dense_ent: Linear,
    act: HiddenAct,
}

impl ErnieIntermediate {
    /// Loads `dense` and `dense_ent`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        Ok(Self {
            dense: Linear::load(vb.pp("dense"), cfg.hidden_size, cfg.intermediate_size)?
                .prepare(cfg.kernels)?,
            dense_ent: Linear::load(vb.pp("dense_ent"), ENTITY_DIM, cfg.intermediate_size)?
                .prepare(cfg.kernels)?,
            act: cfg.hidden_act,
        })
    }

    /// Readies both dense layers for `kernels`.
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        self.dense.set_kernels(kernels)?;
        self.dense_ent.set_kernels(kernels)
    }

    /// `[B, L, H]`, `[B, L, 100]` -> fused `[B, L, I]`.
    pub fn forward(&self, tokens: &Tensor, entities: &Tensor) -> Result<Tensor> {
        let sum = self
            .dense
            .forward(tokens)?
            .add(&self.dense_ent.forward(entities)?)?;
        self.act.forward(&sum)
    }
}

/// The split back into tokens and entities, each with residual and LayerNorm (`output.*`).
#[derive(Debug, Clone)]
pub struct ErnieOutput {
    dense: Linear,
    dense_ent: Linear,
    layer_norm: LayerNorm,
    layer_norm_ent: LayerNorm,
}

impl ErnieOutput {
    /// Loads `dense`, `dense_ent`, `LayerNorm` and `LayerNorm_ent`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        Ok(Self {
            dense: Linear::load(vb.pp("dense"), cfg.intermediate_size, cfg.hidden_size)?
                .prepare(cfg.kernels)?,
            dense_ent: Linear::load(vb.pp("dense_ent"), cfg.intermediate_size, ENTITY_DIM)?
                .prepare(cfg.kernels)?,
            layer_norm: LayerNorm::load(vb.pp("LayerNorm"), cfg.hidden_size, cfg)?,
            layer_norm_ent: LayerNorm::load(vb.pp("LayerNorm_ent"), ENTITY_DIM, cfg)?,
        })
    }

    /// Readies both dense layers and both LayerNorms for `kernels`.
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        self.layer_norm.set_kernels(kernels);
        self.layer_norm_ent.set_kernels(kernels);
        self.dense.set_kernels(kernels)?;
        self.dense_ent.set_kernels(kernels)
    }

    /// Fused `[B, L, I]` plus both residuals -> (tokens `[B, L, H]`, entities `[B, L, 100]`),
    /// with `dropout` on both projections.
    pub fn forward(
        &self,
        fused: &Tensor,
        tokens: &Tensor,
        entities: &Tensor,
        dropout: &Dropout,
    ) -> Result<(Tensor, Tensor)> {
        let t = dropout.forward(&self.dense.forward(fused)?)?;
        let t = self.layer_norm.forward(&t.add(tokens)?)?;
        let e = dropout.forward(&self.dense_ent.forward(fused)?)?;
        let e = self.layer_norm_ent.forward(&e.add(entities)?)?;
        Ok((t, e))
    }
}

/// Multi-head attention over the entity sequence (`attention.self_ent` + `attention.output_ent`).
#[derive(Debug, Clone)]
pub struct EntityAttention {
    self_attention: BertSelfAttention,
    output: BertSelfOutput,
}

impl EntityAttention {
    /// Loads `self_ent` and `output_ent` from the `attention` builder.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let ent = entity_config(cfg);
        Ok(Self {
            self_attention: BertSelfAttention::load(vb.pp("self_ent"), &ent)?,
            output: BertSelfOutput::load(vb.pp("output_ent"), &ent)?,
        })
    }

    /// Readies the projections and the output block for `kernels`.
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        self.self_attention.set_kernels(kernels)?;
        self.output.set_kernels(kernels)
    }

    /// `[B, L, 100]` -> `[B, L, 100]`, attending only to tokens that carry an entity.
    pub fn forward(
        &self,
        entities: &Tensor,
        bias: &AttentionBias,
        dropout: &Dropout,
    ) -> Result<Tensor> {
        let context = self.self_attention.forward(entities, bias, dropout)?;
        self.output.forward(&context, entities, dropout)
    }
}

/// A `mix` or `norm` layer: token attention, optional entity attention, then fusion.
#[derive(Debug, Clone)]
pub struct ErnieFusionLayer {
    attention: BertAttention,
    entity_attention: Option<EntityAttention>,
    intermediate: ErnieIntermediate,
    output: ErnieOutput,
}

impl ErnieFusionLayer {
    /// Loads a fusion layer; `aggregator` (a `norm` layer) adds the entity attention.
    pub fn load(vb: VarBuilder, cfg: &BertConfig, aggregator: bool) -> Result<Self> {
        let entity_attention = aggregator
            .then(|| EntityAttention::load(vb.pp("attention"), cfg))
            .transpose()?;
        Ok(Self {
            attention: BertAttention::load(vb.pp("attention"), cfg)?,
            entity_attention,
            intermediate: ErnieIntermediate::load(vb.pp("intermediate"), cfg)?,
            output: ErnieOutput::load(vb.pp("output"), cfg)?,
        })
    }

    /// Readies every sub-layer for `kernels`.
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        self.attention.set_kernels(kernels)?;
        if let Some(att) = &mut self.entity_attention {
            att.set_kernels(kernels)?;
        }
        self.intermediate.set_kernels(kernels)?;
        self.output.set_kernels(kernels)
    }

    /// One step over tokens and entities; `ent_mask` is `[B, L, 1]` (1 = token has an entity).
    pub fn forward(
        &self,
        tokens: &Tensor,
        bias: &AttentionBias,
        entities: &Tensor,
        entity_bias: &AttentionBias,
        ent_mask: &Tensor,
        dropout: &Dropout,
    ) -> Result<(Tensor, Tensor)> {
        let t = self.attention.forward(tokens, bias, dropout)?;
        let e = match &self.entity_attention {
            Some(att) => att.forward(entities, entity_bias, dropout)?,
            None => entities.clone(),
        };
        let e = e.broadcast_mul(ent_mask)?;
        let fused = self.intermediate.forward(&t, &e)?;
        self.output.forward(&fused, &t, &e, dropout)
    }
}

/// One ERNIE layer of either kind.
#[derive(Debug, Clone)]
// A model holds a dozen layers, built once: boxing to even out the variants would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum ErnieLayer {
    /// A plain BERT layer; entities pass through.
    Sim(BertLayer),
    /// A fusion layer (`mix` or `norm`).
    Fusion(ErnieFusionLayer),
}

/// Inputs of one ERNIE batch.
#[derive(Debug, Clone, Copy)]
pub struct ErnieInput<'a> {
    /// The token inputs, as for BERT.
    pub tokens: EncoderInput<'a>,
    /// Entity vectors `[B, L, 100]` on the tokens that carry one (zeros elsewhere).
    pub entities: &'a Tensor,
    /// `[B, L]`, 1 for tokens that carry an entity.
    pub entity_mask: &'a Tensor,
}

/// The ERNIE-THU model: BERT embeddings and a stack of `sim`/`mix`/`norm` layers.
#[derive(Debug, Clone)]
pub struct ErnieModel {
    embeddings: BertEmbeddings,
    layers: Vec<ErnieLayer>,
    config: BertConfig,
}

impl ErnieModel {
    /// Loads `embeddings.*` and `encoder.layer.*` with the kinds of `cfg.layer_kinds()`. An
    /// ALBERT config is refused: its shared layers leave no room for per-layer aggregators.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        if cfg.albert.is_some() {
            candle_core::bail!(
                "ERNIE-THU fusion needs a BERT encoder: an ALBERT's layers are shared, \
                 the aggregators need layers of their own"
            );
        }
        let enc = vb.pp("encoder");
        let layers = cfg
            .layer_kinds()
            .into_iter()
            .enumerate()
            .map(|(i, kind)| {
                let vb = enc.pp(format!("layer.{i}"));
                Ok(match kind {
                    LayerType::Sim => ErnieLayer::Sim(BertLayer::load(vb, cfg)?),
                    LayerType::Mix => ErnieLayer::Fusion(ErnieFusionLayer::load(vb, cfg, false)?),
                    LayerType::Norm => ErnieLayer::Fusion(ErnieFusionLayer::load(vb, cfg, true)?),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embeddings: BertEmbeddings::load(vb.pp("embeddings"), cfg)?,
            layers,
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

    /// Switches a loaded model to `kernels` (`config().kernels` follows), as loading with
    /// them would have; see [`BertModel::set_kernels`].
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        self.embeddings.set_kernels(kernels);
        for layer in &mut self.layers {
            match layer {
                ErnieLayer::Sim(l) => l.set_kernels(kernels)?,
                ErnieLayer::Fusion(l) => l.set_kernels(kernels)?,
            }
        }
        self.config.kernels = kernels;
        Ok(())
    }

    /// Quantises every dense layer (token side and aggregators) to int8 for inference
    /// ([`Kernels::FastInt8`]; the same as loading with it).
    pub fn quantize(&mut self) -> Result<()> {
        self.set_kernels(Kernels::FastInt8)
    }

    /// `(last_hidden_state [B, L, H], entity_hidden_state [B, L, 100])` (inference: no dropout).
    pub fn forward(&self, input: &ErnieInput) -> Result<(Tensor, Tensor)> {
        self.forward_train(input, &Dropout::disabled())
    }

    /// [`ErnieModel::forward`] in training mode, with `dropout` where BERT has it (and on the
    /// entity-side projections).
    pub fn forward_train(&self, input: &ErnieInput, dropout: &Dropout) -> Result<(Tensor, Tensor)> {
        let tok = &input.tokens;
        let (b, l) = tok.input_ids.dims2()?;
        let dev = tok.input_ids.device();
        let bias = AttentionBias::new(tok.attention_mask, tok.visible_matrix, (b, l), dev)?;
        // Entities attend to the entities their token may see: with packed rows (or K-BERT
        // trees) the visible matrix keeps each sequence's entities to themselves.
        let entity_bias =
            AttentionBias::new(Some(input.entity_mask), tok.visible_matrix, (b, l), dev)?;
        let h = self
            .embeddings
            .forward(tok.input_ids, tok.token_type_ids, tok.position_ids)?;
        let mut h = dropout.forward(&h)?;
        let ent_mask = input.entity_mask.to_dtype(h.dtype())?.unsqueeze(2)?;
        let mut e = input.entities.to_dtype(h.dtype())?;
        for layer in &self.layers {
            match layer {
                ErnieLayer::Sim(l) => h = l.forward(&h, &bias, dropout)?,
                ErnieLayer::Fusion(l) => {
                    (h, e) = l.forward(&h, &bias, &e, &entity_bias, &ent_mask, dropout)?;
                }
            }
        }
        Ok((h, e))
    }
}

/// Looks up entity vectors: `entity_ids [B][L]` index `table` rows, `-1` means no entity
/// (a zero vector). Returns `[B, L, 100]`.
pub fn gather_entities(
    table: &Tensor,
    entity_ids: &[Vec<i64>],
) -> std::result::Result<Tensor, super::ModelError> {
    use super::ModelError;
    let (n, d) = table.dims2()?;
    let b = entity_ids.len();
    let l = entity_ids.first().map_or(0, Vec::len);
    let mut idx = Vec::with_capacity(b * l);
    for (i, row) in entity_ids.iter().enumerate() {
        if row.len() != l {
            return Err(ModelError::Input(format!(
                "entity_ids[{i}] has {} entries, expected {l}",
                row.len()
            )));
        }
        for (j, &id) in row.iter().enumerate() {
            if id < -1 || id >= n as i64 {
                return Err(ModelError::Input(format!(
                    "entity_ids[{i}][{j}] = {id} is outside -1..{n}"
                )));
            }
            idx.push((id + 1) as u32);
        }
    }
    let padded = Tensor::cat(
        &[
            &Tensor::zeros((1, d), table.dtype(), table.device())?,
            table,
        ],
        0,
    )?;
    let idx = Tensor::from_vec(idx, b * l, table.device())?;
    Ok(padded.index_select(&idx, 0)?.reshape((b, l, d))?)
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    use super::*;
    use crate::model::bert::int8_tests::{cosine, fill_fixed, inputs, tiny_config};

    #[test]
    fn an_int8_ernie_quantises_the_aggregators_and_stays_close_to_f32() {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        let cfg = aggregator_config(&tiny_config(Kernels::Fast), 1);
        ErnieModel::load(vb.clone(), &cfg).unwrap(); // creates the variables
        fill_fixed(&vm, 6);
        let f32_model = ErnieModel::load(vb.clone(), &cfg).unwrap();
        let int8_cfg = BertConfig {
            kernels: Kernels::FastInt8,
            ..cfg
        };
        let loaded = ErnieModel::load(vb, &int8_cfg).unwrap();
        let mut converted = f32_model.clone();
        converted.quantize().unwrap();
        let ErnieLayer::Fusion(fusion) = &converted.layers[1] else {
            panic!("layer 1 is an aggregator");
        };
        assert!(fusion.intermediate.dense_ent.is_int8() && fusion.output.dense_ent.is_int8());

        let (ids, mask, vis) = inputs();
        let (b, l) = ids.dims2().unwrap();
        let ent: Vec<f32> = (0..b * l * ENTITY_DIM)
            .map(|i| ((i * 7919) % 201) as f32 / 100.0 - 1.0)
            .collect();
        let entities = Tensor::from_vec(ent, (b, l, ENTITY_DIM), &Device::Cpu).unwrap();
        let emask: Vec<u32> = (0..b * l).map(|i| u32::from(i % l % 3 == 1)).collect();
        let entity_mask = Tensor::from_vec(emask, (b, l), &Device::Cpu).unwrap();
        let run = |m: &ErnieModel| {
            let input = ErnieInput {
                tokens: EncoderInput {
                    attention_mask: Some(&mask),
                    visible_matrix: Some(&vis),
                    ..EncoderInput::new(&ids)
                },
                entities: &entities,
                entity_mask: &entity_mask,
            };
            let (h, e) = m.forward(&input).unwrap();
            (h.to_vec3::<f32>().unwrap(), e.to_vec3::<f32>().unwrap())
        };
        let (want_h, want_e) = run(&f32_model);
        let (got_h, got_e) = run(&loaded);
        assert_eq!((got_h.clone(), got_e.clone()), run(&converted));
        for (g, w) in got_h
            .iter()
            .zip(&want_h)
            .flat_map(|(g, w)| g.iter().zip(w).take(8))
        {
            assert!(cosine(g, w) > 0.99, "token cosine {}", cosine(g, w));
        }
        let tokens_with_entities = got_e.iter().zip(&want_e).flat_map(|(g, w)| {
            g.iter()
                .zip(w)
                .enumerate()
                .filter(|(t, _)| t % 3 == 1 && *t < 8)
                .map(|(_, p)| p)
        });
        for (g, w) in tokens_with_entities {
            assert!(cosine(g, w) > 0.99, "entity cosine {}", cosine(g, w));
        }
    }
}
