//! Writing a trained task model's directory, the same for every stage: the weights, the
//! encoder's `config.json` and tokenizer files, the stage's own settings as JSON, and the
//! training TOML that made it. Each stage's `load` reads its own settings back.
use std::path::{Path, PathBuf};

use candle_nn::VarMap;
use serde::Serialize;

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
        let text =
            serde_json::to_string_pretty(meta).map_err(|e| TrainError::Task(e.to_string()))?;
        std::fs::write(dir.join(meta_file), text).map_err(io(dir.join(meta_file)))?;
        let (toml_file, toml) = self.toml;
        std::fs::write(dir.join(toml_file), toml).map_err(io(dir.join(toml_file)))?;
        Ok(())
    }
}
