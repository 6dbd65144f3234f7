//! NLPCC 2016 KBQA entity-linking accuracy (ignored: reads ../shared data,
//! builds a KG of all 14,609 gold triples; ~1 min in release).
//!
//! For each question the gold subject (the subject of its gold triple) must
//! be linked. top-1: the highest-scoring mention is linked to the gold
//! subject; recall: the gold subject is among some mention's candidates.
//! The last 2,000 questions are the held-out test; the others are the
//! training part the score weights were fitted on (`fit_score_weights`).
//!
//! ```text
//! cargo test --release --test link -- nlpcc:: --ignored --nocapture
//! ```
use std::path::PathBuf;

use zhishi::kg::import::{import_files, Format, ImportOptions};
use zhishi::kg::store::Store;
use zhishi::text::disambiguate::{ScoreWeights, N_FEATURES};
use zhishi::text::{LinkOptions, LinkedMention, Linker, OverlapPolicy};

const HELD_OUT: usize = 2000;

struct Question {
    text: String,
    subject: String,
}

fn data_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/kg/nlpcc2016/nlpcc-iccpol-2016.kbqa.training-data")
}

/// Questions with their gold triples, in file order.
fn load() -> (Vec<Question>, Vec<(String, String, String)>) {
    let raw = std::fs::read_to_string(data_path()).expect("NLPCC 2016 KBQA data in ../shared");
    let mut questions = Vec::new();
    let mut triples = Vec::new();
    let mut text = None;
    for line in raw.lines() {
        if let Some(rest) = line.strip_prefix("<question id=") {
            text = rest.split_once('>').map(|(_, q)| q.trim().to_string());
        } else if let Some(rest) = line.strip_prefix("<triple id=") {
            let Some((_, t)) = rest.split_once('>') else {
                continue;
            };
            let parts: Vec<&str> = t.split("|||").map(str::trim).collect();
            if parts.len() == 3 {
                if let Some(q) = text.take() {
                    questions.push(Question {
                        text: q,
                        subject: parts[0].to_string(),
                    });
                }
                triples.push((parts[0].into(), parts[1].into(), parts[2].into()));
            }
        }
    }
    (questions, triples)
}

fn eval_options() -> LinkOptions {
    LinkOptions {
        overlap: OverlapPolicy::All,
        nil_threshold: 0.0,
        max_candidates: 10,
        ..LinkOptions::default()
    }
}

/// Imports every gold triple of the file into a fresh store (kept in `dir`).
fn build(dir: &tempfile::TempDir, opts: LinkOptions) -> Linker<Store> {
    let db = dir.path().join("kg");
    let import = ImportOptions {
        format: Format::Nlpcc,
        ..ImportOptions::default()
    };
    import_files(&db, &[data_path()], &import, &mut |_| {}).expect("NLPCC import");
    let store = Store::open(&db).expect("store opens");
    Linker::build(store, opts).expect("linker builds")
}

/// (top-1 hit, recall hit) for one question.
fn judge(mentions: &[LinkedMention], gold: Option<u32>) -> (bool, bool) {
    let Some(gold) = gold else {
        return (false, false);
    };
    let best = mentions
        .iter()
        .max_by(|a, b| a.score.total_cmp(&b.score).then(b.start.cmp(&a.start)));
    let top1 = best.is_some_and(|m| m.entity.id == gold);
    let recall = mentions
        .iter()
        .any(|m| m.candidates.iter().any(|c| c.id == gold));
    (top1, recall)
}

fn evaluate(linker: &Linker<Store>, questions: &[Question], show_misses: usize) -> (f64, f64) {
    use rayon::prelude::*;
    let kg = linker.source();
    let results: Vec<(bool, bool)> = questions
        .par_iter()
        .map(|q| judge(&linker.link(&q.text), kg.term_id(&q.subject).ok().flatten()))
        .collect();
    let mut shown = 0;
    for (q, (top1, _)) in questions.iter().zip(&results) {
        if !top1 && shown < show_misses {
            let best: Vec<String> = linker
                .link(&q.text)
                .iter()
                .map(|m| format!("{}->{}:{:.3}", m.text, m.entity.name, m.score))
                .collect();
            eprintln!("MISS {} | gold {} | {:?}", q.text, q.subject, best);
            shown += 1;
        }
    }
    let n = questions.len().max(1) as f64;
    let top1 = results.iter().filter(|r| r.0).count() as f64 / n;
    let recall = results.iter().filter(|r| r.1).count() as f64 / n;
    (top1, recall)
}

#[test]
#[ignore]
fn nlpcc2016_kbqa_subject_linking() {
    let (questions, triples) = load();
    assert_eq!(questions.len(), 14_609);
    let dir = tempfile::tempdir().unwrap();
    let linker = build(&dir, eval_options());
    let split = questions.len() - HELD_OUT;
    let misses = std::env::var("SHOW_MISSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (train_top1, train_recall) = evaluate(&linker, &questions[..split], misses);
    let (test_top1, test_recall) = evaluate(&linker, &questions[split..], 0);
    let report = serde_json::json!({
        "bench": "nlpcc2016_kbqa_linking",
        "gold_triples": triples.len(),
        "kg": linker.source().stats(),
        "names": linker.name_count(),
        "train": {"questions": split, "top1": train_top1, "recall": train_recall},
        "test": {"questions": HELD_OUT, "top1": test_top1, "recall": test_recall},
    });
    println!("{report}");
}

/// Fits the logistic score weights on the training questions only: one
/// example per (mention, candidate), label = candidate is the gold subject.
/// Prints the weights as JSON (paste into `ScoreWeights::default`).
#[test]
#[ignore]
fn fit_score_weights() {
    use rayon::prelude::*;
    let (questions, _) = load();
    let dir = tempfile::tempdir().unwrap();
    let linker = build(&dir, eval_options());
    let kg = linker.source();
    let train = &questions[..questions.len() - HELD_OUT];
    let examples: Vec<([f32; N_FEATURES], f32)> = train
        .par_iter()
        .flat_map_iter(|q| {
            let gold = kg.term_id(&q.subject).ok().flatten();
            linker
                .link(&q.text)
                .into_iter()
                .flat_map(|m| m.candidates)
                .map(move |c| (c.features.to_vec(), (Some(c.id) == gold) as u8 as f32))
                .collect::<Vec<_>>()
        })
        .collect();
    let mut w = ScoreWeights::default().to_vec();
    let lr = 0.5f32;
    let l2 = 1e-4f32;
    for _epoch in 0..300 {
        let mut grad = [0f32; N_FEATURES + 1];
        for (x, y) in &examples {
            let z = w[0] + x.iter().zip(&w[1..]).map(|(a, b)| a * b).sum::<f32>();
            let p = 1.0 / (1.0 + (-z).exp());
            let g = p - y;
            grad[0] += g;
            for i in 0..N_FEATURES {
                grad[i + 1] += g * x[i];
            }
        }
        let n = examples.len().max(1) as f32;
        for i in 0..=N_FEATURES {
            w[i] -= lr * (grad[i] / n + l2 * w[i]);
        }
    }
    let fitted = ScoreWeights::from_vec(w);
    println!("{}", serde_json::to_string(&fitted).unwrap());
    let refit = build(
        &dir,
        LinkOptions {
            weights: fitted,
            ..eval_options()
        },
    );
    let (top1, recall) = evaluate(&refit, train, 0);
    println!(
        "{}",
        serde_json::json!({"examples": examples.len(), "train_top1": top1, "train_recall": recall})
    );
}
