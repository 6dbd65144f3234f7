//! Knowledge distillation (`zhishi distill`, `[task] kind = "distill"`): a fine-tuned NER or
//! classification model (the teacher) trains a student with fewer layers, started from a
//! subset of the teacher's layers with its embeddings and head (classifier, CRF, pooler), on
//! the task's labelled examples plus unlabelled text. The loss is the soft-label KL at a
//! temperature, the hard-label loss on the labelled examples and optionally TinyBERT's
//! hidden-state and attention-score MSE. The student keeps the teacher's labels, input
//! settings and knowledge record, so it is an ordinary model directory of the teacher's task
//! (a pipeline's `ner.model` or `classify.model` loads it).
pub mod classify;
pub mod config;
pub mod loss;
pub mod ner;
pub mod student;
pub mod train;

pub use config::DistillConfig;
pub use train::{evaluate_config, train_config, DistillData, DistillMetrics, DistillReport, TASK};

use std::path::PathBuf;

/// What can go wrong distilling a model.
#[derive(Debug, thiserror::Error)]
pub enum DistillError {
    /// The configuration is invalid (names file, line and key).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// Reading data, featurizing or loading the teacher or student failed (boxed: the NER
    /// error is large and this one is returned often).
    #[error(transparent)]
    Ner(Box<crate::stages::ner::NerError>),
    /// Reading data, featurizing or loading a classification teacher or student failed.
    #[error(transparent)]
    Classify(Box<crate::stages::classify::ClassifyError>),
    /// The unlabelled text could not be read.
    #[error(transparent)]
    Text(Box<crate::textfile::TextFileError>),
    /// An unlabelled line does not make an example (`path:line: what was expected`).
    #[error("{}:{line}: {message}", path.display())]
    Unlabelled {
        /// The unlabelled text.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// The knowledge of the run could not be set up, or differs from the teacher's.
    #[error(transparent)]
    Knowledge(#[from] crate::stages::task::KnowledgeError),
    /// An encoder config could not be read.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// The teacher directory could not be opened.
    #[error(transparent)]
    Open(#[from] crate::stages::task::OpenError),
    /// A tensor operation failed.
    #[error("tensor error")]
    Candle(#[from] candle_core::Error),
    /// The training loop failed.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    /// The teacher's files do not make a student.
    #[error("teacher {}: {message}", path.display())]
    Teacher {
        /// The teacher file or directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl From<crate::stages::ner::NerError> for DistillError {
    fn from(e: crate::stages::ner::NerError) -> Self {
        Self::Ner(Box::new(e))
    }
}

impl From<crate::stages::classify::ClassifyError> for DistillError {
    fn from(e: crate::stages::classify::ClassifyError) -> Self {
        Self::Classify(Box::new(e))
    }
}
