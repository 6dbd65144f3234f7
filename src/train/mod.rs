//! The training loop shared by every trainable stage: a fused AdamW over flat buffers with
//! decoupled weight decay, a linear warm-up/decay schedule, clipping by global norm, gradient
//! accumulation, seeded length-bucketed batching and dropout, evaluation with early stopping,
//! best-checkpoint saving and exact resume.
//!
//! A stage plugs in by implementing [`TrainTask`] (loss of a batch, dev evaluation, saving
//! its model) and handing its trainable variables to [`Trainer`].
pub mod adamw;
pub mod batching;
pub mod checkpoint;
pub mod curves;
pub mod grads;
pub mod output;
pub mod param;
pub mod phases;
pub mod progress;
pub mod schedule;
pub mod trainer;

pub use adamw::{AdamW, AdamWConfig};
pub use batching::{length_bucketed_batches, random_batches, Batching, POOL_BATCHES};
pub use curves::{write_curves, HistoryPoint};
pub use output::TrainOutput;
pub use param::Param;
pub use phases::PhaseSeconds;
pub use schedule::LinearSchedule;
pub use trainer::{BatchLoss, Evaluation, TrainOptions, TrainReport, TrainTask, Trainer};

use std::path::PathBuf;

/// What can go wrong while training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A tensor operation failed.
    #[error("tensor error")]
    Candle(#[from] candle_core::Error),
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A checkpoint is missing a piece or does not match the model being trained.
    #[error("checkpoint {path}: {message}")]
    Checkpoint {
        /// The checkpoint directory or file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The task failed (reading data, evaluating, saving): its own error, kept as the source.
    #[error(transparent)]
    Task(Box<dyn std::error::Error + Send + Sync>),
    /// A JSON file could not be read or written.
    #[error("{path}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The run's files could not be planned, locked or written.
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
    /// The loss became NaN or infinite.
    #[error("loss is {loss} at step {step}; lower the learning rate or check the data")]
    NonFinite {
        /// The optimiser step.
        step: usize,
        /// The loss value.
        loss: f32,
    },
}

impl TrainError {
    /// The task's own error `source` (kept as the source, not flattened to text).
    pub fn task(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Task(source.into())
    }
}
