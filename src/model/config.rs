//! `BertConfig`: the Hugging Face `config.json` of a BERT-family checkpoint, field for field,
//! plus ERNIE-THU's optional `layer_types` and, for an ALBERT checkpoint (`model_type =
//! "albert"`, read by [`super::albert`]), its factorised embeddings and shared layers.
use std::path::Path;

use serde::Deserialize;

use super::ModelError;

/// The activation named by `hidden_act` in `config.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HiddenAct {
    /// Exact GELU, `x * Φ(x)` with the error function (what BERT uses).
    Gelu,
    /// GELU's tanh approximation, `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))` (ALBERT's
    /// default; `gelu_pytorch_tanh` is the same function).
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh")]
    GeluNew,
    /// ReLU.
    Relu,
}

impl HiddenAct {
    /// The activation with candle ops that have a backward pass (the fused inference kernels
    /// apply it inside their dense layers instead).
    pub fn forward(self, x: &candle_core::Tensor) -> candle_core::Result<candle_core::Tensor> {
        match self {
            HiddenAct::Gelu => super::kernels::grad::gelu(x),
            HiddenAct::GeluNew => super::kernels::grad::gelu_tanh(x),
            HiddenAct::Relu => x.relu(),
        }
    }
}

/// The kind of one ERNIE-THU layer (`layer_types` in ERNIE's `bert_config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerType {
    /// A plain BERT layer over the tokens only.
    Sim,
    /// Token self-attention; the entity input is passed through and fused.
    Mix,
    /// The knowledgeable aggregator: token and entity attention, then fusion.
    Norm,
}

/// Which implementation of LayerNorm, softmax, attention and GELU the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// Fused CPU kernels (no backward pass). Falls back to candle ops off the CPU or for
    /// non-f32 tensors. Use for inference.
    #[default]
    Fast,
    /// candle ops with a backward pass everywhere. Use for training.
    Differentiable,
    /// [`Kernels::Fast`] with the dense layers in bf16: weights rounded and packed once at
    /// load, activations rounded per layer, products accumulated in f32 (AVX512-BF16
    /// `VDPBF16PS`). It changes the numbers slightly (on m3e-small up to 3e-2 absolute in the
    /// hidden states, cosine 0.99999 to f32; see the README), so it is opt-in. On CPUs without
    /// AVX512-BF16 it runs exactly as `Fast`. ERNIE models run their layers with candle ops, so
    /// for them it is `Fast`.
    FastBf16,
    /// [`Kernels::Fast`] with every dense layer in int8 (BERT's and, through candle ops, the
    /// ERNIE aggregators'): weights quantised per output channel (7 bits) and packed once at
    /// load, activations quantised per row (u8 with a zero point) on each call, products
    /// accumulated in i32 and dequantised in f32 (AVX512-VNNI, AVX-VNNI, AVX2 or scalar
    /// kernels, chosen at run time; all give the same numbers). Changes the numbers more than
    /// bf16 (see `kernels::int8` and benches/RESULTS.md), so it is opt-in. Inference only:
    /// int8 layers have no backward pass.
    FastInt8,
}

impl Kernels {
    /// Whether this is one of the fused inference variants ([`Kernels::Fast`],
    /// [`Kernels::FastBf16`], [`Kernels::FastInt8`]).
    pub fn is_fast(self) -> bool {
        matches!(self, Kernels::Fast | Kernels::FastBf16 | Kernels::FastInt8)
    }

    /// The inference kernels for `precision`.
    pub fn inference(precision: Precision) -> Self {
        match precision {
            Precision::F32 => Kernels::Fast,
            Precision::Bf16 => Kernels::FastBf16,
            Precision::Int8 => Kernels::FastInt8,
        }
    }
}

/// Arithmetic of the dense layers at inference (`--precision` on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 throughout (the reference numbers).
    #[default]
    F32,
    /// bf16 products with f32 accumulation where the CPU has AVX512-BF16 ([`Kernels::FastBf16`]).
    Bf16,
    /// int8 dynamic quantisation of the dense layers on every CPU ([`Kernels::FastInt8`]).
    Int8,
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            "int8" => Ok(Precision::Int8),
            other => Err(format!(
                "unknown precision {other:?}: expected f32, bf16 or int8"
            )),
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        })
    }
}

fn default_layer_norm_eps() -> f64 {
    1e-12
}

fn default_hidden_act() -> HiddenAct {
    HiddenAct::Gelu
}

fn default_type_vocab_size() -> usize {
    2
}

fn default_position_embedding_type() -> String {
    "absolute".to_string()
}

/// A BERT configuration as written in a Hugging Face `config.json` (unknown keys are ignored,
/// since real files carry many unrelated ones).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    /// Number of rows of the word-embedding table.
    pub vocab_size: usize,
    /// Width of every hidden state.
    pub hidden_size: usize,
    /// Number of encoder layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer; must divide `hidden_size`.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Feed-forward activation.
    #[serde(default = "default_hidden_act")]
    pub hidden_act: HiddenAct,
    /// Rows of the position-embedding table (longest sequence).
    pub max_position_embeddings: usize,
    /// Rows of the token-type (segment) table.
    #[serde(default = "default_type_vocab_size")]
    pub type_vocab_size: usize,
    /// LayerNorm epsilon used everywhere.
    #[serde(default = "default_layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// Id of the padding token.
    #[serde(default)]
    pub pad_token_id: u32,
    /// Only `"absolute"` is supported.
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
    /// ERNIE-THU: the kind of each layer from the bottom (absent for plain BERT); layers past
    /// the end of the list are `sim`, as in ERNIE's code.
    #[serde(default)]
    pub layer_types: Option<Vec<LayerType>>,
    /// ALBERT's factorised embeddings and shared layers (`None` for BERT). Not read by this
    /// struct's own parser: [`BertConfig::from_file`] fills it from an ALBERT `config.json`.
    #[serde(skip)]
    pub albert: Option<AlbertLayout>,
    /// Not part of `config.json`: which kernels the loaded model runs.
    #[serde(skip)]
    pub kernels: Kernels,
}

/// What an ALBERT ([Lan et al., 2020](https://arxiv.org/abs/1909.11942)) adds to BERT's shape:
/// embedding tables of their own width, projected to `hidden_size` by
/// `encoder.embedding_hidden_mapping_in`, and `num_hidden_groups` distinct layers shared by the
/// `num_hidden_layers` positions of the stack (layer `i` runs group
/// `i * num_hidden_groups / num_hidden_layers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlbertLayout {
    /// Width of the word, position and token-type tables (`embedding_size`).
    pub embedding_size: usize,
    /// Number of distinct layers (`num_hidden_groups`); divides `num_hidden_layers`.
    pub num_hidden_groups: usize,
}

impl Default for BertConfig {
    /// `bert-base-chinese`'s shape.
    fn default() -> Self {
        Self {
            vocab_size: 21128,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: HiddenAct::Gelu,
            max_position_embeddings: 512,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
            position_embedding_type: default_position_embedding_type(),
            layer_types: None,
            albert: None,
            kernels: Kernels::Fast,
        }
    }
}

impl BertConfig {
    /// Reads and validates a `config.json`: an ALBERT one (`model_type = "albert"`) through
    /// [`super::albert::AlbertConfig`], any other as BERT.
    pub fn from_file(path: &Path) -> Result<Self, ModelError> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |message: String| ModelError::Config {
            path: path.to_path_buf(),
            message,
        };
        // Text that is not a JSON object fails below, as it always did for BERT.
        let cfg: Self = if matches!(super::albert::is_albert(&text), Ok(true)) {
            super::albert::AlbertConfig::parse(&text).map_err(bad)?
        } else {
            serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?
        };
        cfg.validate().map_err(|message| ModelError::Config {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(cfg)
    }

    /// Checks the invariants the model relies on.
    pub fn validate(&self) -> Result<(), String> {
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.position_embedding_type != "absolute" {
            return Err(format!(
                "position_embedding_type {:?} is not supported (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        if let Some(albert) = &self.albert {
            albert.validate(self)?;
        }
        if let Some(types) = &self.layer_types {
            if types.len() > self.num_hidden_layers {
                return Err(format!(
                    "layer_types has {} entries but num_hidden_layers is only {}",
                    types.len(),
                    self.num_hidden_layers
                ));
            }
        }
        Ok(())
    }

    /// The kind of every layer: `layer_types` padded with `sim` (all `sim` for plain BERT).
    pub fn layer_kinds(&self) -> Vec<LayerType> {
        let mut kinds = self.layer_types.clone().unwrap_or_default();
        kinds.resize(self.num_hidden_layers, LayerType::Sim);
        kinds
    }

    /// Whether this is an ERNIE-THU config (some layer fuses entities).
    pub fn is_ernie(&self) -> bool {
        self.layer_kinds().iter().any(|k| *k != LayerType::Sim)
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Width of the embedding tables: ALBERT's `embedding_size`, else `hidden_size`.
    pub fn embedding_size(&self) -> usize {
        self.albert.map_or(self.hidden_size, |a| a.embedding_size)
    }

    /// Number of distinct layers with parameters of their own: ALBERT's
    /// `num_hidden_groups`, else `num_hidden_layers`.
    pub fn distinct_layers(&self) -> usize {
        self.albert
            .map_or(self.num_hidden_layers, |a| a.num_hidden_groups)
    }

    /// For each of the `num_hidden_layers` positions of the stack, the distinct layer it runs
    /// (`0..n` for BERT; ALBERT's group of each position).
    pub fn layer_schedule(&self) -> Vec<usize> {
        let (n, g) = (self.num_hidden_layers, self.distinct_layers());
        (0..n).map(|i| i * g / n.max(1)).collect()
    }
}

/// A BERT of `layers` layers small enough to build in a unit test (vocabulary 12, hidden 8, 2
/// heads, intermediate 16, 8 positions).
#[cfg(test)]
pub(crate) fn micro_config(layers: usize) -> BertConfig {
    BertConfig {
        vocab_size: 12,
        hidden_size: 8,
        num_hidden_layers: layers,
        num_attention_heads: 2,
        intermediate_size: 16,
        max_position_embeddings: 8,
        ..BertConfig::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_hf_config_and_ignores_unknown_keys() {
        let json = r#"{"architectures":["BertModel"],"hidden_act":"gelu","hidden_size":512,
            "intermediate_size":2048,"layer_norm_eps":1e-12,"max_position_embeddings":512,
            "model_type":"bert","num_attention_heads":8,"num_hidden_layers":4,
            "pad_token_id":0,"type_vocab_size":2,"vocab_size":21128}"#;
        let cfg: BertConfig = serde_json::from_str(json).unwrap();
        assert_eq!(cfg.hidden_size, 512);
        assert_eq!(cfg.head_dim(), 64);
        assert_eq!(cfg.layer_types, None);
        assert_eq!(cfg.validate(), Ok(()));
    }

    #[test]
    fn reads_ernie_layer_types_and_checks_their_count() {
        let json = r#"{"hidden_size":8,"intermediate_size":16,"max_position_embeddings":16,
            "num_attention_heads":2,"num_hidden_layers":3,"vocab_size":30,
            "layer_types":["sim","mix","norm"]}"#;
        let cfg: BertConfig = serde_json::from_str(json).unwrap();
        assert_eq!(
            cfg.layer_types,
            Some(vec![LayerType::Sim, LayerType::Mix, LayerType::Norm])
        );
        let long = BertConfig {
            layer_types: Some(vec![LayerType::Sim; 4]),
            ..cfg
        };
        assert!(long.validate().unwrap_err().contains("layer_types has 4"));
    }

    #[test]
    fn precisions_parse_print_and_pick_their_kernels() {
        for (text, p, k) in [
            ("f32", Precision::F32, Kernels::Fast),
            ("bf16", Precision::Bf16, Kernels::FastBf16),
            ("int8", Precision::Int8, Kernels::FastInt8),
        ] {
            assert_eq!(text.parse::<Precision>(), Ok(p));
            assert_eq!(p.to_string(), text);
            assert_eq!(Kernels::inference(p), k);
            assert!(k.is_fast());
        }
        let p: Precision = serde_json::from_str("\"int8\"").unwrap();
        assert_eq!(p, Precision::Int8);
        assert!("int4".parse::<Precision>().unwrap_err().contains("int8"));
    }
}
