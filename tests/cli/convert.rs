//! `zhishi convert`: NER data into doccano and Label Studio, back again with the same spans,
//! and an existing output refused.
use assert_cmd::Command;
use serde_json::Value;

fn zhishi() -> Command {
    Command::cargo_bin("zhishi").unwrap()
}

#[test]
fn convert_writes_doccano_and_label_studio_and_reads_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    // A stray I- tag opens a span (conlleval); 𠀀 is two UTF-16 code units in doccano.
    std::fs::write(
        p("in.tsv"),
        "text_a\tlabel\n𠀀 头 痛 伴 发 热\tO B-Symptom I-Symptom O I-Symptom I-Symptom\n",
    )
    .unwrap();
    let run = |args: &[&str]| -> Value {
        let out = zhishi().arg("convert").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let report = run(&[
        "--from",
        "kbert_tsv",
        "--to",
        "doccano",
        &p("in.tsv"),
        &p("a.jsonl"),
    ]);
    assert_eq!(
        (report["texts"].as_u64(), report["spans"].as_u64()),
        (Some(1), Some(2))
    );
    let line: Value =
        serde_json::from_str(&std::fs::read_to_string(p("a.jsonl")).unwrap()).unwrap();
    assert_eq!(
        line["label"],
        serde_json::json!([[2, 4, "Symptom"], [5, 7, "Symptom"]])
    );
    run(&[
        "--from",
        "doccano",
        "--to",
        "label_studio",
        &p("a.jsonl"),
        &p("b.json"),
    ]);
    let tasks: Value =
        serde_json::from_str(&std::fs::read_to_string(p("b.json")).unwrap()).unwrap();
    let result = &tasks[0]["annotations"][0]["result"];
    assert_eq!(result[0]["value"]["start"], 1);
    assert_eq!(result[1]["value"]["text"], "发热");
    run(&[
        "--from",
        "label_studio",
        "--to",
        "doccano",
        &p("b.json"),
        &p("c.jsonl"),
    ]);
    assert_eq!(
        std::fs::read_to_string(p("c.jsonl")).unwrap(),
        std::fs::read_to_string(p("a.jsonl")).unwrap()
    );
    let again = zhishi()
        .args([
            "convert",
            "--from",
            "kbert_tsv",
            "--to",
            "doccano",
            &p("in.tsv"),
            &p("a.jsonl"),
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists: refusing to replace it")
    );
    let bad = zhishi()
        .args([
            "convert",
            "--from",
            "kbert_tsv",
            "--to",
            "kbert_tsv",
            &p("in.tsv"),
            &p("d.tsv"),
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected doccano or label_studio"));
}
