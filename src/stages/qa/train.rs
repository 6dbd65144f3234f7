//! Training and evaluating a QA model from its TOML file: reads and checks the configuration,
//! reads the SQuAD files (reporting answers whose offsets are wrong), featurizes the windows,
//! creates the network from the pretrained encoder and runs [`crate::train::Trainer`], which
//! keeps the checkpoint with the best dev F1.
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_nn::VarMap;
use serde::Serialize;

use super::config::QaConfig;
use super::data::{read, DataSummary, QaRecord, QaSet};
use super::features::{Batch, Window};
use super::metrics::QaMetrics;
use super::model::{
    build_featurizer, ModelMeta, QaModel, META_FILE, TOKENIZER_FILES, TOML_FILE, WEIGHTS_FILE,
};
use super::network::QaNetwork;
use super::predict::{evaluate, featurize};
use super::QaError;
use crate::knowledge::Layout;
use crate::model::Dropout;
use crate::model::Precision;
use crate::stages::task::Purpose;
use crate::stages::task::{
    register, resolve_config, resolve_task, trainable_params, ModelDir, Split, Task, TaskKind,
    Trainable, Trained, TrainingVars,
};
use crate::train::{BatchLoss, Batching, Evaluation, TrainError, TrainReport, TrainTask, Trainer};

/// The outcome of `zhishi train` for QA.
#[derive(Debug, Clone, Serialize)]
pub struct QaTrainReport {
    /// Dev metrics of the best checkpoint (as [`QaMetrics`] serialises them).
    pub dev: serde_json::Value,
    /// Steps, throughput, history.
    pub train: TrainReport,
    /// What the training file held (questions, moved / unlocated answers).
    pub train_data: DataSummary,
    /// Training questions that are empty or have no located answer (not trained on).
    pub skipped_questions: usize,
    /// Training windows (several per long context).
    pub train_windows: usize,
    /// What the dev file held.
    pub dev_data: DataSummary,
    /// Where the best model was saved.
    pub model_dir: PathBuf,
}

/// A QA configuration with every path resolved and checked.
type Resolved = crate::stages::task::Resolved<QaConfig>;

/// Extractive QA as a trainable task.
pub struct Qa;

/// Extractive QA in the trainable-task registry ([`crate::stages::training::TASKS`]).
pub static TASK: Trainable = register::<Qa>();

impl Task for Qa {
    type Resolved = Resolved;
    type Metrics = QaMetrics;
    type Error = QaError;
    const KIND: TaskKind = TaskKind::Qa;
    const METRIC: &'static str = "f1";

    fn resolve(path: &Path, overrides: &[String], purpose: Purpose) -> Result<Resolved, QaError> {
        resolve_config(path, overrides, purpose)
    }

    fn train(r: Resolved) -> Result<Trained, QaError> {
        let r = train_resolved(r)?;
        Ok(Trained {
            details: Some(serde_json::json!({
                "train_data": r.train_data,
                "skipped_questions": r.skipped_questions,
                "train_windows": r.train_windows,
                "dev_data": r.dev_data,
            })),
            dev: r.dev,
            train: Some(r.train),
            model_dir: r.model_dir,
        })
    }

    fn evaluate(r: Resolved, split: Split, precision: Precision) -> Result<QaMetrics, QaError> {
        evaluate_resolved(r, split, precision)
    }
}

/// Everything one QA training run holds.
struct QaTask {
    network: QaNetwork,
    varmap: VarMap,
    meta: ModelMeta,
    encoder_dir: PathBuf,
    toml: String,
    train: Vec<Window>,
    dev: Vec<QaRecord>,
    dev_windows: Vec<Window>,
    device: Device,
}

impl TrainTask for QaTask {
    fn train_lengths(&self) -> Vec<usize> {
        self.train.iter().map(Window::len).collect()
    }

    /// Windows are always padded: they mostly fill `data.max_len`, so packing gains nothing
    /// (`train.batching = "packed"` is refused when the run is set up).
    fn batch_loss(
        &self,
        batch: &[usize],
        _layout: Layout,
        dropout: &Dropout,
    ) -> Result<BatchLoss, TrainError> {
        let windows: Vec<&Window> = batch.iter().map(|&i| &self.train[i]).collect();
        let batching_started = std::time::Instant::now();
        let b = Batch::new(&windows, &self.device)?;
        let batching_seconds = batching_started.elapsed().as_secs_f64();
        Ok(BatchLoss {
            loss: self.network.loss(&b, dropout)?,
            tokens: b.input.tokens,
            padded_tokens: b.input.padded_tokens,
            batching_seconds,
        })
    }

    fn evaluate(&self) -> Result<Evaluation, TrainError> {
        let m = evaluate(
            &self.network,
            &self.dev,
            &self.dev_windows,
            &self.meta.decode,
            &self.device,
        )
        .map_err(TrainError::task)?;
        Ok(Evaluation {
            score: m.f1,
            metrics: serde_json::to_value(&m).unwrap_or_default(),
        })
    }

    fn metric_name(&self) -> &'static str {
        "f1"
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        ModelDir {
            weights_file: WEIGHTS_FILE,
            encoder_dir: &self.encoder_dir,
            tokenizer_files: TOKENIZER_FILES,
            required_tokenizer_files: &[],
            meta: (META_FILE, &self.meta),
            toml: (TOML_FILE, &self.toml),
        }
        .save(dir, &self.varmap)
    }
}

/// Reads a split, keeping its first `max` questions (0 = all), and logs its answer issues.
fn read_split(path: &Path, max: usize) -> Result<QaSet, QaError> {
    let mut set = read(path)?;
    if max > 0 {
        set.records.truncate(max);
        let kept: std::collections::HashSet<&str> =
            set.records.iter().map(|r| r.id.as_str()).collect();
        let issues = std::mem::take(&mut set.issues);
        set.issues = issues
            .into_iter()
            .filter(|i| kept.contains(i.id.as_str()))
            .collect();
    }
    set.log_issues();
    Ok(set)
}

/// Trains the model a QA configuration describes; `overrides` are `--set` values.
pub fn train_config(path: &Path, overrides: &[String]) -> Result<QaTrainReport, QaError> {
    train_resolved(resolve_task::<Qa>(path, overrides, Purpose::Train)?)
}

fn train_resolved(r: Resolved) -> Result<QaTrainReport, QaError> {
    let output = r
        .claim_output(&crate::files::Plan::new())
        .map_err(crate::train::TrainError::from)?;
    let c = &r.config;
    let train_set = read_split(&r.train, c.data.max_train)?;
    let dev_set = read_split(r.dev_file()?, c.data.max_eval)?;
    let meta = ModelMeta {
        window: c.data.window(),
        decode: c.decode,
    };
    let featurizer = build_featurizer(&r.encoder, meta.window)?;
    // Train on the first located gold answer of each question; empty questions and questions
    // without a located answer are counted and skipped.
    let trainable: Vec<&QaRecord> = train_set
        .records
        .iter()
        .filter(|q| !q.question.trim().is_empty() && q.answers.iter().any(|a| a.span.is_some()))
        .collect();
    let skipped_questions = train_set.records.len() - trainable.len();
    if skipped_questions > 0 {
        tracing::warn!(
            "{}: {skipped_questions} training questions are empty or have no answer located in their context; not trained on",
            r.train.display()
        );
    }
    let train = featurize(
        &featurizer,
        trainable.iter().map(|q| {
            let span = q.answers.iter().find_map(|a| a.span);
            (q.question.as_str(), q.context.as_str(), span)
        }),
    )?;
    let dev_windows = featurize(
        &featurizer,
        dev_set
            .records
            .iter()
            .map(|q| (q.question.as_str(), q.context.as_str(), None)),
    )?;
    let device = Device::Cpu;
    // The span head starts like BERT's (`normal(0, 0.02)` weights, zero bias) from the seed.
    let (network, vars) = TrainingVars::build(
        &r.encoder,
        None,
        None,
        (&["qa_outputs"], &[]),
        c.train.seed,
        &device,
        |vb, cfg| QaNetwork::load(vb, cfg),
    )
    .map_err(TrainError::task)?;
    let network = network.freeze_encoder(c.encoder.freeze);
    let params = trainable_params(&vars.varmap, c.encoder.freeze, &["qa_outputs."], &[]);
    let varmap = vars.varmap;
    let t = &c.train;
    let options = t.options(output, Batching::Bucketed);
    let train_windows = train.len();
    let task = QaTask {
        network,
        varmap,
        meta,
        encoder_dir: r.encoder.clone(),
        toml: r.toml.clone(),
        train,
        dev: dev_set.records.clone(),
        dev_windows,
        device,
    };
    let trainer = Trainer::new(params, options);
    let dropout = Dropout::new(c.encoder.dropout, t.seed.wrapping_add(1));
    let report = trainer.run(&task, &dropout)?;
    Ok(QaTrainReport {
        dev: report.best_metrics.clone().unwrap_or_default(),
        train: report,
        train_data: train_set.summary(),
        skipped_questions,
        train_windows,
        dev_data: dev_set.summary(),
        model_dir: trainer.best_dir(),
    })
}

/// Evaluates the trained model of a configuration (`OUTPUT/best`) on `split` (`train`,
/// `dev` or `test`), keeping the first `data.max_eval` questions of dev and test.
pub fn evaluate_config(
    path: &Path,
    overrides: &[String],
    split: Split,
) -> Result<QaMetrics, QaError> {
    evaluate_config_at(path, overrides, split, Precision::F32)
}

/// [`evaluate_config`] with the model's dense layers at `precision`.
pub fn evaluate_config_at(
    path: &Path,
    overrides: &[String],
    split: Split,
    precision: Precision,
) -> Result<QaMetrics, QaError> {
    evaluate_resolved(
        resolve_task::<Qa>(path, overrides, Purpose::Evaluate)?,
        split,
        precision,
    )
}

fn evaluate_resolved(
    r: Resolved,
    split: Split,
    precision: Precision,
) -> Result<QaMetrics, QaError> {
    let file = r.split_file(split)?.to_path_buf();
    let max = match split {
        Split::Train => r.config.data.max_train,
        Split::Dev | Split::Test => r.config.data.max_eval,
    };
    let set = read_split(&file, max)?;
    let model = QaModel::load_at(&r.output_dir.join("best"), &Device::Cpu, precision)?;
    model.evaluate(&set.records)
}
