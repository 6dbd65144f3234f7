//! Learning-rate schedule: linear warm-up from 0 to the peak, then linear decay to 0 at the
//! last step (Hugging Face's `get_linear_schedule_with_warmup`).

/// Linear warm-up over `warmup` steps, then linear decay to zero at `total`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearSchedule {
    /// Peak learning rate.
    pub peak: f64,
    /// Warm-up steps.
    pub warmup: usize,
    /// Total optimiser steps.
    pub total: usize,
}

impl LinearSchedule {
    /// The learning rate of optimiser step `step` (0-based, as PyTorch's scheduler sees it
    /// before its first `step()`).
    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup {
            return self.peak * step as f64 / self.warmup.max(1) as f64;
        }
        let left = self.total.saturating_sub(step) as f64;
        let span = self.total.saturating_sub(self.warmup).max(1) as f64;
        self.peak * (left / span).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_then_decays_to_zero() {
        let s = LinearSchedule {
            peak: 1e-4,
            warmup: 10,
            total: 110,
        };
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(5) - 5e-5).abs() < 1e-12);
        assert!((s.lr(10) - 1e-4).abs() < 1e-12);
        assert!((s.lr(60) - 5e-5).abs() < 1e-12);
        assert_eq!(s.lr(110), 0.0);
    }
}
