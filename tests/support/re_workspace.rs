//! A throw-away relation-extraction workspace for tests: a tiny fixed-weight BERT model
//! directory whose vocabulary covers the toy corpus, SanWen-format train/dev files and a
//! training TOML that refers to them.
use std::path::{Path, PathBuf};

use zhishi::model::BertConfig;

use super::tiny;

/// Toy SanWen lines `(head, tail, relation, sentence)`: where people live, family and friends.
pub const TRAIN: &[(&str, &str, &str, &str)] = &[
    ("张三", "北京", "Located", "张三住在北京"),
    ("李四", "上海", "Located", "李四住在上海"),
    ("王五", "杭州", "Located", "王五在杭州工作。"),
    ("张三", "李四", "Family", "张三是李四的父亲"),
    ("王五", "李四", "Family", "王五是李四的母亲"),
    ("张三", "王五", "Social", "张三和王五是朋友"),
    ("李四", "张三", "Social", "李四和张三是朋友"),
    ("北京", "张三", "unknown", "张三住在北京"),
    ("上海", "李四", "unknown", "李四住在上海"),
    ("张三", "上海", "unknown", "张三住在北京，李四住在上海"),
    // Family is directed: the reverse pair has no relation.
    ("李四", "张三", "unknown", "张三是李四的父亲"),
];

/// Every character of the toy corpus and of the test sentences.
pub const CHARS: &str = "张三李四王五住在北京上海杭州工作。是的父亲母和朋友，#$";

/// SanWen lines for `examples`.
pub fn sanwen(examples: &[(&str, &str, &str, &str)]) -> String {
    examples
        .iter()
        .map(|(h, t, r, s)| format!("{h}\t{t}\t{r}\t{s}\n"))
        .collect()
}

/// The workspace's encoder: the tiny shape over [`CHARS`], sentences of up to 48 tokens.
pub fn encoder_config() -> BertConfig {
    tiny::tiny_config(tiny::SPECIALS.len() + CHARS.chars().count(), 48)
}

/// A model directory with a random tiny BERT, its `config.json` and `vocab.txt`.
pub fn tiny_model(dir: &Path) {
    tiny::write_encoder(dir, &encoder_config(), &tiny::char_vocab(CHARS));
}

/// A workspace with the tiny model, train/dev files, a tiny KG and a training TOML.
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
        std::fs::write(root.join("train.txt"), sanwen(TRAIN)).unwrap();
        std::fs::write(root.join("dev.txt"), sanwen(&TRAIN[..4])).unwrap();
        std::fs::write(
            root.join("kg.spo"),
            "张三\t类型\t人\n李四\t类型\t人\n王五\t类型\t人\n北京\t类型\t城市\n上海\t类型\t城市\n杭州\t类型\t城市\n",
        )
        .unwrap();
        let toml = format!(
            r#"[task]
kind = "relation"

[encoder]
model = "model"
dropout = 0.0

[data]
format = "sanwen"
train = "train.txt"
dev = "dev.txt"
test = "dev.txt"
max_len = 40

[train]
output_dir = "out"
epochs = 30
batch_size = 4
lr = 5e-3
warmup_ratio = 0.0
seed = 7
progress = false
{extra}
"#
        );
        std::fs::write(root.join("re.toml"), toml).unwrap();
        Self { _tmp: tmp, root }
    }

    /// The training TOML.
    pub fn config(&self) -> PathBuf {
        self.root.join("re.toml")
    }
}
