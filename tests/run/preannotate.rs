//! `zhishi run --output-format doccano|label_studio`: the Label Studio array streams and a
//! run killed with `kill -9` resumes to the uninterrupted file; the format is part of the
//! run's settings; doccano writes one record per line.
use std::process::Stdio;

use serde_json::Value;

use crate::support::run_cli::{
    corpus, quickstart, run_ok, run_quickstart, wait_for_progress, zhishi,
};

#[test]
fn a_label_studio_array_is_resumed_after_kill_9_to_the_uninterrupted_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, corpus(3000)).unwrap();
    let format = ["--output-format", "label_studio"];
    let reference = dir.path().join("reference.json");
    run_quickstart(&input, &reference, &format);
    let want = std::fs::read_to_string(&reference).unwrap();
    let tasks: Vec<Value> = serde_json::from_str(&want).unwrap();
    assert_eq!(tasks.len(), 3000);
    let first_line = corpus(1).lines().next().unwrap().to_string();
    assert_eq!(tasks[0]["data"]["text"], first_line.as_str());
    assert_eq!(tasks[0]["predictions"][0]["model_version"], "quickstart");

    let output = dir.path().join("killed.json");
    let checkpoint = dir.path().join("killed.json.checkpoint.json");
    let args = |resume: bool, format: &str| {
        let mut a = vec![
            "run".to_string(),
            quickstart().display().to_string(),
            "--input".into(),
            input.display().to_string(),
            "--output".into(),
            output.display().to_string(),
            "--batch-size".into(),
            "3".into(),
            "--output-format".into(),
            format.into(),
        ];
        if resume {
            a.push("--resume".into());
        }
        a
    };
    let mut child = zhishi()
        .args(args(false, "label_studio"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let killed = wait_for_progress(&mut child, &checkpoint, 300);
    if killed {
        child.kill().unwrap(); // SIGKILL
    }
    child.wait().unwrap();
    if killed {
        let other = zhishi().args(args(true, "doccano")).output().unwrap();
        assert!(!other.status.success());
        let stderr = String::from_utf8_lossy(&other.stderr);
        assert!(
            stderr.contains("the output format was label_studio, now doccano"),
            "{stderr}"
        );
    }
    let resumed = args(true, "label_studio");
    run_ok(&resumed.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        std::fs::read_to_string(&output).unwrap() == want,
        "resumed output differs"
    );
}

#[test]
fn doccano_output_is_one_record_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, corpus(5)).unwrap();
    let output = dir.path().join("out.jsonl");
    run_quickstart(&input, &output, &["--output-format", "doccano"]);
    let out = std::fs::read_to_string(&output).unwrap();
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    // The quickstart pipeline links mentions but predicts no entities, relations or labels.
    assert_eq!(lines[0]["label"], serde_json::json!([]));
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n").unwrap();
    let none = dir.path().join("none.json");
    run_quickstart(&empty, &none, &["--output-format", "label_studio"]);
    let tasks: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&none).unwrap()).unwrap();
    assert!(tasks.is_empty());
}
