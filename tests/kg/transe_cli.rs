//! `zhishi transe train` on a store and `zhishi transe bench` on a benchmark, end to end.
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use zhishi::kg::transe::TransE;

use crate::support::shared_data;
use shared_data::shared_data;

fn zhishi() -> Command {
    Command::cargo_bin("zhishi").unwrap()
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn json_line(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "expected exactly one JSON line, got {text}");
    serde_json::from_str(lines[0]).unwrap()
}

#[test]
fn train_saves_vectors_by_term_id_in_the_store_and_exports_openke_files() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kg");
    let export = dir.path().join("export");
    zhishi()
        .args(["kg", "import", "--db"])
        .arg(&db)
        .arg(repo("kg/demo.tsv"))
        .assert()
        .success();
    let out = zhishi()
        .args(["transe", "train", "--db"])
        .arg(&db)
        .args([
            "--dim",
            "16",
            "--epochs",
            "2",
            "--negatives",
            "4",
            "--threads",
            "2",
            "--export",
        ])
        .arg(&export)
        .assert()
        .success();
    let report = json_line(&out.get_output().stdout);
    let (terms, relations) = (
        report["entities"].as_u64().unwrap() as usize,
        report["relations"].as_u64().unwrap() as usize,
    );

    let stored = TransE::load(Path::new(report["vectors"].as_str().unwrap())).unwrap();
    assert!(stored.entity.iter().all(|v| v.is_finite()));
    assert_eq!(
        (stored.dim, stored.num_entities(), stored.num_relations()),
        (16, terms, relations)
    );
    assert_eq!(
        TransE::load(&export.join("transe.safetensors")).unwrap(),
        stored
    );

    // The settings and the final loss are in the report, the loss curve beside the export.
    assert!(
        report["final_loss"].as_f64().is_some_and(f64::is_finite),
        "{report}"
    );
    assert_eq!(report["config"]["dim"], 16, "{report}");
    let svg = std::fs::read_to_string(export.join("curves.svg")).unwrap();
    assert!(svg.contains("training loss"));
    let vec_text = std::fs::read_to_string(export.join("entity2vec.vec")).unwrap();
    assert_eq!(vec_text.lines().count(), terms);
    assert!(vec_text.lines().all(|l| l.split('\t').count() == 16));
    let ids = std::fs::read_to_string(export.join("entity2id.txt")).unwrap();
    assert_eq!(ids.lines().next(), Some(terms.to_string().as_str()));
    assert!(
        ids.lines().any(|l| l == "右踝内侧\t0"),
        "the first imported subject gets id 0"
    );
    let rel_ids = std::fs::read_to_string(export.join("relation2id.txt")).unwrap();
    assert_eq!(rel_ids.lines().count(), relations + 1);
}

#[test]
fn bench_prints_one_json_line_with_the_contract_fields() {
    let Some(nations) = shared_data("kg/small/nations") else {
        return;
    };
    let out = zhishi()
        .args(["transe", "bench", "--data"])
        .arg(nations)
        .args([
            "--format",
            "tsv",
            "--dim",
            "16",
            "--epochs",
            "3",
            "--valid-every",
            "1",
            "--threads",
            "2",
        ])
        .assert()
        .success();
    let line = json_line(&out.get_output().stdout);
    assert_eq!(line["dataset"], "nations");
    for key in [
        "mrr",
        "hits_at_1",
        "hits_at_3",
        "hits_at_10",
        "train_seconds",
        "triples_per_second",
    ] {
        assert!(line[key].is_number(), "{key} missing in {line}");
    }
    let mrr = line["mrr"].as_f64().unwrap();
    assert!(
        line["hits_at_1"].as_f64().unwrap() <= mrr && mrr <= line["hits_at_10"].as_f64().unwrap()
    );
}

#[test]
fn bench_reports_a_bad_data_line_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("train.txt", "a\tr\tb\n"),
        ("valid.txt", "a\tr\tb\n"),
        ("test.txt", "a\tr\tb\nbroken\n"),
    ] {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = zhishi()
        .args(["transe", "bench", "--format", "tsv", "--data"])
        .arg(dir.path())
        .assert()
        .failure();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(stderr.contains("test.txt:2"), "{stderr}");
}
