//! Linking throughput (ignored; ~3 min): chars/s per core and thread scaling
//! on >= 10 MB of real Chinese text (MSRA NER sentences + ChnSentiCorp
//! reviews + SanWen sentences, written to `target/link_bench/corpus.txt`),
//! against a KG of HowNet.spo + Medical.spo + NLPCC 2016 (> 50k names),
//! side by side with jieba-rs segmentation alone and, when `PY_JIEBA` names
//! a Python with `jieba` installed, Python jieba on the same file.
//! Prints one JSON object and writes it to `target/link_bench/throughput.json`.
//!
//! ```text
//! CARGO_PROFILE_TEST_OPT_LEVEL=3 PY_JIEBA=/path/to/venv/bin/python \
//!   cargo test --test link_throughput -- --ignored --nocapture
//! ```
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde_json::{json, Value};
use zhishi::kg::import::{import_files, ImportOptions};
use zhishi::kg::store::Store;
use zhishi::text::{LinkOptions, Linker};

fn shared(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel)
}

/// Sentences of a BMES file (one `char TAG` per line, blank line between sentences).
fn bmes_sentences(path: &Path, out: &mut Vec<String>) {
    let raw = std::fs::read_to_string(path).expect("MSRA data in ../shared");
    let mut cur = String::new();
    for line in raw.lines() {
        match line.split_whitespace().next() {
            Some(ch) => cur.push_str(ch),
            None if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            None => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
}

/// Builds the corpus (one sentence or review per line) unless it exists.
fn corpus(dir: &Path) -> Vec<String> {
    let path = dir.join("corpus.txt");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return text.lines().map(str::to_string).collect();
    }
    let mut lines = Vec::new();
    for f in [
        "ner/msra/msra_sighan2006_train.bmes",
        "ner/msra/msra_sighan2006_test.bmes",
    ] {
        bmes_sentences(&shared(f), &mut lines);
    }
    for f in ["train", "dev", "test"] {
        let raw = std::fs::read_to_string(shared(&format!("cls/chnsenticorp/{f}.tsv"))).unwrap();
        lines.extend(
            raw.lines()
                .skip(1)
                .filter_map(|l| l.split_once('\t'))
                .map(|(_, t)| t.to_string()),
        );
    }
    let mut seen = HashSet::new();
    for f in ["train", "valid", "test"] {
        let raw = std::fs::read_to_string(shared(&format!("re/sanwen/{f}.txt"))).unwrap();
        for l in raw.lines() {
            if let Some(s) = l.split('\t').nth(3) {
                if seen.insert(s.to_string()) {
                    lines.push(s.to_string());
                }
            }
        }
    }
    lines.retain(|l| !l.trim().is_empty());
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    lines
}

fn store(dir: &Path) -> Store {
    let db = dir.join("kg");
    if !db.exists() {
        let files = [
            shared("kg/kbert/HowNet.spo"),
            shared("kg/kbert/Medical.spo"),
            shared("kg/nlpcc2016/nlpcc-iccpol-2016.kbqa.training-data"),
        ];
        import_files(&db, &files, &ImportOptions::default(), &mut |_| {}).expect("KG import");
    }
    Store::open(&db).expect("store opens")
}

/// Runs `f` over all lines on a pool of `threads`; returns seconds.
fn timed(lines: &[String], threads: usize, f: impl Fn(&str) -> usize + Sync) -> (f64, usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let t = Instant::now();
    let n = pool.install(|| lines.par_iter().with_min_len(64).map(|l| f(l)).sum());
    (t.elapsed().as_secs_f64(), n)
}

const PY: &str = r#"
import sys, time, json, jieba
jieba.setLogLevel(60); jieba.initialize()
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
chars = sum(len(l) for l in lines)
t = time.perf_counter(); n = 0
for l in lines: n += len(jieba.lcut(l, HMM=True))
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "tokens": n, "chars_per_s": chars / dt}))
"#;

#[test]
#[ignore]
fn link_throughput_vs_segmentation() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/link_bench");
    std::fs::create_dir_all(&dir).unwrap();
    let lines = corpus(&dir);
    let chars: usize = lines.iter().map(|l| l.chars().count()).sum();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    assert!(bytes >= 10_000_000, "corpus is only {bytes} bytes");

    let t = Instant::now();
    // LINK_NO_FUZZY=1 measures the linker without typo candidates.
    let fuzzy = std::env::var("LINK_NO_FUZZY").is_err();
    let opts = LinkOptions {
        fuzzy,
        ..LinkOptions::default()
    };
    let linker = Linker::build(store(&dir), opts).unwrap();
    let build_s = t.elapsed().as_secs_f64();
    let jieba = jieba_rs::Jieba::new();

    let mut runs = Vec::new();
    let threads: Vec<usize> = if std::env::var("LINK_ONE_THREAD").is_ok() {
        vec![1]
    } else {
        vec![1, 2]
    };
    for threads in threads {
        let (seg_s, tokens) = timed(&lines, threads, |l| jieba.cut(l, true).len());
        let (own_s, _) = timed(&lines, threads, |l| {
            linker.segmenter().segment_normalized(l, false).len()
        });
        let (link_s, mentions) = timed(&lines, threads, |l| linker.link(l).len());
        runs.push(json!({
            "threads": threads,
            "jieba_rs_cut": {"seconds": seg_s, "tokens": tokens, "chars_per_s": chars as f64 / seg_s},
            "linker_segmenter_cut": {"seconds": own_s, "chars_per_s": chars as f64 / own_s},
            "link": {"seconds": link_s, "mentions": mentions, "chars_per_s": chars as f64 / link_s},
            "link_over_jieba_rs": link_s / seg_s,
        }));
    }
    let python: Value = match std::env::var("PY_JIEBA") {
        Ok(py) => {
            let out = std::process::Command::new(py)
                .args(["-c", PY])
                .arg(dir.join("corpus.txt"))
                .output()
                .expect("running Python jieba");
            serde_json::from_slice(&out.stdout)
                .unwrap_or(json!({"error": String::from_utf8_lossy(&out.stderr)}))
        }
        Err(_) => json!(null),
    };
    let report = json!({
        "bench": "link_throughput",
        "corpus": {"lines": lines.len(), "chars": chars, "bytes": bytes},
        "kg": linker.source().stats(),
        "names": linker.name_count(),
        "fuzzy": fuzzy,
        "linker_build_seconds": build_s,
        "runs": runs,
        "python_jieba_1_thread": python,
    });
    println!("{report}");
    std::fs::write(dir.join("throughput.json"), report.to_string()).unwrap();
}
