//! Mini-batch TransE training: negative sampling, losses, sparse updates, checkpoints.
//!
//! Parallelism without races: each batch is cut into [`SHARDS`] fixed slices. Rayon computes
//! the gradient of every slice against the same parameters into a per-slice sparse buffer
//! (only the rows it touched). Then the entity table is split into disjoint row ranges and
//! each range sums its rows' gradients over the slices *in slice order* and applies the
//! optimizer step. Every floating-point operation therefore happens in an order fixed by the
//! data and the seed, so a run is bit-for-bit reproducible for a given seed, whatever the
//! number of threads. The random stream of each slice is derived from
//! `(seed, epoch, batch, slice)`, which also makes resuming from a checkpoint at an epoch
//! boundary continue exactly the run that was interrupted.
//!
//! Lock-free "Hogwild" updates are not implemented: they would make runs irreproducible. The
//! price is the merge step: in a `perf` profile of FB15k-237 training (dim 100, 64 negatives)
//! `apply_part` took about 45% of the training CPU time and `shard_gradients` the rest, so
//! Hogwild could be up to ~1.8x faster per epoch; not measured.
use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::kernels::{self, multiversion, Norm};
use super::model::{write_matrices, TensorFile, TransE};
use super::TransEError;

/// Slices per batch (the unit of parallel work; fixed so results do not depend on threads).
pub const SHARDS: usize = 8;

/// Training objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Loss {
    /// `mean(max(0, margin + d(pos) - d(neg)))` over all (positive, negative) pairs (TransE paper, PyKEEN, OpenKE).
    Margin,
    /// RotatE's `-log σ(γ - d(pos)) - Σ softmax(α (γ - d(neg))) log σ(d(neg) - γ)`, halved, mean over
    /// positives; `γ` is the margin and `α` the adversarial temperature.
    SelfAdversarial,
    /// Cross-entropy of the positive among itself and its negatives, scores `-d`:
    /// `-log softmax(-d)[pos]`, mean over positives (LibKGE's negative sampling with `kl` loss).
    Softmax,
}

/// How the corrupted side of a negative triple is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Corruption {
    /// Head or tail with probability 1/2.
    Uniform,
    /// "bern" (Wang et al. 2014): corrupt the head with probability `tph / (tph + hpt)` of the
    /// relation, which makes false negatives rarer for 1-to-N and N-to-1 relations.
    Bernoulli,
}

/// Parameter update rule (applied to touched rows only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Optimizer {
    /// `w -= lr * g`.
    Sgd,
    /// `G += g²; w -= lr * g / (sqrt(G) + 1e-10)` per element.
    Adagrad,
}

/// Constraint on entity vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntityNorm {
    /// Rescale every updated entity vector to unit L2 norm (TransE paper, OpenKE, PyKEEN).
    Unit,
    /// No constraint.
    Free,
}

/// Hyper-parameters of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Embedding dimension.
    pub dim: usize,
    /// Number of passes over the training triples.
    pub epochs: usize,
    /// Learning rate.
    pub lr: f32,
    /// Margin of the ranking loss, or `γ` of the self-adversarial loss.
    pub margin: f32,
    /// Distance.
    pub norm: Norm,
    /// Negative triples per positive (all corrupt the same side of that positive).
    pub negatives: usize,
    /// Positives per batch.
    pub batch_size: usize,
    /// Random seed (initialisation, shuffling, sampling).
    pub seed: u64,
    /// Objective.
    pub loss: Loss,
    /// Softmax temperature `α` of the self-adversarial weights.
    pub adversarial_temperature: f32,
    /// Head/tail choice for negatives.
    pub corruption: Corruption,
    /// Update rule.
    pub optimizer: Optimizer,
    /// Entity-norm constraint.
    pub entity_norm: EntityNorm,
    /// Learn a separate vector for each relation's inverse and answer head questions with it
    /// (see [`TransE::reciprocal`]).
    #[serde(default)]
    pub reciprocal: bool,
}

impl Default for TrainConfig {
    /// The setting measured on FB15k-237 (40 epochs: test MRR 0.295, Hits@10 0.475; short of
    /// the published 0.313 / 0.497, see the README for the commands).
    fn default() -> Self {
        TrainConfig {
            dim: 100,
            epochs: 100,
            lr: 0.05,
            margin: 6.0,
            norm: Norm::L1,
            negatives: 64,
            batch_size: 1024,
            seed: 42,
            loss: Loss::SelfAdversarial,
            adversarial_temperature: 1.0,
            corruption: Corruption::Bernoulli,
            optimizer: Optimizer::Adagrad,
            entity_norm: EntityNorm::Unit,
            reciprocal: false,
        }
    }
}

impl TrainConfig {
    /// Rejects settings that cannot train.
    pub fn validate(&self) -> Result<(), TransEError> {
        let bad = |what: &str| Err(TransEError::Config(what.to_string()));
        if self.dim == 0 {
            return bad("dim must be positive");
        }
        if self.negatives == 0 {
            return bad("negatives must be positive");
        }
        if self.batch_size == 0 {
            return bad("batch size must be positive");
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr must be a positive number");
        }
        if !self.margin.is_finite() || !self.adversarial_temperature.is_finite() {
            return bad("margin and adversarial temperature must be finite");
        }
        Ok(())
    }
}

/// What one epoch did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochStats {
    /// 1-based number of the epoch just finished.
    pub epoch: usize,
    /// Mean loss per batch.
    pub loss: f64,
    /// Positive triples processed.
    pub triples: usize,
}

/// SplitMix64: tiny, fast, and good enough for sampling; seeded from several integers.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(parts: &[u64]) -> Rng {
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
    fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Gradient rows touched by one slice: `slot[row]` points into `grad` or is `NONE`.
#[derive(Debug, Default)]
struct SparseGrad {
    dim: usize,
    slot: Vec<u32>,
    rows: Vec<u32>,
    grad: Vec<f32>,
}

const NONE: u32 = u32::MAX;

impl SparseGrad {
    fn new(num_rows: usize, dim: usize) -> SparseGrad {
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

    fn clear(&mut self) {
        for &r in &self.rows {
            self.slot[r as usize] = NONE;
        }
        self.rows.clear();
        self.grad.clear();
    }
}

/// Per-slice work space.
#[derive(Debug, Default)]
struct Shard {
    entity: SparseGrad,
    relation: SparseGrad,
    loss: f64,
    anchor: Vec<f32>,
    grad_anchor: Vec<f32>,
    negatives: Vec<u32>,
    neg_distance: Vec<f32>,
    neg_coef: Vec<f32>,
}

/// The read-only inputs of a slice's gradient computation.
struct ShardJob<'a> {
    config: &'a TrainConfig,
    model: &'a TransE,
    head_prob: &'a [f32],
    triples: &'a [[u32; 3]],
    seed: [u64; 4],
    /// Positives in the whole batch (losses are batch means).
    batch_len: usize,
}

/// Trains TransE vectors on a fixed set of triples; one call of [`Trainer::train_epoch`] per epoch.
#[derive(Debug)]
pub struct Trainer {
    config: TrainConfig,
    model: TransE,
    entity_state: Vec<f32>,
    relation_state: Vec<f32>,
    triples: Vec<[u32; 3]>,
    head_prob: Vec<f32>,
    epochs_done: usize,
    shards: Vec<Shard>,
    fingerprint: u64,
}

impl Trainer {
    /// Initialises vectors (uniform in ±6/√dim, then unit L2 norm) for `num_entities` entities and
    /// `num_relations` relations; `triples` are `[head, relation, tail]` ids in those ranges.
    pub fn new(
        config: TrainConfig,
        num_entities: usize,
        num_relations: usize,
        triples: Vec<[u32; 3]>,
    ) -> Result<Trainer, TransEError> {
        config.validate()?;
        if num_entities == 0 || num_relations == 0 || triples.is_empty() {
            return Err(TransEError::Config("no triples to train on".to_string()));
        }
        if num_entities >= NONE as usize || num_relations >= NONE as usize {
            return Err(TransEError::Config(format!(
                "too many ids ({num_entities} entities)"
            )));
        }
        if let Some(t) = triples.iter().find(|[h, r, t]| {
            *h as usize >= num_entities
                || *t as usize >= num_entities
                || *r as usize >= num_relations
        }) {
            return Err(TransEError::Config(format!(
                "triple {t:?} is outside {num_entities} entities / {num_relations} relations"
            )));
        }
        let dim = config.dim;
        let mut rng = Rng::new(&[config.seed, 0xE4B]);
        let bound = 6.0 / (dim as f32).sqrt();
        let mut init = |rows: usize| -> Vec<f32> {
            let mut v: Vec<f32> = (0..rows * dim)
                .map(|_| (rng.unit() * 2.0 - 1.0) * bound)
                .collect();
            v.chunks_mut(dim).for_each(kernels::normalize);
            v
        };
        let relation_rows = if config.reciprocal {
            2 * num_relations
        } else {
            num_relations
        };
        let model = TransE {
            dim,
            norm: config.norm,
            entity: init(num_entities),
            relation: init(relation_rows),
            reciprocal: config.reciprocal,
        };
        let (entity_state, relation_state) = match config.optimizer {
            Optimizer::Sgd => (Vec::new(), Vec::new()),
            Optimizer::Adagrad => (
                vec![0.0; model.entity.len()],
                vec![0.0; model.relation.len()],
            ),
        };
        Ok(Trainer {
            head_prob: head_probabilities(config.corruption, num_relations, &triples),
            fingerprint: fingerprint(num_entities, num_relations, &triples),
            shards: Vec::new(),
            epochs_done: 0,
            config,
            model,
            entity_state,
            relation_state,
            triples,
        })
    }

    /// The hyper-parameters.
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// Sets the total number of epochs (e.g. to extend a resumed run).
    pub fn set_epochs(&mut self, epochs: usize) {
        self.config.epochs = epochs;
    }

    /// Epochs completed so far.
    pub fn epochs_done(&self) -> usize {
        self.epochs_done
    }

    /// Whether all configured epochs are done.
    pub fn finished(&self) -> bool {
        self.epochs_done >= self.config.epochs
    }

    /// The current vectors.
    pub fn model(&self) -> &TransE {
        &self.model
    }

    /// Gives up the trainer for its vectors.
    pub fn into_model(self) -> TransE {
        self.model
    }

    /// Number of training triples.
    pub fn num_triples(&self) -> usize {
        self.triples.len()
    }

    /// Runs one epoch (inside the current rayon pool). `on_batch(done, loss)` is called after
    /// every batch with the positives done so far in this epoch and that batch's loss.
    pub fn train_epoch(&mut self, on_batch: &mut dyn FnMut(usize, f64)) -> EpochStats {
        let epoch = self.epochs_done as u64;
        let (num_entities, relation_rows, dim) = (
            self.model.num_entities(),
            self.model.relation.len() / self.config.dim,
            self.config.dim,
        );
        if self.shards.len() != SHARDS {
            self.shards = (0..SHARDS)
                .map(|_| Shard {
                    entity: SparseGrad::new(num_entities, dim),
                    relation: SparseGrad::new(relation_rows, dim),
                    anchor: vec![0.0; dim],
                    grad_anchor: vec![0.0; dim],
                    ..Shard::default()
                })
                .collect();
        }
        let mut order: Vec<u32> = (0..self.triples.len() as u32).collect();
        let mut rng = Rng::new(&[self.config.seed, 0x5ABF, epoch]);
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let mut batch_triples = Vec::with_capacity(self.config.batch_size);
        let (mut loss_sum, mut done) = (0.0, 0);
        for (batch_index, batch) in order.chunks(self.config.batch_size).enumerate() {
            batch_triples.clear();
            batch_triples.extend(batch.iter().map(|&i| self.triples[i as usize]));
            let slice_len = batch_triples.len().div_ceil(SHARDS);
            let (model, config, head_prob) = (&self.model, &self.config, &self.head_prob);
            self.shards
                .par_iter_mut()
                .enumerate()
                .for_each(|(s, shard)| {
                    let start = (s * slice_len).min(batch_triples.len());
                    let end = ((s + 1) * slice_len).min(batch_triples.len());
                    shard_gradients(
                        &ShardJob {
                            config,
                            model,
                            head_prob,
                            triples: &batch_triples[start..end],
                            seed: [config.seed, epoch, batch_index as u64, s as u64],
                            batch_len: batch_triples.len(),
                        },
                        shard,
                    );
                });
            let normalize = self.config.entity_norm == EntityNorm::Unit;
            apply(
                &mut self.model.entity,
                &mut self.entity_state,
                &self.shards,
                true,
                &self.config,
                normalize,
            );
            apply(
                &mut self.model.relation,
                &mut self.relation_state,
                &self.shards,
                false,
                &self.config,
                false,
            );
            let batch_loss: f64 = self.shards.iter().map(|s| s.loss).sum();
            self.shards.iter_mut().for_each(|s| {
                s.entity.clear();
                s.relation.clear();
            });
            loss_sum += batch_loss;
            done += batch.len();
            on_batch(done, batch_loss);
        }
        self.epochs_done += 1;
        let batches = self.triples.len().div_ceil(self.config.batch_size);
        EpochStats {
            epoch: self.epochs_done,
            loss: loss_sum / batches as f64,
            triples: self.triples.len(),
        }
    }

    /// Saves everything needed to continue this run (vectors, optimizer state, epoch, settings).
    pub fn save_checkpoint(&self, path: &Path) -> Result<(), TransEError> {
        let config =
            serde_json::to_string(&self.config).map_err(|e| TransEError::Config(e.to_string()))?;
        let metadata = HashMap::from([
            ("kind".to_string(), CHECKPOINT_KIND.to_string()),
            ("config".to_string(), config),
            ("epochs_done".to_string(), self.epochs_done.to_string()),
            (
                "fingerprint".to_string(),
                format!("{:016x}", self.fingerprint),
            ),
        ]);
        let relation_rows = self.model.relation.len() / self.config.dim;
        let mut matrices = vec![
            ("entity", &self.model.entity[..], self.model.num_entities()),
            ("relation", &self.model.relation[..], relation_rows),
        ];
        if self.config.optimizer == Optimizer::Adagrad {
            matrices.push((
                "entity_state",
                &self.entity_state[..],
                self.model.num_entities(),
            ));
            matrices.push(("relation_state", &self.relation_state[..], relation_rows));
        }
        write_matrices(path, &matrices, self.config.dim, metadata)
    }

    /// Continues a run from [`Trainer::save_checkpoint`]; the triples must be the ones it was
    /// trained on (checked by a fingerprint).
    pub fn resume(
        path: &Path,
        num_entities: usize,
        num_relations: usize,
        triples: Vec<[u32; 3]>,
    ) -> Result<Trainer, TransEError> {
        let bytes = std::fs::read(path).map_err(|source| TransEError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file = TensorFile::parse(path, &bytes)?;
        let meta = |key: &str| {
            file.metadata
                .get(key)
                .cloned()
                .ok_or_else(|| file.invalid(format!("not a TransE checkpoint (no {key:?})")))
        };
        if meta("kind")? != CHECKPOINT_KIND {
            return Err(file.invalid("not a TransE checkpoint".to_string()));
        }
        let config: TrainConfig = serde_json::from_str(&meta("config")?)
            .map_err(|e| file.invalid(format!("bad config: {e}")))?;
        let epochs_done: usize = meta("epochs_done")?
            .parse()
            .map_err(|_| file.invalid("bad epochs_done".to_string()))?;
        let mut trainer = Trainer::new(config, num_entities, num_relations, triples)?;
        if meta("fingerprint")? != format!("{:016x}", trainer.fingerprint) {
            return Err(file.invalid("checkpoint was trained on different triples".to_string()));
        }
        let load = |name: &str, expected: usize| -> Result<Vec<f32>, TransEError> {
            let (values, cols) = file.matrix(name)?;
            if cols != trainer.config.dim || values.len() != expected {
                return Err(file.invalid(format!("tensor {name:?} has the wrong shape")));
            }
            Ok(values)
        };
        trainer.model.entity = load("entity", trainer.model.entity.len())?;
        trainer.model.relation = load("relation", trainer.model.relation.len())?;
        if trainer.config.optimizer == Optimizer::Adagrad {
            trainer.entity_state = load("entity_state", trainer.entity_state.len())?;
            trainer.relation_state = load("relation_state", trainer.relation_state.len())?;
        }
        trainer.epochs_done = epochs_done;
        Ok(trainer)
    }
}

const CHECKPOINT_KIND: &str = "zhishi-transe-checkpoint";

/// FNV-1a over the sizes and triples: guards against resuming on other data.
fn fingerprint(num_entities: usize, num_relations: usize, triples: &[[u32; 3]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |x: u64| {
        for b in x.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(num_entities as u64);
    eat(num_relations as u64);
    for t in triples {
        eat((u64::from(t[0]) << 32) | u64::from(t[1]));
        eat(u64::from(t[2]));
    }
    h
}

/// Probability of corrupting the head, per relation.
fn head_probabilities(
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
    fn shard_gradients(job: &ShardJob, shard: &mut Shard) {
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
fn apply(
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

    fn chain(n: u32) -> Vec<[u32; 3]> {
        (0..n - 1).map(|i| [i, 0, i + 1]).collect()
    }

    #[test]
    fn bernoulli_prefers_the_many_side() {
        // Relation 0: one head with four tails (1-to-N) -> corrupt the head more often.
        let triples = vec![[0, 0, 1], [0, 0, 2], [0, 0, 3], [0, 0, 4]];
        let p = head_probabilities(Corruption::Bernoulli, 1, &triples);
        assert_eq!(p, [0.8]);
        assert_eq!(head_probabilities(Corruption::Uniform, 1, &triples), [0.5]);
    }

    #[test]
    fn same_seed_same_vectors_whatever_the_thread_count() {
        let config = TrainConfig {
            dim: 8,
            negatives: 4,
            batch_size: 3,
            epochs: 2,
            ..TrainConfig::default()
        };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut trainer = Trainer::new(config.clone(), 10, 1, chain(10)).unwrap();
                while !trainer.finished() {
                    trainer.train_epoch(&mut |_, _| {});
                }
                trainer.into_model()
            })
        };
        let one = run(1);
        assert_eq!(one, run(3));
        let other_seed = {
            let mut trainer = Trainer::new(
                TrainConfig {
                    seed: 7,
                    ..config.clone()
                },
                10,
                1,
                chain(10),
            )
            .unwrap();
            trainer.train_epoch(&mut |_, _| {});
            trainer.into_model()
        };
        assert_ne!(one, other_seed);
    }

    #[test]
    fn rejects_ids_outside_the_declared_ranges() {
        let err = Trainer::new(TrainConfig::default(), 3, 1, vec![[0, 1, 2]]).unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        let err = Trainer::new(
            TrainConfig {
                dim: 0,
                ..TrainConfig::default()
            },
            3,
            1,
            vec![[0, 0, 2]],
        )
        .unwrap_err();
        assert!(err.to_string().contains("dim"), "{err}");
    }

    #[test]
    fn log_sigmoid_is_stable() {
        assert!((log_sigmoid(0.0) - 0.5f32.ln()).abs() < 1e-6);
        assert!(log_sigmoid(-100.0) == -100.0 && log_sigmoid(100.0).abs() < 1e-30);
    }
}
