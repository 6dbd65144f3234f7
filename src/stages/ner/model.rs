//! A trained NER model directory and inference over raw texts. The directory holds
//! `model.safetensors` (encoder, classifier, CRF), the encoder's `config.json` and
//! `vocab.txt`, `ner.json` (labels, windowing, knowledge) and `train.toml` (the configuration
//! that produced it); ERNIE models add their fixed entity vectors (`transe.safetensors` +
//! `entity2id.txt`, see [`crate::knowledge::ernie`]).
use std::path::Path;

use candle_core::Device;

use serde::{Deserialize, Serialize};

use super::config::KnowledgeTable;
use super::data::Sentence;
use super::features::{Featurizer, Knowledge};
use super::metrics::NerMetrics;
use super::network::NerNetwork;
use super::predict::{featurize, predict_labels, score};
use super::tags::LabelMap;
use super::NerError;
use crate::doc::Entity;
use crate::knowledge::{CharVocab, EntityVectors};
use crate::model::{aggregator_config, EntityTable};
use crate::stages::task::{map_weights, read_trained, KnowledgeError};

/// Weights of a saved model.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Settings of a saved model.
pub const META_FILE: &str = "ner.json";
/// The training configuration a saved model came from.
pub const TOML_FILE: &str = "train.toml";

/// What a model needs besides its weights (`ner.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Label set and tagging scheme.
    pub labels: LabelMap,
    /// Longest input in tokens.
    pub max_len: usize,
    /// Characters between window starts.
    pub stride: usize,
    /// Whether a CRF decodes.
    pub crf: bool,
    /// Knowledge injection; `kg` is an absolute path.
    pub knowledge: KnowledgeTable,
}

/// The featurizer a model's settings describe, reading `vocab.txt` from `vocab_dir` and the
/// KG when knowledge is on; ERNIE modes need the entity `vectors`.
pub fn build_featurizer(
    vocab_dir: &Path,
    meta: &ModelMeta,
    vectors: Option<EntityVectors>,
) -> Result<Featurizer, NerError> {
    let vocab = CharVocab::from_file(vocab_dir)
        .map_err(|e| NerError::ModelDir {
            path: vocab_dir.to_path_buf(),
            message: e.to_string(),
        })?
        .with_lowercase_fallback(true);
    let knowledge = Knowledge::from_table(&meta.knowledge, vectors).map_err(|e| match e {
        KnowledgeError::NoKg(_) | KnowledgeError::NoEntityVectors(_) => NerError::ModelDir {
            path: vocab_dir.to_path_buf(),
            message: e.to_string(),
        },
        other => NerError::Knowledge(other.to_string()),
    })?;
    Ok(Featurizer::new(vocab, meta.max_len, meta.stride, knowledge))
}

/// A loaded NER model: thread-safe, runs the fused inference kernels.
pub struct NerModel {
    network: NerNetwork,
    featurizer: Featurizer,
    meta: ModelMeta,
    device: Device,
}

impl NerModel {
    /// Loads a model directory written by training (`OUTPUT/best`) onto the CPU.
    pub fn load(dir: &Path) -> Result<Self, NerError> {
        Self::load_on(dir, &Device::Cpu)
    }

    /// Loads a model directory written by training onto `device` (see
    /// [`crate::model::parse_device`]). The fused kernels run on the CPU; other devices use
    /// candle's own ops.
    pub fn load_on(dir: &Path, device: &Device) -> Result<Self, NerError> {
        let (meta, mut cfg): (ModelMeta, _) = read_trained(dir, META_FILE)?;
        let device = device.clone();
        let vectors = if meta.knowledge.mode.fuses_entities() {
            cfg = aggregator_config(
                &cfg,
                meta.knowledge.aggregator_layers(cfg.num_hidden_layers),
            );
            Some(EntityVectors::load(dir)?)
        } else {
            None
        };
        let table = vectors
            .as_ref()
            .map(|v| EntityTable::new(&v.tensor(&device)?))
            .transpose()?;
        let vb = map_weights(dir, WEIGHTS_FILE, &device)?;
        let network = NerNetwork::load_with_entities(vb, &cfg, &meta.labels, meta.crf, table)?;
        let featurizer = build_featurizer(dir, &meta, vectors)?;
        Ok(Self {
            network,
            featurizer,
            meta,
            device,
        })
    }

    /// The label set.
    pub fn labels(&self) -> &LabelMap {
        &self.meta.labels
    }

    /// Label ids of every character of every sentence.
    pub fn predict_ids(&self, sentences: &[Vec<String>]) -> Result<Vec<Vec<u32>>, NerError> {
        let examples = featurize(&self.featurizer, sentences, &[])?;
        let lengths: Vec<usize> = sentences.iter().map(Vec::len).collect();
        predict_labels(
            &self.network,
            &examples,
            &lengths,
            self.meta.labels.len(),
            &self.device,
        )
    }

    /// The entities of each text, with character offsets into it.
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<Vec<Entity>>, NerError> {
        let sentences: Vec<Vec<String>> = texts
            .iter()
            .map(|t| t.chars().map(String::from).collect())
            .collect();
        let ids = self.predict_ids(&sentences)?;
        Ok(sentences
            .iter()
            .zip(&ids)
            .map(|(chars, ids)| {
                self.meta
                    .labels
                    .spans(ids)
                    .into_iter()
                    .map(|(start, end, label)| Entity {
                        start,
                        end,
                        text: chars[start..end].concat(),
                        label,
                        score: None,
                    })
                    .collect()
            })
            .collect())
    }

    /// Entity-level metrics on labelled sentences.
    pub fn evaluate(&self, sentences: &[Sentence]) -> Result<NerMetrics, NerError> {
        let chars: Vec<Vec<String>> = sentences.iter().map(|s| s.chars.clone()).collect();
        let ids = self.predict_ids(&chars)?;
        Ok(score(&self.meta.labels, sentences, &ids))
    }
}
