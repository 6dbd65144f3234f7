//! Gradient buffers: one flat f32 vector per trainable parameter, summed over the micro-batches
//! of an accumulation step, with the global L2 norm used for clipping.
use candle_core::backprop::GradStore;
use rayon::prelude::*;

use super::param::Param;
use crate::model::kernels::with_slice;

/// Elements per parallel task over a gradient.
const CHUNK: usize = 1 << 15;

/// Summed gradients of every parameter, in the order of the parameter list.
#[derive(Debug, Clone, Default)]
pub struct GradBuffer {
    grads: Vec<Vec<f32>>,
}

impl GradBuffer {
    /// Zeroed buffers shaped like `params`.
    pub fn new(params: &[Param]) -> Self {
        Self {
            grads: params
                .iter()
                .map(|p| vec![0.0; p.var.elem_count()])
                .collect(),
        }
    }

    /// Adds the gradients of one backward pass; a parameter the loss does not reach adds zero.
    pub fn add(&mut self, params: &[Param], store: &GradStore) -> candle_core::Result<()> {
        for (buf, p) in self.grads.iter_mut().zip(params) {
            if let Some(g) = store.get(p.var.as_tensor()) {
                with_slice(g, |g| {
                    buf.par_chunks_mut(CHUNK)
                        .zip(g.par_chunks(CHUNK))
                        .for_each(|(b, g)| b.iter_mut().zip(g).for_each(|(b, x)| *b += *x));
                })?;
            }
        }
        Ok(())
    }

    /// The flat gradient of parameter `i`.
    pub fn get(&self, i: usize) -> &[f32] {
        &self.grads[i]
    }

    /// The L2 norm of all gradients together: chunks of a fixed size summed in parallel, their
    /// sums added in order, so the result does not depend on the thread count.
    pub fn global_norm(&self) -> f64 {
        self.grads
            .iter()
            .map(|g| {
                let partial: Vec<f64> = g
                    .par_chunks(CHUNK)
                    .map(|c| c.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>())
                    .collect();
                partial.iter().sum::<f64>()
            })
            .sum::<f64>()
            .sqrt()
    }

    /// Sets every gradient back to zero.
    pub fn clear(&mut self) {
        for g in &mut self.grads {
            g.par_chunks_mut(CHUNK).for_each(|c| c.fill(0.0));
        }
    }
}

/// The factor that scales gradients of norm `norm` down to at most `max_norm` (PyTorch's
/// `clip_grad_norm_`: `max_norm / (norm + 1e-6)` when that is below 1; `max_norm <= 0`
/// disables clipping).
pub fn clip_scale(norm: f64, max_norm: f64) -> f32 {
    if max_norm <= 0.0 {
        return 1.0;
    }
    (max_norm / (norm + 1e-6)).min(1.0) as f32
}
