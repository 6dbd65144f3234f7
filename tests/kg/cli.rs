//! `zhishi kg` end to end: real inputs in, exact counts and clear errors out.
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn zhishi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_zhishi"))
}

fn run(args: &[&str]) -> Output {
    zhishi().args(args).output().expect("zhishi runs")
}

use crate::support::shared_data;
use shared_data::shared_data;

fn stats(db: &Path) -> serde_json::Value {
    let out = run(&["kg", "stats", "--db", db.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "stats failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stats prints JSON")
}

fn demo_kg() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kg/demo.tsv")
}

/// Imports the shipped demo KG into `db`.
fn import_demo(db: &Path) {
    let out = run(&[
        "kg",
        "import",
        "--db",
        db.to_str().unwrap(),
        demo_kg().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Distinct (s, p, o) in the inputs, computed independently of the importer.
fn distinct_triples(tsv: &[PathBuf], nlpcc: &Path) -> HashSet<(String, String, String)> {
    let mut set = HashSet::new();
    for path in tsv {
        for line in std::fs::read_to_string(path).unwrap().lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() == 3 && f.iter().all(|x| !x.trim().is_empty()) {
                set.insert((f[0].trim().into(), f[1].trim().into(), f[2].trim().into()));
            }
        }
    }
    for line in std::fs::read_to_string(nlpcc).unwrap().lines() {
        if let Some(rest) = line.strip_prefix("<triple") {
            let body = &rest[rest.find('>').unwrap() + 1..];
            let f: Vec<&str> = body.splitn(3, "|||").map(str::trim).collect();
            if f.len() == 3 && f.iter().all(|x| !x.is_empty()) {
                set.insert((f[0].into(), f[1].into(), f[2].into()));
            }
        }
    }
    set
}

#[test]
fn importing_hownet_medical_and_nlpcc_counts_each_distinct_triple_once() {
    let (Some(hownet), Some(medical), Some(nlpcc)) = (
        shared_data("kg/kbert/HowNet.spo"),
        shared_data("kg/kbert/Medical.spo"),
        shared_data("kg/nlpcc2016/nlpcc-iccpol-2016.kbqa.training-data"),
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kg");
    let tsv = vec![hownet, medical];
    let mut args = vec!["kg", "import", "--db", db.to_str().unwrap()];
    args.extend(tsv.iter().map(|p| p.to_str().unwrap()));
    args.push(nlpcc.to_str().unwrap());
    let out = run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = distinct_triples(&tsv, &nlpcc);
    let s = stats(&db);
    assert_eq!(s["triples"].as_u64().unwrap(), expected.len() as u64);
    let predicates: HashSet<&String> = expected.iter().map(|t| &t.1).collect();
    assert_eq!(s["relations"].as_u64().unwrap(), predicates.len() as u64);

    // Re-importing the same files adds nothing.
    let again = run(&args);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(stats(&db)["triples"], s["triples"]);

    // The NLPCC subjects are findable by exact name.
    let out = run(&[
        "kg",
        "query",
        "--db",
        db.to_str().unwrap(),
        "--subject",
        "机械设计基础",
        "--predicate",
        "作者",
    ]);
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["object"], "杨可桢，程光蕴，李仲生");
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::File::create(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[test]
fn bad_lines_are_skipped_with_line_numbers_or_fail_in_strict_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kg");
    let db_s = db.to_str().unwrap();
    let input = dir.path().join("bad.tsv");
    let mut bytes =
        b"\xe6\xb5\x81\xe6\x84\x9f\t\xe7\xb1\xbb\xe5\x88\xab\t\xe7\x96\xbe\xe7\x97\x85\n".to_vec(); // 流感 类别 疾病
    bytes.extend_from_slice(b"only\ttwo\n");
    bytes.extend_from_slice(b"bad\t\xff\xfe\tutf8\n");
    bytes.extend_from_slice(b"\tempty\tsubject\n");
    bytes.extend_from_slice("发热\t类别\t症状\n".as_bytes());
    write(&input, &bytes);
    let input_s = input.to_str().unwrap();

    let strict = run(&["kg", "import", "--db", db_s, "--strict", input_s]);
    assert!(!strict.status.success());
    assert!(
        stderr(&strict).contains("bad.tsv:2: expected 3 tab-separated fields"),
        "{}",
        stderr(&strict)
    );
    assert!(
        !db.join("STORE.json").exists(),
        "strict failure leaves no store behind"
    );

    let lenient = run(&["kg", "import", "--db", db_s, input_s]);
    assert!(lenient.status.success(), "{}", stderr(&lenient));
    let err = stderr(&lenient);
    assert!(err.contains("bad.tsv:2:"), "{err}");
    assert!(err.contains("bad.tsv:3: invalid UTF-8"), "{err}");
    assert!(err.contains("bad.tsv:4: empty subject"), "{err}");
    assert!(err.contains("3 bad lines skipped"), "{err}");
    assert_eq!(stats(&db)["triples"], 2);

    // In strict mode a bad file leaves the existing store as it was.
    let strict_again = run(&["kg", "import", "--db", db_s, "--strict", input_s]);
    assert!(!strict_again.status.success());
    assert_eq!(stats(&db)["triples"], 2);

    let only_bad = dir.path().join("only_bad.tsv");
    write(&only_bad, b"x\ty\n");
    let out = run(&["kg", "import", "--db", db_s, only_bad.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("nothing imported"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_files_and_non_store_directories_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kg");
    let out = run(&[
        "kg",
        "import",
        "--db",
        db.to_str().unwrap(),
        "/nonexistent/triples.tsv",
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("input file /nonexistent/triples.tsv does not exist"),
        "{}",
        stderr(&out)
    );

    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    write(&plain.join("notes.txt"), b"hello");
    let out = run(&["kg", "stats", "--db", plain.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not a zhishi KG store"),
        "{}",
        stderr(&out)
    );

    let out = run(&[
        "kg",
        "stats",
        "--db",
        dir.path().join("absent").to_str().unwrap(),
    ]);
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn a_store_held_by_another_process_is_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kg");
    import_demo(&db);
    let _held = zhishi::kg::Store::open(&db).unwrap();
    let out = run(&["kg", "stats", "--db", db.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("in use by another process"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_killed_import_leaves_the_previous_store_intact() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kg");
    import_demo(&db);
    let before = stats(&db);

    // A large file, imported in small batches so the kill lands mid-import.
    let big = dir.path().join("big.tsv");
    let mut text = String::new();
    for i in 0..300_000 {
        text.push_str(&format!(
            "实体{i}\t关系{}\t实体{}\n",
            i % 50,
            (i * 7) % 300_000
        ));
    }
    write(&big, text.as_bytes());
    let mut child = zhishi()
        .args([
            "kg",
            "import",
            "--batch-lines",
            "2000",
            "--db",
            db.to_str().unwrap(),
            big.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let work = db.join("gen-2.tmp");
    while !work.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    let finished_early = child.try_wait().unwrap().is_some();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !finished_early,
        "the import finished before it could be interrupted"
    );

    let after = stats(&db);
    for key in ["triples", "entities", "literals", "relations", "aliases"] {
        assert_eq!(after[key], before[key], "{key} changed by a killed import");
    }
    let out = run(&[
        "kg",
        "query",
        "--db",
        db.to_str().unwrap(),
        "--subject",
        "实体1",
        "--limit",
        "1",
    ]);
    assert!(
        out.stdout.is_empty(),
        "nothing of the killed import is visible"
    );
    // The next import cleans up and works.
    import_demo(&db);
    assert!(!work.exists());
}

#[test]
fn neighbours_and_paths_on_the_demo_kg() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kg");
    let db_s = db.to_str().unwrap();
    import_demo(&db);

    let out = run(&["kg", "neighbors", "--db", db_s, "阿司匹林", "--hops", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["entity"], "阿司匹林");
    let names: Vec<&str> = v["neighbors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["治疗", "药物"], "its type and its HowNet sememe");

    // Two symptoms are linked through their type.
    let out = run(&["kg", "path", "--db", db_s, "--", "腰酸背痛", "腰椎间盘突出"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["length"], 2, "{v}");
    assert_eq!(v["path"][0]["object"], "症状");
    // A symptom and a check: through a concept that is both (移动性浊音 类别 症状, 类别 检查).
    let out = run(&["kg", "path", "--db", db_s, "--", "腰酸背痛", "腰椎CT"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["length"], 4, "{v}");
    assert_eq!(v["path"][0]["object"], "症状");
    assert_eq!(v["path"][3]["object"], "检查");

    let out = run(&[
        "kg",
        "query",
        "--db",
        db_s,
        "--predicate",
        "类别",
        "--object",
        "症状",
        "--limit",
        "3",
    ]);
    let lines: Vec<serde_json::Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let first = &lines[0];
    let subject = first["subject"].as_str().unwrap();
    let out = run(&["kg", "path", "--db", db_s, "--", subject, "腰酸背痛"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    if subject != "腰酸背痛" {
        assert_eq!(v["length"], 2, "{v}");
        assert_eq!(v["path"][0]["object"], "症状");
    }
}

#[test]
fn smaller_item_kg_stats_verify_reads_every_page_and_reports_a_damaged_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    import_demo(&db);
    let out = run(&["kg", "stats", "--db", db.to_str().unwrap(), "--verify"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let healthy: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(healthy["verified_records"].as_u64().unwrap() > healthy["triples"].as_u64().unwrap());
    // Damage the sled file one place at a time: `kg stats` alone reads only the counters,
    // `--verify` reads every page and must catch what plain stats misses. Where sled put the
    // triple pages differs from one import to the next (it flushes in the background), so the
    // places tried are first the bytes of entity names stored in triples (pages `--verify`
    // reads and plain stats does not), then pseudo-random bytes; the first damage caught only
    // by `--verify` ends the search.
    let data = db.join("gen-1/db");
    let pristine = std::fs::read(&data).unwrap();
    let mut places: Vec<Vec<usize>> = Vec::new();
    for name in ["阿司匹林", "高血压", "义原"] {
        let needle = name.as_bytes();
        let found: Vec<usize> = pristine
            .windows(needle.len())
            .enumerate()
            .filter(|(_, w)| *w == needle)
            .map(|(i, _)| i + needle.len() / 2)
            .collect();
        let step = found.len().div_ceil(8).max(1);
        places.extend(found.into_iter().step_by(step).map(|i| vec![i]));
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..24 {
        let mut flips = Vec::new();
        for _ in 0..8 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            flips.push((state % pristine.len() as u64) as usize);
        }
        places.push(flips);
    }
    let mut caught_only_by_verify = 0;
    for flips in &places {
        let mut bytes = pristine.clone();
        for &i in flips {
            bytes[i] ^= 0x5a;
        }
        std::fs::write(&data, &bytes).unwrap();
        let plain = run(&["kg", "stats", "--db", db.to_str().unwrap()]);
        let verify = run(&["kg", "stats", "--db", db.to_str().unwrap(), "--verify"]);
        for out in [&plain, &verify] {
            assert!(out.status.code().is_some(), "killed by a signal");
            assert!(!stderr(out).contains("panicked"), "{}", stderr(out));
        }
        if plain.status.success() && !verify.status.success() {
            assert!(
                stderr(&verify).contains("is corrupt"),
                "{}",
                stderr(&verify)
            );
            caught_only_by_verify += 1;
            break;
        }
    }
    std::fs::write(&data, &pristine).unwrap();
    assert!(
        caught_only_by_verify > 0,
        "no damage that only --verify sees"
    );
}

#[test]
fn neighbors_and_paths_print_graphviz_with_format_dot() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    import_demo(&db);
    let out = run(&[
        "kg",
        "neighbors",
        "--db",
        db.to_str().unwrap(),
        "阿司匹林",
        "--format",
        "dot",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(dot.starts_with("digraph {"), "{dot}");
    assert!(
        dot.contains("label = \"阿司匹林\"") && dot.contains("label = \"义原\""),
        "{dot}"
    );
    let out = run(&[
        "kg",
        "path",
        "--db",
        db.to_str().unwrap(),
        "阿司匹林",
        "高血压",
        "--format",
        "dot",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8(out.stdout)
        .unwrap()
        .starts_with("digraph {"));
}

#[test]
fn neighbors_and_paths_draw_svg_with_format_svg() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    import_demo(&db);
    let db = db.to_str().unwrap();
    let out = run(&["kg", "neighbors", "--db", db, "阿司匹林", "--format", "svg"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let svg = String::from_utf8(out.stdout).unwrap();
    assert!(svg.starts_with("<svg"), "{svg}");
    // The entity, its two neighbours and the two predicates, one arrow per triple.
    for word in ["阿司匹林", "治疗", "药物", "类别", "义原"] {
        assert!(svg.contains(word), "{word}: {svg}");
    }
    assert_eq!(svg.matches("<polygon").count(), 2, "{svg}");

    let out = run(&[
        "kg",
        "path",
        "--db",
        db,
        "--format",
        "svg",
        "--",
        "腰酸背痛",
        "腰椎间盘突出",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let svg = String::from_utf8(out.stdout).unwrap();
    for word in ["腰酸背痛", "症状", "腰椎间盘突出"] {
        assert!(svg.contains(word), "{word}: {svg}");
    }
    assert_eq!(svg.matches("<polygon").count(), 2, "{svg}");
}

/// Probe "kg-import-concurrent": two imports into one store at once. Each either lands whole
/// (the second builds on the first's generation) or is refused as "in use"; the store stays
/// valid and holds exactly the triples of the imports that succeeded, on top of what it had.
#[test]
fn two_concurrent_imports_never_lose_triples_or_corrupt_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..2)
        .map(|f| {
            let path = dir.path().join(format!("part{f}.tsv"));
            let text: String = (0..3000)
                .map(|i| format!("实体{f}_{i}\t关系\t对象{i}\n"))
                .collect();
            write(&path, text.as_bytes());
            path
        })
        .collect();
    for existing in [false, true] {
        let db = dir.path().join(format!("store-{existing}"));
        let mut base = 0;
        if existing {
            let seed = dir.path().join("seed.tsv");
            write(&seed, "高血压\t类别\t疾病\n".as_bytes());
            let out = zhishi()
                .args(["kg", "import", "--db"])
                .arg(&db)
                .arg(&seed)
                .output()
                .unwrap();
            assert!(out.status.success());
            base = 1;
        }
        let children: Vec<_> = files
            .iter()
            .map(|f| {
                zhishi()
                    .args(["kg", "import", "--db"])
                    .arg(&db)
                    .arg(f)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut landed = 0;
        for child in children {
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                landed += 1;
            } else {
                assert!(err.contains("in use"), "{err}");
            }
        }
        let verify = zhishi()
            .args(["kg", "stats", "--verify", "--db"])
            .arg(&db)
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stderr)
        );
        let s: serde_json::Value = serde_json::from_slice(&verify.stdout).unwrap();
        assert_eq!(
            s["triples"],
            base + 3000 * landed,
            "existing store: {existing}"
        );
    }
}
