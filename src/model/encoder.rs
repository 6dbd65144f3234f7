//! One encoder abstraction for every task head: a plain BERT (with or without K-BERT inputs)
//! or an ERNIE-THU model with its fixed entity table, both run on any [`EncoderBatch`] (the
//! task stages pass `knowledge::InputBatch`). Heads call [`Encoder::forward`] and never look
//! at which one they hold.
use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

use super::bert::BertModel;
use super::bert::EncoderInput;
use super::config::{BertConfig, Kernels};
use super::ernie::{ErnieInput, ErnieModel};
use super::Dropout;

/// A batch the [`Encoder`] runs: the token tensors and, for ERNIE, each token's entity vector.
pub trait EncoderBatch {
    /// The token tensors (ids, positions, segments, padding mask, visible matrix).
    fn encoder_input(&self) -> EncoderInput<'_>;
    /// `[B, L, dim]` entity vectors looked up in `table` (zero where a token has none) and
    /// the `[B, L]` entity mask.
    fn entity_vectors(&self, table: &EntityTable) -> Result<(Tensor, Tensor)>;
}

/// Entity vectors (TransE, fixed during fine-tuning as in ERNIE-THU), with a zero row in front
/// so that "no entity" (`-1`) looks up a zero vector.
#[derive(Debug, Clone)]
pub struct EntityTable {
    padded: Tensor,
}

impl EntityTable {
    /// Wraps `table [entities, dim]`; row `i` is entity `i`.
    pub fn new(table: &Tensor) -> Result<Self> {
        let (_, d) = table.dims2()?;
        let zero = Tensor::zeros((1, d), table.dtype(), table.device())?;
        Ok(Self {
            padded: Tensor::cat(&[&zero, table], 0)?.detach(),
        })
    }

    /// Number of entities.
    pub fn len(&self) -> usize {
        self.padded.dim(0).unwrap_or(1) - 1
    }

    /// Whether the table has no entity.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.padded.dim(1).unwrap_or(0)
    }

    /// The vectors' dtype.
    pub fn dtype(&self) -> DType {
        self.padded.dtype()
    }

    /// `[entities, dim]`, without the zero row.
    pub fn vectors(&self) -> Result<Tensor> {
        self.padded.narrow(0, 1, self.len())
    }

    /// `ids [B, L]` (i64 rows, `-1` = none) -> `[B, L, dim]`.
    pub fn lookup(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, l) = ids.dims2()?;
        let one = Tensor::new(1i64, ids.device())?;
        let rows = ids
            .to_dtype(DType::I64)?
            .broadcast_add(&one)?
            .flatten_all()?;
        let (lo, hi) = (
            rows.min(0)?.to_scalar::<i64>()?,
            rows.max(0)?.to_scalar::<i64>()?,
        );
        if lo < 0 || hi > self.len() as i64 {
            candle_core::bail!(
                "entity ids must lie in -1..{}, found {}..{}",
                self.len(),
                lo - 1,
                hi - 1
            );
        }
        self.padded
            .index_select(&rows, 0)?
            .reshape((b, l, self.dim()))
    }
}

/// The encoder a task head runs: plain BERT or ERNIE-THU.
#[derive(Debug, Clone)]
pub enum Encoder {
    /// BERT; K-BERT inputs (soft positions, visible matrix) come in the batch.
    Bert(BertModel),
    /// ERNIE-THU fusion layers over the batch's entity ids, looked up in a fixed table.
    Ernie {
        /// The model (its config's `layer_types` say which layers fuse).
        model: ErnieModel,
        /// The entity vectors.
        entities: EntityTable,
    },
}

impl Encoder {
    /// Loads BERT, or ERNIE when an entity table is given (layer kinds from
    /// `cfg.layer_types`; see [`super::ernie::aggregator_config`]).
    pub fn load(vb: VarBuilder, cfg: &BertConfig, entities: Option<EntityTable>) -> Result<Self> {
        Ok(match entities {
            None => Self::Bert(BertModel::load(vb, cfg)?),
            Some(entities) => Self::Ernie {
                model: ErnieModel::load(vb, cfg)?,
                entities,
            },
        })
    }

    /// The configuration the encoder was loaded with.
    pub fn config(&self) -> &BertConfig {
        match self {
            Self::Bert(m) => m.config(),
            Self::Ernie { model, .. } => model.config(),
        }
    }

    /// Switches a loaded encoder to `kernels` (e.g. `Kernels::inference(Precision::Int8)`),
    /// as loading with them would have: see [`BertModel::set_kernels`].
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        match self {
            Self::Bert(m) => m.set_kernels(kernels),
            Self::Ernie { model, .. } => model.set_kernels(kernels),
        }
    }

    /// Quantises every dense layer to int8 for inference ([`Kernels::FastInt8`]).
    pub fn quantize(&mut self) -> Result<()> {
        self.set_kernels(Kernels::FastInt8)
    }

    /// `last_hidden_state [B, L, H]` of a batch (entity ids are ignored by plain BERT), for
    /// inference.
    pub fn forward(&self, batch: &impl EncoderBatch) -> Result<Tensor> {
        self.forward_train(batch, &Dropout::disabled())
    }

    /// [`BertModel::forward_traced`]: every layer's output and attention scores (BERT
    /// only: an ERNIE encoder is an error).
    pub fn forward_traced(
        &self,
        batch: &impl EncoderBatch,
        dropout: &Dropout,
    ) -> Result<super::Trace> {
        match self {
            Self::Bert(m) => m.forward_traced(&batch.encoder_input(), dropout),
            Self::Ernie { .. } => {
                candle_core::bail!("traced forward passes cover BERT encoders, not ERNIE")
            }
        }
    }

    /// [`Encoder::forward`] with `dropout` inside the encoder (training).
    pub fn forward_train(&self, batch: &impl EncoderBatch, dropout: &Dropout) -> Result<Tensor> {
        match self {
            Self::Bert(m) => m.forward_train(&batch.encoder_input(), dropout),
            Self::Ernie { model, entities } => {
                let (vectors, mask) = batch.entity_vectors(entities)?;
                let input = ErnieInput {
                    tokens: batch.encoder_input(),
                    entities: &vectors,
                    entity_mask: &mask,
                };
                Ok(model.forward_train(&input, dropout)?.0)
            }
        }
    }
}
