//! Scale-out: the quickstart pipeline run under Apache Spark (PySpark `RDD.pipe`, local mode,
//! 4 partitions) gives output identical to a single-machine `zhishi run`.
//!
//! Needs Java 17 and PySpark, so it is ignored by default:
//! `python3 -m venv /tmp/spark && /tmp/spark/bin/pip install pyspark==3.5.3 &&
//! ZHISHI_SPARK_PYTHON=/tmp/spark/bin/python cargo test --test run -- spark_pipe:: --ignored`
use std::path::PathBuf;
use std::process::Command;

use assert_cmd::cargo::cargo_bin;

#[test]
#[ignore = "needs PySpark and Java: see the module docs"]
fn a_spark_pipe_run_equals_the_local_run() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var("ZHISHI_SPARK_PYTHON").unwrap_or_else(|_| "python3".into());
    let pipeline = repo.join("pipelines/quickstart.toml");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let sample = std::fs::read_to_string(repo.join("corpora/sample.txt")).unwrap();
    let lines: Vec<&str> = sample.lines().filter(|l| !l.trim().is_empty()).collect();
    let corpus: String = (0..2000)
        .map(|i| format!("{}（第{i}条）\n", lines[i % lines.len()]))
        .collect();
    std::fs::write(&input, corpus).unwrap();

    let local = dir.path().join("local.jsonl");
    let status = Command::new(cargo_bin("zhishi"))
        .args([
            "run",
            pipeline.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
        ])
        .args(["--output", local.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());

    let spark = dir.path().join("spark.jsonl");
    let out = Command::new(&python)
        .arg(repo.join("tests/spark/pipe_job.py"))
        .arg(cargo_bin("zhishi"))
        .args([&pipeline, &input, &spark])
        .arg("4")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("partitions=4 docs=2000"), "{log}");
    // Each partition's `zhishi run` numbers its own lines, so ids (line numbers when the
    // input has no id field) are per partition: compare the documents without them.
    let without_ids = |path: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let mut doc: serde_json::Value = serde_json::from_str(l).unwrap();
                doc.as_object_mut().unwrap().remove("id");
                doc
            })
            .collect()
    };
    assert!(
        without_ids(&local) == without_ids(&spark),
        "the Spark output differs from the local run"
    );
}
