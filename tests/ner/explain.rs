//! `--explain` on entities: a tiny K-BERT NER model whose entity type can only come from an
//! injected fact (the names 北京 and 上海 are out of its vocabulary, so both read
//! `[UNK][UNK]`; the fact's object, 城 or 司, tells a place from an organisation). Withholding
//! the fact behind an entity takes most of its probability away (the entity flips: under half
//! its probability is left): the evidence names that fact with a large positive delta.
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

use crate::support::tiny;

/// The model's characters: not 北, 京, 上 or 海.
const CHARS: &str = "去在的城司好了";

/// Sentences and their tags: 北京 is a LOC, 上海 an ORG, by their facts alone.
const ROWS: &[(&str, &str)] = &[
    ("去北京", "O B-LOC I-LOC"),
    ("去上海", "O B-ORG I-ORG"),
    ("在北京", "O B-LOC I-LOC"),
    ("在上海", "O B-ORG I-ORG"),
    ("北京好", "B-LOC I-LOC O"),
    ("上海好", "B-ORG I-ORG O"),
    ("去了北京", "O O B-LOC I-LOC"),
    ("去了上海", "O O B-ORG I-ORG"),
];

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn kbert_tsv(rows: &[(&str, &str)]) -> String {
    let mut s = String::from("text_a\tlabel\n");
    for (text, tags) in rows {
        let spaced: Vec<String> = text.chars().map(String::from).collect();
        s.push_str(&format!("{}\t{tags}\n", spaced.join(" ")));
    }
    s
}

#[test]
fn withholding_the_fact_behind_an_entity_takes_its_probability_away() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let vocab = tiny::char_vocab(CHARS);
    tiny::write_encoder(
        &dir.join("model"),
        &tiny::tiny_config(vocab.len(), 64),
        &vocab,
    );
    write(dir, "kg.spo", "北京\t类型\t城\n上海\t类型\t司\n");
    write(dir, "train.tsv", &kbert_tsv(ROWS));
    write(dir, "dev.tsv", &kbert_tsv(ROWS));
    let config = write(
        dir,
        "train.toml",
        r#"[task]
kind = "ner"

[encoder]
model = "model"
dropout = 0.0

[knowledge]
mode = "kbert"
kg = "kg.spo"
nil_threshold = 0.0
max_entities = 1

[data]
format = "kbert_tsv"
train = "train.tsv"
dev = "dev.tsv"
max_len = 32

[head]
crf = false

[train]
output_dir = "out"
epochs = 80
batch_size = 4
lr = 5e-3
warmup_ratio = 0.0
seed = 7
progress = false
eval_every = 160
"#,
    );
    let mut cmd = Command::cargo_bin("zhishi").unwrap();
    let out = cmd
        .env_remove("M3E_DIR")
        .current_dir(dir)
        .arg("train")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["f1"].as_f64().unwrap() >= 0.99, "{report}");
    write(
        dir,
        "run.toml",
        &format!(
            "[pipeline]\nstages = [\"link\", \"facts\", \"ner\"]\n\n[kg]\ntriples = [\"kg.spo\"]\n\n\
             [link]\nnil_threshold = 0.0\n\n[facts]\nper_mention = 1\n\n[ner]\nmodel = {:?}\n",
            dir.join("out/best").display().to_string()
        ),
    );
    write(dir, "in.txt", "去上海\n在北京\n");
    let mut cmd = Command::cargo_bin("zhishi").unwrap();
    let out = cmd
        .env_remove("M3E_DIR")
        .current_dir(dir)
        .args([
            "run",
            "run.toml",
            "--input",
            "in.txt",
            "--output",
            "-",
            "--explain",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (doc, (name, label, object)) in docs
        .iter()
        .zip([("上海", "ORG", "司"), ("北京", "LOC", "城")])
    {
        let entity = doc["entities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["text"] == name)
            .unwrap_or_else(|| panic!("{name} is found: {doc}"));
        assert_eq!(entity["label"], label, "{doc}");
        let top = &entity["evidence"][0];
        let fact = &doc["facts"][top["fact"].as_u64().unwrap() as usize];
        assert_eq!(fact["subject"], name, "{doc}");
        assert_eq!(fact["object"], object, "{doc}");
        let delta = top["delta"].as_f64().unwrap();
        let score = entity["score"].as_f64().unwrap();
        // Without the fact the same span and type keep under half their probability: the fact
        // makes the entity (measured: 0.84 -> 0.02 for 上海).
        assert!(
            delta <= score && score - delta < 0.5,
            "delta {delta}, score {score}: {doc}"
        );
    }
}
