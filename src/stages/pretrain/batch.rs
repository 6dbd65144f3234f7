//! From texts to a masked batch and back to metrics: tokenise (truncating to `max_len`),
//! find the units, mask; lay the sequences out as padded `[B, L]` tensors with the flat
//! positions and original ids of the masked tokens; and score a model on masked sequences
//! (`mlm_loss`, `mlm_accuracy`, `entity_accuracy`).
use candle_core::{Device, Tensor};
use serde::Serialize;

use std::ops::Range;

use super::dea::{align, corrupt, Aligned, DeaOptions};
use super::masking::{Masked, Masker, IGNORE};
use super::model::{pretrain_metrics, PretrainModel};
use super::units::UnitFinder;
use super::PretrainError;
use crate::knowledge::EntityVectors;
use crate::model::mlm::BertForMaskedLm;
use crate::model::{BertTokenizer, EncoderInput, Rng};

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
    /// ERNIE mode: the entity vectors' names and the dEA corruption.
    pub entities: Option<(&'a EntityVectors, DeaOptions)>,
}

/// A masked sequence and, in ERNIE mode, its corrupted entity alignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The masked tokens.
    pub masked: Masked,
    /// The entity alignments (ERNIE mode).
    pub entities: Option<Aligned>,
}

impl Preparer<'_> {
    /// `text` masked (and its entity inputs corrupted) with `rng`.
    pub fn prepare(&self, text: &str, rng: &mut Rng) -> Result<Sample, PretrainError> {
        let enc = self.tokenizer.encode(text)?;
        let (mut ids, mut offsets) = (enc.ids, enc.offsets);
        if ids.len() > self.max_len {
            let sep = ids[ids.len() - 1];
            ids.truncate(self.max_len - 1);
            offsets.truncate(self.max_len - 1);
            ids.push(sep);
            offsets.push((0, 0));
        }
        let (spans, linked) = self.units.find(text);
        let masked = self.masker.mask(&ids, &offsets, &spans, rng);
        let entities = self.entities.map(|(vectors, options)| {
            let mentions: Vec<(Range<usize>, u32)> = linked
                .into_iter()
                .filter_map(|(span, name)| Some((span, vectors.row(&name)?)))
                .collect();
            let targets = align(&offsets, &mentions);
            let input = corrupt(&targets, vectors.len(), options, rng);
            Aligned { targets, input }
        });
        Ok(Sample { masked, entities })
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

/// How well a model predicts masked tokens (and, in ERNIE mode, aligned entities).
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
    /// ERNIE mode: mean dEA cross-entropy over the aligned tokens (each entity among its
    /// batch's distinct aligned entities).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dea_loss: Option<f64>,
    /// ERNIE mode: share of aligned tokens whose entity is predicted right (arg-max among the
    /// batch's entities): the entity-prediction accuracy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dea_accuracy: Option<f64>,
    /// ERNIE mode: aligned tokens scored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dea_alignments: Option<usize>,
}

/// Scores the masked LM `model` (no dropout) on masked sequences, `batch_size` at a time.
pub fn mlm_metrics(
    model: &BertForMaskedLm,
    seqs: &[Masked],
    batch_size: usize,
    device: &Device,
) -> Result<MlmMetrics, PretrainError> {
    let samples: Vec<Sample> = seqs
        .iter()
        .map(|m| Sample {
            masked: m.clone(),
            entities: None,
        })
        .collect();
    pretrain_metrics(
        &PretrainModel::Plain(model.clone()),
        &samples,
        batch_size,
        device,
    )
}
