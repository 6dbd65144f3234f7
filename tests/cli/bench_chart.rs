//! `zhishi chart` draws an SVG bar chart from the JSON each benchmark writes, one bar per
//! ratio against the reference; a file of any other shape is an error naming it.
use assert_cmd::Command;
use predicates::str::contains;
use serde_json::json;

fn zhishi() -> Command {
    Command::cargo_bin("zhishi").unwrap()
}

/// Each shape as its benchmark writes it (trimmed to the fields the chart reads, plus a few
/// others), with the bar labels the chart must show.
fn fixtures() -> Vec<(&'static str, String, Vec<&'static str>)> {
    let lines =
        |rows: &[serde_json::Value]| rows.iter().map(|r| format!("{r}\n")).collect::<String>();
    vec![
        (
            "encoder.json",
            json!({
                "bench": "encoder", "model": "m3e-small", "batch": 8, "seq": 128, "torch": "2.15",
                "results": [
                    {"impl": "zhishi", "precision": "f32", "input": "plain", "threads": 1,
                     "ms_per_batch_median": 316.0, "speedup_vs_pytorch_plain": 1.05},
                    {"impl": "zhishi", "precision": "bf16", "input": "kbert", "threads": 2,
                     "ms_per_batch_median": 190.0, "speedup_vs_pytorch_plain": 3.79,
                     "cost_vs_plain": 0.98},
                    {"impl": "pytorch", "precision": "f32", "input": "plain", "threads": 1,
                     "ms_per_batch_median": 333.0}
                ]
            })
            .to_string(),
            vec!["f32 plain, 1 thread", "bf16 kbert, 2 threads", "PyTorch 2.15"],
        ),
        (
            "bench-ner-resume-n0-e3-crffalse-plain.json",
            json!({
                "bench": "resume-n0-e3-crffalse-plain",
                "pytorch": {"test_f1": 0.9415, "train_tokens_per_s": 292.0},
                "zhishi": {"test_f1": 0.9443, "train_tokens_per_s": 646.0},
                "ratio_tokens_per_s": 2.212, "test_f1_diff": 0.0028
            })
            .to_string(),
            vec!["resume, all sentences, 3 epochs, no CRF, plain: test F1 0.9443 vs 0.9415", "2.21x"],
        ),
        (
            "bench-run.json",
            json!({
                "bench": "run", "docs": 1000, "commit": "abc1234",
                "results": [
                    {"arm": "zhishi-int8", "impl": "zhishi", "threads": 1, "ner_tokens_per_s": 1234.0,
                     "speedup_vs_pytorch_f32": 5.25, "agreement_with_zhishi_f32": 0.985},
                    {"arm": "onnx-int8", "impl": "onnxruntime", "threads": 1, "ner_tokens_per_s": 900.0,
                     "speedup_vs_pytorch_f32": 4.0, "agreement_with_zhishi_f32": 0.98},
                    {"arm": "pytorch-f32", "impl": "pytorch", "threads": 1, "torch": "2.15.0",
                     "ner_tokens_per_s": 235.0, "speedup_vs_pytorch_f32": 1.0}
                ]
            })
            .to_string(),
            vec!["zhishi-int8, 1 thread: 1234 tokens/s, 98.5% = f32", "onnx-int8, 1 thread", "PyTorch 2.15.0 f32", "5.25x"],
        ),
        (
            "arms.jsonl",
            lines(&[
                json!({"arm": "pytorch-linear", "test_f1": 0.9176, "train_tokens_per_s": 225.0}),
                json!({"arm": "plain-crf", "test_f1": 0.9327, "train_tokens_per_s": 462.0}),
                json!({"arm": "kbert-crf", "test_f1": 0.9403, "train_tokens_per_s": 613.0}),
            ]),
            vec!["plain-crf (test F1 0.9327)", "kbert-crf (test F1 0.9403)"],
        ),
        (
            "transe_vs_pykeen.jsonl",
            lines(&[
                json!({"impl": "pykeen", "mrr": 0.222, "train_wall_s": 81.5, "wall_seconds": 276.5}),
                json!({"impl": "zhishi-same", "mrr": 0.223, "train_seconds": 3.5, "wall_seconds": 6.0}),
            ]),
            vec!["zhishi-same (MRR 0.223): training", "zhishi-same: whole process", "23.29x"],
        ),
        (
            "run-throughput.json",
            lines(&[
                json!({"pipeline": "quickstart", "seconds": 9.5, "chars_per_s": 1.10e6, "run": "1x-1thread", "threads": 1}),
                json!({"pipeline": "quickstart", "seconds": 5.4, "chars_per_s": 1.94e6, "run": "1x-2threads", "threads": 2}),
            ]),
            vec!["1x-1thread (1.10 M chars/s)", "1x-2threads (1.94 M chars/s)", "1.76x"],
        ),
        (
            "doc-length.json",
            json!({
                "benchmark": "doc_length", "commit": "de6a653", "cpu": "AMD EPYC", "threads": 1,
                "rows": [
                    {"doc": "sample", "tool": "run", "bytes": 10000, "seconds": 0.141, "ratio_per_doubling": null},
                    {"doc": "sample", "tool": "run", "bytes": 20000, "seconds": 0.147, "ratio_per_doubling": 1.04},
                    {"doc": "repeat", "tool": "link", "bytes": 10240000, "seconds": 12.845, "ratio_per_doubling": 2.01}
                ]
            })
            .to_string(),
            vec!["sample run 20 KB", "repeat link 10.24 MB", "cpu: AMD EPYC", "commit: de6a653"],
        ),
    ]
}

#[test]
fn every_benchmark_shape_charts_with_a_bar_per_ratio() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, labels) in fixtures() {
        let input = dir.path().join(name);
        std::fs::write(&input, text).unwrap();
        let output = dir.path().join(format!("{name}.svg"));
        zhishi()
            .arg("chart")
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .assert()
            .success();
        let svg = std::fs::read_to_string(&output).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
        for label in labels {
            assert!(svg.contains(label), "{name}: no {label:?} in the SVG");
        }
        let bars = svg.matches("<rect").count() - 1; // the background is a rect too
        assert!(
            bars >= 2 || name.starts_with("bench-ner"),
            "{name}: {bars} bars"
        );
    }
}

#[test]
fn several_shapes_stack_and_files_of_one_shape_share_a_panel() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["chart".to_string()];
    for (name, text, _) in fixtures() {
        let input = dir.path().join(name);
        std::fs::write(&input, text).unwrap();
        args.push(input.display().to_string());
    }
    // A second encoder file with the same bars: its labels now name their files.
    let again = dir.path().join("encoder-again.json");
    std::fs::copy(dir.path().join("encoder.json"), &again).unwrap();
    args.push(again.display().to_string());
    let output = dir.path().join("all.svg");
    args.extend(["-o".to_string(), output.display().to_string()]);
    zhishi().args(&args).assert().success();
    let svg = std::fs::read_to_string(&output).unwrap();
    assert_eq!(svg.matches("Encoder forward pass").count(), 1);
    assert!(svg.contains("encoder: f32 plain, 1 thread"));
    assert!(svg.contains("encoder-again: f32 plain, 1 thread"));
    assert!(svg.contains("TransE") && svg.contains("NER arms") && svg.contains("doubling"));
}

#[test]
fn an_unknown_shape_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let kg = dir.path().join("bench-kg.json");
    std::fs::write(&kg, r#"{"benchmark":"kg","results":[]}"#).unwrap();
    zhishi()
        .arg("chart")
        .arg(&kg)
        .args(["-o", "unused.svg"])
        .current_dir(dir.path())
        .assert()
        .failure()
        .stderr(contains(
            "bench-kg.json: not a benchmark result zhishi can chart",
        ));
    assert!(!dir.path().join("unused.svg").exists());
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "encoder was fast\n").unwrap();
    zhishi()
        .arg("chart")
        .arg(&text)
        .args(["-o", "unused.svg"])
        .assert()
        .failure()
        .stderr(contains("notes.txt: neither JSON nor JSON lines"));
    // A known shape without what the chart needs says what is missing.
    let arms = dir.path().join("arms.jsonl");
    std::fs::write(
        &arms,
        "{\"arm\":\"plain-crf\",\"test_f1\":0.9,\"train_tokens_per_s\":4}\n",
    )
    .unwrap();
    zhishi()
        .arg("chart")
        .arg(&arms)
        .args(["-o", "unused.svg"])
        .assert()
        .failure()
        .stderr(contains("arms.jsonl: arms without a pytorch arm"));
}

/// The transcribed results in `benches/results/` (charted in docs/bench.md) stay chartable.
#[test]
fn the_recorded_results_chart() {
    let dir = tempfile::tempdir().unwrap();
    let results = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    for entry in std::fs::read_dir(results).unwrap() {
        let path = entry.unwrap().path();
        let output = dir.path().join("chart.svg");
        zhishi()
            .arg("chart")
            .arg(&path)
            .arg("-o")
            .arg(&output)
            .assert()
            .success();
    }
}
