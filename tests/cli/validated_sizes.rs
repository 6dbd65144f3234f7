//! Sizes, counts and numbers from flags, TOML keys and file headers are checked before they
//! are used: the reliability issue's items 11 and 13 and its smaller items, each reproducing
//! the reported command, each now a clear error naming the flag, key or file:line.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn zhishi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_zhishi"))
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .unwrap()
}

fn quickstart() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("pipelines/quickstart.toml")
        .display()
        .to_string()
}

/// Fails cleanly (an exit code, not a signal or a panic) and says `needle`.
fn refused(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code().is_some_and(|c| c != 0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}

fn openke_dir(dir: &Path, entity_header: &str) -> PathBuf {
    let kg = dir.join(format!("openke-{}", entity_header.len()));
    std::fs::create_dir_all(&kg).unwrap();
    std::fs::write(
        kg.join("entity2id.txt"),
        format!("{entity_header}\n北京\t0\n中国\t1\n"),
    )
    .unwrap();
    std::fs::write(kg.join("relation2id.txt"), "1\n首都\t0\n").unwrap();
    std::fs::write(kg.join("train2id.txt"), "1\n1 0 0\n").unwrap();
    kg
}

#[test]
fn item11_openke_header_counts_are_checked_against_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for header in ["99999999999999", "18446744073709551615"] {
        let kg = openke_dir(dir.path(), header);
        let db = dir.path().join(format!("db-{}", header.len()));
        let out = zhishi(&[
            "kg",
            "import",
            "--db",
            db.to_str().unwrap(),
            kg.to_str().unwrap(),
        ]);
        refused(&out, &format!("header says {header} entries, file has 2"));
        assert!(String::from_utf8_lossy(&out.stderr).contains("entity2id.txt"));
    }
    let kg = openke_dir(dir.path(), "2");
    let db = dir.path().join("db-ok");
    let out = zhishi(&[
        "kg",
        "import",
        "--db",
        db.to_str().unwrap(),
        kg.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn item13_huge_sizes_from_flags_are_refused_naming_the_flag() {
    let pq = quickstart();
    let cases: [(&[&str], &str); 7] = [
        (&["run", &pq, "--batch-size", "100000000"], "--batch-size"),
        (
            &["run", &pq, "--max-record-bytes", "18446744073709551614"],
            "--max-record-bytes",
        ),
        (
            &[
                "kg",
                "import",
                "--db",
                "x",
                "--batch-lines",
                "100000000000",
                "y.tsv",
            ],
            "--batch-lines",
        ),
        (
            &[
                "transe",
                "train",
                "--db",
                "x",
                "--batch-size",
                "1000000000000",
            ],
            "--batch-size",
        ),
        (
            &["transe", "train", "--db", "x", "--dim", "1000000000"],
            "--dim",
        ),
        (&["transe", "train", "--db", "x", "--lr", "nan"], "--lr"),
        (
            &["kbert", "--max-length", "100000000000", "--vocab", "v.txt"],
            "--max-length",
        ),
    ];
    for (args, flag) in cases {
        let out = zhishi(args);
        refused(&out, flag);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("out of range") || stderr.contains("not a finite number"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn smaller_items_nan_threshold_zero_candidates_and_huge_batch_in_toml_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(quickstart()).unwrap();
    let kg = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("kg/demo.tsv");
    let base = base.replace(
        "\"../kg/demo.tsv\"",
        &format!("{:?}", kg.display().to_string()),
    );
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "《哈姆雷特》是莎士比亚的悲剧。\n").unwrap();
    for (set, key) in [
        ("link.nil_threshold=nan", "link.nil_threshold"),
        ("link.nil_threshold=1.5", "link.nil_threshold"),
        ("link.max_candidates=0", "link.max_candidates"),
        ("pipeline.batch_size=100000000", "pipeline.batch_size"),
    ] {
        let toml = dir.path().join("p.toml");
        std::fs::write(&toml, &base).unwrap();
        let out = zhishi(&[
            "run",
            toml.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--output",
            "-",
            "--set",
            set,
        ]);
        refused(&out, key);
    }
    let out = zhishi(&["link", "--db", "x", "--nil-threshold", "nan"]);
    refused(&out, "--nil-threshold");
}

#[test]
fn smaller_item_os_errors_are_printed_once() {
    let out = zhishi(&[
        "run",
        &quickstart(),
        "--input",
        "/nonexistent/in.txt",
        "--output",
        "-",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert_eq!(stderr.matches("os error 2").count(), 1, "{stderr}");
}

#[test]
fn floats_in_training_configs_reject_nan_infinity_and_out_of_range_values() {
    use zhishi::config;
    let base = "[task]\nkind = \"ner\"\n\n[encoder]\nmodel = \"m\"\n\n[data]\ntrain = \"t.bmes\"\nformat = \"char_per_line\"\n\n[train]\noutput_dir = \"out\"\n";
    let path = Path::new("conf/ner.toml");
    assert!(config::from_str::<zhishi::stages::ner::NerConfig>(path, base, &[]).is_ok());
    for (set, key) in [
        ("train.lr=nan", "train.lr"),
        ("train.lr=-1e-5", "train.lr"),
        ("train.warmup_ratio=1.5", "train.warmup_ratio"),
        ("train.max_grad_norm=inf", "train.max_grad_norm"),
        ("encoder.dropout=2.0", "encoder.dropout"),
        ("knowledge.nil_threshold=nan", "knowledge.nil_threshold"),
    ] {
        let err =
            config::from_str::<zhishi::stages::ner::NerConfig>(path, base, &[set.to_string()])
                .map(|_| ())
                .unwrap_err()
                .to_string();
        assert!(err.contains(&format!("key `{key}`")), "{set}: {err}");
        assert!(err.contains("out of range"), "{set}: {err}");
    }
}
