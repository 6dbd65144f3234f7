//! `zhishi run` over corpora: output in input order, bad records in the errors file with their
//! line numbers, `kill -9` at any moment then `--resume` gives the uninterrupted output, torn
//! output tails are cut, shards partition the records, stdin/stdout streaming.
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;

use crate::support::run_cli::{
    corpus, quickstart, repo, run_ok, run_quickstart, wait_for_progress, zhishi,
};

fn texts(jsonl: &str) -> Vec<String> {
    jsonl
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["text"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn bad_records_go_to_the_errors_file_with_line_numbers_and_the_run_continues() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let mut bytes = Vec::new();
    bytes.extend_from_slice("{\"id\": 1, \"text\": \"姚明出生在上海。\"}\n".as_bytes());
    bytes.extend_from_slice(b"{\"id\": 2, \"text\": \"broken\n");
    bytes.extend_from_slice(b"{\"id\": 3, \"body\": \"no text field\"}\n");
    bytes.extend_from_slice(b"\n");
    bytes.extend_from_slice(b"{\"id\": 5, \"text\": \"\xe5\xa7\x9a\xff\"}\n");
    bytes.extend_from_slice(
        format!("{{\"id\": 6, \"text\": \"{}\"}}\n", "长".repeat(100)).as_bytes(),
    );
    bytes.extend_from_slice(b"{\"id\": 7, \"text\": 42}\n");
    bytes.extend_from_slice("{\"id\": 8, \"text\": \"阿司匹林是一种常用药物。\"}".as_bytes());
    std::fs::write(&input, bytes).unwrap();
    let output = dir.path().join("out.jsonl");
    run_quickstart(
        &input,
        &output,
        &["--id-field", "id", "--max-record-bytes", "200"],
    );
    let out = std::fs::read_to_string(&output).unwrap();
    let docs: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = docs.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "8"]);
    assert_eq!(docs[1]["mentions"][0]["text"], "阿司匹林");

    let errors = std::fs::read_to_string(dir.path().join("out.errors.jsonl")).unwrap();
    let errors: Vec<Value> = errors
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        [
            (2, "invalid_json"),
            (3, "missing_field"),
            (5, "invalid_utf8"),
            (6, "oversize"),
            (7, "not_a_string")
        ]
    );
    assert!(errors[1]["error"]
        .as_str()
        .unwrap()
        .contains("missing field `text`"));
}

#[test]
fn kill_9_then_resume_gives_the_uninterrupted_output_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, corpus(4000)).unwrap();
    let reference = dir.path().join("reference.jsonl");
    run_quickstart(&input, &reference, &[]);

    let output = dir.path().join("killed.jsonl");
    let checkpoint = dir.path().join("killed.jsonl.checkpoint.json");
    let args = |resume: bool| {
        let mut a = vec![
            "run".to_string(),
            quickstart().display().to_string(),
            "--input".into(),
            input.display().to_string(),
            "--output".into(),
            output.display().to_string(),
            "--batch-size".into(),
            "3".into(),
        ];
        if resume {
            a.push("--resume".into());
        }
        a
    };
    let mut kills = 0;
    for (round, min_docs) in [200u64, 1500, 2600].into_iter().enumerate() {
        let mut child = zhishi()
            .args(args(round > 0))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if wait_for_progress(&mut child, &checkpoint, min_docs) {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        if round == 1 && dir.path().join("killed.jsonl.partial").exists() {
            // A torn write past the checkpoint: half a record, as a crash mid-write leaves it
            // (the run writes into OUTPUT.partial until it is finished).
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(dir.path().join("killed.jsonl.partial"))
                .unwrap();
            std::io::Write::write_all(&mut f, "{\"text\":\"半".as_bytes()).unwrap();
        }
    }
    assert!(kills >= 1, "the run finished before it could be killed");

    // Without --resume an interrupted run is not silently overwritten.
    let refused = zhishi().args(args(false)).output().unwrap();
    let finished = !checkpoint.exists();
    if !finished {
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("pass --resume"));
    }
    run_ok(&args(true).iter().map(String::as_str).collect::<Vec<_>>());
    let got = std::fs::read_to_string(&output).unwrap();
    let want = std::fs::read_to_string(&reference).unwrap();
    assert_eq!(got.lines().count(), 4000);
    assert!(
        got == want,
        "resumed output differs from the uninterrupted run"
    );
    assert!(
        !checkpoint.exists(),
        "a finished run removes its checkpoint"
    );
    assert!(!dir.path().join("killed.jsonl.partial").exists());
}

#[test]
fn shards_partition_the_records_and_interleave_back_to_the_whole_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, corpus(50)).unwrap();
    let whole = dir.path().join("whole.jsonl");
    run_quickstart(&input, &whole, &[]);
    let mut shards = Vec::new();
    for k in 0..3 {
        let out = dir.path().join(format!("shard{k}.jsonl"));
        let shard = format!("{k}/3");
        run_quickstart(&input, &out, &["--shard", &shard]);
        shards.push(
            std::fs::read_to_string(out)
                .unwrap()
                .lines()
                .map(String::from)
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(
        shards.iter().map(Vec::len).collect::<Vec<_>>(),
        [17, 17, 16]
    );
    let interleaved: Vec<String> = (0..50).map(|i| shards[i % 3][i / 3].clone()).collect();
    let whole: Vec<String> = std::fs::read_to_string(whole)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(interleaved, whole);

    let bad = zhishi()
        .args(["run", quickstart().to_str().unwrap(), "--shard", "3/3"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("expected K/N with 0 <= K < N"));
}

#[test]
fn stdin_to_stdout_streams_in_input_order() {
    let input = corpus(40);
    let mut child = zhishi()
        .args([
            "run",
            quickstart().to_str().unwrap(),
            "--batch-size",
            "7",
            "--errors",
            "/dev/null",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feed = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    feed.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = texts(&String::from_utf8(out.stdout).unwrap());
    let want: Vec<String> = corpus(40).lines().map(String::from).collect();
    assert_eq!(got, want);
    let summary: Value = serde_json::from_slice(
        out.stderr
            .trim_ascii_end()
            .rsplit(|&b| b == b'\n')
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(summary["docs"], 40);
    assert!(summary["docs_per_s"].as_f64().unwrap() > 0.0);
}

/// Output lines of a finished `zhishi run` child.
fn finished_lines(child: std::process::Child, output: &Path) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(output)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn shard_processes_read_one_store_at_once_through_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let demo = repo().join("kg/demo.tsv");
    run_ok(&[
        "kg",
        "import",
        "--db",
        store.to_str().unwrap(),
        demo.to_str().unwrap(),
    ]);
    let quickstart = std::fs::read_to_string(quickstart()).unwrap();
    let pipeline = |snapshot: bool| -> PathBuf {
        let kg = format!("store = \"store\"\nsnapshot = {snapshot}");
        let toml = quickstart.replace("triples = [\"../kg/demo.tsv\"]", &kg);
        let path = dir.path().join(format!("snapshot-{snapshot}.toml"));
        std::fs::write(&path, toml).unwrap();
        path
    };
    let input = dir.path().join("in.txt");
    std::fs::write(&input, corpus(40)).unwrap();
    let spawn = |toml: &Path, output: &Path, shard: &str| {
        zhishi()
            .args(["run", toml.to_str().unwrap(), "--shard", shard])
            .args(["--input", input.to_str().unwrap()])
            .args(["--output", output.to_str().unwrap()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // The reference: one process holding the store's lock.
    let whole = dir.path().join("whole.jsonl");
    let whole_lines = finished_lines(spawn(&pipeline(false), &whole, "0/1"), &whole);
    assert_eq!(whole_lines.len(), 40);
    // Two shard processes started together on the same store.
    let shared = pipeline(true);
    let outs = [dir.path().join("s0.jsonl"), dir.path().join("s1.jsonl")];
    let children = [
        spawn(&shared, &outs[0], "0/2"),
        spawn(&shared, &outs[1], "1/2"),
    ];
    let shards: Vec<Vec<String>> = children
        .into_iter()
        .zip(&outs)
        .map(|(child, out)| finished_lines(child, out))
        .collect();
    let interleaved: Vec<String> = (0..40).map(|i| shards[i % 2][i / 2].clone()).collect();
    assert_eq!(interleaved, whole_lines);
    assert!(
        whole_lines.iter().any(|l| l.contains("\"facts\":[{")),
        "the store's facts reach the output"
    );
}
