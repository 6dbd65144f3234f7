//! Length-bucketed batching: examples of similar length share a batch, so each batch pads to
//! its own longest example and little compute goes to padding. The order is seeded: examples
//! are shuffled, cut into pools of `POOL_BATCHES` batches, each pool sorted by length and cut
//! into batches, and the batches shuffled again.
use super::rng::Rng;

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
}
