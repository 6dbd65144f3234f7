//! A trained QA model directory and inference over (question, context) pairs. The directory
//! holds `model.safetensors` (encoder and span head), the encoder's `config.json`, its
//! tokenizer (`vocab.txt`, and `tokenizer.json` when the encoder had one), `qa.json`
//! (windowing and decoding) and `train.toml` (the configuration that produced it).
use std::path::Path;

use candle_core::Device;

use crate::model::load::read_config;
use crate::model::{check_max_len, Precision};
use serde::{Deserialize, Serialize};

use super::config::{DecodeOptions, WindowOptions};
use super::data::QaRecord;
use super::decode::to_answers;
use super::features::QaFeaturizer;
use super::metrics::QaMetrics;
use super::network::QaNetwork;
use super::predict::{evaluate, featurize, predict_spans};
use super::QaError;
use crate::doc::Answer;
use crate::model::BertTokenizer;
use crate::stages::task::{map_weights, read_trained};

/// Weights of a saved model.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// Settings of a saved model.
pub const META_FILE: &str = "qa.json";
/// The training configuration a saved model came from.
pub const TOML_FILE: &str = "train.toml";
/// Tokenizer files copied from the encoder directory when present (`vocab.txt` is required).
pub const TOKENIZER_FILES: &[&str] = &["vocab.txt", "tokenizer.json"];

/// What a model needs besides its weights (`qa.json`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelMeta {
    /// How inputs are windowed.
    pub window: WindowOptions,
    /// How spans are searched.
    pub decode: DecodeOptions,
}

/// The featurizer for `window` with the tokenizer of the model directory `dir` (whose
/// embedding table it must fit).
pub fn build_featurizer(dir: &Path, window: WindowOptions) -> Result<QaFeaturizer, QaError> {
    let tokenizer = BertTokenizer::for_model(dir, &read_config(dir)?)?;
    QaFeaturizer::new(tokenizer, window).map_err(|message| QaError::ModelDir {
        path: dir.to_path_buf(),
        message,
    })
}

/// A loaded QA model: thread-safe, runs the fused inference kernels.
pub struct QaModel {
    network: QaNetwork,
    featurizer: QaFeaturizer,
    meta: ModelMeta,
    device: Device,
}

impl QaModel {
    /// Loads a model directory written by training (`OUTPUT/best`) onto the CPU.
    pub fn load(dir: &Path) -> Result<Self, QaError> {
        Self::load_on(dir, &Device::Cpu)
    }

    /// Loads a model directory written by training onto `device`.
    pub fn load_on(dir: &Path, device: &Device) -> Result<Self, QaError> {
        Self::load_at(dir, device, Precision::F32)
    }

    /// [`QaModel::load_on`] with the dense layers' arithmetic `precision`.
    pub fn load_at(dir: &Path, device: &Device, precision: Precision) -> Result<Self, QaError> {
        let (meta, cfg): (ModelMeta, _) = read_trained(dir, META_FILE, precision)?;
        let file = dir.join(META_FILE);
        check_max_len(
            dir,
            &cfg,
            &format!("{} window.max_len", file.display()),
            meta.window.max_len,
        )?;
        let vb = map_weights(dir, WEIGHTS_FILE, device)?;
        let network = QaNetwork::load(vb, &cfg)?;
        let featurizer = build_featurizer(dir, meta.window)?;
        Ok(Self {
            network,
            featurizer,
            meta,
            device: device.clone(),
        })
    }

    /// The windowing and decoding settings.
    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// Changes the decoding settings (e.g. from the `qa` stage's table).
    pub fn with_decode(mut self, decode: DecodeOptions) -> Self {
        self.meta.decode = decode;
        self
    }

    /// The `top_k` best answers to each `(question, context)` pair, best first, as character
    /// spans of the context; the score is a probability over the n-best candidates.
    pub fn predict(
        &self,
        pairs: &[(&str, &str)],
        top_k: usize,
    ) -> Result<Vec<Vec<Answer>>, QaError> {
        let windows = featurize(&self.featurizer, pairs.iter().map(|&(q, c)| (q, c, None)))?;
        let k = self.meta.decode.n_best.max(top_k);
        let spans = predict_spans(
            &self.network,
            &windows,
            pairs.len(),
            &self.meta.decode,
            k,
            &self.device,
        )?;
        Ok(pairs
            .iter()
            .zip(spans)
            .map(|(&(_, context), ranked)| {
                let mut answers = to_answers(context, &ranked);
                answers.truncate(top_k);
                answers
            })
            .collect())
    }

    /// CMRC 2018 scores on labelled questions.
    pub fn evaluate(&self, records: &[QaRecord]) -> Result<QaMetrics, QaError> {
        let windows = featurize(
            &self.featurizer,
            records
                .iter()
                .map(|r| (r.question.as_str(), r.context.as_str(), None)),
        )?;
        evaluate(
            &self.network,
            records,
            &windows,
            &self.meta.decode,
            &self.device,
        )
    }
}
