//! `zhishi bench run` on a tiny trained NER model: one JSON object with a row per arm and
//! thread count (times, rates, agreement with zhishi f32), the dumped model-stage inputs in
//! the format the reference script reads; with `$REF_PYTHON` the PyTorch and ONNX Runtime
//! references run too (else that part is skipped with a printed reason).
use assert_cmd::Command;

use crate::support::ner_workspace;
use ner_workspace::Workspace;

fn zhishi() -> Command {
    Command::cargo_bin("zhishi").unwrap()
}

/// Trains the workspace's tiny model for one epoch; returns its `best/` directory.
fn tiny_ner_model(ws: &Workspace) -> std::path::PathBuf {
    let out = zhishi()
        .args(["train", ws.config().to_str().unwrap()])
        .args(["--set", "train.epochs=1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let train: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    std::path::PathBuf::from(train["model_dir"].as_str().unwrap())
}

#[test]
fn bench_run_reports_every_arm_with_rates_ratios_and_agreement() {
    let ws = Workspace::new("");
    let model = tiny_ner_model(&ws);
    let pipeline = ws.root.join("pipeline.toml");
    std::fs::write(
        &pipeline,
        "[pipeline]\nname = \"tiny-ner\"\nstages = [\"ner\"]\nbatch_size = 2\n\n[ner]\nmodel = \"unused\"\n",
    )
    .unwrap();
    let corpus = ws.root.join("corpus.txt");
    std::fs::write(&corpus, "张三住在北京\n\n李四去了上海工作。\n王五在杭州\n").unwrap();
    let python = std::env::var("REF_PYTHON").ok().filter(|p| !p.is_empty());
    let references = if python.is_some() {
        "pytorch,onnx-int8"
    } else {
        println!("skipping the reference arms: $REF_PYTHON is not set");
        "none"
    };
    let work = ws.root.join("work");
    let out_json = ws.root.join("run.json");
    let out = zhishi()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["bench", "run", pipeline.to_str().unwrap()])
        .args(["--corpus", corpus.to_str().unwrap()])
        .args(["--model", model.to_str().unwrap()])
        .args(["--precision", "f32,int8", "--threads", "1", "--rounds", "1"])
        .args(["--reference", references])
        .args(["--work", work.to_str().unwrap()])
        .args(["--out", out_json.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out_json).unwrap()).unwrap();
    assert_eq!(result["bench"], "run");
    assert_eq!(result["docs"], 3, "the empty line is no document: {result}");
    assert_eq!(result["chars"], 20);
    // 3 documents, one window each: [CLS] + characters + [SEP].
    assert_eq!(result["model_tokens"], 26);
    assert!(result["cpu"]["kernels"]["int8"].is_string(), "{result}");
    let rows = result["results"].as_array().unwrap();
    let arms: Vec<&str> = rows.iter().map(|r| r["arm"].as_str().unwrap()).collect();
    let mut want = vec!["zhishi-f32", "zhishi-int8"];
    if python.is_some() {
        want.extend(["pytorch-f32", "onnx-int8"]);
    }
    assert_eq!(arms, want);
    for row in rows {
        assert_eq!(row["threads"], 1);
        assert_eq!(row["rounds_seconds"].as_array().unwrap().len(), 1);
        assert_eq!(row["ner_rounds_seconds"].as_array().unwrap().len(), 1);
        for key in [
            "ner_seconds",
            "ner_docs_per_s",
            "ner_chars_per_s",
            "ner_tokens_per_s",
        ] {
            assert!(row[key].as_f64().unwrap() > 0.0, "{key}: {row}");
        }
        let agreement = row["agreement_with_zhishi_f32"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&agreement), "{row}");
        if row["impl"] == "zhishi" {
            assert!(row["docs_per_s"].as_f64().unwrap() > 0.0, "{row}");
            assert!(row["stage_seconds_last_round"]["ner"].is_number(), "{row}");
        }
        if python.is_some() {
            assert!(
                row["speedup_vs_pytorch_f32"].as_f64().unwrap() > 0.0,
                "{row}"
            );
            assert!(row["speedup_vs_onnx_int8"].as_f64().unwrap() > 0.0, "{row}");
            assert_eq!(
                row["speedup_vs_pytorch_f32_by_round"]
                    .as_array()
                    .unwrap()
                    .len(),
                1
            );
            assert!(
                row["speedup_vs_onnx_int8_median_of_rounds"]
                    .as_f64()
                    .unwrap()
                    > 0.0
            );
        }
    }
    assert_eq!(rows[0]["agreement_with_zhishi_f32"], 1.0);
    if python.is_some() {
        // PyTorch f32 on the same inputs finds the same entities as zhishi f32.
        assert_eq!(rows[2]["agreement_with_zhishi_f32"], 1.0, "{}", rows[2]);
    }

    // The dumped inputs: a header, then one window per document with its exact tokens.
    let dump = std::fs::read_to_string(work.join("inputs.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = dump
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["format"], "zhishi-ner-inputs/1");
    assert_eq!(lines[0]["labels"][0], "O");
    assert_eq!(lines.len(), 4);
    let second = &lines[2];
    assert_eq!(
        (second["group"].as_u64(), second["doc"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(second["doc_chars"], 9);
    assert_eq!(second["input_ids"].as_array().unwrap().len(), 11);
    assert_eq!(second["positions"][10], 10);
    assert!(second["visible"].is_null(), "a plain model sees everything");
    assert_eq!(
        lines[3]["group"], 1,
        "batch_size = 2 puts the third document in group 1"
    );
}

#[test]
fn bench_run_refuses_references_without_python() {
    let out = zhishi()
        .env_remove("REF_PYTHON")
        .args([
            "bench",
            "run",
            "pipelines/medical-ner.toml",
            "--corpus",
            "x",
            "--model",
            "y",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("$REF_PYTHON"), "{err}");
}
