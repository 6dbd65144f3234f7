//! Negative sampling: the seeded random stream every slice draws from, and the per-relation
//! probability of corrupting the head rather than the tail (uniform or Bernoulli).
use super::Corruption;

/// SplitMix64: tiny, fast, and good enough for sampling; seeded from several integers.
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(parts: &[u64]) -> Rng {
        let mut rng = Rng(0x005E_ED0F_7A4E);
        for &p in parts {
            rng.0 ^= p;
            rng.0 = rng.next_u64();
        }
        rng
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (multiply-shift; the bias is below 2^-32 for our sizes).
    pub(super) fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Uniform in `[0, 1)`.
    pub(super) fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Probability of corrupting the head, per relation.
pub(super) fn head_probabilities(
    corruption: Corruption,
    num_relations: usize,
    triples: &[[u32; 3]],
) -> Vec<f32> {
    match corruption {
        Corruption::Uniform => vec![0.5; num_relations],
        Corruption::Bernoulli => {
            // tph = triples / distinct heads, hpt = triples / distinct tails, per relation.
            let mut count = vec![0usize; num_relations];
            let mut heads = std::collections::HashSet::new();
            let mut tails = std::collections::HashSet::new();
            for &[h, r, t] in triples {
                count[r as usize] += 1;
                heads.insert((r, h));
                tails.insert((r, t));
            }
            let mut distinct_heads = vec![0usize; num_relations];
            let mut distinct_tails = vec![0usize; num_relations];
            heads
                .iter()
                .for_each(|&(r, _)| distinct_heads[r as usize] += 1);
            tails
                .iter()
                .for_each(|&(r, _)| distinct_tails[r as usize] += 1);
            (0..num_relations)
                .map(|r| {
                    if count[r] == 0 {
                        return 0.5;
                    }
                    let tph = count[r] as f32 / distinct_heads[r] as f32;
                    let hpt = count[r] as f32 / distinct_tails[r] as f32;
                    tph / (tph + hpt)
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bernoulli_prefers_the_many_side() {
        // Relation 0: one head with four tails (1-to-N) -> corrupt the head more often.
        let triples = vec![[0, 0, 1], [0, 0, 2], [0, 0, 3], [0, 0, 4]];
        let p = head_probabilities(Corruption::Bernoulli, 1, &triples);
        assert_eq!(p, [0.8]);
        assert_eq!(head_probabilities(Corruption::Uniform, 1, &triples), [0.5]);
    }
}
