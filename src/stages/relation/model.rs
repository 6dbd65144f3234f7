//! A trained relation model directory and inference over (text, head, tail) pairs. The
//! directory holds `model.safetensors` (encoder and classifier), the encoder's `config.json`
//! and `vocab.txt`, `relation.json` (labels, no-relation label, markers, window, knowledge) and
//! `train.toml` (the configuration that produced it).
use std::path::Path;

use candle_core::Device;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::data::RelationExample;
use super::features::{Batch, Example, Featurizer};
use super::metrics::{score, RelationMetrics};
use super::network::RelationNetwork;
use super::RelationError;
use crate::doc::Document;
use crate::doc::Span;
use crate::knowledge::{CharVocab, DocumentKnowledge};
use crate::model::load::read_config;
use crate::model::{check_max_len, check_vocab_fits, Dropout, Precision};
use crate::stages::task::{
    documents, map_weights, read_trained, Annotator, Injection, KnowledgeRecord,
};

/// Weights of a saved model.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Settings of a saved model.
pub const META_FILE: &str = "relation.json";
/// The training configuration a saved model came from.
pub const TOML_FILE: &str = "train.toml";
/// Pairs encoded per forward pass at prediction time.
pub const PREDICT_BATCH: usize = 64;

/// What a model needs besides its weights (`relation.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// Label names by id.
    pub labels: Vec<String>,
    /// The no-relation label (one of `labels`).
    pub no_relation: String,
    /// Longest input in tokens.
    pub max_len: usize,
    /// Head and tail marker tokens.
    pub markers: [String; 2],
    /// The knowledge it was trained with (no paths: the KG is named by its content).
    pub knowledge: KnowledgeRecord,
}

impl ModelMeta {
    /// The id of `label`, if it is one of the model's labels.
    pub fn id(&self, label: &str) -> Option<u32> {
        self.labels
            .iter()
            .position(|l| l == label)
            .map(|i| i as u32)
    }

    /// The id of the no-relation label.
    pub fn no_relation_id(&self) -> u32 {
        self.id(&self.no_relation).unwrap_or(0)
    }
}

/// The featurizer a model's settings describe, reading `vocab.txt` from the model directory
/// `vocab_dir` (whose embedding table it must fit).
pub fn build_featurizer(vocab_dir: &Path, meta: &ModelMeta) -> Result<Featurizer, RelationError> {
    let vocab = CharVocab::from_file(vocab_dir)
        .map_err(|e| RelationError::ModelDir {
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
    let injection = Injection::new(&meta.knowledge, None).map_err(|e| RelationError::ModelDir {
        path: vocab_dir.to_path_buf(),
        message: crate::error::report(&e),
    })?;
    let [h, t] = &meta.markers;
    Featurizer::new(vocab, [h.as_str(), t.as_str()], meta.max_len, injection)
}

/// The documents of labelled examples, linked by `annotator` when the model uses knowledge
/// (each distinct sentence once), and the document of each example.
pub fn example_documents(
    annotator: Option<&Annotator>,
    examples: &[RelationExample],
) -> Result<(Vec<Document>, Vec<usize>), RelationError> {
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut texts: Vec<&str> = Vec::new();
    let owners = examples
        .iter()
        .map(|e| {
            *index.entry(e.text.as_str()).or_insert_with(|| {
                texts.push(&e.text);
                texts.len() - 1
            })
        })
        .collect();
    Ok((documents(annotator, &texts)?, owners))
}

/// Encodes labelled examples (in parallel), example `i` over `docs[owners[i]]`; a label
/// outside `meta` is an error naming the line of `path`.
pub fn featurize(
    featurizer: &Featurizer,
    meta: &ModelMeta,
    examples: &[RelationExample],
    (docs, owners): (&[Document], &[usize]),
    path: &Path,
) -> Result<Vec<Example>, RelationError> {
    // Each document is prepared once, however many pairs it holds.
    let cuts: Vec<DocumentKnowledge<'_>> = docs.par_iter().map(DocumentKnowledge::new).collect();
    examples
        .par_iter()
        .zip(owners)
        .map(|(e, &owner)| {
            let label = meta.id(&e.label).ok_or_else(|| RelationError::Data {
                path: path.to_path_buf(),
                line: e.line,
                message: format!(
                    "relation {:?} is not one of the model's labels {:?}",
                    e.label, meta.labels
                ),
            })?;
            Ok(featurizer.encode_in(&cuts[owner], e.head, e.tail, label)?.0)
        })
        .collect()
}

/// The label id and its probability for each example, batched by length.
pub fn predict_examples(
    network: &RelationNetwork,
    examples: &[Example],
    device: &Device,
) -> Result<Vec<Prediction>, RelationError> {
    Ok(predict_logits(network, examples, device)?
        .iter()
        .map(|row| Prediction::from_logits(row))
        .collect())
}

/// The label logits of each example, batched by length.
pub fn predict_logits(
    network: &RelationNetwork,
    examples: &[Example],
    device: &Device,
) -> Result<Vec<Vec<f32>>, RelationError> {
    let mut out = vec![Vec::new(); examples.len()];
    let mut order: Vec<usize> = (0..examples.len()).collect();
    order.sort_by_key(|&i| examples[i].len());
    let off = Dropout::disabled();
    for chunk in order.chunks(PREDICT_BATCH) {
        let batch_examples: Vec<&Example> = chunk.iter().map(|&i| &examples[i]).collect();
        let batch = Batch::new(&batch_examples, device)?;
        let rows: Vec<Vec<f32>> = network.logits(&batch, &off)?.to_vec2()?;
        for (&i, row) in chunk.iter().zip(rows) {
            out[i] = row;
        }
    }
    Ok(out)
}

/// A classified pair: the label id and its softmax probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// The predicted label id.
    pub label: u32,
    /// Its probability.
    pub score: f32,
}

impl Prediction {
    /// The softmax probability of `label` under `logits` (0 for a label outside them).
    pub fn probability_of(logits: &[f32], label: u32) -> f32 {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = logits.iter().map(|&x| (x - max).exp()).sum();
        logits
            .get(label as usize)
            .map_or(0.0, |&x| (x - max).exp() / sum)
    }

    /// The arg-max of `logits` (the first on a tie) and its softmax probability.
    pub fn from_logits(logits: &[f32]) -> Self {
        let (label, max) =
            logits
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &x)| {
                    if x > best.1 {
                        (i, x)
                    } else {
                        best
                    }
                });
        let sum: f32 = logits.iter().map(|&x| (x - max).exp()).sum();
        Self {
            label: label as u32,
            score: 1.0 / sum,
        }
    }
}

/// One pair to classify: a text and two character spans of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairInput<'a> {
    /// The sentence.
    pub text: &'a str,
    /// The head (subject) span.
    pub head: Span,
    /// The tail (object) span.
    pub tail: Span,
}

/// A loaded relation model: thread-safe, runs the fused inference kernels.
pub struct RelationModel {
    pub(super) network: RelationNetwork,
    pub(super) featurizer: Featurizer,
    pub(super) meta: ModelMeta,
    pub(super) device: Device,
}

impl RelationModel {
    /// Loads a model directory written by training (`OUTPUT/best`) onto the CPU.
    pub fn load(dir: &Path) -> Result<Self, RelationError> {
        Self::load_on(dir, &Device::Cpu)
    }

    /// Loads a model directory written by training onto `device` (see
    /// [`crate::model::parse_device`]).
    pub fn load_on(dir: &Path, device: &Device) -> Result<Self, RelationError> {
        Self::load_at(dir, device, Precision::F32)
    }

    /// [`RelationModel::load_on`] with the dense layers' arithmetic `precision`.
    pub fn load_at(
        dir: &Path,
        device: &Device,
        precision: Precision,
    ) -> Result<Self, RelationError> {
        let (meta, cfg): (ModelMeta, _) = read_trained(dir, META_FILE, precision)?;
        if meta.id(&meta.no_relation).is_none() {
            return Err(RelationError::ModelDir {
                path: dir.to_path_buf(),
                message: format!(
                    "{META_FILE}: no_relation {:?} is not one of the labels",
                    meta.no_relation
                ),
            });
        }
        let file = dir.join(META_FILE);
        check_max_len(
            dir,
            &cfg,
            &format!("{} max_len", file.display()),
            meta.max_len,
        )?;
        let vb = map_weights(dir, WEIGHTS_FILE, device)?;
        let network = RelationNetwork::load(vb, &cfg, meta.labels.len())?;
        let featurizer = build_featurizer(dir, &meta)?;
        Ok(Self {
            network,
            featurizer,
            meta,
            device: device.clone(),
        })
    }

    /// Label names by id.
    pub fn labels(&self) -> &[String] {
        &self.meta.labels
    }

    /// The no-relation label.
    pub fn no_relation(&self) -> &str {
        &self.meta.no_relation
    }

    /// The name of label `id`.
    pub fn label(&self, id: u32) -> &str {
        self.meta.labels.get(id as usize).map_or("", String::as_str)
    }

    /// The knowledge the model was trained with.
    pub fn knowledge(&self) -> &KnowledgeRecord {
        &self.meta.knowledge
    }

    /// Classifies every pair, for a model without knowledge; a model trained with knowledge
    /// needs linked documents ([`RelationModel::predict_in_documents`]).
    pub fn predict(&self, pairs: &[PairInput<'_>]) -> Result<Vec<Prediction>, RelationError> {
        if self.meta.knowledge.mode != crate::stages::task::KnowledgeMode::Plain {
            return Err(RelationError::NeedsDocuments {
                mode: self.meta.knowledge.mode.name(),
            });
        }
        let docs: Vec<Document> = pairs.iter().map(|p| Document::new(p.text)).collect();
        let pairs: Vec<(usize, Span, Span)> = pairs
            .iter()
            .enumerate()
            .map(|(i, p)| (i, p.head, p.tail))
            .collect();
        Ok(self
            .predict_in_documents(&docs, &pairs)?
            .into_iter()
            .map(|(p, _)| p)
            .collect())
    }

    /// Classifies pairs `(document, head, tail)` of `docs`, with the knowledge their
    /// `mentions` and `facts` carry; each prediction comes with the indices of its
    /// document's facts that were fed to the encoder.
    pub fn predict_in_documents(
        &self,
        docs: &[Document],
        pairs: &[(usize, Span, Span)],
    ) -> Result<Vec<(Prediction, Vec<usize>)>, RelationError> {
        // Each document is prepared once, however many pairs it holds.
        let cuts: Vec<DocumentKnowledge<'_>> =
            docs.par_iter().map(DocumentKnowledge::new).collect();
        let encoded: Vec<(Example, Vec<usize>)> = pairs
            .par_iter()
            .map(|&(d, head, tail)| {
                let cut = cuts.get(d).ok_or(RelationError::NoSuchDocument {
                    index: d,
                    len: docs.len(),
                })?;
                self.featurizer.encode_in(cut, head, tail, 0)
            })
            .collect::<Result<_, _>>()?;
        let (examples, injected): (Vec<Example>, Vec<Vec<usize>>) = encoded.into_iter().unzip();
        let predictions = predict_examples(&self.network, &examples, &self.device)?;
        Ok(predictions.into_iter().zip(injected).collect())
    }

    /// Metrics on labelled examples read from `path` (named in errors).
    /// `docs`/`owners` as [`example_documents`] gives them.
    pub fn evaluate(
        &self,
        examples: &[RelationExample],
        (docs, owners): (&[Document], &[usize]),
        path: &Path,
    ) -> Result<RelationMetrics, RelationError> {
        let encoded = featurize(&self.featurizer, &self.meta, examples, (docs, owners), path)?;
        let predicted = predict_examples(&self.network, &encoded, &self.device)?;
        let gold: Vec<u32> = encoded.iter().map(|e| e.label).collect();
        let predicted: Vec<u32> = predicted.iter().map(|p| p.label).collect();
        Ok(score(
            &self.meta.labels,
            self.meta.no_relation_id(),
            &gold,
            &predicted,
        ))
    }
}
