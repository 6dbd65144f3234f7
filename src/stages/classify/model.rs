//! A trained classification model directory and inference over texts and pairs. The
//! directory holds `model.safetensors` (encoder, pooler, classifier), the encoder's
//! `config.json` and `vocab.txt`, `classify.json` (labels, pooling, single or multi-label,
//! knowledge), `train.toml` (the configuration that produced it) and, for ERNIE models, the
//! entity vectors.
use std::path::Path;

use candle_core::Device;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::Pooling;
use super::features::{Batch, Example, Featurizer, Injected};
use super::network::ClassifyNetwork;
use super::ClassifyError;
use crate::doc::Document;
use crate::knowledge::{CharVocab, DocumentKnowledge, EntityVectors};
use crate::model::load::read_config;
use crate::model::{aggregator_config, check_max_len, check_vocab_fits, BertConfig, Dropout};
use crate::model::{EntityTable, Precision};
use crate::stages::task::{
    map_weights, read_trained, Injection, KnowledgeMode, KnowledgeRecord, OpenError,
};

/// Weights of a saved model.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Settings of a saved model.
pub const META_FILE: &str = "classify.json";
/// The training configuration a saved model came from.
pub const TOML_FILE: &str = "train.toml";
/// Examples encoded per forward pass at prediction time.
pub const PREDICT_BATCH: usize = 32;

/// What a model needs besides its weights (`classify.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Label names by id.
    pub labels: Vec<String>,
    /// Longest input in tokens.
    pub max_len: usize,
    /// How the head pools the encoder's output.
    pub pooling: Pooling,
    /// Several labels per example (sigmoid) instead of one (softmax).
    pub multi_label: bool,
    /// With `multi_label`, the probability from which a label is predicted.
    pub threshold: f32,
    /// Whether it was trained on pairs of texts.
    pub pairs: bool,
    /// The knowledge it was trained with (no paths: the KG is named by its content).
    pub knowledge: KnowledgeRecord,
}

impl ModelMeta {
    /// Checks the settings read from `dir` against the encoder config `cfg`.
    pub fn check(&self, dir: &Path, cfg: &BertConfig) -> Result<(), ClassifyError> {
        let file = dir.join(META_FILE);
        let bad = |message: String| {
            ClassifyError::ModelDir(OpenError::Invalid {
                path: file.clone(),
                message,
            })
        };
        if self.labels.is_empty() {
            return Err(bad("no labels; expected at least one".into()));
        }
        if self.max_len < 4 {
            return Err(bad(format!(
                "max_len {} is out of range; expected 4 or more",
                self.max_len
            )));
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(bad(format!(
                "threshold {} must lie strictly between 0 and 1",
                self.threshold
            )));
        }
        check_max_len(
            dir,
            cfg,
            &format!("{} max_len", file.display()),
            self.max_len,
        )?;
        Ok(())
    }
}

/// The featurizer a model's settings describe, reading `vocab.txt` from `vocab_dir` (whose
/// embedding table it must fit); ERNIE modes need the entity `vectors`.
pub fn build_featurizer(
    vocab_dir: &Path,
    meta: &ModelMeta,
    vectors: Option<EntityVectors>,
) -> Result<Featurizer, ClassifyError> {
    let invalid = |message: String| {
        ClassifyError::ModelDir(OpenError::Invalid {
            path: vocab_dir.to_path_buf(),
            message,
        })
    };
    let vocab = CharVocab::from_file(vocab_dir)
        .map_err(|e| invalid(crate::error::report(&e)))?
        .with_lowercase_fallback(true);
    check_vocab_fits(
        vocab_dir,
        &read_config(vocab_dir)?,
        &vocab_dir.join("vocab.txt"),
        vocab.id_limit(),
    )?;
    let injection =
        Injection::new(&meta.knowledge, vectors).map_err(|e| invalid(crate::error::report(&e)))?;
    Ok(Featurizer::new(vocab, meta.max_len, injection))
}

/// The model's probability for each label of one input, and the facts it was fed.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// Probability of each label, in label order (softmax, or a sigmoid per label).
    pub probabilities: Vec<f32>,
    /// The documents' facts injected into the input.
    pub injected: Injected,
}

/// Encodes `examples` in length-sorted batches and returns each one's label probabilities.
pub fn predict_examples(
    network: &ClassifyNetwork,
    examples: &[Example],
    device: &Device,
) -> Result<Vec<Vec<f32>>, ClassifyError> {
    let mut out = vec![Vec::new(); examples.len()];
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| examples[i].len());
    let off = Dropout::disabled();
    for chunk in order.chunks(PREDICT_BATCH) {
        let batch_examples: Vec<&Example> = chunk.iter().map(|&i| &examples[i]).collect();
        let batch = Batch::new(&batch_examples, device)?;
        let logits = network.logits(&batch, &off)?;
        let probs = if network.multi_label() {
            candle_nn::ops::sigmoid(&logits)?
        } else {
            candle_nn::ops::softmax_last_dim(&logits)?
        };
        for (&i, row) in chunk.iter().zip(probs.to_vec2::<f32>()?) {
            out[i] = row;
        }
    }
    Ok(out)
}

/// The predicted label ids of probabilities: the arg-max, or every label at or above
/// `threshold` with `multi_label`.
pub fn decide(probabilities: &[f32], multi_label: bool, threshold: f32) -> Vec<u32> {
    if multi_label {
        return probabilities
            .iter()
            .enumerate()
            .filter(|(_, &p)| p >= threshold)
            .map(|(i, _)| i as u32)
            .collect();
    }
    let best = probabilities
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &p)| {
            if p > best.1 {
                (i, p)
            } else {
                best
            }
        });
    vec![best.0 as u32]
}

/// A trained classification model, ready to predict.
pub struct ClassifyModel {
    network: ClassifyNetwork,
    featurizer: Featurizer,
    meta: ModelMeta,
    device: Device,
}

impl ClassifyModel {
    /// Loads a model directory written by `zhishi train` on the CPU.
    pub fn load(dir: &Path) -> Result<Self, ClassifyError> {
        Self::load_at(dir, &Device::Cpu, Precision::F32)
    }

    /// Loads a model directory on `device`, its dense layers at `precision`.
    pub fn load_at(
        dir: &Path,
        device: &Device,
        precision: Precision,
    ) -> Result<Self, ClassifyError> {
        let (meta, mut cfg): (ModelMeta, _) = read_trained(dir, META_FILE, precision)?;
        meta.check(dir, &cfg)?;
        let vectors = if meta.knowledge.mode.fuses_entities() {
            cfg = aggregator_config(
                &cfg,
                meta.knowledge.aggregator_layers(cfg.num_hidden_layers),
            );
            Some(EntityVectors::load(dir).map_err(|e| {
                ClassifyError::ModelDir(OpenError::Invalid {
                    path: dir.to_path_buf(),
                    message: crate::error::report(&e),
                })
            })?)
        } else {
            None
        };
        let table = vectors
            .as_ref()
            .map(|v| EntityTable::new(&v.tensor(device)?))
            .transpose()?;
        let vb = map_weights(dir, WEIGHTS_FILE, device)?;
        let network = ClassifyNetwork::load(
            vb,
            &cfg,
            meta.labels.len(),
            meta.pooling,
            meta.multi_label,
            table,
        )?;
        let featurizer = build_featurizer(dir, &meta, vectors)?;
        Ok(Self {
            network,
            featurizer,
            meta,
            device: device.clone(),
        })
    }

    /// The model's settings.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// The labels, by id.
    pub fn labels(&self) -> &[String] {
        &self.meta.labels
    }

    /// The knowledge the model was trained with.
    pub fn knowledge(&self) -> &KnowledgeRecord {
        &self.meta.knowledge
    }

    /// Scores documents (linked, when the model uses knowledge); `pairs[i]`, when given, is the
    /// second text of document `i` (also linked for a knowledge model).
    pub fn predict_documents(
        &self,
        docs: &[Document],
        pairs: &[Option<Document>],
    ) -> Result<Vec<Scored>, ClassifyError> {
        let encoded: Vec<(Example, Injected)> = docs
            .par_iter()
            .enumerate()
            .map(|(i, d)| {
                let a = DocumentKnowledge::new(d);
                let b = pairs
                    .get(i)
                    .and_then(Option::as_ref)
                    .map(DocumentKnowledge::new);
                self.featurizer.encode(&a, b.as_ref(), Vec::new())
            })
            .collect::<Result<_, _>>()?;
        let (examples, injected): (Vec<Example>, Vec<Injected>) = encoded.into_iter().unzip();
        let probs = predict_examples(&self.network, &examples, &self.device)?;
        Ok(probs
            .into_iter()
            .zip(injected)
            .map(|(probabilities, injected)| Scored {
                probabilities,
                injected,
            })
            .collect())
    }

    /// Scores bare texts (optionally pairs) with a model trained without knowledge.
    pub fn predict(&self, texts: &[(&str, Option<&str>)]) -> Result<Vec<Vec<f32>>, ClassifyError> {
        if self.meta.knowledge.mode != KnowledgeMode::Plain {
            return Err(ClassifyError::NeedsDocuments {
                mode: self.meta.knowledge.mode.name(),
            });
        }
        let docs: Vec<Document> = texts.iter().map(|(a, _)| Document::new(*a)).collect();
        let pairs: Vec<Option<Document>> =
            texts.iter().map(|(_, b)| b.map(Document::new)).collect();
        Ok(self
            .predict_documents(&docs, &pairs)?
            .into_iter()
            .map(|s| s.probabilities)
            .collect())
    }

    /// The predicted label ids of `probabilities` under the model's settings.
    pub fn decide(&self, probabilities: &[f32]) -> Vec<u32> {
        decide(probabilities, self.meta.multi_label, self.meta.threshold)
    }

    /// The network (for evaluation during training).
    pub fn network(&self) -> &ClassifyNetwork {
        &self.network
    }

    /// The featurizer.
    pub fn featurizer(&self) -> &Featurizer {
        &self.featurizer
    }

    /// The device it runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }
}
