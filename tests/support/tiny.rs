//! The "pretrained" encoder every task-stage test workspace starts from: a tiny BERT with fixed
//! pseudo-random weights (seed 11), written as a Hugging Face model directory.
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use zhishi::model::Rng;
use zhishi::model::{BertConfig, BertModel};

/// Writes `model.safetensors`, `config.json` and `vocab.txt` (one token per line) for `cfg`.
pub fn write_tiny_encoder(dir: &Path, cfg: &BertConfig, vocab: &[String]) {
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
    let config = serde_json::json!({
        "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_hidden_layers, "num_attention_heads": cfg.num_attention_heads,
        "intermediate_size": cfg.intermediate_size,
        "max_position_embeddings": cfg.max_position_embeddings,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n")).unwrap();
}
