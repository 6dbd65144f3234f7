//! `zhishi quantize` on a trained stage model: the quantised directory is smaller, holds int8
//! dense layers, and predicts at `int8` what the original predicts at `int8`; at f32 it runs
//! its dequantised weights. (That the encoder's outputs are bit-identical, through both the
//! checkpoint reader and the stage models' weight mapping, is tested in
//! `model::quantized::tests`.)
use assert_cmd::Command;
use candle_core::Device;
use zhishi::model::Precision;
use zhishi::stages::ner::{self, NerModel};

use crate::support::ner_workspace;
use ner_workspace::Workspace;

#[test]
fn a_quantised_ner_model_predicts_as_the_original_does_at_int8() {
    let ws = Workspace::new("");
    let report = ner::train_config(&ws.config(), &["train.epochs=20".into()]).unwrap();
    let out = ws.root.join("ner-int8");
    let run = Command::cargo_bin("zhishi")
        .unwrap()
        .args(["quantize", "--model"])
        .arg(&report.model_dir)
        .arg("--output")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(json["files"][0]["file"], "model.safetensors");
    assert_eq!(json["files"][0]["quantized_tensors"], 2 * 6, "{json}");
    assert!(json["bytes_after"].as_u64() < json["bytes_before"].as_u64());
    for file in ["ner.json", "config.json", "vocab.txt"] {
        assert!(out.join(file).is_file(), "{file} copied");
    }

    let texts = ["李四住在杭州", "张三住在北京", "王五去了上海和杭州工作。"];
    let load = |dir: &std::path::Path, p| NerModel::load_at(dir, &Device::Cpu, p).unwrap();
    let original = load(&report.model_dir, Precision::Int8)
        .predict(&texts)
        .unwrap();
    let quantised = load(&out, Precision::Int8).predict(&texts).unwrap();
    assert_eq!(quantised, original);
    assert!(
        original.iter().any(|e| !e.is_empty()),
        "the model finds entities"
    );
    let f32_run = load(&out, Precision::F32).predict(&texts).unwrap();
    let spans = |r: &[Vec<zhishi::doc::Entity>]| -> Vec<Vec<(usize, usize)>> {
        r.iter()
            .map(|v| v.iter().map(|e| (e.start, e.end)).collect())
            .collect()
    };
    assert_eq!(spans(&f32_run), spans(&original));

    // The copy is a finished model directory: quantising it again is refused, by name.
    let again = Command::cargo_bin("zhishi")
        .unwrap()
        .args(["quantize", "--model"])
        .arg(&out)
        .arg("--output")
        .arg(ws.root.join("twice"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("model.safetensors") && err.contains("is int8 already"),
        "{err}"
    );
}
