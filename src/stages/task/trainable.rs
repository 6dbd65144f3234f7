//! What every trainable task shares: [`Trainable`] (how a task trains and evaluates from
//! its TOML file), one error type ([`TaskError`]) and one report shape ([`TaskReport`]) that
//! `zhishi train` and `zhishi eval` print. Each task declares its `TASK` in its own module;
//! [`crate::stages::training::TASKS`] lists them.
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::kind::{Split, TaskKind};
use crate::train::TrainReport;

/// Why training or evaluating a task failed: the task and its own error, kept as the
/// source (so the whole chain reaches the user).
#[derive(Debug, thiserror::Error)]
#[error("the {task} task")]
pub struct TaskError {
    /// The task.
    pub task: TaskKind,
    /// What went wrong.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

impl TaskError {
    /// `source` met by `task`.
    pub fn new(
        task: TaskKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            task,
            source: source.into(),
        }
    }
}

/// What `zhishi train` and `zhishi eval` print for every task.
#[derive(Debug, Clone)]
pub struct TaskReport {
    /// The task.
    pub task: TaskKind,
    /// The split the metrics are on (`dev` after training).
    pub split: Split,
    /// The name of the headline metric (`f1`, or `accuracy` for KBQA).
    pub metric: &'static str,
    /// Its value.
    pub score: f64,
    /// Every metric the task computes, as it serialises them.
    pub metrics: Value,
    /// The training loop's report (steps, throughput, `history`), after training.
    pub train: Option<TrainReport>,
    /// Where the trained model was saved, after training.
    pub model_dir: Option<PathBuf>,
    /// What else the task reports (data summaries, KBQA's epochs).
    pub details: Option<Value>,
    /// The configuration the task ran with (its TOML after `--set` overrides and `${VAR}`
    /// expansion), as JSON; filled in by `zhishi train` / `zhishi eval`.
    pub settings: Option<Value>,
}

impl TaskReport {
    /// A report of `metrics` (an object holding `metric`) of `task` on `split`.
    pub fn new(task: TaskKind, split: Split, metric: &'static str, metrics: Value) -> Self {
        Self {
            task,
            split,
            metric,
            score: metrics[metric].as_f64().unwrap_or(0.0),
            metrics,
            train: None,
            model_dir: None,
            details: None,
            settings: None,
        }
    }

    /// The one JSON shape: `task`, `split`, `metric`, `score`, then every metric at the top
    /// level (e.g. `f1`, `precision`, `recall`), then the training report's fields (`steps`,
    /// `best_step`, `tokens_per_s`, `dev_metric`, `history`, ...), `model_dir`, `details` and
    /// `settings`.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("task".into(), Value::from(self.task.name()));
        out.insert("split".into(), Value::from(self.split.name()));
        out.insert("metric".into(), Value::from(self.metric));
        out.insert("score".into(), Value::from(self.score));
        if let Value::Object(metrics) = &self.metrics {
            for (k, v) in metrics {
                out.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        if let Some(Value::Object(train)) = self
            .train
            .as_ref()
            .map(serde_json::to_value)
            .and_then(Result::ok)
        {
            for (k, v) in train {
                if k != "best_metrics" {
                    out.entry(k).or_insert(v);
                }
            }
        }
        if let Some(dir) = &self.model_dir {
            out.insert("model_dir".into(), Value::from(dir.display().to_string()));
        }
        if let Some(details) = &self.details {
            out.insert("details".into(), details.clone());
        }
        if let Some(settings) = &self.settings {
            out.insert("settings".into(), settings.clone());
        }
        Value::Object(out)
    }
}

/// Trains the task a TOML file describes; `overrides` are `--set` values.
pub type TrainFn = fn(&Path, &[String]) -> Result<TaskReport, TaskError>;
/// Checks a TOML file as training would read it (every key, range and path), without
/// reading data or building a model; `overrides` are `--set` values.
pub type CheckFn = fn(&Path, &[String]) -> Result<(), TaskError>;
/// Evaluates the model trained by a TOML file on a split, its dense layers at a precision.
pub type EvaluateFn =
    fn(&Path, &[String], Split, crate::model::Precision) -> Result<TaskReport, TaskError>;

/// A trainable task, declared in its stage's module.
pub struct Trainable {
    /// Which task.
    pub kind: TaskKind,
    /// The configuration check training starts with, alone (so `zhishi compare` can check
    /// every run before it trains any).
    pub check: CheckFn,
    /// Training.
    pub train: TrainFn,
    /// Evaluation.
    pub evaluate: EvaluateFn,
}
