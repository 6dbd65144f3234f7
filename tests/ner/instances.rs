//! Named stage instances: two NER models in one pipeline (`[ner_person] kind = "ner"`,
//! `[ner_place] kind = "ner"`), whose entities merge in text order and each say which
//! instance found them; the kind defaults to the table's name; a table naming an unknown
//! kind is refused with the key.
use zhishi::pipeline::Pipeline;
use zhishi::stages::ner;

use crate::support::ner_workspace::{Workspace, TRAIN};

/// `TRAIN` with only the entities of `keep` tagged (the others become `O`).
fn only(keep: &str) -> String {
    let mut out = String::new();
    for (text, tags) in TRAIN {
        for (c, t) in text.chars().zip(tags.split(' ')) {
            let t = if t.ends_with(keep) { t } else { "O" };
            out.push_str(&format!("{c} {t}\n"));
        }
        out.push('\n');
    }
    out
}

#[test]
fn two_ner_instances_merge_their_entities_and_name_themselves() {
    let ws = Workspace::new("");
    let mut models = Vec::new();
    for kind in ["PER", "LOC"] {
        let file = ws.root.join(format!("{kind}.bmes"));
        std::fs::write(&file, only(kind)).unwrap();
        let report = ner::train_config(
            &ws.config(),
            &[
                format!("data.train={}", file.display()),
                format!("data.dev={}", file.display()),
                format!("train.output_dir={}", ws.root.join(kind).display()),
            ],
        )
        .unwrap();
        assert_eq!(report.dev["f1"], 1.0, "{kind}: {}", report.dev);
        models.push(report.model_dir);
    }
    let toml = ws.root.join("two.toml");
    std::fs::write(
        &toml,
        format!(
            "[pipeline]\nstages = [\"ner_person\", \"ner_place\"]\n\n[ner_person]\nkind = \"ner\"\nmodel = \"{}\"\n\n[ner_place]\nkind = \"ner\"\nmodel = \"{}\"\n",
            models[0].display(),
            models[1].display()
        ),
    )
    .unwrap();
    let pipeline = Pipeline::from_toml(&toml).unwrap();
    assert_eq!(pipeline.stage_names(), ["ner_person", "ner_place"]);
    let doc = pipeline.process("张三住在北京").unwrap();
    let found: Vec<(&str, &str, Option<&str>)> = doc
        .entities
        .iter()
        .map(|e| (e.text.as_str(), e.label.as_str(), e.source.as_deref()))
        .collect();
    assert_eq!(
        found,
        [
            ("张三", "PER", Some("ner_person")),
            ("北京", "LOC", Some("ner_place"))
        ]
    );

    // `[ner]` is an instance of `ner` named `ner`.
    let one = ws.root.join("one.toml");
    std::fs::write(
        &one,
        format!(
            "[pipeline]\nstages = [\"ner\"]\n\n[ner]\nmodel = \"{}\"\n",
            models[1].display()
        ),
    )
    .unwrap();
    let doc = Pipeline::from_toml(&one)
        .unwrap()
        .process("李四去了上海")
        .unwrap();
    assert_eq!(doc.entities.len(), 1);
    assert_eq!(doc.entities[0].source.as_deref(), Some("ner"));
}

#[test]
fn an_instance_naming_an_unknown_kind_is_refused_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("bad.toml");
    std::fs::write(
        &toml,
        "[pipeline]\nstages = [\"tagger\"]\n\n[tagger]\nkind = \"nerr\"\nmodel = \"m\"\n",
    )
    .unwrap();
    let err = Pipeline::from_toml(&toml).err().unwrap().to_string();
    assert!(
        err.contains("pipeline.stages[0]") && err.contains("names an unknown kind `nerr`"),
        "{err}"
    );
}
