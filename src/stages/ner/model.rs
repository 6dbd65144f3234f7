//! A trained NER model directory and inference over raw texts. The directory holds
//! `model.safetensors` (encoder, classifier, CRF), the encoder's `config.json` and
//! `vocab.txt`, `ner.json` (labels, windowing, knowledge) and `train.toml` (the configuration
//! that produced it); ERNIE models add their fixed entity vectors (`transe.safetensors` +
//! `entity2id.txt`, see [`crate::knowledge::ernie`]).
use std::path::Path;

use candle_core::Device;

use serde::{Deserialize, Serialize};

use super::data::Sentence;
use super::features::{Example, Featurizer};
use super::metrics::NerMetrics;
use super::network::NerNetwork;
use super::predict::{featurize, predict_spans, score_decoded, Decoded};
use super::tags::LabelMap;
use super::NerError;
use crate::doc::{Document, Entity, Evidence};
use crate::knowledge::{CharVocab, EntityVectors};
use crate::model::load::read_config;
use crate::model::{
    aggregator_config, check_max_len, check_vocab_fits, BertConfig, EntityTable, Precision,
};
use crate::stages::task::{map_weights, read_trained, Injection, KnowledgeRecord};

/// Weights of a saved model.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Settings of a saved model.
pub const META_FILE: &str = "ner.json";
/// The training configuration a saved model came from.
pub const TOML_FILE: &str = "train.toml";

/// What an NER model directory holds besides the weights (the same for a trained model and a
/// distilled student): `config.json` and `vocab.txt` of `encoder_dir`, `ner.json` and the
/// training TOML.
pub fn model_dir<'a>(
    encoder_dir: &'a Path,
    meta: &'a ModelMeta,
    toml: &'a str,
) -> crate::stages::task::ModelDir<'a, ModelMeta> {
    crate::stages::task::ModelDir {
        weights_file: WEIGHTS_FILE,
        encoder_dir,
        tokenizer_files: &[],
        required_tokenizer_files: &["vocab.txt"],
        meta: (META_FILE, meta),
        toml: (TOML_FILE, toml),
    }
}

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
    /// The knowledge it was trained with (no paths: the KG is named by its content).
    pub knowledge: KnowledgeRecord,
}

impl ModelMeta {
    /// Checks the windowing read from `dir`'s `ner.json` against itself and the positions of
    /// `cfg`, the model's config: a window needs `[CLS]`, one character and `[SEP]`, and
    /// windows start 1 to `max_len - 2` characters apart (0 would open one at every
    /// character, more would skip characters).
    pub fn check(&self, dir: &Path, cfg: &BertConfig) -> Result<(), NerError> {
        let file = dir.join(META_FILE);
        let bad = |message: String| NerError::ModelDir {
            path: file.clone(),
            message,
        };
        if self.max_len < 3 {
            return Err(bad(format!(
                "max_len {} is out of range; expected 3 or more ([CLS], one character, [SEP])",
                self.max_len
            )));
        }
        let window = self.max_len - 2;
        if !(1..=window).contains(&self.stride) {
            return Err(bad(format!(
                "stride {} is out of range; expected 1 to {window} (max_len - 2)",
                self.stride
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

/// The featurizer a model's settings describe, reading `vocab.txt` from the model directory
/// `vocab_dir` (whose embedding table it must fit); ERNIE modes need the entity `vectors`.
pub fn build_featurizer(
    vocab_dir: &Path,
    meta: &ModelMeta,
    vectors: Option<EntityVectors>,
) -> Result<Featurizer, NerError> {
    let vocab = CharVocab::from_file(vocab_dir)
        .map_err(|e| NerError::ModelDir {
            path: vocab_dir.to_path_buf(),
            message: crate::error::report(&e),
        })?
        .with_lowercase_fallback(true);
    check_vocab_fits(
        vocab_dir,
        &read_config(vocab_dir)?,
        &vocab_dir.join("vocab.txt"),
        vocab.id_limit(),
    )?;
    let injection = Injection::new(&meta.knowledge, vectors).map_err(|e| NerError::ModelDir {
        path: vocab_dir.to_path_buf(),
        message: crate::error::report(&e),
    })?;
    Ok(Featurizer::new(vocab, meta.max_len, meta.stride, injection))
}

/// What the model found in one document.
#[derive(Debug, Clone, PartialEq)]
pub struct Tagged {
    /// The named entities, in text order.
    pub entities: Vec<Entity>,
    /// Indices into the document's `facts` of the facts fed to the encoder, ascending.
    pub injected: Vec<usize>,
}

/// The entities of one decoded sentence (`chars` its characters) with, when given, each
/// one's evidence, and the facts fed to the encoder.
pub(super) fn tagged(
    chars: &[String],
    decoded: Decoded,
    injected: Vec<usize>,
    evidence: Option<Vec<Vec<Evidence>>>,
) -> Tagged {
    let mut evidence = evidence.map(Vec::into_iter);
    let entities = decoded
        .spans
        .into_iter()
        .zip(decoded.probabilities)
        .map(|((start, end, label), p)| Entity {
            start,
            end,
            text: chars[start..end].concat(),
            label,
            score: Some(p),
            source: None,
            evidence: evidence.as_mut().and_then(Iterator::next),
        })
        .collect();
    Tagged { entities, injected }
}

/// The decoded sentences and the injected facts of each document.
type Predicted = (Vec<Decoded>, Vec<Vec<usize>>);

/// A loaded NER model: thread-safe, runs the fused inference kernels.
pub struct NerModel {
    pub(super) network: NerNetwork,
    pub(super) featurizer: Featurizer,
    pub(super) meta: ModelMeta,
    pub(super) device: Device,
    /// The encoder's layers (how far injected knowledge can spread, see [`super::explain`]).
    pub(super) layers: usize,
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
        Self::load_at(dir, device, Precision::F32)
    }

    /// [`NerModel::load_on`] with the dense layers' arithmetic `precision` (int8 and bf16
    /// pick their CPU kernels at run time).
    pub fn load_at(dir: &Path, device: &Device, precision: Precision) -> Result<Self, NerError> {
        let (meta, mut cfg): (ModelMeta, _) = read_trained(dir, META_FILE, precision)?;
        meta.check(dir, &cfg)?;
        let layers = cfg.num_hidden_layers;
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
            layers,
        })
    }

    /// The label set.
    pub fn labels(&self) -> &LabelMap {
        &self.meta.labels
    }

    /// The knowledge the model was trained with.
    pub fn knowledge(&self) -> &KnowledgeRecord {
        &self.meta.knowledge
    }

    /// The model's settings (`ner.json`).
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// The encoder windows of each document, exactly as [`NerModel::predict_documents`]
    /// feeds them to the network (for [`super::dump`]); `sentence` is the index in `docs`.
    pub fn windows(&self, docs: &[Document]) -> Result<Vec<Vec<Example>>, NerError> {
        let items: Vec<Vec<String>> = docs
            .iter()
            .map(|d| d.text.chars().map(String::from).collect())
            .collect();
        let (examples, _) = featurize(&self.featurizer, docs, &items, &[])?;
        let mut out: Vec<Vec<Example>> = vec![Vec::new(); docs.len()];
        for ex in examples {
            if let Some(slot) = out.get_mut(ex.sentence) {
                slot.push(ex);
            }
        }
        Ok(out)
    }

    /// Every document decoded (`items[i]` are the characters of `docs[i]`'s text: label ids,
    /// entity spans and their probabilities) and, per document, the indices of the facts fed
    /// to the encoder.
    fn predict_decoded(
        &self,
        docs: &[Document],
        items: &[Vec<String>],
    ) -> Result<Predicted, NerError> {
        let (examples, injected) = featurize(&self.featurizer, docs, items, &[])?;
        let lengths: Vec<usize> = items.iter().map(Vec::len).collect();
        let decoded = predict_spans(
            &self.network,
            &examples,
            &lengths,
            &self.meta.labels,
            &self.device,
        )?;
        Ok((decoded, injected))
    }

    /// The entities of each document (character offsets into its text), with the knowledge
    /// its `mentions` and `facts` carry (as the pipeline's `link`/`facts` stages or
    /// [`crate::stages::task::Annotator`] wrote them), and the indices of the facts that
    /// were fed to the encoder. Each entity's `score` is the probability of its span (see
    /// [`super::confidence`]).
    pub fn predict_documents(&self, docs: &[Document]) -> Result<Vec<Tagged>, NerError> {
        let items: Vec<Vec<String>> = docs
            .iter()
            .map(|d| d.text.chars().map(String::from).collect())
            .collect();
        let (decoded, injected) = self.predict_decoded(docs, &items)?;
        Ok(items
            .iter()
            .zip(decoded)
            .zip(injected)
            .map(|((chars, decoded), injected)| tagged(chars, decoded, injected, None))
            .collect())
    }

    /// The entities of each text, for a model without knowledge; a model trained with
    /// knowledge needs its documents linked ([`NerModel::predict_documents`]).
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<Vec<Entity>>, NerError> {
        if self.meta.knowledge.mode != super::config::KnowledgeMode::Plain {
            return Err(NerError::NeedsDocuments {
                mode: self.meta.knowledge.mode.name(),
            });
        }
        let docs: Vec<Document> = texts.iter().map(|t| Document::new(*t)).collect();
        Ok(self
            .predict_documents(&docs)?
            .into_iter()
            .map(|tagged| tagged.entities)
            .collect())
    }

    /// Entity-level metrics on labelled sentences, with `docs[i]` the knowledge of sentence
    /// `i` (its text is the sentence's characters): the scores with every entity, the
    /// calibration of the entities' probabilities and the scores at `min_score` thresholds
    /// ([`score_decoded`]).
    pub fn evaluate(
        &self,
        sentences: &[Sentence],
        docs: &[Document],
    ) -> Result<NerMetrics, NerError> {
        let items: Vec<Vec<String>> = sentences.iter().map(|s| s.chars.clone()).collect();
        let (decoded, _) = self.predict_decoded(docs, &items)?;
        Ok(score_decoded(&self.meta.labels, sentences, &decoded))
    }
}
