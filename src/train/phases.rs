//! Where a training run's time goes: wall-clock seconds per phase of the optimiser steps,
//! measured by the loop (and, for batch assembly, by the task), reported as
//! [`TrainReport::phases`](super::TrainReport::phases) and tabulated by `zhishi bench train`.
use std::time::Instant;

use serde::Serialize;

/// Wall-clock seconds a run spent in each phase (this process only: a resumed run counts from
/// its resumption).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PhaseSeconds {
    /// Assembling batches from prepared examples (token ids, masks, labels into tensors; the
    /// masking of pretraining), as each task reports it.
    pub batching: f64,
    /// The forward pass and the loss (candle computes eagerly, so this is the compute).
    pub forward: f64,
    /// Backpropagation through the loss.
    pub backward: f64,
    /// Adding a micro-batch's gradients into the step's buffer.
    pub accumulate: f64,
    /// The global gradient norm, clipping and the AdamW update.
    pub optimizer: f64,
    /// Dev evaluations.
    pub evaluation: f64,
    /// Writing the best model, resumable checkpoints and curves.
    pub saving: f64,
}

impl PhaseSeconds {
    /// The seconds of the optimiser steps: every phase but evaluation and saving.
    pub fn steps(&self) -> f64 {
        self.batching + self.forward + self.backward + self.accumulate + self.optimizer
    }

    /// The sum of every phase.
    pub fn total(&self) -> f64 {
        self.steps() + self.evaluation + self.saving
    }
}

/// Seconds since `start`.
pub fn since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_leave_out_evaluation_and_saving() {
        let p = PhaseSeconds {
            batching: 1.0,
            forward: 2.0,
            backward: 3.0,
            accumulate: 0.5,
            optimizer: 0.5,
            evaluation: 10.0,
            saving: 4.0,
        };
        assert_eq!(p.steps(), 7.0);
        assert_eq!(p.total(), 21.0);
    }
}
