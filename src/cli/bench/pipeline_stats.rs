//! The summary of `zhishi bench run`: per arm and thread count the median round's times,
//! documents/s, characters/s and model tokens/s, the ratios against the references measured
//! in the same run, and how often an arm's entities equal zhishi f32's.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use zhishi::model::Precision;
use zhishi::stages::ner::model::{ModelMeta, META_FILE};

use super::encoder::median;

/// The reference every arm is compared with: PyTorch f32.
const PYTORCH: &str = "pytorch-f32";
/// The other reference: ONNX Runtime with int8 dynamic quantisation.
const ONNX: &str = "onnx-int8";
/// The arm agreement is measured against.
const BASELINE: &str = "zhishi-f32";

/// One side of the comparison.
#[derive(Debug, Clone)]
pub struct Arm {
    /// Its name in the results (`zhishi-int8`, `student`, `pytorch-f32`, ...).
    pub name: String,
    /// What runs.
    pub kind: ArmKind,
}

/// What an arm runs.
#[derive(Debug, Clone)]
pub enum ArmKind {
    /// The pipeline through `zhishi bench run-arm` with this model directory.
    Zhishi {
        /// Arithmetic of the model stage.
        precision: Precision,
        /// The NER model directory.
        model: PathBuf,
    },
    /// `benches/ner_reference.py --impl script_impl` on the dumped inputs.
    Reference {
        /// The script's `--impl`.
        script_impl: &'static str,
    },
}

impl Arm {
    /// A zhishi arm.
    pub fn zhishi(name: String, precision: Precision, model: &Path) -> Self {
        Self {
            name,
            kind: ArmKind::Zhishi {
                precision,
                model: model.to_path_buf(),
            },
        }
    }

    /// A reference arm.
    pub fn reference(name: &str, script_impl: &'static str) -> Self {
        Self {
            name: name.to_string(),
            kind: ArmKind::Reference { script_impl },
        }
    }
}

/// Every child's JSON by arm and thread count, in round order.
#[derive(Debug, Default)]
pub struct Samples {
    rows: Vec<((String, usize), Vec<Value>)>,
}

impl Samples {
    /// Records one child's output.
    pub fn push(&mut self, arm: &str, threads: usize, out: Value) {
        let key = (arm.to_string(), threads);
        match self.rows.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(out),
            None => self.rows.push((key, vec![out])),
        }
    }

    fn get(&self, arm: &str, threads: usize) -> &[Value] {
        self.rows
            .iter()
            .find(|((a, t), _)| a == arm && *t == threads)
            .map_or(&[], |(_, v)| v.as_slice())
    }
}

/// Median whole-run and model-stage seconds of one arm's rounds.
fn medians(samples: &[Value]) -> (Vec<f64>, f64, f64) {
    let seconds: Vec<f64> = samples.iter().map(|s| num(s, "seconds")).collect();
    let model: Vec<f64> = samples.iter().map(model_seconds).collect();
    (seconds.clone(), median(&seconds), median(&model))
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

/// The model stage's seconds of one sample: zhishi's `ner` stage, the reference's whole run.
fn model_seconds(v: &Value) -> f64 {
    v["stage_seconds"]["ner"]
        .as_f64()
        .unwrap_or_else(|| num(v, "seconds"))
}

/// One row per arm and thread count.
pub fn summarise(
    arms: &[Arm],
    threads: &[usize],
    samples: &Samples,
    prep: &Value,
    work: &Path,
    model: &Path,
) -> anyhow::Result<Vec<Value>> {
    let (docs, chars, tokens) = (
        num(prep, "docs"),
        num(prep, "chars"),
        num(prep, "model_tokens"),
    );
    let meta = read_meta(model)?;
    let mut results = Vec::new();
    for &t in threads {
        let baseline = read_entities(&work.join(format!("{BASELINE}-t{t}.entities.jsonl")))?;
        let reference_model = |name: &str| {
            let s = samples.get(name, t);
            (!s.is_empty()).then(|| {
                (
                    medians(s).2,
                    s.iter().map(model_seconds).collect::<Vec<_>>(),
                )
            })
        };
        let (torch, onnx) = (reference_model(PYTORCH), reference_model(ONNX));
        for arm in arms {
            let rounds = samples.get(&arm.name, t);
            if rounds.is_empty() {
                continue;
            }
            let (round_seconds, seconds, model_s) = medians(rounds);
            let model_rounds: Vec<f64> = rounds.iter().map(model_seconds).collect();
            let mut row = json!({
                "arm": arm.name, "threads": t, "rounds_seconds": round_seconds,
                "ner_rounds_seconds": model_rounds, "ner_seconds": model_s,
                "ner_docs_per_s": docs / model_s, "ner_chars_per_s": chars / model_s,
                "ner_tokens_per_s": tokens / model_s,
            });
            let entities = match &arm.kind {
                ArmKind::Zhishi { precision, model } => {
                    row["impl"] = json!("zhishi");
                    row["precision"] = json!(precision.to_string());
                    row["model"] = json!(model);
                    row["seconds"] = json!(seconds);
                    row["docs_per_s"] = json!(docs / seconds);
                    row["chars_per_s"] = json!(chars / seconds);
                    row["tokens_per_s"] = json!(tokens / seconds);
                    row["load_seconds"] = json!(median(
                        &rounds
                            .iter()
                            .map(|s| num(s, "load_seconds"))
                            .collect::<Vec<_>>()
                    ));
                    row["stage_seconds_last_round"] =
                        rounds[rounds.len() - 1]["stage_seconds"].clone();
                    let path = work.join(format!("{}-t{t}.entities.jsonl", arm.name));
                    read_entities(&path)?
                }
                ArmKind::Reference { script_impl } => {
                    let last = &rounds[rounds.len() - 1];
                    row["impl"] = json!(if *script_impl == "pytorch" {
                        "pytorch"
                    } else {
                        "onnxruntime"
                    });
                    row["precision"] = json!(if *script_impl == "pytorch" {
                        "f32"
                    } else {
                        "int8"
                    });
                    for key in [
                        "torch",
                        "onnxruntime",
                        "attn",
                        "quantization",
                        "padded_tokens",
                    ] {
                        if let Some(v) = last.get(key) {
                            row[key] = v.clone();
                        }
                    }
                    row["forward_seconds"] = json!(median(
                        &rounds
                            .iter()
                            .map(|s| num(s, "forward_seconds"))
                            .collect::<Vec<_>>()
                    ));
                    row["decode_seconds"] = json!(median(
                        &rounds
                            .iter()
                            .map(|s| num(s, "decode_seconds"))
                            .collect::<Vec<_>>()
                    ));
                    let path = work.join(format!("{}-t{t}.labels.jsonl", arm.name));
                    read_labels(&path, &meta)?
                }
            };
            for (key, reference) in [("pytorch_f32", &torch), ("onnx_int8", &onnx)] {
                let Some((median_s, by_round)) = reference else {
                    continue;
                };
                row[format!("speedup_vs_{key}")] = json!(median_s / model_s);
                if row.get("seconds").is_some() {
                    row[format!("speedup_vs_{key}_end_to_end")] = json!(median_s / seconds);
                }
                // Round by round (the same round's reference), robust to load that changes
                // between rounds; and their median.
                let ratios: Vec<f64> = by_round
                    .iter()
                    .zip(&model_rounds)
                    .map(|(r, a)| r / a)
                    .collect();
                row[format!("speedup_vs_{key}_median_of_rounds")] = json!(median(&ratios));
                row[format!("speedup_vs_{key}_by_round")] = json!(ratios);
            }
            row["agreement_with_zhishi_f32"] = json!(agreement(&baseline, &entities)?);
            results.push(row);
        }
    }
    Ok(results)
}

/// One document's entities: `(start, end, label)`.
pub type EntitySet = BTreeSet<(usize, usize, String)>;

/// The fraction of documents whose entity sets are identical.
pub fn agreement(a: &[EntitySet], b: &[EntitySet]) -> anyhow::Result<f64> {
    if a.len() != b.len() || a.is_empty() {
        bail!(
            "entity files cover {} and {} documents; expected the same, non-zero count",
            a.len(),
            b.len()
        );
    }
    let same = a.iter().zip(b).filter(|(x, y)| x == y).count();
    Ok(same as f64 / a.len() as f64)
}

fn read_meta(model: &Path) -> anyhow::Result<ModelMeta> {
    let path = model.join(META_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// A zhishi arm's entities: JSON lines of `[start, end, label]` lists.
pub fn read_entities(path: &Path) -> anyhow::Result<Vec<EntitySet>> {
    read_lines(path, |v: Vec<(usize, usize, String)>| {
        v.into_iter().collect()
    })
}

/// A reference's label ids per document, turned into spans by the model's label set.
fn read_labels(path: &Path, meta: &ModelMeta) -> anyhow::Result<Vec<EntitySet>> {
    let k = meta.labels.len() as u32;
    let sets = read_lines(path, |ids: Vec<u32>| ids)?;
    sets.into_iter()
        .map(|ids| {
            if ids.iter().any(|&i| i >= k) {
                bail!(
                    "{}: a label id beyond the model's {k} labels",
                    path.display()
                );
            }
            Ok(meta.labels.spans(&ids).into_iter().collect())
        })
        .collect()
}

fn read_lines<T: serde::de::DeserializeOwned, U>(
    path: &Path,
    f: impl Fn(T) -> U,
) -> anyhow::Result<Vec<U>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map(&f)
                .with_context(|| format!("{}:{}", path.display(), i + 1))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(spans: &[(usize, usize, &str)]) -> EntitySet {
        spans
            .iter()
            .map(|&(s, e, l)| (s, e, l.to_string()))
            .collect()
    }

    #[test]
    fn agreement_counts_identical_entity_sets() {
        let a = [set(&[(0, 2, "X")]), set(&[]), set(&[(1, 3, "Y")])];
        let b = [set(&[(0, 2, "X")]), set(&[]), set(&[(1, 3, "Z")])];
        assert!((agreement(&a, &b).unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert!(agreement(&a, &b[..2]).is_err());
    }
}
