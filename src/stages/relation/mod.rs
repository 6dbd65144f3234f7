//! Relation extraction: adds [`crate::doc::Relation`]s between pairs of arguments of a text.
//! The head and tail are wrapped in marker tokens (ERNIE-THU style), the encoder (plain or
//! with K-BERT knowledge) reads the marked sentence, and a linear classifier over the hidden
//! states of `[CLS]` and the two opening markers picks the relation, or the no-relation label.
//!
//! Training runs through [`crate::train`] from a TOML file ([`config::RelationConfig`], see
//! `pipelines/sanwen-re.toml`); a trained model directory loads with [`RelationModel::load`];
//! the `relation` pipeline stage ([`RelationStage`]) proposes pairs from NER entities or
//! linked mentions and keeps the related ones.
pub mod config;
pub mod data;
pub mod explain;
pub mod features;
pub mod metrics;
pub mod model;
pub mod network;
pub mod stage;
pub mod train;

pub use config::RelationConfig;
pub use data::{DataFormat, RelationExample};
pub use metrics::{LabelScore, RelationMetrics};
pub use model::{PairInput, Prediction, RelationModel};
pub use stage::{PairSource, RelationStage, RelationStageOptions};
pub use train::{evaluate_config, train_config, RelationTrainReport, TASK};

use std::path::PathBuf;

/// What can go wrong reading relation data, training, loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum RelationError {
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
    /// An entity marker is not in the encoder's vocabulary.
    #[error("entity marker {0:?} is not in the vocabulary (expected a token of vocab.txt, e.g. \"#\" or \"[unused1]\")")]
    Marker(String),
    /// A head or tail span does not lie inside its text.
    #[error("{role} span {start}..{end} does not lie inside a text of {len} characters")]
    Span {
        /// `head` or `tail`.
        role: &'static str,
        /// First character.
        start: usize,
        /// One past the last character.
        end: usize,
        /// Characters in the text.
        len: usize,
    },
    /// A K-BERT sentence tree could not be flattened into encoder input.
    #[error("knowledge injection")]
    Flatten(#[from] crate::knowledge::KbertError),
    /// Flattening cut an entity marker (the sentence is too long for `max_len` around it).
    #[error("knowledge injection: an entity marker lost its token (raise max_len)")]
    MarkerLost,
    /// A pair names a document that was not given.
    #[error("a pair names document {index} of {len}")]
    NoSuchDocument {
        /// The pair's document index.
        index: usize,
        /// Documents given.
        len: usize,
    },
    /// A model trained with knowledge was given bare texts.
    #[error("the model was trained with knowledge (mode {mode}); give it linked documents (predict_in_documents, or a pipeline with link and facts stages)")]
    NeedsDocuments {
        /// The model's knowledge mode.
        mode: &'static str,
    },
    /// The knowledge of a training run or a model could not be set up (the KG, the linker,
    /// or settings that differ from the model's).
    #[error(transparent)]
    KnowledgeSetup(#[from] crate::stages::task::KnowledgeError),
    /// A tensor operation failed.
    #[error("tensor error")]
    Candle(#[from] candle_core::Error),
    /// The training loop failed.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
}

impl From<crate::stages::task::OpenError> for RelationError {
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
