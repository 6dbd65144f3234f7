//! ERNIE-THU fusion in NER, end to end on the tiny random encoder of `support/`: TransE vectors
//! of a toy KG are trained in-process (or read from `knowledge.transe`), linked entities sit on
//! their mentions' first tokens, the loss falls, the saved model (with its own entity vectors)
//! reloads to the same scores, the `ner` pipeline stage runs it, and bad settings are reported
//! with their key.
use zhishi::knowledge::EntityVectors;
use zhishi::pipeline::Pipeline;
use zhishi::stages::ner::{self, NerModel};

use crate::support::ner_workspace;
use ner_workspace::Workspace;

/// A toy KG over the workspace's names: people and places.
const KG: &str = "张三\t类别\t人物\n李四\t类别\t人物\n王五\t类别\t人物\n\
北京\t类别\t地点\n上海\t类别\t地点\n杭州\t类别\t地点\n";

/// A workspace with `kg.spo` and `--set` values for ERNIE mode.
fn ernie_workspace(mode: &str) -> (Workspace, Vec<String>) {
    let ws = Workspace::new("");
    std::fs::write(ws.root.join("kg.spo"), KG).unwrap();
    let sets = [
        format!("knowledge.mode={mode}"),
        "knowledge.kg=kg.spo".to_string(),
        "knowledge.transe_epochs=5".to_string(),
    ];
    (ws, sets.to_vec())
}

fn with(mut sets: Vec<String>, more: &[&str]) -> Vec<String> {
    sets.extend(more.iter().map(|s| s.to_string()));
    sets
}

#[test]
fn ernie_training_reduces_the_loss_and_the_saved_model_reloads_to_the_same_scores() {
    let (ws, sets) = ernie_workspace("ernie");
    let sets = with(sets, &["train.epochs=30"]);
    let report = ner::train_config(&ws.config(), &sets).unwrap();
    let history = &report.train.history;
    let (first, last) = (history[0].loss, history[history.len() - 1].loss);
    assert!(last < 0.3 * first, "loss {first} -> {last}");

    // The model directory is self-contained: entity vectors and names travel with it.
    let dir = &report.model_dir;
    let vectors = EntityVectors::load(dir).unwrap();
    assert_eq!(vectors.len(), 8, "6 subjects + 2 classes");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("ner.json")).unwrap()).unwrap();
    assert_eq!(meta["knowledge"]["mode"], "ernie");
    assert_eq!(meta["knowledge"]["ernie_layers"], 1, "half of 2 layers");

    // In-training scores (differentiable ops) equal the reloaded model's (fused kernels).
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(
        saved["dev"],
        crate::support::ner_workspace::without_calibration(
            serde_json::to_value(
                ner::evaluate_config(&ws.config(), &sets, zhishi::stages::task::Split::Dev)
                    .unwrap()
            )
            .unwrap()
        )
    );
    let (a, b) = (NerModel::load(dir).unwrap(), NerModel::load(dir).unwrap());
    let linker = zhishi::text::Linker::build(
        zhishi::text::MemoryKg::from_triples(KG.lines().filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?, f.next()?, f.next()?))
        })),
        zhishi::text::LinkOptions {
            nil_threshold: 0.0,
            ..Default::default()
        },
    )
    .unwrap();
    let docs: Vec<_> = ["张三住在北京", "王五去了上海和杭州工作。"]
        .iter()
        .map(|t| zhishi::text::annotate(&linker, t, 0).unwrap())
        .collect();
    assert_eq!(
        a.predict_documents(&docs).unwrap(),
        b.predict_documents(&docs).unwrap()
    );
    assert!(
        a.predict(&["张三住在北京"]).is_err(),
        "a knowledge model refuses unlinked text"
    );
}

#[test]
fn the_ner_pipeline_stage_runs_an_ernie_model() {
    let (ws, sets) = ernie_workspace("ernie");
    let report = ner::train_config(&ws.config(), &with(sets, &["train.epochs=40"])).unwrap();
    assert_eq!(report.dev["f1"], 1.0, "{}", report.dev);
    let toml = ws.root.join("run.toml");
    std::fs::write(
        &toml,
        format!(
            "[pipeline]\nname = \"ernie-ner\"\nstages = [\"link\", \"ner\"]\n\n[kg]\ntriples = [\"kg.spo\"]\n\n[link]\nnil_threshold = 0.0\n\n[ner]\nmodel = {:?}\n",
            report.model_dir.display().to_string()
        ),
    )
    .unwrap();
    let pipeline = Pipeline::from_toml(&toml).unwrap();
    let doc = pipeline.process("李四住在杭州").unwrap();
    let found: Vec<(usize, usize, &str, &str)> = doc
        .entities
        .iter()
        .map(|e| (e.start, e.end, e.text.as_str(), e.label.as_str()))
        .collect();
    assert_eq!(found, [(0, 2, "李四", "PER"), (4, 6, "杭州", "LOC")]);
}

#[test]
fn transe_vectors_are_trained_into_the_configured_directory_once_and_reused() {
    let (ws, sets) = ernie_workspace("both");
    let sets = with(sets, &["knowledge.transe=vectors", "train.epochs=1"]);
    ner::train_config(&ws.config(), &sets).unwrap();
    let trained = EntityVectors::load(&ws.root.join("vectors")).unwrap();
    // A second run reads them (a changed epoch count would otherwise give other vectors).
    let again = with(sets.clone(), &["knowledge.transe_epochs=1"]);
    let report = ner::train_config(&ws.config(), &again).unwrap();
    assert_eq!(EntityVectors::load(&report.model_dir).unwrap(), trained);
}

#[test]
fn ernie_configuration_errors_name_the_key() {
    let ws = Workspace::new("");
    let err = ner::train_config(&ws.config(), &["knowledge.mode=ernie".into()]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("knowledge.kg") && msg.contains("ernie"),
        "{msg}"
    );

    let (ws, sets) = ernie_workspace("ernie");
    let err = ner::train_config(
        &ws.config(),
        &with(sets.clone(), &["knowledge.ernie_layers=3"]),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("knowledge.ernie_layers") && msg.contains("2 layers"),
        "{msg}"
    );

    let err = ner::train_config(&ws.config(), &with(sets.clone(), &["knowledge.mode=ernei"]))
        .unwrap_err();
    assert!(err.to_string().contains("knowledge.mode"), "{err}");

    // A TransE directory whose name map does not match its vectors.
    let vectors = ws.root.join("vectors");
    ner::train_config(
        &ws.config(),
        &with(
            sets.clone(),
            &["knowledge.transe=vectors", "train.epochs=1"],
        ),
    )
    .unwrap();
    std::fs::write(vectors.join("entity2id.txt"), "2\n张三\t0\n李四\t1\n").unwrap();
    let err = ner::train_config(
        &ws.config(),
        &with(sets, &["knowledge.transe=vectors", "train.epochs=1"]),
    )
    .unwrap_err();
    let msg = zhishi::error::report(&err);
    assert!(
        msg.contains("entity2id.txt") && msg.contains("8 entity vectors for 2 names"),
        "{msg}"
    );
}
