//! `zhishi bench link`: linking throughput against plain segmentation.
//!
//! Times, on one corpus (default: MSRA NER sentences + ChnSentiCorp reviews +
//! SanWen sentences, >= 10 MB) and one KG (default: HowNet.spo + Medical.spo +
//! the NLPCC 2016 gold triples, > 50k names), jieba-rs segmentation alone
//! (default dictionary, HMM on), the linker's own segmenter (with the KG
//! names as user words), its front end (normalisation + that segmenter: what
//! linking costs before any name is matched) and the full linker, each on rayon pools of every
//! requested size; then runs Python `jieba` on the same file
//! (`benches/jieba_py.py`) in the same run. Prints one JSON object.
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use rayon::prelude::*;
use serde_json::{json, Value};
use zhishi::kg::import::{import_files, ImportOptions};
use zhishi::kg::Store;
use zhishi::text::{normalize, LinkOptions, Linker};

/// Arguments of `zhishi bench link`.
#[derive(Args, Debug)]
pub struct LinkBenchArgs {
    /// Also write the JSON result to this file.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Corpus, one text per line (default: built from `--data` into `--work`).
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// KG store to link against (default: HowNet + Medical + NLPCC imported into `--work`).
    #[arg(long)]
    db: Option<PathBuf>,
    /// The data root (laid out as `corpora/fetch_data.sh` writes it) the default corpus and KG
    /// come from.
    #[arg(long, env = "ZHISHI_DATA", default_value = "data")]
    data: PathBuf,
    /// Working directory for the generated corpus and store (kept between runs).
    #[arg(long, default_value = "target/bench-link")]
    work: PathBuf,
    /// Thread counts to time (rayon pools of that size).
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    threads: Vec<usize>,
    /// Timed passes over the corpus per measurement; the fastest counts.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Disable typo candidates in the linker.
    #[arg(long)]
    no_fuzzy: bool,
    /// Python with `jieba` installed, for the side-by-side run (skipped if it fails).
    #[arg(long, default_value = "python3")]
    python: String,
    /// The Python segmentation script.
    #[arg(long, default_value = "benches/jieba_py.py")]
    python_script: PathBuf,
    /// Skip the Python run.
    #[arg(long)]
    no_python: bool,
}

/// Appends the sentences of a BMES file (one `char TAG` per line, blank line between).
fn bmes_sentences(path: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
    let raw =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
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
    Ok(())
}

/// Writes the default corpus (one sentence or review per line) to `path`.
fn build_corpus(data: &Path, path: &Path) -> anyhow::Result<()> {
    let read = |rel: &str| {
        let p = data.join(rel);
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    };
    let mut lines = Vec::new();
    for f in ["train", "test"] {
        bmes_sentences(
            &data.join(format!("ner/msra/msra_sighan2006_{f}.bmes")),
            &mut lines,
        )?;
    }
    for f in ["train", "dev", "test"] {
        let raw = read(&format!("cls/chnsenticorp/{f}.tsv"))?;
        lines.extend(
            raw.lines()
                .skip(1)
                .filter_map(|l| l.split_once('\t'))
                .map(|(_, t)| t.to_string()),
        );
    }
    let mut seen = HashSet::new();
    for f in ["train", "valid", "test"] {
        let raw = read(&format!("re/sanwen/{f}.txt"))?;
        for sentence in raw.lines().filter_map(|l| l.split('\t').nth(3)) {
            if seen.insert(sentence.to_string()) {
                lines.push(sentence.to_string());
            }
        }
    }
    lines.retain(|l| !l.trim().is_empty());
    std::fs::write(path, lines.join("\n") + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

/// Opens `db`, or imports the default KG into `work/kg` once and opens that.
fn open_store(args: &LinkBenchArgs) -> anyhow::Result<Store> {
    let db = match &args.db {
        Some(db) => db.clone(),
        None => {
            let db = args.work.join("kg");
            if !db.exists() {
                let files = [
                    "kg/kbert/HowNet.spo",
                    "kg/kbert/Medical.spo",
                    "kg/nlpcc2016/nlpcc-iccpol-2016.kbqa.training-data",
                ]
                .map(|f| args.data.join(f));
                import_files(&db, &files, &ImportOptions::default(), &mut |_| {})?;
            }
            db
        }
    };
    Store::open(&db).with_context(|| format!("opening KG store {}", db.display()))
}

/// Best wall time of `repeat` passes of `f` over all lines on a pool of
/// `threads`, and the sum of what `f` returned.
fn timed(
    lines: &[String],
    threads: usize,
    repeat: usize,
    f: impl Fn(&str) -> usize + Sync,
) -> anyhow::Result<(f64, usize)> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut best = f64::INFINITY;
    let mut total = 0;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        total = pool.install(|| lines.par_iter().with_min_len(64).map(|l| f(l)).sum());
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok((best, total))
}

/// Runs the Python jieba script on the corpus; its JSON, or the error as JSON.
fn python_jieba(args: &LinkBenchArgs, corpus: &Path) -> Value {
    let out = Command::new(&args.python)
        .arg(&args.python_script)
        .arg(corpus)
        .output();
    match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| json!({"error": format!("unreadable output: {e}")})),
        Ok(o) => json!({"error": String::from_utf8_lossy(&o.stderr).trim().to_string()}),
        Err(e) => json!({"error": format!("cannot run {}: {e}", args.python)}),
    }
}

/// Runs `zhishi bench link`; returns the JSON result.
pub fn bench_link(args: &LinkBenchArgs) -> anyhow::Result<Value> {
    let mut plan = zhishi::files::Plan::new();
    plan.read("--python-script", &args.python_script);
    // What it makes in --work when not given: the corpus and the store.
    for (role, path, made) in [
        ("--corpus", &args.corpus, "corpus.txt"),
        ("--db", &args.db, "kg"),
    ] {
        match path {
            Some(path) => plan.read(role, path),
            None => plan.write(format!("--work's {made}"), args.work.join(made)),
        };
    }
    if args.corpus.is_none() || args.db.is_none() {
        plan.read("--data", &args.data);
    }
    if let Some(output) = &args.output {
        plan.write("--output", output);
    }
    plan.check()?;
    if args.threads.contains(&0) {
        bail!("--threads: thread counts must be positive");
    }
    std::fs::create_dir_all(&args.work)
        .with_context(|| format!("creating {}", args.work.display()))?;
    let corpus = match &args.corpus {
        Some(c) => c.clone(),
        None => {
            let path = args.work.join("corpus.txt");
            if !path.exists() {
                build_corpus(&args.data, &path)?;
            }
            path
        }
    };
    let text = std::fs::read_to_string(&corpus)
        .with_context(|| format!("reading corpus {}", corpus.display()))?;
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let chars: usize = lines.iter().map(|l| l.chars().count()).sum();

    let started = Instant::now();
    let opts = LinkOptions {
        fuzzy: !args.no_fuzzy,
        ..LinkOptions::default()
    };
    let linker = Linker::build(open_store(args)?, opts).context("building the linker")?;
    let build_seconds = started.elapsed().as_secs_f64();
    let jieba = jieba_rs::Jieba::new();

    let per_s = |seconds: f64| chars as f64 / seconds;
    let mut runs = Vec::new();
    for &threads in &args.threads {
        let (seg_s, tokens) = timed(&lines, threads, args.repeat, |l| jieba.cut(l, true).len())?;
        let (own_s, _) = timed(&lines, threads, args.repeat, |l| {
            linker.segmenter().segment_normalized(l, false).len()
        })?;
        // What `link` does before it looks for a single name: normalise, then segment.
        let (front_s, _) = timed(&lines, threads, args.repeat, |l| {
            let norm = normalize(l, linker.options().normalize);
            linker
                .segmenter()
                .segment_normalized(norm.as_str(), false)
                .len()
        })?;
        let (link_s, mentions) = timed(&lines, threads, args.repeat, |l| linker.link(l).len())?;
        runs.push(json!({
            "threads": threads,
            "jieba_rs": {"seconds": seg_s, "tokens": tokens, "chars_per_s": per_s(seg_s)},
            "linker_segmenter": {"seconds": own_s, "chars_per_s": per_s(own_s)},
            "linker_front_end": {"seconds": front_s, "chars_per_s": per_s(front_s), "over_jieba_rs": front_s / seg_s},
            "linker": {"seconds": link_s, "mentions": mentions, "chars_per_s": per_s(link_s)},
            "linker_over_jieba_rs": link_s / seg_s,
        }));
    }
    let scaling = |key: &str| -> Value {
        let one = runs.iter().find(|r| r["threads"] == 1);
        let two = runs.iter().find(|r| r["threads"] == 2);
        match (one, two) {
            (Some(a), Some(b)) => json!(
                a[key]["seconds"].as_f64().unwrap_or(0.0)
                    / b[key]["seconds"].as_f64().unwrap_or(1.0)
            ),
            _ => Value::Null,
        }
    };
    let speedup = json!({"jieba_rs": scaling("jieba_rs"), "linker": scaling("linker")});
    let python = if args.no_python {
        Value::Null
    } else {
        python_jieba(args, &corpus)
    };
    let ratio_python = python["chars_per_s"]
        .as_f64()
        .zip(runs.iter().find(|r| r["threads"] == 1))
        .map(|(py, r)| r["linker"]["chars_per_s"].as_f64().unwrap_or(0.0) / py);
    Ok(json!({
        "benchmark": "link",
        "corpus": {
            "path": corpus.display().to_string(),
            "lines": lines.len(),
            "chars": chars,
            "bytes": text.len(),
        },
        "kg": linker.source().stats(),
        "names": linker.name_count(),
        "fuzzy": !args.no_fuzzy,
        "linker_build_seconds": build_seconds,
        "runs": runs,
        "speedup_2_threads_over_1": speedup,
        "python_jieba": python,
        "linker_over_python_jieba_speed": ratio_python,
    }))
}
