//! A throw-away NER workspace for tests: a tiny fixed-weight BERT model directory, toy BMES
//! train/dev files and a training TOML that refers to them.
use std::path::{Path, PathBuf};

use zhishi::model::BertConfig;

use super::tiny;

/// Characters of the toy corpus.
const CHARS: &str = "张三李四住在北京上海和去了工作。王五杭州";

/// Toy resume-style sentences in BMES: people (PER) and places (LOC).
pub const TRAIN: &[(&str, &str)] = &[
    ("张三住在北京", "B-PER E-PER O O B-LOC E-LOC"),
    ("李四去了上海", "B-PER E-PER O O B-LOC E-LOC"),
    ("王五在杭州工作。", "B-PER E-PER O B-LOC E-LOC O O O"),
    (
        "张三和李四在上海",
        "B-PER E-PER O B-PER E-PER O B-LOC E-LOC",
    ),
    ("李四在北京工作。", "B-PER E-PER O B-LOC E-LOC O O O"),
    (
        "王五去了北京和上海",
        "B-PER E-PER O O B-LOC E-LOC O B-LOC E-LOC",
    ),
];

/// Writes `sentences` (text, space-separated BMES tags) as `char TAG` lines, a blank line after
/// each sentence.
pub fn write_bmes(path: &Path, sentences: &[(&str, &str)]) {
    let mut out = String::new();
    for (text, tags) in sentences {
        for (c, t) in text.chars().zip(tags.split(' ')) {
            out.push_str(&format!("{c} {t}\n"));
        }
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

/// The workspace's encoder: the tiny shape over [`CHARS`], sentences of up to 32 tokens.
pub fn encoder_config() -> BertConfig {
    tiny::tiny_config(tiny::SPECIALS.len() + CHARS.chars().count(), 32)
}

/// A model directory with a random tiny BERT over the toy corpus, its `config.json` and `vocab.txt`.
pub fn tiny_model(dir: &Path) {
    tiny::write_encoder(dir, &encoder_config(), &tiny::char_vocab(CHARS));
}

/// A workspace with the tiny model, train/dev files and a training TOML.
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
        write_bmes(&root.join("train.bmes"), TRAIN);
        write_bmes(&root.join("dev.bmes"), &TRAIN[..3]);
        let toml = format!(
            r#"[task]
kind = "ner"

[encoder]
model = "model"
dropout = 0.0

[data]
format = "char_per_line"
train = "train.bmes"
dev = "dev.bmes"
test = "dev.bmes"
max_len = 32

[head]
crf = true

[train]
output_dir = "out"
epochs = 40
batch_size = 3
lr = 5e-3
warmup_ratio = 0.0
seed = 7
eval_every = 20
progress = false
{extra}
"#
        );
        std::fs::write(root.join("ner.toml"), toml).unwrap();
        Self { _tmp: tmp, root }
    }

    /// The training TOML.
    pub fn config(&self) -> PathBuf {
        self.root.join("ner.toml")
    }
}

/// Evaluation metrics without what only `zhishi eval` reports (the calibration and the
/// scores at thresholds): the dev metrics training saves.
pub fn without_calibration(mut metrics: serde_json::Value) -> serde_json::Value {
    if let Some(object) = metrics.as_object_mut() {
        assert!(object.remove("calibration").is_some(), "no calibration");
        assert!(object.remove("at_min_score").is_some(), "no at_min_score");
    }
    metrics
}
