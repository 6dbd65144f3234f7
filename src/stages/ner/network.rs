//! The NER network: the encoder ([`Encoder`]: BERT, or ERNIE-THU with a fixed entity table),
//! a linear token-classification head over each character's token, and an optional CRF on
//! top. Parameter names are the encoder checkpoint's (`embeddings.*`, `encoder.*`, ERNIE's
//! entity-side `*_ent.*`) plus `classifier.*` and `crf.*`.
use candle_core::{Result, Tensor};
use candle_nn::{Linear, Module, VarBuilder};

use super::confidence::{crf_span_probabilities, linear_span_probabilities};
use super::crf::{Crf, CrfScores};
use super::features::Batch;
use super::tags::LabelMap;
use crate::model::Dropout;
use crate::model::{BertConfig, Encoder, EntityTable};

/// Encoder + classifier (+ CRF).
#[derive(Debug, Clone)]
pub struct NerNetwork {
    encoder: Encoder,
    classifier: Linear,
    crf: Option<Crf>,
    freeze_encoder: bool,
}

impl NerNetwork {
    /// Loads (or, from a `VarMap`, creates) every parameter: the encoder at the root,
    /// `classifier.{weight,bias}` and, with `crf`, `crf.{transitions,start,end}`.
    pub fn load(vb: VarBuilder, cfg: &BertConfig, labels: &LabelMap, crf: bool) -> Result<Self> {
        Self::load_with_entities(vb, cfg, labels, crf, None)
    }

    /// Like [`NerNetwork::load`]; with an entity table the encoder is ERNIE-THU with the
    /// layer kinds of `cfg.layer_types` (see [`crate::model::aggregator_config`]).
    pub fn load_with_entities(
        vb: VarBuilder,
        cfg: &BertConfig,
        labels: &LabelMap,
        crf: bool,
        entities: Option<EntityTable>,
    ) -> Result<Self> {
        let encoder = Encoder::load(vb.clone(), cfg, entities)?;
        let classifier = candle_nn::linear(cfg.hidden_size, labels.len(), vb.pp("classifier"))?;
        let crf = if crf {
            Some(Crf::load(vb.pp("crf"), labels)?)
        } else {
            None
        };
        Ok(Self {
            encoder,
            classifier,
            crf,
            freeze_encoder: false,
        })
    }

    /// Stops gradients at the encoder output (a frozen encoder trains only the head).
    pub fn freeze_encoder(mut self, freeze: bool) -> Self {
        self.freeze_encoder = freeze;
        self
    }

    /// Whether decoding uses the CRF.
    pub fn has_crf(&self) -> bool {
        self.crf.is_some()
    }

    /// The encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// Emission scores of the labelled characters, `[N, K]` in the batch's character order.
    pub fn emissions(&self, batch: &Batch, dropout: &Dropout) -> Result<Tensor> {
        let hidden = self.encoder.forward_train(&batch.input, dropout)?;
        self.head(&hidden, batch, dropout)
    }

    /// The classifier over the encoder's output `hidden [B, L, H]`: emission scores of the
    /// batch's labelled characters, `[N, K]`.
    pub fn head(&self, hidden: &Tensor, batch: &Batch, dropout: &Dropout) -> Result<Tensor> {
        let hidden = if self.freeze_encoder {
            hidden.detach()
        } else {
            hidden.clone()
        };
        let (b, l, h) = hidden.dims3()?;
        let chars = hidden
            .reshape((b * l, h))?
            .index_select(&batch.char_index, 0)?;
        self.classifier.forward(&dropout.forward(&chars)?)
    }

    /// The training loss of a batch: CRF negative log-likelihood per sentence, or token-level
    /// cross-entropy without a CRF.
    pub fn loss(&self, batch: &Batch, dropout: &Dropout) -> Result<Tensor> {
        let emissions = self.emissions(batch, dropout)?;
        self.emission_loss(&emissions, &batch.char_counts, &batch.labels)
    }

    /// [`NerNetwork::loss`] of emissions `[N, K]` already computed: `counts[i]` rows of
    /// example `i` back to back, with gold `labels[i]` (one per row).
    pub fn emission_loss(
        &self,
        emissions: &Tensor,
        counts: &[usize],
        labels: &[Vec<u32>],
    ) -> Result<Tensor> {
        let k = emissions.dim(1)?;
        match &self.crf {
            Some(crf) => {
                let c = counts.iter().copied().max().unwrap_or(0);
                if c == 0 {
                    return emissions.sum_all()?.affine(0.0, 0.0);
                }
                let padded = pad_rows(emissions, counts, c)?;
                crf.nll(&padded.reshape((counts.len(), c, k))?, labels)
            }
            None => {
                let gold: Vec<u32> = labels.iter().flatten().copied().collect();
                let n = gold.len();
                let gold = Tensor::from_vec(gold, n, emissions.device())?;
                candle_nn::loss::cross_entropy(emissions, &gold)
            }
        }
    }

    /// The CRF scores for decoding, if there is a CRF.
    pub fn crf_scores(&self) -> Result<Option<CrfScores>> {
        self.crf.as_ref().map(Crf::scores).transpose()
    }

    /// Decodes one sentence's emissions (`len × K`): Viterbi under the scheme's constraints
    /// with a CRF, else the arg-max of each row.
    pub fn decode(
        &self,
        emissions: &[f32],
        len: usize,
        k: usize,
        scores: Option<&CrfScores>,
    ) -> Vec<u32> {
        match (&self.crf, scores) {
            (Some(crf), Some(scores)) => crf.viterbi(emissions, len, scores),
            _ => emissions
                .chunks(k)
                .take(len)
                .map(|row| {
                    row.iter()
                        .enumerate()
                        .fold((0, f32::NEG_INFINITY), |best, (i, &x)| {
                            if x > best.1 {
                                (i, x)
                            } else {
                                best
                            }
                        })
                        .0 as u32
                })
                .collect(),
        }
    }

    /// The probability of each entity span `(start, end_exclusive, type)` of one sentence
    /// decoded by [`NerNetwork::decode`] into `ids` from `emissions` (`ids.len() × K`): the
    /// CRF marginal of the span, or without a CRF the product of its tags' softmax
    /// probabilities (see [`super::confidence`]).
    pub fn span_probabilities(
        &self,
        labels: &LabelMap,
        emissions: &[f32],
        ids: &[u32],
        scores: Option<&CrfScores>,
        spans: &[(usize, usize, String)],
    ) -> Vec<f32> {
        match (&self.crf, scores) {
            (Some(crf), Some(scores)) => {
                crf_span_probabilities(labels, emissions, ids, scores, crf.constraints(), spans)
            }
            _ => linear_span_probabilities(emissions, ids, labels.len(), spans),
        }
    }
}

/// Rearranges `[N, K]` rows (examples' characters back to back, `counts` each) into
/// `[B·C, K]` with each example padded to `c` rows of zeros.
fn pad_rows(rows: &Tensor, counts: &[usize], c: usize) -> Result<Tensor> {
    let k = rows.dim(1)?;
    let zero = Tensor::zeros((1, k), rows.dtype(), rows.device())?;
    let with_zero = Tensor::cat(&[rows, &zero], 0)?;
    let zero_row = rows.dim(0)? as u32;
    let mut idx = Vec::with_capacity(counts.len() * c);
    let mut at = 0u32;
    for &n in counts {
        idx.extend(at..at + n as u32);
        idx.extend(std::iter::repeat_n(zero_row, c - n));
        at += n as u32;
    }
    let len = idx.len();
    with_zero.index_select(&Tensor::from_vec(idx, len, rows.device())?, 0)
}
