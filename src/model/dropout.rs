//! Inverted dropout with masks drawn from the run's seeded [`Rng`], so training is
//! reproducible (candle's own dropout draws from an unseeded thread RNG).
use std::sync::Mutex;

use candle_core::{Result, Tensor};

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

    /// Applies dropout to `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if self.p <= 0.0 {
            return Ok(x.clone());
        }
        let keep = 1.0 / (1.0 - self.p);
        let mask: Vec<f32> = {
            let mut rng = self
                .rng
                .lock()
                .map_err(|_| candle_core::Error::Msg("dropout rng poisoned".into()))?;
            (0..x.elem_count())
                .map(|_| if rng.next_f32() < self.p { 0.0 } else { keep })
                .collect()
        };
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x.mul(&mask)
    }
}
