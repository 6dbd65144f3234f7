//! Relation-extraction training end to end on a tiny random encoder built in the test: the
//! loss falls and the toy corpus is learned (plain and with K-BERT knowledge), the saved model
//! reloads to the predictions made during training, the `relation` pipeline stage writes
//! relations with character offsets, and bad TOML is reported with its file, line and key.
use zhishi::doc::Span;
use zhishi::pipeline::Pipeline;
use zhishi::stages::relation::data::{read, DataFormat};
use zhishi::stages::relation::{self, PairInput, RelationModel};

use crate::support::re_workspace;
use re_workspace::Workspace;

fn pair<'a>(text: &'a str, head: (usize, usize), tail: (usize, usize)) -> PairInput<'a> {
    PairInput {
        text,
        head: Span::new(head.0, head.1),
        tail: Span::new(tail.0, tail.1),
    }
}

fn labels(model: &RelationModel, pairs: &[PairInput<'_>]) -> Vec<String> {
    model
        .predict(pairs)
        .unwrap()
        .iter()
        .map(|p| model.label(p.label).to_string())
        .collect()
}

#[test]
fn training_reduces_the_loss_and_learns_the_toy_corpus() {
    let ws = Workspace::new("");
    let report = relation::train_config(&ws.config(), &[]).unwrap();
    let history = &report.train.history;
    let (first, last) = (history[0].loss, history[history.len() - 1].loss);
    assert!(last < 0.2 * first, "loss {first} -> {last}");
    assert_eq!(report.dev["f1"], 1.0, "{}", report.dev);
    assert_eq!(report.dev["accuracy"], 1.0, "{}", report.dev);

    let model = RelationModel::load(&report.model_dir).unwrap();
    assert_eq!(model.labels(), ["unknown", "Family", "Located", "Social"]);
    let found = labels(
        &model,
        &[
            pair("张三住在北京", (0, 2), (4, 6)),
            pair("张三住在北京", (4, 6), (0, 2)),
            pair("张三是李四的父亲", (0, 2), (3, 5)),
        ],
    );
    assert_eq!(found, ["Located", "unknown", "Family"]);
}

#[test]
fn kbert_knowledge_trains_through_the_same_head() {
    let ws = Workspace::new("");
    let report = relation::train_config(
        &ws.config(),
        &[
            "knowledge.mode=kbert".into(),
            "knowledge.kg=kg.spo".into(),
            "knowledge.max_entities=1".into(),
        ],
    )
    .unwrap();
    let history = &report.train.history;
    assert!(
        history[history.len() - 1].loss < 0.2 * history[0].loss,
        "{history:?}"
    );
    let meta = std::fs::read_to_string(report.model_dir.join("relation.json")).unwrap();
    assert!(meta.contains("\"kbert\""), "{meta}");
    let model = RelationModel::load(&report.model_dir).unwrap();
    // A K-BERT model reads the knowledge of a linked document, as the pipeline gives it.
    let (kg, _) = zhishi::text::MemoryKg::read_files(
        &[ws.root.join("kg.spo")],
        &zhishi::kg::import::ImportOptions::default(),
    )
    .unwrap();
    let linker = zhishi::text::Linker::build(kg, Default::default()).unwrap();
    let doc = zhishi::text::annotate(&linker, "李四住在上海", 1).unwrap();
    let found = model
        .predict_in_documents(
            std::slice::from_ref(&doc),
            &[(0, Span::new(0, 2), Span::new(4, 6))],
        )
        .unwrap();
    assert_eq!(model.label(found[0].0.label), "Located");
    assert!(model
        .predict(&[pair("李四住在上海", (0, 2), (4, 6))])
        .is_err());

    // Explained: the same prediction, and one evidence entry per injected fact whose delta
    // is the drop of the label's probability when the document lacks that fact.
    let pairs = [(0, Span::new(0, 2), Span::new(4, 6))];
    let explained = model
        .predict_explained(std::slice::from_ref(&doc), &pairs)
        .unwrap();
    let (p, injected, evidence) = &explained[0];
    assert_eq!((p.label, injected), (found[0].0.label, &found[0].1));
    assert!((p.score - found[0].0.score).abs() < 1e-5);
    let evidence = evidence.as_ref().expect("a K-BERT model explains");
    let mut facts: Vec<usize> = evidence.iter().map(|e| e.fact).collect();
    facts.sort_unstable();
    assert_eq!(&facts, injected);
    assert!(!facts.is_empty(), "both mentions carry a fact: {doc:?}");
    for e in evidence {
        let mut without = doc.clone();
        without.facts.remove(e.fact);
        let alone = model.predict_in_documents(&[without], &pairs).unwrap();
        // When the label stays, its probability without the fact is the stage's score.
        if alone[0].0.label == p.label {
            let p_without = alone[0].0.score;
            assert!(
                (p.score - e.delta - p_without).abs() < 1e-4,
                "{e:?}: {} - {} != {p_without}",
                p.score,
                e.delta
            );
        }
    }
}

#[test]
fn a_saved_model_reloads_to_the_predictions_made_during_training() {
    let ws = Workspace::new("");
    let report = relation::train_config(
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
    let dev_path = ws.root.join("dev.txt");
    let dev = read(&dev_path, DataFormat::Sanwen, "unknown", 0).unwrap();
    let a = RelationModel::load(&report.model_dir).unwrap();
    let (docs, owners) = relation::model::example_documents(None, &dev.examples).unwrap();
    let reloaded = serde_json::to_value(
        a.evaluate(&dev.examples, (&docs, &owners), &dev_path)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(saved["dev"], reloaded);
    let b = RelationModel::load(&report.model_dir).unwrap();
    let pairs = [
        pair("王五在杭州工作。", (0, 2), (3, 5)),
        pair("张三和王五是朋友", (3, 5), (0, 2)),
    ];
    assert_eq!(a.predict(&pairs).unwrap(), b.predict(&pairs).unwrap());
}

#[test]
fn eval_scores_the_test_split_like_the_dev_evaluation() {
    let ws = Workspace::new("");
    let report = relation::train_config(&ws.config(), &[]).unwrap();
    let m =
        relation::evaluate_config(&ws.config(), &[], zhishi::stages::task::Split::Test).unwrap();
    // data.test is the dev file.
    assert_eq!(serde_json::to_value(&m).unwrap(), report.dev);
    let err = "valid".parse::<zhishi::stages::task::Split>().unwrap_err();
    assert!(err.contains("unknown split \"valid\""), "{err}");
}

#[test]
fn toml_errors_name_file_line_and_key() {
    let ws = Workspace::new("");
    let msg = relation::train_config(&ws.config(), &["train.epoch=3".into()])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("re.toml") && msg.contains("epoch"), "{msg}");

    let msg = relation::train_config(&ws.config(), &["data.train=missing.txt".into()])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("data.train") && msg.contains("missing.txt"),
        "{msg}"
    );

    let msg = relation::train_config(&ws.config(), &["knowledge.mode=kbert".into()])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("knowledge.kg"), "{msg}");

    let msg = relation::train_config(&ws.config(), &["data.markers=[\"#\", \"@\"]".into()])
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("entity marker \"@\" is not in the vocabulary"),
        "{msg}"
    );

    let text = std::fs::read_to_string(ws.config())
        .unwrap()
        .replace("max_len = 40", "max_len = \"long\"");
    std::fs::write(ws.config(), text).unwrap();
    let msg = relation::train_config(&ws.config(), &[])
        .unwrap_err()
        .to_string();
    assert!(msg.contains(":13") && msg.contains("data.max_len"), "{msg}");
}

fn run_pipeline(ws: &Workspace, relation_table: &str, stages: &str) -> Result<Pipeline, String> {
    let toml = format!(
        r#"[pipeline]
stages = {stages}

[kg]
triples = ["kg.spo"]

[link]
nil_threshold = 0.0

[relation]
model = "out/best"
{relation_table}
"#
    );
    let path = ws.root.join("run.toml");
    std::fs::write(&path, toml).unwrap();
    Pipeline::from_toml(&path).map_err(|e| e.to_string())
}

#[test]
fn the_relation_stage_relates_linked_mentions() {
    let ws = Workspace::new("");
    let report = relation::train_config(&ws.config(), &[]).unwrap();
    let pipeline = run_pipeline(
        &ws,
        "pairs_from = \"mentions\"",
        r#"["segment", "link", "relation"]"#,
    )
    .unwrap();
    let doc = pipeline.process("张三住在北京").unwrap();
    let spans: Vec<(usize, usize)> = doc.mentions.iter().map(|m| (m.start, m.end)).collect();
    assert_eq!(spans, [(0, 2), (4, 6)]);
    let found: Vec<(&str, usize, &str, usize, &str, bool)> = doc
        .relations
        .iter()
        .map(|r| {
            (
                r.head.text.as_str(),
                r.head.start,
                r.tail.text.as_str(),
                r.tail.start,
                r.label.as_str(),
                r.head.entity.is_some(),
            )
        })
        .collect();
    assert_eq!(found, [("张三", 0, "北京", 4, "Located", true)]);
    // The stage's score is the model's probability for that pair (the stage classifies the
    // document's pairs in one batch, whose GEMMs may round differently in the last bit).
    let model = RelationModel::load(&report.model_dir).unwrap();
    let p = model
        .predict(&[pair("张三住在北京", (0, 2), (4, 6))])
        .unwrap();
    assert!(
        (doc.relations[0].score - p[0].score).abs() < 1e-5,
        "{} vs {}",
        doc.relations[0].score,
        p[0].score
    );

    let docs = pipeline
        .process_batch(&["张三是李四的父亲", "没有人"])
        .unwrap();
    assert_eq!(docs[0].relations.len(), 1, "{:?}", docs[0].relations);
    assert_eq!(docs[0].relations[0].label, "Family");
    assert!(docs[1].relations.is_empty());
}

#[test]
fn the_relation_stage_needs_its_arguments_from_an_earlier_stage() {
    let ws = Workspace::new("");
    relation::train_config(&ws.config(), &["train.epochs=1".into()]).unwrap();
    let err = run_pipeline(&ws, "", r#"["segment", "link", "relation"]"#).unwrap_err();
    assert!(
        err.contains("pipeline.stages[2]") && err.contains("reads `entities`"),
        "{err}"
    );
    let err = run_pipeline(
        &ws,
        "pairs_from = \"mentions\"",
        r#"["segment", "relation", "link"]"#,
    )
    .unwrap_err();
    assert!(err.contains("reads `mentions`"), "{err}");
    let err = run_pipeline(&ws, "pairs_from = \"mention\"", r#"["link", "relation"]"#).unwrap_err();
    assert!(err.contains("relation.pairs_from"), "{err}");
}

/// The pipeline shares one loaded model between worker threads.
#[test]
fn a_loaded_model_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<RelationModel>();
}
