//! The student: the teacher's network (NER or classification) with fewer layers, started from
//! the teacher. Its embeddings and head (classifier, CRF, pooler) are the teacher's; student
//! layer `i` is teacher layer `layers[i]` (`encoder.layer.{i}.*` ← `encoder.layer.{layers[i]}.*`).
//! Saved, it is a model directory of the teacher's task whose `config.json` says
//! `num_hidden_layers = layers.len()`.
use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::DistillError;
use crate::model::load::read_config;
use crate::model::{BertConfig, Kernels};

/// The teacher tensor a student parameter starts from: the same name, with a layer index
/// mapped through `layers`; `None` for a student layer `layers` has no entry for.
pub fn teacher_name(student: &str, layers: &[usize]) -> Option<String> {
    const PREFIX: &str = "encoder.layer.";
    let Some(rest) = student.strip_prefix(PREFIX) else {
        return Some(student.to_string());
    };
    let (index, tail) = rest.split_once('.')?;
    let teacher = layers.get(index.parse::<usize>().ok()?)?;
    Some(format!("{PREFIX}{teacher}.{tail}"))
}

/// The student's encoder configuration: the teacher's with `depth` layers.
pub fn student_config(teacher: &BertConfig, depth: usize) -> BertConfig {
    BertConfig {
        num_hidden_layers: depth,
        layer_types: None,
        ..teacher.clone()
    }
}

/// A trainable student network (differentiable kernels) built by `build` and its variables,
/// every one copied from the teacher directory `teacher_dir` (its `weights_file`).
pub fn student_network<N>(
    teacher_dir: &Path,
    weights_file: &str,
    layers: &[usize],
    device: &Device,
    build: impl FnOnce(VarBuilder, &BertConfig) -> candle_core::Result<N>,
) -> Result<(N, VarMap, BertConfig), DistillError> {
    let teacher_cfg = read_config(teacher_dir)?;
    let mut cfg = student_config(&teacher_cfg, layers.len());
    cfg.kernels = Kernels::Differentiable;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let network = build(vb, &cfg)?;
    let weights = teacher_dir.join(weights_file);
    let teacher: HashMap<String, Tensor> = crate::model::quantized::read(&weights)?;
    let vars = varmap.data().lock().map(|m| m.clone()).unwrap_or_default();
    for (name, var) in vars {
        let from = teacher_name(&name, layers)
            .and_then(|n| teacher.get(&n).map(|t| (n, t)))
            .ok_or_else(|| DistillError::Teacher {
                path: weights.clone(),
                message: format!("no tensor for the student's {name}"),
            })?;
        let (from_name, t) = from;
        if t.dims() != var.dims() {
            return Err(DistillError::Teacher {
                path: weights.clone(),
                message: format!(
                    "{from_name} is {:?}, the student's {name} {:?}",
                    t.dims(),
                    var.dims()
                ),
            });
        }
        var.set(&t.to_dtype(DType::F32)?.to_device(device)?)?;
    }
    Ok((network, varmap, cfg))
}

/// Writes the student's `config.json` into `dir`: the teacher's (every key kept) with
/// `num_hidden_layers = depth`.
pub fn write_student_config(
    teacher_dir: &Path,
    dir: &Path,
    depth: usize,
) -> Result<(), DistillError> {
    let from = teacher_dir.join("config.json");
    let text = std::fs::read_to_string(&from).map_err(|source| DistillError::Io {
        path: from.clone(),
        source,
    })?;
    let mut value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| DistillError::Teacher {
            path: from.clone(),
            message: e.to_string(),
        })?;
    value["num_hidden_layers"] = serde_json::Value::from(depth);
    let to = dir.join("config.json");
    let pretty = serde_json::to_string_pretty(&value).map_err(|e| DistillError::Teacher {
        path: from,
        message: e.to_string(),
    })?;
    std::fs::write(&to, pretty).map_err(|source| DistillError::Io { path: to, source })
}

#[cfg(test)]
mod tests {
    use super::teacher_name;

    #[test]
    fn student_layers_map_to_the_chosen_teacher_layers() {
        let layers = [1, 3];
        assert_eq!(
            teacher_name("encoder.layer.0.attention.self.query.weight", &layers).as_deref(),
            Some("encoder.layer.1.attention.self.query.weight")
        );
        assert_eq!(
            teacher_name("encoder.layer.1.output.dense.bias", &layers).as_deref(),
            Some("encoder.layer.3.output.dense.bias")
        );
        assert_eq!(
            teacher_name("embeddings.word_embeddings.weight", &layers).as_deref(),
            Some("embeddings.word_embeddings.weight")
        );
        assert_eq!(
            teacher_name("crf.transitions", &layers).as_deref(),
            Some("crf.transitions")
        );
        assert_eq!(
            teacher_name("encoder.layer.2.output.dense.bias", &layers),
            None
        );
    }
}
