//! The resumable training state in `OUTPUT/last/`: trainable parameters, optimiser moments and
//! the loop's position (`state.json`). The best model for inference is saved separately by
//! the task into `OUTPUT/best/`.
//!
//! The checkpoint is one directory, built beside `last/` and swapped in whole
//! ([`crate::files::StagedDir`]), so a kill leaves the previous checkpoint or the new one,
//! never a mix; each of its three files records the step it belongs to, and [`load`] refuses
//! pieces of different steps.
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::adamw::AdamW;
use super::param::Param;
use super::TrainError;
use crate::files::StagedDir;

/// Parameters file of a training checkpoint.
pub const PARAMS_FILE: &str = "params.safetensors";
/// Optimiser moments file of a training checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// Loop state file of a training checkpoint.
pub const STATE_FILE: &str = "state.json";
/// The safetensors metadata key of the parameters and optimiser files that records the
/// checkpoint's step.
pub const STEP_KEY: &str = "zhishi.checkpoint_step";

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

/// Writes parameters, optimiser and loop state as the checkpoint directory `dir`, whole: built
/// under a temporary sibling and swapped in, so an interrupted save leaves the old checkpoint.
pub fn save(
    dir: &Path,
    params: &[Param],
    opt: &AdamW,
    state: &LoopState,
) -> Result<(), TrainError> {
    let tensors: Vec<(String, Tensor)> = params
        .iter()
        .map(|p| (p.name.clone(), p.var.as_tensor().clone()))
        .collect();
    let moments = opt.state_tensors(params)?;
    let json = serde_json::to_string_pretty(state).map_err(|e| TrainError::Checkpoint {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let staged = StagedDir::new(dir)?;
    for (name, tensors) in [(PARAMS_FILE, &tensors), (OPTIMIZER_FILE, &moments)] {
        write_tensors(
            &staged.path().join(name),
            &dir.join(name),
            tensors,
            state.step,
        )?;
    }
    let state_path = staged.path().join(STATE_FILE);
    std::fs::write(&state_path, json).map_err(io(&dir.join(STATE_FILE)))?;
    staged.commit()?;
    Ok(())
}

/// Writes f32 `tensors` to the safetensors file `path` (the checkpoint file `shown` is built
/// there) with the checkpoint's `step` in its metadata.
fn write_tensors(
    path: &Path,
    shown: &Path,
    tensors: &[(String, Tensor)],
    step: usize,
) -> Result<(), TrainError> {
    let bad = |message: String| TrainError::Checkpoint {
        path: shown.to_path_buf(),
        message,
    };
    let mut data: Vec<(&str, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let values: Vec<f32> = t
            .to_dtype(candle_core::DType::F32)?
            .flatten_all()?
            .to_vec1()?;
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        data.push((name, t.dims().to_vec(), bytes));
    }
    let views = data
        .iter()
        .map(|(name, shape, bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|v| (name.to_string(), v))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let metadata = HashMap::from([(STEP_KEY.to_string(), step.to_string())]);
    safetensors::serialize_to_file(views, &Some(metadata), path).map_err(|e| match e {
        safetensors::SafeTensorError::IoError(io) => TrainError::Io {
            path: shown.to_path_buf(),
            source: io,
        },
        other => bad(format!("cannot write: {other}")),
    })
}

/// A safetensors header larger than this is not one zhishi wrote (it lists one entry per
/// tensor: a few MB at most).
const MAX_HEADER_BYTES: u64 = 100 << 20;

/// The step recorded in the metadata of a checkpoint's safetensors file.
fn recorded_step(path: &Path) -> Result<usize, TrainError> {
    let bad = |message: String| TrainError::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    // The header only: an 8-byte little-endian length, then that much JSON.
    let not_safetensors = || bad("cannot read: truncated or not a safetensors file".into());
    let mut file = std::fs::File::open(path).map_err(io(path))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).map_err(|_| not_safetensors())?;
    let len = u64::from_le_bytes(len);
    if len > MAX_HEADER_BYTES {
        return Err(not_safetensors());
    }
    let mut header = vec![0u8; len as usize];
    file.read_exact(&mut header)
        .map_err(|_| not_safetensors())?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|_| not_safetensors())?;
    let step = header["__metadata__"][STEP_KEY]
        .as_str()
        .ok_or_else(|| {
            bad(format!(
                "records no step ({STEP_KEY}): written by an older zhishi, its pieces cannot be checked to belong together; delete the checkpoint directory or set train.resume = false"
            ))
        })?;
    step.parse()
        .map_err(|_| bad(format!("{STEP_KEY} = {step:?} is not a step number")))
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
    let opt_path = dir.join(OPTIMIZER_FILE);
    let read = |path: &Path| {
        candle_core::safetensors::load(path, &Device::Cpu).map_err(|e| {
            bad(
                path.to_path_buf(),
                format!("cannot read (truncated or not a safetensors file): {e}"),
            )
        })
    };
    let saved = read(&params_path)?;
    let moments = read(&opt_path)?;
    for path in [&params_path, &opt_path] {
        let step = recorded_step(path)?;
        if step != state.step {
            return Err(bad(
                dir.to_path_buf(),
                format!(
                    "its pieces belong to different steps ({} is step {step}, {STATE_FILE} step {}); delete it or set train.resume = false",
                    path.file_name().unwrap_or_default().to_string_lossy(),
                    state.step
                ),
            ));
        }
    }
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
    opt.restore(params, &moments, state.step)
        .map_err(|m| bad(opt_path, m))?;
    Ok(state)
}
