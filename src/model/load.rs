//! Loading a Hugging Face BERT directory: `config.json` plus `model.safetensors` or
//! `pytorch_model.bin`, with or without the `bert.` prefix, checked tensor by tensor against
//! the shapes the config implies before anything is built.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use super::bert::BertModel;
use super::config::{BertConfig, Kernels};
use super::ernie::ErnieModel;
use super::walk::ernie_only_variables;
use super::ModelError;
use super::Rng;

/// Weight files looked for in a model directory, in order of preference.
pub const WEIGHT_FILES: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

/// Config files looked for in a model directory (ERNIE-THU names its own `ernie_config.json`).
pub const CONFIG_FILES: [&str; 2] = ["config.json", "ernie_config.json"];

/// The model directory's config file: the first of [`CONFIG_FILES`] present.
pub fn config_file(dir: &Path) -> Result<PathBuf, ModelError> {
    CONFIG_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| ModelError::MissingFile {
            dir: dir.to_path_buf(),
            what: CONFIG_FILES.join(" or "),
        })
}

/// Reads the model directory's config.
pub fn read_config(dir: &Path) -> Result<BertConfig, ModelError> {
    BertConfig::from_file(&config_file(dir)?)
}

/// Checks that a vocabulary whose ids run below `ids` (read from `vocab`) fits the embedding
/// table of `cfg`, the config of the model in `dir`. Called wherever a model and its
/// tokenizer are opened together: a larger vocabulary would fail every text holding one of
/// its extra tokens, document by document, with a bare "invalid index".
pub fn check_vocab_fits(
    dir: &Path,
    cfg: &BertConfig,
    vocab: &Path,
    ids: usize,
) -> Result<(), ModelError> {
    if ids <= cfg.vocab_size {
        return Ok(());
    }
    Err(ModelError::VocabTooLarge {
        vocab: vocab.to_path_buf(),
        ids,
        config: config_file(dir).unwrap_or_else(|_| dir.to_path_buf()),
        vocab_size: cfg.vocab_size,
    })
}

/// Checks that inputs of `max_len` tokens (the setting `what` asks for) fit the positions of
/// `cfg`, the config of the model in `dir`.
pub fn check_max_len(
    dir: &Path,
    cfg: &BertConfig,
    what: &str,
    max_len: usize,
) -> Result<(), ModelError> {
    if max_len <= cfg.max_position_embeddings {
        return Ok(());
    }
    Err(ModelError::TooLong {
        what: what.to_string(),
        max_len,
        config: config_file(dir).unwrap_or_else(|_| dir.to_path_buf()),
        positions: cfg.max_position_embeddings,
    })
}

/// Loads the BERT model in `dir` onto `device` in `dtype`, running `kernels`. ERNIE layer
/// types in the config are ignored here (see [`load_ernie`]).
pub fn load_bert(
    dir: &Path,
    device: &Device,
    dtype: DType,
    kernels: Kernels,
) -> Result<BertModel, ModelError> {
    let mut cfg = read_config(dir)?;
    cfg.kernels = kernels;
    cfg.layer_types = None;
    let weights = find_weights(dir)?;
    let tensors = select_tensors(
        read_checkpoint(&weights)?,
        &expected_tensors(&cfg)?,
        &weights,
    )?;
    let vb = var_builder(tensors, dtype, device)?;
    Ok(BertModel::load(vb, &cfg)?)
}

/// Loads an ERNIE-THU model from `dir`: the authors' own checkpoints load unchanged, and a
/// plain BERT checkpoint initialises the token encoder while the entity-side (aggregator)
/// weights it lacks start fresh (normal(0, `initializer_range` 0.02) weights, zero biases,
/// unit LayerNorms), drawn from a fixed seed so the same checkpoint always gives the same
/// model. Returns the model and how many tensors were initialised fresh.
pub fn load_ernie(
    dir: &Path,
    device: &Device,
    dtype: DType,
    kernels: Kernels,
) -> Result<(ErnieModel, usize), ModelError> {
    let mut cfg = read_config(dir)?;
    cfg.kernels = kernels;
    if cfg.albert.is_some() {
        return Err(ModelError::Config {
            path: config_file(dir)?,
            message: "an ALBERT model cannot be loaded as ERNIE-THU: its layers are shared, \
                      the aggregators need layers of their own (use a BERT checkpoint)"
                .into(),
        });
    }
    let weights = find_weights(dir)?;
    let mut tensors = canonicalize(read_checkpoint(&weights)?);
    let mut selected = take_expected(&mut tensors, &expected_tensors(&cfg)?, &weights)?;
    let mut fresh = 0;
    let mut rng = Rng::new(FRESH_SEED);
    for (name, shape) in ernie_only_variables(&cfg)? {
        let t = match tensors.remove(&name) {
            Some(t) => check_shape(t, &name, &shape, &weights)?,
            None => {
                fresh += 1;
                initial_tensor(&name, &shape, true, &mut rng, &Device::Cpu)?
            }
        };
        take_int8_scale(&mut tensors, &name, &shape, &weights, &mut selected)?;
        selected.insert(name, t);
    }
    let vb = var_builder(selected, dtype, device)?;
    Ok((ErnieModel::load(vb, &cfg)?, fresh))
}

/// A freshly initialised parameter, following BERT's `init_bert_weights`.
/// The one initialisation rule for a weight a checkpoint does not have (BERT's, as
/// `BertPreTrainedModel._init_weights` does it): biases zero, LayerNorm scales one, other
/// weights `normal(0, 0.02)` drawn from `rng` when `random`, else zero (heads that must start
/// silent).
pub fn initial_tensor(
    name: &str,
    shape: &[usize],
    random: bool,
    rng: &mut Rng,
    device: &Device,
) -> candle_core::Result<Tensor> {
    if name.ends_with(".bias") || name.ends_with(".beta") {
        Tensor::zeros(shape, DType::F32, device)
    } else if name.contains("LayerNorm") {
        Tensor::ones(shape, DType::F32, device)
    } else if random {
        let n = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|_| 0.02 * rng.normal()).collect();
        Tensor::from_vec(values, shape, device)
    } else {
        Tensor::zeros(shape, DType::F32, device)
    }
}

/// Seed of the weights [`load_ernie`] initialises fresh.
const FRESH_SEED: u64 = 0;

fn var_builder(
    tensors: HashMap<String, Tensor>,
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'static>, ModelError> {
    let tensors = tensors
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_dtype(dtype)?.to_device(device)?)))
        .collect::<Result<HashMap<_, _>, candle_core::Error>>()?;
    Ok(VarBuilder::from_tensors(tensors, dtype, device))
}

/// The first weight file of [`WEIGHT_FILES`] present in `dir`.
pub fn find_weights(dir: &Path) -> Result<PathBuf, ModelError> {
    WEIGHT_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| ModelError::MissingFile {
            dir: dir.to_path_buf(),
            what: WEIGHT_FILES.join(" or "),
        })
}

/// Reads an entity table: a safetensors file whose single tensor is `[entities, 100]`.
pub fn load_entity_table(path: &std::path::Path) -> Result<Tensor, ModelError> {
    let tensors = read_checkpoint(path)?;
    let mut it = tensors.into_values();
    let (Some(table), None) = (it.next(), it.next()) else {
        return Err(ModelError::Input(format!(
            "{}: an entity table must hold exactly one tensor",
            path.display()
        )));
    };
    match table.dims() {
        [_, super::ernie::ENTITY_DIM] => Ok(table.to_dtype(candle_core::DType::F32)?),
        found => Err(ModelError::Input(format!(
            "{}: entity table has shape {found:?}, expected [entities, {}]",
            path.display(),
            super::ernie::ENTITY_DIM
        ))),
    }
}

/// Reads every tensor of a `.safetensors` file (quantised ones dequantised, see
/// [`super::quantized::read`]) or a PyTorch pickle (`.bin`, `.pt`) to the CPU.
pub fn read_checkpoint(path: &Path) -> Result<HashMap<String, Tensor>, ModelError> {
    let wrap = |source| ModelError::Weights {
        path: path.to_path_buf(),
        source,
    };
    if !path.is_file() {
        return Err(ModelError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
        });
    }
    if path.extension().is_some_and(|e| e == "safetensors") {
        super::quantized::read(path)
    } else {
        Ok(candle_core::pickle::read_all(path)
            .map_err(wrap)?
            .into_iter()
            .collect())
    }
}

/// The canonical name of a checkpoint tensor: no `bert.` prefix, ALBERT's names mapped onto
/// BERT's ([`super::albert::bert_name`]), and the `gamma`/`beta` of old TensorFlow conversions
/// renamed to `weight`/`bias`.
pub fn canonical_name(name: &str) -> String {
    let name = name.strip_prefix("bert.").unwrap_or(name);
    let name = super::albert::bert_name(name);
    let name = name.as_ref();
    if let Some(stem) = name.strip_suffix(".gamma") {
        format!("{stem}.weight")
    } else if let Some(stem) = name.strip_suffix(".beta") {
        format!("{stem}.bias")
    } else {
        name.to_string()
    }
}

/// Every parameter a plain BERT of this config has, with its shape (canonical names), as
/// the network's load tree asks for them ([`super::walk`]). For an ALBERT the embedding tables
/// are `embedding_size` wide, `encoder.embedding_hidden_mapping_in` projects them, and only the
/// distinct (shared) layers are listed.
pub fn expected_tensors(cfg: &BertConfig) -> Result<Vec<(String, Vec<usize>)>, ModelError> {
    Ok(super::walk::bert_variables(cfg)?)
}

/// Renames the checkpoint's tensors canonically and keeps exactly the `expected` ones (and
/// the saved int8 scales of those that have them; buffers such as `embeddings.position_ids`,
/// the pooler and heads are dropped), failing on the first missing or mis-shaped tensor.
pub fn select_tensors(
    tensors: HashMap<String, Tensor>,
    expected: &[(String, Vec<usize>)],
    file: &Path,
) -> Result<HashMap<String, Tensor>, ModelError> {
    take_expected(&mut canonicalize(tensors), expected, file)
}

fn canonicalize(tensors: HashMap<String, Tensor>) -> HashMap<String, Tensor> {
    tensors
        .into_iter()
        .map(|(k, t)| (canonical_name(&k), t))
        .collect()
}

fn take_expected(
    by_name: &mut HashMap<String, Tensor>,
    expected: &[(String, Vec<usize>)],
    file: &Path,
) -> Result<HashMap<String, Tensor>, ModelError> {
    let mut out = HashMap::with_capacity(expected.len());
    for (name, shape) in expected {
        let t = by_name
            .remove(name)
            .ok_or_else(|| ModelError::MissingTensor {
                file: file.to_path_buf(),
                name: name.clone(),
                expected: shape.clone(),
            })?;
        out.insert(name.clone(), check_shape(t, name, shape, file)?);
        take_int8_scale(by_name, name, shape, file, &mut out)?;
    }
    Ok(out)
}

/// Moves the saved int8 scales of the weight `name` (`<name>_scale [out]`, see
/// [`super::quantized`]), if the checkpoint has them, from `by_name` into `out`, so the
/// layer runs the saved integers.
fn take_int8_scale(
    by_name: &mut HashMap<String, Tensor>,
    name: &str,
    shape: &[usize],
    file: &Path,
    out: &mut HashMap<String, Tensor>,
) -> Result<(), ModelError> {
    let scale = format!("{name}_scale");
    if let Some(s) = by_name.remove(&scale) {
        out.insert(scale.clone(), check_shape(s, &scale, &shape[..1], file)?);
    }
    Ok(())
}

fn check_shape(t: Tensor, name: &str, shape: &[usize], file: &Path) -> Result<Tensor, ModelError> {
    if t.dims() != shape {
        return Err(ModelError::ShapeMismatch {
            file: file.to_path_buf(),
            name: name.to_string(),
            expected: shape.to_vec(),
            found: t.dims().to_vec(),
        });
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_the_bert_prefix_and_old_layer_norm_names() {
        assert_eq!(
            canonical_name("bert.embeddings.LayerNorm.gamma"),
            "embeddings.LayerNorm.weight"
        );
        assert_eq!(
            canonical_name("encoder.layer.0.output.LayerNorm.beta"),
            "encoder.layer.0.output.LayerNorm.bias"
        );
        assert_eq!(
            canonical_name("cls.predictions.bias"),
            "cls.predictions.bias"
        );
    }

    #[test]
    fn a_tiny_config_expects_sixteen_tensors_per_layer() {
        let cfg = BertConfig {
            num_hidden_layers: 2,
            ..BertConfig::default()
        };
        assert_eq!(expected_tensors(&cfg).unwrap().len(), 5 + 2 * 16);
    }

    #[test]
    fn missing_and_misshaped_tensors_are_named() {
        let expected = vec![
            ("a.weight".to_string(), vec![2, 3]),
            ("b.weight".to_string(), vec![4]),
        ];
        let zeros = |s: &[usize]| Tensor::zeros(s, DType::F32, &Device::Cpu).unwrap();
        let file = Path::new("w.safetensors");

        let only_a = HashMap::from([("bert.a.weight".to_string(), zeros(&[2, 3]))]);
        let e = select_tensors(only_a, &expected, file).unwrap_err();
        assert_eq!(
            e.to_string(),
            "w.safetensors: missing tensor b.weight (expected shape [4])"
        );

        let wrong = HashMap::from([
            ("a.weight".to_string(), zeros(&[3, 2])),
            ("b.weight".to_string(), zeros(&[4])),
        ]);
        let e = select_tensors(wrong, &expected, file).unwrap_err();
        assert_eq!(
            e.to_string(),
            "w.safetensors: tensor a.weight has shape [3, 2], expected [2, 3]"
        );

        let extra = HashMap::from([
            ("a.weight".to_string(), zeros(&[2, 3])),
            ("b.weight".to_string(), zeros(&[4])),
            ("embeddings.position_ids".to_string(), zeros(&[1, 4])),
        ]);
        let kept = select_tensors(extra, &expected, file).unwrap();
        assert_eq!(kept.len(), 2);
    }
}
