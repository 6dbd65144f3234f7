//! Sentence embeddings from a BERT checkpoint (m3e-small's "last_mean" strategy): token states of
//! the last layer, mean-pooled over the text with an optional character span left out (the
//! question with its topic mention masked), L2-normalised. Predicate embeddings are cached.
use std::path::Path;
use std::sync::{Arc, RwLock};

use candle_core::{DType, Device, Tensor};
use rustc_hash::FxHashMap;

use crate::model::{
    load_bert, BertModel, BertTokenizer, EncoderInput, Kernels, ModelError, Precision,
};

/// A BERT encoder turned into a sentence embedder.
pub struct SentenceEncoder {
    model: BertModel,
    tokenizer: BertTokenizer,
    max_len: usize,
    batch_size: usize,
    cache: RwLock<FxHashMap<String, Arc<[f32]>>>,
}

/// Last-layer states of one text's tokens, with their character offsets.
#[derive(Debug, Clone)]
pub struct TokenStates {
    offsets: Vec<(usize, usize)>,
    hidden: Vec<f32>,
    dim: usize,
}

impl TokenStates {
    /// Mean of the token states, leaving out tokens inside the character span `skip`, then
    /// L2-normalised. Special tokens (`[CLS]`, `[SEP]`) are always included.
    pub fn pooled(&self, skip: Option<(usize, usize)>) -> Vec<f32> {
        let mut sum = vec![0f32; self.dim];
        let mut n = 0usize;
        for (i, &(s, e)) in self.offsets.iter().enumerate() {
            let special = s == 0 && e == 0;
            if !special && skip.is_some_and(|(a, b)| s < b && e > a) {
                continue;
            }
            let row = &self.hidden[i * self.dim..(i + 1) * self.dim];
            sum.iter_mut().zip(row).for_each(|(acc, x)| *acc += x);
            n += 1;
        }
        if n > 0 {
            sum.iter_mut().for_each(|x| *x /= n as f32);
        }
        normalize(&mut sum);
        sum
    }
}

/// Scales `v` to unit length (leaves a zero vector alone).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

impl SentenceEncoder {
    /// Loads the checkpoint and tokenizer in `dir` onto `device`, with the fused inference
    /// kernels at `precision` on the CPU.
    pub fn load(
        dir: &Path,
        max_len: usize,
        batch_size: usize,
        device: &Device,
        precision: Precision,
    ) -> Result<Self, ModelError> {
        let model = load_bert(dir, device, DType::F32, Kernels::inference(precision))?;
        let tokenizer = BertTokenizer::for_model(dir, model.config())?;
        let max_len = max_len.max(2).min(model.config().max_position_embeddings);
        Ok(Self {
            model,
            tokenizer,
            max_len,
            batch_size: batch_size.max(1),
            cache: RwLock::new(FxHashMap::default()),
        })
    }

    /// Width of the embeddings.
    pub fn dim(&self) -> usize {
        self.model.config().hidden_size
    }

    /// Token states of every text, in input order (batched, padded per batch).
    pub fn token_states(&self, texts: &[&str]) -> Result<Vec<TokenStates>, ModelError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.batch_size) {
            out.extend(self.batch(chunk)?);
        }
        Ok(out)
    }

    fn batch(&self, texts: &[&str]) -> Result<Vec<TokenStates>, ModelError> {
        let mut encoded = Vec::with_capacity(texts.len());
        for text in texts {
            let mut enc = self.tokenizer.encode(text)?;
            if enc.ids.len() > self.max_len {
                // Keep `[CLS]` + the first tokens + `[SEP]`.
                let sep = enc.ids[enc.ids.len() - 1];
                enc.ids.truncate(self.max_len - 1);
                enc.offsets.truncate(self.max_len - 1);
                enc.ids.push(sep);
                enc.offsets.push((0, 0));
            }
            encoded.push(enc);
        }
        let len = encoded.iter().map(|e| e.ids.len()).max().unwrap_or(0);
        if len == 0 {
            return Ok(Vec::new());
        }
        let b = encoded.len();
        let mut ids = vec![0u32; b * len];
        let mut mask = vec![0u32; b * len];
        for (row, enc) in encoded.iter().enumerate() {
            ids[row * len..row * len + enc.ids.len()].copy_from_slice(&enc.ids);
            mask[row * len..row * len + enc.ids.len()].fill(1);
        }
        let dev = self.model.embeddings().word_embeddings().device();
        let ids = Tensor::from_vec(ids, (b, len), dev)?;
        let mask = Tensor::from_vec(mask, (b, len), dev)?;
        let input = EncoderInput {
            attention_mask: Some(&mask),
            ..EncoderInput::new(&ids)
        };
        let hidden = self.model.forward(&input)?;
        let dim = self.dim();
        let flat: Vec<f32> = hidden.flatten_all()?.to_vec1()?;
        Ok(encoded
            .into_iter()
            .enumerate()
            .map(|(row, enc)| {
                let n = enc.ids.len();
                let start = row * len * dim;
                TokenStates {
                    offsets: enc.offsets,
                    hidden: flat[start..start + n * dim].to_vec(),
                    dim,
                }
            })
            .collect())
    }

    /// Pooled embeddings of short texts (predicates), computed once and cached.
    pub fn cached(&self, texts: &[&str]) -> Result<Vec<Arc<[f32]>>, ModelError> {
        let missing: Vec<&str> = {
            let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
            let mut m: Vec<&str> = texts
                .iter()
                .copied()
                .filter(|t| !cache.contains_key(*t))
                .collect();
            m.sort_unstable();
            m.dedup();
            m
        };
        if !missing.is_empty() {
            let states = self.token_states(&missing)?;
            let mut cache = self.cache.write().unwrap_or_else(|e| e.into_inner());
            for (text, s) in missing.iter().zip(states) {
                cache.insert(text.to_string(), s.pooled(None).into());
            }
        }
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        Ok(texts
            .iter()
            .map(|t| {
                cache
                    .get(*t)
                    .cloned()
                    .unwrap_or_else(|| vec![0.0; self.dim()].into())
            })
            .collect())
    }
}
