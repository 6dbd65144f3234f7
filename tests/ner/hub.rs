//! Training from a model id: `encoder.model = "hf:ORG/NAME"` over a Hugging Face cache laid
//! out as hf-hub does trains the very model the directory trains (same weights), the trained
//! model records the pinned id it was built from, and a pipeline's `[ner] model` takes an
//! `hf:` id too.
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::Value;

use crate::support::hub::{hub_env, lay_out, COMMIT};
use crate::support::ner_workspace::Workspace;

/// `zhishi train` of the workspace with the cache `cache` (offline) and `sets`; the JSON
/// report.
fn train(ws: &Workspace, cache: &Path, sets: &[String]) -> Value {
    let mut cmd = Command::cargo_bin("zhishi").unwrap();
    hub_env(&mut cmd, cache, None, true);
    cmd.arg("train").arg(ws.config());
    for set in sets {
        cmd.arg("--set").arg(set);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn model_dir(report: &Value, root: &Path) -> PathBuf {
    let dir = PathBuf::from(report["model_dir"].as_str().unwrap());
    if dir.is_absolute() {
        dir
    } else {
        root.join(dir)
    }
}

#[test]
fn training_from_an_hf_id_trains_what_its_directory_trains_and_records_the_id() {
    let ws = Workspace::new("");
    let cache = ws.root.join("cache");
    lay_out(&cache, "test/tiny-ner", &ws.root.join("model"));
    let short = [
        "train.epochs=3".to_string(),
        "train.eval_every=0".to_string(),
    ];
    let with = |extra: &[&str]| -> Vec<String> {
        short
            .iter()
            .cloned()
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };

    let from_dir = train(&ws, &cache, &with(&["train.output_dir=out-dir"]));
    let from_id = train(
        &ws,
        &cache,
        &with(&["train.output_dir=out-hub", "encoder.model=hf:test/tiny-ner"]),
    );
    let (a, b) = (
        model_dir(&from_dir, &ws.root),
        model_dir(&from_id, &ws.root),
    );
    assert_ne!(a, b);
    assert_eq!(
        std::fs::read(a.join("model.safetensors")).unwrap(),
        std::fs::read(b.join("model.safetensors")).unwrap(),
        "the same encoder trains the same model"
    );
    let meta = |dir: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("ner.json")).unwrap()).unwrap()
    };
    let (meta_dir, meta_id) = (meta(&a), meta(&b));
    assert_eq!(meta_id["encoder"], format!("hf:test/tiny-ner@{COMMIT}"));
    assert!(meta_dir.get("encoder").is_none());
    assert_eq!(
        meta_id["labels"], meta_dir["labels"],
        "the other fields are kept"
    );

    // The trained model, itself laid out in the cache, is a pipeline's `[ner] model`.
    lay_out(&cache, "test/ner-model", &b);
    let run = ws.root.join("run.toml");
    std::fs::write(
        &run,
        "[pipeline]\nname = \"hub-ner\"\nstages = [\"ner\"]\n\n[ner]\nmodel = \"hf:test/ner-model\"\n",
    )
    .unwrap();
    let texts = "张三住在北京\n李四去了上海\n";
    let run_with = |set: Option<String>| {
        let mut cmd = Command::cargo_bin("zhishi").unwrap();
        hub_env(&mut cmd, &cache, None, true);
        cmd.arg("run").arg(&run).args(["--format", "txt"]);
        if let Some(set) = set {
            cmd.arg("--set").arg(set);
        }
        let out = cmd.write_stdin(texts).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let by_id = run_with(None);
    let by_dir = run_with(Some(format!("ner.model={}", b.display())));
    assert_eq!(by_id.lines().count(), 2);
    assert_eq!(by_id, by_dir);
}
