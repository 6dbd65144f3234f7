//! Training and evaluating an NER model from its TOML file: reads and checks the
//! configuration, builds the label map, featurizes the data (windows, K-BERT injection),
//! creates the network from the pretrained encoder and runs [`crate::train::Trainer`].
use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use serde::Serialize;

use super::config::{KnowledgeMode, NerConfig};
use super::data::{read, Sentence};
use super::features::{Batch, Example, Featurizer};
use super::metrics::NerMetrics;
use super::model::{build_featurizer, ModelMeta, NerModel, META_FILE, TOML_FILE, WEIGHTS_FILE};
use super::network::NerNetwork;
use super::predict::{featurize, predict_labels, score};
use super::tags::{LabelMap, Tag, TagScheme};
use super::NerError;
use crate::config::{load, ConfigSource, Loaded};
use crate::model::load::read_config;
use crate::model::{BertConfig, Kernels};
use crate::stages::task::{pretrained_varmap, trainable_params};
use crate::train::{BatchLoss, Dropout, Evaluation, TrainError, TrainReport, TrainTask, Trainer};

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

/// A configuration with every path resolved and checked.
struct Resolved {
    config: NerConfig,
    model: PathBuf,
    train: PathBuf,
    dev: PathBuf,
    test: Option<PathBuf>,
    kg: Option<PathBuf>,
    output_dir: PathBuf,
    toml: String,
}

fn resolve(path: &Path, overrides: &[String]) -> Result<Resolved, NerError> {
    let Loaded { value, source } = load::<NerConfig>(path, overrides)?;
    check(&value, &source)?;
    let c = &value;
    let model = source.existing_path("encoder.model", &c.encoder.model)?;
    let train = source.existing_path("data.train", &c.data.train)?;
    let dev = source.existing_path("data.dev", &c.data.dev)?;
    let test = c
        .data
        .test
        .as_ref()
        .map(|p| source.existing_path("data.test", p))
        .transpose()?;
    let kg = match (c.knowledge.mode, &c.knowledge.kg) {
        (KnowledgeMode::Kbert, None) => {
            return Err(source
                .error(
                    "knowledge.kg",
                    "a triples file is required when mode = \"kbert\"",
                )
                .into())
        }
        (KnowledgeMode::Kbert, Some(p)) => Some(source.existing_path("knowledge.kg", p)?),
        (KnowledgeMode::Plain, _) => None,
    };
    let output_dir = source.resolve(&c.train.output_dir);
    let mut toml = std::fs::read_to_string(path).unwrap_or_default();
    if !overrides.is_empty() {
        toml = format!("# overrides: {}\n{toml}", overrides.join(" "));
    }
    Ok(Resolved {
        config: value,
        model,
        train,
        dev,
        test,
        kg,
        output_dir,
        toml,
    })
}

fn check(c: &NerConfig, source: &ConfigSource) -> Result<(), NerError> {
    if c.task.kind != "ner" {
        return Err(source
            .error(
                "task.kind",
                format!("expected \"ner\", found {:?}", c.task.kind),
            )
            .into());
    }
    if c.data.max_len < 3 {
        return Err(source
            .error(
                "data.max_len",
                "must be at least 3 ([CLS], one character, [SEP])",
            )
            .into());
    }
    if c.train.batch_size == 0 {
        return Err(source
            .error("train.batch_size", "must be at least 1")
            .into());
    }
    if c.train.epochs == 0 {
        return Err(source.error("train.epochs", "must be at least 1").into());
    }
    if !(0.0..1.0).contains(&c.encoder.dropout) {
        return Err(source.error("encoder.dropout", "must be in [0, 1)").into());
    }
    Ok(())
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
    device: Device,
}

impl TrainTask for NerTask {
    fn train_lengths(&self) -> Vec<usize> {
        self.train.iter().map(Example::len).collect()
    }

    fn batch_loss(&self, batch: &[usize], dropout: &Dropout) -> Result<BatchLoss, TrainError> {
        let examples: Vec<&Example> = batch.iter().map(|&i| &self.train[i]).collect();
        let b = Batch::new(&examples, &self.device)?;
        Ok(BatchLoss {
            loss: self.network.loss(&b, dropout)?,
            tokens: b.input.tokens,
            padded_tokens: b.input.padded_tokens,
        })
    }

    fn evaluate(&self) -> Result<Evaluation, TrainError> {
        let lengths: Vec<usize> = self.dev_sentences.iter().map(|s| s.chars.len()).collect();
        let ids = predict_labels(
            &self.network,
            &self.dev_examples,
            &lengths,
            self.meta.labels.len(),
            &self.device,
        )
        .map_err(|e| TrainError::Task(e.to_string()))?;
        let m = score(&self.meta.labels, &self.dev_sentences, &ids);
        Ok(Evaluation {
            score: m.micro.f1,
            metrics: serde_json::to_value(&m).unwrap_or_default(),
        })
    }

    fn save(&self, dir: &Path) -> Result<(), TrainError> {
        let io = |path: PathBuf| move |source| TrainError::Io { path, source };
        std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
        self.varmap.save(dir.join(WEIGHTS_FILE))?;
        for name in ["config.json", "vocab.txt"] {
            let from = self.encoder_dir.join(name);
            std::fs::copy(&from, dir.join(name)).map_err(io(from))?;
        }
        let meta = serde_json::to_string_pretty(&self.meta)
            .map_err(|e| TrainError::Task(e.to_string()))?;
        std::fs::write(dir.join(META_FILE), meta).map_err(io(dir.join(META_FILE)))?;
        std::fs::write(dir.join(TOML_FILE), &self.toml).map_err(io(dir.join(TOML_FILE)))?;
        Ok(())
    }
}

/// Creates the network's variables and fills the encoder's from the pretrained checkpoint.
fn pretrained_network(
    encoder_dir: &Path,
    labels: &LabelMap,
    crf: bool,
    seed: u64,
    device: &Device,
) -> Result<(NerNetwork, VarMap, BertConfig), NerError> {
    let mut cfg = read_config(encoder_dir)?;
    cfg.kernels = Kernels::Differentiable;
    cfg.layer_types = None;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let network = NerNetwork::load(vb, &cfg, labels, crf)?;
    pretrained_varmap(&varmap, encoder_dir, &cfg, &["classifier"], seed, device)?;
    Ok((network, varmap, cfg))
}

/// Trains the model a NER configuration describes; `overrides` are `--set` values.
pub fn train_config(path: &Path, overrides: &[String]) -> Result<NerTrainReport, NerError> {
    let r = resolve(path, overrides)?;
    let c = &r.config;
    let mut train_sents = read(&r.train, c.data.format)?;
    if c.data.max_train > 0 {
        train_sents.truncate(c.data.max_train);
    }
    let dev_sents = read(&r.dev, c.data.format)?;
    let labels = label_map(c.data.scheme, &[&train_sents, &dev_sents]);
    let train_ids = label_ids(&labels, &train_sents, &r.train)?;
    let mut knowledge = c.knowledge.clone();
    knowledge.kg = r.kg.clone();
    let meta = ModelMeta {
        labels: labels.clone(),
        max_len: c.data.max_len,
        stride: c.data.stride.unwrap_or(c.data.max_len / 2),
        crf: c.head.crf,
        knowledge,
    };
    let featurizer: Featurizer = build_featurizer(&r.model, &meta)?;
    let chars =
        |s: &[Sentence]| -> Vec<Vec<String>> { s.iter().map(|x| x.chars.clone()).collect() };
    let train: Vec<Example> = featurize(&featurizer, &chars(&train_sents), &train_ids)?
        .into_iter()
        .filter(|e| e.labelled().next().is_some())
        .collect();
    let dev_examples = featurize(&featurizer, &chars(&dev_sents), &[])?;
    let device = Device::Cpu;
    let (network, varmap, cfg) =
        pretrained_network(&r.model, &labels, c.head.crf, c.train.seed, &device)?;
    if c.data.max_len > cfg.max_position_embeddings {
        return Err(NerError::ModelDir {
            path: r.model.clone(),
            message: format!(
                "data.max_len {} exceeds the encoder's max_position_embeddings {}",
                c.data.max_len, cfg.max_position_embeddings
            ),
        });
    }
    let network = network.freeze_encoder(c.encoder.freeze);
    let params = trainable_params(
        &varmap,
        c.encoder.freeze,
        &["classifier.", "crf."],
        &[("crf.", c.head.crf_lr_scale)],
    );
    let t = &c.train;
    let options = t.options(r.output_dir.clone());
    let task = NerTask {
        network,
        varmap,
        meta,
        encoder_dir: r.model.clone(),
        toml: r.toml.clone(),
        train,
        dev_sentences: dev_sents,
        dev_examples,
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
    split: &str,
) -> Result<NerMetrics, NerError> {
    let r = resolve(path, overrides)?;
    let file = match split {
        "train" => r.train.clone(),
        "dev" => r.dev.clone(),
        "test" => r.test.clone().ok_or_else(|| {
            NerError::Config(crate::config::ConfigError::Invalid {
                path: path.to_path_buf(),
                line: None,
                key: "data.test".into(),
                message: "no test file is configured".into(),
            })
        })?,
        other => {
            return Err(NerError::Config(crate::config::ConfigError::Invalid {
                path: path.to_path_buf(),
                line: None,
                key: "--split".into(),
                message: format!("unknown split {other:?}; expected train, dev or test"),
            }))
        }
    };
    let sentences = read(&file, r.config.data.format)?;
    let model = NerModel::load(&r.output_dir.join("best"))?;
    model.evaluate(&sentences)
}
