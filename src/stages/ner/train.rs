//! Training and evaluating an NER model from its TOML file: reads and checks the
//! configuration, builds the label map, featurizes the data (windows, K-BERT injection, ERNIE
//! entities), creates the network from the pretrained encoder (ERNIE: the top layers become
//! aggregators with fresh entity-side weights, TransE vectors fixed) and runs
//! [`crate::train::Trainer`].
use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_nn::VarMap;
use serde::Serialize;

use super::config::NerConfig;
use super::data::{read_with, Sentence};
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
use crate::stages::task::Purpose;
use crate::stages::task::{
    documents, register, resolve_config, resolve_task, trainable_params, Annotator, Split, Task,
    TaskKind, Trainable, Trained, TrainingKnowledge, TrainingVars,
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
    let reading = r.config.data.span_reading(None);
    let mut train = read_with(&r.train, format, &reading)?;
    let dev = match &r.dev {
        DevSource::File(path) => read_with(path, format, &reading)?,
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

/// NER as a trainable task.
pub struct Ner;

/// NER in the trainable-task registry ([`crate::stages::training::TASKS`]).
pub static TASK: Trainable = register::<Ner>();

impl Task for Ner {
    type Resolved = crate::stages::task::Resolved<NerConfig>;
    type Metrics = NerMetrics;
    type Error = NerError;
    const KIND: TaskKind = TaskKind::Ner;
    const METRIC: &'static str = "f1";

    /// The shared resolution, then `knowledge.ernie_layers` must fit the encoder's layers.
    fn resolve(
        path: &Path,
        overrides: &[String],
        purpose: Purpose,
    ) -> Result<crate::stages::task::Resolved<NerConfig>, NerError> {
        let base: crate::stages::task::Resolved<NerConfig> =
            resolve_config::<_, NerError>(path, overrides, purpose)?;
        let (c, source) = (&base.config, &base.source);
        if c.knowledge.mode.fuses_entities() && purpose == Purpose::Train {
            let layers = read_config(&base.encoder)?.num_hidden_layers;
            if let Some(n) = c.knowledge.ernie_layers {
                if n == 0 || n > layers {
                    return Err(source
                        .error(
                            "knowledge.ernie_layers",
                            format!(
                                "must be between 1 and the encoder's {layers} layers, found {n}"
                            ),
                        )
                        .into());
                }
            }
        }
        Ok(base)
    }

    fn train(base: crate::stages::task::Resolved<NerConfig>) -> Result<Trained, NerError> {
        let r = train_resolved(Resolved::new(base))?;
        Ok(Trained {
            dev: r.dev,
            train: Some(r.train),
            model_dir: r.model_dir,
            details: None,
        })
    }

    fn evaluate(
        base: crate::stages::task::Resolved<NerConfig>,
        split: Split,
        precision: Precision,
    ) -> Result<NerMetrics, NerError> {
        evaluate_resolved(Resolved::new(base), split, precision)
    }
}

impl Resolved {
    /// Where the dev sentences come from, and the TransE directory, of a checked configuration.
    fn new(base: crate::stages::task::Resolved<NerConfig>) -> Self {
        let dev = match &base.dev {
            Some(file) => DevSource::File(file.clone()),
            None => DevSource::Holdout(base.config.data.dev_holdout),
        };
        let transe = base
            .config
            .knowledge
            .transe
            .as_ref()
            .map(|p| base.source.resolve(p));
        Resolved { base, dev, transe }
    }
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

/// Trains the model a NER configuration describes; `overrides` are `--set` values.
pub fn train_config(path: &Path, overrides: &[String]) -> Result<NerTrainReport, NerError> {
    let base = resolve_task::<Ner>(path, overrides, Purpose::Train)?;
    train_resolved(Resolved::new(base))
}

fn train_resolved(r: Resolved) -> Result<NerTrainReport, NerError> {
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
    // Training links its sentences as a pipeline's link + facts stages would; a dEA-pretrained
    // encoder (`zhishi pretrain`, knowledge.mode = "ernie") brings its aggregators and the
    // TransE vectors they were trained against.
    let knowledge = TrainingKnowledge::prepare(
        &r.knowledge_table(),
        &r.encoder,
        r.transe.as_deref(),
        c.train.seed,
    )?;
    let annotator = knowledge.annotator.as_ref();
    let meta = ModelMeta {
        labels: labels.clone(),
        max_len: c.data.max_len,
        stride: c.data.stride.unwrap_or(c.data.max_len / 2),
        crf: c.head.crf,
        knowledge: knowledge.record.clone(),
    };
    let entities = knowledge.entities.clone();
    let featurizer: Featurizer = build_featurizer(&r.encoder, &meta, entities.clone())?;
    let train_docs = documents(annotator, &texts(&train_sents))?;
    let (train, _) = featurize(&featurizer, &train_docs, &chars(&train_sents), &train_ids)?;
    let train: Vec<Example> = train
        .into_iter()
        .filter(|e| e.labelled().next().is_some())
        .collect();
    let dev_docs = documents(annotator, &texts(&dev_sents))?;
    let (dev_examples, _) = featurize(&featurizer, &dev_docs, &chars(&dev_sents), &[])?;
    let device = Device::Cpu;
    let ernie = knowledge.ernie(&device)?;
    let ernie_layers = ernie.as_ref().map(|(n, _)| *n);
    let crf = c.head.crf;
    let (network, vars) = TrainingVars::build(
        &r.encoder,
        ernie_layers,
        knowledge.pretrained.as_ref(),
        (&["classifier"], &[]),
        c.train.seed,
        &device,
        |vb, cfg| NerNetwork::load_with_entities(vb, cfg, &labels, crf, ernie.map(|(_, t)| t)),
    )
    .map_err(TrainError::task)?;
    let varmap = vars.varmap;
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
/// or `train`): the metrics, with the calibration of the entity scores, which are also drawn
/// to `OUTPUT/reliability.svg` ([`RELIABILITY_FILE`]).
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
    let base = resolve_task::<Ner>(path, overrides, Purpose::Evaluate)?;
    evaluate_resolved(Resolved::new(base), split, precision)
}

fn evaluate_resolved(
    r: Resolved,
    split: Split,
    precision: Precision,
) -> Result<NerMetrics, NerError> {
    let model = NerModel::load_at(&r.output_dir.join("best"), &Device::Cpu, precision)?;
    // Spans are tagged in the model's scheme, so its decoding reads them back.
    let reading = r.config.data.span_reading(Some(model.labels().scheme));
    let format = r.config.data.format;
    let sentences = match (split, &r.dev) {
        // Only a held-out dev set needs the other file read too.
        (Split::Train, DevSource::Holdout(_)) => read_train_dev(&r)?.0,
        (Split::Dev, DevSource::Holdout(_)) => read_train_dev(&r)?.1,
        (Split::Dev, DevSource::File(file)) => read_with(file, format, &reading)?,
        _ => read_with(r.split_file(split)?, format, &reading)?,
    };
    let annotator = Annotator::from_table(&r.knowledge_table(), model.knowledge().ernie_layers)?;
    if let Some(a) = &annotator {
        a.record().same_as(model.knowledge())?;
    }
    let docs = documents(annotator.as_ref(), &texts(&sentences))?;
    let metrics = model.evaluate(&sentences, &docs)?;
    if let Some(calibration) = &metrics.calibration {
        write_reliability_diagram(&r, split, calibration)?;
    }
    Ok(metrics)
}

/// The reliability diagram of an evaluation's entity scores: `reliability.svg` in
/// `train.output_dir`, beside the model it evaluates (as training draws `curves.svg`).
pub const RELIABILITY_FILE: &str = "reliability.svg";

/// Draws `calibration` (of `split`) to [`RELIABILITY_FILE`], after checking that it
/// overwrites nothing the evaluation reads.
fn write_reliability_diagram(
    r: &Resolved,
    split: Split,
    calibration: &crate::stages::calibration::Calibration,
) -> Result<(), NerError> {
    let path = r.output_dir.join(RELIABILITY_FILE);
    let mut plan = r.reads();
    plan.read("the evaluated model", r.output_dir.join("best"));
    if let Some(transe) = &r.transe {
        plan.read("knowledge.transe", transe);
    }
    plan.write("the reliability diagram", &path);
    plan.check()?;
    let title = format!("entity scores, {split} split");
    crate::stages::calibration::write_reliability(&path, calibration, &title)?;
    Ok(())
}

/// Each sentence's characters.
fn chars(sentences: &[Sentence]) -> Vec<Vec<String>> {
    sentences.iter().map(|s| s.chars.clone()).collect()
}

/// Each sentence's text.
fn texts(sentences: &[Sentence]) -> Vec<String> {
    sentences.iter().map(|s| s.chars.concat()).collect()
}
