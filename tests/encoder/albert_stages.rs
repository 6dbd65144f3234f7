//! An ALBERT directory as `encoder.model` of the trainable stages, end to end on a tiny random
//! ALBERT in transformers' naming (`support/tiny_albert.rs`): NER trains (plain and with K-BERT
//! injection), saves one copy of each shared layer, reloads at f32 and int8 and runs in a
//! pipeline; pretraining continues it with an `embedding_size`-wide masked-LM head; ERNIE
//! fusion and layer-dropping distillation, which need layers of their own, are refused.
use std::path::Path;

use candle_core::{DType, Device};
use zhishi::model::{load_bert, Kernels, Precision};
use zhishi::pipeline::Pipeline;
use zhishi::stages::ner::{self, NerModel};

use crate::support::ner_workspace::Workspace;
use crate::support::{pretrain_workspace, tiny_albert};

/// The NER workspace with its encoder replaced by a tiny ALBERT of 2 groups (same vocabulary).
fn albert_ner_workspace() -> Workspace {
    let ws = Workspace::new("");
    let model = ws.root.join("model");
    let vocab: Vec<String> = std::fs::read_to_string(model.join("vocab.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    std::fs::remove_dir_all(&model).unwrap();
    tiny_albert::write_tiny_albert(&model, &vocab, 2);
    ws
}

/// Training length for the tiny ALBERT.
const EPOCHS: &str = "train.epochs=100";

/// A toy KG over the workspace's names, for K-BERT injection.
const KG: &str = "张三\t类别\t人物\n李四\t类别\t人物\n王五\t类别\t人物\n\
北京\t类别\t地点\n上海\t类别\t地点\n杭州\t类别\t地点\n";

fn tensor_names(file: &Path) -> Vec<String> {
    let mut names: Vec<String> = candle_core::safetensors::load(file, &Device::Cpu)
        .unwrap()
        .into_keys()
        .collect();
    names.sort();
    names
}

fn spans(entities: &[zhishi::doc::Entity]) -> Vec<(usize, usize, String, String)> {
    entities
        .iter()
        .map(|e| (e.start, e.end, e.text.clone(), e.label.clone()))
        .collect()
}

#[test]
fn ner_trains_on_an_albert_encoder_and_runs_in_a_pipeline_at_f32_and_int8() {
    let ws = albert_ner_workspace();
    // Four positions over two shared groups learn the toy corpus more slowly than the
    // workspace's BERT: more epochs.
    let report = ner::train_config(&ws.config(), &[EPOCHS.into()]).unwrap();
    let history = &report.train.history;
    let (first, last) = (history[0].loss, history[history.len() - 1].loss);
    assert!(last < 0.2 * first, "loss {first} -> {last}");
    assert_eq!(report.dev["f1"], 1.0, "{}", report.dev);

    // The model directory keeps the ALBERT config and one copy of each shared group.
    let dir = &report.model_dir;
    let config = std::fs::read_to_string(dir.join("config.json")).unwrap();
    assert!(config.contains("\"albert\""), "{config}");
    let names = tensor_names(&dir.join(ner::model::WEIGHTS_FILE));
    assert!(names.iter().any(|n| n.starts_with("encoder.layer.1.")));
    assert!(!names.iter().any(|n| n.starts_with("encoder.layer.2.")));
    assert!(names.contains(&"encoder.embedding_hidden_mapping_in.weight".to_string()));

    let want = [
        (0, 2, "李四".to_string(), "PER".to_string()),
        (4, 6, "杭州".to_string(), "LOC".to_string()),
    ];
    let model = NerModel::load(dir).unwrap();
    assert_eq!(spans(&model.predict(&["李四住在杭州"]).unwrap()[0]), want);
    let int8 = NerModel::load_at(dir, &Device::Cpu, Precision::Int8).unwrap();
    assert_eq!(spans(&int8.predict(&["李四住在杭州"]).unwrap()[0]), want);

    let toml = ws.root.join("run.toml");
    std::fs::write(
        &toml,
        format!(
            "[pipeline]\nname = \"albert-ner\"\nstages = [\"ner\"]\n\n[ner]\nmodel = {:?}\n",
            dir.display().to_string()
        ),
    )
    .unwrap();
    let doc = Pipeline::from_toml(&toml)
        .unwrap()
        .process("李四住在杭州")
        .unwrap();
    assert_eq!(spans(&doc.entities), want);

    // Dropping layers of a model whose layers are shared saves nothing: refused.
    std::fs::write(ws.root.join("unlabelled.txt"), "王五住在上海\n").unwrap();
    let distill = ws.root.join("distill.toml");
    std::fs::write(
        &distill,
        "[task]\nkind = \"distill\"\n\n[teacher]\nmodel = \"out/best\"\n\n[student]\nlayers = [1, 3]\n\n\
         [distill]\nunlabelled = \"unlabelled.txt\"\n\n[data]\nformat = \"char_per_line\"\n\
         train = \"train.bmes\"\ndev = \"dev.bmes\"\n\n[train]\noutput_dir = \"student\"\nprogress = false\n",
    )
    .unwrap();
    let msg = zhishi::stages::distill::train_config(&distill, &[])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("teacher.model") && msg.contains("ALBERT"),
        "{msg}"
    );
}

#[test]
fn k_bert_injection_runs_through_an_albert_encoder() {
    let ws = albert_ner_workspace();
    std::fs::write(ws.root.join("kg.spo"), KG).unwrap();
    let sets = [
        "knowledge.mode=kbert".to_string(),
        "knowledge.kg=kg.spo".into(),
        EPOCHS.into(),
    ];
    let report = ner::train_config(&ws.config(), &sets).unwrap();
    let history = &report.train.history;
    let (first, last) = (history[0].loss, history[history.len() - 1].loss);
    assert!(last < 0.3 * first, "loss {first} -> {last}");
    assert!(report.dev["f1"].as_f64().unwrap() > 0.5, "{}", report.dev);
    let toml = ws.root.join("run.toml");
    std::fs::write(
        &toml,
        format!(
            "[pipeline]\nname = \"albert-kbert\"\nstages = [\"segment\", \"link\", \"facts\", \"ner\"]\n\n\
             [kg]\ntriples = [\"kg.spo\"]\n\n[link]\nnil_threshold = 0.0\n\n[facts]\nper_mention = 2\n\n\
             [ner]\nmodel = {:?}\n",
            report.model_dir.display().to_string()
        ),
    )
    .unwrap();
    let doc = Pipeline::from_toml(&toml)
        .unwrap()
        .process("李四住在杭州")
        .unwrap();
    let model = NerModel::load(&report.model_dir).unwrap();
    assert!(model.knowledge().mode.injects());
    assert!(!doc.facts.is_empty(), "no facts were injected: {doc:?}");
    assert!(
        !doc.entities.is_empty(),
        "the K-BERT ALBERT model found nothing"
    );
}

#[test]
fn ernie_fusion_refuses_an_albert_encoder() {
    let ws = albert_ner_workspace();
    std::fs::write(ws.root.join("kg.spo"), KG).unwrap();
    let sets = [
        "knowledge.mode=ernie".to_string(),
        "knowledge.kg=kg.spo".into(),
    ];
    let msg = ner::train_config(&ws.config(), &sets)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("knowledge.mode") && msg.contains("ALBERT"),
        "{msg}"
    );
}

#[test]
fn pretraining_continues_an_albert_and_every_stage_can_load_the_result() {
    let tmp = tempfile::tempdir().unwrap();
    let config = pretrain_workspace::workspace(tmp.path());
    let encoder = tmp.path().join("encoder");
    let vocab: Vec<String> = pretrain_workspace::VOCAB
        .iter()
        .map(|s| s.to_string())
        .collect();
    std::fs::remove_dir_all(&encoder).unwrap();
    tiny_albert::write_tiny_albert(&encoder, &vocab, 1);
    let report =
        zhishi::stages::pretrain::train_config(&config, &["train.max_steps=4".into()]).unwrap();
    let names = tensor_names(&report.model_dir.join("model.safetensors"));
    assert!(
        names.contains(&"cls.predictions.transform.dense.weight".to_string()),
        "{names:?}"
    );
    let model = load_bert(&report.model_dir, &Device::Cpu, DType::F32, Kernels::Fast).unwrap();
    assert_eq!(model.config().embedding_size(), 8);
    assert_eq!(model.config().distinct_layers(), 1);

    let msg = zhishi::stages::pretrain::train_config(
        &config,
        &["knowledge.mode=ernie".into(), "train.max_steps=1".into()],
    )
    .unwrap_err()
    .to_string();
    assert!(msg.contains("ALBERT"), "{msg}");
}
