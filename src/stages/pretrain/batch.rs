//! From texts to a masked batch and back to metrics: tokenise (truncating to `max_len`),
//! find the units, mask; lay the sequences out as padded `[B, L]` tensors with the flat
//! positions and original ids of the masked tokens; and score a model on masked sequences
//! (`mlm_loss`, `mlm_accuracy`, `entity_accuracy`).
use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use super::masking::{Masked, Masker, Strategy, IGNORE};
use super::units::UnitFinder;
use super::PretrainError;
use crate::model::mlm::BertForMaskedLm;
use crate::model::{BertTokenizer, Dropout, EncoderInput, Rng};

/// Tokenises, finds units and masks one text.
pub struct Preparer<'a> {
    /// The tokenizer.
    pub tokenizer: &'a BertTokenizer,
    /// The unit finder.
    pub units: &'a UnitFinder,
    /// The masker.
    pub masker: &'a Masker,
    /// Tokens per sequence, `[CLS]`/`[SEP]` included.
    pub max_len: usize,
}

impl Preparer<'_> {
    /// `text` masked with `rng`.
    pub fn prepare(&self, text: &str, rng: &mut Rng) -> Result<Masked, PretrainError> {
        let enc = self.tokenizer.encode(text)?;
        let (mut ids, mut offsets) = (enc.ids, enc.offsets);
        if ids.len() > self.max_len {
            let sep = ids[ids.len() - 1];
            ids.truncate(self.max_len - 1);
            offsets.truncate(self.max_len - 1);
            ids.push(sep);
            offsets.push((0, 0));
        }
        Ok(self
            .masker
            .mask(&ids, &offsets, &self.units.spans(text), rng))
    }
}

/// The tensors of a batch of masked sequences.
#[derive(Debug, Clone)]
pub struct MaskedBatch {
    /// `[B, L]` ids (0 at padding).
    pub input_ids: Tensor,
    /// `[B, L]` 1 for real tokens.
    pub attention_mask: Tensor,
    /// `[N]` flat positions `b * L + i` of the masked tokens.
    pub positions: Tensor,
    /// `[N]` their original ids.
    pub targets: Tensor,
    /// Each masked token's `(sequence, token)`, in the order of `positions`.
    pub index: Vec<(usize, usize)>,
    /// Real tokens.
    pub tokens: usize,
    /// Tokens including padding.
    pub padded_tokens: usize,
}

impl MaskedBatch {
    /// Pads `seqs` to the longest.
    pub fn new(seqs: &[&Masked], device: &Device) -> Result<Self, PretrainError> {
        let l = seqs.iter().map(|s| s.input_ids.len()).max().unwrap_or(0);
        let b = seqs.len();
        let mut ids = vec![0u32; b * l];
        let mut mask = vec![0u32; b * l];
        let (mut positions, mut targets, mut index) = (Vec::new(), Vec::new(), Vec::new());
        let mut tokens = 0;
        for (r, s) in seqs.iter().enumerate() {
            tokens += s.input_ids.len();
            for (i, (&id, &label)) in s.input_ids.iter().zip(&s.labels).enumerate() {
                ids[r * l + i] = id;
                mask[r * l + i] = 1;
                if label != IGNORE {
                    positions.push((r * l + i) as u32);
                    targets.push(label as u32);
                    index.push((r, i));
                }
            }
        }
        let n = positions.len();
        Ok(Self {
            input_ids: Tensor::from_vec(ids, (b, l), device)?,
            attention_mask: Tensor::from_vec(mask, (b, l), device)?,
            positions: Tensor::from_vec(positions, n, device)?,
            targets: Tensor::from_vec(targets, n, device)?,
            index,
            tokens,
            padded_tokens: b * l,
        })
    }

    /// The encoder input.
    pub fn input(&self) -> EncoderInput<'_> {
        EncoderInput {
            attention_mask: Some(&self.attention_mask),
            ..EncoderInput::new(&self.input_ids)
        }
    }

    /// Masked tokens.
    pub fn masked(&self) -> usize {
        self.index.len()
    }
}

/// How well a model predicts masked tokens.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MlmMetrics {
    /// Mean cross-entropy over the masked tokens (nats).
    pub mlm_loss: f64,
    /// Share of masked tokens predicted right (arg-max).
    pub mlm_accuracy: f64,
    /// Share of masked linked-entity mentions whose every token is predicted right (`null`
    /// when no mention was masked).
    pub entity_accuracy: Option<f64>,
    /// Masked tokens scored.
    pub masked_tokens: usize,
    /// Masked entity mentions scored.
    pub entity_spans: usize,
    /// Sequences scored.
    pub sequences: usize,
}

/// Scores `model` (no dropout) on masked sequences, `batch_size` at a time.
pub fn mlm_metrics(
    model: &BertForMaskedLm,
    seqs: &[Masked],
    batch_size: usize,
    device: &Device,
) -> Result<MlmMetrics, PretrainError> {
    let (mut loss_sum, mut correct, mut total) = (0.0f64, 0usize, 0usize);
    let (mut entity_right, mut entity_total) = (0usize, 0usize);
    for chunk in seqs.chunks(batch_size.max(1)) {
        let refs: Vec<&Masked> = chunk.iter().collect();
        let batch = MaskedBatch::new(&refs, device)?;
        if batch.masked() == 0 {
            continue;
        }
        let hidden = model.hidden(&batch.input(), &Dropout::disabled())?;
        let logits = model.logits_at(&hidden, &batch.positions)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &batch.targets)?;
        loss_sum +=
            f64::from(loss.to_dtype(DType::F32)?.to_scalar::<f32>()?) * batch.masked() as f64;
        let predicted: Vec<u32> = logits.argmax(1)?.to_vec1()?;
        let targets: Vec<u32> = batch.targets.to_vec1()?;
        let mut right = vec![vec![false; 0]; chunk.len()];
        for (r, s) in chunk.iter().enumerate() {
            right[r] = vec![false; s.input_ids.len()];
        }
        for (k, &(r, i)) in batch.index.iter().enumerate() {
            right[r][i] = predicted[k] == targets[k];
            correct += usize::from(right[r][i]);
        }
        total += batch.masked();
        for (r, s) in chunk.iter().enumerate() {
            for span in s.spans.iter().filter(|s| s.strategy == Strategy::Entity) {
                entity_total += 1;
                entity_right += usize::from(span.tokens.clone().all(|i| right[r][i]));
            }
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
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
        sequences: seqs.len(),
    })
}
