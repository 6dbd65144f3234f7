//! Parity of zhishi's masked LM with transformers' `BertForMaskedLM` on m3e-small (which has
//! no `cls.predictions`): zhishi initialises the head (seeded; the decoder bias made non-zero
//! so it is compared too), saves the directory, and transformers loads it with no missing or
//! unexpected keys; then the MLM loss of a masked batch and the top-5 fill-mask probabilities
//! agree within 1e-4, for the fused and the differentiable kernels, and the gradients of that
//! loss agree for every parameter (norm and first values). Needs `M3E_DIR` and
//! `REF_PYTHON` (`../shared/reference/setup.sh`):
//!   M3E_DIR=... REF_PYTHON=... cargo test --release --test pretrain -- parity:: --ignored --nocapture
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use serde_json::{json, Value};
use zhishi::model::load::read_config;
use zhishi::model::mlm::{fill_masked_lm_varmap, load_masked_lm, BertForMaskedLm};
use zhishi::model::Dropout;
use zhishi::model::{BertTokenizer, Kernels, Rng};
use zhishi::stages::pretrain::batch::{mlm_metrics, MaskedBatch};
use zhishi::stages::pretrain::fill_mask::EncodedLine;
use zhishi::stages::pretrain::masking::{Masked, Masker, MaskingOptions, Spans, IGNORE};
use zhishi::stages::pretrain::train::save_model_dir;
use zhishi::stages::pretrain::FillMask;

const TEXTS: &[&str] = &[
    "患者三天前出现头痛发热，伴有咳嗽。",
    "主因左侧肢体活动不灵伴言语不利3天。",
    "查体：血压140/90mmHg，双肺呼吸音清。",
];
const FILL: &[&str] = &[
    "患者出现头[MASK]发热",
    "哈尔[MASK]是黑龙江的省会。",
    "[MASK][MASK]血压",
];

fn env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .filter(|p| p.exists())
}

/// m3e-small with a seeded head, saved as zhishi saves a pretrained model.
fn save_initialised(m3e: &Path, out: &Path) {
    let mut cfg = read_config(m3e).unwrap();
    cfg.kernels = Kernels::Differentiable;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    BertForMaskedLm::load(vb, &cfg).unwrap();
    assert_eq!(fill_masked_lm_varmap(&varmap, m3e, &cfg, 42).unwrap(), 5);
    let mut rng = Rng::new(5);
    let bias: Vec<f32> = (0..cfg.vocab_size).map(|_| 0.5 * rng.normal()).collect();
    let data = varmap.data().lock().unwrap();
    data["cls.predictions.bias"]
        .set(&Tensor::from_vec(bias, cfg.vocab_size, &Device::Cpu).unwrap())
        .unwrap();
    drop(data);
    save_model_dir(out, &varmap, m3e, "").unwrap();
}

/// The masked batch: zhishi's tokenizer and token masking (seed 9), padded.
fn masked_batch(dir: &Path) -> (Vec<Masked>, Value) {
    let tok = BertTokenizer::from_dir(dir).unwrap();
    let mask_id = tok.token_to_id("[MASK]").unwrap();
    let masker = Masker::new(MaskingOptions::default(), mask_id, 21128);
    let seqs: Vec<Masked> = TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let e = tok.encode(t).unwrap();
            masker.mask(
                &e.ids,
                &e.offsets,
                &Spans::default(),
                &mut Rng::new(9 + i as u64),
            )
        })
        .collect();
    let l = seqs.iter().map(|s| s.input_ids.len()).max().unwrap();
    let pad = |v: &[i64], with: i64| {
        let mut v = v.to_vec();
        v.resize(l, with);
        v
    };
    let ids: Vec<Vec<i64>> = seqs
        .iter()
        .map(|s| {
            pad(
                &s.input_ids.iter().map(|&x| x as i64).collect::<Vec<_>>(),
                0,
            )
        })
        .collect();
    let mask: Vec<Vec<i64>> = seqs
        .iter()
        .map(|s| pad(&vec![1; s.input_ids.len()], 0))
        .collect();
    let labels: Vec<Vec<i64>> = seqs.iter().map(|s| pad(&s.labels, IGNORE)).collect();
    (
        seqs,
        json!({"input_ids": ids, "attention_mask": mask, "labels": labels}),
    )
}

#[test]
#[ignore = "needs M3E_DIR and REF_PYTHON (transformers); run with --ignored"]
fn masked_lm_matches_transformers_on_m3e_small() {
    let (Some(m3e), Some(python)) = (env("M3E_DIR"), env("REF_PYTHON")) else {
        eprintln!("skipped: set M3E_DIR (m3e-small) and REF_PYTHON (../shared/reference/setup.sh)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mlm");
    save_initialised(&m3e, &dir);

    let (seqs, batch) = masked_batch(&dir);
    let fill = FillMask::load(&dir).unwrap();
    let encoded: Vec<EncodedLine> = FILL.iter().map(|l| fill.encode(l).unwrap()).collect();
    let cases = json!({
        "batch": batch,
        "fill": encoded.iter().map(|(ids, masks)| json!({
            "input_ids": ids,
            "mask_positions": masks.iter().map(|m| m.1).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "top_k": 5,
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/mlm_parity.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(cases.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python failed");
    let torch: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!(
        "transformers loading info: missing {} unexpected {} mismatched {}",
        torch["missing"], torch["unexpected"], torch["mismatched"]
    );
    assert_eq!(torch["missing"], json!([]), "missing keys");
    assert_eq!(torch["unexpected"], json!([]), "unexpected keys");
    assert_eq!(torch["mismatched"], json!([]), "mismatched keys");

    let torch_loss = torch["loss"].as_f64().unwrap();
    for kernels in [Kernels::Fast, Kernels::Differentiable] {
        let (model, _, fresh) = load_masked_lm(&dir, &Device::Cpu, kernels, 0).unwrap();
        assert!(fresh.is_empty(), "{fresh:?}");
        let m = mlm_metrics(&model, &seqs, 8, &Device::Cpu).unwrap();
        let diff = (m.mlm_loss - torch_loss).abs();
        eprintln!("{kernels:?}: MLM loss zhishi {:.6} transformers {torch_loss:.6} |diff| {diff:.2e} ({} masked tokens)",
            m.mlm_loss, m.masked_tokens);
        assert!(diff < 1e-4, "{kernels:?} loss differs by {diff}");
    }

    compare_gradients(&dir, &seqs, &torch["grads"]);

    let mut worst = 0.0f64;
    for (line, want) in FILL.iter().zip(torch["fill"].as_array().unwrap()) {
        let got = fill.fill(line, 5).unwrap();
        for (mask, want) in got.iter().zip(want.as_array().unwrap()) {
            for (c, w) in mask.candidates.iter().zip(want.as_array().unwrap()) {
                let (id, p) = (w[0].as_u64().unwrap() as u32, w[1].as_f64().unwrap());
                let tok = BertTokenizer::from_dir(&dir).unwrap();
                assert_eq!(tok.token_to_id(&c.token), Some(id), "{line}: rank differs");
                worst = worst.max((f64::from(c.score) - p).abs());
            }
        }
        eprintln!("{line} -> {}", serde_json::to_string(&got).unwrap());
    }
    eprintln!("fill-mask top-5: max |p_zhishi - p_transformers| = {worst:.2e}");
    assert!(worst < 1e-4, "fill-mask probabilities differ by {worst}");
}

/// One backward pass of the MLM loss of `seqs` through the differentiable kernels: every
/// parameter's gradient (the decoder's, tied to the word embeddings, included in theirs)
/// against transformers' (`want`: name without `bert.` -> norm and first 64 values).
fn compare_gradients(dir: &Path, seqs: &[Masked], want: &Value) {
    let mut cfg = read_config(dir).unwrap();
    cfg.kernels = Kernels::Differentiable;
    cfg.layer_types = None;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let model = BertForMaskedLm::load(vb, &cfg).unwrap();
    assert_eq!(fill_masked_lm_varmap(&varmap, dir, &cfg, 0).unwrap(), 0);
    let refs: Vec<&Masked> = seqs.iter().collect();
    let batch = MaskedBatch::new(&refs, &Device::Cpu).unwrap();
    let loss = model
        .loss(
            &batch.input(),
            &batch.positions,
            &batch.targets,
            &Dropout::disabled(),
        )
        .unwrap();
    let grads = loss.backward().unwrap();
    let want = want.as_object().expect("transformers' gradients");
    let vars = varmap.data().lock().unwrap().clone();
    const TINY: f64 = 1e-6;
    let (mut worst_norm, mut worst_value, mut compared, mut zero_gradients) =
        (0.0f64, 0.0f64, 0, 0);
    for (name, w) in want {
        let ours = name.strip_prefix("bert.").unwrap_or(name);
        let var = vars
            .get(ours)
            .or_else(|| vars.get(&format!("bert.{ours}")))
            .unwrap_or_else(|| panic!("no parameter {ours} in zhishi's model"));
        let g: Vec<f32> = match grads.get(var.as_tensor()) {
            Some(g) => g.flatten_all().unwrap().to_vec1().unwrap(),
            None => vec![0.0; var.elem_count()],
        };
        let norm = g.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
        let want_norm = w["norm"].as_f64().unwrap();
        // The key biases' true gradient is zero (softmax ignores a constant per query row):
        // both sides hold float noise of ~1e-8 there, compared against TINY, not relatively.
        compared += 1;
        // The key biases' true gradient is zero (softmax ignores a constant per query row):
        // both sides hold float noise of ~1e-8 there, checked against TINY only.
        if want_norm < TINY {
            assert!(
                norm < TINY,
                "{ours}: zhishi gradient norm {norm:e}, transformers {want_norm:e}"
            );
            zero_gradients += 1;
            continue;
        }
        let rel = (norm - want_norm).abs() / want_norm;
        if rel > 1e-3 {
            eprintln!("  {ours}: zhishi norm {norm:.6e}, transformers {want_norm:.6e}");
        }
        worst_norm = worst_norm.max(rel);
        for (k, v) in w["head"].as_array().unwrap().iter().enumerate() {
            let diff = (f64::from(g[k]) - v.as_f64().unwrap()).abs() / want_norm;
            worst_value = worst_value.max(diff);
        }
    }
    eprintln!(
        "gradients of {compared} parameters: worst relative norm difference {worst_norm:.2e}, worst first-64-values difference / norm {worst_value:.2e}; {zero_gradients} with a zero gradient on both sides (norm < {TINY:e})"
    );
    assert!(
        zero_gradients <= cfg.num_hidden_layers,
        "too many zero gradients"
    );
    assert_eq!(compared, vars.len(), "every zhishi parameter compared");
    assert!(worst_norm < 1e-3, "gradient norms differ by {worst_norm}");
    assert!(
        worst_value < 1e-4,
        "gradient values differ by {worst_value}"
    );
}
