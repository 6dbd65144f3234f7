//! Training and evaluating a relation model from its TOML file: reads and checks the
//! configuration, builds the label map (the no-relation label first), featurizes the pairs
//! (markers, windows, K-BERT injection), creates the network from the pretrained encoder and
//! runs [`crate::train::Trainer`].
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_nn::VarMap;
use serde::Serialize;

use super::config::RelationConfig;
use super::data::{read_with, Corpus, RelationExample};
use super::features::{Batch, Example};
use super::metrics::{score, RelationMetrics};
use super::model::{
    build_featurizer, example_documents, featurize, predict_examples, ModelMeta, RelationModel,
    META_FILE, TOML_FILE, WEIGHTS_FILE,
};
use super::network::RelationNetwork;
use super::RelationError;
use crate::knowledge::Layout;
use crate::model::Dropout;
use crate::model::Precision;
use crate::stages::task::Purpose;
use crate::stages::task::{
    register, resolve_config, resolve_task, trainable_params, Annotator, KnowledgeRecord, ModelDir,
    Split, Task, TaskKind, Trainable, Trained, TrainingVars,
};
use crate::train::{BatchLoss, Batching, Evaluation, TrainError, TrainReport, TrainTask, Trainer};

/// The outcome of `zhishi train` for relation extraction.
#[derive(Debug, Clone, Serialize)]
pub struct RelationTrainReport {
    /// Dev metrics of the best checkpoint (as [`RelationMetrics`] serialises them).
    pub dev: serde_json::Value,
    /// Steps, throughput, early stopping.
    pub train: TrainReport,
    /// Training pairs used (after `data.max_train`).
    pub train_examples: usize,
    /// Training pairs whose head or tail name occurs several times in the sentence.
    pub train_ambiguous: usize,
    /// Where the best model was saved.
    pub model_dir: PathBuf,
}

/// A relation configuration with every path resolved and checked.
type Resolved = crate::stages::task::Resolved<RelationConfig>;

/// Relation extraction as a trainable task.
pub struct Relation;

/// Relation extraction in the trainable-task registry ([`crate::stages::training::TASKS`]).
pub static TASK: Trainable = register::<Relation>();

impl Task for Relation {
    type Resolved = Resolved;
    type Metrics = RelationMetrics;
    type Error = RelationError;
    const KIND: TaskKind = TaskKind::Relation;
    const METRIC: &'static str = "f1";

    fn resolve(
        path: &Path,
        overrides: &[String],
        purpose: Purpose,
    ) -> Result<Resolved, RelationError> {
        resolve_config(path, overrides, purpose)
    }

    fn train(r: Resolved) -> Result<Trained, RelationError> {
        let r = train_resolved(r)?;
        Ok(Trained {
            dev: r.dev,
            train: Some(r.train),
            model_dir: r.model_dir,
            details: Some(serde_json::json!({
                "train_examples": r.train_examples,
                "train_ambiguous": r.train_ambiguous,
            })),
        })
    }

    fn evaluate(
        r: Resolved,
        split: Split,
        precision: Precision,
    ) -> Result<RelationMetrics, RelationError> {
        evaluate_resolved(r, split, precision)
    }
}

/// The label set: the no-relation label first, then the other labels of `sets` sorted.
pub fn label_set(no_relation: &str, sets: &[&[RelationExample]]) -> Vec<String> {
    let mut labels: Vec<String> = sets
        .iter()
        .flat_map(|s| s.iter())
        .map(|e| e.label.clone())
        .filter(|l| l != no_relation)
        .collect();
    labels.sort();
    labels.dedup();
    labels.insert(0, no_relation.to_string());
    labels
}

/// `n` examples spread evenly over `examples` (all of them when `n` is 0 or not smaller).
pub fn spread(examples: Vec<RelationExample>, n: usize) -> Vec<RelationExample> {
    let len = examples.len();
    if n == 0 || n >= len {
        return examples;
    }
    examples
        .into_iter()
        .enumerate()
        .filter(|(i, _)| (i * n) % len < n)
        .map(|(_, e)| e)
        .collect()
}

/// Everything one training run holds.
struct RelationTask {
    network: RelationNetwork,
    varmap: VarMap,
    meta: ModelMeta,
    encoder_dir: PathBuf,
    toml: String,
    train: Vec<Example>,
    dev: Vec<Example>,
    device: Device,
}

impl TrainTask for RelationTask {
    fn train_lengths(&self) -> Vec<usize> {
        self.train.iter().map(Example::len).collect()
    }

    fn batch_loss(
        &self,
        batch: &[usize],
        layout: Layout,
        dropout: &Dropout,
    ) -> Result<BatchLoss, TrainError> {
        let examples: Vec<&Example> = batch.iter().map(|&i| &self.train[i]).collect();
        let batching_started = std::time::Instant::now();
        let b = Batch::with_layout(&examples, layout, &self.device)?;
        let batching_seconds = batching_started.elapsed().as_secs_f64();
        Ok(BatchLoss {
            loss: self.network.loss(&b, dropout)?,
            tokens: b.input.tokens,
            padded_tokens: b.input.padded_tokens,
            batching_seconds,
        })
    }

    fn evaluate(&self) -> Result<Evaluation, TrainError> {
        let predicted =
            predict_examples(&self.network, &self.dev, &self.device).map_err(TrainError::task)?;
        let gold: Vec<u32> = self.dev.iter().map(|e| e.label).collect();
        let predicted: Vec<u32> = predicted.iter().map(|p| p.label).collect();
        let m = score(
            &self.meta.labels,
            self.meta.no_relation_id(),
            &gold,
            &predicted,
        );
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
            tokenizer_files: &[],
            required_tokenizer_files: &["vocab.txt"],
            meta: (META_FILE, &self.meta),
            toml: (TOML_FILE, &self.toml),
        }
        .save(dir, &self.varmap)
    }
}

fn read_split(c: &RelationConfig, path: &Path) -> Result<Corpus, RelationError> {
    read_with(
        path,
        c.data.format,
        &c.data.no_relation,
        c.data.max_negatives,
        crate::stages::annotation::ReadOptions {
            offsets: c.data.offsets,
            use_predictions: c.data.use_predictions,
        },
    )
}

/// Trains the model a relation configuration describes; `overrides` are `--set` values.
pub fn train_config(
    path: &Path,
    overrides: &[String],
) -> Result<RelationTrainReport, RelationError> {
    train_resolved(resolve_task::<Relation>(path, overrides, Purpose::Train)?)
}

fn train_resolved(r: Resolved) -> Result<RelationTrainReport, RelationError> {
    let output = r
        .claim_output(&crate::files::Plan::new())
        .map_err(crate::train::TrainError::from)?;
    let c = &r.config;
    let train_corpus = read_split(c, &r.train)?;
    let train_ambiguous = train_corpus.ambiguous;
    let train_examples = spread(train_corpus.examples, c.data.max_train);
    let dev_file = r.dev_file()?.to_path_buf();
    let dev_examples = read_split(c, &dev_file)?.examples;
    let labels = label_set(&c.data.no_relation, &[&train_examples, &dev_examples]);
    // Training links its sentences as a pipeline's link + facts stages would.
    let annotator = Annotator::from_table(&r.knowledge_table(), None)?;
    let meta = ModelMeta {
        labels,
        no_relation: c.data.no_relation.clone(),
        max_len: c.data.max_len,
        markers: c.data.markers.clone(),
        knowledge: annotator
            .as_ref()
            .map_or_else(KnowledgeRecord::plain, |a| a.record().clone()),
    };
    let featurizer = build_featurizer(&r.encoder, &meta)?;
    let (docs, owners) = example_documents(annotator.as_ref(), &train_examples)?;
    let train = featurize(
        &featurizer,
        &meta,
        &train_examples,
        (&docs, &owners),
        &r.train,
    )?;
    let (docs, owners) = example_documents(annotator.as_ref(), &dev_examples)?;
    let dev = featurize(
        &featurizer,
        &meta,
        &dev_examples,
        (&docs, &owners),
        &dev_file,
    )?;
    let device = Device::Cpu;
    let labels = meta.labels.len();
    let (network, vars) = TrainingVars::build(
        &r.encoder,
        None,
        None,
        (&["classifier"], &[]),
        c.train.seed,
        &device,
        |vb, cfg| RelationNetwork::load(vb, cfg, labels),
    )
    .map_err(TrainError::task)?;
    let network = network.freeze_encoder(c.encoder.freeze);
    let varmap = vars.varmap;
    let params = trainable_params(&varmap, c.encoder.freeze, &["classifier."], &[]);
    let t = &c.train;
    let task = RelationTask {
        network,
        varmap,
        meta,
        encoder_dir: r.encoder.clone(),
        toml: r.toml.clone(),
        train,
        dev,
        device,
    };
    let trainer = Trainer::new(params, t.options(output, Batching::Packed));
    let dropout = Dropout::new(c.encoder.dropout, t.seed.wrapping_add(1));
    let report = trainer.run(&task, &dropout)?;
    Ok(RelationTrainReport {
        dev: report.best_metrics.clone().unwrap_or_default(),
        train_examples: task.train.len(),
        train_ambiguous,
        train: report,
        model_dir: trainer.best_dir(),
    })
}

/// Evaluates the trained model of a configuration (`OUTPUT/best`) on `split` (`dev`, `test`
/// or `train`).
pub fn evaluate_config(
    path: &Path,
    overrides: &[String],
    split: Split,
) -> Result<RelationMetrics, RelationError> {
    evaluate_config_at(path, overrides, split, Precision::F32)
}

/// [`evaluate_config`] with the model's dense layers at `precision`.
pub fn evaluate_config_at(
    path: &Path,
    overrides: &[String],
    split: Split,
    precision: Precision,
) -> Result<RelationMetrics, RelationError> {
    let r = resolve_task::<Relation>(path, overrides, Purpose::Evaluate)?;
    evaluate_resolved(r, split, precision)
}

fn evaluate_resolved(
    r: Resolved,
    split: Split,
    precision: Precision,
) -> Result<RelationMetrics, RelationError> {
    let file = r.split_file(split)?.to_path_buf();
    let corpus = read_split(&r.config, &file)?;
    let model = RelationModel::load_at(&r.output_dir.join("best"), &Device::Cpu, precision)?;
    let annotator = Annotator::from_table(&r.knowledge_table(), None)?;
    if let Some(a) = &annotator {
        a.record().same_as(model.knowledge())?;
    }
    let (docs, owners) = example_documents(annotator.as_ref(), &corpus.examples)?;
    model.evaluate(&corpus.examples, (&docs, &owners), &file)
}
