//! Rules and user dictionaries (issue 33): the shipped `pipelines/rules-demo.toml` over the
//! sample corpus, and the file:line errors of a bad user dictionary or patterns file.
use std::path::{Path, PathBuf};

use zhishi::pipeline::Pipeline;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_rules_demo_tags_kg_types_strings_and_regexes_and_keeps_user_words_whole() {
    let pipeline = Pipeline::from_toml(repo().join("pipelines/rules-demo.toml")).unwrap();
    let docs = pipeline
        .process_batch(&[
            "腰酸背痛是腰椎间盘突出的常见症状，医生建议他做个腰椎CT检查。",
            "胸口剧痛时可以先舌下含服硝酸甘油，再尽快去医院治疗。",
            "青霉素是人类发现的第一种抗生素，至今仍是重要的药物。",
        ])
        .unwrap();
    let entities = |i: usize| -> Vec<(usize, usize, String, String, String)> {
        docs[i]
            .entities
            .iter()
            .map(|e| {
                let source = e.source.clone().unwrap_or_default();
                (e.start, e.end, e.text.clone(), e.label.clone(), source)
            })
            .collect()
    };
    let e = |s: usize, t: usize, text: &str, label: &str| {
        (
            s,
            t,
            text.to_string(),
            label.to_string(),
            "rules".to_string(),
        )
    };
    assert_eq!(
        entities(0),
        [
            e(0, 4, "腰酸背痛", "症状"),
            e(5, 11, "腰椎间盘突出", "疾病"),
            e(26, 30, "CT检查", "检查"),
        ]
    );
    assert_eq!(entities(1), [e(12, 16, "硝酸甘油", "药物")]);
    assert_eq!(
        entities(2),
        [e(0, 3, "青霉素", "药物"), e(12, 15, "抗生素", "药物")]
    );
    // The JSON names the stage that produced each entity.
    let json = serde_json::to_value(&docs[0]).unwrap();
    assert_eq!(json["entities"][0]["source"], "rules");
    // `舌下含服` is in kg/rules-demo.user.dict: one token, not 舌下 + 含服.
    let words: Vec<&str> = docs[1].tokens.iter().map(|t| t.text.as_str()).collect();
    assert!(words.contains(&"舌下含服"), "{words:?}");
}

/// Writes a pipeline with a user dictionary and a patterns file into `dir`.
fn pipeline(dir: &Path, dict: &str, patterns: &str) -> PathBuf {
    std::fs::write(dir.join("kg.tsv"), "糖尿病\t类别\t疾病\n").unwrap();
    std::fs::write(dir.join("user.dict"), dict).unwrap();
    std::fs::write(dir.join("patterns.jsonl"), patterns).unwrap();
    let toml = dir.join("p.toml");
    std::fs::write(
        &toml,
        "[pipeline]\nstages = [\"segment\", \"rules\"]\n[kg]\ntriples = [\"kg.tsv\"]\n\
         [segment]\nuser_dict = \"user.dict\"\n[rules]\npatterns = \"patterns.jsonl\"\n",
    )
    .unwrap();
    toml
}

#[test]
fn bad_user_dictionary_and_pattern_lines_are_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = "{\"label\": \"疾病\", \"kg_type\": \"疾病\"}\n";
    let toml = pipeline(dir.path(), "勤洗手 3 nz\n多通风 很多 nz\n", good);
    let err = zhishi::error::report(&Pipeline::from_toml(&toml).unwrap_err());
    assert!(
        err.contains("user.dict:2: frequency `很多` is not a whole number"),
        "{err}"
    );
    let toml = pipeline(
        dir.path(),
        "勤洗手 3 nz\n",
        "{\"label\": \"X\", \"regex\": \"[\"}\n",
    );
    let err = zhishi::error::report(&Pipeline::from_toml(&toml).unwrap_err());
    assert!(err.contains("rules.patterns"), "{err}");
    assert!(
        err.contains("patterns.jsonl:1: the regex does not compile"),
        "{err}"
    );
    let toml = pipeline(dir.path(), "勤洗手 3 nz\n", good);
    std::fs::remove_file(dir.path().join("patterns.jsonl")).unwrap();
    let err = zhishi::error::report(&Pipeline::from_toml(&toml).unwrap_err());
    assert!(err.contains("rules.patterns"), "{err}");
    let toml = pipeline(dir.path(), "勤洗手 3 nz\n", good);
    let doc = Pipeline::from_toml(&toml)
        .unwrap()
        .process("他有糖尿病，要勤洗手")
        .unwrap();
    assert_eq!(doc.entities.len(), 1);
    assert_eq!((doc.entities[0].start, doc.entities[0].end), (2, 5));
    assert!(doc.tokens.iter().any(|t| t.text == "勤洗手"));
}
