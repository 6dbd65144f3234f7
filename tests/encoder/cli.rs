//! `zhishi encode` end to end on the tiny random BERT fixture: JSONL batches in, PyTorch's
//! `last_hidden_state` out, and clear errors for bad input.
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::str::contains;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/encoder")
        .join(name)
}

fn encode() -> Command {
    let mut cmd = Command::cargo_bin("zhishi").unwrap();
    cmd.arg("encode").arg("--model").arg(fixture("tiny-bert"));
    cmd
}

#[test]
fn encodes_every_batch_line_like_pytorch() {
    // The fixture's cases carry a "name" that is not an input field: strip it.
    let cases = std::fs::read_to_string(fixture("cases.jsonl")).unwrap();
    let input: String = cases
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("name");
            format!("{v}\n\n")
        })
        .collect();
    let out = encode().write_stdin(input).assert().success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let expected = std::fs::read_to_string(fixture("expected.jsonl")).unwrap();
    assert_eq!(stdout.lines().count(), 3, "one output line per batch");
    for ((got, want), case) in stdout.lines().zip(expected.lines()).zip(cases.lines()) {
        let got: Value = serde_json::from_str(got).unwrap();
        let want: Value = serde_json::from_str(want).unwrap();
        let case: Value = serde_json::from_str(case).unwrap();
        let g: Vec<Vec<Vec<f32>>> =
            serde_json::from_value(got["last_hidden_state"].clone()).unwrap();
        let w: Vec<Vec<Vec<f32>>> =
            serde_json::from_value(want["last_hidden_state"].clone()).unwrap();
        let mask: Vec<Vec<u8>> = serde_json::from_value(case["attention_mask"].clone()).unwrap();
        assert_eq!((g.len(), g[0].len(), g[0][0].len()), (3, 10, 32));
        for b in 0..3 {
            for t in (0..10).filter(|&t| mask[b][t] == 1) {
                for (x, y) in g[b][t].iter().zip(&w[b][t]) {
                    assert!((x - y).abs() <= 1e-4, "{}: {x} vs {y}", want["name"]);
                }
            }
        }
    }
}

#[test]
fn an_out_of_range_token_id_names_the_field_and_line() {
    encode()
        .write_stdin("{\"input_ids\": [[1, 2, 64]]}\n")
        .assert()
        .failure()
        .stderr(contains("stdin line 1"))
        .stderr(contains("input_ids[0][2] = 64 is outside 0..64"));
}

#[test]
fn a_visible_matrix_of_the_wrong_size_is_rejected() {
    encode()
        .write_stdin("{\"input_ids\": [[1, 2]], \"visible_matrix\": [[[1, 1]]]}\n")
        .assert()
        .failure()
        .stderr(contains("visible_matrix has 1 rows, expected 2"));
}

#[test]
fn unknown_fields_are_rejected() {
    encode()
        .write_stdin("{\"input_ids\": [[1, 2]], \"attention_mask_3d\": [[[1]]]}\n")
        .assert()
        .failure()
        .stderr(contains("unknown field `attention_mask_3d`"));
}

#[cfg(not(feature = "cuda"))]
#[test]
fn asking_for_cuda_without_the_feature_is_a_clear_error() {
    encode()
        .args(["--device", "cuda:0"])
        .write_stdin("")
        .assert()
        .failure()
        .stderr(contains("rebuild with `--features cuda`"));
}

#[test]
fn bf16_and_int8_precisions_encode_close_to_f32_and_unknown_precisions_are_rejected() {
    let input = "{\"input_ids\": [[2, 17, 33, 5, 3]]}\n";
    let run = |precision: &str| -> Vec<f32> {
        let out = encode()
            .args(["--precision", precision])
            .write_stdin(input)
            .assert()
            .success();
        let v: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        let h: Vec<Vec<Vec<f32>>> = serde_json::from_value(v["last_hidden_state"].clone()).unwrap();
        h.concat().concat()
    };
    let (f32s, bf16s, int8s) = (run("f32"), run("bf16"), run("int8"));
    assert_eq!(f32s.len(), 5 * 32);
    for (a, b) in f32s.iter().zip(&bf16s) {
        assert!((a - b).abs() < 3e-2, "{a} vs {b}");
    }
    assert_ne!(int8s, f32s, "int8 changes the numbers");
    for (a, b) in f32s.chunks(32).zip(int8s.chunks(32)) {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norms = a.iter().map(|x| x * x).sum::<f32>() * b.iter().map(|x| x * x).sum::<f32>();
        assert!(
            dot / norms.sqrt() > 0.99,
            "token cosine {}",
            dot / norms.sqrt()
        );
    }
    encode()
        .args(["--precision", "fp8"])
        .write_stdin(input)
        .assert()
        .failure()
        .stderr(contains("expected f32, bf16 or int8"));
}

/// The tiny fixture model with a 64-entry vocabulary, so text can be tokenised.
fn tiny_model_with_vocab(dir: &std::path::Path) -> PathBuf {
    let model = dir.join("tiny");
    std::fs::create_dir_all(&model).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture(&format!("tiny-bert/{f}")), model.join(f)).unwrap();
    }
    let mut vocab = vec!["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>();
    vocab.extend("北京是中国的首都上海一座城市你好".chars().map(String::from));
    while vocab.len() < 64 {
        vocab.push(format!("[unused{}]", vocab.len()));
    }
    std::fs::write(model.join("vocab.txt"), vocab.join("\n") + "\n").unwrap();
    model
}

#[test]
fn text_lines_give_token_states_or_one_pooled_vector() {
    let dir = tempfile::tempdir().unwrap();
    let model = tiny_model_with_vocab(dir.path());
    let run = |extra: &[&str]| -> Value {
        let out = Command::cargo_bin("zhishi")
            .unwrap()
            .arg("encode")
            .arg("--model")
            .arg(&model)
            .args(extra)
            .write_stdin("{\"text\": \"北京是中国的首都\"}\n")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let states = run(&[]);
    assert_eq!(states["tokens"][0], "[CLS]");
    let hidden = states["last_hidden_state"].as_array().unwrap();
    assert_eq!(hidden.len(), 10, "[CLS] + 8 characters + [SEP]");
    let mean = run(&["--pooling", "mean"]);
    let vector: Vec<f64> = serde_json::from_value(mean["embedding"].clone()).unwrap();
    assert_eq!(vector.len(), 32);
    for (d, v) in vector.iter().enumerate() {
        let expected = hidden.iter().map(|h| h[d].as_f64().unwrap()).sum::<f64>() / 10.0;
        assert!((v - expected).abs() < 1e-5, "dim {d}: {v} vs {expected}");
    }
    let unit: Vec<f64> =
        serde_json::from_value(run(&["--pooling", "mean", "--normalize"])["embedding"].clone())
            .unwrap();
    let norm = unit.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    let cls = run(&["--pooling", "cls"]);
    assert_eq!(cls["embedding"], states["last_hidden_state"][0]);
}
