//! The kill loop of the safety issue: `kill -9` at random moments of `zhishi train` and
//! `zhishi pretrain` (which write a checkpoint and the best model at every evaluation) and of
//! `zhishi quantize`. After every kill the output directories are complete or absent (never
//! half-written), and resuming until the end gives the same final weights, bit for bit, as an
//! uninterrupted run. Ignored by default (about two minutes):
//! `cargo test --release --test cli -- kill_loop:: --ignored --nocapture` (`KILLS=N` sets the kills
//! per command, default 20).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::support::ner_workspace;
use crate::support::pretrain_workspace;

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("zhishi")
}

fn kills() -> usize {
    std::env::var("KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(20)
}

/// A deterministic sequence of kill delays (milliseconds) spread over `0..max_ms`.
fn delays(n: usize, max_ms: u64, seed: u64) -> Vec<u64> {
    let mut state = seed | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % max_ms
        })
        .collect()
}

fn sha(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("{:x}", Sha256::digest(bytes))
}

/// Runs `args` in `dir` to the end; panics on failure; returns its wall time in ms.
fn run(dir: &Path, args: &[&str]) -> u64 {
    let started = std::time::Instant::now();
    let out = Command::new(bin())
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed().as_millis() as u64
}

/// Starts `args` in `dir`, kills it with SIGKILL after `ms`; returns whether it had finished.
fn run_and_kill(dir: &Path, args: &[&str], ms: u64) -> bool {
    let mut child = Command::new(bin())
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    finished
}

/// A model directory is complete (every file non-empty, `required` present) or absent.
fn complete_or_absent(dir: &Path, required: &[&str]) {
    if !dir.exists() {
        return;
    }
    for name in required {
        let path = dir.join(name);
        let len = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{} is incomplete: {}: {e}", dir.display(), name))
            .len();
        assert!(len > 0, "{} is empty", path.display());
    }
}

/// The checkpoint and models of a training output after a kill.
fn check_training_output(out: &Path, model_files: &[&str]) {
    complete_or_absent(
        &out.join("last"),
        &["params.safetensors", "optimizer.safetensors", "state.json"],
    );
    complete_or_absent(&out.join("best"), model_files);
}

/// Kills `args` (a training command with `train.resume = true`) at `kills()` moments, checks
/// the output after each, finishes it, and compares its final weights with an uninterrupted
/// run's in `reference`.
fn kill_loop(workdir: &Path, reference: &Path, args: &[&str], model_files: &[&str], seed: u64) {
    // Kills spread so that together they cover about half the uninterrupted run's time (a
    // resumed run also spends time loading and evaluating, so all of them happen).
    let whole = run(reference, args);
    let want = sha(&reference.join("out/last/params.safetensors"));
    let mut killed = 0;
    for ms in delays(kills(), (whole / kills() as u64).max(1), seed) {
        if run_and_kill(workdir, args, 100 + ms) {
            break;
        }
        killed += 1;
        check_training_output(&workdir.join("out"), model_files);
    }
    let out = Command::new(bin())
        .current_dir(workdir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "resume refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = sha(&workdir.join("out/last/params.safetensors"));
    eprintln!(
        "{args:?} ({whole} ms uninterrupted): {killed} kills, every resume accepted, final weights {}",
        if got == want {
            "identical"
        } else {
            "DIFFERENT"
        }
    );
    assert_eq!(got, want, "resumed run ends with other weights");
    let leftovers: Vec<_> = std::fs::read_dir(workdir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial-") || n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
}

#[test]
#[ignore = "kills processes for about a minute per command: cargo test --test cli -- kill_loop:: --ignored"]
fn train_killed_at_random_moments_resumes_to_the_same_weights() {
    let extra = "resume = true\nmax_steps = 3000";
    let a = ner_workspace::Workspace::new(extra);
    let b = ner_workspace::Workspace::new(extra);
    kill_loop(
        &a.root,
        &b.root,
        &[
            "train",
            "ner.toml",
            "--set",
            "train.epochs=1000",
            "--set",
            "train.eval_every=1",
        ],
        &[
            "config.json",
            "vocab.txt",
            "model.safetensors",
            "ner.json",
            "metrics.json",
        ],
        7,
    );
}

#[test]
#[ignore = "kills processes for about a minute per command: cargo test --test cli -- kill_loop:: --ignored"]
fn pretrain_killed_at_random_moments_resumes_to_the_same_weights() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for dir in [a.path(), b.path()] {
        pretrain_workspace::workspace(dir);
    }
    kill_loop(
        a.path(),
        b.path(),
        &[
            "pretrain",
            "pretrain.toml",
            "--set",
            "train.epochs=600",
            "--set",
            "train.resume=true",
            "--set",
            "train.eval_every=1",
        ],
        &[
            "config.json",
            "vocab.txt",
            "model.safetensors",
            "metrics.json",
        ],
        11,
    );
}

#[test]
#[ignore = "kills processes for about a minute per command: cargo test --test cli -- kill_loop:: --ignored"]
fn quantize_killed_at_random_moments_leaves_the_whole_output_or_nothing() {
    let ws = ner_workspace::Workspace::new("max_steps = 1");
    run(&ws.root, &["train", "ner.toml"]);
    let whole = run(
        &ws.root,
        &["quantize", "--model", "out/best", "--output", "timed"],
    );
    let mut complete = 0;
    for (i, ms) in delays(kills(), 2 * whole + 1, 13).into_iter().enumerate() {
        let q = format!("q{i}");
        run_and_kill(
            &ws.root,
            &["quantize", "--model", "out/best", "--output", &q],
            ms,
        );
        let dir = ws.root.join(&q);
        if dir.exists() {
            complete_or_absent(&dir, &["config.json", "model.safetensors", "ner.json"]);
            complete += 1;
        }
    }
    // A run after the kills sweeps what they left and completes.
    run(
        &ws.root,
        &["quantize", "--model", "out/best", "--output", "q"],
    );
    let leftovers: Vec<_> = std::fs::read_dir(&ws.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".q.") || n.contains(".partial-"))
        .collect();
    eprintln!("quantize ({whole} ms uninterrupted): {} kills, {complete} outputs complete, none partial; leftovers after a rerun: {leftovers:?}", kills());
    assert!(
        leftovers.iter().all(|n| !n.starts_with(".q.partial")),
        "{leftovers:?}"
    );
}
