//! Every command safe by construction (the probe pass of the safety issue): each data-loss
//! repro as a regression test named after it. A command refuses, before any work, to write
//! over anything it reads; directories are written whole; a second writer is refused.
//!
//! `ZHISHI_BIN=path/to/zhishi cargo test --test cli -- command_safety::` runs the same tests
//! against another build (e.g. one from before the fixes, to see each repro fail there).
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::support::ner_workspace;
use crate::support::pretrain_workspace;
use ner_workspace::Workspace;

/// The binary under test: `$ZHISHI_BIN`, else this build's.
fn bin() -> PathBuf {
    std::env::var_os("ZHISHI_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| assert_cmd::cargo::cargo_bin("zhishi"))
}

fn zhishi() -> Command {
    Command::new(bin())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `args`, expecting failure; returns stderr.
fn refused(args: &[&str], dir: &Path) -> String {
    let out = zhishi().current_dir(dir).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "expected a refusal of {args:?}: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Runs `args`, expecting success; returns stdout.
fn ok(args: &[&str], dir: &Path) -> String {
    let out = zhishi().current_dir(dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir` with its bytes, sorted (to show a directory unchanged).
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn d1_training_from_its_own_best_model_is_refused_and_the_model_survives() {
    let ws = Workspace::new("max_steps = 1");
    let config = ws.config();
    let config = config.to_str().unwrap();
    ok(&["train", config], &ws.root);
    let best = ws.root.join("out/best");
    let before = snapshot(&best);
    assert!(before.iter().all(|(_, bytes)| !bytes.is_empty()));
    let err = refused(
        &["train", config, "--set", "encoder.model=\"out/best\""],
        &ws.root,
    );
    assert!(
        err.contains("encoder.model") && err.contains("the best model"),
        "{err}"
    );
    assert_eq!(snapshot(&best), before, "out/best changed");
    // The model still loads: evaluation reads it.
    ok(&["eval", config, "--split", "test"], &ws.root);
    // Written with ordinary permissions.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for (path, _) in &before {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644, "{}", path.display());
        }
    }
    // Training from it into another directory is fine.
    ok(
        &[
            "train",
            config,
            "--set",
            "encoder.model=\"out/best\"",
            "--set",
            "train.output_dir=\"out2\"",
        ],
        &ws.root,
    );
}

#[test]
fn d1_pretraining_from_its_own_output_is_refused_and_the_model_survives() {
    let dir = tempfile::tempdir().unwrap();
    pretrain_workspace::workspace(dir.path());
    ok(
        &["pretrain", "pretrain.toml", "--set", "train.max_steps=1"],
        dir.path(),
    );
    let best = dir.path().join("out/best");
    let before = snapshot(&best);
    assert!(before.iter().all(|(_, bytes)| !bytes.is_empty()));
    let err = refused(
        &[
            "pretrain",
            "pretrain.toml",
            "--set",
            "encoder.model=\"out/best\"",
        ],
        dir.path(),
    );
    assert!(err.contains("encoder.model"), "{err}");
    assert_eq!(snapshot(&best), before, "out/best changed");
}

#[test]
fn d2_distilling_into_the_teachers_own_directory_is_refused() {
    let ws = Workspace::new("max_steps = 1");
    ok(&["train", ws.config().to_str().unwrap()], &ws.root);
    let toml = r#"[task]
kind = "distill"

[teacher]
model = "out/best"

[student]
layers = [1]

[data]
format = "char_per_line"
train = "train.bmes"
dev = "dev.bmes"

[train]
output_dir = "out"
epochs = 1
batch_size = 3
progress = false
"#;
    std::fs::write(ws.root.join("distill.toml"), toml).unwrap();
    let teacher = snapshot(&ws.root.join("out/best"));
    let err = refused(&["distill", "distill.toml"], &ws.root);
    assert!(err.contains("teacher.model"), "{err}");
    assert_eq!(snapshot(&ws.root.join("out/best")), teacher);
}

#[test]
fn d3_bench_kg_never_deletes_a_directory_it_did_not_create() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(work.join("thesis.tex"), "years of work").unwrap();
    // Bad input: refused before the work directory is touched.
    let err = refused(
        &["bench", "kg", "--fb15k", "nope", "--work", "work"],
        dir.path(),
    );
    assert!(err.contains("nope"), "{err}");
    // Good input, but a directory zhishi did not make: refused, kept.
    let fb = dir.path().join("fb");
    std::fs::create_dir(&fb).unwrap();
    std::fs::write(fb.join("train2id.txt"), "1\n0 1 0\n").unwrap();
    for work in ["work", "."] {
        let err = refused(
            &["bench", "kg", "--fb15k", "fb", "--work", work],
            dir.path(),
        );
        assert!(err.contains("refusing"), "{err}");
    }
    assert!(work.join("thesis.tex").exists());
    assert!(fb.join("train2id.txt").exists());
}

#[test]
fn d4_a_checkpoint_whose_pieces_are_of_different_steps_is_refused_at_resume() {
    let ws = Workspace::new("resume = true");
    let config = ws.config();
    let config = config.to_str().unwrap();
    ok(&["train", config, "--set", "train.max_steps=1"], &ws.root);
    let last = ws.root.join("out/last");
    let step1 = std::fs::read(last.join("optimizer.safetensors")).unwrap();
    ok(&["train", config, "--set", "train.max_steps=2"], &ws.root);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(last.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 2);
    // What a kill between the old three renames left: step-2 weights beside step-1 moments.
    std::fs::write(last.join("optimizer.safetensors"), step1).unwrap();
    let err = refused(&["train", config, "--set", "train.max_steps=3"], &ws.root);
    assert!(err.contains("belong to different steps"), "{err}");
    // The checkpoint is one directory: nothing beside it but the outputs.
    let mut names: Vec<String> = std::fs::read_dir(ws.root.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".zhishi-lock", "best", "curves.svg", "last"]);
}

#[test]
fn d5_a_second_training_run_into_one_output_directory_is_refused() {
    let ws = Workspace::new("");
    let first = Process::new(bin())
        .current_dir(&ws.root)
        .args(["train", "ner.toml", "--set", "train.epochs=100000"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = KillOnDrop(first);
    wait_for_lock(&ws.root.join("out/.zhishi-lock"));
    let err = refused(&["train", "ner.toml"], &ws.root);
    assert!(
        err.contains("being written by another zhishi process")
            && err.contains(&format!("pid {}", first.0.id())),
        "{err}"
    );
}

/// Waits (at most a minute) until the lock file `lock` names its holder.
fn wait_for_lock(lock: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(lock).is_ok_and(|t| !t.trim().is_empty()) {
        assert!(
            Instant::now() < deadline,
            "the first run never took its lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn d6_chart_refuses_to_overwrite_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let json = r#"{"bench":"ner","ratio_tokens_per_s":2.0}"#;
    std::fs::write(dir.path().join("r.json"), json).unwrap();
    let err = refused(&["chart", "r.json", "--output", "./r.json"], dir.path());
    assert!(err.contains("--output") && err.contains("input"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("r.json")).unwrap(),
        json
    );
}

#[test]
fn d7_bench_run_refuses_to_overwrite_its_corpus() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.txt"), "高血压\n").unwrap();
    let pipeline = repo().join("pipelines/quickstart.toml");
    let err = refused(
        &[
            "bench",
            "run",
            pipeline.to_str().unwrap(),
            "--corpus",
            "c.txt",
            "--model",
            "m",
            "--out",
            "c.txt",
        ],
        dir.path(),
    );
    assert!(err.contains("--corpus"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("c.txt")).unwrap(),
        "高血压\n"
    );
}

#[test]
fn d8_compare_refuses_to_overwrite_its_configuration() {
    let ws = Workspace::new("");
    let before = std::fs::read(ws.config()).unwrap();
    let err = refused(
        &["compare", "ner.toml", "--out", "ner.toml", "--seeds", "1"],
        &ws.root,
    );
    assert!(
        err.contains("--out") && err.contains("configuration"),
        "{err}"
    );
    assert_eq!(std::fs::read(ws.config()).unwrap(), before);
    assert!(!ws.root.join("out").exists(), "refused before any training");
}

#[test]
fn d9_run_refuses_to_overwrite_its_pipeline_and_what_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("p.toml");
    let kg = repo().join("kg/demo.tsv");
    let toml = format!(
        "[pipeline]\nstages = [\"segment\", \"link\"]\n[kg]\ntriples = [{:?}]\n[segment]\n[link]\n",
        kg.to_str().unwrap()
    );
    std::fs::write(&pipeline, &toml).unwrap();
    std::fs::write(dir.path().join("in.txt"), "高血压\n").unwrap();
    let kg_before = std::fs::read(&kg).unwrap();
    for args in [
        vec!["run", "p.toml", "--input", "in.txt", "--output", "p.toml"],
        vec![
            "run", "p.toml", "--input", "in.txt", "--output", "o.jsonl", "--errors", "p.toml",
        ],
        vec![
            "run",
            "p.toml",
            "--input",
            "in.txt",
            "--output",
            kg.to_str().unwrap(),
        ],
    ] {
        let err = refused(&args, dir.path());
        assert!(err.contains("is the same path as"), "{err}");
    }
    assert_eq!(std::fs::read_to_string(&pipeline).unwrap(), toml);
    assert_eq!(std::fs::read(&kg).unwrap(), kg_before);
}

#[test]
fn quantize_into_its_own_model_directory_is_refused() {
    let ws = Workspace::new("");
    let before = snapshot(&ws.root.join("model"));
    let err = refused(
        &["quantize", "--model", "model", "--output", "model/q"],
        &ws.root,
    );
    assert!(err.contains("lies inside"), "{err}");
    assert_eq!(snapshot(&ws.root.join("model")), before);
}

/// Spawns `args` with its standard output a pipe whose reading end is closed at once, and
/// checks that it stops quietly: no panic, and success or the SIGPIPE a closed pipe sends.
fn into_a_closed_pipe(args: &[&str], dir: &Path, stdin: &str) {
    let mut child = Process::new(bin())
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    if let Some(mut input) = child.stdin.take() {
        use std::io::Write;
        let _ = input.write_all(stdin.as_bytes());
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{args:?}: {err}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert!(
            out.status.success() || out.status.signal() == Some(13),
            "{args:?} ended with {:?}: {err}",
            out.status
        );
    }
}

#[test]
fn p1_every_printing_command_stops_quietly_at_a_closed_pipe() {
    let ws = Workspace::new("max_steps = 1");
    let root = &ws.root;
    let kg = repo().join("kg/demo.tsv");
    let quickstart = repo().join("pipelines/quickstart.toml");
    ok(&["kg", "import", "--db", "kg", kg.to_str().unwrap()], root);
    ok(&["train", "ner.toml"], root);
    let text = "高血压和糖尿病都是常见的慢性疾病。\n".repeat(200);
    let json = "{\"text\":\"高血压和糖尿病都是常见的慢性疾病。\"}\n".repeat(200);
    let q = quickstart.to_str().unwrap();
    let runs: Vec<(Vec<&str>, &str)> = vec![
        (vec!["kg", "stats", "--db", "kg"], ""),
        (vec!["kg", "query", "--db", "kg", "--subject", "高血压"], ""),
        (
            vec!["kg", "neighbors", "--db", "kg", "疾病", "--hops", "3"],
            "",
        ),
        (
            vec![
                "kg",
                "neighbors",
                "--db",
                "kg",
                "疾病",
                "--hops",
                "3",
                "--format",
                "dot",
            ],
            "",
        ),
        (
            vec![
                "kg",
                "neighbors",
                "--db",
                "kg",
                "疾病",
                "--hops",
                "3",
                "--format",
                "svg",
            ],
            "",
        ),
        (vec!["link", "--db", "kg", "--json"], &text),
        (vec!["run", q, "--input", "-", "--output", "-"], &text),
        (vec!["init", "pipeline"], ""),
        (vec!["init", "config", "--task", "ner"], ""),
        (
            vec![
                "kbert",
                "--db",
                "kg",
                "--max-length",
                "64",
                "--vocab",
                "model/vocab.txt",
            ],
            &json,
        ),
        (vec!["eval", "ner.toml", "--split", "test"], ""),
        (vec!["encode", "--model", "model"], &json),
        (vec!["bench", "cpu"], ""),
        (vec!["--help"], ""),
    ];
    for (args, stdin) in runs {
        into_a_closed_pipe(&args, root, stdin);
    }
}

#[test]
fn a_second_run_into_one_output_file_is_refused_while_the_first_writes() {
    let dir = tempfile::tempdir().unwrap();
    let line = "高血压和糖尿病都是常见的慢性疾病，需要长期服药。\n";
    std::fs::write(dir.path().join("in.txt"), line.repeat(200_000)).unwrap();
    let pipeline = repo().join("pipelines/quickstart.toml");
    let args = [
        "run",
        pipeline.to_str().unwrap(),
        "--input",
        "in.txt",
        "--output",
        "out.jsonl",
    ];
    let first = Process::new(bin())
        .current_dir(dir.path())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let first = KillOnDrop(first);
    wait_for_lock(&dir.path().join(".out.jsonl.zhishi-lock"));
    let err = refused(&args, dir.path());
    assert!(
        err.contains("being written by another zhishi process")
            && err.contains(&format!("pid {}", first.0.id())),
        "{err}"
    );
}

#[test]
fn a_negative_number_is_refused_naming_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (args, flag) in [
        (
            vec!["kg", "query", "--db", "kg", "--limit", "-1"],
            "--limit",
        ),
        (vec!["run", "p.toml", "--threads", "-1"], "--threads"),
        (
            vec!["fill-mask", "--model", "m", "--top-k", "-3"],
            "--top-k",
        ),
    ] {
        let err = refused(&args, dir.path());
        assert!(err.contains(flag) && err.contains("'-"), "{args:?}: {err}");
    }
}
