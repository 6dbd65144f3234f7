//! A tiny ALBERT with fixed pseudo-random weights (seed 11), written as a Hugging Face ALBERT
//! directory: `config.json` (`model_type = "albert"`), `model.safetensors` under transformers'
//! `AlbertModel` names (`albert.encoder.albert_layer_groups.G.albert_layers.0.ffn`, ...) and
//! `vocab.txt`.
use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use zhishi::model::{AlbertConfig, BertModel, Rng};

/// BERT's sub-layer names and ALBERT's, below a layer.
const SUBLAYERS: [(&str, &str); 8] = [
    ("attention.self.query.", "attention.query."),
    ("attention.self.key.", "attention.key."),
    ("attention.self.value.", "attention.value."),
    ("attention.output.dense.", "attention.dense."),
    ("attention.output.LayerNorm.", "attention.LayerNorm."),
    ("intermediate.dense.", "ffn."),
    ("output.dense.", "ffn_output."),
    ("output.LayerNorm.", "full_layer_layer_norm."),
];

/// The transformers name of a canonical (BERT) tensor name of an ALBERT.
pub fn hf_name(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("encoder.layer.") {
        let (group, sub) = rest.split_once('.').unwrap();
        let (from, to) = SUBLAYERS
            .iter()
            .find(|(from, _)| sub.starts_with(from))
            .unwrap();
        return format!(
            "albert.encoder.albert_layer_groups.{group}.albert_layers.0.{to}{}",
            &sub[from.len()..]
        );
    }
    format!("albert.{name}")
}

/// Writes the tiny ALBERT (embedding 8, hidden 16, 4 layers sharing `groups` groups, 2
/// heads, intermediate 32, 32 positions, `gelu_new`) with `vocab` into `dir`.
pub fn write_tiny_albert(dir: &Path, vocab: &[String], groups: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let config = serde_json::json!({
        "architectures": ["AlbertModel"], "model_type": "albert",
        "vocab_size": vocab.len(), "embedding_size": 8, "hidden_size": 16,
        "num_hidden_layers": 4, "num_hidden_groups": groups, "inner_group_num": 1,
        "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 32,
        "hidden_act": "gelu_new", "type_vocab_size": 2,
    });
    let cfg = AlbertConfig::parse(&config.to_string()).unwrap();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    BertModel::load(vb, &cfg).unwrap();
    let mut rng = Rng::new(11);
    let vars = varmap.data().lock().unwrap().clone();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    let mut tensors = HashMap::new();
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
        let t = Tensor::from_vec(values, var.shape(), &Device::Cpu).unwrap();
        tensors.insert(hf_name(name), t);
    }
    candle_core::safetensors::save(&tensors, dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n")).unwrap();
}
