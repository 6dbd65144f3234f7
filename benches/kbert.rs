//! Benchmark of K-BERT sentence-tree flattening (`cargo bench --bench kbert`): a 64-character
//! sentence of 32 two-character words, every other word carrying three ranked 4-character
//! knowledge strings (K = 2 kept), flattened at L = 128 and 256 in both modes, plus the dense
//! f32 expansion of the visible matrix. Criterion measures; afterwards a summary with the time
//! per sentence (criterion's slope estimate) and sentences per second is written to
//! `target/bench/kbert.json`.
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BenchmarkId, Criterion};
use zhishi::knowledge::{flatten, CharVocab, InjectionMode, KbertConfig, SentenceTree};

const CHARS: &str = "库克今天访问北京苹果公司首席执行官中国首都城市位于华北天安门气很好的";

fn sentence() -> SentenceTree {
    let chars: Vec<char> = CHARS.chars().collect();
    let mut tree = SentenceTree::new();
    for w in 0..32 {
        let word: String = [
            chars[(2 * w) % chars.len()],
            chars[(2 * w + 1) % chars.len()],
        ]
        .iter()
        .collect();
        let injected: Vec<String> = if w % 2 == 0 {
            (0..3)
                .map(|k| {
                    (0..4)
                        .map(|i| chars[(w + 5 * k + i) % chars.len()])
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        tree = tree.word(word, injected);
    }
    tree
}

fn vocab() -> CharVocab {
    let mut tokens = vec![
        "[PAD]".to_string(),
        "[UNK]".into(),
        "[CLS]".into(),
        "[SEP]".into(),
    ];
    tokens.extend(CHARS.chars().map(String::from));
    CharVocab::from_tokens(tokens).expect("vocabulary has [UNK]")
}

const CASES: [(&str, InjectionMode, usize); 4] = [
    ("improved", InjectionMode::Improved, 128),
    ("improved", InjectionMode::Improved, 256),
    ("compat", InjectionMode::Compat, 128),
    ("compat", InjectionMode::Compat, 256),
];

fn bench(c: &mut Criterion) {
    let tree = sentence();
    let vocab = vocab();
    let mut group = c.benchmark_group("kbert_flatten");
    for (name, mode, length) in CASES {
        let config = KbertConfig::new(length).mode(mode);
        group.bench_with_input(BenchmarkId::new(name, length), &config, |b, config| {
            b.iter(|| flatten(black_box(&tree), &vocab, config))
        });
    }
    group.finish();
    let mut group = c.benchmark_group("kbert_dense_f32");
    for length in [128, 256] {
        let input = flatten(&tree, &vocab, &KbertConfig::new(length)).expect("valid tree");
        group.bench_with_input(BenchmarkId::from_parameter(length), &input, |b, input| {
            b.iter(|| black_box(input.visible.to_dense_f32()))
        });
    }
    group.finish();
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// Reads criterion's estimate (ns per iteration) for one benchmark, if it ran: the slope of
/// the linear fit when criterion made one (what it prints as `time`), else the mean.
fn mean_ns(group: &str, id: &str) -> Option<f64> {
    let path = target_dir()
        .join("criterion")
        .join(group)
        .join(id)
        .join("new/estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let slope = json["slope"]["point_estimate"].as_f64();
    slope.or_else(|| json["mean"]["point_estimate"].as_f64())
}

fn write_summary() {
    let mut results = Vec::new();
    let ids = CASES
        .iter()
        .map(|(name, _, length)| ("kbert_flatten", format!("{name}/{length}")))
        .chain([128, 256].map(|l| ("kbert_dense_f32", l.to_string())));
    for (group, id) in ids {
        if let Some(ns) = mean_ns(group, &id) {
            results.push(serde_json::json!({
                "benchmark": format!("{group}/{id}"),
                "ns_per_sentence": ns,
                "per_second": 1e9 / ns,
            }));
        }
    }
    let summary = serde_json::json!({
        "bench": "kbert",
        "sentence": "64 characters, 32 words, 16 anchors x 3 strings of 4 characters, K = 2",
        "results": results,
    });
    let dir = target_dir().join("bench");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(dir.join("kbert.json"), format!("{summary:#}\n")));
    match written {
        Ok(()) => println!("summary written to {}", dir.join("kbert.json").display()),
        Err(err) => eprintln!("cannot write {}: {err}", dir.display()),
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
    criterion.final_summary();
    write_summary();
}
