//! `zhishi init` files work where they are written: `--output FILE` writes paths relative to
//! FILE's directory (shipped files reached from there), stdout paths relative to the current
//! directory; placeholders for the user's own data sit beside the file.
use std::path::Path;

use assert_cmd::Command;

use crate::support::ner_workspace::{self, TRAIN};

fn zhishi() -> Command {
    Command::cargo_bin("zhishi").unwrap()
}

fn sample() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpora/sample.txt")
        .display()
        .to_string()
}

/// Runs the pipeline `file` from `cwd` over the sample corpus: every document linked.
fn run_there(cwd: &Path, file: &str) {
    let out = zhishi()
        .current_dir(cwd)
        .args(["run", file, "--input", &sample(), "--output", "-"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let docs = String::from_utf8_lossy(&out.stdout);
    assert_eq!(docs.lines().count(), 15, "{docs}");
    assert!(docs.contains("\"entity\""), "the demo KG links: {docs}");
}

#[test]
fn an_init_pipeline_runs_where_it_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    // --output into another directory, run from there and from its parent.
    let file = tmp.path().join("sub/my.toml");
    let out = zhishi()
        .args(["init", "pipeline", "--output", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    run_there(&tmp.path().join("sub"), "my.toml");
    run_there(tmp.path(), "sub/my.toml");
    // Printed from a directory and saved there, as `zhishi init pipeline > my.toml`.
    let out = zhishi()
        .current_dir(tmp.path())
        .args(["init", "pipeline"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("the directory `zhishi init` ran in"),
        "{text}"
    );
    std::fs::write(tmp.path().join("printed.toml"), text).unwrap();
    run_there(tmp.path(), "printed.toml");
}

#[test]
fn an_init_pipeline_in_the_checkout_names_shipped_files_relatively() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = zhishi()
        .current_dir(repo.join("kg"))
        .args(["init", "pipeline"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("triples = [\"demo.tsv\"]"), "{text}");
    assert!(
        text.contains("model = \"../models/ner/resume/best\""),
        "{text}"
    );
}

/// `zhishi init config --task ner --output DIR/x.toml`, the user's data put where its
/// placeholders say, trains and evaluates from any directory; the model lands in
/// `DIR/models/`, outside any `target/`.
#[test]
fn an_init_ner_config_trains_where_it_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("project");
    let file = dir.join("x.toml");
    let out = zhishi()
        .args(["init", "config", "--task", "ner", "--output"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("train = \"data/train.char.bmes\"  # your training file"),
        "{text}"
    );
    assert!(text.contains("output_dir = \"models/my-ner\""), "{text}");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    for split in ["train", "dev", "test"] {
        let path = dir.join(format!("data/{split}.char.bmes"));
        ner_workspace::write_bmes(&path, TRAIN);
    }
    let encoder = tmp.path().join("encoder");
    ner_workspace::tiny_model(&encoder);
    let settings = ["--set", "data.max_len=32", "--set", "train.max_steps=2"];
    let out = zhishi()
        .current_dir(tmp.path())
        .env("M3E_DIR", &encoder)
        .args(["train", "project/x.toml"])
        .args(settings)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.join("models/my-ner/best/config.json").is_file());
    let out = zhishi()
        .current_dir(&dir)
        .env("M3E_DIR", "/nonexistent")
        .args(["eval", "x.toml", "--split", "test"])
        .args(settings)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
