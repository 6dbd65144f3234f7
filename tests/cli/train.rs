//! `zhishi train` and `zhishi eval` print one JSON object of metrics; configuration errors name
//! the file and key and exit non-zero.
use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

use crate::support::ner_workspace;
use ner_workspace::Workspace;

fn zhishi() -> Command {
    Command::cargo_bin("zhishi").unwrap()
}

fn json(out: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(out);
    assert_eq!(text.lines().count(), 1, "one JSON line: {text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn train_then_eval_print_metrics_json() {
    let ws = Workspace::new("");
    let out = zhishi()
        .args([
            "train",
            ws.config().to_str().unwrap(),
            "--set",
            "train.epochs=30",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let train = json(&out.stdout);
    assert_eq!(train["task"], "ner");
    assert_eq!(train["f1"], 1.0, "{train}");
    // The settings it ran with: the TOML after the `--set` overrides.
    assert_eq!(train["settings"]["train"]["epochs"], 30, "{train}");
    assert_eq!(train["settings"]["task"]["kind"], "ner");
    assert!(train["tokens_per_s"].as_f64().unwrap() > 0.0);
    // Named history entries, and the curves drawn beside the model.
    assert_eq!(train["dev_metric"], "f1");
    let last = train["history"].as_array().unwrap().last().unwrap().clone();
    assert!(last["step"].as_u64().unwrap() > 0, "{last}");
    assert!(last["loss"].as_f64().is_some() && last["dev_score"].as_f64().is_some());
    let model_dir = std::path::PathBuf::from(train["model_dir"].as_str().unwrap());
    let svg = std::fs::read_to_string(model_dir.parent().unwrap().join("curves.svg")).unwrap();
    assert!(svg.contains("dev f1"), "curves.svg beside best/");

    let out = zhishi()
        .args(["eval", ws.config().to_str().unwrap(), "--split", "test"])
        .args(["--set", "train.epochs=30"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eval = json(&out.stdout);
    assert_eq!(eval["split"], "test");
    assert_eq!(eval["settings"]["train"]["epochs"], 30, "{eval}");
    // The toy test file is the first three training sentences: 6 PER/LOC entities.
    assert_eq!(
        (eval["gold"].as_u64(), eval["f1"].as_f64()),
        (Some(6), Some(1.0))
    );
    assert_eq!(eval["per_type"]["LOC"]["gold"], 3);

    // The same model with int8 dense layers.
    let out = zhishi()
        .args(["eval", ws.config().to_str().unwrap(), "--split", "test"])
        .args(["--precision", "int8"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let int8 = json(&out.stdout);
    assert_eq!(int8["gold"], 6);
    assert!(int8["f1"].as_f64().unwrap() > 0.5, "{int8}");
}

#[test]
fn unknown_task_kinds_and_keys_are_errors() {
    let ws = Workspace::new("");
    zhishi()
        .args([
            "train",
            ws.config().to_str().unwrap(),
            "--set",
            "task.kind=parsing",
        ])
        .assert()
        .failure()
        .stderr(contains("task.kind \"parsing\""));
    zhishi()
        .args([
            "train",
            ws.config().to_str().unwrap(),
            "--set",
            "head.crf_lr=1",
        ])
        .assert()
        .failure()
        .stderr(contains("ner.toml").and(contains("crf_lr")));
}

/// Every training TOML shipped in `pipelines/` deserialises into its task's schema (unknown or
/// misspelt keys are errors there), with `${M3E_DIR}` standing for any model directory.
#[test]
fn every_shipped_training_toml_matches_its_schema() {
    use std::path::Path;
    use zhishi::config::from_str;
    use zhishi::stages::{
        classify::ClassifyConfig, distill::DistillConfig, kbqa::KbqaConfig, ner::NerConfig,
        pretrain::PretrainConfig, qa::QaConfig, relation::RelationConfig,
    };

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("${M3E_DIR}", "model");
        let doc: toml::Table = toml::from_str(&text).unwrap();
        let Some(kind) = doc
            .get("task")
            .and_then(|t| t.get("kind"))
            .and_then(|k| k.as_str())
        else {
            continue;
        };
        let result = match kind {
            "ner" => from_str::<NerConfig>(&path, &text, &[]).map(drop),
            "relation" => from_str::<RelationConfig>(&path, &text, &[]).map(drop),
            "qa" => from_str::<QaConfig>(&path, &text, &[]).map(drop),
            "kbqa" => from_str::<KbqaConfig>(&path, &text, &[]).map(drop),
            "pretrain" => from_str::<PretrainConfig>(&path, &text, &[]).map(drop),
            "distill" => from_str::<DistillConfig>(&path, &text, &[]).map(drop),
            "classify" => from_str::<ClassifyConfig>(&path, &text, &[]).map(drop),
            other => panic!("{}: unknown task kind {other}", path.display()),
        };
        result.unwrap_or_else(|e| panic!("{e}"));
        checked.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    checked.sort();
    for required in [
        "chnsenticorp-cls.toml",
        "nlpcc-pairs-cls.toml",
        "cmrc2018-qa.toml",
        "distill-medical-ner.toml",
        "distill-chnsenticorp-cls.toml",
        "kbert-medical-ner.toml",
        "msra-ner.toml",
        "nlpcc-kbqa.toml",
        "pretrain.toml",
        "resume-ner.toml",
        "sanwen-re.toml",
    ] {
        assert!(
            checked.iter().any(|c| c == required),
            "{required}: {checked:?}"
        );
    }
}

/// Training reports progress on any stderr: a line every `ZHISHI_PROGRESS_EVERY` seconds when
/// stderr is not a terminal (here a pipe), and a plain-words verdict when the result looks
/// wrong (dev F1 0 after a few steps: "too few steps").
#[test]
fn training_into_a_pipe_prints_progress_lines_and_a_verdict() {
    let ws = Workspace::new("max_steps = 3");
    let out = zhishi()
        .args([
            "train",
            ws.config().to_str().unwrap(),
            "--set",
            "train.progress=true",
        ])
        .env("ZHISHI_PROGRESS_EVERY", "0")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("zhishi train: step 1/"), "{err}");
    assert!(err.contains("zhishi train: step 3/"), "{err}");
    let report = json(&out.stdout);
    if report["f1"] == 0.0 {
        assert!(
            err.contains("warning: dev f1 0.0000 after 3 steps: too few steps"),
            "{err}"
        );
        assert!(report["verdict"]
            .as_str()
            .unwrap()
            .contains("too few steps"));
    } else {
        assert!(report["verdict"].is_null(), "{report}");
        assert!(!err.contains("warning:"), "{err}");
    }
}

/// A trained model directory is all `zhishi eval` needs: the base encoder the configuration
/// names may be gone (moved, another machine, `M3E_DIR` pointing elsewhere).
#[test]
fn eval_needs_the_trained_model_not_the_base_encoder() {
    let ws = Workspace::new("max_steps = 2");
    let config = ws.config();
    let config = config.to_str().unwrap();
    let trained = zhishi().args(["train", config]).output().unwrap();
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    std::fs::rename(ws.root.join("model"), ws.root.join("moved")).unwrap();
    let out = zhishi()
        .args(["eval", config, "--split", "test"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(json(&out.stdout)["f1"].as_f64().is_some());
    // Training still needs it, and says which key names it.
    let out = zhishi().args(["train", config]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("encoder.model"),
        "{err}"
    );
}
