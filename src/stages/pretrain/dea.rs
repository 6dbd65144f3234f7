//! ERNIE-THU's denoising entity auto-encoder (dEA) on the data side: each linked mention's
//! entity is aligned to the FIRST token of the mention ([`align`], ERNIE-THU's convention,
//! as [`crate::knowledge::DocumentKnowledge::entity_rows`] does for fine-tuning); each
//! alignment's entity input is then corrupted ([`corrupt`]: `dea_mask` of them absent, a zero
//! vector with the token's entity mask off; `dea_random` replaced by a random entity of the KG;
//! the rest kept), and the model predicts every aligned entity among the batch's distinct
//! aligned entities from the token's final state ([`DeaBatch`]).
use std::ops::Range;

use candle_core::{DType, Device, Tensor};

use crate::model::{EntityTable, Rng};

/// No entity on a token.
pub const NONE: i64 = -1;

/// The dEA corruption rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeaOptions {
    /// Share of alignments whose entity input is absent (masked).
    pub mask: f64,
    /// Share of alignments whose entity input is a random entity.
    pub random: f64,
}

/// One sequence's entity alignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aligned {
    /// Per token, the entity row it is aligned to ([`NONE`]: none): what dEA predicts.
    pub targets: Vec<i64>,
    /// Per token, the entity row fed to the encoder after corruption ([`NONE`]: none).
    pub input: Vec<i64>,
}

/// Per token of a sequence whose tokens cover the characters `offsets` (`(0, 0)` for special
/// tokens), the row of the entity whose mention (a character span) starts at it: each mention
/// of `mentions` goes to the first token overlapping it; a token claimed twice keeps the
/// first mention.
pub fn align(offsets: &[(usize, usize)], mentions: &[(Range<usize>, u32)]) -> Vec<i64> {
    let mut rows = vec![NONE; offsets.len()];
    for (span, row) in mentions {
        let first = offsets
            .iter()
            .position(|&(s, e)| e > s && e > span.start && s < span.end);
        if let Some(i) = first {
            if rows[i] == NONE {
                rows[i] = i64::from(*row);
            }
        }
    }
    rows
}

/// `targets` corrupted for the encoder's input with `rng`: each alignment independently
/// absent (`options.mask`), a random row below `entities` (`options.random`) or kept.
pub fn corrupt(targets: &[i64], entities: usize, options: DeaOptions, rng: &mut Rng) -> Vec<i64> {
    targets
        .iter()
        .map(|&t| {
            if t == NONE {
                return NONE;
            }
            let r = f64::from(rng.next_f32());
            if r < options.mask {
                NONE
            } else if r < options.mask + options.random {
                rng.below(entities.max(1)) as i64
            } else {
                t
            }
        })
        .collect()
}

/// The dEA tensors of a batch.
#[derive(Debug, Clone)]
pub struct DeaBatch {
    /// `[B, L, 100]` entity inputs (zeros where none).
    pub entities: Tensor,
    /// `[B, L]` u32, 1 on tokens carrying an entity input.
    pub entity_mask: Tensor,
    /// `[N]` flat positions `b * L + i` of the aligned tokens (u32).
    pub positions: Tensor,
    /// `[N]` each aligned token's entity as an index into `candidates` (u32).
    pub labels: Tensor,
    /// `[K, 100]` the batch's distinct aligned entities (ascending rows), fixed vectors.
    pub candidates: Tensor,
    /// Aligned tokens (N).
    pub aligned: usize,
}

impl DeaBatch {
    /// The batch of `seqs` padded to `len` tokens, vectors looked up in `table`.
    pub fn new(
        seqs: &[&Aligned],
        len: usize,
        table: &EntityTable,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let b = seqs.len();
        let mut input = vec![NONE; b * len];
        let (mut positions, mut rows) = (Vec::new(), Vec::new());
        for (r, s) in seqs.iter().enumerate() {
            for (i, (&t, &x)) in s.targets.iter().zip(&s.input).enumerate().take(len) {
                input[r * len + i] = x;
                if t != NONE {
                    positions.push((r * len + i) as u32);
                    rows.push(t);
                }
            }
        }
        let mut candidates: Vec<i64> = rows.clone();
        candidates.sort_unstable();
        candidates.dedup();
        let labels: Vec<u32> = rows
            .iter()
            .map(|t| candidates.binary_search(t).unwrap_or_default() as u32)
            .collect();
        let mask: Vec<u32> = input.iter().map(|&x| u32::from(x != NONE)).collect();
        let ids = Tensor::from_vec(input, (b, len), device)?;
        let (n, k) = (positions.len(), candidates.len());
        let candidate_rows: Vec<u32> = candidates.iter().map(|&c| c as u32).collect();
        Ok(Self {
            entities: table.lookup(&ids)?,
            entity_mask: Tensor::from_vec(mask, (b, len), device)?,
            positions: Tensor::from_vec(positions, n, device)?,
            labels: Tensor::from_vec(labels, n, device)?,
            candidates: table
                .vectors()?
                .index_select(&Tensor::from_vec(candidate_rows, k, device)?, 0)?
                .to_dtype(DType::F32)?,
            aligned: n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mention_goes_to_its_first_token_and_special_tokens_never_carry_one() {
        // [CLS] 患 者 头 痛 发 热 [SEP]: characters 0..6.
        let offsets = [
            (0, 0),
            (0, 1),
            (1, 2),
            (2, 3),
            (3, 4),
            (4, 5),
            (5, 6),
            (0, 0),
        ];
        let rows = align(&offsets, &[(2..4, 7), (4..6, 3), (2..3, 9)]);
        assert_eq!(rows, [-1, -1, -1, 7, -1, 3, -1, -1]);
    }

    #[test]
    fn corruption_rates_follow_the_options_and_repeat_for_a_seed() {
        let targets: Vec<i64> = (0..20_000).map(|i| i % 5).collect();
        let options = DeaOptions {
            mask: 0.15,
            random: 0.05,
        };
        let a = corrupt(&targets, 1000, options, &mut Rng::new(3));
        assert_eq!(a, corrupt(&targets, 1000, options, &mut Rng::new(3)));
        let absent = a.iter().filter(|&&x| x == NONE).count() as f64 / 20_000.0;
        let changed = a
            .iter()
            .zip(&targets)
            .filter(|(x, t)| **x != NONE && x != t)
            .count() as f64
            / 20_000.0;
        assert!((absent - 0.15).abs() < 0.01, "absent {absent}");
        assert!((changed - 0.05).abs() < 0.01, "random {changed}");
        assert_eq!(
            corrupt(&[NONE, NONE], 10, options, &mut Rng::new(1)),
            [NONE, NONE]
        );
    }

    #[test]
    fn labels_index_the_batchs_distinct_entities() {
        let table = Tensor::from_vec(
            (0..500).map(|i| i as f32).collect::<Vec<_>>(),
            (5, 100),
            &Device::Cpu,
        )
        .unwrap();
        let table = EntityTable::new(&table).unwrap();
        let a = Aligned {
            targets: vec![-1, 4, -1, 1],
            input: vec![-1, -1, -1, 1],
        };
        let b = Aligned {
            targets: vec![-1, 4, -1],
            input: vec![-1, 2, -1],
        };
        let batch = DeaBatch::new(&[&a, &b], 4, &table, &Device::Cpu).unwrap();
        assert_eq!(batch.positions.to_vec1::<u32>().unwrap(), [1, 3, 5]);
        assert_eq!(batch.labels.to_vec1::<u32>().unwrap(), [1, 0, 1]);
        assert_eq!(batch.candidates.dims(), &[2, 100]);
        let first: Vec<f32> = batch.candidates.to_vec2::<f32>().unwrap()[0][..2].to_vec();
        assert_eq!(first, [100.0, 101.0]);
        assert_eq!(
            batch.entity_mask.to_vec2::<u32>().unwrap(),
            [[0, 0, 0, 1], [0, 1, 0, 0]]
        );
        let e = batch.entities.to_vec3::<f32>().unwrap();
        assert_eq!((e[1][1][0], e[0][1][0]), (200.0, 0.0));
    }
}
