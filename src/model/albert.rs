//! ALBERT ([Lan et al., 2020](https://arxiv.org/abs/1909.11942)) as a [`BertModel`]: the same
//! layers with two changes of shape, so every stage, K-BERT input, training path and kernel
//! set runs it unchanged.
//!
//! - **Factorised embeddings.** The word, position and token-type tables are `embedding_size`
//!   wide (e.g. 128 against a hidden size of 312 or 768); after their LayerNorm,
//!   `encoder.embedding_hidden_mapping_in` projects them to `hidden_size`.
//! - **Shared layers.** The checkpoint holds `num_hidden_groups` layers; position `i` of the
//!   `num_hidden_layers`-deep stack runs group `i * num_hidden_groups / num_hidden_layers`.
//!   The encoder keeps one copy of each group and a schedule of which runs where
//!   ([`BertConfig::layer_schedule`]), so a VarMap holds one set of variables per group and
//!   gradients from every position that shares it add up in it.
//!
//! A Hugging Face ALBERT directory (`config.json` with `model_type = "albert"`, weights as
//! `AlbertModel` or `AlbertForMaskedLM` saves them, with or without the `albert.` prefix) is
//! read by [`AlbertConfig`] and loaded by [`super::load_bert`] like any BERT; its tensors are
//! renamed to BERT's by [`bert_name`]:
//!
//! | ALBERT | BERT (canonical) |
//! |---|---|
//! | `encoder.albert_layer_groups.G.albert_layers.0.attention.{query,key,value}` | `encoder.layer.G.attention.self.{query,key,value}` |
//! | `….attention.dense`, `….attention.LayerNorm` | `….attention.output.dense`, `….attention.output.LayerNorm` |
//! | `….ffn`, `….ffn_output`, `….full_layer_layer_norm` | `….intermediate.dense`, `….output.dense`, `….output.LayerNorm` |
//! | `predictions.{dense,LayerNorm}`, `predictions.{bias,decoder.*}` | `cls.predictions.transform.{dense,LayerNorm}`, `cls.predictions.{bias,decoder.*}` |
//!
//! `embeddings.*` and `encoder.embedding_hidden_mapping_in.*` keep their names. A trained
//! stage model saves the canonical names beside the ALBERT `config.json`, and loads back the
//! same way. Only `inner_group_num = 1` (every released ALBERT) is supported.
//!
//! [`BertModel`]: super::BertModel
use std::borrow::Cow;

use serde::Deserialize;

use super::config::{AlbertLayout, BertConfig, HiddenAct, Kernels};

/// The `model_type` of an ALBERT `config.json`.
pub const MODEL_TYPE: &str = "albert";

/// Whether the `config.json` text names `model_type = "albert"` (an error only for text that
/// is not a JSON object).
pub fn is_albert(config_json: &str) -> Result<bool, serde_json::Error> {
    #[derive(Deserialize)]
    struct ModelType {
        #[serde(default)]
        model_type: Option<String>,
    }
    let t: ModelType = serde_json::from_str(config_json)?;
    Ok(t.model_type.as_deref() == Some(MODEL_TYPE))
}

fn default_vocab_size() -> usize {
    30000
}
fn default_embedding_size() -> usize {
    128
}
fn default_hidden_size() -> usize {
    4096
}
fn default_num_hidden_layers() -> usize {
    12
}
fn default_one() -> usize {
    1
}
fn default_num_attention_heads() -> usize {
    64
}
fn default_intermediate_size() -> usize {
    16384
}
fn default_hidden_act() -> HiddenAct {
    HiddenAct::GeluNew
}
fn default_max_position_embeddings() -> usize {
    512
}
fn default_type_vocab_size() -> usize {
    2
}
fn default_layer_norm_eps() -> f64 {
    1e-12
}
fn default_position_embedding_type() -> String {
    "absolute".to_string()
}

/// An ALBERT `config.json` as transformers' `AlbertConfig` reads it: a key that is missing
/// takes `AlbertConfig`'s default (so `hidden_act` is `gelu_new` unless given); unknown keys
/// are ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AlbertConfig {
    /// Rows of the word-embedding table.
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    /// Width of the embedding tables.
    #[serde(default = "default_embedding_size")]
    pub embedding_size: usize,
    /// Width of every hidden state.
    #[serde(default = "default_hidden_size")]
    pub hidden_size: usize,
    /// Depth of the layer stack (positions, not distinct layers).
    #[serde(default = "default_num_hidden_layers")]
    pub num_hidden_layers: usize,
    /// Distinct layers, shared by consecutive runs of positions.
    #[serde(default = "default_one")]
    pub num_hidden_groups: usize,
    /// Attention heads per layer.
    #[serde(default = "default_num_attention_heads")]
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    #[serde(default = "default_intermediate_size")]
    pub intermediate_size: usize,
    /// Layers inside each group; only 1 is supported.
    #[serde(default = "default_one")]
    pub inner_group_num: usize,
    /// Feed-forward activation (`gelu_new` by default).
    #[serde(default = "default_hidden_act")]
    pub hidden_act: HiddenAct,
    /// Rows of the position-embedding table.
    #[serde(default = "default_max_position_embeddings")]
    pub max_position_embeddings: usize,
    /// Rows of the token-type table.
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Id of the padding token.
    #[serde(default)]
    pub pad_token_id: u32,
    /// Only `"absolute"` is supported.
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
}

impl AlbertConfig {
    /// Parses an ALBERT `config.json` into the [`BertConfig`] that runs it (not yet
    /// validated: [`BertConfig::validate`] checks the group layout too). The message of an
    /// error says what was found and what is expected.
    pub fn parse(config_json: &str) -> Result<BertConfig, String> {
        let c: Self = serde_json::from_str(config_json).map_err(|e| e.to_string())?;
        c.to_bert()
    }

    /// The [`BertConfig`] of this ALBERT.
    pub fn to_bert(&self) -> Result<BertConfig, String> {
        if self.inner_group_num != 1 {
            return Err(format!(
                "inner_group_num {} is not supported: ALBERT models are read with one layer \
                 per group (inner_group_num = 1, as in every released checkpoint)",
                self.inner_group_num
            ));
        }
        Ok(BertConfig {
            vocab_size: self.vocab_size,
            hidden_size: self.hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            hidden_act: self.hidden_act,
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: self.type_vocab_size,
            layer_norm_eps: self.layer_norm_eps,
            pad_token_id: self.pad_token_id,
            position_embedding_type: self.position_embedding_type.clone(),
            layer_types: None,
            albert: Some(AlbertLayout {
                embedding_size: self.embedding_size,
                num_hidden_groups: self.num_hidden_groups,
            }),
            kernels: Kernels::default(),
        })
    }
}

impl AlbertLayout {
    /// Checks the layout against the rest of `cfg`: at least one group, and a number of
    /// groups that divides the depth (so each group runs the same number of consecutive
    /// positions, as transformers' `int(i / (layers / groups))` computes exactly); no ERNIE
    /// layer types (their aggregators have weights of their own per layer).
    pub fn validate(&self, cfg: &BertConfig) -> Result<(), String> {
        let (n, g) = (cfg.num_hidden_layers, self.num_hidden_groups);
        if self.embedding_size == 0 {
            return Err("embedding_size must be at least 1".into());
        }
        if g == 0 || g > n.max(1) || !n.is_multiple_of(g) {
            return Err(format!(
                "num_hidden_groups {g} is not supported with num_hidden_layers {n}: \
                 expected a number of groups from 1 to {n} that divides it"
            ));
        }
        if cfg.layer_types.is_some() {
            return Err(
                "ERNIE layer_types are not supported for ALBERT (its layers are shared)".into(),
            );
        }
        Ok(())
    }
}

/// The sub-layers of an ALBERT layer and their BERT names.
const LAYER_RENAMES: [(&str, &str); 8] = [
    ("attention.query.", "attention.self.query."),
    ("attention.key.", "attention.self.key."),
    ("attention.value.", "attention.self.value."),
    ("attention.dense.", "attention.output.dense."),
    ("attention.LayerNorm.", "attention.output.LayerNorm."),
    ("ffn.", "intermediate.dense."),
    ("ffn_output.", "output.dense."),
    ("full_layer_layer_norm.", "output.LayerNorm."),
];

/// The masked-LM head's tensors and their BERT names.
const HEAD_RENAMES: [(&str, &str); 4] = [
    ("predictions.dense.", "cls.predictions.transform.dense."),
    (
        "predictions.LayerNorm.",
        "cls.predictions.transform.LayerNorm.",
    ),
    ("predictions.decoder.", "cls.predictions.decoder."),
    ("predictions.bias", "cls.predictions.bias"),
];

/// The canonical (BERT) name of an ALBERT checkpoint tensor, without the `albert.` prefix
/// (see the table in the module docs); any other name (every BERT one) comes back as it is.
/// A layer of a group other than the first (`albert_layers.1`, `inner_group_num > 1`) keeps
/// its name: configs with it are refused.
pub fn bert_name(name: &str) -> Cow<'_, str> {
    let name = name.strip_prefix("albert.").unwrap_or(name);
    if let Some(rest) = name.strip_prefix("encoder.albert_layer_groups.") {
        if let Some((group, sub)) = rest.split_once(".albert_layers.0.") {
            if group.parse::<usize>().is_ok() {
                if let Some((from, to)) = LAYER_RENAMES.iter().find(|(f, _)| sub.starts_with(f)) {
                    return Cow::Owned(format!("encoder.layer.{group}.{to}{}", &sub[from.len()..]));
                }
            }
        }
    }
    for (from, to) in HEAD_RENAMES {
        if let Some(tail) = name.strip_prefix(from) {
            return Cow::Owned(format!("{to}{tail}"));
        }
    }
    Cow::Borrowed(name)
}

#[cfg(test)]
mod tests;
