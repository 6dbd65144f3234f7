//! The relation classifier: the BERT encoder (any configuration the featurizer feeds it:
//! plain or K-BERT), then a linear layer over the concatenated hidden states of `[CLS]`, the
//! head's opening marker and the tail's opening marker. Parameter names are the encoder
//! checkpoint's (`embeddings.*`, `encoder.*`) plus `classifier.*`.
use candle_core::{Result, Tensor};
use candle_nn::{Linear, Module, VarBuilder};

use super::features::Batch;
use crate::model::Dropout;
use crate::model::{BertConfig, BertModel};

/// Hidden states pooled per example: `[CLS]`, head marker, tail marker.
pub const POOLED: usize = 3;

/// Encoder + pooled linear classifier.
#[derive(Debug, Clone)]
pub struct RelationNetwork {
    encoder: BertModel,
    classifier: Linear,
    freeze_encoder: bool,
}

impl RelationNetwork {
    /// Loads (or, from a `VarMap`, creates) every parameter: the encoder at the root and
    /// `classifier.{weight,bias}` (`[labels, 3·hidden]`).
    pub fn load(vb: VarBuilder, cfg: &BertConfig, labels: usize) -> Result<Self> {
        let encoder = BertModel::load(vb.clone(), cfg)?;
        let classifier = candle_nn::linear(POOLED * cfg.hidden_size, labels, vb.pp("classifier"))?;
        Ok(Self {
            encoder,
            classifier,
            freeze_encoder: false,
        })
    }

    /// Stops gradients at the encoder output (a frozen encoder trains only the head).
    pub fn freeze_encoder(mut self, freeze: bool) -> Self {
        self.freeze_encoder = freeze;
        self
    }

    /// `[B, K]` label scores of a batch.
    pub fn logits(&self, batch: &Batch, dropout: &Dropout) -> Result<Tensor> {
        let mut hidden = self
            .encoder
            .forward_train(&batch.input.encoder_input(), dropout)?;
        if self.freeze_encoder {
            hidden = hidden.detach();
        }
        let (rows, l, h) = hidden.dims3()?;
        // One pooled row per example (packed batches hold several examples per encoder row).
        let examples = batch.input.starts.len();
        let pooled = hidden
            .reshape((rows * l, h))?
            .index_select(&batch.pooled_index, 0)?
            .reshape((examples, POOLED * h))?;
        self.classifier.forward(&dropout.forward(&pooled)?)
    }

    /// Mean cross-entropy of a batch against its gold labels.
    pub fn loss(&self, batch: &Batch, dropout: &Dropout) -> Result<Tensor> {
        let logits = self.logits(batch, dropout)?;
        candle_nn::loss::cross_entropy(&logits, &batch.labels)
    }
}
