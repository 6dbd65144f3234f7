//! The resumable training state in `OUTPUT/last/`: trainable parameters, optimiser moments and
//! the loop's position (`state.json`). The best model for inference is saved separately by
//! the task into `OUTPUT/best/`.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::adamw::AdamW;
use super::param::Param;
use super::TrainError;

/// Parameters file of a training checkpoint.
pub const PARAMS_FILE: &str = "params.safetensors";
/// Optimiser moments file of a training checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Loop state file of a training checkpoint.
pub const STATE_FILE: &str = "state.json";

/// Where the loop stands: enough to continue exactly where it stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// Optimiser steps taken.
    pub step: usize,
    /// Current epoch (0-based).
    pub epoch: usize,
    /// Optimiser steps already taken within the current epoch.
    pub step_in_epoch: usize,
    /// Best dev score so far.
    pub best_score: Option<f64>,
    /// Step of the best dev score.
    pub best_step: usize,
    /// Evaluations since the best one (early stopping).
    pub evals_without_improvement: usize,
    /// Dropout generator state.
    pub dropout_rng: u64,
    /// Real (non-padding) tokens trained on.
    pub tokens: usize,
    /// Tokens including padding.
    pub padded_tokens: usize,
    /// Training seconds (excluding evaluation) so far.
    pub train_seconds: f64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes parameters, optimiser and loop state into `dir` (created if needed). Files are
/// written under temporary names and renamed, so an interrupted save leaves the old ones.
pub fn save(
    dir: &Path,
    params: &[Param],
    opt: &AdamW,
    state: &LoopState,
) -> Result<(), TrainError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tensors: HashMap<String, Tensor> = params
        .iter()
        .map(|p| (p.name.clone(), p.var.as_tensor().clone()))
        .collect();
    let moments: HashMap<String, Tensor> = opt.state_tensors(params)?.into_iter().collect();
    let tmp = |name: &str| dir.join(format!("{name}.tmp"));
    candle_core::safetensors::save(&tensors, tmp(PARAMS_FILE))?;
    candle_core::safetensors::save(&moments, tmp(OPTIMIZER_FILE))?;
    let json = serde_json::to_string_pretty(state).map_err(|e| TrainError::Checkpoint {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    std::fs::write(tmp(STATE_FILE), json).map_err(io(dir))?;
    for name in [PARAMS_FILE, OPTIMIZER_FILE, STATE_FILE] {
        let to = dir.join(name);
        std::fs::rename(tmp(name), &to).map_err(io(&to))?;
    }
    Ok(())
}

/// Whether `dir` holds a complete training checkpoint.
pub fn exists(dir: &Path) -> bool {
    [PARAMS_FILE, OPTIMIZER_FILE, STATE_FILE]
        .iter()
        .all(|f| dir.join(f).is_file())
}

/// Restores parameters and optimiser moments from `dir` and returns the loop state.
pub fn load(dir: &Path, params: &[Param], opt: &mut AdamW) -> Result<LoopState, TrainError> {
    let bad = |path: PathBuf, message: String| TrainError::Checkpoint { path, message };
    let state_path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
    let state: LoopState =
        serde_json::from_str(&text).map_err(|e| bad(state_path.clone(), e.to_string()))?;
    let params_path = dir.join(PARAMS_FILE);
    let saved = candle_core::safetensors::load(&params_path, &Device::Cpu)?;
    for p in params {
        let t = saved
            .get(&p.name)
            .ok_or_else(|| bad(params_path.clone(), format!("no tensor {}", p.name)))?;
        if t.dims() != p.var.dims() {
            return Err(bad(
                params_path.clone(),
                format!(
                    "{} has shape {:?}, the model {:?}",
                    p.name,
                    t.dims(),
                    p.var.dims()
                ),
            ));
        }
        p.var.set(&t.to_device(p.var.device())?)?;
    }
    let opt_path = dir.join(OPTIMIZER_FILE);
    let moments = candle_core::safetensors::load(&opt_path, &Device::Cpu)?;
    opt.restore(params, &moments, state.step)
        .map_err(|m| bad(opt_path, m))?;
    Ok(state)
}
