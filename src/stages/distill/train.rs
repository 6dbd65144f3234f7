//! Distilling a trained model (the teacher) into a student with fewer layers through
//! [`crate::train::Trainer`]: the teacher's task (NER, [`super::ner`]; classification,
//! [`super::classify`]) decides how examples are read and featurized and what the soft labels
//! are; every batch runs through the teacher (forward only, no gradient) and the student, and
//! the student learns from the teacher's soft labels, the gold labels where there are some,
//! and optionally the teacher's hidden states and attention scores. What the two share lives
//! here: the loss weights, the knowledge check, the unlabelled text, the report and the task
//! registration.
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::config::{resolve, DistillTable, Resolved, TeacherKind};
use super::DistillError;
use crate::model::Precision;
use crate::stages::classify::ClassifyMetrics;
use crate::stages::ner::NerMetrics;
use crate::stages::task::{
    register, Annotator, KnowledgeRecord, Purpose, Split, Task, TaskKind, Trainable, Trained,
};
use crate::train::{TrainError, TrainReport};

/// What a distillation run trained on.
#[derive(Debug, Clone, Serialize)]
pub struct DistillData {
    /// The teacher layers the student kept, one per student layer.
    pub layers: Vec<usize>,
    /// Labelled training examples (sentences or texts).
    pub labelled: usize,
    /// Unlabelled examples (soft labels only).
    pub unlabelled: usize,
    /// Encoder inputs trained on (labelled and unlabelled; NER windows).
    pub windows: usize,
}

/// The outcome of `zhishi distill`.
#[derive(Debug, Clone)]
pub struct DistillReport {
    /// Dev metrics of the best student (as the teacher task's metrics serialise them).
    pub dev: serde_json::Value,
    /// Steps, throughput, early stopping.
    pub train: TrainReport,
    /// Where the best student was saved.
    pub model_dir: PathBuf,
    /// What it trained on.
    pub data: DistillData,
}

/// A student's metrics: those of the teacher's task.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum DistillMetrics {
    /// An NER student's.
    Ner(NerMetrics),
    /// A classification student's.
    Classify(ClassifyMetrics),
}

/// The weights of the loss terms.
#[derive(Debug, Clone, Copy)]
pub(super) struct Weights {
    /// Softmax (or sigmoid) temperature of the soft labels.
    pub temperature: f64,
    /// Weight of the hard-label loss (the soft-label loss gets `1 - alpha`).
    pub alpha: f64,
    /// Weight of the hidden-state MSE.
    pub hidden: f64,
    /// Weight of the attention-score MSE.
    pub attention: f64,
}

impl Weights {
    /// The weights `[distill]` sets.
    pub fn of(d: &DistillTable) -> Self {
        Self {
            temperature: d.temperature,
            alpha: d.alpha,
            hidden: d.hidden_loss,
            attention: d.attention_loss,
        }
    }

    /// Whether a loss needs every layer's states (the teacher and student run traced).
    pub fn traced(&self) -> bool {
        self.hidden > 0.0 || self.attention > 0.0
    }
}

/// The knowledge annotator of `[knowledge]`, checked to be the teacher's (`teacher`, its
/// recorded knowledge): the student's examples are linked exactly as the teacher's were.
pub(super) fn teacher_annotator(
    r: &Resolved,
    teacher: &KnowledgeRecord,
) -> Result<Option<Annotator>, DistillError> {
    let annotator = Annotator::from_table(&r.knowledge, None)?;
    match &annotator {
        Some(a) => a.record().same_as(teacher)?,
        None if teacher.mode.injects() => {
            return Err(r
                .source
                .error(
                    "knowledge.mode",
                    format!(
                        "the teacher was trained with knowledge (mode {}); set [knowledge] as its training did",
                        teacher.mode.name()
                    ),
                )
                .into())
        }
        None => {}
    }
    Ok(annotator)
}

/// Refuses an ERNIE teacher (entity fusion) in `dir`: its student would need the fusion
/// layers of the layers it drops.
pub(super) fn refuse_ernie(dir: &Path, teacher: &KnowledgeRecord) -> Result<(), DistillError> {
    if teacher.mode.fuses_entities() {
        return Err(DistillError::Teacher {
            path: dir.to_path_buf(),
            message: "ERNIE teachers (entity fusion) cannot be distilled".into(),
        });
    }
    Ok(())
}

/// The first `max` (0 = all) non-empty lines of the unlabelled text, with their line numbers.
pub(super) fn unlabelled_lines(
    path: &Path,
    max: usize,
) -> Result<Vec<(usize, String)>, DistillError> {
    let text = crate::textfile::read(path).map_err(|e| DistillError::Text(Box::new(e)))?;
    let lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let take = if max == 0 { usize::MAX } else { max };
    Ok(lines.take(take).map(|(n, l)| (n, l.to_string())).collect())
}

/// Distils the teacher a configuration names into its student; `overrides` are `--set`
/// values.
pub fn train_config(path: &Path, overrides: &[String]) -> Result<DistillReport, DistillError> {
    train_resolved(&resolve(path, overrides)?)
}

fn train_resolved(r: &Resolved) -> Result<DistillReport, DistillError> {
    let output = r.claim_output().map_err(TrainError::from)?;
    match r.teacher_kind {
        TeacherKind::Ner => super::ner::train(r, output),
        TeacherKind::Classify => super::classify::train(r, output),
    }
}

/// Evaluates the student of a configuration (`OUTPUT/best`) on `split` with its dense
/// layers at `precision`.
pub fn evaluate_config(
    path: &Path,
    overrides: &[String],
    split: Split,
    precision: Precision,
) -> Result<DistillMetrics, DistillError> {
    let r = super::config::resolve_for(path, overrides, Purpose::Evaluate)?;
    evaluate_resolved(&r, split, precision)
}

fn evaluate_resolved(
    r: &Resolved,
    split: Split,
    precision: Precision,
) -> Result<DistillMetrics, DistillError> {
    Ok(match r.teacher_kind {
        TeacherKind::Ner => DistillMetrics::Ner(super::ner::evaluate(r, split, precision)?),
        TeacherKind::Classify => {
            DistillMetrics::Classify(super::classify::evaluate(r, split, precision)?)
        }
    })
}

/// Distillation as a trainable task.
pub struct Distill;

/// Distillation in the trainable-task registry ([`crate::stages::training::TASKS`]).
pub static TASK: Trainable = register::<Distill>();

impl Task for Distill {
    type Resolved = Resolved;
    type Metrics = DistillMetrics;
    type Error = DistillError;
    const KIND: TaskKind = TaskKind::Distill;
    const METRIC: &'static str = "f1";

    fn metric(r: &Resolved) -> &'static str {
        r.teacher_kind.metric()
    }

    fn resolve(
        path: &Path,
        overrides: &[String],
        purpose: Purpose,
    ) -> Result<Resolved, DistillError> {
        Ok(super::config::resolve_for(path, overrides, purpose)?)
    }

    fn train(r: Resolved) -> Result<Trained, DistillError> {
        let report = train_resolved(&r)?;
        Ok(Trained {
            details: serde_json::to_value(&report.data).ok(),
            dev: report.dev,
            train: Some(report.train),
            model_dir: report.model_dir,
        })
    }

    fn evaluate(
        r: Resolved,
        split: Split,
        precision: Precision,
    ) -> Result<DistillMetrics, DistillError> {
        evaluate_resolved(&r, split, precision)
    }
}
