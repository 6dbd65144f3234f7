//! The trained triple scorer: a linear model over the hand features plus a learned
//! question-predicate interaction of the encoder embeddings (a diagonal term and a low-rank
//! bilinear term), trained listwise — a softmax over each question's candidates, maximising the
//! probability of the gold triple — with Adam.
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::candidates::{Gathered, N_FEATURES};
use super::KbqaError;

/// What the scorer sees of one question: its candidates, the pooled question embedding for
/// each mention (the mention left out) and each candidate's predicate embedding.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// Mentions and candidate triples with their hand features.
    pub gathered: Gathered,
    /// One unit-length question embedding per mention of `gathered`.
    pub questions: Vec<Vec<f32>>,
    /// One unit-length predicate embedding per candidate.
    pub predicates: Vec<Arc<[f32]>>,
}

/// Scorer weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Scorer {
    dim: usize,
    rank: usize,
    /// Feature weights.
    linear: Vec<f32>,
    /// Weights of `q ⊙ p`.
    diagonal: Vec<f32>,
    /// `rank × dim` question projection.
    u: Vec<f32>,
    /// `rank × dim` predicate projection.
    v: Vec<f32>,
}

/// Training settings of [`Scorer::fit`].
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    /// Passes over the examples.
    pub epochs: usize,
    /// Adam learning rate.
    pub lr: f32,
    /// L2 penalty.
    pub l2: f32,
    /// Questions per step.
    pub batch_size: usize,
    /// Seed for the shuffling.
    pub seed: u64,
}

/// One training question: what the scorer sees and which candidates are the gold triple.
#[derive(Debug, Clone)]
pub struct Example {
    /// Scorer input.
    pub input: Prepared,
    /// `true` for candidates equal to the gold triple.
    pub positive: Vec<bool>,
}

impl Example {
    /// Whether some candidate is the gold triple (otherwise the example cannot teach).
    pub fn teaches(&self) -> bool {
        self.positive.iter().any(|&y| y)
    }
}

/// A small deterministic generator (SplitMix64) for initialisation and shuffling.
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[-1, 1)`.
    pub fn symmetric(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Scorer {
    /// A fresh scorer for `dim`-wide embeddings: zero weights except a small random question
    /// projection (so the bilinear term can start learning).
    pub fn new(dim: usize, rank: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let scale = 1.0 / (dim as f32).sqrt();
        Self {
            dim,
            rank,
            linear: vec![0.0; N_FEATURES],
            diagonal: vec![0.0; dim],
            u: (0..rank * dim).map(|_| rng.symmetric() * scale).collect(),
            v: vec![0.0; rank * dim],
        }
    }

    /// Width of the embeddings the scorer expects.
    pub fn dim(&self) -> usize {
        self.dim
    }

    fn project(&self, m: &[f32], x: &[f32]) -> Vec<f32> {
        (0..self.rank)
            .map(|r| dot(&m[r * self.dim..(r + 1) * self.dim], x))
            .collect()
    }

    /// Scores of every candidate of `input` (higher is better).
    pub fn scores(&self, input: &Prepared) -> Vec<f32> {
        let uq: Vec<Vec<f32>> = input
            .questions
            .iter()
            .map(|q| self.project(&self.u, q))
            .collect();
        input
            .gathered
            .candidates
            .iter()
            .zip(&input.predicates)
            .map(|(c, p)| {
                let q = &input.questions[c.mention];
                let interaction: f32 = self
                    .diagonal
                    .iter()
                    .zip(q.iter().zip(p.iter()))
                    .map(|(d, (a, b))| d * a * b)
                    .sum();
                dot(&self.linear, &c.features)
                    + interaction
                    + dot(&uq[c.mention], &self.project(&self.v, p))
            })
            .collect()
    }

    /// Listwise loss of one example (`-ln` of the probability mass on the gold candidates)
    /// and, when `grad` is given, adds its gradient there (flat, in parameter order).
    fn loss(&self, ex: &Example, grad: Option<&mut [f32]>) -> f32 {
        let scores = self.scores(&ex.input);
        let probs = softmax(&scores);
        let pos: f32 = probs
            .iter()
            .zip(&ex.positive)
            .filter(|(_, &y)| y)
            .map(|(p, _)| p)
            .sum();
        let loss = -pos.max(1e-12).ln();
        let Some(grad) = grad else {
            return loss;
        };
        let (n, d, r) = (N_FEATURES, self.dim, self.rank);
        let (g_lin, rest) = grad.split_at_mut(n);
        let (g_diag, rest) = rest.split_at_mut(d);
        let (g_u, g_v) = rest.split_at_mut(r * d);
        let mut g_uq = vec![vec![0f32; r]; ex.input.questions.len()];
        for (i, c) in ex.input.gathered.candidates.iter().enumerate() {
            let g = probs[i]
                - if ex.positive[i] {
                    probs[i] / pos.max(1e-12)
                } else {
                    0.0
                };
            if g == 0.0 {
                continue;
            }
            let q = &ex.input.questions[c.mention];
            let p = &ex.input.predicates[i];
            g_lin
                .iter_mut()
                .zip(&c.features)
                .for_each(|(a, f)| *a += g * f);
            for ((a, x), y) in g_diag.iter_mut().zip(q.iter()).zip(p.iter()) {
                *a += g * x * y;
            }
            if r > 0 {
                let vp = self.project(&self.v, p);
                let uq = self.project(&self.u, q);
                for k in 0..r {
                    g_uq[c.mention][k] += g * vp[k];
                    let row = &mut g_v[k * d..(k + 1) * d];
                    row.iter_mut()
                        .zip(p.iter())
                        .for_each(|(a, y)| *a += g * uq[k] * y);
                }
            }
        }
        for (q, guq) in ex.input.questions.iter().zip(&g_uq) {
            for k in 0..r {
                if guq[k] != 0.0 {
                    let row = &mut g_u[k * d..(k + 1) * d];
                    row.iter_mut().zip(q).for_each(|(a, x)| *a += guq[k] * x);
                }
            }
        }
        loss
    }

    /// Mean listwise loss over the `examples` that have a gold candidate (the training
    /// objective without the L2 term).
    pub fn mean_loss(&self, examples: &[Example]) -> f32 {
        let usable: Vec<&Example> = examples.iter().filter(|e| e.teaches()).collect();
        let total: f32 = usable.par_iter().map(|e| self.loss(e, None)).sum();
        total / usable.len().max(1) as f32
    }

    fn params_mut(&mut self) -> [&mut Vec<f32>; 4] {
        [
            &mut self.linear,
            &mut self.diagonal,
            &mut self.u,
            &mut self.v,
        ]
    }

    fn n_params(&self) -> usize {
        N_FEATURES + self.dim + 2 * self.rank * self.dim
    }

    /// Trains on `examples` (those without a gold candidate are skipped) with Adam. After every
    /// epoch `on_epoch(epoch, scorer, mean training loss)` runs; it returns a dev score, and the
    /// weights of the epoch with the best dev score are kept (ties keep the later epoch).
    pub fn fit(
        &mut self,
        examples: &[Example],
        opts: &FitOptions,
        on_epoch: &mut dyn FnMut(usize, &Scorer, f32) -> f32,
    ) {
        let usable: Vec<&Example> = examples.iter().filter(|e| e.teaches()).collect();
        let n = self.n_params();
        let (mut m, mut v) = (vec![0f32; n], vec![0f32; n]);
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let mut rng = Rng::new(opts.seed ^ 0x5EED);
        let mut order: Vec<usize> = (0..usable.len()).collect();
        let mut step = 0i32;
        let mut best: Option<(f32, Scorer)> = None;
        for epoch in 1..=opts.epochs {
            rng.shuffle(&mut order);
            let mut total = 0f32;
            for batch in order.chunks(opts.batch_size.max(1)) {
                let grads: Vec<(f32, Vec<f32>)> = batch
                    .par_iter()
                    .map(|&i| {
                        let mut g = vec![0f32; n];
                        let l = self.loss(usable[i], Some(&mut g));
                        (l, g)
                    })
                    .collect();
                let mut grad = vec![0f32; n];
                for (l, g) in &grads {
                    total += l;
                    grad.iter_mut().zip(g).for_each(|(a, b)| *a += b);
                }
                let scale = 1.0 / batch.len() as f32;
                step += 1;
                let (c1, c2) = (1.0 - b1.powi(step), 1.0 - b2.powi(step));
                let (lr, l2) = (opts.lr, opts.l2);
                let mut k = 0;
                for param in self.params_mut() {
                    for w in param.iter_mut() {
                        let g = grad[k] * scale + l2 * *w;
                        m[k] = b1 * m[k] + (1.0 - b1) * g;
                        v[k] = b2 * v[k] + (1.0 - b2) * g * g;
                        *w -= lr * (m[k] / c1) / ((v[k] / c2).sqrt() + eps);
                        k += 1;
                    }
                }
            }
            let dev = on_epoch(epoch, self, total / usable.len().max(1) as f32);
            if best.as_ref().is_none_or(|(b, _)| dev >= *b) {
                best = Some((dev, self.clone()));
            }
        }
        if let Some((_, s)) = best {
            *self = s;
        }
    }

    /// Writes the weights as safetensors.
    pub fn save(&self, path: &Path) -> Result<(), KbqaError> {
        let dev = Device::Cpu;
        let mut t = HashMap::new();
        t.insert(
            "linear".to_string(),
            Tensor::new(self.linear.as_slice(), &dev)?,
        );
        t.insert(
            "diagonal".to_string(),
            Tensor::new(self.diagonal.as_slice(), &dev)?,
        );
        if self.rank > 0 {
            let shape = (self.rank, self.dim);
            t.insert("u".to_string(), Tensor::from_slice(&self.u, shape, &dev)?);
            t.insert("v".to_string(), Tensor::from_slice(&self.v, shape, &dev)?);
        }
        candle_core::safetensors::save(&t, path)?;
        Ok(())
    }

    /// Reads weights written by [`Scorer::save`] for `dim`-wide embeddings and `rank`.
    pub fn load(path: &Path, dim: usize, rank: usize) -> Result<Self, KbqaError> {
        let bad = |message: String| KbqaError::ModelDir {
            path: path.to_path_buf(),
            message,
        };
        let tensors = candle_core::safetensors::load(path, &Device::Cpu)?;
        let get = |name: &str, len: usize| -> Result<Vec<f32>, KbqaError> {
            let t = tensors
                .get(name)
                .ok_or_else(|| bad(format!("missing tensor `{name}`")))?;
            let v: Vec<f32> = t.flatten_all()?.to_vec1()?;
            if v.len() != len {
                return Err(bad(format!(
                    "tensor `{name}` has {} values, expected {len}",
                    v.len()
                )));
            }
            Ok(v)
        };
        let linear = get("linear", N_FEATURES)?;
        let diagonal = get("diagonal", dim)?;
        let (u, v) = if rank > 0 {
            (get("u", rank * dim)?, get("v", rank * dim)?)
        } else {
            (Vec::new(), Vec::new())
        };
        Ok(Self {
            dim,
            rank,
            linear,
            diagonal,
            u,
            v,
        })
    }
}

/// Softmax of `scores` (empty in, empty out).
pub fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::Triple;
    use crate::stages::kbqa::candidates::{CandidateTriple, Gathered};

    fn example(rng: &mut Rng, dim: usize) -> Example {
        let candidate = |mention: usize, rng: &mut Rng| CandidateTriple {
            mention,
            entity: 0,
            triple: Triple {
                subject: "姚明".into(),
                predicate: "身高".into(),
                object: "226厘米".into(),
            },
            features: std::array::from_fn(|_| rng.symmetric()),
        };
        let candidates: Vec<CandidateTriple> =
            [0, 0, 1, 1].iter().map(|&m| candidate(m, rng)).collect();
        let vec = |rng: &mut Rng| (0..dim).map(|_| rng.symmetric()).collect::<Vec<f32>>();
        Example {
            input: Prepared {
                questions: vec![vec(rng), vec(rng)],
                predicates: (0..4).map(|_| vec(rng).into()).collect(),
                gathered: Gathered {
                    mentions: vec![(0, 2), (3, 5)],
                    candidates,
                },
            },
            positive: vec![false, true, false, true],
        }
    }

    fn randomized(dim: usize, rank: usize, rng: &mut Rng) -> Scorer {
        let mut s = Scorer::new(dim, rank, 7);
        for p in s.params_mut() {
            p.iter_mut().for_each(|w| *w = rng.symmetric());
        }
        s
    }

    #[test]
    fn analytic_gradient_matches_finite_differences() {
        let mut rng = Rng::new(3);
        let (dim, rank) = (5, 2);
        let ex = example(&mut rng, dim);
        let scorer = randomized(dim, rank, &mut rng);
        let mut grad = vec![0f32; scorer.n_params()];
        scorer.loss(&ex, Some(&mut grad));
        let h = 1e-2f32;
        for (k, &analytic) in grad.iter().enumerate() {
            let mut plus = scorer.clone();
            let mut minus = scorer.clone();
            let bump = |s: &mut Scorer, d: f32| {
                let mut i = k;
                for p in s.params_mut() {
                    if i < p.len() {
                        p[i] += d;
                        return;
                    }
                    i -= p.len();
                }
            };
            bump(&mut plus, h);
            bump(&mut minus, -h);
            let numeric = (plus.loss(&ex, None) - minus.loss(&ex, None)) / (2.0 * h);
            assert!(
                (numeric - analytic).abs() < 2e-3,
                "parameter {k}: numeric {numeric}, analytic {analytic}"
            );
        }
    }

    #[test]
    fn fitting_lowers_the_loss_and_weights_round_trip_through_safetensors() {
        let mut rng = Rng::new(5);
        let examples: Vec<Example> = (0..8).map(|_| example(&mut rng, 6)).collect();
        let mut scorer = Scorer::new(6, 3, 1);
        let before = scorer.mean_loss(&examples);
        let opts = FitOptions {
            epochs: 30,
            lr: 0.05,
            l2: 0.0,
            batch_size: 4,
            seed: 0,
        };
        scorer.fit(&examples, &opts, &mut |_, s, _| -s.mean_loss(&examples));
        let after = scorer.mean_loss(&examples);
        assert!(after < before * 0.5, "{before} -> {after}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scorer.safetensors");
        scorer.save(&path).unwrap();
        assert_eq!(Scorer::load(&path, 6, 3).unwrap(), scorer);
        let err = Scorer::load(&path, 7, 3).unwrap_err().to_string();
        assert!(
            err.contains("tensor `diagonal` has 6 values, expected 7"),
            "{err}"
        );
    }
}
