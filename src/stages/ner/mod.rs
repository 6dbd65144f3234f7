//! Named-entity recognition: adds [`crate::doc::Entity`] spans to a text. A BERT encoder
//! (plain, with K-BERT knowledge, ERNIE-THU entity fusion or both) scores each character's tag, a linear-chain CRF (or an
//! arg-max) decodes them under the tagging scheme's constraints, and entities come out as
//! character offsets.
//!
//! Training runs through [`crate::train`] from a TOML file ([`config::NerConfig`]); a trained
//! model directory loads with [`NerModel::load`].
pub mod confidence;
pub mod config;
pub mod crf;
pub mod data;
pub mod dump;
pub mod explain;
pub mod features;
pub mod metrics;
pub mod model;
pub mod network;
pub mod predict;
pub mod stage;
pub mod tags;
pub mod train;

pub use config::NerConfig;
pub use metrics::{NerMetrics, Prf};
pub use model::{NerModel, Tagged};
pub use stage::{NerStage, NerStageOptions};
pub use tags::{LabelMap, TagScheme};
pub use train::{evaluate_config, train_config, NerTrainReport, TASK};

use std::path::PathBuf;

/// What can go wrong reading NER data, training, loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum NerError {
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
    /// A data file has a malformed line.
    #[error("{}:{line}: {message}", path.display())]
    Data {
        /// The data file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// An annotation export (doccano, Label Studio) has a bad record (names file and record).
    #[error(transparent)]
    Annotation(#[from] crate::stages::annotation::AnnotationError),
    /// The training configuration is invalid (names file, line and key).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The encoder could not be loaded.
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
    /// A K-BERT sentence tree could not be flattened into encoder input.
    #[error("knowledge injection")]
    Flatten(#[from] crate::knowledge::KbertError),
    /// A window the input dump cannot hold (ERNIE entities or segment ids).
    #[error("only plain and K-BERT inputs can be dumped (this window has ERNIE entities or segment ids)")]
    NotDumpable,
    /// A model trained with knowledge was given bare texts.
    #[error("the model was trained with knowledge (mode {mode}); give it linked documents (predict_documents, or a pipeline with link and facts stages)")]
    NeedsDocuments {
        /// The model's knowledge mode.
        mode: &'static str,
    },
    /// The knowledge of a training run or a model could not be set up (the KG, the linker,
    /// or settings that differ from the model's).
    #[error(transparent)]
    KnowledgeSetup(#[from] crate::stages::task::KnowledgeError),
    /// ERNIE entity vectors could not be trained, read or written.
    #[error("entity vectors")]
    Entities(#[from] crate::knowledge::ErnieError),
    /// A tensor operation failed.
    #[error("tensor error")]
    Candle(#[from] candle_core::Error),
    /// The reliability diagram of an evaluation could not be drawn or written.
    #[error(transparent)]
    Chart(#[from] crate::stages::calibration::ChartError),
    /// The files of an evaluation could not be planned.
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
    /// The training loop failed.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
}

impl From<crate::stages::task::OpenError> for NerError {
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
