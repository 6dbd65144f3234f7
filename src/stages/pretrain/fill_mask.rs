//! Fill-mask predictions from a masked-LM directory (`zhishi fill-mask`): each `[MASK]` of a
//! line gets its `top_k` most probable tokens (softmax over the whole vocabulary, best first).
//! A mask's `position` is the character index of its `[` in the input line (Unicode scalars,
//! counting from 0), so `哈尔[MASK]市` reports position 2.
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::Serialize;

use super::PretrainError;
use crate::model::mlm::{load_masked_lm, BertForMaskedLm};
use crate::model::{BertTokenizer, Dropout, EncoderInput, Kernels};

/// The literal a line marks a mask with.
pub const MASK: &str = "[MASK]";

/// One candidate token of a mask.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenCandidate {
    /// The token (WordPiece form, e.g. `滨` or `##ing`).
    pub token: String,
    /// Its probability.
    pub score: f32,
}

/// The candidates of one mask.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaskPrediction {
    /// Character index of the mask's `[` in the line.
    pub position: usize,
    /// Best first.
    pub candidates: Vec<TokenCandidate>,
}

/// A line's token ids and its masks as `(character position, token index)`.
pub type EncodedLine = (Vec<u32>, Vec<(usize, usize)>);

/// A loaded masked LM with its tokenizer.
pub struct FillMask {
    model: BertForMaskedLm,
    tokenizer: BertTokenizer,
    mask_id: u32,
    max_len: usize,
    device: Device,
}

impl FillMask {
    /// Loads the directory (fused kernels). A checkpoint lacking any tensor of the MLM head
    /// (`cls.predictions`) is refused, naming the missing ones: a head initialised at random
    /// predicts nothing useful. So is a vocabulary larger than the embedding table.
    pub fn load(dir: &Path) -> Result<Self, PretrainError> {
        let device = Device::Cpu;
        let (model, cfg, fresh) = load_masked_lm(dir, &device, Kernels::Fast, 0)?;
        if !fresh.is_empty() {
            return Err(PretrainError::MissingHead {
                path: dir.to_path_buf(),
                missing: fresh,
            });
        }
        let tokenizer = BertTokenizer::for_model(dir, &cfg)?;
        let mask_id = tokenizer
            .token_to_id(MASK)
            .ok_or_else(|| PretrainError::Vocab {
                path: dir.to_path_buf(),
                message: "the vocabulary has no [MASK] token".into(),
            })?;
        Ok(Self {
            model,
            tokenizer,
            mask_id,
            max_len: cfg.max_position_embeddings,
            device,
        })
    }

    /// The token ids of `line` with every `[MASK]` as the mask id, and each mask's
    /// (character position, token index).
    pub fn encode(&self, line: &str) -> Result<EncodedLine, PretrainError> {
        let masks: Vec<usize> = line
            .match_indices(MASK)
            .map(|(byte, _)| line[..byte].chars().count())
            .collect();
        if masks.is_empty() {
            return Err(PretrainError::Input(format!("no {MASK} in {line:?}")));
        }
        let enc = self.tokenizer.encode(line)?;
        let (mut ids, mut found) = (Vec::new(), Vec::new());
        let len = MASK.chars().count();
        for (&id, &(start, end)) in enc.ids.iter().zip(&enc.offsets) {
            let mask = (end > start)
                .then(|| {
                    masks
                        .iter()
                        .copied()
                        .find(|&p| p <= start && start < p + len)
                })
                .flatten();
            match mask {
                Some(p) if found.last().is_some_and(|&(q, _)| q == p) => {}
                Some(p) => {
                    found.push((p, ids.len()));
                    ids.push(self.mask_id);
                }
                None => ids.push(id),
            }
        }
        if ids.len() > self.max_len {
            return Err(PretrainError::Input(format!(
                "{} tokens exceed the model's {} positions",
                ids.len(),
                self.max_len
            )));
        }
        Ok((ids, found))
    }

    /// The `top_k` candidates of every `[MASK]` of `line`, in line order.
    pub fn fill(&self, line: &str, top_k: usize) -> Result<Vec<MaskPrediction>, PretrainError> {
        let (ids, masks) = self.encode(line)?;
        let n = ids.len();
        let input = Tensor::from_vec(ids, (1, n), &self.device)?;
        let hidden = self
            .model
            .hidden(&EncoderInput::new(&input), &Dropout::disabled())?;
        let rows: Vec<u32> = masks.iter().map(|&(_, i)| i as u32).collect();
        let positions = Tensor::from_vec(rows, masks.len(), &self.device)?;
        let logits = self.model.logits_at(&hidden, &positions)?;
        let probs: Vec<Vec<f32>> = candle_nn::ops::softmax_last_dim(&logits)?.to_vec2()?;
        Ok(masks
            .iter()
            .zip(probs)
            .map(|(&(position, _), p)| {
                let mut order: Vec<usize> = (0..p.len()).collect();
                order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
                let candidates = order
                    .into_iter()
                    .take(top_k)
                    .map(|id| TokenCandidate {
                        token: self
                            .tokenizer
                            .id_to_token(id as u32)
                            .unwrap_or_else(|| format!("[{id}]")),
                        score: p[id],
                    })
                    .collect();
                MaskPrediction {
                    position,
                    candidates,
                }
            })
            .collect())
    }
}
