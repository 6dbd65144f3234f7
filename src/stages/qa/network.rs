//! The QA network: the BERT encoder and a linear span head (`qa_outputs`, two logits per
//! token: answer start and answer end), as in BERT's SQuAD fine-tuning. Parameter names are
//! the encoder checkpoint's (`embeddings.*`, `encoder.*`) plus `qa_outputs.*`. The head reads
//! only the encoder's `last_hidden_state`, so any encoder input the featurizer builds
//! (segments, K-BERT positions and visibility) reaches it the same way.
use candle_core::{DType, Result, Tensor, D};
use candle_nn::{Linear, Module, VarBuilder};

use super::features::Batch;
use crate::knowledge::InputBatch;
use crate::model::Dropout;
use crate::model::{BertConfig, BertModel};

/// Logit given to padding positions so they never win a softmax or an arg-max.
const PAD_LOGIT: f64 = -1e4;

/// Encoder + start/end head.
#[derive(Debug, Clone)]
pub struct QaNetwork {
    encoder: BertModel,
    qa_outputs: Linear,
    freeze_encoder: bool,
}

impl QaNetwork {
    /// Loads (or, from a `VarMap`, creates) every parameter: the encoder at the root and
    /// `qa_outputs.{weight,bias}` (`[2, H]`, `[2]`).
    pub fn load(vb: VarBuilder, cfg: &BertConfig) -> Result<Self> {
        Ok(Self {
            encoder: BertModel::load(vb.clone(), cfg)?,
            qa_outputs: candle_nn::linear(cfg.hidden_size, 2, vb.pp("qa_outputs"))?,
            freeze_encoder: false,
        })
    }

    /// Stops gradients at the encoder output (a frozen encoder trains only the head).
    pub fn freeze_encoder(mut self, freeze: bool) -> Self {
        self.freeze_encoder = freeze;
        self
    }

    /// Start and end logits `[B, L]` of every token; padding gets a large negative logit.
    pub fn logits(&self, input: &InputBatch, dropout: &Dropout) -> Result<(Tensor, Tensor)> {
        let mut hidden = self
            .encoder
            .forward_train(&input.encoder_input(), dropout)?;
        if self.freeze_encoder {
            hidden = hidden.detach();
        }
        let logits = self.qa_outputs.forward(&dropout.forward(&hidden)?)?;
        let pad = input
            .attention_mask
            .to_dtype(DType::F32)?
            .affine(-PAD_LOGIT, PAD_LOGIT)?;
        let start = logits.narrow(D::Minus1, 0, 1)?.squeeze(D::Minus1)?;
        let end = logits.narrow(D::Minus1, 1, 1)?.squeeze(D::Minus1)?;
        Ok((start.add(&pad)?, end.add(&pad)?))
    }

    /// The training loss: mean of the start and end cross-entropies over each window's
    /// tokens (windows without the answer point at `[CLS]`).
    pub fn loss(&self, batch: &Batch, dropout: &Dropout) -> Result<Tensor> {
        let (start, end) = self.logits(&batch.input, dropout)?;
        let s = candle_nn::loss::cross_entropy(&start, &batch.start)?;
        let e = candle_nn::loss::cross_entropy(&end, &batch.end)?;
        (s + e)? / 2.0
    }
}
