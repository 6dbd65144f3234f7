//! TransE knowledge-graph embeddings (Bordes et al. 2013, "Translating Embeddings for Modeling
//! Multi-relational Data"): entities and relations are vectors with `h + r ≈ t` for true triples.
//!
//! - [`TransE`] holds the vectors and reads/writes them (safetensors, OpenKE text).
//! - [`Trainer`] fits them with mini-batch training on hand-written f32 loops: margin ranking
//!   loss or the self-adversarial negative-sampling loss of RotatE (Sun et al. 2019), uniform
//!   or Bernoulli corruption, unit-norm entity constraint, SGD or Adagrad, rayon-parallel and
//!   deterministic for a fixed seed, with checkpoint and resume.
//! - Link-prediction evaluation lives in [`crate::kg::eval`].
use std::path::PathBuf;

pub mod kernels;
mod model;
mod train;

pub use kernels::Norm;
pub use model::TransE;
pub use train::{Corruption, EntityNorm, EpochStats, Loss, Optimizer, TrainConfig, Trainer};

/// Errors from training, saving or loading TransE vectors.
#[derive(Debug, thiserror::Error)]
pub enum TransEError {
    /// A file could not be written whole.
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// File at fault.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A vectors or checkpoint file has the wrong content.
    #[error("{path}: {reason}")]
    Format {
        /// File at fault.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A vectors or checkpoint file is not a whole safetensors file (cut short by an
    /// interrupted copy or write, or damaged); the parser's error is the source.
    #[error("{path}: not a complete safetensors file (truncated or corrupt)")]
    Corrupt {
        /// File at fault.
        path: PathBuf,
        /// What the safetensors parser found.
        source: safetensors::SafeTensorError,
    },
    /// A hyper-parameter or input is unusable.
    #[error("invalid TransE setting: {0}")]
    Config(String),
}
