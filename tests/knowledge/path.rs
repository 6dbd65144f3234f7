//! One knowledge path from training to a pipeline run (issue 18), on the tiny random encoder
//! of `support/`: a K-BERT NER model is trained on sentences linked exactly as a pipeline's
//! `link` + `facts` stages link them; in a pipeline it injects the facts those stages wrote
//! and marks them `injected_by: ["ner"]`; it refuses a pipeline whose knowledge differs from
//! its training's (unless told to warn); its directory holds no path and still runs when moved.
use std::path::{Path, PathBuf};

use zhishi::doc::Document;
use zhishi::pipeline::Pipeline;
use zhishi::stages::ner::{self, NerModel};
use zhishi::stages::task::{Annotator, KnowledgeMode, KnowledgeTable};

use crate::support::ner_workspace;
use ner_workspace::Workspace;

/// People and places of the workspace's sentences, three facts each.
const KG: &str = "张三\t类别\t人物\n张三\t职业\t教师\n张三\t籍贯\t河北\n\
李四\t类别\t人物\n李四\t职业\t医生\n李四\t籍贯\t山东\n\
王五\t类别\t人物\n王五\t职业\t工人\n王五\t籍贯\t四川\n\
北京\t类别\t地点\n北京\t简称\t京\n北京\t位于\t华北\n\
上海\t类别\t地点\n上海\t简称\t沪\n上海\t位于\t华东\n\
杭州\t类别\t地点\n杭州\t简称\t杭\n杭州\t位于\t浙江\n";

const TEXTS: [&str; 4] = [
    "张三住在北京",
    "王五去了上海和杭州工作。",
    "李四在杭州",
    "今天天气很好",
];

/// A K-BERT model (two facts per mention, NIL threshold 0) trained in a fresh workspace.
fn trained() -> (Workspace, PathBuf) {
    let ws = Workspace::new("");
    std::fs::write(ws.root.join("kg.spo"), KG).unwrap();
    let sets: Vec<String> = [
        "knowledge.mode=kbert",
        "knowledge.kg=kg.spo",
        "knowledge.max_entities=2",
        "train.epochs=3",
    ]
    .map(String::from)
    .to_vec();
    let report = ner::train_config(&ws.config(), &sets).unwrap();
    (ws, report.model_dir)
}

/// A run TOML in `dir` over `kg` with `[link]`/`[facts]`/`[ner]` extras.
fn pipeline_toml(dir: &Path, kg: &str, stages: &str, extra: &str, model: &Path) -> PathBuf {
    let path = dir.join("run.toml");
    std::fs::write(
        &path,
        format!(
            "[pipeline]\nname = \"kbert-ner\"\nstages = {stages}\n\n[kg]\ntriples = [{kg:?}]\n\n\
             [link]\nnil_threshold = 0.0\n\n[facts]\nper_mention = 2\n\n[ner]\nmodel = {:?}\n{extra}",
            model.display().to_string()
        ),
    )
    .unwrap();
    path
}

const ALL: &str = r#"["segment", "link", "facts", "ner"]"#;

#[test]
fn training_links_its_sentences_exactly_as_the_pipeline_does() {
    let ws = Workspace::new("");
    let kg = ws.root.join("kg.spo");
    std::fs::write(&kg, KG).unwrap();
    let table = KnowledgeTable {
        mode: KnowledgeMode::Kbert,
        kg: Some(kg),
        max_entities: 2,
        ..KnowledgeTable::default()
    };
    let annotator = Annotator::from_table(&table, None).unwrap().unwrap();
    let trained_on = annotator.annotate(&TEXTS).unwrap();

    std::fs::write(
        ws.root.join("link.toml"),
        "[pipeline]\nname = \"link\"\nstages = [\"link\", \"facts\"]\n\n[kg]\ntriples = [\"kg.spo\"]\n\n\
         [link]\nnil_threshold = 0.0\n\n[facts]\nper_mention = 2\n",
    )
    .unwrap();
    let pipeline = Pipeline::from_toml(ws.root.join("link.toml")).unwrap();
    let run = pipeline.process_batch(&TEXTS).unwrap();
    assert_eq!(
        run, trained_on,
        "the documents a model trains on = a pipeline's"
    );
    assert!(trained_on[1].facts.len() >= 4, "{:?}", trained_on[1].facts);
}

#[test]
fn the_facts_a_pipeline_shows_are_the_facts_the_model_was_given() {
    let (ws, model) = trained();
    let toml = pipeline_toml(&ws.root, "kg.spo", ALL, "", &model);
    let pipeline = Pipeline::from_toml(&toml).unwrap();
    let docs = pipeline.process_batch(&TEXTS).unwrap();
    let facts: Vec<_> = docs.iter().flat_map(|d| &d.facts).collect();
    assert!(facts.len() >= 8, "mentions were linked: {facts:?}");
    for fact in &facts {
        assert_eq!(fact.injected_by, ["ner"], "{fact:?}");
    }
    let json = serde_json::to_value(&docs[0]).unwrap();
    assert_eq!(json["facts"][0]["injected_by"], serde_json::json!(["ner"]));

    // The model's own prediction over the same documents (its knowledge, not relinked).
    let loaded = NerModel::load(&model).unwrap();
    let mut bare: Vec<Document> = docs.clone();
    for d in &mut bare {
        d.entities.clear();
        d.facts.iter_mut().for_each(|f| f.injected_by.clear());
    }
    let again = loaded.predict_documents(&bare).unwrap();
    for (doc, tagged) in docs.iter().zip(again) {
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
        assert_eq!(tagged.injected, (0..doc.facts.len()).collect::<Vec<_>>());
    }

    // More facts selected than the model injects: the extra ones are shown, not injected.
    let toml = pipeline_toml(&ws.root, "kg.spo", ALL, "", &model);
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("per_mention = 2", "per_mention = 3");
    std::fs::write(&toml, text).unwrap();
    let doc = Pipeline::from_toml(&toml)
        .unwrap()
        .process("张三住在北京")
        .unwrap();
    for (m, _) in doc.mentions.iter().enumerate() {
        let marks: Vec<bool> = doc
            .facts
            .iter()
            .filter(|f| f.mention == m)
            .map(|f| !f.injected_by.is_empty())
            .collect();
        assert_eq!(marks, [true, true, false], "best two injected: {doc:?}");
    }
}

#[test]
fn explained_entities_carry_valid_sorted_evidence_and_nothing_else_changes() {
    let (ws, model) = trained();
    let toml = pipeline_toml(&ws.root, "kg.spo", ALL, "", &model);
    let pipeline = Pipeline::from_toml(&toml).unwrap();
    let plain = pipeline.process_batch(&TEXTS).unwrap();
    let mut explained: Vec<Document> = TEXTS.iter().map(|t| Document::new(*t)).collect();
    pipeline.run_with(&mut explained, true).unwrap();
    let mut entities = 0;
    for (doc, plain) in explained.iter().zip(&plain) {
        assert_eq!(doc.facts, plain.facts);
        assert_eq!(doc.entities.len(), plain.entities.len(), "{doc:?}");
        for (e, p) in doc.entities.iter().zip(&plain.entities) {
            entities += 1;
            assert!(p.evidence.is_none(), "no evidence unless asked: {p:?}");
            let evidence = e.evidence.as_ref().expect("an explained entity");
            assert_eq!(
                (e.start, e.end, &e.label, e.score),
                (p.start, p.end, &p.label, p.score)
            );
            for ev in evidence {
                let fact = &doc.facts[ev.fact];
                assert_eq!(fact.injected_by, ["ner"], "{doc:?}");
                assert!(ev.delta.is_finite());
            }
            assert!(
                evidence
                    .windows(2)
                    .all(|w| w[0].delta.abs() >= w[1].delta.abs()),
                "{evidence:?}"
            );
            if doc.facts.is_empty() {
                assert!(evidence.is_empty(), "no fact, no evidence: {doc:?}");
            }
        }
    }
    // The JSON of an unexplained run is unchanged: no `evidence` key anywhere.
    let json = serde_json::to_string(&plain).unwrap();
    assert!(!json.contains("evidence"), "{json}");
    eprintln!("{entities} explained entities");
}

#[test]
fn a_pipeline_with_other_knowledge_is_refused_unless_told_to_warn() {
    let (ws, model) = trained();
    let build = |toml: &Path| {
        Pipeline::from_toml(toml)
            .map(|_| ())
            .map_err(|e| zhishi::error::report(&e))
    };

    // Another NIL threshold: the mentions would not be the trained ones.
    let toml = pipeline_toml(&ws.root, "kg.spo", ALL, "", &model);
    let text = std::fs::read_to_string(&toml).unwrap();
    std::fs::write(
        &toml,
        text.replace("nil_threshold = 0.0", "nil_threshold = 0.25"),
    )
    .unwrap();
    let err = build(&toml).unwrap_err();
    assert!(
        err.contains("link.nil_threshold: model 0.0, pipeline 0.25"),
        "{err}"
    );
    std::fs::write(
        &toml,
        text.replace("nil_threshold = 0.0", "nil_threshold = 0.25")
            + "knowledge_mismatch = \"warn\"\n",
    )
    .unwrap();
    build(&toml).unwrap();

    // Fewer facts per mention than the model injects.
    std::fs::write(&toml, text.replace("per_mention = 2", "per_mention = 1")).unwrap();
    let err = build(&toml).unwrap_err();
    assert!(err.contains("facts.per_mention"), "{err}");

    // Another KG: one fact fewer.
    let other = KG.replace("杭州\t位于\t浙江\n", "");
    std::fs::write(ws.root.join("other.spo"), other).unwrap();
    let toml = pipeline_toml(&ws.root, "other.spo", ALL, "", &model);
    let err = build(&toml).unwrap_err();
    assert!(
        err.contains("kg: the model was trained on a KG of 18 triples"),
        "{err}"
    );

    // No facts stage: the model reads facts, so the pipeline's order check says so.
    let toml = pipeline_toml(&ws.root, "kg.spo", r#"["link", "ner"]"#, "", &model);
    let text = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("[facts]\nper_mention = 2\n", "");
    std::fs::write(&toml, text).unwrap();
    let err = build(&toml).unwrap_err();
    assert!(err.contains("facts"), "{err}");
}

#[test]
fn a_trained_model_directory_holds_no_path_and_runs_after_a_move() {
    let (ws, model) = trained();
    let meta = std::fs::read_to_string(model.join("ner.json")).unwrap();
    let root = ws.root.display().to_string();
    assert!(!meta.contains(&root), "ner.json names a path: {meta}");
    let record: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(record["knowledge"]["kg_identity"]["triples"], 18);
    assert_eq!(record["knowledge"]["kg_name"], "kg.spo");

    let toml = pipeline_toml(&ws.root, "kg.spo", ALL, "", &model);
    let before = Pipeline::from_toml(&toml)
        .unwrap()
        .process_batch(&TEXTS)
        .unwrap();

    let elsewhere = tempfile::tempdir().unwrap();
    let moved = elsewhere.path().join("moved-model");
    std::fs::rename(&model, &moved)
        .or_else(|_| copy_dir(&model, &moved).map(|_| std::fs::remove_dir_all(&model).unwrap()))
        .unwrap();
    assert!(!model.exists());
    let toml = pipeline_toml(&ws.root, "kg.spo", ALL, "", &moved);
    let after = Pipeline::from_toml(&toml)
        .unwrap()
        .process_batch(&TEXTS)
        .unwrap();
    assert_eq!(before, after);

    // The same model stage at int8: loads, injects the same facts, and is another setting.
    let int8 = Pipeline::from_toml_with(&toml, &["pipeline.precision=\"int8\"".into()]).unwrap();
    let f32 = Pipeline::from_toml(&toml).unwrap();
    assert_ne!(int8.fingerprint(), f32.fingerprint());
    let quantised = int8.process_batch(&TEXTS).unwrap();
    for (a, b) in quantised.iter().zip(&after) {
        assert_eq!(
            a.facts, b.facts,
            "int8 changes the arithmetic, not the knowledge"
        );
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        std::fs::copy(entry.path(), to.join(entry.file_name()))?;
    }
    Ok(())
}
