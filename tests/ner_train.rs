//! NER training end to end on a tiny random encoder built in the test: the loss falls, the
//! model learns a toy corpus, training is deterministic and resumable, every parameter gets
//! a gradient, the saved model reloads to the same predictions, and bad TOML is reported
//! with its file, line and key.
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use zhishi::model::{BertConfig, BertModel};
use zhishi::stages::ner::data::{read, DataFormat};
use zhishi::stages::ner::{self, NerModel};
use zhishi::train::Rng;

/// Characters of the toy corpus.
const CHARS: &str = "张三李四住在北京上海和去了工作。王五杭州";

/// Toy resume-style sentences in BMES: people (PER) and places (LOC).
const TRAIN: &[(&str, &str)] = &[
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

fn write_bmes(path: &Path, sentences: &[(&str, &str)]) {
    let mut out = String::new();
    for (text, tags) in sentences {
        for (c, t) in text.chars().zip(tags.split(' ')) {
            out.push_str(&format!("{c} {t}\n"));
        }
        out.push('\n');
    }
    std::fs::write(path, out).unwrap();
}

fn tiny_config() -> BertConfig {
    BertConfig {
        vocab_size: 5 + CHARS.chars().count(),
        hidden_size: 16,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        intermediate_size: 32,
        max_position_embeddings: 32,
        ..BertConfig::default()
    }
}

/// A model directory with a random tiny BERT, its `config.json` and `vocab.txt`.
fn tiny_model(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = tiny_config();
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    BertModel::load(vb, &cfg).unwrap();
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
        "vocab_size": cfg.vocab_size, "hidden_size": 16, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 32,
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .map(String::from)
        .to_vec();
    vocab.extend(CHARS.chars().map(String::from));
    std::fs::write(dir.join("vocab.txt"), vocab.join("\n")).unwrap();
}

/// A workspace with the tiny model, train/dev files and a training TOML.
struct Workspace {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Workspace {
    fn new(extra: &str) -> Self {
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

    fn config(&self) -> PathBuf {
        self.root.join("ner.toml")
    }
}

#[test]
fn training_reduces_the_loss_and_learns_the_toy_corpus() {
    let ws = Workspace::new("");
    let report = ner::train_config(&ws.config(), &[]).unwrap();
    let history = &report.train.history;
    let (first, last) = (history[0].1, history[history.len() - 1].1);
    assert!(last < 0.2 * first, "loss {first} -> {last}");
    assert_eq!(report.dev["f1"], 1.0, "{}", report.dev);

    let model = NerModel::load(&report.model_dir).unwrap();
    let entities = model.predict(&["李四住在杭州"]).unwrap();
    let found: Vec<(usize, usize, &str, &str)> = entities[0]
        .iter()
        .map(|e| (e.start, e.end, e.text.as_str(), e.label.as_str()))
        .collect();
    assert_eq!(found, [(0, 2, "李四", "PER"), (4, 6, "杭州", "LOC")]);
}

#[test]
fn a_saved_model_reloads_to_the_predictions_made_during_training() {
    let ws = Workspace::new("");
    let report = ner::train_config(
        &ws.config(),
        &["train.epochs=3".into(), "train.eval_every=0".into()],
    )
    .unwrap();
    // `metrics.json` holds the dev scores of the in-training network (differentiable ops);
    // the reloaded model runs the fused inference kernels.
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(report.model_dir.join("metrics.json")).unwrap(),
    )
    .unwrap();
    let a = NerModel::load(&report.model_dir).unwrap();
    let dev = read(&ws.root.join("dev.bmes"), DataFormat::CharPerLine).unwrap();
    let reloaded = serde_json::to_value(a.evaluate(&dev).unwrap()).unwrap();
    assert_eq!(saved["dev"], reloaded);
    let b = NerModel::load(&report.model_dir).unwrap();
    let texts = ["张三住在北京", "王五去了上海和杭州工作。"];
    assert_eq!(a.predict(&texts).unwrap(), b.predict(&texts).unwrap());
}

fn weights(dir: &Path) -> Vec<(String, Vec<f32>)> {
    let t = candle_core::safetensors::load(dir.join("params.safetensors"), &Device::Cpu).unwrap();
    let mut out: Vec<(String, Vec<f32>)> = t
        .into_iter()
        .map(|(k, v)| (k, v.flatten_all().unwrap().to_vec1().unwrap()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn runs_are_deterministic_and_resume_exactly() {
    let steps = [
        "train.epochs=4".to_string(),
        "encoder.dropout=0.1".to_string(),
    ];
    let full = Workspace::new("");
    ner::train_config(&full.config(), &steps).unwrap();
    let again = Workspace::new("");
    ner::train_config(&again.config(), &steps).unwrap();
    let last = |ws: &Workspace| weights(&ws.root.join("out/last"));
    assert!(
        last(&full) == last(&again),
        "same seed, same threads, same weights"
    );

    let resumed = Workspace::new("");
    let mut first = steps.to_vec();
    first.push("train.max_steps=3".into());
    ner::train_config(&resumed.config(), &first).unwrap();
    assert!(last(&resumed) != last(&full));
    let mut rest = steps.to_vec();
    rest.push("train.resume=true".into());
    ner::train_config(&resumed.config(), &rest).unwrap();
    assert!(
        last(&resumed) == last(&full),
        "stopped at step 3 and resumed"
    );
}

#[test]
fn a_frozen_encoder_only_trains_the_head() {
    let ws = Workspace::new("");
    ner::train_config(
        &ws.config(),
        &["encoder.freeze=true".into(), "train.epochs=2".into()],
    )
    .unwrap();
    let names: Vec<String> = weights(&ws.root.join("out/last"))
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "classifier.bias",
            "classifier.weight",
            "crf.end",
            "crf.start",
            "crf.transitions"
        ]
    );
}

#[test]
fn toml_errors_name_file_line_and_key() {
    let ws = Workspace::new("");
    let err = ner::train_config(&ws.config(), &["train.epoch=3".into()]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("ner.toml") && msg.contains("epoch"), "{msg}");

    let err = ner::train_config(&ws.config(), &["data.train=missing.bmes".into()]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("data.train") && msg.contains("missing.bmes"),
        "{msg}"
    );

    let err = ner::train_config(&ws.config(), &["knowledge.mode=kbert".into()]).unwrap_err();
    assert!(err.to_string().contains("knowledge.kg"), "{err}");

    let bad = Workspace::new("");
    let text = std::fs::read_to_string(bad.config())
        .unwrap()
        .replace("max_len = 32", "max_len = \"long\"");
    std::fs::write(bad.config(), text).unwrap();
    let msg = ner::train_config(&bad.config(), &[])
        .unwrap_err()
        .to_string();
    assert!(msg.contains(":13") && msg.contains("data.max_len"), "{msg}");
}
