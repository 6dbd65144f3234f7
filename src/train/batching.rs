//! Batching of one epoch. Length-bucketed (the default): examples of similar length share a
//! batch, so each batch pads to its own longest example and little compute goes to padding.
//! The order is seeded: examples are shuffled, cut into pools of `POOL_BATCHES` batches, each
//! pool sorted by length and cut into batches, and the batches shuffled again. Random: the
//! shuffled examples cut into consecutive batches, as a PyTorch `DataLoader(shuffle=True)` does.
use serde::{Deserialize, Serialize};

use super::rng::Rng;

/// How an epoch's examples are grouped into batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Batching {
    /// Similar lengths together ([`length_bucketed_batches`]): least padding.
    #[default]
    Bucketed,
    /// Consecutive runs of the shuffled examples ([`random_batches`]).
    Random,
}

impl Batching {
    /// The batches of one epoch under this policy.
    pub fn batches(self, lengths: &[usize], batch_size: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
        match self {
            Batching::Bucketed => length_bucketed_batches(lengths, batch_size, rng),
            Batching::Random => random_batches(lengths.len(), batch_size, rng),
        }
    }
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

/// Batches per sorting pool: large enough for tight buckets, small enough that a batch's
/// neighbours still vary from epoch to epoch.
pub const POOL_BATCHES: usize = 50;

/// The batches (lists of example indices) of one epoch for examples of the given `lengths`.
pub fn length_bucketed_batches(
    lengths: &[usize],
    batch_size: usize,
    rng: &mut Rng,
) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    rng.shuffle(&mut order);
    let mut batches = Vec::new();
    for pool in order.chunks_mut(batch_size * POOL_BATCHES) {
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
        let batches = length_bucketed_batches(&lengths, 10, &mut Rng::new(1));
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
            length_bucketed_batches(&lengths, 10, &mut Rng::new(2))
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
