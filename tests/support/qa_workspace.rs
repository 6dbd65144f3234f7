//! A throw-away extractive-QA workspace for tests: a tiny fixed-weight BERT model directory
//! whose vocabulary covers the toy data, SQuAD-format train/dev files and a training TOML.
use std::path::{Path, PathBuf};

use zhishi::model::BertConfig;

use super::tiny;

/// One toy question: (question, answer, answer_start).
pub type ToyQuestion = (&'static str, &'static str, usize);

/// Toy paragraphs: (context, [(question, answer, answer_start)]). Contexts are longer than
/// one window, and mix Chinese with Latin words and digits.
pub const PARAGRAPHS: &[(&str, &[ToyQuestion])] = &[
    (
        "张三住在北京，李四住在上海。王五在杭州工作。",
        &[
            ("张三住在哪里？", "北京", 4),
            ("李四住在哪里？", "上海", 11),
            ("王五在哪里工作？", "杭州", 17),
        ],
    ),
    (
        "Nexon公司成立于1994年，总部在东京。",
        &[
            ("Nexon公司成立于哪一年？", "1994年", 10),
            ("Nexon的总部在哪里？", "东京", 19),
        ],
    ),
];

/// Word pieces in the vocabulary besides the toy data's characters.
const PIECES: &[&str] = &["nexon", "1994"];

/// The vocabulary: specials, word pieces, then every character of the toy data.
pub fn vocab() -> Vec<String> {
    let mut vocab: Vec<String> = tiny::SPECIALS
        .iter()
        .chain(PIECES)
        .map(|s| s.to_string())
        .collect();
    for (context, qas) in PARAGRAPHS {
        let texts = std::iter::once(*context).chain(qas.iter().map(|q| q.0));
        for c in texts.flat_map(str::chars) {
            let c = c.to_lowercase().to_string();
            if !c.trim().is_empty() && !vocab.contains(&c) {
                vocab.push(c);
            }
        }
    }
    vocab
}

/// The workspace's encoder: the tiny shape over [`vocab`], sequences of up to 64 tokens.
pub fn encoder_config() -> BertConfig {
    tiny::tiny_config(vocab().len(), 64)
}

/// A model directory with a random tiny BERT (fixed seed), `config.json` and `vocab.txt`.
pub fn tiny_model(dir: &Path) {
    tiny::write_encoder(dir, &encoder_config(), &vocab());
}

/// The toy paragraphs as SQuAD v1 JSON.
pub fn squad_json() -> serde_json::Value {
    let paragraphs: Vec<serde_json::Value> = PARAGRAPHS
        .iter()
        .enumerate()
        .map(|(p, (context, qas))| {
            let qas: Vec<serde_json::Value> = qas
                .iter()
                .enumerate()
                .map(|(q, (question, answer, start))| {
                    serde_json::json!({
                        "id": format!("TOY_{p}_QUERY_{q}"),
                        "question": question,
                        "answers": [{"text": answer, "answer_start": start}],
                    })
                })
                .collect();
            serde_json::json!({"id": format!("TOY_{p}"), "context": context, "qas": qas})
        })
        .collect();
    serde_json::json!({"version": "v1.0", "data": [{"title": "toy", "paragraphs": paragraphs}]})
}

/// A workspace with the tiny model, train/dev files (the same toy questions) and a TOML.
pub struct Workspace {
    _tmp: tempfile::TempDir,
    /// The workspace directory.
    pub root: PathBuf,
}

impl Workspace {
    /// A workspace whose TOML ends with `extra` lines in `[train]`.
    pub fn new(extra: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        tiny_model(&root.join("model"));
        let json = squad_json().to_string();
        std::fs::write(root.join("train.json"), &json).unwrap();
        std::fs::write(root.join("dev.json"), &json).unwrap();
        let toml = format!(
            r#"[task]
kind = "qa"

[encoder]
model = "model"
dropout = 0.0

[data]
train = "train.json"
dev = "dev.json"
test = "dev.json"
max_len = 24
doc_stride = 6
max_query_len = 10

[decode]
n_best = 5
max_answer_len = 6

[train]
output_dir = "out"
epochs = 60
batch_size = 4
lr = 5e-3
warmup_ratio = 0.0
seed = 7
eval_every = 40
progress = false
{extra}
"#
        );
        std::fs::write(root.join("qa.toml"), toml).unwrap();
        Self { _tmp: tmp, root }
    }

    /// The training TOML.
    pub fn config(&self) -> PathBuf {
        self.root.join("qa.toml")
    }
}
