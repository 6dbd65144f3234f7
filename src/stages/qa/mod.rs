//! Extractive question answering: adds [`crate::doc::Answer`] spans of a context (the
//! document's `text`) answering its `question`. A BERT encoder reads
//! `[CLS] question [SEP] context-window [SEP]`, a linear head scores every token as the
//! answer's start and end, and an n-best search over windows picks the span, returned as
//! character offsets into the original context.
//!
//! Training and evaluation run from a TOML file ([`config::QaConfig`], e.g.
//! `pipelines/cmrc2018-qa.toml`) on SQuAD v1 JSON ([`data`]); the metric is the CMRC 2018
//! evaluation ([`metrics`]). A trained model directory loads with [`QaModel::load`].
pub mod config;
pub mod data;
pub mod decode;
pub mod features;
pub mod metrics;
pub mod model;
pub mod network;
pub mod predict;
pub mod stage;
pub mod train;

pub use config::QaConfig;
pub use metrics::QaMetrics;
pub use model::QaModel;
pub use stage::{QaStage, QaStageOptions};
pub use train::{evaluate_config, train_config, QaTrainReport, TASK};

use std::path::PathBuf;

/// What can go wrong reading QA data, training, loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum QaError {
    /// A data file could not be read as UTF-8 text (names the file and line).
    #[error(transparent)]
    Read(#[from] crate::textfile::TextFileError),
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A data file is malformed; `at` names the record (question id or JSON path).
    #[error("{}: {at}: {message}", path.display())]
    Data {
        /// The data file.
        path: PathBuf,
        /// Where in the file: a question id, or a JSON path / line and column.
        at: String,
        /// What was expected.
        message: String,
    },
    /// The training configuration is invalid (names file, line and key).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The encoder or tokenizer could not be loaded, or an input could not be tokenised.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// A model directory is incomplete or inconsistent.
    #[error("model {path}: {message}")]
    ModelDir {
        /// The model directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor operation failed.
    #[error("tensor error")]
    Candle(#[from] candle_core::Error),
    /// The training loop failed.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
}

impl From<crate::stages::task::OpenError> for QaError {
    fn from(e: crate::stages::task::OpenError) -> Self {
        use crate::stages::task::OpenError;
        match e {
            OpenError::Io { path, source } => Self::Io { path, source },
            OpenError::Invalid { path, message } => Self::ModelDir { path, message },
            OpenError::Model(e) => Self::Model(e),
            OpenError::Candle(e) => Self::Candle(e),
        }
    }
}
