//! The parallel, deterministic gradient step: per-slice sparse gradient buffers, each slice's
//! loss and gradient ([`shard_gradients`]), and the merge that sums the slices' gradients in
//! slice order and applies the optimizer over disjoint row ranges ([`apply`]).
use rayon::prelude::*;

use super::sampling::Rng;
use super::{Loss, Optimizer, TrainConfig};
use crate::kg::transe::kernels::{self, multiversion};
use crate::kg::transe::model::TransE;

/// Gradient rows touched by one slice: `slot[row]` points into `grad` or is `NONE`.
#[derive(Debug, Default)]
pub(super) struct SparseGrad {
    dim: usize,
    slot: Vec<u32>,
    rows: Vec<u32>,
    grad: Vec<f32>,
}

pub(super) const NONE: u32 = u32::MAX;

impl SparseGrad {
    pub(super) fn new(num_rows: usize, dim: usize) -> SparseGrad {
        SparseGrad {
            dim,
            slot: vec![NONE; num_rows],
            rows: Vec::new(),
            grad: Vec::new(),
        }
    }

    #[inline(always)]
    fn row(&mut self, row: u32) -> &mut [f32] {
        let mut slot = self.slot[row as usize];
        if slot == NONE {
            slot = self.rows.len() as u32;
            self.slot[row as usize] = slot;
            self.rows.push(row);
            self.grad.resize(self.grad.len() + self.dim, 0.0);
        }
        let start = slot as usize * self.dim;
        &mut self.grad[start..start + self.dim]
    }

    #[inline(always)]
    fn get(&self, row: u32) -> Option<&[f32]> {
        let slot = self.slot[row as usize];
        (slot != NONE).then(|| &self.grad[slot as usize * self.dim..(slot as usize + 1) * self.dim])
    }

    pub(super) fn clear(&mut self) {
        for &r in &self.rows {
            self.slot[r as usize] = NONE;
        }
        self.rows.clear();
        self.grad.clear();
    }
}

/// Per-slice work space.
#[derive(Debug, Default)]
pub(super) struct Shard {
    pub(super) entity: SparseGrad,
    pub(super) relation: SparseGrad,
    pub(super) loss: f64,
    pub(super) anchor: Vec<f32>,
    pub(super) grad_anchor: Vec<f32>,
    pub(super) negatives: Vec<u32>,
    pub(super) neg_distance: Vec<f32>,
    pub(super) neg_coef: Vec<f32>,
}

/// The read-only inputs of a slice's gradient computation.
pub(super) struct ShardJob<'a> {
    pub(super) config: &'a TrainConfig,
    pub(super) model: &'a TransE,
    pub(super) head_prob: &'a [f32],
    pub(super) triples: &'a [[u32; 3]],
    pub(super) seed: [u64; 4],
    /// Positives in the whole batch (losses are batch means).
    pub(super) batch_len: usize,
}

fn log_sigmoid(x: f32) -> f32 {
    // log σ(x) = -log(1 + e^-x), computed without overflow.
    if x >= 0.0 {
        -(-x).exp().ln_1p()
    } else {
        x - x.exp().ln_1p()
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

multiversion! {
    /// Computes one slice's loss and accumulates its gradient into the slice's sparse buffers.
    pub(super) fn shard_gradients(job: &ShardJob, shard: &mut Shard) {
        let ShardJob { config, model, head_prob, triples, seed, batch_len } = *job;
        let dim = config.dim;
        let num_entities = model.num_entities();
        let negatives = config.negatives;
        let mut rng = Rng::new(&seed);
        let Shard { entity, relation, loss, anchor, grad_anchor, negatives: negs, neg_distance, neg_coef } = shard;
        *loss = 0.0;
        negs.resize(negatives, 0);
        neg_distance.resize(negatives, 0.0);
        neg_coef.resize(negatives, 0.0);
        for &[h, r, t] in triples {
            // The anchor is the point the answer entity should sit at: h + r for a tail
            // question, t - r for a head question. Either way d = ||anchor - e||.
            let corrupt_head = rng.unit() < head_prob[r as usize];
            model.anchor(corrupt_head, [h, r, t], anchor);
            let positive = if corrupt_head { h } else { t };
            let pos_distance = kernels::distance(config.norm, anchor, model.entity(positive));
            for n in negs.iter_mut() {
                let mut e = rng.below(num_entities) as u32;
                while e == positive && num_entities > 1 {
                    e = rng.below(num_entities) as u32;
                }
                *n = e;
                kernels::prefetch(model.entity(e));
            }
            for (&n, d) in negs.iter().zip(neg_distance.iter_mut()) {
                *d = kernels::distance(config.norm, anchor, model.entity(n));
            }
            let pos_coef = match config.loss {
                Loss::Margin => {
                    let scale = 1.0 / (batch_len * negatives) as f32;
                    let mut pos_coef = 0.0;
                    for (c, &d) in neg_coef.iter_mut().zip(neg_distance.iter()) {
                        let violation = config.margin + pos_distance - d;
                        if violation > 0.0 {
                            *loss += f64::from(violation * scale);
                            pos_coef += scale;
                            *c = -scale;
                        } else {
                            *c = 0.0;
                        }
                    }
                    pos_coef
                }
                Loss::SelfAdversarial => {
                    let scale = 0.5 / batch_len as f32;
                    let gamma = config.margin;
                    let alpha = config.adversarial_temperature;
                    // Softmax weights over the negatives' scores (treated as constants).
                    let max = neg_distance.iter().fold(f32::INFINITY, |m, &d| m.min(d));
                    let mut total = 0.0;
                    for (c, &d) in neg_coef.iter_mut().zip(neg_distance.iter()) {
                        *c = (alpha * (max - d)).exp();
                        total += *c;
                    }
                    let mut neg_loss = 0.0;
                    for (c, &d) in neg_coef.iter_mut().zip(neg_distance.iter()) {
                        let w = *c / total;
                        neg_loss -= w * log_sigmoid(d - gamma);
                        *c = -w * sigmoid(gamma - d) * scale;
                    }
                    *loss += f64::from((neg_loss - log_sigmoid(gamma - pos_distance)) * scale);
                    sigmoid(pos_distance - gamma) * scale
                }
                Loss::Softmax => {
                    let scale = 1.0 / batch_len as f32;
                    // p_i = softmax(-d)_i over the positive and the negatives; the loss
                    // -log p_pos has d/dd_pos = 1 - p_pos and d/dd_neg = -p_neg.
                    let min = neg_distance.iter().fold(pos_distance, |m, &d| m.min(d));
                    let pos_weight = (min - pos_distance).exp();
                    let mut total = pos_weight;
                    for (c, &d) in neg_coef.iter_mut().zip(neg_distance.iter()) {
                        *c = (min - d).exp();
                        total += *c;
                    }
                    for c in neg_coef.iter_mut() {
                        *c = -*c / total * scale;
                    }
                    let p_pos = pos_weight / total;
                    *loss += f64::from(-(p_pos.max(f32::MIN_POSITIVE)).ln() * scale);
                    (1.0 - p_pos) * scale
                }
            };
            grad_anchor.fill(0.0);
            if pos_coef != 0.0 {
                kernels::distance_grad(config.norm, pos_coef, pos_distance, anchor, model.entity(positive), grad_anchor, entity.row(positive));
            }
            for ((&n, &d), &c) in negs.iter().zip(neg_distance.iter()).zip(neg_coef.iter()) {
                if c != 0.0 {
                    kernels::distance_grad(config.norm, c, d, anchor, model.entity(n), grad_anchor, entity.row(n));
                }
            }
            if corrupt_head && model.reciprocal {
                // anchor = t + r⁻¹
                kernels::add_assign(entity.row(t), grad_anchor);
                let inverse = r + model.num_relations() as u32;
                kernels::add_assign(relation.row(inverse), grad_anchor);
            } else if corrupt_head {
                // anchor = t - r
                kernels::add_assign(entity.row(t), grad_anchor);
                relation.row(r).iter_mut().zip(grad_anchor.iter()).for_each(|(g, a)| *g -= a);
            } else {
                // anchor = h + r
                kernels::add_assign(entity.row(h), grad_anchor);
                kernels::add_assign(relation.row(r), grad_anchor);
            }
            debug_assert_eq!(anchor.len(), dim);
        }
    }
}

/// What [`apply_part`] applies: the slices' gradients of one table.
struct ApplyJob<'a> {
    shards: &'a [Shard],
    entities: bool,
    config: &'a TrainConfig,
    normalize: bool,
}

/// Sums the slices' gradients per row (in slice order) and applies the optimizer, in parallel
/// over disjoint row ranges of `table`.
pub(super) fn apply(
    table: &mut [f32],
    state: &mut [f32],
    shards: &[Shard],
    entities: bool,
    config: &TrainConfig,
    normalize: bool,
) {
    let dim = config.dim;
    let rows = table.len() / dim;
    let parts = rayon::current_num_threads().clamp(1, rows.max(1));
    let part_rows = rows.div_ceil(parts).max(1);
    // Bucket the touched rows by range once (duplicates across slices are removed per part).
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); parts];
    for shard in shards {
        let grads = if entities {
            &shard.entity
        } else {
            &shard.relation
        };
        for &r in &grads.rows {
            buckets[r as usize / part_rows].push(r);
        }
    }
    let chunk = part_rows * dim;
    let pieces: Vec<(&mut [f32], &mut [f32])> = if state.is_empty() {
        table
            .chunks_mut(chunk)
            .map(|t| (t, Default::default()))
            .collect()
    } else {
        table
            .chunks_mut(chunk)
            .zip(state.chunks_mut(chunk))
            .collect()
    };
    pieces
        .into_par_iter()
        .zip(buckets)
        .enumerate()
        .for_each(|(p, ((table, state), mut rows))| {
            rows.sort_unstable();
            rows.dedup();
            apply_part(
                p * part_rows,
                table,
                state,
                &rows,
                &ApplyJob {
                    shards,
                    entities,
                    config,
                    normalize,
                },
            );
        });
}

multiversion! {
    /// Applies the summed gradient to the rows `first..` held in `table` (and `state`).
    fn apply_part(first: usize, table: &mut [f32], state: &mut [f32], rows: &[u32], job: &ApplyJob) {
        let ApplyJob { shards, entities, config, normalize } = *job;
        let dim = config.dim;
        fn pick(s: &Shard, entities: bool) -> &SparseGrad {
            if entities { &s.entity } else { &s.relation }
        }
        let grads = |s| pick(s, entities);
        let mut g = vec![0f32; dim];
        let lr = config.lr;
        for &r in rows {
            g.fill(0.0);
            for s in shards {
                if let Some(row) = grads(s).get(r) {
                    kernels::add_assign(&mut g, row);
                }
            }
            let at = (r as usize - first) * dim;
            let w = &mut table[at..at + dim];
            match config.optimizer {
                Optimizer::Sgd => w.iter_mut().zip(&g).for_each(|(w, g)| *w -= lr * g),
                Optimizer::Adagrad => {
                    let acc = &mut state[at..at + dim];
                    for ((w, a), g) in w.iter_mut().zip(acc.iter_mut()).zip(&g) {
                        *a += g * g;
                        *w -= lr * g / (a.sqrt() + 1e-10);
                    }
                }
            }
            if normalize {
                kernels::normalize(w);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_sigmoid_is_stable() {
        assert!((log_sigmoid(0.0) - 0.5f32.ln()).abs() < 1e-6);
        assert!(log_sigmoid(-100.0) == -100.0 && log_sigmoid(100.0).abs() < 1e-30);
    }
}
