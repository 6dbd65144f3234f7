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
fn bf16_precision_encodes_close_to_f32_and_unknown_precisions_are_rejected() {
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
    let (f32s, bf16s) = (run("f32"), run("bf16"));
    assert_eq!(f32s.len(), 5 * 32);
    for (a, b) in f32s.iter().zip(&bf16s) {
        assert!((a - b).abs() < 3e-2, "{a} vs {b}");
    }
    encode()
        .args(["--precision", "fp8"])
        .write_stdin(input)
        .assert()
        .failure()
        .stderr(contains("expected f32 or bf16"));
}
