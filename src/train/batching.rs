//! Batching of one epoch. Length-bucketed (the default): examples of similar length share a
//! batch, so each batch pads to its own longest example and little compute goes to padding.
//! The order is seeded: examples are shuffled, cut into pools of `pool` batches, each pool
//! sorted by length and cut into batches, and the batches shuffled again. Small pools keep
//! batches mixed (each spans a slice of its pool's length range), large pools pad least. Random: the
//! shuffled examples cut into consecutive batches, as a PyTorch `DataLoader(shuffle=True)` does.
use serde::{Deserialize, Serialize};

use crate::knowledge::Layout;
use crate::model::Rng;

/// How an epoch's examples are grouped into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Batching {
    /// Similar lengths together ([`length_bucketed_batches`]): least padding.
    #[default]
    Bucketed,
    /// Consecutive runs of the shuffled examples ([`random_batches`]).
    Random,
    /// Similar lengths together, each batch holding about the same number of tokens
    /// ([`token_budget_batches`]): little padding, and every optimiser step sees as much text
    /// (with plain length buckets a batch of short sentences gets as large an Adam step as a
    /// batch of long ones holding thirty times the tokens).
    Tokens,
    /// Random batches ([`random_batches`]) packed several examples to a row
    /// ([`Layout::Packed`]): the batches of `Random`, the compute of little padding.
    Packed,
}

impl Batching {
    /// The batches of one epoch under this policy (`pool`: batches per sorting pool when
    /// bucketed).
    pub fn batches(
        self,
        lengths: &[usize],
        batch_size: usize,
        pool: usize,
        rng: &mut Rng,
    ) -> Vec<Vec<usize>> {
        match self {
            Batching::Bucketed => length_bucketed_batches(lengths, batch_size, pool, rng),
            Batching::Random | Batching::Packed => random_batches(lengths.len(), batch_size, rng),
            Batching::Tokens => token_budget_batches(lengths, batch_size, pool, rng),
        }
    }

    /// How a batch's examples are laid out in encoder rows.
    pub fn layout(self) -> Layout {
        match self {
            Batching::Packed => Layout::Packed,
            _ => Layout::Padded,
        }
    }
}

/// Length-sorted pools (as [`length_bucketed_batches`]) cut into batches whose padded size
/// stays within `batch_size ×` the mean example length, so the batches number about as many
/// as with `batch_size` examples each but hold about equal tokens.
pub fn token_budget_batches(
    lengths: &[usize],
    batch_size: usize,
    pool: usize,
    rng: &mut Rng,
) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mean = lengths.iter().sum::<usize>() as f64 / lengths.len().max(1) as f64;
    let budget = (batch_size as f64 * mean).ceil() as usize;
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    rng.shuffle(&mut order);
    let mut batches = Vec::new();
    for pool in order.chunks_mut(batch_size * pool.max(1)) {
        pool.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        let mut batch: Vec<usize> = Vec::new();
        for &i in pool.iter() {
            // Sorted longest first: the batch's first example sets its padded width.
            let width = batch.first().map_or(lengths[i], |&f| lengths[f]);
            if !batch.is_empty() && (batch.len() + 1) * width > budget {
                batches.push(std::mem::take(&mut batch));
            }
            batch.push(i);
        }
        if !batch.is_empty() {
            batches.push(batch);
        }
    }
    rng.shuffle(&mut batches);
    batches
}

/// The shuffled indices `0..n` cut into consecutive batches of `batch_size` (the last shorter).
pub fn random_batches(n: usize, batch_size: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..n).collect();
    rng.shuffle(&mut order);
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

/// Default batches per sorting pool (see [`length_bucketed_batches`]).
pub const POOL_BATCHES: usize = 8;

/// The batches (lists of example indices) of one epoch for examples of the given `lengths`,
/// sorted by length within pools of `pool` batches.
pub fn length_bucketed_batches(
    lengths: &[usize],
    batch_size: usize,
    pool: usize,
    rng: &mut Rng,
) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    rng.shuffle(&mut order);
    let mut batches = Vec::new();
    for pool in order.chunks_mut(batch_size * pool.max(1)) {
        pool.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        batches.extend(pool.chunks(batch_size).map(<[usize]>::to_vec));
    }
    rng.shuffle(&mut batches);
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_once_in_tight_buckets() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 7919) % 200 + 5).collect();
        let batches = length_bucketed_batches(&lengths, 10, 50, &mut Rng::new(1));
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        let padded: usize = batches
            .iter()
            .map(|b| b.len() * b.iter().map(|&i| lengths[i]).max().unwrap_or(0))
            .sum();
        let real: usize = lengths.iter().sum();
        // Random batches of 10 would pad to ~1.7x the real tokens; buckets stay close to 1.
        assert!((padded as f64) < 1.1 * real as f64, "{padded} vs {real}");
        assert_ne!(
            batches,
            length_bucketed_batches(&lengths, 10, 50, &mut Rng::new(2))
        );
    }

    #[test]
    fn token_budget_batches_hold_about_equal_tokens() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 7919) % 200 + 5).collect();
        let batches = token_budget_batches(&lengths, 10, 8, &mut Rng::new(1));
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..1000).collect::<Vec<_>>());
        let mean = lengths.iter().sum::<usize>() as f64 / 1000.0;
        let budget = (10.0 * mean).ceil() as usize;
        for b in &batches {
            let padded = b.len() * b.iter().map(|&i| lengths[i]).max().unwrap_or(0);
            // Only a lone example longer than the budget may exceed it.
            assert!(padded <= budget || b.len() == 1, "{padded} > {budget}");
        }
        // Short examples share big batches, long ones small batches.
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert!(
            sizes.iter().max() > Some(&20) && sizes.iter().min() < Some(&8),
            "{sizes:?}"
        );
        // About as many steps as fixed batches of 10 (each padded within its pool).
        assert!(
            (90..=140).contains(&batches.len()),
            "{} batches",
            batches.len()
        );
    }

    #[test]
    fn random_batches_cover_every_example_once_in_full_batches() {
        let batches = random_batches(25, 10, &mut Rng::new(3));
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5]);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        assert_ne!(seen, (0..25).collect::<Vec<_>>(), "not shuffled");
        seen.sort();
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
    }
}
