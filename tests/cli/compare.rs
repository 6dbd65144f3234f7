//! `zhishi compare` on the tiny NER workspace: three knowledge arms x two seeds, each trained
//! and evaluated into its own directory, one table, JSON with per-arm mean, spread and gain over
//! plain, and a chart.
use std::process::Command;

use crate::support::ner_workspace;
use ner_workspace::Workspace;

const KG: &str = "张三\t类别\t人物\n李四\t类别\t人物\n王五\t类别\t人物\n\
北京\t位于\t中国\n上海\t位于\t中国\n杭州\t位于\t中国\n";

#[test]
fn compare_trains_every_arm_and_seed_and_summarises_them() {
    let ws = Workspace::new("");
    std::fs::write(ws.root.join("kg.spo"), KG).unwrap();
    let out = ws.root.join("cmp/compare.json");
    let status = Command::new(env!("CARGO_BIN_EXE_zhishi"))
        .args(["compare", ws.config().to_str().unwrap()])
        .args([
            "--knowledge",
            "plain,kbert,ernie",
            "--seeds",
            "2",
            "--split",
            "dev",
        ])
        .arg("--out")
        .arg(&out)
        .args(["--set", "train.max_steps=2", "--set", "knowledge.kg=kg.spo"])
        .args(["--set", "knowledge.transe_epochs=5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&status.stdout);
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        stdout.contains("| kbert |") && stdout.contains("gain over plain"),
        "{stdout}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(json["compare"], "ner");
    assert_eq!(json["metric"], "f1");
    assert_eq!(
        json["seeds"],
        serde_json::json!([7, 8]),
        "train.seed and the next"
    );
    let arms = json["arms"].as_array().unwrap();
    let names: Vec<&str> = arms.iter().map(|a| a["arm"].as_str().unwrap()).collect();
    assert_eq!(names, ["plain", "kbert", "ernie"]);
    for a in arms {
        let scores: Vec<f64> = a["scores"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_f64().unwrap())
            .collect();
        assert_eq!(scores.len(), 2);
        let mean = (scores[0] + scores[1]) / 2.0;
        assert!((a["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
        assert!((a["spread"].as_f64().unwrap() - (scores[0] - scores[1]).abs()).abs() < 1e-9);
    }
    assert_eq!(arms[0]["gain_over_plain"], 0.0);
    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 6);
    for r in runs {
        let dir = std::path::Path::new(r["output_dir"].as_str().unwrap());
        assert!(dir.join("best").is_dir(), "{}", dir.display());
        assert!(dir.ends_with(format!("{}-s{}", r["arm"].as_str().unwrap(), r["seed"])));
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("best/ner.json")).unwrap())
                .unwrap();
        assert_eq!(meta["knowledge"]["mode"], r["arm"]);
    }
    let svg = std::fs::read_to_string(out.with_extension("svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("kbert"));
}

/// A relative `train.output_dir` in a file outside the working directory: the arms' models go
/// under that directory, not under a copy of the file's path nested inside it.
#[test]
fn arms_go_under_the_output_dir_of_a_file_in_another_directory() {
    let ws = Workspace::new("");
    let parent = ws.root.parent().unwrap();
    let config = std::path::Path::new(ws.root.file_name().unwrap()).join("ner.toml");
    let status = Command::new(env!("CARGO_BIN_EXE_zhishi"))
        .current_dir(parent)
        .args(["compare", config.to_str().unwrap()])
        .args(["--knowledge", "plain", "--seeds", "1", "--split", "dev"])
        .args(["--set", "train.max_steps=1"])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(ws.root.join("out/compare/plain-s7/best").is_dir());
    assert!(!ws.root.join(ws.root.file_name().unwrap()).exists());
}
