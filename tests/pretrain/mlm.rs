//! Masked-LM pretraining as a user runs it, on a tiny random encoder: every parameter of the
//! encoder and the `cls.predictions` head gets a gradient; `train_config` writes a Hugging
//! Face `BertForMaskedLM` directory that loads as a plain encoder, resumes exactly, evaluates
//! and fills masks.
use crate::support::grad_check;
use crate::support::pretrain_workspace;
use pretrain_workspace::{encoder_config, workspace};

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use zhishi::model::mlm::BertForMaskedLm;
use zhishi::model::{BertConfig, Dropout, EncoderInput, Kernels};
use zhishi::stages::pretrain::{evaluate_config, train_config, FillMask};
use zhishi::stages::task::Split;

#[test]
fn every_parameter_of_encoder_and_head_gets_a_gradient() {
    let cfg = BertConfig {
        kernels: Kernels::Differentiable,
        ..encoder_config()
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = BertForMaskedLm::load(vb, &cfg).unwrap();
    // Two rows of 16 tokens (every position embedding is used), three masked tokens.
    let ids: Vec<u32> = (0..32).map(|i| 5 + (i * 7 % 12) as u32).collect();
    let ids = Tensor::from_vec(ids, (2, 16), &Device::Cpu).unwrap();
    let positions = Tensor::new(&[1u32, 7, 20], &Device::Cpu).unwrap();
    let targets = Tensor::new(&[5u32, 9, 12], &Device::Cpu).unwrap();
    let loss = model
        .loss(
            &EncoderInput::new(&ids),
            &positions,
            &targets,
            &Dropout::new(0.1, 3),
        )
        .unwrap();
    let grads = loss.backward().unwrap();
    let missing: Vec<String> = grad_check::params_without_gradient(&varmap, &grads)
        .into_iter()
        // A key bias shifts a whole softmax row: its true gradient is zero.
        .filter(|n| !n.ends_with("key.bias"))
        .collect();
    assert_eq!(missing, Vec::<String>::new());
}

#[test]
fn pretraining_writes_a_masked_lm_that_loads_resumes_evaluates_and_fills_masks() {
    let tmp = tempfile::tempdir().unwrap();
    let config = workspace(tmp.path());
    let report = train_config(&config, &["train.max_steps=4".into()]).unwrap();
    assert_eq!(report.train.steps, 4);
    assert_eq!(report.dev["fresh_head_tensors"], 5);
    assert!(report.dev["initial"]["mlm_loss"].as_f64().unwrap() > 0.0);
    assert!(tmp.path().join("out/curves.svg").is_file());

    let best = tmp.path().join("out/best");
    let tensors =
        candle_core::safetensors::load(best.join("model.safetensors"), &Device::Cpu).unwrap();
    for name in [
        "bert.embeddings.word_embeddings.weight",
        "cls.predictions.bias",
        "cls.predictions.transform.dense.weight",
        "cls.predictions.transform.LayerNorm.weight",
    ] {
        assert!(tensors.contains_key(name), "{name}");
    }
    assert!(!tensors.keys().any(|k| k.contains("decoder")));
    // Every stage loads its encoder with load_bert: the head is ignored, `bert.` stripped.
    zhishi::model::load_bert(&best, &Device::Cpu, DType::F32, Kernels::Fast).unwrap();

    // Resuming from step 2 ends where the uninterrupted run ended.
    let resumed = tempfile::tempdir().unwrap();
    let config2 = workspace(resumed.path());
    train_config(&config2, &["train.max_steps=2".into()]).unwrap();
    let r2 = train_config(
        &config2,
        &["train.max_steps=4".into(), "train.resume=true".into()],
    )
    .unwrap();
    assert_eq!(r2.train.steps, 4);
    let params = |d: &Path| std::fs::read(d.join("out/last/params.safetensors")).unwrap();
    let (a, b) = (params(tmp.path()), params(resumed.path()));
    assert!(
        a == b,
        "resumed weights differ from the uninterrupted run's"
    );

    let m = evaluate_config(&config, &[], Split::Dev).unwrap();
    assert!(m.masked_tokens > 0 && m.mlm_loss > 0.0);
    assert!(m.mlm_accuracy >= 0.0 && m.mlm_accuracy <= 1.0);
    assert!(evaluate_config(&config, &[], Split::Train).is_err());
    // `zhishi eval --precision`: the same masked tokens scored by int8 dense layers.
    let q = zhishi::stages::pretrain::train::evaluate_config_at(
        &config,
        &[],
        Split::Dev,
        zhishi::model::Precision::Int8,
    )
    .unwrap();
    assert_eq!(q.masked_tokens, m.masked_tokens);
    assert!(
        (q.mlm_loss - m.mlm_loss).abs() < 0.05 * m.mlm_loss,
        "{q:?} vs {m:?}"
    );

    // The pretrained model directory is all evaluation needs: the base encoder may be gone.
    std::fs::rename(tmp.path().join("encoder"), tmp.path().join("encoder-moved")).unwrap();
    let again = evaluate_config(&config, &[], Split::Dev).unwrap();
    assert_eq!(again.masked_tokens, m.masked_tokens);
    assert!(
        (again.mlm_loss - m.mlm_loss).abs() < 1e-6,
        "{again:?} vs {m:?}"
    );
    assert!(
        train_config(&config, &[]).is_err(),
        "training still needs it"
    );

    let fill = FillMask::load(&best).unwrap();
    let masks = fill.fill("患者[MASK]痛发[MASK]", 3).unwrap();
    assert_eq!(
        masks.iter().map(|m| m.position).collect::<Vec<_>>(),
        [2, 10]
    );
    for m in &masks {
        assert_eq!(m.candidates.len(), 3);
        assert!(m.candidates[0].score >= m.candidates[1].score);
    }
}

#[test]
fn save_final_writes_the_model_of_the_last_step_beside_the_best() {
    let tmp = tempfile::tempdir().unwrap();
    let config = workspace(tmp.path());
    let plain = train_config(&config, &["train.max_steps=2".into()]).unwrap();
    assert_eq!(plain.train.final_dir, None);
    assert!(!tmp.path().join("out/final").exists());

    let tmp = tempfile::tempdir().unwrap();
    let config = workspace(tmp.path());
    let report = train_config(
        &config,
        &["train.max_steps=6".into(), "train.save_final=true".into()],
    )
    .unwrap();
    let final_dir = tmp.path().join("out/final");
    assert_eq!(report.train.final_dir.as_deref(), Some(final_dir.as_path()));
    let metrics: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(final_dir.join("metrics.json")).unwrap())
            .unwrap();
    assert_eq!(metrics["step"], 6);
    let last = report.train.history.last().unwrap();
    assert_eq!(last.step, 6);
    assert_eq!(
        metrics["dev"]["mlm_accuracy"].as_f64(),
        Some(last.dev_score)
    );
    for file in ["model.safetensors", "config.json", "vocab.txt"] {
        assert!(final_dir.join(file).is_file(), "{file}");
    }
    zhishi::model::load_bert(&final_dir, &Device::Cpu, DType::F32, Kernels::Fast).unwrap();
    FillMask::load(&final_dir).unwrap();
    let weights = |d: &str| std::fs::read(tmp.path().join(d).join("model.safetensors")).unwrap();
    if report.train.best_step != 6 {
        assert!(weights("out/final") != weights("out/best"));
    }
}
