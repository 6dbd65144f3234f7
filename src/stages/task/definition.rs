//! One abstraction for every trainable task: a [`Task`] names its configuration type, its
//! metrics type and its headline metric, and says how it trains and evaluates a resolved
//! configuration; [`register`] turns it into the [`Trainable`] entry that
//! [`crate::stages::training::TASKS`] lists, so `zhishi train`, `zhishi eval` and
//! `zhishi compare` reach every task the same way (configuration resolved and checked once,
//! errors wrapped once, the report built once).
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::kind::{Split, TaskKind};
use super::resolve::{resolve_for, Purpose, Resolved, TaskConfig};
use super::trainable::{TaskError, TaskReport, Trainable};
use crate::config::ConfigError;
use crate::model::Precision;
use crate::train::TrainReport;

/// What a finished training run hands back to `zhishi train`.
#[derive(Debug, Clone)]
pub struct Trained {
    /// Dev metrics of the best model, as the task's metrics type serialises them.
    pub dev: serde_json::Value,
    /// The training loop's report (`None` for a task that fits without
    /// [`crate::train::Trainer`], e.g. KBQA's scorer).
    pub train: Option<TrainReport>,
    /// Where the best model was saved.
    pub model_dir: PathBuf,
    /// What else the task reports (data summaries).
    pub details: Option<serde_json::Value>,
}

/// A trainable task: how its TOML is resolved and checked, its metrics, how it trains and
/// evaluates.
pub trait Task: 'static {
    /// A configuration loaded, checked and with its paths resolved (for the tasks that
    /// fine-tune an encoder, [`Resolved`] of a [`TaskConfig`], from [`resolve_config`]).
    type Resolved;
    /// What evaluation computes (serialised into the report's top level).
    type Metrics: Serialize;
    /// The task's own failures; shared ones (configuration, files) convert into it.
    type Error: std::error::Error + Send + Sync + 'static + From<ConfigError>;

    /// The `[task] kind` it trains.
    const KIND: TaskKind;
    /// The headline metric's name in [`Task::Metrics`] (`f1`, `accuracy`, ...), which
    /// training selects the best model by.
    const METRIC: &'static str;

    /// The headline metric of a run of `resolved` (by default [`Task::METRIC`]; a task whose
    /// metric depends on its configuration, as distillation's on the teacher, says so).
    fn metric(resolved: &Self::Resolved) -> &'static str {
        let _ = resolved;
        Self::METRIC
    }

    /// Loads and checks the TOML at `path` with `--set` `overrides` for `purpose`: every
    /// key, range and path, before any data is read or model built.
    fn resolve(
        path: &Path,
        overrides: &[String],
        purpose: Purpose,
    ) -> Result<Self::Resolved, Self::Error>;

    /// Trains the model `resolved` describes.
    fn train(resolved: Self::Resolved) -> Result<Trained, Self::Error>;

    /// Evaluates the trained model of `resolved` on `split`, its dense layers at
    /// `precision`.
    fn evaluate(
        resolved: Self::Resolved,
        split: Split,
        precision: Precision,
    ) -> Result<Self::Metrics, Self::Error>;
}

/// A task's TOML file with its `--set` overrides, checked by the task's own resolution (for
/// the tasks whose run resolves its configuration itself: pretraining, distillation).
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// The TOML file.
    pub path: PathBuf,
    /// The `--set` overrides.
    pub overrides: Vec<String>,
}

impl ConfigFile {
    /// The file `path` with `overrides`.
    pub fn new(path: &Path, overrides: &[String]) -> Self {
        Self {
            path: path.to_path_buf(),
            overrides: overrides.to_vec(),
        }
    }
}

/// The shared resolution of an encoder-fine-tuning task's configuration `C` (see
/// [`resolve_for`]), its errors in the task's type.
pub fn resolve_config<C: TaskConfig, E: From<ConfigError>>(
    path: &Path,
    overrides: &[String],
    purpose: Purpose,
) -> Result<Resolved<C>, E> {
    Ok(resolve_for::<C>(path, overrides, purpose)?)
}

/// The kind of task `T`.
pub const fn kind_of<T: Task>() -> TaskKind {
    T::KIND
}

/// The registry entry of `T` (`pub static TASK: Trainable = register::<MyTask>();`).
pub const fn register<T: Task>() -> Trainable {
    Trainable {
        kind: kind_of::<T>(),
        check: check_entry::<T>,
        train: train_entry::<T>,
        evaluate: evaluate_entry::<T>,
    }
}

/// Loads and checks the configuration at `path` for `purpose` ([`Task::resolve`]).
pub fn resolve_task<T: Task>(
    path: &Path,
    overrides: &[String],
    purpose: Purpose,
) -> Result<T::Resolved, T::Error> {
    T::resolve(path, overrides, purpose)
}

fn fail<T: Task>(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> TaskError {
    TaskError::new(kind_of::<T>(), e)
}

fn check_entry<T: Task>(path: &Path, overrides: &[String]) -> Result<(), TaskError> {
    resolve_task::<T>(path, overrides, Purpose::Train)
        .map(drop)
        .map_err(fail::<T>)
}

fn train_entry<T: Task>(path: &Path, overrides: &[String]) -> Result<TaskReport, TaskError> {
    let resolved = resolve_task::<T>(path, overrides, Purpose::Train).map_err(fail::<T>)?;
    let metric = T::metric(&resolved);
    let trained = T::train(resolved).map_err(fail::<T>)?;
    let mut report = TaskReport::new(kind_of::<T>(), Split::Dev, metric, trained.dev);
    report.train = trained.train;
    report.model_dir = Some(trained.model_dir);
    report.details = trained.details;
    Ok(report)
}

fn evaluate_entry<T: Task>(
    path: &Path,
    overrides: &[String],
    split: Split,
    precision: Precision,
) -> Result<TaskReport, TaskError> {
    let resolved = resolve_task::<T>(path, overrides, Purpose::Evaluate).map_err(fail::<T>)?;
    let metric = T::metric(&resolved);
    let metrics = T::evaluate(resolved, split, precision).map_err(fail::<T>)?;
    let metrics = serde_json::to_value(&metrics).map_err(fail::<T>)?;
    Ok(TaskReport::new(kind_of::<T>(), split, metric, metrics))
}
