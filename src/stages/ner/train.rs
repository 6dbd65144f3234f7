//! Training and evaluating an NER model from its TOML file: reads and checks the
//! configuration, builds the label map, featurizes the data (windows, K-BERT injection, ERNIE
//! entities), creates the network from the pretrained encoder (ERNIE: the top layers become
//! aggregators with fresh entity-side weights, TransE vectors fixed) and runs
//! [`crate::train::Trainer`].
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use serde::Serialize;

use super::config::NerConfig;
use super::data::{read, Sentence};
use super::features::{Batch, Example, Featurizer};
use super::metrics::NerMetrics;
use super::model::{build_featurizer, model_dir, ModelMeta, NerModel};
use super::network::NerNetwork;
use super::predict::{dev_evaluation, featurize};
use super::tags::{LabelMap, Tag, TagScheme};
use super::NerError;

use crate::knowledge::EntityVectors;
use crate::knowledge::Layout;
use crate::model::load::read_config;
use crate::model::Dropout;
use crate::model::Precision;
use crate::model::{aggregator_config, BertConfig, EntityTable, Kernels};
use crate::stages::task::Purpose;
use crate::stages::task::{
    documents, entity_vectors, pretrained_varmap, trainable_params, Annotator, KnowledgeRecord,
    PretrainedAggregators, Split, TaskError, TaskKind, TaskReport, Trainable,
};
use crate::train::{BatchLoss, Batching, Evaluation, TrainError, TrainReport, TrainTask, Trainer};

/// The outcome of `zhishi train` for NER: the loop's report and the best model's dev metrics.
#[derive(Debug, Clone, Serialize)]
pub struct NerTrainReport {
    /// Dev metrics of the best checkpoint (as [`NerMetrics`] serialises them).
    pub dev: serde_json::Value,
    /// Steps, throughput, early stopping.
    pub train: TrainReport,
    /// Where the best model was saved.
    pub model_dir: PathBuf,
}

/// Where the dev sentences come from.
#[derive(Debug, Clone)]
enum DevSource {
    /// A file of their own.
    File(PathBuf),
    /// The last N sentences of the training file, which training then leaves out.
    Holdout(usize),
}

/// The training and dev sentences of a configuration, a held-out dev set split off the end of
/// the training file before `max_train` applies.
fn read_train_dev(r: &Resolved) -> Result<(Vec<Sentence>, Vec<Sentence>), NerError> {
    let format = r.config.data.format;
    let mut train = read(&r.train, format)?;
    let dev = match &r.dev {
        DevSource::File(path) => read(path, format)?,
        DevSource::Holdout(n) => {
            if *n >= train.len() {
                return Err(NerError::Config(crate::config::ConfigError::Invalid {
                    path: r.train.clone(),
                    line: None,
                    key: "data.dev_holdout".into(),
                    message: format!(
                        "holds out {n} sentences but the training file has only {}",
                        train.len()
                    ),
                }));
            }
            train.split_off(train.len() - n)
        }
    };
    Ok((train, dev))
}

/// A NER configuration with every path resolved and checked, where its dev sentences come
/// from, and its TransE directory.
struct Resolved {
    base: crate::stages::task::Resolved<NerConfig>,
    dev: DevSource,
    transe: Option<PathBuf>,
}

impl std::ops::Deref for Resolved {
    type Target = crate::stages::task::Resolved<NerConfig>;
    fn deref(&self) -> &Self::Target {
        &self.base
    }
}

fn resolve(path: &Path, overrides: &[String], purpose: Purpose) -> Result<Resolved, NerError> {
    let base = crate::stages::task::resolve_for::<NerConfig>(path, overrides, purpose)?;
    let (c, source) = (&base.config, &base.source);
    let dev = match &base.dev {
        Some(file) => DevSource::File(file.clone()),
        None => DevSource::Holdout(c.data.dev_holdout),
    };
    let transe = c.knowledge.transe.as_ref().map(|p| source.resolve(p));
    if c.knowledge.mode.fuses_entities() && purpose == Purpose::Train {
        let encoder = read_config(&base.encoder)?;
        if encoder.albert.is_some() {
            return Err(source
                .error(
                    "knowledge.mode",
                    format!(
                        "{:?} fuses entities (ERNIE-THU), which needs a BERT encoder: {} is an \
                         ALBERT, whose layers are shared",
                        c.knowledge.mode.name(),
                        base.encoder.display()
                    ),
                )
                .into());
        }
        let layers = encoder.num_hidden_layers;
        if let Some(n) = c.knowledge.ernie_layers {
            if n == 0 || n > layers {
                return Err(source
                    .error(
                        "knowledge.ernie_layers",
                        format!("must be between 1 and the encoder's {layers} layers, found {n}"),
                    )
                    .into());
            }
        }
    }
    Ok(Resolved { base, dev, transe })
}

/// Builds the label map from the training (and dev) tags.
fn label_map(scheme: Option<TagScheme>, sets: &[&[Sentence]]) -> LabelMap {
    let tags = || {
        sets.iter()
            .flat_map(|s| s.iter())
            .flat_map(|s| s.tags.iter())
    };
    let scheme = scheme.unwrap_or_else(|| TagScheme::detect(tags().map(String::as_str)));
    let types = tags()
        .filter_map(|t| Tag::parse(t))
        .filter(|t| t.prefix != 'O')
        .map(|t| t.kind.to_string());
    LabelMap::new(scheme, types)
}

/// Label ids of a corpus; a tag outside the label map is an error naming the sentence.
fn label_ids(
    labels: &LabelMap,
    sentences: &[Sentence],
    path: &Path,
) -> Result<Vec<Vec<u32>>, NerError> {
    sentences
        .iter()
        .map(|s| {
            s.tags
                .iter()
                .map(|t| {
                    labels.id(t).ok_or_else(|| NerError::Data {
                        path: path.to_path_buf(),
                        line: s.line,
                        message: format!(
                            "tag {t:?} does not belong to the {:?} scheme of the labels {:?}",
                            labels.scheme, labels.labels
                        ),
                    })
                })
                .collect()
        })
        .collect()
}

/// Everything one NER training run holds.
struct NerTask {
    network: NerNetwork,
    varmap: VarMap,
    meta: ModelMeta,
    encoder_dir: PathBuf,
    toml: String,
    train: Vec<Example>,
    dev_sentences: Vec<Sentence>,
    dev_examples: Vec<Example>,
    entities: Option<EntityVectors>,
    device: Device,
}

impl TrainTask for NerTask {
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
        let b = Batch::with_layout(&examples, layout, &self.device)?;
        Ok(BatchLoss {
            loss: self.network.loss(&b, dropout)?,
            tokens: b.input.tokens,
            padded_tokens: b.input.padded_tokens,
        })
    }

    fn evaluate(&self) -> Result<Evaluation, TrainError> {
        dev_evaluation(
            &self.network,
            &self.dev_examples,
            &self.dev_sentences,
            &self.meta.labels,
            &self.device,
        )
    }

    fn metric_name(&self) -> &'static str {
        "f1"
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        model_dir(&self.encoder_dir, &self.meta, &self.toml).save(dir, &self.varmap)?;
        if let Some(vectors) = &self.entities {
            vectors.save(dir).map_err(TrainError::task)?;
        }
        Ok(())
    }
}

/// Creates the network's variables and fills the encoder's from the pretrained checkpoint.
/// With `ernie = Some((n, table))` the top `n` layers become ERNIE aggregators whose
/// entity-side weights start fresh (seeded `normal(0, 0.02)`, zero biases, unit LayerNorms).
fn pretrained_network(
    encoder_dir: &Path,
    labels: &LabelMap,
    crf: bool,
    seed: u64,
    device: &Device,
    ernie: Option<(usize, EntityTable)>,
) -> Result<(NerNetwork, VarMap, BertConfig), NerError> {
    let mut cfg = read_config(encoder_dir)?;
    cfg.kernels = Kernels::Differentiable;
    cfg.layer_types = None;
    let (cfg, table) = match ernie {
        Some((n, table)) => (aggregator_config(&cfg, n), Some(table)),
        None => (cfg, None),
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let network = NerNetwork::load_with_entities(vb, &cfg, labels, crf, table)?;
    pretrained_varmap(&varmap, encoder_dir, &cfg, &["classifier"], seed, device)?;
    Ok((network, varmap, cfg))
}

/// Trains the model a NER configuration describes; `overrides` are `--set` values.
pub fn train_config(path: &Path, overrides: &[String]) -> Result<NerTrainReport, NerError> {
    let r = resolve(path, overrides, Purpose::Train)?;
    let mut extra = crate::files::Plan::new();
    if let Some(transe) = &r.transe {
        extra.read("knowledge.transe", transe);
    }
    let output = r.claim_output(&extra).map_err(TrainError::from)?;
    let c = &r.config;
    let (mut train_sents, dev_sents) = read_train_dev(&r)?;
    if c.data.max_train > 0 {
        train_sents.truncate(c.data.max_train);
    }
    let labels = label_map(c.data.scheme, &[&train_sents, &dev_sents]);
    let train_ids = label_ids(&labels, &train_sents, &r.train)?;
    let mut table = c.knowledge.clone();
    table.kg = r.kg.clone();
    // A dEA-pretrained encoder (`zhishi pretrain`, knowledge.mode = "ernie") brings its
    // aggregators, and the TransE vectors they were trained against.
    let pretrained = if table.mode.fuses_entities() {
        PretrainedAggregators::read(&r.encoder)?
    } else {
        None
    };
    let ernie_layers = if table.mode.fuses_entities() {
        let layers = read_config(&r.encoder)?.num_hidden_layers;
        match pretrained.as_ref().and_then(PretrainedAggregators::layers) {
            Some(n) if table.ernie_layers.is_some_and(|m| m != n) => {
                return Err(NerError::AggregatorLayers {
                    configured: table.ernie_layers.unwrap_or_default(),
                    encoder: r.encoder.clone(),
                    pretrained: n,
                });
            }
            Some(n) => Some(n),
            None => Some(table.aggregator_layers(layers)),
        }
    } else {
        None
    };
    // Training links its sentences as a pipeline's link + facts stages would.
    let annotator = Annotator::from_table(&table, ernie_layers)?;
    if let (Some(p), Some(a)) = (&pretrained, &annotator) {
        p.check(a.record())?;
    }
    let meta = ModelMeta {
        labels: labels.clone(),
        max_len: c.data.max_len,
        stride: c.data.stride.unwrap_or(c.data.max_len / 2),
        crf: c.head.crf,
        knowledge: annotator
            .as_ref()
            .map_or_else(KnowledgeRecord::plain, |a| a.record().clone()),
    };
    let entities = match &pretrained {
        Some(p) => {
            if r.transe.is_some() {
                tracing::warn!(
                    "knowledge.transe is ignored: the pretrained aggregators of {} come with their own TransE vectors",
                    p.dir.display()
                );
            }
            Some(p.vectors.clone())
        }
        None => entity_vectors(&table, r.kg.as_deref(), r.transe.as_deref(), c.train.seed)?
            .map(|(v, _)| v),
    };
    let featurizer: Featurizer = build_featurizer(&r.encoder, &meta, entities.clone())?;
    let train_docs = documents(annotator.as_ref(), &texts(&train_sents))?;
    let (train, _) = featurize(&featurizer, &train_docs, &chars(&train_sents), &train_ids)?;
    let train: Vec<Example> = train
        .into_iter()
        .filter(|e| e.labelled().next().is_some())
        .collect();
    let dev_docs = documents(annotator.as_ref(), &texts(&dev_sents))?;
    let (dev_examples, _) = featurize(&featurizer, &dev_docs, &chars(&dev_sents), &[])?;
    let device = Device::Cpu;
    let ernie = match (&entities, meta.knowledge.ernie_layers) {
        (Some(v), Some(layers)) => Some((layers, EntityTable::new(&v.tensor(&device)?)?)),
        _ => None,
    };
    let (network, varmap, cfg) = pretrained_network(
        &r.encoder,
        &labels,
        c.head.crf,
        c.train.seed,
        &device,
        ernie,
    )?;
    match (&pretrained, meta.knowledge.ernie_layers) {
        (Some(p), Some(_)) => {
            let mut vars = varmap.clone();
            for (name, t) in p.for_config(&cfg)? {
                vars.set_one(&name, t)?;
            }
            tracing::info!(
                encoder = %r.encoder.display(),
                "ERNIE aggregators: from the encoder's dEA pretraining"
            );
        }
        (None, Some(n)) => tracing::info!(layers = n, "ERNIE aggregators: fresh"),
        _ => {}
    }
    let network = network.freeze_encoder(c.encoder.freeze);
    let params = trainable_params(
        &varmap,
        c.encoder.freeze,
        &["classifier.", "crf."],
        &[("crf.", c.head.crf_lr_scale)],
    );
    let t = &c.train;
    let options = t.options(output, Batching::Packed);
    let task = NerTask {
        network,
        varmap,
        meta,
        encoder_dir: r.encoder.clone(),
        toml: r.toml.clone(),
        train,
        dev_sentences: dev_sents,
        dev_examples,
        entities,
        device,
    };
    let trainer = Trainer::new(params, options);
    let dropout = Dropout::new(c.encoder.dropout, t.seed.wrapping_add(1));
    let report = trainer.run(&task, &dropout)?;
    let model_dir = trainer.best_dir();
    Ok(NerTrainReport {
        dev: report.best_metrics.clone().unwrap_or_default(),
        train: report,
        model_dir,
    })
}

/// Evaluates the trained model of a configuration (`OUTPUT/best`) on `split` (`dev`, `test`
/// or `train`).
pub fn evaluate_config(
    path: &Path,
    overrides: &[String],
    split: Split,
) -> Result<NerMetrics, NerError> {
    evaluate_config_at(path, overrides, split, Precision::F32)
}

/// [`evaluate_config`] with the model's dense layers at `precision`.
pub fn evaluate_config_at(
    path: &Path,
    overrides: &[String],
    split: Split,
    precision: Precision,
) -> Result<NerMetrics, NerError> {
    let r = resolve(path, overrides, Purpose::Evaluate)?;
    let sentences = match split {
        // Only a held-out dev set needs the other file read too.
        Split::Train => match &r.dev {
            DevSource::File(_) => read(&r.train, r.config.data.format)?,
            DevSource::Holdout(_) => read_train_dev(&r)?.0,
        },
        Split::Dev => match &r.dev {
            DevSource::File(file) => read(file, r.config.data.format)?,
            DevSource::Holdout(_) => read_train_dev(&r)?.1,
        },
        Split::Test => {
            let file = r.test.clone().ok_or_else(|| {
                NerError::Config(crate::config::ConfigError::Invalid {
                    path: path.to_path_buf(),
                    line: None,
                    key: "data.test".into(),
                    message: "no test file is configured".into(),
                })
            })?;
            read(&file, r.config.data.format)?
        }
    };
    let model = NerModel::load_at(&r.output_dir.join("best"), &Device::Cpu, precision)?;
    let mut table = r.config.knowledge.clone();
    table.kg = r.kg.clone();
    let annotator = Annotator::from_table(&table, model.knowledge().ernie_layers)?;
    if let Some(a) = &annotator {
        a.record().same_as(model.knowledge())?;
    }
    let docs = documents(annotator.as_ref(), &texts(&sentences))?;
    model.evaluate(&sentences, &docs)
}

/// Each sentence's characters.
fn chars(sentences: &[Sentence]) -> Vec<Vec<String>> {
    sentences.iter().map(|s| s.chars.clone()).collect()
}

/// Each sentence's text.
fn texts(sentences: &[Sentence]) -> Vec<String> {
    sentences.iter().map(|s| s.chars.concat()).collect()
}

/// NER in the trainable-task registry ([`crate::stages::training::TASKS`]).
pub static TASK: Trainable = Trainable {
    kind: TaskKind::Ner,
    check: |path, overrides| {
        resolve(path, overrides, Purpose::Train)
            .map(drop)
            .map_err(|e| TaskError::new(TaskKind::Ner, e))
    },
    train: |path, overrides| {
        let r = train_config(path, overrides).map_err(|e| TaskError::new(TaskKind::Ner, e))?;
        let mut report = TaskReport::new(TaskKind::Ner, Split::Dev, "f1", r.dev);
        report.train = Some(r.train);
        report.model_dir = Some(r.model_dir);
        Ok(report)
    },
    evaluate: |path, overrides, split, precision| {
        let m = evaluate_config_at(path, overrides, split, precision)
            .map_err(|e| TaskError::new(TaskKind::Ner, e))?;
        let metrics = serde_json::to_value(&m).map_err(|e| TaskError::new(TaskKind::Ner, e))?;
        Ok(TaskReport::new(TaskKind::Ner, split, "f1", metrics))
    },
};
