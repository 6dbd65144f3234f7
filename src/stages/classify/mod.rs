//! Sentence and sentence-pair classification: one label per text (sentiment, intent,
//! topic) or per pair of texts (matching, inference), or several labels per text with
//! `multi_label`. The encoder (plain, K-BERT with each sentence's own knowledge, or ERNIE-THU
//! with the entity vectors of linked mentions) reads `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`
//! (token types 0 and 1); the head is the checkpoint's pooler (`[CLS]` dense + tanh) or the
//! mean of the tokens, then dropout and a linear layer, as transformers'
//! `BertForSequenceClassification`.
//!
//! Training runs through [`crate::train`] from a TOML file ([`config::ClassifyConfig`], see
//! `pipelines/chnsenticorp-cls.toml`); a trained model directory loads with
//! [`ClassifyModel::load`]; the `classify` pipeline stage ([`stage::ClassifyStage`]) adds
//! [`crate::doc::Label`]s to each document, best first.
pub mod config;
pub mod data;
pub mod explain;
pub mod features;
pub mod metrics;
pub mod model;
pub mod network;
pub mod stage;
pub mod train;

pub use config::ClassifyConfig;
pub use data::{ClassifyExample, DataFormat};
pub use metrics::ClassifyMetrics;
pub use model::ClassifyModel;
pub use stage::{ClassifyStage, ClassifyStageOptions};
pub use train::{Classify, TASK};

use std::path::PathBuf;

/// What can go wrong reading classification data, training, loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// A data file could not be read as UTF-8 text (names the file and line).
    #[error(transparent)]
    Read(#[from] crate::textfile::TextFileError),
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
    /// A model directory could not be read or written.
    #[error(transparent)]
    ModelDir(#[from] crate::stages::task::OpenError),
    /// A K-BERT sentence tree could not be flattened into encoder input.
    #[error("knowledge injection")]
    Flatten(#[from] crate::knowledge::KbertError),
    /// A model trained with knowledge was given bare texts.
    #[error("the model was trained with knowledge (mode {mode}); give it linked documents (a pipeline with link and facts stages)")]
    NeedsDocuments {
        /// The model's knowledge mode.
        mode: &'static str,
    },
    /// The knowledge of a training run or a model could not be set up (the KG, the linker,
    /// or settings that differ from the model's).
    #[error(transparent)]
    Knowledge(#[from] crate::stages::task::KnowledgeError),
    /// A tensor operation failed.
    #[error("tensor error")]
    Candle(#[from] candle_core::Error),
    /// The training loop failed.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
    /// The network's variables could not be set up from the pretrained encoder.
    #[error(transparent)]
    Setup(Box<crate::stages::task::TrainingSetupError>),
    /// The confusion matrix could not be drawn.
    #[error("drawing {}: {message}", path.display())]
    Chart {
        /// The picture's file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A file could not be written.
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
}

impl From<crate::stages::task::TrainingSetupError> for ClassifyError {
    fn from(e: crate::stages::task::TrainingSetupError) -> Self {
        Self::Setup(Box::new(e))
    }
}
