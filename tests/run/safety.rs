//! `zhishi run` never loses user data: the regression tests of the reliability issue's data-loss
//! items (1-7), one per item, each reproducing the reported command.
use std::path::Path;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::support::run_cli::{corpus, quickstart, run_quickstart, wait_for_progress, zhishi};

/// `zhishi run` on the quickstart pipeline with `args`, run in `cwd`.
fn run_in(cwd: &Path, args: &[&str]) -> Output {
    zhishi()
        .current_dir(cwd)
        .arg("run")
        .arg(quickstart())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn item1_output_equal_to_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let text = corpus(5);
    std::fs::write(dir.path().join("x.txt"), &text).unwrap();
    let out = run_in(dir.path(), &["--input", "x.txt", "--output", "x.txt"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("are the same file"),
        "{}",
        stderr(&out)
    );
    // The same file through another name (a symlink) is the same file too.
    std::os::unix::fs::symlink("x.txt", dir.path().join("link.txt")).unwrap();
    let out = run_in(dir.path(), &["--input", "x.txt", "--output", "link.txt"]);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("x.txt")).unwrap(),
        text
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "nothing was created"
    );
}

#[test]
fn item2_errors_equal_to_input_or_output_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = corpus(5);
    std::fs::write(dir.path().join("x.txt"), &text).unwrap();
    std::fs::write(dir.path().join("o.jsonl"), "{\"earlier\":1}\n").unwrap();
    for args in [
        [
            "--input", "x.txt", "--output", "y.jsonl", "--errors", "x.txt",
        ],
        [
            "--input", "x.txt", "--output", "o.jsonl", "--errors", "o.jsonl",
        ],
        [
            "--input",
            "x.txt",
            "--output",
            "o.jsonl",
            "--errors",
            "./o.jsonl",
        ],
    ] {
        let out = run_in(dir.path(), &args);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(
            stderr(&out).contains("are the same file"),
            "{}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("x.txt")).unwrap(),
        text
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("o.jsonl")).unwrap(),
        "{\"earlier\":1}\n"
    );
    assert!(!dir.path().join("y.jsonl").exists());
}

#[test]
fn item3_runs_never_delete_an_errors_file_they_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), corpus(5)).unwrap();
    // Standard output: bad records go to standard error, nothing lands in the current folder.
    std::fs::write(dir.path().join("errors.jsonl"), "keep\n").unwrap();
    let out = run_in(dir.path(), &["--input", "in.txt", "--output", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 5);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("errors.jsonl")).unwrap(),
        "keep\n"
    );
    // A clean run to r.txt leaves an existing r.errors.jsonl alone and reports no errors file.
    std::fs::write(dir.path().join("r.errors.jsonl"), "keep\n").unwrap();
    let out = run_in(dir.path(), &["--input", "in.txt", "--output", "r.txt"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("r.errors.jsonl")).unwrap(),
        "keep\n"
    );
    let summary: Value = serde_json::from_str(stderr(&out).lines().last().unwrap()).unwrap();
    assert_eq!(summary["errors_file"], Value::Null);
    // Bad records with standard output go to standard error as JSON lines.
    std::fs::write(
        dir.path().join("bad.jsonl"),
        "{\"text\": 1}\n{\"text\": \"北京\"}\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["--input", "bad.jsonl", "--output", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("\"kind\":\"not_a_string\""));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("errors.jsonl")).unwrap(),
        "keep\n"
    );
}

#[test]
fn item4_a_directory_as_input_fails_before_touching_the_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("some_dir")).unwrap();
    std::fs::write(dir.path().join("o.jsonl"), "{\"earlier\":1}\n").unwrap();
    for extra in [&[][..], &["--resume"][..]] {
        let mut args = vec!["--input", "some_dir/", "--output", "o.jsonl"];
        args.extend_from_slice(extra);
        let out = run_in(dir.path(), &args);
        assert!(!out.status.success());
        assert!(stderr(&out).contains("is a directory"), "{}", stderr(&out));
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("o.jsonl")).unwrap(),
        "{\"earlier\":1}\n"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

/// Starts `zhishi run` into `o.jsonl` with `extra` flags and kills it (SIGKILL) once it has
/// written some documents; `false` if it finished first.
fn start_and_kill(dir: &Path, extra: &[&str]) -> bool {
    let mut child = zhishi()
        .current_dir(dir)
        .arg("run")
        .arg(quickstart())
        .args([
            "--input",
            "in.txt",
            "--output",
            "o.jsonl",
            "--batch-size",
            "3",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let killed = wait_for_progress(&mut child, &dir.join("o.jsonl.checkpoint.json"), 300);
    if killed {
        child.kill().unwrap();
    }
    child.wait().unwrap();
    killed
}

#[test]
fn item5_a_killed_rerun_keeps_the_finished_output_and_resume_completes_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), corpus(3000)).unwrap();
    run_quickstart(&dir.path().join("in.txt"), &dir.path().join("o.jsonl"), &[]);
    let finished = std::fs::read_to_string(dir.path().join("o.jsonl")).unwrap();
    assert_eq!(finished.lines().count(), 3000);
    assert!(!dir.path().join("o.jsonl.checkpoint.json").exists());

    // The same command again, killed midway: the finished output is untouched.
    assert!(
        start_and_kill(dir.path(), &[]),
        "the rerun finished before it could be killed"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("o.jsonl")).unwrap(),
        finished
    );
    // A resume whose partial output is missing says so instead of reporting success.
    let partial = dir.path().join("o.jsonl.partial");
    let moved = dir.path().join("moved");
    std::fs::rename(&partial, &moved).unwrap();
    let out = run_in(
        dir.path(),
        &["--input", "in.txt", "--output", "o.jsonl", "--resume"],
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is missing"), "{}", stderr(&out));
    std::fs::rename(&moved, &partial).unwrap();
    // Resume finishes it: the whole output, each record once.
    let out = run_in(
        dir.path(),
        &["--input", "in.txt", "--output", "o.jsonl", "--resume"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("o.jsonl")).unwrap(),
        finished
    );
    assert!(!partial.exists());
}

#[test]
fn item6_resume_under_other_settings_or_another_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), corpus(3000)).unwrap();
    assert!(
        start_and_kill(dir.path(), &[]),
        "the run finished before it could be killed"
    );
    let resume = |extra: &[&str]| {
        let mut args = vec!["--input", "in.txt", "--output", "o.jsonl", "--resume"];
        args.extend_from_slice(extra);
        run_in(dir.path(), &args)
    };
    let out = resume(&["--set", "facts.per_mention=0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("the pipeline's settings changed"),
        "{}",
        stderr(&out)
    );
    let out = resume(&["--format", "jsonl"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("reader settings changed"),
        "{}",
        stderr(&out)
    );
    // Speed settings may change.
    // The input edited in place (same size) is refused.
    let text = std::fs::read_to_string(dir.path().join("in.txt")).unwrap();
    let edited = text.replacen("第0条", "第9条", 1);
    assert_eq!(edited.len(), text.len());
    std::fs::write(dir.path().join("in.txt"), &edited).unwrap();
    let out = resume(&[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("changed"), "{}", stderr(&out));
    std::fs::write(dir.path().join("in.txt"), &text).unwrap();
    // Back to the same content, but the modification time still differs.
    let out = resume(&["--threads", "1", "--batch-size", "50"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("modification time changed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn item6_resume_may_change_threads_and_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), corpus(3000)).unwrap();
    run_quickstart(
        &dir.path().join("in.txt"),
        &dir.path().join("ref.jsonl"),
        &[],
    );
    assert!(
        start_and_kill(dir.path(), &[]),
        "the run finished before it could be killed"
    );
    let out = run_in(
        dir.path(),
        &[
            "--input",
            "in.txt",
            "--output",
            "o.jsonl",
            "--resume",
            "--threads",
            "1",
            "--batch-size",
            "50",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("o.jsonl")).unwrap(),
        std::fs::read_to_string(dir.path().join("ref.jsonl")).unwrap()
    );
}

#[test]
fn item7_a_byte_order_mark_in_a_kg_file_does_not_reach_the_first_subject() {
    let dir = tempfile::tempdir().unwrap();
    let kg = dir.path().join("bom.tsv");
    std::fs::write(
        &kg,
        // The BOM line is the only one naming 哈姆雷特: kept, it would hide the entity.
        "\u{feff}哈姆雷特\t作者\t莎士比亚\n莎士比亚\t国籍\t英国\n",
    )
    .unwrap();
    let pipeline = zhishi::pipeline::Pipeline::builder()
        .kg_triples([&kg])
        .segment(Default::default())
        .link(zhishi::text::LinkOptions::default())
        .build()
        .unwrap();
    let doc = pipeline
        .process("《哈姆雷特》是莎士比亚写的悲剧。")
        .unwrap();
    let names: Vec<&str> = doc
        .mentions
        .iter()
        .map(|m| m.entity.name.as_str())
        .collect();
    assert!(names.contains(&"哈姆雷特"), "{names:?}");
}

#[test]
fn output_to_a_device_writes_no_files_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), corpus(3)).unwrap();
    let out = run_in(dir.path(), &["--input", "in.txt", "--output", "/dev/null"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!Path::new("/dev/null.checkpoint.json").exists());
    assert!(!Path::new("/dev/null.partial").exists());
}

#[test]
fn a_run_where_no_record_succeeds_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.jsonl"), "{\"body\": 1}\nnot json\n").unwrap();
    let out = run_in(dir.path(), &["--input", "in.jsonl", "--output", "o.jsonl"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no record succeeded"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("o.errors.jsonl"))
            .unwrap()
            .lines()
            .count(),
        2
    );
}

#[test]
fn ids_are_input_line_numbers_blank_lines_included() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.txt"),
        "北京欢迎你\n\n   \n《哈姆雷特》\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["--input", "in.txt", "--output", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ids: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids, ["1", "4"]);
    // A JSONL id field wins over the line number.
    std::fs::write(
        dir.path().join("in.jsonl"),
        "\n{\"id\": \"a\", \"text\": \"北京\"}\n{\"text\": \"上海\"}\n",
    )
    .unwrap();
    let out = run_in(
        dir.path(),
        &["--input", "in.jsonl", "--output", "-", "--id-field", "id"],
    );
    let ids: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].clone())
        .collect();
    assert_eq!(ids, ["a", "3"]);
}

#[test]
fn a_killed_run_with_bad_records_resumes_with_every_error_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let lines: String = corpus(3000)
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i % 10 == 9 {
                format!("{{\"text\": {i}}}\n")
            } else {
                format!("{{\"text\": {}}}\n", serde_json::to_string(l).unwrap())
            }
        })
        .collect();
    std::fs::write(dir.path().join("in.jsonl"), &lines).unwrap();
    let args =
        |out: &'static str| vec!["--input", "in.jsonl", "--output", out, "--batch-size", "3"];
    let reference = run_in(dir.path(), &args("ref.jsonl"));
    assert!(reference.status.success(), "{}", stderr(&reference));
    let mut child = zhishi()
        .current_dir(dir.path())
        .arg("run")
        .arg(quickstart())
        .args(args("o.jsonl"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let killed = wait_for_progress(&mut child, &dir.path().join("o.jsonl.checkpoint.json"), 600);
    if killed {
        child.kill().unwrap();
    }
    child.wait().unwrap();
    assert!(killed, "the run finished before it could be killed");
    assert!(dir.path().join("o.errors.jsonl.partial").exists());
    let mut resume = args("o.jsonl");
    resume.push("--resume");
    let out = run_in(dir.path(), &resume);
    assert!(out.status.success(), "{}", stderr(&out));
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert_eq!(read("o.jsonl"), read("ref.jsonl"));
    assert_eq!(read("o.errors.jsonl"), read("ref.errors.jsonl"));
    assert_eq!(read("o.errors.jsonl").lines().count(), 300);
    assert!(!dir.path().join("o.errors.jsonl.partial").exists());
}
