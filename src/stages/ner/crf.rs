//! A linear-chain CRF (Lafferty et al., 2001) over per-character emission scores: trained by
//! the negative log-likelihood (forward algorithm with candle ops, so gradients reach the
//! encoder) and decoded by Viterbi. Transitions the tagging scheme forbids (`O → I-X`,
//! `B-X → E-Y`, ending on `B-X`, …) get a large penalty in training and are impossible in
//! decoding, so an invalid tag sequence is never emitted.
use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

use super::confidence::Constraints;
use super::tags::LabelMap;

/// Score added to forbidden transitions in the likelihood (decoding forbids them outright).
const FORBIDDEN: f32 = -10000.0;

/// Transition, start and end scores plus the scheme's constraints.
#[derive(Debug, Clone)]
pub struct Crf {
    transitions: Tensor,
    start: Tensor,
    end: Tensor,
    transition_penalty: Tensor,
    start_penalty: Tensor,
    end_penalty: Tensor,
    allowed: Vec<bool>,
    allowed_start: Vec<bool>,
    allowed_end: Vec<bool>,
    num_labels: usize,
}

impl Crf {
    /// Loads (or creates at zero) `transitions [K, K]` (from row to column), `start [K]` and
    /// `end [K]`.
    pub fn load(vb: VarBuilder, labels: &LabelMap) -> Result<Self> {
        let k = labels.len();
        let zero = candle_nn::Init::Const(0.0);
        let transitions = vb.get_with_hints((k, k), "transitions", zero)?;
        let start = vb.get_with_hints(k, "start", zero)?;
        let end = vb.get_with_hints(k, "end", zero)?;
        let allowed: Vec<bool> = (0..k * k).map(|i| labels.allowed(i / k, i % k)).collect();
        let allowed_start: Vec<bool> = (0..k).map(|i| labels.allowed_start(i)).collect();
        let allowed_end: Vec<bool> = (0..k).map(|i| labels.allowed_end(i)).collect();
        let penalty = |mask: &[bool]| -> Vec<f32> {
            mask.iter()
                .map(|&a| if a { 0.0 } else { FORBIDDEN })
                .collect()
        };
        let dev = transitions.device();
        Ok(Self {
            transition_penalty: Tensor::from_vec(penalty(&allowed), (k, k), dev)?,
            start_penalty: Tensor::from_vec(penalty(&allowed_start), k, dev)?,
            end_penalty: Tensor::from_vec(penalty(&allowed_end), k, dev)?,
            transitions,
            start,
            end,
            allowed,
            allowed_start,
            allowed_end,
            num_labels: k,
        })
    }

    /// Mean negative log-likelihood of the gold `tags` (one sequence per example, lengths
    /// ≥ 1) under `emissions [B, C, K]`, where example `b` uses its first `tags[b].len()`
    /// positions.
    pub fn nll(&self, emissions: &Tensor, tags: &[Vec<u32>]) -> Result<Tensor> {
        let (b, c, k) = emissions.dims3()?;
        let dev = emissions.device();
        let trans = self.transitions.add(&self.transition_penalty)?;
        let start = self.start.add(&self.start_penalty)?;
        let end = self.end.add(&self.end_penalty)?;

        // Score of the gold path: emissions, transitions, start and end.
        let mut emit_idx = Vec::new();
        let mut pair_idx = Vec::new();
        let mut first = Vec::new();
        let mut last = Vec::new();
        for (i, seq) in tags.iter().enumerate() {
            for (t, &tag) in seq.iter().enumerate() {
                emit_idx.push(((i * c + t) * k) as u32 + tag);
                if t > 0 {
                    pair_idx.push(seq[t - 1] * k as u32 + tag);
                }
            }
            first.push(*seq.first().unwrap_or(&0));
            last.push(*seq.last().unwrap_or(&0));
        }
        let pick = |t: &Tensor, idx: Vec<u32>| -> Result<Tensor> {
            if idx.is_empty() {
                return Tensor::zeros((), DType::F32, dev);
            }
            let n = idx.len();
            t.flatten_all()?
                .index_select(&Tensor::from_vec(idx, n, dev)?, 0)?
                .sum_all()
        };
        let gold = (pick(emissions, emit_idx)?
            + pick(&trans, pair_idx)?
            + pick(&start, first)?
            + pick(&end, last)?)?;

        // Partition function by the forward algorithm; finished sequences keep their alpha.
        let mut mask = vec![0f32; b * c];
        for (i, seq) in tags.iter().enumerate() {
            mask[i * c..i * c + seq.len()].fill(1.0);
        }
        let mask = Tensor::from_vec(mask, (b, c), dev)?;
        let mut alpha = emissions
            .narrow(1, 0, 1)?
            .squeeze(1)?
            .broadcast_add(&start)?;
        let trans = trans.unsqueeze(0)?;
        for t in 1..c {
            let emit = emissions.narrow(1, t, 1)?; // [B, 1, K]
            let scores = alpha
                .unsqueeze(2)?
                .broadcast_add(&trans)?
                .broadcast_add(&emit)?;
            let next = log_sum_exp(&scores, 1)?;
            let m = mask.narrow(1, t, 1)?;
            alpha = alpha.add(&next.sub(&alpha)?.broadcast_mul(&m)?)?;
        }
        let log_z = log_sum_exp(&alpha.broadcast_add(&end)?, 1)?.sum_all()?;
        (log_z - gold)? / b as f64
    }

    /// The best tag sequence for `emissions` (`len × K`, row-major) among those the scheme
    /// allows. Empty for an empty sequence.
    pub fn viterbi(&self, emissions: &[f32], len: usize, transitions: &CrfScores) -> Vec<u32> {
        let k = self.num_labels;
        if len == 0 {
            return Vec::new();
        }
        let neg = f32::NEG_INFINITY;
        let mut score: Vec<f32> = (0..k)
            .map(|j| {
                if self.allowed_start[j] {
                    transitions.start[j] + emissions[j]
                } else {
                    neg
                }
            })
            .collect();
        let mut back = vec![0u32; len * k];
        for t in 1..len {
            let mut next = vec![neg; k];
            for to in 0..k {
                let (mut best, mut arg) = (neg, 0);
                for (from, &prev) in score.iter().enumerate() {
                    if !self.allowed[from * k + to] || prev == neg {
                        continue;
                    }
                    let s = prev + transitions.transitions[from * k + to];
                    if s > best {
                        (best, arg) = (s, from);
                    }
                }
                if best > neg {
                    next[to] = best + emissions[t * k + to];
                }
                back[t * k + to] = arg as u32;
            }
            score = next;
        }
        let (mut best, mut arg) = (neg, 0);
        for (j, &s) in score.iter().enumerate() {
            if self.allowed_end[j] && s > neg && s + transitions.end[j] > best {
                (best, arg) = (s + transitions.end[j], j);
            }
        }
        let mut path = vec![arg as u32; len];
        for t in (1..len).rev() {
            path[t - 1] = back[t * k + path[t] as usize];
        }
        path
    }

    /// The scheme's constraints, as decoding applies them (for [`super::confidence`]).
    pub fn constraints(&self) -> Constraints<'_> {
        Constraints {
            allowed: &self.allowed,
            start: &self.allowed_start,
            end: &self.allowed_end,
        }
    }

    /// The current transition, start and end scores as plain vectors (read once per batch).
    pub fn scores(&self) -> Result<CrfScores> {
        Ok(CrfScores {
            transitions: self.transitions.flatten_all()?.to_vec1()?,
            start: self.start.to_vec1()?,
            end: self.end.to_vec1()?,
        })
    }
}

/// The CRF's learned scores copied out of their tensors for decoding.
#[derive(Debug, Clone)]
pub struct CrfScores {
    /// `K × K`, row = from.
    pub transitions: Vec<f32>,
    /// Start scores.
    pub start: Vec<f32>,
    /// End scores.
    pub end: Vec<f32>,
}

/// `log Σ exp(x)` over `dim`, stabilised by the (gradient-free) maximum.
fn log_sum_exp(x: &Tensor, dim: usize) -> Result<Tensor> {
    let max = x.max_keepdim(dim)?.detach();
    x.broadcast_sub(&max)?
        .exp()?
        .sum_keepdim(dim)?
        .log()?
        .add(&max)?
        .squeeze(dim)
}
