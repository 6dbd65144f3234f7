//! `zhishi train` and `zhishi eval` print one JSON object of metrics; configuration errors name
//! the file and key and exit non-zero.
use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;

#[path = "support/ner_workspace.rs"]
mod ner_workspace;
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
    assert!(train["tokens_per_s"].as_f64().unwrap() > 0.0);

    let out = zhishi()
        .args(["eval", ws.config().to_str().unwrap(), "--split", "test"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let eval = json(&out.stdout);
    assert_eq!(eval["split"], "test");
    // The toy test file is the first three training sentences: 6 PER/LOC entities.
    assert_eq!(
        (eval["gold"].as_u64(), eval["f1"].as_f64()),
        (Some(6), Some(1.0))
    );
    assert_eq!(eval["per_type"]["LOC"]["gold"], 3);
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
