//! "Does the KG help?": trains and evaluates one task configuration once per knowledge arm
//! (`knowledge.mode = plain`, `kbert`, `ernie`, ...) and seed, on the same data, through the
//! task registry ([`super::training::TASKS`]), and summarises the headline metric per arm: the
//! scores per seed, their mean and spread, and the gain of the mean over the `plain` arm's.
//!
//! Each run gets the configuration's own `--set` overrides plus `knowledge.mode=ARM`,
//! `train.seed=SEED` and `train.output_dir=OUT/compare/ARM-sSEED` (`OUT` the configuration's
//! `train.output_dir`), so runs never share a model directory. Every value is checked before
//! anything trains: each arm is a knowledge mode given once, there are at most
//! [`MAX_SEEDS`] seeds, and each arm's configuration passes the task's own check.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::task::{KnowledgeMode, Split, TaskError, TaskKind, TaskReport};
use super::training;
use crate::config::{load, ConfigError};
use crate::model::Precision;

/// The most seeds a comparison runs per arm.
pub const MAX_SEEDS: usize = 1000;

/// Why a comparison could not run.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    /// The configuration could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `[task] kind` names no registered task.
    #[error("{0}")]
    Kind(String),
    /// Nothing to compare.
    #[error("{0}")]
    Arms(String),
    /// `train.output_dir` could not be made absolute.
    #[error("train.output_dir {path}")]
    OutputDir {
        /// The directory as resolved against the configuration file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A run failed (the arm and seed say which).
    #[error("arm {arm}, seed {seed}")]
    Run {
        /// The arm.
        arm: String,
        /// The seed.
        seed: u64,
        /// What went wrong.
        source: TaskError,
    },
}

/// The part of a training file a comparison reads itself.
#[derive(Debug, Deserialize)]
struct Peek {
    task: PeekTask,
    train: PeekTrain,
}

#[derive(Debug, Deserialize)]
struct PeekTask {
    kind: String,
}

#[derive(Debug, Deserialize)]
struct PeekTrain {
    output_dir: PathBuf,
    #[serde(default)]
    seed: Option<u64>,
}

/// One training + evaluation run.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRun {
    /// The knowledge mode.
    pub arm: String,
    /// The training seed.
    pub seed: u64,
    /// The headline metric on the evaluated split.
    pub score: f64,
    /// The headline metric on dev after training (the best checkpoint's).
    pub dev_score: f64,
    /// Every metric of the evaluation.
    pub metrics: serde_json::Value,
    /// The run's output directory.
    pub output_dir: PathBuf,
}

/// One arm over its seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmSummary {
    /// The knowledge mode.
    pub arm: String,
    /// The score of each seed, in seed order.
    pub scores: Vec<f64>,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation (0 with one seed).
    pub std: f64,
    /// Their range, max - min.
    pub spread: f64,
    /// `mean` minus the `plain` arm's mean (`None` without a plain arm).
    pub gain_over_plain: Option<f64>,
}

/// The outcome of a comparison.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The task.
    pub task: TaskKind,
    /// The headline metric.
    pub metric: &'static str,
    /// The evaluated split.
    pub split: Split,
    /// The seeds, in order.
    pub seeds: Vec<u64>,
    /// One summary per arm, in the order asked.
    pub arms: Vec<ArmSummary>,
    /// Every run.
    pub runs: Vec<CompareRun>,
}

/// The summaries of `runs` per arm (in `arms` order).
pub fn summarise(arms: &[String], runs: &[CompareRun]) -> Vec<ArmSummary> {
    let mut out: Vec<ArmSummary> = arms
        .iter()
        .map(|arm| {
            let scores: Vec<f64> = runs
                .iter()
                .filter(|r| &r.arm == arm)
                .map(|r| r.score)
                .collect();
            let n = scores.len().max(1) as f64;
            let mean = scores.iter().sum::<f64>() / n;
            let var = if scores.len() > 1 {
                scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0)
            } else {
                0.0
            };
            let (lo, hi) = scores
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &s| {
                    (lo.min(s), hi.max(s))
                });
            ArmSummary {
                arm: arm.clone(),
                spread: if scores.is_empty() { 0.0 } else { hi - lo },
                scores,
                mean,
                std: var.sqrt(),
                gain_over_plain: None,
            }
        })
        .collect();
    if let Some(plain) = out.iter().find(|a| a.arm == "plain").map(|a| a.mean) {
        for a in &mut out {
            a.gain_over_plain = Some(a.mean - plain);
        }
    }
    out
}

/// The seeds of a comparison: `count` (1 to [`MAX_SEEDS`]) consecutive seeds from the
/// configuration's `train.seed` (42 when unset).
pub fn seeds(path: &Path, overrides: &[String], count: usize) -> Result<Vec<u64>, CompareError> {
    if !(1..=MAX_SEEDS).contains(&count) {
        return Err(CompareError::Arms(format!(
            "{count} seeds is out of range; expected 1 to {MAX_SEEDS}"
        )));
    }
    let first = load::<Peek>(path, overrides)?
        .value
        .train
        .seed
        .unwrap_or(42);
    Ok((0..count as u64).map(|i| first + i).collect())
}

/// Trains and evaluates (on `split`, dense layers at `precision`) the configuration `path`
/// (with `overrides`) once per arm and seed; `progress` is told of each finished run.
pub fn compare(
    path: &Path,
    overrides: &[String],
    arms: &[String],
    seeds: &[u64],
    split: Split,
    precision: Precision,
    progress: &mut dyn FnMut(&CompareRun),
) -> Result<Comparison, CompareError> {
    if arms.is_empty() || seeds.is_empty() {
        return Err(CompareError::Arms(
            "a comparison needs at least one arm and one seed".into(),
        ));
    }
    if seeds.len() > MAX_SEEDS {
        return Err(CompareError::Arms(format!(
            "{} seeds is out of range; expected 1 to {MAX_SEEDS}",
            seeds.len()
        )));
    }
    for (i, arm) in arms.iter().enumerate() {
        arm.parse::<KnowledgeMode>().map_err(CompareError::Arms)?;
        if arms[..i].contains(arm) {
            return Err(CompareError::Arms(format!(
                "arm {arm:?} is given twice; each knowledge mode is compared once"
            )));
        }
    }
    let loaded = load::<Peek>(path, overrides)?;
    let kind: TaskKind = loaded.value.task.kind.parse().map_err(CompareError::Kind)?;
    let task = training::find(kind)
        .ok_or_else(|| CompareError::Kind(format!("task {kind} is not trainable")))?;
    // Absolute: each arm's override is resolved against the file's directory again.
    let resolved = loaded.source.resolve(&loaded.value.train.output_dir);
    let root = std::path::absolute(&resolved)
        .map_err(|source| CompareError::OutputDir {
            path: resolved.clone(),
            source,
        })?
        .join("compare");
    let run_dir = |arm: &str, seed: u64| root.join(format!("{arm}-s{seed}"));
    let run_sets = |arm: &str, seed: u64| {
        let mut sets = overrides.to_vec();
        sets.extend([
            format!("knowledge.mode={arm}"),
            format!("train.seed={seed}"),
            format!("train.output_dir={}", run_dir(arm, seed).display()),
        ]);
        sets
    };
    // Every arm's configuration before any run: a bad arm must not cost the others' training.
    for arm in arms {
        (task.check)(path, &run_sets(arm, seeds[0])).map_err(|source| CompareError::Run {
            arm: arm.clone(),
            seed: seeds[0],
            source,
        })?;
    }
    let mut runs = Vec::new();
    let mut metric = "";
    for arm in arms {
        for &seed in seeds {
            let output_dir = run_dir(arm, seed);
            let sets = run_sets(arm, seed);
            let err = |source| CompareError::Run {
                arm: arm.clone(),
                seed,
                source,
            };
            let trained: TaskReport = (task.train)(path, &sets).map_err(err)?;
            let evaluated = (task.evaluate)(path, &sets, split, precision).map_err(err)?;
            metric = evaluated.metric;
            let run = CompareRun {
                arm: arm.clone(),
                seed,
                score: evaluated.score,
                dev_score: trained.score,
                metrics: evaluated.metrics,
                output_dir,
            };
            progress(&run);
            runs.push(run);
        }
    }
    Ok(Comparison {
        task: kind,
        metric,
        split,
        seeds: seeds.to_vec(),
        arms: summarise(arms, &runs),
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(arm: &str, seed: u64, score: f64) -> CompareRun {
        CompareRun {
            arm: arm.into(),
            seed,
            score,
            dev_score: 0.0,
            metrics: serde_json::Value::Null,
            output_dir: PathBuf::new(),
        }
    }

    #[test]
    fn arms_get_mean_spread_and_gain_over_plain() {
        let arms: Vec<String> = ["plain", "kbert"].map(String::from).to_vec();
        let runs = [
            run("plain", 1, 0.5),
            run("kbert", 1, 0.7),
            run("plain", 2, 0.6),
            run("kbert", 2, 0.6),
        ];
        let s = summarise(&arms, &runs);
        assert_eq!(s[0].scores, [0.5, 0.6]);
        assert!((s[0].mean - 0.55).abs() < 1e-12 && (s[1].mean - 0.65).abs() < 1e-12);
        assert!((s[0].spread - 0.1).abs() < 1e-12);
        assert!((s[0].std - 0.070_710_678).abs() < 1e-6);
        assert_eq!(s[0].gain_over_plain, Some(0.0));
        assert!((s[1].gain_over_plain.unwrap() - 0.1).abs() < 1e-12);
        let only = summarise(&arms[1..], &runs);
        assert_eq!(only[0].gain_over_plain, None);
    }
}
