//! Parity of the candle encoder with PyTorch `transformers` on a tiny random BERT
//! (`tests/fixtures/encoder`, see its README): padded batches, soft position ids and a
//! K-BERT visible matrix, for both kernel sets and both checkpoint formats.
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use zhishi::model::{load_bert, BertModel, EncoderInput, Kernels};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/encoder")
        .join(name)
}

fn lines(name: &str) -> Vec<Value> {
    std::fs::read_to_string(fixture(name))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn tensor(v: &Value) -> Tensor {
    let rows: Vec<Vec<u32>> = serde_json::from_value(v.clone()).unwrap();
    let (b, l) = (rows.len(), rows[0].len());
    Tensor::from_vec(rows.concat(), (b, l), &Device::Cpu).unwrap()
}

fn visible(v: &Value) -> Tensor {
    let m: Vec<Vec<Vec<u32>>> = serde_json::from_value(v.clone()).unwrap();
    let (b, l) = (m.len(), m[0].len());
    let flat: Vec<u32> = m.into_iter().flatten().flatten().collect();
    Tensor::from_vec(flat, (b, l, l), &Device::Cpu).unwrap()
}

/// Runs every case and returns (case name, max |candle - torch| over real tokens).
fn max_diffs(model: &BertModel) -> Vec<(String, f32)> {
    let expected = lines("expected.jsonl");
    lines("cases.jsonl")
        .iter()
        .zip(&expected)
        .map(|(case, want)| {
            let ids = tensor(&case["input_ids"]);
            let opt = |k: &str| case.get(k).map(tensor);
            let (types, positions, mask) = (
                opt("token_type_ids"),
                opt("position_ids"),
                opt("attention_mask"),
            );
            let vis = case.get("visible_matrix").map(visible);
            let input = EncoderInput {
                input_ids: &ids,
                token_type_ids: types.as_ref(),
                position_ids: positions.as_ref(),
                attention_mask: mask.as_ref(),
                visible_matrix: vis.as_ref(),
            };
            let got = model.forward(&input).unwrap().to_vec3::<f32>().unwrap();
            let want: Vec<Vec<Vec<f32>>> =
                serde_json::from_value(want["last_hidden_state"].clone()).unwrap();
            let real: Vec<Vec<u32>> =
                serde_json::from_value(case["attention_mask"].clone()).unwrap();
            let mut max = 0f32;
            for (b, ex) in got.iter().enumerate() {
                for (t, tok) in ex.iter().enumerate() {
                    if real[b][t] == 1 {
                        for (x, y) in tok.iter().zip(&want[b][t]) {
                            max = max.max((x - y).abs());
                        }
                    }
                }
            }
            (case["name"].as_str().unwrap().to_string(), max)
        })
        .collect()
}

fn assert_parity(dir: &str, kernels: Kernels) {
    assert_parity_within(dir, kernels, 1e-4);
}

fn assert_parity_within(dir: &str, kernels: Kernels, tolerance: f32) {
    let model = load_bert(&fixture(dir), &Device::Cpu, DType::F32, kernels).unwrap();
    let diffs = max_diffs(&model);
    let names: Vec<&str> = diffs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["padded", "positions", "visible"]);
    for (name, d) in diffs {
        assert!(
            d <= tolerance,
            "{dir} {kernels:?} case {name}: max abs diff {d}"
        );
    }
}

#[test]
fn fused_kernels_match_pytorch_on_safetensors() {
    assert_parity("tiny-bert", Kernels::Fast);
}

#[test]
fn differentiable_ops_match_pytorch_on_safetensors() {
    assert_parity("tiny-bert", Kernels::Differentiable);
}

#[test]
fn bf16_kernels_stay_near_pytorch() {
    // bf16 products (8-bit mantissas) over 2 layers of unit-scale hidden states: a few 1e-3.
    assert_parity_within("tiny-bert", Kernels::FastBf16, 3e-2);
}

#[test]
fn pytorch_pickle_with_bert_prefix_and_buffers_loads_the_same_model() {
    assert_parity("tiny-bert-bin", Kernels::Fast);
}

#[test]
fn the_visible_matrix_changes_what_tokens_see() {
    // Dropping the visible matrix from the `visible` case must move the outputs away from
    // PyTorch's, or the parity above would not be testing it.
    let model = load_bert(
        &fixture("tiny-bert"),
        &Device::Cpu,
        DType::F32,
        Kernels::Fast,
    )
    .unwrap();
    let case = &lines("cases.jsonl")[2];
    let ids = tensor(&case["input_ids"]);
    let (pos, mask) = (
        tensor(&case["position_ids"]),
        tensor(&case["attention_mask"]),
    );
    let types = tensor(&case["token_type_ids"]);
    let vis = visible(&case["visible_matrix"]);
    let mut input = EncoderInput {
        input_ids: &ids,
        token_type_ids: Some(&types),
        position_ids: Some(&pos),
        attention_mask: Some(&mask),
        visible_matrix: Some(&vis),
    };
    let with = model.forward(&input).unwrap();
    input.visible_matrix = None;
    let without = model.forward(&input).unwrap();
    let diff = (with - without)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(diff > 1e-2, "visible matrix had no effect ({diff})");
}

#[test]
fn missing_weights_are_reported_with_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("tiny-bert/config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let e = load_bert(dir.path(), &Device::Cpu, DType::F32, Kernels::Fast).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("no model.safetensors or pytorch_model.bin found"),
        "{e}"
    );
}
