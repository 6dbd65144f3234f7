//! ERNIE-THU's pretraining model ([Zhang et al., 2019](https://arxiv.org/abs/1905.07129)):
//! the fusion encoder ([`ErnieModel`]) with BERT's masked-LM head and the denoising
//! entity auto-encoder (dEA) head, which projects a token's final state into entity space
//! (`dense` to [`ENTITY_DIM`], activation, `LayerNorm`, as `BertEntPredictionHead` in the
//! authors' code) and scores it against candidate entity vectors by dot product.
//!
//! Tensor names: the token side (`bert.*`, `cls.predictions.*`) equals Hugging Face's
//! `BertForMaskedLM` and is saved in `model.safetensors`; the entity side (the aggregators'
//! `*_ent*` tensors under `bert.` and the dEA head `cls.predictions_ent.*`) goes into a file of
//! its own ([`AGGREGATOR_FILE`]) so that `BertForMaskedLM.from_pretrained` on the directory
//! reports no missing or unexpected keys.
use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::bert::LayerNorm;
use super::config::{BertConfig, HiddenAct};
use super::ernie::{ErnieInput, ErnieModel, ENTITY_DIM};
use super::linear::Linear;
use super::mlm::{masked_lm_tensors, save_tensors, BertLmPredictionHead, HEAD_PREFIX};
use super::walk::ernie_only_variables;
use super::{Dropout, ModelError, Rng};

/// The prefix of the dEA head's tensors (the authors' name).
pub const ENTITY_HEAD_PREFIX: &str = "cls.predictions_ent";
/// The file of a pretrained ERNIE directory holding the entity-side tensors.
pub const AGGREGATOR_FILE: &str = "ernie.safetensors";

/// `dense` (hidden -> [`ENTITY_DIM`]) + activation + `LayerNorm`: a token's final state in
/// entity space (`cls.predictions_ent.transform.*`).
#[derive(Debug, Clone)]
pub struct EntityPredictionHead {
    dense: Linear,
    act: HiddenAct,
    layer_norm: LayerNorm,
}

impl EntityPredictionHead {
    /// Loads `transform.dense` and `transform.LayerNorm`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let vb = vb.pp("transform");
        Ok(Self {
            dense: Linear::load(vb.pp("dense"), cfg.hidden_size, ENTITY_DIM)?,
            act: cfg.hidden_act,
            layer_norm: LayerNorm::load(vb.pp("LayerNorm"), ENTITY_DIM, cfg)?,
        })
    }

    /// Hidden states `[N, H]` -> entity-space states `[N, 100]`.
    pub fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        let y = self.act.forward(&self.dense.forward(hidden)?)?;
        self.layer_norm.forward(&y)
    }
}

/// Every tensor of the dEA head with its shape.
pub fn entity_head_tensors(cfg: &BertConfig) -> Vec<(String, Vec<usize>)> {
    let (h, e) = (cfg.hidden_size, ENTITY_DIM);
    let p = format!("{ENTITY_HEAD_PREFIX}.transform");
    vec![
        (format!("{p}.dense.weight"), vec![e, h]),
        (format!("{p}.dense.bias"), vec![e]),
        (format!("{p}.LayerNorm.weight"), vec![e]),
        (format!("{p}.LayerNorm.bias"), vec![e]),
    ]
}

/// The entity-side tensors of an ERNIE pretraining model (canonical names: aggregators
/// without `bert.`, then the dEA head): what [`AGGREGATOR_FILE`] holds.
pub fn entity_side_tensors(cfg: &BertConfig) -> candle_core::Result<Vec<(String, Vec<usize>)>> {
    let mut out = ernie_only_variables(cfg)?;
    out.extend(entity_head_tensors(cfg));
    Ok(out)
}

/// ERNIE-THU with its two pretraining heads (masked LM and dEA).
#[derive(Debug, Clone)]
pub struct ErnieForPretraining {
    ernie: ErnieModel,
    lm: BertLmPredictionHead,
    entity: EntityPredictionHead,
}

impl ErnieForPretraining {
    /// Loads the encoder from `vb` (no `bert.` prefix; layer kinds from `cfg.layer_types`),
    /// the masked-LM head from `cls.predictions` (decoder tied to the word embeddings) and
    /// the dEA head from `cls.predictions_ent`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let ernie = ErnieModel::load(vb.clone(), cfg)?;
        let words = ernie.embeddings().word_embeddings().clone();
        let lm = BertLmPredictionHead::load(vb.pp(HEAD_PREFIX), cfg, &words)?;
        let entity = EntityPredictionHead::load(vb.pp(ENTITY_HEAD_PREFIX), cfg)?;
        Ok(Self { ernie, lm, entity })
    }

    /// The fusion encoder.
    pub fn ernie(&self) -> &ErnieModel {
        &self.ernie
    }

    /// `last_hidden_state [B, L, H]` with `dropout` (training) or without.
    pub fn hidden(&self, input: &ErnieInput, dropout: &Dropout) -> Result<Tensor> {
        Ok(self.ernie.forward_train(input, dropout)?.0)
    }

    /// Vocabulary logits `[N, vocab]` of the flat rows `positions` (u32) of `hidden`.
    pub fn mlm_logits_at(&self, hidden: &Tensor, positions: &Tensor) -> Result<Tensor> {
        self.lm.forward(&rows(hidden, positions)?)
    }

    /// dEA logits `[N, K]`: the flat rows `positions` of `hidden`, projected into entity
    /// space, dotted with the `candidates [K, 100]` (fixed entity vectors).
    pub fn entity_logits_at(
        &self,
        hidden: &Tensor,
        positions: &Tensor,
        candidates: &Tensor,
    ) -> Result<Tensor> {
        let projected = self.entity.forward(&rows(hidden, positions)?)?;
        projected.matmul(&candidates.t()?)
    }
}

fn rows(hidden: &Tensor, positions: &Tensor) -> Result<Tensor> {
    let (b, l, h) = hidden.dims3()?;
    hidden.reshape((b * l, h))?.index_select(positions, 0)
}

/// Writes an ERNIE pretraining model's `varmap` (created by [`ErnieForPretraining::load`]
/// with `cfg`) into `dir`: `model.safetensors` exactly as [`super::mlm::save_masked_lm`]
/// writes a `BertForMaskedLM`, and the entity side ([`entity_side_tensors`]) in
/// [`AGGREGATOR_FILE`] (aggregator tensors under `bert.`, as in the authors' checkpoints).
pub fn save_ernie_pretraining(varmap: &VarMap, cfg: &BertConfig, dir: &Path) -> Result<()> {
    let entity_side: Vec<String> = entity_side_tensors(cfg)?.into_iter().map(|t| t.0).collect();
    let is_entity_side = |name: &str| entity_side.iter().any(|n| n == name);
    save_tensors(varmap, &dir.join("model.safetensors"), |n| {
        !is_entity_side(n)
    })?;
    save_tensors(varmap, &dir.join(AGGREGATOR_FILE), is_entity_side)
}

/// The entity-side tensors of `dir`'s [`AGGREGATOR_FILE`] under canonical names (no `bert.`),
/// f32 on `device`; `None` when the directory has no such file.
pub fn read_entity_side(dir: &Path, device: &Device) -> Result<Option<HashMap<String, Tensor>>> {
    let path = dir.join(AGGREGATOR_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let tensors = super::quantized::read(&path).map_err(candle_core::Error::wrap)?;
    tensors
        .into_iter()
        .map(|(k, t)| {
            Ok((
                super::load::canonical_name(&k),
                t.to_dtype(DType::F32)?.to_device(device)?,
            ))
        })
        .collect::<Result<HashMap<_, _>>>()
        .map(Some)
}

/// The tensors of an ERNIE pretraining model of `cfg` from the directory `dir`: the token side
/// and masked-LM head as [`masked_lm_tensors`] reads them (a missing head initialised from
/// `seed`), the entity side from [`AGGREGATOR_FILE`] or, when the directory has none (a plain
/// BERT checkpoint), fresh from `seed` (`normal(0, 0.02)` weights, unit LayerNorms, zero
/// biases). Returns the tensors and how many of the entity side were initialised.
pub fn ernie_pretraining_tensors(
    dir: &Path,
    cfg: &BertConfig,
    seed: u64,
) -> std::result::Result<(HashMap<String, Tensor>, usize), ModelError> {
    let (mut tensors, _) = masked_lm_tensors(dir, cfg, seed)?;
    let mut saved = read_entity_side(dir, &Device::Cpu)?.unwrap_or_default();
    let mut rng = Rng::new(seed ^ ENTITY_SIDE_STREAM);
    let mut fresh = 0;
    for (name, shape) in entity_side_tensors(cfg)? {
        let t = match saved.remove(&name) {
            Some(t) if t.dims() == shape.as_slice() => t,
            Some(t) => {
                return Err(ModelError::ShapeMismatch {
                    file: dir.join(AGGREGATOR_FILE),
                    name,
                    expected: shape,
                    found: t.dims().to_vec(),
                })
            }
            None => {
                fresh += 1;
                fresh_entity_tensor(&name, &shape, &mut rng)?
            }
        };
        tensors.insert(name, t);
    }
    Ok((tensors, fresh))
}

/// The random stream of fresh entity-side tensors (apart from the masked-LM head's).
const ENTITY_SIDE_STREAM: u64 = 0xE5;

fn fresh_entity_tensor(name: &str, shape: &[usize], rng: &mut Rng) -> Result<Tensor> {
    if name.contains("LayerNorm") && name.ends_with(".weight") {
        Tensor::ones(shape, DType::F32, &Device::Cpu)
    } else if name.ends_with(".weight") {
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| 0.02 * rng.normal()).collect();
        Tensor::from_vec(values, shape, &Device::Cpu)
    } else {
        Tensor::zeros(shape, DType::F32, &Device::Cpu)
    }
}

/// Fills `varmap` (whose variables [`ErnieForPretraining::load`] created with `cfg`) as
/// [`ernie_pretraining_tensors`] reads `dir`; returns how many entity-side tensors started
/// fresh.
pub fn fill_ernie_pretraining_varmap(
    varmap: &VarMap,
    dir: &Path,
    cfg: &BertConfig,
    seed: u64,
) -> std::result::Result<usize, ModelError> {
    let (tensors, fresh) = ernie_pretraining_tensors(dir, cfg, seed)?;
    let mut varmap = varmap.clone();
    for (name, t) in tensors {
        varmap.set_one(&name, t)?;
    }
    Ok(fresh)
}

/// Loads the ERNIE pretraining model of `cfg` (aggregator layer kinds set) saved in `dir`
/// for inference on `device`.
pub fn load_ernie_pretraining(
    dir: &Path,
    cfg: &BertConfig,
    device: &Device,
) -> std::result::Result<ErnieForPretraining, ModelError> {
    let (tensors, _) = ernie_pretraining_tensors(dir, cfg, 0)?;
    let tensors = tensors
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_device(device)?)))
        .collect::<Result<HashMap<_, _>>>()?;
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    Ok(ErnieForPretraining::load(vb, cfg)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::Kernels;
    use crate::model::ernie::aggregator_config;
    use crate::model::EncoderInput;

    fn tiny() -> BertConfig {
        aggregator_config(
            &BertConfig {
                kernels: Kernels::Differentiable,
                ..crate::model::config::micro_config(2)
            },
            1,
        )
    }

    #[test]
    fn the_entity_side_goes_to_its_own_file_and_the_token_side_stays_hugging_faces() {
        let cfg = tiny();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let model = ErnieForPretraining::load(vb, &cfg).unwrap();
        let dir = tempfile::tempdir().unwrap();
        save_ernie_pretraining(&varmap, &cfg, dir.path()).unwrap();
        let main =
            candle_core::safetensors::load(dir.path().join("model.safetensors"), &Device::Cpu)
                .unwrap();
        assert!(main
            .keys()
            .all(|k| k.starts_with("bert.") || k.starts_with("cls.predictions.")));
        assert!(!main.keys().any(|k| k.contains("_ent")));
        let side = read_entity_side(dir.path(), &Device::Cpu).unwrap().unwrap();
        let mut want: Vec<String> = entity_side_tensors(&cfg)
            .unwrap()
            .into_iter()
            .map(|t| t.0)
            .collect();
        let mut got: Vec<String> = side.keys().cloned().collect();
        want.sort();
        got.sort();
        assert_eq!(got, want);
        assert_eq!(main.len() + side.len(), varmap.all_vars().len());

        let ids = Tensor::new(&[[2u32, 4, 5, 3]], &Device::Cpu).unwrap();
        let entities = Tensor::zeros((1, 4, ENTITY_DIM), DType::F32, &Device::Cpu).unwrap();
        let mask = Tensor::zeros((1, 4), DType::U32, &Device::Cpu).unwrap();
        let input = ErnieInput {
            tokens: EncoderInput::new(&ids),
            entities: &entities,
            entity_mask: &mask,
        };
        let hidden = model.hidden(&input, &Dropout::disabled()).unwrap();
        let pos = Tensor::new(&[1u32, 2], &Device::Cpu).unwrap();
        let candidates = Tensor::ones((3, ENTITY_DIM), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(model.mlm_logits_at(&hidden, &pos).unwrap().dims(), &[2, 12]);
        let logits = model.entity_logits_at(&hidden, &pos, &candidates).unwrap();
        assert_eq!(logits.dims(), &[2, 3]);
    }
}
