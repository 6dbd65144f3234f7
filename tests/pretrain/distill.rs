//! `zhishi distill` on the tiny random encoder of `support/`: a 2-layer NER teacher is trained
//! on the toy corpus and distilled into 1-layer students. The student starts from the chosen
//! teacher layer (with the teacher's embeddings, classifier and CRF), the distillation loss
//! falls, every student parameter gets a gradient from the soft, hard, hidden-state and
//! attention losses, the student is an ordinary NER model directory (also in the teacher's
//! K-BERT pipeline), and bad configurations name their key.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use zhishi::model::{Dropout, Kernels};
use zhishi::pipeline::Pipeline;
use zhishi::stages::distill::{self, student};
use zhishi::stages::ner::features::{Batch, Example};
use zhishi::stages::ner::model::{build_featurizer, ModelMeta};
use zhishi::stages::ner::network::NerNetwork;
use zhishi::stages::ner::predict::featurize;
use zhishi::stages::ner::{self, NerModel};
use zhishi::stages::task::{read_trained, Split};

use crate::support::ner_workspace;
use ner_workspace::Workspace;

/// People and places of the toy sentences.
const KG: &str = "张三\t类别\t人物\n李四\t类别\t人物\n王五\t类别\t人物\n\
北京\t类别\t地点\n上海\t类别\t地点\n杭州\t类别\t地点\n";

/// Unlabelled sentences in the toy vocabulary.
const UNLABELLED: &str = "王五住在上海\n\n张三去了杭州工作。\n李四和王五在北京\n";

/// A teacher trained in a fresh workspace (`kbert`: with K-BERT knowledge over [`KG`]).
fn teacher(kbert: bool) -> (Workspace, PathBuf) {
    let ws = Workspace::new("");
    std::fs::write(ws.root.join("kg.spo"), KG).unwrap();
    std::fs::write(ws.root.join("unlabelled.txt"), UNLABELLED).unwrap();
    let mut sets = vec!["train.epochs=20".to_string()];
    if kbert {
        sets.extend(["knowledge.mode=kbert", "knowledge.kg=kg.spo"].map(String::from));
    }
    let report = ner::train_config(&ws.config(), &sets).unwrap();
    (ws, report.model_dir)
}

/// Writes `distill.toml` next to the teacher's workspace files, student `layers`.
fn distill_toml(ws: &Workspace, layers: &str, kbert: bool) -> PathBuf {
    let knowledge = if kbert {
        "[knowledge]\nmode = \"kbert\"\nkg = \"kg.spo\"\n"
    } else {
        ""
    };
    let text = format!(
        r#"[task]
kind = "distill"

[teacher]
model = "out/best"

[student]
layers = {layers}
dropout = 0.0

[distill]
temperature = 2.0
alpha = 0.5
unlabelled = "unlabelled.txt"

{knowledge}
[data]
format = "char_per_line"
train = "train.bmes"
dev = "dev.bmes"
test = "dev.bmes"

[train]
output_dir = "student"
epochs = 30
batch_size = 3
lr = 5e-3
warmup_ratio = 0.0
seed = 7
progress = false
"#
    );
    let path = ws.root.join("distill.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn tensors(path: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn the_student_starts_from_the_chosen_teacher_layers() {
    let (_ws, dir) = teacher(false);
    let (meta, _): (ModelMeta, _) =
        read_trained(&dir, ner::model::META_FILE, zhishi::model::Precision::F32).unwrap();
    let teacher_weights = tensors(&dir.join(ner::model::WEIGHTS_FILE));
    let ner_student = |vb: VarBuilder, cfg: &zhishi::model::BertConfig| {
        NerNetwork::load(vb, cfg, &meta.labels, meta.crf)
    };
    let weights = ner::model::WEIGHTS_FILE;
    let (_, varmap, cfg) =
        student::student_network(&dir, weights, &[1], &Device::Cpu, ner_student).unwrap();
    assert_eq!(cfg.num_hidden_layers, 1);
    let vars = varmap.data().lock().unwrap().clone();
    assert_eq!(
        vars.len() + 16,
        teacher_weights.len(),
        "one layer (16 tensors) fewer"
    );
    for (name, var) in &vars {
        let from = name.replace("encoder.layer.0.", "encoder.layer.1.");
        assert_eq!(
            max_diff(var.as_tensor(), &teacher_weights[&from]),
            0.0,
            "{name}"
        );
    }

    // Keeping every layer gives the teacher back: the same emissions on the same batch.
    let (full, _, cfg) =
        student::student_network(&dir, weights, &[0, 1], &Device::Cpu, ner_student).unwrap();
    let vb = unsafe {
        VarBuilder::from_mmaped_safetensors(
            &[dir.join(ner::model::WEIGHTS_FILE)],
            DType::F32,
            &Device::Cpu,
        )
        .unwrap()
    };
    let reference = NerNetwork::load(vb, &cfg, &meta.labels, meta.crf).unwrap();
    assert_eq!(cfg.kernels, Kernels::Differentiable);
    let featurizer = build_featurizer(&dir, &meta, None).unwrap();
    let texts = ["张三住在北京", "王五去了上海和杭州工作。"];
    let docs: Vec<_> = texts
        .iter()
        .map(|t| zhishi::doc::Document::new(*t))
        .collect();
    let items: Vec<Vec<String>> = texts
        .iter()
        .map(|t| t.chars().map(String::from).collect())
        .collect();
    let (examples, _) = featurize(&featurizer, &docs, &items, &[]).unwrap();
    let refs: Vec<&Example> = examples.iter().collect();
    let batch = Batch::new(&refs, &Device::Cpu).unwrap();
    let off = Dropout::disabled();
    let a = full.emissions(&batch, &off).unwrap();
    let b = reference.emissions(&batch, &off).unwrap();
    assert!(max_diff(&a, &b) < 1e-5);
}

#[test]
fn distillation_lowers_the_loss_and_saves_an_ordinary_ner_model() {
    let (ws, _) = teacher(false);
    let config = distill_toml(&ws, "[1]", false);
    let report = distill::train_config(&config, &[]).unwrap();
    let history = &report.train.history;
    let (first, last) = (history[0].loss, history[history.len() - 1].loss);
    assert!(last < 0.5 * first, "loss {first} -> {last}");
    assert_eq!(report.data.layers, [1]);
    assert_eq!((report.data.labelled, report.data.unlabelled), (6, 3));
    assert_eq!(report.data.windows, 9);

    let dir = &report.model_dir;
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["num_hidden_layers"], 1);
    let names: Vec<String> = tensors(&dir.join(ner::model::WEIGHTS_FILE))
        .into_keys()
        .collect();
    assert!(names.iter().any(|n| n.starts_with("encoder.layer.0.")));
    assert!(!names.iter().any(|n| n.starts_with("encoder.layer.1.")));
    assert!(names.iter().any(|n| n == "crf.transitions"));

    let model = NerModel::load(dir).unwrap();
    assert_eq!(model.predict(&["张三住在北京"]).unwrap().len(), 1);
    let dev =
        distill::evaluate_config(&config, &[], Split::Dev, zhishi::model::Precision::F32).unwrap();
    let distill::DistillMetrics::Ner(dev) = dev else {
        panic!("an NER teacher's student has NER metrics: {dev:?}")
    };
    assert!(dev.micro.f1 > 0.0, "{dev:?}");
    assert_eq!(
        crate::support::ner_workspace::without_calibration(serde_json::to_value(&dev).unwrap()),
        report.dev
    );
    // The student is all evaluation needs: the teacher may be gone.
    std::fs::rename(ws.root.join("out"), ws.root.join("teacher-moved")).unwrap();
    let again =
        distill::evaluate_config(&config, &[], Split::Dev, zhishi::model::Precision::F32).unwrap();
    assert_eq!(
        serde_json::to_value(&again).unwrap(),
        serde_json::to_value(distill::DistillMetrics::Ner(dev)).unwrap()
    );
}

#[test]
fn every_student_parameter_learns_from_the_distillation_losses() {
    let (ws, dir) = teacher(false);
    let config = distill_toml(&ws, "[1]", false);
    let sets = [
        "distill.hidden_loss=1.0",
        "distill.attention_loss=1.0",
        "train.max_steps=1",
        "train.weight_decay=0.0",
        "train.max_grad_norm=0.0",
    ]
    .map(String::from);
    distill::train_config(&config, &sets).unwrap();
    let before = tensors(&dir.join(ner::model::WEIGHTS_FILE));
    let after = tensors(&ws.root.join("student/last/params.safetensors"));
    assert!(after.len() > 20, "{} parameters", after.len());
    let mut unchanged: Vec<&String> = after
        .iter()
        .filter(|(name, t)| {
            let from = name.replace("encoder.layer.0.", "encoder.layer.1.");
            max_diff(t, &before[&from]) == 0.0
        })
        .map(|(name, _)| name)
        .collect();
    unchanged.sort();
    assert!(unchanged.is_empty(), "no gradient reached {unchanged:?}");
}

#[test]
fn a_kbert_student_runs_in_the_teachers_pipeline() {
    let (ws, _) = teacher(true);
    let config = distill_toml(&ws, "[1]", true);
    let report = distill::train_config(&config, &["train.epochs=10".into()]).unwrap();
    let run = ws.root.join("run.toml");
    std::fs::write(
        &run,
        format!(
            "[pipeline]\nname = \"kbert-ner\"\nstages = [\"segment\", \"link\", \"facts\", \"ner\"]\n\n\
             [kg]\ntriples = [\"kg.spo\"]\n\n[link]\nnil_threshold = 0.0\n\n[facts]\nper_mention = 2\n\n\
             [ner]\nmodel = {:?}\n",
            report.model_dir.display().to_string()
        ),
    )
    .unwrap();
    let texts = ["张三住在北京", "王五去了上海和杭州工作。"];
    let docs = Pipeline::from_toml(&run)
        .unwrap()
        .process_batch(&texts)
        .unwrap();
    assert!(docs.iter().all(|d| !d.facts.is_empty()), "{docs:?}");
    let model = NerModel::load(&report.model_dir).unwrap();
    let mut bare = docs.clone();
    for d in &mut bare {
        d.entities.clear();
        d.facts.iter_mut().for_each(|f| f.injected_by.clear());
    }
    let tagged = model.predict_documents(&bare).unwrap();
    for (doc, tagged) in docs.iter().zip(tagged) {
        // The pipeline says which stage found each entity; the model alone does not.
        let found: Vec<zhishi::doc::Entity> = doc
            .entities
            .iter()
            .map(|e| {
                assert_eq!(e.source.as_deref(), Some("ner"));
                zhishi::doc::Entity {
                    source: None,
                    ..e.clone()
                }
            })
            .collect();
        assert_eq!(found, tagged.entities);
    }

    // Other knowledge than the teacher's is refused.
    let err = distill::train_config(&config, &["knowledge.max_entities=1".into()]).unwrap_err();
    assert!(err.to_string().contains("max_entities"), "{err}");
}

#[test]
fn configuration_errors_name_the_key() {
    let (ws, _) = teacher(false);
    let config = distill_toml(&ws, "[1]", false);
    let message = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        distill::train_config(&config, &sets)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    let m = message(&["student.layers=[2]"]);
    assert!(m.contains("student.layers") && m.contains("layer 2"), "{m}");
    let m = message(&["student.layers=[1, 0]"]);
    assert!(m.contains("ascending"), "{m}");
    let m = message(&["student.num_layers=1"]);
    assert!(m.contains("not both"), "{m}");
    let m = message(&["distill.alpha=1.5"]);
    assert!(m.contains("distill.alpha"), "{m}");
    let m = message(&["teacher.model=\"train.bmes\""]);
    assert!(m.contains("teacher.model"), "{m}");
    let m = message(&["teacher.model=\"model\""]);
    assert!(
        m.contains("not a trained NER or classification model"),
        "{m}"
    );
    let m = message(&["data.format=\"tsv\""]);
    assert!(m.contains("data.format") && m.contains("NER model"), "{m}");
    let m = message(&["data.text_field=\"review\""]);
    assert!(m.contains("data.text_field"), "{m}");
    let m = message(&["knowledge.mode=kbert", "knowledge.kg=kg.spo"]);
    assert!(m.contains("knowledge.mode"), "{m}");
    let m = message(&["distill.unlabelled=\"missing.txt\""]);
    assert!(m.contains("distill.unlabelled"), "{m}");

    // `zhishi distill` runs distill files only; `zhishi train` and `eval` take them too.
    let out = Command::cargo_bin("zhishi")
        .unwrap()
        .args(["distill", ws.config().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"distill\" files"));
    let out = Command::cargo_bin("zhishi")
        .unwrap()
        .args([
            "distill",
            config.to_str().unwrap(),
            "--set",
            "train.epochs=2",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["task"], "distill");
    assert_eq!(json["details"]["layers"], serde_json::json!([1]));
    let out = Command::cargo_bin("zhishi")
        .unwrap()
        .args(["eval", config.to_str().unwrap(), "--split", "test"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json["task"].as_str(), json["split"].as_str()),
        (Some("distill"), Some("test"))
    );
}
