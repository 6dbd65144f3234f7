//! BERT's masked-language-model head (`cls.predictions`, [Devlin et al., 2019](https://arxiv.org/abs/1810.04805)):
//! a transform (dense + activation + LayerNorm) and a decoder to the vocabulary whose weight
//! is tied to the word embeddings, plus its own bias. Tensor names equal Hugging Face's
//! `BertForMaskedLM` (`bert.*` for the encoder, `cls.predictions.*` for the head), so a
//! directory written by [`save_masked_lm`] loads there with no missing or unexpected keys.
//!
//! The head runs the project's own ops ([`Linear`], [`LayerNorm`]): with
//! [`Kernels::Differentiable`] every parameter, the tied word embeddings included, gets a
//! gradient (candle-nn's `LayerNorm` has no backward pass).
use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::bert::{BertModel, EncoderInput, LayerNorm};
use super::config::{BertConfig, HiddenAct, Kernels};
use super::linear::Linear;
use super::load::{canonical_name, expected_tensors, find_weights, read_checkpoint, read_config};
use super::{Dropout, ModelError, Rng};

/// The prefix of the head's tensors.
pub const HEAD_PREFIX: &str = "cls.predictions";

/// `dense` + activation + `LayerNorm` before the decoder (`cls.predictions.transform.*`).
#[derive(Debug, Clone)]
pub struct BertPredictionHeadTransform {
    dense: Linear,
    act: HiddenAct,
    layer_norm: LayerNorm,
}

impl BertPredictionHeadTransform {
    /// Loads `dense` and `LayerNorm`; both end at the embedding width (`hidden_size` for
    /// BERT, `embedding_size` for ALBERT), where the tied decoder starts.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let e = cfg.embedding_size();
        Ok(Self {
            dense: Linear::load(vb.pp("dense"), cfg.hidden_size, e)?,
            act: cfg.hidden_act,
            layer_norm: LayerNorm::load(vb.pp("LayerNorm"), e, cfg)?,
        })
    }

    /// `LayerNorm(act(dense(x)))` over the last dimension.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.act.forward(&self.dense.forward(x)?)?;
        self.layer_norm.forward(&y)
    }
}

/// The transform and the tied decoder (`cls.predictions.*`).
#[derive(Debug, Clone)]
pub struct BertLmPredictionHead {
    transform: BertPredictionHeadTransform,
    /// The word-embedding table `[vocab, E]` (tied, not a tensor of its own; `E = H` for BERT).
    decoder: Tensor,
    bias: Tensor,
}

impl BertLmPredictionHead {
    /// Loads `transform` and `bias`; `word_embeddings [vocab, H]` is the decoder's weight.
    pub fn load(vb: VarBuilder, cfg: &BertConfig, word_embeddings: &Tensor) -> Result<Self> {
        Ok(Self {
            transform: BertPredictionHeadTransform::load(vb.pp("transform"), cfg)?,
            decoder: word_embeddings.clone(),
            bias: vb.get_with_hints(cfg.vocab_size, "bias", candle_nn::Init::Const(0.0))?,
        })
    }

    /// Hidden states `[N, H]` -> vocabulary logits `[N, vocab]`.
    pub fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        let h = self.transform.forward(hidden)?;
        h.matmul(&self.decoder.t()?)?.broadcast_add(&self.bias)
    }
}

/// A BERT encoder with its masked-language-model head (`BertForMaskedLM`).
#[derive(Debug, Clone)]
pub struct BertForMaskedLm {
    bert: BertModel,
    head: BertLmPredictionHead,
}

impl BertForMaskedLm {
    /// Loads the encoder from `vb` (no `bert.` prefix, as [`BertModel::load`]) and the head
    /// from `vb.pp("cls.predictions")`, its decoder tied to the word embeddings.
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        let bert = BertModel::load(vb.clone(), cfg)?;
        let words = bert.embeddings().word_embeddings().clone();
        let head = BertLmPredictionHead::load(vb.pp(HEAD_PREFIX), cfg, &words)?;
        Ok(Self { bert, head })
    }

    /// The encoder.
    pub fn bert(&self) -> &BertModel {
        &self.bert
    }

    /// `last_hidden_state [B, L, H]` with `dropout` (training) or without.
    pub fn hidden(&self, input: &EncoderInput, dropout: &Dropout) -> Result<Tensor> {
        self.bert.forward_train(input, dropout)
    }

    /// Vocabulary logits `[N, vocab]` of the rows `positions` (flat indices `b * L + i`, u32)
    /// of `hidden [B, L, H]`: only the masked positions pay for the decoder.
    pub fn logits_at(&self, hidden: &Tensor, positions: &Tensor) -> Result<Tensor> {
        let (b, l, h) = hidden.dims3()?;
        let rows = hidden.reshape((b * l, h))?.index_select(positions, 0)?;
        self.head.forward(&rows)
    }

    /// The mean cross-entropy of the masked positions `positions` (flat, u32) against their
    /// original token ids `targets` (u32), as `BertForMaskedLM`'s loss over labels `!= -100`.
    pub fn loss(
        &self,
        input: &EncoderInput,
        positions: &Tensor,
        targets: &Tensor,
        dropout: &Dropout,
    ) -> Result<Tensor> {
        let hidden = self.hidden(input, dropout)?;
        let logits = self.logits_at(&hidden, positions)?;
        candle_nn::loss::cross_entropy(&logits, targets)
    }
}

/// Every tensor of the head with its shape (canonical names, `cls.predictions.*`).
pub fn head_tensors(cfg: &BertConfig) -> Vec<(String, Vec<usize>)> {
    let (h, e) = (cfg.hidden_size, cfg.embedding_size());
    let p = HEAD_PREFIX;
    vec![
        (format!("{p}.transform.dense.weight"), vec![e, h]),
        (format!("{p}.transform.dense.bias"), vec![e]),
        (format!("{p}.transform.LayerNorm.weight"), vec![e]),
        (format!("{p}.transform.LayerNorm.bias"), vec![e]),
        (format!("{p}.bias"), vec![cfg.vocab_size]),
    ]
}

/// A fresh head tensor like BERT's `_init_weights`: `normal(0, 0.02)` dense weight, unit
/// LayerNorm scale, zeros otherwise.
fn fresh_head_tensor(name: &str, shape: &[usize], rng: &mut Rng) -> Result<Tensor> {
    if name.ends_with("dense.weight") {
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| 0.02 * rng.normal()).collect();
        Tensor::from_vec(values, shape, &Device::Cpu)
    } else if name.ends_with("LayerNorm.weight") {
        Tensor::ones(shape, DType::F32, &Device::Cpu)
    } else {
        Tensor::zeros(shape, DType::F32, &Device::Cpu)
    }
}

/// The encoder and head tensors of the checkpoint in `dir` (canonical names, f32, CPU), the
/// head initialised from `seed` where the checkpoint lacks it (a sentence-embedding model
/// such as m3e has no `cls.predictions`; `cls.predictions.decoder.bias` stands in for a
/// missing `cls.predictions.bias`). Returns the tensors and the names of those initialised.
pub fn masked_lm_tensors(
    dir: &Path,
    cfg: &BertConfig,
    seed: u64,
) -> std::result::Result<(HashMap<String, Tensor>, Vec<String>), ModelError> {
    let weights = find_weights(dir)?;
    let mut all: HashMap<String, Tensor> = read_checkpoint(&weights)?
        .into_iter()
        .map(|(k, t)| (canonical_name(&k), t))
        .collect();
    let bias = format!("{HEAD_PREFIX}.bias");
    if !all.contains_key(&bias) {
        if let Some(t) = all.remove(&format!("{HEAD_PREFIX}.decoder.bias")) {
            all.insert(bias, t);
        }
    }
    let mut out = HashMap::new();
    let mut rng = Rng::new(seed);
    let mut fresh = Vec::new();
    let encoder = expected_tensors(cfg)?;
    for (i, (name, shape)) in encoder.iter().chain(&head_tensors(cfg)).enumerate() {
        let t = match all.remove(name) {
            Some(t) if t.dims() == shape.as_slice() => t.to_dtype(DType::F32)?,
            Some(t) => {
                return Err(ModelError::ShapeMismatch {
                    file: weights,
                    name: name.clone(),
                    expected: shape.clone(),
                    found: t.dims().to_vec(),
                })
            }
            None if i >= encoder.len() => {
                fresh.push(name.clone());
                fresh_head_tensor(name, shape, &mut rng)?
            }
            None => {
                return Err(ModelError::MissingTensor {
                    file: weights,
                    name: name.clone(),
                    expected: shape.clone(),
                })
            }
        };
        out.insert(name.clone(), t);
    }
    Ok((out, fresh))
}

/// Loads the masked LM in `dir` for inference (`kernels`, usually [`Kernels::Fast`]): the
/// head from the checkpoint, or initialised from `seed` when it has none. Returns the model,
/// its config and the names of the head tensors initialised (empty for a whole head).
pub fn load_masked_lm(
    dir: &Path,
    device: &Device,
    kernels: Kernels,
    seed: u64,
) -> std::result::Result<(BertForMaskedLm, BertConfig, Vec<String>), ModelError> {
    let mut cfg = read_config(dir)?;
    cfg.kernels = kernels;
    cfg.layer_types = None;
    let (tensors, fresh) = masked_lm_tensors(dir, &cfg, seed)?;
    let tensors = tensors
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_device(device)?)))
        .collect::<Result<HashMap<_, _>>>()?;
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    Ok((BertForMaskedLm::load(vb, &cfg)?, cfg, fresh))
}

/// Fills `varmap` (whose variables [`BertForMaskedLm::load`] created) from the checkpoint in
/// `dir`, initialising a missing head from `seed`; returns how many tensors were initialised.
pub fn fill_masked_lm_varmap(
    varmap: &VarMap,
    dir: &Path,
    cfg: &BertConfig,
    seed: u64,
) -> std::result::Result<usize, ModelError> {
    let (tensors, fresh) = masked_lm_tensors(dir, cfg, seed)?;
    let mut varmap = varmap.clone();
    for (name, t) in tensors {
        varmap.set_one(&name, t)?;
    }
    Ok(fresh.len())
}

/// Writes the weights of a masked LM's `varmap` as Hugging Face's `BertForMaskedLM` saves
/// them (`model.safetensors` in `dir`): the encoder under `bert.`, the head under
/// `cls.predictions.` (the tied decoder weight is not stored, as in Hugging Face's files).
pub fn save_masked_lm(varmap: &VarMap, dir: &Path) -> Result<()> {
    save_tensors(varmap, &dir.join("model.safetensors"), |_| true)
}

/// Writes the variables of `varmap` whose (canonical) name passes `keep` to the safetensors
/// file `path`: heads (`cls.*`) under their own name, everything else under `bert.`.
pub fn save_tensors(varmap: &VarMap, path: &Path, keep: impl Fn(&str) -> bool) -> Result<()> {
    let vars = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("variable map lock poisoned".into()))?
        .clone();
    let tensors: HashMap<String, Tensor> = vars
        .into_iter()
        .filter(|(name, _)| keep(name))
        .map(|(name, var)| {
            let name = if name.starts_with("cls.") {
                name
            } else {
                format!("bert.{name}")
            };
            (name, var.as_tensor().detach())
        })
        .collect();
    candle_core::safetensors::save(&tensors, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> BertConfig {
        BertConfig {
            kernels: Kernels::Differentiable,
            ..crate::model::config::micro_config(1)
        }
    }

    #[test]
    fn the_head_names_its_tensors_like_hugging_face() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        BertForMaskedLm::load(vb, &tiny()).unwrap();
        let names: Vec<String> = varmap.data().lock().unwrap().keys().cloned().collect();
        for (name, _) in head_tensors(&tiny()) {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("decoder")));
    }

    #[test]
    fn logits_cover_the_vocabulary_at_the_chosen_rows() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let m = BertForMaskedLm::load(vb, &tiny()).unwrap();
        let ids = Tensor::new(&[[2u32, 4, 5, 3], [2, 6, 3, 0]], &Device::Cpu).unwrap();
        let hidden = m
            .hidden(&EncoderInput::new(&ids), &Dropout::disabled())
            .unwrap();
        let pos = Tensor::new(&[1u32, 5], &Device::Cpu).unwrap();
        assert_eq!(m.logits_at(&hidden, &pos).unwrap().dims(), &[2, 12]);
    }
}
