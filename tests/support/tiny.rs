//! The tiny BERT every test builds on: one shape ([`tiny_config`]: 16 wide, 2 layers, 2 heads),
//! the vocabulary a test's toy data needs, and the "pretrained" encoder the task-stage
//! workspaces start from (fixed pseudo-random weights, seed 11) written as a Hugging Face
//! model directory.
//!
//! (The library's own unit tests cannot reach `tests/`: the int8 ones keep a wider model of
//! their own, `src/model/bert/int8_tests.rs`.)
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use zhishi::model::Rng;
use zhishi::model::{BertConfig, BertModel};

/// The special tokens at the head of every tiny vocabulary, in id order (`[PAD]` is 0).
pub const SPECIALS: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// The tiny encoder: 16 wide, 2 layers of 2 heads, feed-forward 32, for `vocab_size` tokens
/// and sequences of up to `max_positions`. A test that needs another shape or kernel set
/// changes only that field (`BertConfig { kernels, ..tiny_config(20, 12) }`).
pub fn tiny_config(vocab_size: usize, max_positions: usize) -> BertConfig {
    BertConfig {
        vocab_size,
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 32,
        max_position_embeddings: max_positions,
        ..BertConfig::default()
    }
}

/// [`SPECIALS`], then one token per character of `chars`.
pub fn char_vocab(chars: &str) -> Vec<String> {
    SPECIALS
        .iter()
        .map(|s| s.to_string())
        .chain(chars.chars().map(String::from))
        .collect()
}

/// Writes `config.json` for `cfg` (the keys a Hugging Face BERT config needs).
pub fn write_config(dir: &Path, cfg: &BertConfig) {
    let config = serde_json::json!({
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_hidden_layers, "num_attention_heads": cfg.num_attention_heads,
        "intermediate_size": cfg.intermediate_size,
        "max_position_embeddings": cfg.max_position_embeddings,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

/// Writes `model.safetensors`, `config.json` and `vocab.txt` (one token per line) for `cfg`.
pub fn write_encoder(dir: &Path, cfg: &BertConfig, vocab: &[String]) {
    std::fs::create_dir_all(dir).unwrap();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    BertModel::load(vb, cfg).unwrap();
    // Fixed weights, so every workspace holds the same "pretrained" encoder.
    let mut rng = Rng::new(11);
    let vars = varmap.data().lock().unwrap().clone();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let var = &vars[name];
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| {
                if name.contains("LayerNorm.weight") {
                    1.0
                } else {
                    0.3 * rng.normal()
                }
            })
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    varmap.save(dir.join("model.safetensors")).unwrap();
    write_config(dir, cfg);
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n")).unwrap();
}
