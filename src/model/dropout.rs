//! Inverted dropout with masks drawn from the run's seeded [`Rng`], so training is
//! reproducible (candle's own dropout draws from an unseeded thread RNG).
use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::kernels;
use super::rng::Rng;

/// Zeroes each element with probability `p` and scales the rest by `1/(1-p)`; the identity
/// when `p == 0` (evaluation).
#[derive(Debug)]
pub struct Dropout {
    p: f32,
    rng: Mutex<Rng>,
}

impl Dropout {
    /// Dropout with probability `p` drawing masks from a generator seeded with `seed`.
    pub fn new(p: f32, seed: u64) -> Self {
        Self {
            p,
            rng: Mutex::new(Rng::new(seed)),
        }
    }

    /// The identity (evaluation mode).
    pub fn disabled() -> Self {
        Self::new(0.0, 0)
    }

    /// The generator state, for checkpoints.
    pub fn rng_state(&self) -> u64 {
        self.rng.lock().map(|r| r.state()).unwrap_or_default()
    }

    /// Restores the generator state saved by [`Dropout::rng_state`].
    pub fn set_rng_state(&self, state: u64) {
        if let Ok(mut r) = self.rng.lock() {
            *r = Rng::new(state);
        }
    }

    /// Whether dropout changes anything (`p > 0`: training).
    pub fn is_active(&self) -> bool {
        self.p > 0.0
    }

    /// The mask of the next `n` elements (the generator moves past them), for a fused kernel
    /// that applies dropout itself; `None` when dropout is off.
    pub fn draw(&self, n: usize) -> Result<Option<DropMask>> {
        if self.p <= 0.0 {
            return Ok(None);
        }
        let mut rng = self
            .rng
            .lock()
            .map_err(|_| candle_core::Error::Msg("dropout rng poisoned".into()))?;
        let start = rng.clone();
        rng.skip(n as u64);
        Ok(Some(DropMask {
            start,
            p: self.p,
            keep: 1.0 / (1.0 - self.p),
        }))
    }

    /// Applies dropout to `x`: on the CPU one parallel pass (the mask is drawn by element index,
    /// so it is the same for any thread count), elsewhere a mask tensor and a product.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.p <= 0.0 {
            return Ok(x.clone());
        }
        let Some(mask) = self.draw(x.elem_count())? else {
            return Ok(x.clone());
        };
        let op = MaskOp(mask);
        if kernels::supported(x) {
            return x.contiguous()?.apply_op1(op);
        }
        let mask: Vec<f32> = (0..x.elem_count() as u64).map(|i| op.0.factor(i)).collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x.mul(&mask)
    }
}

/// Elements per parallel task of the mask.
const TASK: usize = 1 << 14;

/// One dropout mask: `m_i = 0` when draw `i` from `start` is below `p`, else `keep`. Drawn by
/// element index, so any thread can compute any part of it.
#[derive(Debug, Clone)]
pub struct DropMask {
    start: Rng,
    p: f32,
    keep: f32,
}

impl DropMask {
    /// The mask's factor for element `i`.
    #[inline]
    pub fn factor(&self, i: u64) -> f32 {
        if self.start.f32_at(i) < self.p {
            0.0
        } else {
            self.keep
        }
    }
}

/// Dropout as an op: `x · m`, and its own backward (`dy · m`, the mask drawn again).
#[derive(Clone)]
struct MaskOp(DropMask);

impl CustomOp1 for MaskOp {
    fn name(&self) -> &'static str {
        "zhishi-dropout"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let all = storage.as_slice::<f32>()?;
        let Some((first, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{}: the input is not contiguous", self.name());
        };
        let x = &all[first..end];
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(TASK)
            .zip(x.par_chunks(TASK))
            .enumerate()
            .for_each(|(task, (y, x))| {
                let offset = (task * TASK) as u64;
                for (j, (y, &x)) in y.iter_mut().zip(x).enumerate() {
                    *y = x * self.0.factor(offset + j as u64);
                }
            });
        Ok((CpuStorage::F32(y), layout.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.detach().contiguous()?.apply_op1_no_bwd(self)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The mask the sequential generator draws: what dropout was before it ran in parallel.
    fn sequential_mask(seed: u64, n: usize, p: f32) -> Vec<f32> {
        let mut rng = Rng::new(seed);
        let keep = 1.0 / (1.0 - p);
        (0..n)
            .map(|_| if rng.next_f32() < p { 0.0 } else { keep })
            .collect()
    }

    #[test]
    fn the_parallel_mask_is_the_sequential_one_forward_and_backward() -> Result<()> {
        let n = 17 * 2900;
        let values: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
        let x = Var::from_vec(values.clone(), (n / 17, 17), &Device::Cpu)?;
        let dropout = Dropout::new(0.1, 9);
        let y = dropout.forward(x.as_tensor())?;
        let mask = sequential_mask(9, n, 0.1);
        let expected: Vec<f32> = values.iter().zip(&mask).map(|(x, m)| x * m).collect();
        assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, expected);
        let grads = (y * 2.0)?.sum_all()?.backward()?;
        let dx = grads.get(&x).map(|g| g.flatten_all()).transpose()?;
        let expected: Vec<f32> = mask.iter().map(|m| 2.0 * m).collect();
        assert_eq!(dx.map(|d| d.to_vec1::<f32>()).transpose()?, Some(expected));
        // The generator moved past the mask: the next call draws the following numbers.
        let second = dropout.forward(&Tensor::ones(4, candle_core::DType::F32, &Device::Cpu)?)?;
        let mut rng = Rng::new(9);
        rng.skip(n as u64);
        let keep = 1.0 / 0.9;
        let next: Vec<f32> = (0..4)
            .map(|_| if rng.next_f32() < 0.1 { 0.0 } else { keep })
            .collect();
        assert_eq!(second.to_vec1::<f32>()?, next);
        Ok(())
    }
}
