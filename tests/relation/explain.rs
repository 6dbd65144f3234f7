//! The facts behind a prediction (`--explain`, `"explain": true`): a tiny K-BERT classifier
//! whose label can only come from an injected fact (the linked names are out of its
//! vocabulary, so both read `[UNK][UNK]`; the fact's object, 好 or 差, tells them apart).
//! The model learns "差 means 0, otherwise 1", so withholding 上海's fact 差 flips its label
//! (the probability of 0 falls by more than half); the evidence points at that fact; without `--explain` the output has no `evidence`; over HTTP `explain: true`
//! gives the same evidence.
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{json, Value};

use crate::support::{server, tiny};

/// The model's characters: not 北, 京, 上 or 海.
const CHARS: &str = "的酒店在很好差去了";

const ROWS: &[(&str, &str)] = &[
    ("1", "北京的酒店"),
    ("0", "上海的酒店"),
    ("1", "在北京"),
    ("0", "在上海"),
    ("1", "去了北京"),
    ("0", "去了上海"),
    ("1", "北京很"),
    ("0", "上海很"),
];

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn tsv(rows: &[(&str, &str)]) -> String {
    let mut s = String::from("label\ttext_a\n");
    for (l, t) in rows {
        let spaced: Vec<String> = t.chars().map(String::from).collect();
        s.push_str(&format!("{l}\t{}\n", spaced.join(" ")));
    }
    s
}

fn zhishi() -> Command {
    let mut cmd = Command::cargo_bin("zhishi").unwrap();
    cmd.env_remove("M3E_DIR");
    cmd
}

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Trains the classifier in `dir` and writes a run pipeline over it; returns the pipeline.
fn trained(dir: &Path) -> PathBuf {
    let vocab = tiny::char_vocab(CHARS);
    tiny::write_encoder(
        &dir.join("model"),
        &tiny::tiny_config(vocab.len(), 64),
        &vocab,
    );
    write(dir, "kg.spo", "北京\t评价\t好\n上海\t评价\t差\n");
    write(dir, "train.tsv", &tsv(ROWS));
    write(dir, "dev.tsv", &tsv(ROWS));
    let config = write(
        dir,
        "train.toml",
        r#"[task]
kind = "classify"

[encoder]
model = "model"
dropout = 0.0

[head]
pooling = "mean"

[knowledge]
mode = "kbert"
kg = "kg.spo"
nil_threshold = 0.0
max_entities = 1

[data]
format = "tsv"
train = "train.tsv"
dev = "dev.tsv"
max_len = 32

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
    let out = zhishi()
        .current_dir(dir)
        .arg("train")
        .arg(&config)
        .assert()
        .success();
    let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(report["accuracy"].as_f64().unwrap() >= 0.99, "{report}");
    write(
        dir,
        "run.toml",
        &format!(
            "[pipeline]\nstages = [\"link\", \"facts\", \"classify\"]\n\n[kg]\ntriples = [\"kg.spo\"]\n\n\
             [link]\nnil_threshold = 0.0\n\n[facts]\nper_mention = 1\n\n[classify]\nmodel = {:?}\ntop_k = 2\n",
            dir.join("out/best").display().to_string()
        ),
    )
}

/// Checks one explained document: every label has evidence with valid fact indices, sorted
/// by |delta|; the top label's evidence is the linked name's fact, with a large delta.
fn check_explained(doc: &Value, want: &str) {
    let facts = doc["facts"].as_array().unwrap();
    let labels = doc["labels"].as_array().unwrap();
    assert_eq!(labels[0]["label"], want, "{doc}");
    for label in labels {
        let evidence = label["evidence"].as_array().expect("evidence");
        let deltas: Vec<f64> = evidence
            .iter()
            .map(|e| {
                let f = e["fact"].as_u64().unwrap() as usize;
                assert!(f < facts.len(), "{doc}");
                e["delta"].as_f64().unwrap()
            })
            .collect();
        assert!(deltas.windows(2).all(|w| w[0].abs() >= w[1].abs()), "{doc}");
    }
    let top = &labels[0]["evidence"][0];
    let fact = &facts[top["fact"].as_u64().unwrap() as usize];
    assert_eq!(
        fact["object"],
        if want == "1" { "好" } else { "差" },
        "{doc}"
    );
    assert!(top["delta"].as_f64().unwrap() >= 0.0, "{doc}");
}

#[test]
fn withholding_the_fact_a_label_rests_on_changes_its_score_and_evidence_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let pipeline = trained(dir);
    let input = write(dir, "in.txt", "北京的酒店\n上海的酒店\n");

    let plain = zhishi()
        .arg("run")
        .arg(&pipeline)
        .arg("--input")
        .arg(&input)
        .assert()
        .success();
    let plain = lines(&plain.get_output().stdout);
    for doc in &plain {
        for label in doc["labels"].as_array().unwrap() {
            assert!(label.get("evidence").is_none(), "{doc}");
        }
    }

    let out = zhishi()
        .arg("run")
        .arg(&pipeline)
        .arg("--input")
        .arg(&input)
        .arg("--explain")
        .assert()
        .success();
    let explained = lines(&out.get_output().stdout);
    for ((doc, plain), want) in explained.iter().zip(&plain).zip(["1", "0"]) {
        check_explained(doc, want);
        // Explaining changes nothing else.
        assert_eq!(
            doc["labels"][0]["score"], plain["labels"][0]["score"],
            "{doc}"
        );
    }

    let server = server::Server::start_with(&pipeline, &[]);
    let response = server::post(server.addr, &json!({"text": "北京的酒店", "explain": true}));
    assert_eq!(response.status, 200, "{}", response.text());
    let doc = response.json();
    check_explained(&doc, "1");
    assert_eq!(
        doc["labels"][0]["evidence"],
        explained[0]["labels"][0]["evidence"]
    );
    let response = server::post(server.addr, &json!({"text": "北京的酒店"}));
    assert!(response.json()["labels"][0].get("evidence").is_none());
    server.terminate();
}
