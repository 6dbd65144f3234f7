//! The candle encoder: BERT-family checkpoints from Hugging Face directories, with explicit
//! position ids and visible matrices for K-BERT, fused CPU kernels for inference and
//! differentiable ops for training.
//!
//! Data flow: [`load::load_bert`] reads `config.json` + weights into a [`bert::BertModel`]
//! (an ALBERT directory, `model_type = "albert"`, into the same struct: [`albert`]);
//! [`tokenize::BertTokenizer`] turns text into ids with character offsets; the model maps an
//! [`bert::EncoderInput`] to `last_hidden_state`.
use std::path::PathBuf;

pub mod albert;
pub mod allocator;
pub mod bert;
pub mod config;
pub mod dea;
pub mod device;
pub mod dropout;
pub mod encoder;
pub mod ernie;
pub mod hub;
pub mod kernels;
pub mod linear;
pub mod load;
pub mod mlm;
pub mod quantized;
pub mod rng;
pub mod threads;
pub mod tokenize;
pub mod walk;

pub use albert::AlbertConfig;
pub use bert::{AttentionBias, BertModel, EncoderInput, Trace};
pub use config::{AlbertLayout, BertConfig, HiddenAct, Kernels, LayerType, Precision};
pub use device::parse_device;
pub use dropout::Dropout;
pub use encoder::{Encoder, EncoderBatch, EntityTable};
pub use ernie::{aggregator_config, gather_entities, ErnieInput, ErnieModel};
pub use load::{check_max_len, check_vocab_fits, load_bert, load_entity_table, load_ernie};
pub use rng::Rng;
pub use tokenize::{BertTokenizer, Encoded};

/// What can go wrong loading or running the encoder.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The output files could not be planned, locked or written.
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
    /// An `hf:ORG/NAME` model id could not be resolved (see [`hub`]).
    #[error(transparent)]
    Hub(#[from] hub::HubError),
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// `config.json` is malformed or describes a model this crate cannot run.
    #[error("bad model config {path}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The model directory lacks a required file.
    #[error("{dir}: no {what} found")]
    MissingFile {
        /// The model directory.
        dir: PathBuf,
        /// The files looked for.
        what: String,
    },
    /// The checkpoint lacks a tensor the config requires.
    #[error("{file}: missing tensor {name} (expected shape {expected:?})")]
    MissingTensor {
        /// The weights file.
        file: PathBuf,
        /// The tensor name (without `bert.` prefix).
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
    },
    /// A checkpoint tensor has the wrong shape for the config.
    #[error("{file}: tensor {name} has shape {found:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The weights file.
        file: PathBuf,
        /// The tensor name (without `bert.` prefix).
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// The weights file could not be parsed.
    #[error("cannot read weights {path}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// candle's error.
        source: candle_core::Error,
    },
    /// A quantised weights file (`zhishi quantize`) is malformed or cannot be written.
    #[error("{file}: {name} {message}")]
    Quantized {
        /// The weights file.
        file: PathBuf,
        /// The tensor (or `file` for the file as a whole).
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A tokenizer's vocabulary holds ids past the model's embedding table: every text with
    /// one of the extra tokens would fail, so the pair is refused when it is opened.
    #[error("{vocab} holds {ids} token ids but {config} gives vocab_size {vocab_size}: the vocabulary does not belong to this model")]
    VocabTooLarge {
        /// The vocabulary or tokenizer file.
        vocab: PathBuf,
        /// Its largest id + 1.
        ids: usize,
        /// The model's config file.
        config: PathBuf,
        /// Rows of the model's embedding table.
        vocab_size: usize,
    },
    /// An input length longer than the model has positions for.
    #[error(
        "{what} {max_len} exceeds the {positions} positions of {config} (max_position_embeddings)"
    )]
    TooLong {
        /// What asks for the length (`data.max_len`, `ner.json max_len`, ...).
        what: String,
        /// The length asked for.
        max_len: usize,
        /// The model's config file.
        config: PathBuf,
        /// `max_position_embeddings`.
        positions: usize,
    },
    /// The tokenizer files could not be loaded.
    #[error("cannot load tokenizer from {path}: {message}")]
    Tokenizer {
        /// The vocabulary or tokenizer file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The requested device does not exist or is not compiled in.
    #[error("device {spec:?}: {message}")]
    Device {
        /// What the user asked for (`cpu`, `cuda:0`, ...).
        spec: String,
        /// Why it cannot be used.
        message: String,
    },
    /// An input batch is inconsistent (shapes, id ranges).
    #[error("bad input: {0}")]
    Input(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}
