//! Weights saved quantised (`zhishi quantize`): the int8 form the inference kernels run
//! ([`super::kernels::int8`]), written once so a model directory is smaller and loads without
//! quantising.
//!
//! Format: an ordinary safetensors file in which every dense layer of the encoder that the
//! int8 path quantises (see [`is_quantizable`]) is stored as
//! - `<layer>.weight`: `I8 [out, k]`, the integers `q` in `-63..=63` (PyTorch's layout), and
//! - `<layer>.weight_scale`: `F32 [out]`, the per-output-channel scales,
//!
//! so that `weight[n, k] = weight_scale[n] * q[n, k]`; every other tensor (embeddings,
//! LayerNorms, biases, task heads) is kept byte for byte. The header's metadata carries
//! [`FORMAT_KEY`]. Reading ([`read`]) gives the dequantised f32 weight together with its
//! `weight_scale`, which [`super::linear::Linear`] keeps: at `int8` precision the kernel
//! packs exactly the saved integers and scales (outputs are bit-identical to quantising the
//! original f32 model at load), at `f32`/`bf16` the layer multiplies the dequantised weight.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use super::kernels::int8::{PackedInt8, W_MAX};
use super::linear::SCALE_NAME;
use super::load::canonical_name;
use super::ModelError;

/// Header metadata key naming the quantisation of a file written by [`quantize_file`].
pub const FORMAT_KEY: &str = "zhishi.quantization";

/// The value of [`FORMAT_KEY`]: symmetric per-output-channel 7-bit integers in i8.
pub const FORMAT: &str =
    "int8 per-channel symmetric, q in -63..=63, weight = weight_scale[n] * q[n, k]";

/// The dense layers (below `encoder.layer.<n>.`) that the int8 inference path quantises:
/// BERT's attention projections, attention output, intermediate and output, and ERNIE-THU's
/// entity-side counterparts.
const DENSE_LAYERS: [&str; 10] = [
    "attention.self.query",
    "attention.self.key",
    "attention.self.value",
    "attention.output.dense",
    "intermediate.dense",
    "output.dense",
    "attention.self_ent.query",
    "attention.self_ent.key",
    "attention.self_ent.value",
    "attention.output_ent.dense",
];

/// ERNIE-THU's entity-side dense layers that are not named like BERT's.
const ENTITY_DENSE_LAYERS: [&str; 2] = ["intermediate.dense_ent", "output.dense_ent"];

/// Whether a tensor (any prefix such as `bert.`) is the weight of a dense layer that runs the
/// int8 kernel: `encoder.layer.<n>.<layer>.weight` for the layers in [`DENSE_LAYERS`].
pub fn is_quantizable(name: &str) -> bool {
    let name = canonical_name(name);
    let Some(at) = name.find("encoder.layer.") else {
        return false;
    };
    let rest = &name[at + "encoder.layer.".len()..];
    let Some((index, layer)) = rest.split_once('.') else {
        return false;
    };
    let Some(layer) = layer.strip_suffix(".weight") else {
        return false;
    };
    index.parse::<usize>().is_ok()
        && (DENSE_LAYERS.contains(&layer) || ENTITY_DENSE_LAYERS.contains(&layer))
}

/// What [`quantize_file`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct QuantizedFile {
    /// Tensors stored as int8 (each with its scales).
    pub quantized_tensors: usize,
    /// Tensors kept as they were.
    pub kept_tensors: usize,
    /// Size of the source file.
    pub bytes_before: u64,
    /// Size of the written file.
    pub bytes_after: u64,
}

/// What [`quantize_dir`] did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct QuantizedDir {
    /// Weight files quantised, relative to the directory, with what was done to each.
    pub files: Vec<(PathBuf, QuantizedFile)>,
    /// Other files copied unchanged.
    pub copied_files: usize,
    /// Total size of the source directory's files.
    pub bytes_before: u64,
    /// Total size of the written directory's files.
    pub bytes_after: u64,
}

/// Copies the model directory `src` (any depth: a stage model's `encoder/` too) to `dst`
/// with every safetensors file that holds dense-layer weights quantised by
/// [`quantize_file`]; other files are copied as they are. `dst` must not exist or be empty;
/// it is filled under a temporary name and renamed when complete, so a failed run leaves
/// nothing half-written. A directory with nothing to quantise (or already quantised) is
/// refused.
pub fn quantize_dir(src: &Path, dst: &Path) -> Result<QuantizedDir, ModelError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { path, source }
    };
    if !src.is_dir() {
        return Err(ModelError::MissingFile {
            dir: src.to_path_buf(),
            what: "model directory".into(),
        });
    }
    let mut plan = crate::files::Plan::new();
    plan.read("--model", src).write("--output", dst);
    plan.check()?;
    let _lock = crate::files::DirLock::acquire_sibling(dst)?;
    if dst.exists() && std::fs::read_dir(dst).map_err(io(dst))?.next().is_some() {
        return Err(bad(dst, "output directory", "exists and is not empty"));
    }
    let staged = crate::files::StagedDir::new(dst)?;
    let report = copy_quantized(src, staged.path(), Path::new(""))?;
    if report.files.is_empty() {
        return Err(bad(
            src,
            "model directory",
            "has no safetensors file with dense-layer weights to quantise",
        ));
    }
    staged.commit_new()?;
    Ok(report)
}

/// [`quantize_dir`]'s walk: `src/rel` into `dst/rel`.
fn copy_quantized(src: &Path, dst: &Path, rel: &Path) -> Result<QuantizedDir, ModelError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ModelError::Io { path, source }
    };
    let from = src.join(rel);
    let to = dst.join(rel);
    std::fs::create_dir_all(&to).map_err(io(&to))?;
    let mut entries: Vec<_> = std::fs::read_dir(&from)
        .map_err(io(&from))?
        .collect::<Result<_, _>>()
        .map_err(io(&from))?;
    entries.sort_by_key(|e| e.file_name());
    let mut report = QuantizedDir::default();
    for entry in entries {
        let rel = rel.join(entry.file_name());
        let (path, out) = (src.join(&rel), dst.join(&rel));
        let meta = std::fs::metadata(&path).map_err(io(&path))?;
        if meta.is_dir() {
            let sub = copy_quantized(src, dst, &rel)?;
            report.files.extend(sub.files);
            report.copied_files += sub.copied_files;
            report.bytes_before += sub.bytes_before;
            report.bytes_after += sub.bytes_after;
        } else if path.extension().is_some_and(|e| e == "safetensors")
            && header(&path).map(|h| h.quantized || h.quantizable)?
        {
            let file = quantize_file(&path, &out)?;
            report.bytes_before += file.bytes_before;
            report.bytes_after += file.bytes_after;
            report.files.push((rel, file));
        } else if is_superseded_weights(&path) {
            // An f32 copy beside the quantised safetensors would be loaded by tools that
            // prefer `.bin`, at f32: the quantised directory keeps one set of weights.
            tracing::info!(file = %path.display(), "not copied: model.safetensors holds the weights");
        } else {
            std::fs::copy(&path, &out).map_err(io(&path))?;
            report.copied_files += 1;
            report.bytes_before += meta.len();
            report.bytes_after += meta.len();
        }
    }
    Ok(report)
}

/// Whether `path` is a PyTorch weights file with a `model.safetensors` beside it (which the
/// quantised directory carries instead).
fn is_superseded_weights(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n == "pytorch_model.bin")
        && path.with_file_name("model.safetensors").is_file()
}

/// Whether the safetensors file at `path` holds int8 tensors (reads the header only).
pub fn is_quantized(path: &Path) -> Result<bool, ModelError> {
    Ok(header(path)?.quantized)
}

/// Whether the safetensors file at `path` has a tensor [`quantize_file`] would quantise (a
/// floating-point dense-layer weight; reads the header only).
pub fn has_quantizable(path: &Path) -> Result<bool, ModelError> {
    Ok(header(path)?.quantizable)
}

/// What a safetensors header says about quantisation.
struct Header {
    /// It holds int8 tensors.
    quantized: bool,
    /// It holds a floating-point dense-layer weight.
    quantizable: bool,
}

/// Reads the header of the safetensors file at `path` (one map, one parse).
fn header(path: &Path) -> Result<Header, ModelError> {
    let bytes = map(path)?;
    let (_, meta) = SafeTensors::read_metadata(&bytes).map_err(|e| format_error(path, "", e))?;
    let tensors = meta.tensors();
    Ok(Header {
        quantized: tensors.values().any(|info| info.dtype == Dtype::I8),
        quantizable: tensors.iter().any(|(name, info)| {
            is_float(info.dtype) && info.shape.len() == 2 && is_quantizable(name)
        }),
    })
}

/// The floating-point dtypes a weight to quantise may have (widened to f32 first).
fn is_float(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::F16 | Dtype::BF16 | Dtype::F32 | Dtype::F64)
}

/// Writes `src`'s tensors to `dst` with every floating-point (f16, bf16, f32, f64) dense-layer
/// weight quantised ([`FORMAT`]);
/// the file appears at `dst` only when complete. A file already quantised is refused.
pub fn quantize_file(src: &Path, dst: &Path) -> Result<QuantizedFile, ModelError> {
    let bytes = map(src)?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| format_error(src, "", e))?;
    let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut kept: Vec<(String, TensorView)> = Vec::new();
    let mut report = QuantizedFile {
        bytes_before: bytes.len() as u64,
        ..QuantizedFile::default()
    };
    for (name, view) in file.tensors() {
        if view.dtype() == Dtype::I8 {
            return Err(bad(src, &name, "is int8 already: the file is quantised"));
        }
        let shape = view.shape().to_vec();
        if is_float(view.dtype()) && shape.len() == 2 && is_quantizable(&name) {
            let [out, k] = [shape[0], shape[1]];
            if out == 0 || k == 0 {
                return Err(bad(src, &name, "is empty"));
            }
            // As loading does: the weight in f32 (an f16/bf16 checkpoint widened exactly).
            let dtype = candle_dtype(view.dtype()).unwrap_or(DType::F32);
            let values: Vec<f32> =
                Tensor::from_raw_buffer(view.data(), dtype, &shape, &Device::Cpu)?
                    .to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1()?;
            let packed = PackedInt8::pack(&values, out);
            let q: Vec<u8> = packed.unpacked().iter().map(|&v| v as u8).collect();
            let scales: Vec<u8> = packed
                .scales()
                .iter()
                .flat_map(|s| s.to_le_bytes())
                .collect();
            owned.push((name.clone(), Dtype::I8, shape, q));
            owned.push((format!("{name}_scale"), Dtype::F32, vec![out], scales));
            report.quantized_tensors += 1;
        } else {
            kept.push((name, view));
            report.kept_tensors += 1;
        }
    }
    let mut views = kept;
    for (name, dtype, shape, data) in &owned {
        let view =
            TensorView::new(*dtype, shape.clone(), data).map_err(|e| format_error(dst, name, e))?;
        views.push((name.clone(), view));
    }
    let metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (FORMAT_KEY.to_string(), FORMAT.to_string()),
    ]);
    let tmp = dst.with_extension("safetensors.tmp");
    safetensors::serialize_to_file(views, &Some(metadata), &tmp)
        .map_err(|e| format_error(dst, "", e))?;
    std::fs::rename(&tmp, dst).map_err(|source| ModelError::Io {
        path: dst.to_path_buf(),
        source,
    })?;
    report.bytes_after = std::fs::metadata(dst)
        .map_err(|source| ModelError::Io {
            path: dst.to_path_buf(),
            source,
        })?
        .len();
    Ok(report)
}

/// Every tensor of a safetensors file on the CPU; an int8 weight comes back dequantised to
/// f32 (`weight_scale[n] * q[n, k]`) beside its `weight_scale`, after checking that each has
/// the other, the shapes agree and every integer is in `-63..=63`. A file without int8
/// tensors is read as candle reads it.
pub fn read(path: &Path) -> Result<HashMap<String, Tensor>, ModelError> {
    if !is_quantized(path)? {
        return candle_core::safetensors::load(path, &Device::Cpu).map_err(|source| {
            ModelError::Weights {
                path: path.to_path_buf(),
                source,
            }
        });
    }
    read_quantized(path)
}

/// [`read`] of a file known to hold int8 tensors.
fn read_quantized(path: &Path) -> Result<HashMap<String, Tensor>, ModelError> {
    let bytes = map(path)?;
    let file = SafeTensors::deserialize(&bytes).map_err(|e| format_error(path, "", e))?;
    let mut out = HashMap::new();
    for (name, view) in file.tensors() {
        let tensor = match view.dtype() {
            Dtype::I8 => dequantize(path, &file, &name, &view)?,
            dtype => {
                if name.ends_with(SCALE_NAME) {
                    let weight = name.trim_end_matches("_scale");
                    let paired = file.tensor(weight).is_ok_and(|w| w.dtype() == Dtype::I8);
                    if !paired {
                        return Err(bad(path, &name, &format!("has no int8 {weight} beside it")));
                    }
                }
                let dtype = candle_dtype(dtype).ok_or_else(|| {
                    bad(
                        path,
                        &name,
                        &format!("has dtype {dtype:?}, which is not supported"),
                    )
                })?;
                Tensor::from_raw_buffer(view.data(), dtype, view.shape(), &Device::Cpu)?
            }
        };
        out.insert(name, tensor);
    }
    Ok(out)
}

/// A [`VarBuilder`] over a weights file: memory-mapped when it is plain, read through
/// [`read`] when it is quantised.
pub fn var_builder(path: &Path, device: &Device) -> Result<VarBuilder<'static>, ModelError> {
    if is_quantized(path)? {
        let tensors = read_quantized(path)?
            .into_iter()
            .map(|(k, t)| Ok((k, t.to_device(device)?)))
            .collect::<candle_core::Result<HashMap<_, _>>>()?;
        Ok(VarBuilder::from_tensors(tensors, DType::F32, device))
    } else {
        // SAFETY: the file is only read, and not modified while the model lives.
        unsafe { VarBuilder::from_mmaped_safetensors(&[path], DType::F32, device) }.map_err(
            |source| ModelError::Weights {
                path: path.to_path_buf(),
                source,
            },
        )
    }
}

/// The f32 weight of the int8 tensor `name`, checked against its `weight_scale`.
fn dequantize(
    path: &Path,
    file: &SafeTensors,
    name: &str,
    view: &TensorView,
) -> Result<Tensor, ModelError> {
    let &[out, k] = view.shape() else {
        return Err(bad(path, name, "is int8 but not a matrix [out, k]"));
    };
    let scale_name = format!("{name}_scale");
    let scales = file
        .tensor(&scale_name)
        .map_err(|_| bad(path, name, &format!("is int8 but {scale_name} is missing")))?;
    if scales.dtype() != Dtype::F32 || scales.shape() != [out] {
        return Err(bad(
            path,
            &scale_name,
            &format!(
                "is {:?} {:?}, expected F32 [{out}]",
                scales.dtype(),
                scales.shape()
            ),
        ));
    }
    let scales: Vec<f32> = scales
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    if let Some(s) = scales.iter().find(|s| !s.is_finite() || **s <= 0.0) {
        return Err(bad(
            path,
            &scale_name,
            &format!("holds the scale {s}; scales are > 0"),
        ));
    }
    let limit = W_MAX as i8;
    let mut values = Vec::with_capacity(out * k);
    for (row, &scale) in view.data().chunks_exact(k).zip(&scales) {
        for &b in row {
            let q = b as i8;
            if !(-limit..=limit).contains(&q) {
                return Err(bad(
                    path,
                    name,
                    &format!("holds {q}, outside -{limit}..={limit}"),
                ));
            }
            values.push(f32::from(q) * scale);
        }
    }
    Ok(Tensor::from_vec(values, (out, k), &Device::Cpu)?)
}

/// candle's dtype for a safetensors dtype, where candle has one.
fn candle_dtype(dtype: Dtype) -> Option<DType> {
    Some(match dtype {
        Dtype::U8 => DType::U8,
        Dtype::U32 => DType::U32,
        Dtype::I16 => DType::I16,
        Dtype::I32 => DType::I32,
        Dtype::I64 => DType::I64,
        Dtype::BF16 => DType::BF16,
        Dtype::F16 => DType::F16,
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        _ => return None,
    })
}

/// The file memory-mapped for reading.
fn map(path: &Path) -> Result<memmap2::Mmap, ModelError> {
    let io = |source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    // SAFETY: the file is only read while the map lives.
    unsafe { memmap2::Mmap::map(&file) }.map_err(io)
}

fn bad(path: &Path, name: &str, message: &str) -> ModelError {
    ModelError::Quantized {
        file: path.to_path_buf(),
        name: name.to_string(),
        message: message.to_string(),
    }
}

fn format_error(path: &Path, name: &str, e: safetensors::SafeTensorError) -> ModelError {
    ModelError::Quantized {
        file: PathBuf::from(path),
        name: if name.is_empty() { "file" } else { name }.to_string(),
        message: format!("is not a valid safetensors file: {e}"),
    }
}

#[cfg(test)]
mod tests;
