//! Writing a trained task model's directory, the same for every stage: the weights, the
//! encoder's `config.json` and tokenizer files, the stage's own settings as JSON, and the
//! training TOML that made it; and reading it back ([`read_trained`], [`map_weights`]), each
//! stage then building its own network from the settings.
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_nn::{VarBuilder, VarMap};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::load::read_config;
use crate::model::{BertConfig, Kernels, ModelError, Precision};
use crate::train::TrainError;

/// What one model directory holds besides the weights.
pub struct ModelDir<'a, M: Serialize> {
    /// Weights file name (e.g. `model.safetensors`).
    pub weights_file: &'a str,
    /// The pretrained encoder's directory, whose files are copied.
    pub encoder_dir: &'a Path,
    /// Encoder files copied when present (`config.json` is always required).
    pub tokenizer_files: &'a [&'a str],
    /// Tokenizer files that must exist (the others are copied only when present).
    pub required_tokenizer_files: &'a [&'a str],
    /// The stage's settings and its file name (e.g. `ner.json`).
    pub meta: (&'a str, &'a M),
    /// The training TOML and its file name.
    pub toml: (&'a str, &'a str),
}

impl<M: Serialize> ModelDir<'_, M> {
    /// Writes the directory `dir` (created if missing) with `varmap`'s weights.
    pub fn save(&self, dir: &Path, varmap: &VarMap) -> Result<(), TrainError> {
        let io = |path: PathBuf| move |source| TrainError::Io { path, source };
        std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
        varmap.save(dir.join(self.weights_file))?;
        let required =
            std::iter::once("config.json").chain(self.required_tokenizer_files.iter().copied());
        for name in required {
            let from = self.encoder_dir.join(name);
            std::fs::copy(&from, dir.join(name)).map_err(io(from))?;
        }
        for name in self.tokenizer_files {
            let from = self.encoder_dir.join(name);
            if from.is_file() {
                std::fs::copy(&from, dir.join(name)).map_err(io(from))?;
            }
        }
        let (meta_file, meta) = self.meta;
        let json = |source| TrainError::Json {
            path: dir.join(meta_file),
            source,
        };
        let mut value = serde_json::to_value(meta).map_err(json)?;
        record_encoder_id(&mut value, self.encoder_dir);
        let text = serde_json::to_string_pretty(&value).map_err(json)?;
        std::fs::write(dir.join(meta_file), text).map_err(io(dir.join(meta_file)))?;
        let (toml_file, toml) = self.toml;
        std::fs::write(dir.join(toml_file), toml).map_err(io(dir.join(toml_file)))?;
        Ok(())
    }
}

/// The key of a stage's settings file that names the `hf:` model it was trained from.
pub const ENCODER_ID_KEY: &str = "encoder";

/// Records in `meta` (a stage's settings as JSON) the id of the encoder it was trained from,
/// when `encoder_dir` is a snapshot of the Hugging Face cache: `"encoder":
/// "hf:ORG/NAME@COMMIT"`, pinned to the commit whatever revision the TOML named (the TOML
/// kept beside it has the id as written). A stage's settings never use the key otherwise.
fn record_encoder_id(meta: &mut serde_json::Value, encoder_dir: &Path) {
    let (Some(obj), Some(id)) = (
        meta.as_object_mut(),
        crate::model::hub::snapshot_id(encoder_dir),
    ) else {
        return;
    };
    obj.entry(ENCODER_ID_KEY)
        .or_insert_with(|| serde_json::Value::from(id.to_string()));
}

/// Why a trained model directory could not be opened. Each stage turns this into its own
/// `Io` / `ModelDir` / `Model` / `Candle` errors, so messages stay the stage's.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file is missing or malformed.
    #[error("{path}: {message}")]
    Invalid {
        /// The model directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The encoder config could not be read.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The weights could not be mapped.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Reads back what [`ModelDir::save`] wrote, for inference: the stage's settings file and the
/// encoder config set up for the fused kernels (ERNIE layer types cleared; a stage that fuses
/// entities sets them again).
pub fn read_trained<M: DeserializeOwned>(
    dir: &Path,
    meta_file: &str,
    precision: Precision,
) -> Result<(M, BertConfig), OpenError> {
    let meta_path = dir.join(meta_file);
    let text = std::fs::read_to_string(&meta_path).map_err(|source| OpenError::Io {
        path: meta_path.clone(),
        source,
    })?;
    let meta = serde_json::from_str(&text).map_err(|e| OpenError::Invalid {
        path: dir.to_path_buf(),
        message: format!("{meta_file}: {e}"),
    })?;
    let mut cfg = read_config(dir)?;
    cfg.kernels = Kernels::inference(precision);
    cfg.layer_types = None;
    Ok((meta, cfg))
}

/// Memory-maps a trained directory's weights file (f32) onto `device`; a file saved quantised
/// (`zhishi quantize`) is read and dequantised, its int8 scales kept.
pub fn map_weights(
    dir: &Path,
    weights_file: &str,
    device: &Device,
) -> Result<VarBuilder<'static>, OpenError> {
    let weights = dir.join(weights_file);
    if !weights.is_file() {
        return Err(OpenError::Invalid {
            path: dir.to_path_buf(),
            message: format!("{weights_file} is missing"),
        });
    }
    Ok(crate::model::quantized::var_builder(&weights, device)?)
}
