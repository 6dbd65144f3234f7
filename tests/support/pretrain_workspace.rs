//! A throw-away pretraining workspace for tests: a tiny random encoder, a small medical
//! corpus, a KG for entity masking and a pretraining TOML that refers to them.
use std::path::Path;

use zhishi::model::BertConfig;

use super::tiny;

/// The tiny encoder's vocabulary.
pub const VOCAB: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "患", "者", "头", "痛", "发", "热", "咳", "嗽",
    "三", "天", "，", "。",
];

/// The workspace's encoder: the tiny shape over [`VOCAB`], sequences of up to 16 tokens.
pub fn encoder_config() -> BertConfig {
    tiny::tiny_config(VOCAB.len(), 16)
}

/// A workspace: the tiny encoder, a corpus, the KG and a pretraining TOML.
pub fn workspace(dir: &Path) -> std::path::PathBuf {
    let vocab: Vec<String> = VOCAB.iter().map(|s| s.to_string()).collect();
    tiny::write_encoder(&dir.join("encoder"), &encoder_config(), &vocab);
    let lines = [
        "患者头痛发热。",
        "患者三天咳嗽。",
        "头痛，发热。",
        "患者咳嗽三天，头痛。",
    ];
    let corpus: Vec<&str> = lines.iter().cycle().take(40).copied().collect();
    std::fs::write(dir.join("corpus.txt"), corpus.join("\n")).unwrap();
    std::fs::write(dir.join("kg.tsv"), "头痛\t类别\t症状\n发热\t类别\t症状\n").unwrap();
    let toml = r#"
[task]
kind = "pretrain"
[encoder]
model = "encoder"
[knowledge]
kg = "kg.tsv"
[data]
corpus = "corpus.txt"
max_len = 12
dev_holdout = 4
[masking]
entity = 1.0
whole_word = 1.0
token = 1.0
[train]
output_dir = "out"
epochs = 2
batch_size = 4
grad_accum = 2
lr = 1e-3
eval_every = 2
progress = false
"#;
    std::fs::write(dir.join("pretrain.toml"), toml).unwrap();
    dir.join("pretrain.toml")
}
