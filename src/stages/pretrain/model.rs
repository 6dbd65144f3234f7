//! The model `zhishi pretrain` trains: BERT with its masked-LM head (`knowledge.mode =
//! "plain"`), or ERNIE-THU with the masked-LM and dEA heads over fixed TransE vectors
//! (`"ernie"`); one forward pass for training loss and held-out metrics alike.
use candle_core::{DType, Device, Tensor};

use super::batch::{MaskedBatch, MlmMetrics, Sample};
use super::dea::DeaBatch;
use super::masking::{Masked, Strategy};
use super::PretrainError;
use crate::model::dea::ErnieForPretraining;
use crate::model::mlm::BertForMaskedLm;
use crate::model::{Dropout, EntityTable, ErnieInput};

/// A pretraining model.
#[derive(Debug, Clone)]
// Built once per run; boxing to even out the variants would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum PretrainModel {
    /// BERT + masked-LM head.
    Plain(BertForMaskedLm),
    /// ERNIE-THU + masked-LM and dEA heads.
    Ernie {
        /// The model.
        model: ErnieForPretraining,
        /// The fixed entity vectors (TransE).
        entities: EntityTable,
    },
}

/// The outputs of a batch.
pub struct Outputs {
    /// The masked tokens' batch.
    pub mlm: MaskedBatch,
    /// `[N, vocab]` logits of the masked tokens.
    pub mlm_logits: Tensor,
    /// ERNIE: the alignments' batch and `[N', K]` dEA logits (when any token is aligned).
    pub dea: Option<(DeaBatch, Tensor)>,
}

impl Outputs {
    /// The training loss: masked-LM cross-entropy plus the dEA cross-entropy (ERNIE mode,
    /// when the batch has aligned tokens).
    pub fn loss(&self) -> candle_core::Result<Tensor> {
        let mlm = candle_nn::loss::cross_entropy(&self.mlm_logits, &self.mlm.targets)?;
        match &self.dea {
            Some((b, logits)) => mlm.add(&candle_nn::loss::cross_entropy(logits, &b.labels)?),
            None => Ok(mlm),
        }
    }
}

impl PretrainModel {
    /// Runs a batch of samples (`dropout` while training).
    pub fn forward(
        &self,
        samples: &[&Sample],
        dropout: &Dropout,
        device: &Device,
    ) -> Result<Outputs, PretrainError> {
        let masked: Vec<&Masked> = samples.iter().map(|s| &s.masked).collect();
        let mlm = MaskedBatch::new(&masked, device)?;
        match self {
            Self::Plain(model) => {
                let hidden = model.hidden(&mlm.input(), dropout)?;
                let mlm_logits = model.logits_at(&hidden, &mlm.positions)?;
                Ok(Outputs {
                    mlm,
                    mlm_logits,
                    dea: None,
                })
            }
            Self::Ernie { model, entities } => {
                let aligned = samples
                    .iter()
                    .map(|s| {
                        s.entities.as_ref().ok_or_else(|| {
                            PretrainError::Input("an ERNIE batch without entity alignments".into())
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let (_, len) = mlm.input_ids.dims2()?;
                let dea = DeaBatch::new(&aligned, len, entities, device)?;
                let input = ErnieInput {
                    tokens: mlm.input(),
                    entities: &dea.entities,
                    entity_mask: &dea.entity_mask,
                };
                let hidden = model.hidden(&input, dropout)?;
                let mlm_logits = model.mlm_logits_at(&hidden, &mlm.positions)?;
                let dea = if dea.aligned > 0 {
                    let logits =
                        model.entity_logits_at(&hidden, &dea.positions, &dea.candidates)?;
                    Some((dea, logits))
                } else {
                    None
                };
                Ok(Outputs {
                    mlm,
                    mlm_logits,
                    dea,
                })
            }
        }
    }
}

/// Scores `model` (no dropout) on `samples`, `batch_size` at a time: masked-LM loss and
/// accuracy, whole-mention accuracy of masked entity mentions and, for ERNIE, dEA loss and
/// entity-prediction accuracy.
pub fn pretrain_metrics(
    model: &PretrainModel,
    samples: &[Sample],
    batch_size: usize,
    device: &Device,
) -> Result<MlmMetrics, PretrainError> {
    let (mut loss_sum, mut correct, mut total) = (0.0f64, 0usize, 0usize);
    let (mut entity_right, mut entity_total) = (0usize, 0usize);
    let (mut dea_loss, mut dea_right, mut dea_total) = (0.0f64, 0usize, 0usize);
    let scalar = |t: Tensor| -> Result<f64, PretrainError> {
        Ok(f64::from(t.to_dtype(DType::F32)?.to_scalar::<f32>()?))
    };
    for chunk in samples.chunks(batch_size.max(1)) {
        let refs: Vec<&Sample> = chunk.iter().collect();
        let out = model.forward(&refs, &Dropout::disabled(), device)?;
        if let Some((b, logits)) = &out.dea {
            let loss = candle_nn::loss::cross_entropy(logits, &b.labels)?;
            dea_loss += scalar(loss)? * b.aligned as f64;
            let predicted: Vec<u32> = logits.argmax(1)?.to_vec1()?;
            let labels: Vec<u32> = b.labels.to_vec1()?;
            dea_right += predicted
                .iter()
                .zip(&labels)
                .filter(|(p, l)| p == l)
                .count();
            dea_total += b.aligned;
        }
        let batch = &out.mlm;
        if batch.masked() == 0 {
            continue;
        }
        let loss = candle_nn::loss::cross_entropy(&out.mlm_logits, &batch.targets)?;
        loss_sum += scalar(loss)? * batch.masked() as f64;
        let predicted: Vec<u32> = out.mlm_logits.argmax(1)?.to_vec1()?;
        let targets: Vec<u32> = batch.targets.to_vec1()?;
        let mut right: Vec<Vec<bool>> = chunk
            .iter()
            .map(|s| vec![false; s.masked.input_ids.len()])
            .collect();
        for (k, &(r, i)) in batch.index.iter().enumerate() {
            right[r][i] = predicted[k] == targets[k];
            correct += usize::from(right[r][i]);
        }
        total += batch.masked();
        for (r, s) in chunk.iter().enumerate() {
            for span in s
                .masked
                .spans
                .iter()
                .filter(|s| s.strategy == Strategy::Entity)
            {
                entity_total += 1;
                entity_right += usize::from(span.tokens.clone().all(|i| right[r][i]));
            }
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let ernie = matches!(model, PretrainModel::Ernie { .. });
    Ok(MlmMetrics {
        mlm_loss: if total == 0 {
            0.0
        } else {
            loss_sum / total as f64
        },
        mlm_accuracy: ratio(correct, total),
        entity_accuracy: (entity_total > 0).then(|| ratio(entity_right, entity_total)),
        masked_tokens: total,
        entity_spans: entity_total,
        sequences: samples.len(),
        dea_loss: ernie.then(|| {
            if dea_total == 0 {
                0.0
            } else {
                dea_loss / dea_total as f64
            }
        }),
        dea_accuracy: ernie.then(|| ratio(dea_right, dea_total)),
        dea_alignments: ernie.then_some(dea_total),
    })
}
