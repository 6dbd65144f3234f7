//! For the `zhishi run` tests: the binary, the quickstart pipeline, a real corpus.
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn quickstart() -> PathBuf {
    repo().join("pipelines/quickstart.toml")
}

pub fn zhishi() -> Command {
    let mut cmd = Command::cargo_bin("zhishi").unwrap();
    // The shipped configs read `${ZHISHI_DATA:-../data}`: point them at the test data.
    cmd.env("RUST_LOG", "warn")
        .env("ZHISHI_DATA", super::shared_data::root());
    cmd
}

/// `n` distinct real sentences: the sample corpus with a numbered suffix.
pub fn corpus(n: usize) -> String {
    let sample = std::fs::read_to_string(repo().join("corpora/sample.txt")).unwrap();
    let lines: Vec<&str> = sample.lines().filter(|l| !l.trim().is_empty()).collect();
    (0..n)
        .map(|i| format!("{}（第{i}条）\n", lines[i % lines.len()]))
        .collect()
}

pub fn run_ok(args: &[&str]) {
    let out = zhishi().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `zhishi run` on the quickstart pipeline from `input` to `output`, plus `extra` flags.
pub fn run_quickstart(input: &Path, output: &Path, extra: &[&str]) {
    let pipeline = quickstart();
    let mut args = vec![
        "run",
        pipeline.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
}

/// Polls the checkpoint until the run has written some documents but not all; `false` when
/// the run ended first.
pub fn wait_for_progress(child: &mut Child, checkpoint: &Path, min_docs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        if let Ok(bytes) = std::fs::read(checkpoint) {
            if let Ok(c) = serde_json::from_slice::<Value>(&bytes) {
                if c["done"] == true {
                    return false;
                }
                if c["docs"].as_u64().unwrap_or(0) >= min_docs {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}
