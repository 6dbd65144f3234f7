//! A task network's parameters at the start of training: the encoder's from a pretrained
//! checkpoint, the head's drawn from the run's seed; and which of them the optimiser updates.
use std::path::Path;

use candle_core::{DType, Device, Var};
use candle_nn::VarMap;

use crate::model::load::{
    expected_tensors, find_weights, initial_tensor, read_checkpoint, select_tensors,
};
use crate::model::walk::ernie_only_variables;
use crate::model::Rng;
use crate::model::{BertConfig, ModelError};
use crate::train::Param;

/// Fills the encoder variables of `varmap` (created by the network's `load`) from the
/// checkpoint in `encoder_dir`, and starts every other variable like BERT's heads:
/// `normal(0, 0.02)` for the `.weight`s of names under `random_prefixes` and of ERNIE's
/// entity-side (aggregator) weights, ones for LayerNorm scales, zeros otherwise, from `seed`
/// (candle's own initialisers are not seeded, so a run would not be reproducible).
pub fn pretrained_varmap(
    varmap: &VarMap,
    encoder_dir: &Path,
    cfg: &BertConfig,
    random_prefixes: &[&str],
    seed: u64,
    device: &Device,
) -> Result<(), ModelError> {
    let weights = find_weights(encoder_dir)?;
    let tensors = select_tensors(
        read_checkpoint(&weights)?,
        &expected_tensors(cfg)?,
        &weights,
    )?;
    let mut varmap_mut = varmap.clone();
    let loaded: Vec<String> = tensors.keys().cloned().collect();
    for (name, t) in tensors {
        varmap_mut.set_one(&name, t.to_dtype(DType::F32)?)?;
    }
    let mut rng = Rng::new(seed);
    // A poisoned lock (a panic elsewhere) still holds every variable: never start from an
    // empty list, which would leave the head uninitialised.
    let mut fresh: Vec<(String, Var)> = varmap
        .data()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter(|(n, _)| !loaded.contains(n))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    fresh.sort_by(|a, b| a.0.cmp(&b.0));
    let entity_side: Vec<String> = ernie_only_variables(cfg)?
        .into_iter()
        .map(|t| t.0)
        .collect();
    for (name, var) in fresh {
        // Only `.weight`s are drawn: other fresh tensors (a CRF's transitions) start at zero.
        let random = name.ends_with(".weight")
            && (random_prefixes.iter().any(|p| name.starts_with(p)) || entity_side.contains(&name));
        var.set(&initial_tensor(
            &name,
            var.dims(),
            random,
            &mut rng,
            device,
        )?)?;
    }
    Ok(())
}

/// The trainable parameters in name order (deterministic): only those under `head_prefixes`
/// when the encoder is `freeze`d; a parameter under a prefix of `lr_scales` gets that multiple
/// of the learning rate.
pub fn trainable_params(
    varmap: &VarMap,
    freeze: bool,
    head_prefixes: &[&str],
    lr_scales: &[(&str, f64)],
) -> Vec<Param> {
    let vars = varmap
        .data()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    names
        .into_iter()
        .filter(|n| !freeze || head_prefixes.iter().any(|p| n.starts_with(p)))
        .map(|n| {
            let p = Param::new(n.clone(), vars[n].clone());
            match lr_scales.iter().find(|(prefix, _)| n.starts_with(prefix)) {
                Some((_, scale)) => p.with_lr_scale(*scale),
                None => p,
            }
        })
        .collect()
}
