//! Knowledge-aware continued pretraining (masked LM) of a BERT checkpoint on CPU: a corpus
//! streamed from disk ([`corpus`]), ERNIE 1.0-style masking of tokens, whole words, linked KG
//! entities and phrases ([`masking`], [`units`]), training through [`crate::train::Trainer`]
//! ([`train`]) into a Hugging Face `BertForMaskedLM` directory every stage accepts as
//! `encoder.model`, and fill-mask predictions from such a directory ([`fill_mask`]).
pub mod batch;
pub mod config;
pub mod corpus;
pub mod dea;
pub mod fill_mask;
pub mod masking;
pub mod model;
pub mod train;
pub mod units;

pub use batch::MlmMetrics;
pub use config::PretrainConfig;
pub use fill_mask::{FillMask, MaskPrediction};
pub use masking::{Masker, MaskingOptions, Spans, Strategy};
pub use train::{evaluate_config, train_config, PretrainReport};

use std::path::PathBuf;

use crate::stages::task::{
    register, ConfigFile, Purpose, Split, Task, TaskKind, Trainable, Trained,
};

/// What can go wrong pretraining, evaluating or filling masks.
#[derive(Debug, thiserror::Error)]
pub enum PretrainError {
    /// A file could not be read or written.
    #[error("{path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A corpus line is not UTF-8 (names the file and line).
    #[error(transparent)]
    Text(#[from] crate::textfile::TextFileError),
    /// A corpus line is malformed, or the corpus cannot give what the config asks.
    #[error("{}:{line}: {message}", path.display())]
    Data {
        /// The corpus file.
        path: PathBuf,
        /// 1-based line (0: the file as a whole).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The configuration is invalid (names file, line and key).
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The model could not be loaded or run.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
    /// A fill-mask checkpoint lacks tensors of its MLM head: predictions would come from
    /// random weights.
    #[error("{}: the checkpoint lacks the MLM head tensors {}; fill-mask needs a trained head (a `zhishi pretrain` output or a BertForMaskedLM checkpoint)", path.display(), missing.join(", "))]
    MissingHead {
        /// The model directory.
        path: PathBuf,
        /// The head tensors not in the checkpoint.
        missing: Vec<String>,
    },
    /// The vocabulary lacks a token masking needs.
    #[error("{}: {message}", path.display())]
    Vocab {
        /// The model directory.
        path: PathBuf,
        /// What is missing.
        message: String,
    },
    /// The KG could not be read.
    #[error("reading the KG {path}")]
    Kg {
        /// The KG file.
        path: PathBuf,
        /// What went wrong.
        source: crate::kg::import::ImportError,
    },
    /// ERNIE mode's knowledge (entity vectors, the KG's identity) could not be set up.
    #[error(transparent)]
    Knowledge(Box<crate::stages::task::KnowledgeError>),
    /// The linker could not be built.
    #[error("entity linking")]
    Link(#[from] crate::text::LinkError),
    /// A split pretraining does not evaluate.
    #[error("pretraining evaluates the held-out slice: use --split dev or test, not {0}")]
    Split(Split),
    /// An input line cannot be filled (no `[MASK]`, too long).
    #[error("{0}")]
    Input(String),
    /// A tensor operation failed.
    #[error("tensor error")]
    Candle(#[from] candle_core::Error),
    /// The training loop failed.
    #[error(transparent)]
    Train(#[from] crate::train::TrainError),
}

/// Masked-LM pretraining as a trainable task.
pub struct Pretrain;

/// Pretraining in the trainable-task registry ([`crate::stages::training::TASKS`]).
pub static TASK: Trainable = register::<Pretrain>();

impl Task for Pretrain {
    type Resolved = ConfigFile;
    type Metrics = MlmMetrics;
    type Error = PretrainError;
    const KIND: TaskKind = TaskKind::Pretrain;
    const METRIC: &'static str = "mlm_accuracy";

    fn resolve(
        path: &std::path::Path,
        overrides: &[String],
        purpose: Purpose,
    ) -> Result<ConfigFile, PretrainError> {
        train::check_config_for(path, overrides, purpose)?;
        Ok(ConfigFile::new(path, overrides))
    }

    fn train(f: ConfigFile) -> Result<Trained, PretrainError> {
        let r = train_config(&f.path, &f.overrides)?;
        Ok(Trained {
            dev: r.dev,
            train: Some(r.train),
            model_dir: r.model_dir,
            details: None,
        })
    }

    fn evaluate(
        f: ConfigFile,
        split: Split,
        precision: crate::model::Precision,
    ) -> Result<MlmMetrics, PretrainError> {
        train::evaluate_config_at(&f.path, &f.overrides, split, precision)
    }
}
