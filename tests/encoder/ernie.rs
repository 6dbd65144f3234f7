//! Parity of the ERNIE-THU layers with the authors' `knowledge_bert/modeling.py` on a tiny
//! random model (`tests/fixtures/encoder/tiny-ernie`: layer types sim, mix, norm plus one
//! implicit sim; weights in f16 with `bert.` prefix and `ernie_config.json`, as in their
//! checkpoints), through `zhishi encode`.
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::str::contains;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/encoder")
        .join(name)
}

fn max_diff(got: &Value, want: &Value, mask: &Value) -> f32 {
    let g: Vec<Vec<Vec<f32>>> = serde_json::from_value(got.clone()).unwrap();
    let w: Vec<Vec<Vec<f32>>> = serde_json::from_value(want.clone()).unwrap();
    let m: Vec<Vec<u8>> = serde_json::from_value(mask.clone()).unwrap();
    assert_eq!((g.len(), g[0].len()), (w.len(), w[0].len()));
    let mut max = 0f32;
    for b in 0..g.len() {
        for t in (0..g[b].len()).filter(|&t| m[b][t] == 1) {
            assert_eq!(g[b][t].len(), w[b][t].len());
            for (x, y) in g[b][t].iter().zip(&w[b][t]) {
                max = max.max((x - y).abs());
            }
        }
    }
    max
}

#[test]
fn ernie_layers_match_the_authors_code() {
    let case = std::fs::read_to_string(fixture("ernie_cases.jsonl")).unwrap();
    let out = Command::cargo_bin("zhishi")
        .unwrap()
        .args(["encode", "--model"])
        .arg(fixture("tiny-ernie"))
        .arg("--entity-embeddings")
        .arg(fixture("entities.safetensors"))
        .write_stdin(case.clone())
        .assert()
        .success();
    let got: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("ernie_expected.jsonl")).unwrap())
            .unwrap();
    let case: Value = serde_json::from_str(&case).unwrap();
    let mask = &case["attention_mask"];
    let h = max_diff(&got["last_hidden_state"], &want["last_hidden_state"], mask);
    let e = max_diff(
        &got["entity_hidden_state"],
        &want["entity_hidden_state"],
        mask,
    );
    assert!(h <= 1e-4, "last_hidden_state differs by {h}");
    assert!(e <= 1e-4, "entity_hidden_state differs by {e}");
}

#[test]
fn an_ernie_model_without_an_entity_table_is_refused() {
    Command::cargo_bin("zhishi")
        .unwrap()
        .args(["encode", "--model"])
        .arg(fixture("tiny-ernie"))
        .write_stdin("")
        .assert()
        .failure()
        .stderr(contains("is an ERNIE model: give --entity-embeddings"));
}

#[test]
fn entity_ids_past_the_table_are_rejected() {
    Command::cargo_bin("zhishi")
        .unwrap()
        .args(["encode", "--model"])
        .arg(fixture("tiny-ernie"))
        .arg("--entity-embeddings")
        .arg(fixture("entities.safetensors"))
        .write_stdin("{\"input_ids\":[[1,2]],\"entity_ids\":[[-1,5]],\"entity_mask\":[[0,1]]}\n")
        .assert()
        .failure()
        .stderr(contains("entity_ids[0][1] = 5 is outside -1..5"));
}

#[test]
fn a_plain_bert_checkpoint_initialises_the_token_encoder_and_fresh_aggregators() {
    use candle_core::{DType, Device, Tensor};
    use zhishi::model::{load_ernie, EncoderInput, ErnieInput, Kernels};
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("tiny-bert/model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("tiny-bert/config.json")).unwrap())
            .unwrap();
    cfg["layer_types"] = serde_json::json!(["sim", "norm"]);
    std::fs::write(dir.path().join("config.json"), cfg.to_string()).unwrap();
    let (model, fresh) = load_ernie(dir.path(), &Device::Cpu, DType::F32, Kernels::Fast).unwrap();
    // One `norm` layer: self_ent q/k/v (6), output_ent dense + LayerNorm (4),
    // intermediate.dense_ent (2), output.dense_ent (2), output.LayerNorm_ent (2).
    assert_eq!(fresh, 16);
    let ids = Tensor::new(&[[2u32, 7, 9, 3]], &Device::Cpu).unwrap();
    let entities = Tensor::zeros((1, 4, 100), DType::F32, &Device::Cpu).unwrap();
    let entity_mask = Tensor::new(&[[0u32, 1, 0, 0]], &Device::Cpu).unwrap();
    let (h, e) = model
        .forward(&ErnieInput {
            tokens: EncoderInput::new(&ids),
            entities: &entities,
            entity_mask: &entity_mask,
        })
        .unwrap();
    assert_eq!(h.dims(), [1, 4, 32]);
    assert_eq!(e.dims(), [1, 4, 100]);
    // The fresh aggregator weights come from a fixed seed: loading again gives the same model.
    let (again, _) = load_ernie(dir.path(), &Device::Cpu, DType::F32, Kernels::Fast).unwrap();
    let input = ErnieInput {
        tokens: EncoderInput::new(&ids),
        entities: &Tensor::ones((1, 4, 100), DType::F32, &Device::Cpu).unwrap(),
        entity_mask: &entity_mask,
    };
    let hidden = |m: &zhishi::model::ErnieModel| -> Vec<f32> {
        m.forward(&input)
            .unwrap()
            .0
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    assert_eq!(hidden(&model), hidden(&again));
}

#[test]
fn a_quantised_ernie_model_encodes_as_the_original_does_at_int8() {
    // The aggregators' entity-side layers (`self_ent`, `output_ent`, `dense_ent`) are saved
    // int8 too, and `load_ernie` keeps their scales.
    let tmp = tempfile::tempdir().unwrap();
    let quantised = tmp.path().join("tiny-ernie-int8");
    Command::cargo_bin("zhishi")
        .unwrap()
        .args(["quantize", "--model"])
        .arg(fixture("tiny-ernie"))
        .arg("--output")
        .arg(&quantised)
        .assert()
        .success()
        .stdout(contains("\"quantized_tensors\""));
    let case = std::fs::read_to_string(fixture("ernie_cases.jsonl")).unwrap();
    let encode = |dir: &Path| -> Value {
        let out = Command::cargo_bin("zhishi")
            .unwrap()
            .args(["encode", "--precision", "int8", "--model"])
            .arg(dir)
            .arg("--entity-embeddings")
            .arg(fixture("entities.safetensors"))
            .write_stdin(case.clone())
            .assert()
            .success();
        serde_json::from_slice(&out.get_output().stdout).unwrap()
    };
    let (got, want) = (encode(&quantised), encode(&fixture("tiny-ernie")));
    assert_eq!(got["last_hidden_state"], want["last_hidden_state"]);
    assert_eq!(got["entity_hidden_state"], want["entity_hidden_state"]);
    let header = std::fs::read(quantised.join("model.safetensors")).unwrap();
    let text = String::from_utf8_lossy(&header[..4096.min(header.len())]);
    assert!(
        text.contains("attention.self_ent.query.weight_scale"),
        "entity side saved int8"
    );
}
