//! ALBERT as a BERT family member: parity with transformers' `AlbertModel` on tiny random
//! checkpoints (`tests/fixtures/albert`, made by its `make_fixture.py`; the ignored test makes a
//! fresh one with `REF_PYTHON` and compares live), every kernel set, both checkpoint formats,
//! K-BERT inputs, int8 files, errors, and training through shared variables.
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use serde_json::Value;
use zhishi::model::{
    load_bert, AlbertConfig, BertConfig, BertModel, Dropout, EncoderInput, Kernels, Rng,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/albert")
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ids(v: &Value) -> Tensor {
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

/// The model's `last_hidden_state` on one case of `cases.jsonl`.
fn run_case(model: &BertModel, case: &Value) -> Vec<Vec<Vec<f32>>> {
    let input_ids = ids(&case["input_ids"]);
    let opt = |k: &str| case.get(k).map(ids);
    let (types, positions, mask) = (
        opt("token_type_ids"),
        opt("position_ids"),
        opt("attention_mask"),
    );
    let vis = case.get("visible_matrix").map(visible);
    let input = EncoderInput {
        input_ids: &input_ids,
        token_type_ids: types.as_ref(),
        position_ids: positions.as_ref(),
        attention_mask: mask.as_ref(),
        visible_matrix: vis.as_ref(),
    };
    model.forward(&input).unwrap().to_vec3::<f32>().unwrap()
}

/// How far one case's hidden states are from transformers' over the real tokens.
#[derive(Debug, Clone, Copy)]
struct Diff {
    /// The largest absolute difference of one value.
    max_abs: f32,
    /// The smallest cosine between a token's two hidden states.
    min_cosine: f32,
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// (case, difference from transformers over the real tokens) for `model`, the checkpoint
/// `name` of the fixture in `root`.
fn max_diffs(root: &Path, name: &str, model: &BertModel) -> Vec<(String, Diff)> {
    let cases = lines(&root.join("cases.jsonl"));
    let expected = lines(&root.join("expected.jsonl"));
    let mut out = Vec::new();
    for want in expected.iter().filter(|w| w["model"] == name) {
        let case = cases
            .iter()
            .find(|c| c["name"] == want["case"])
            .expect("every expected case is in cases.jsonl");
        let got = run_case(model, case);
        let want: Vec<Vec<Vec<f32>>> =
            serde_json::from_value(want["last_hidden_state"].clone()).unwrap();
        let mut diff = Diff {
            max_abs: 0.0,
            min_cosine: 1.0,
        };
        for (g, w) in got.iter().zip(&want) {
            // `want` holds the real tokens of each example only.
            for (gt, wt) in g.iter().zip(w) {
                for (x, y) in gt.iter().zip(wt) {
                    diff.max_abs = diff.max_abs.max((x - y).abs());
                }
                diff.min_cosine = diff.min_cosine.min(cosine(gt, wt));
            }
        }
        out.push((case["name"].as_str().unwrap().to_string(), diff));
    }
    out
}

/// Loads checkpoint `name` of the fixture in `root` with `kernels` and checks every case
/// (see [`check_model`]).
fn assert_parity(root: &Path, name: &str, kernels: Kernels) {
    let model = load_bert(&root.join(name), &Device::Cpu, DType::F32, kernels).unwrap();
    check_model(root, name, &model, kernels);
}

/// Checks every case: differentiable ops and the fused f32 kernels agree with transformers to
/// [`F32_TOLERANCE`] in every value; bf16 and int8 change the products' arithmetic (see
/// docs/encode.md), so they are held, like BERT's int8 tests, to the direction of each
/// token's state (bf16 products: a few 1e-2 absolute on these unit-scale random weights).
fn check_model(root: &Path, name: &str, model: &BertModel, kernels: Kernels) {
    let diffs = max_diffs(root, name, model);
    let cases: Vec<&str> = diffs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(cases, ["padded", "positions", "visible"]);
    for (case, d) in diffs {
        eprintln!(
            "{name} {kernels:?} {case}: max abs diff {:.3e}, min cosine {:.6}",
            d.max_abs, d.min_cosine
        );
        let within = match kernels {
            Kernels::Differentiable | Kernels::Fast => d.max_abs <= F32_TOLERANCE,
            Kernels::FastBf16 => d.max_abs <= BF16_TOLERANCE && d.min_cosine >= 0.9999,
            Kernels::FastInt8 => d.min_cosine >= INT8_MIN_COSINE,
        };
        assert!(within, "{name} {kernels:?} case {case}: {d:?}");
    }
}

/// The f32 paths' largest absolute difference from transformers.
const F32_TOLERANCE: f32 = 1e-5;
/// bf16 products' largest absolute difference (as for BERT in encoder_parity.rs).
const BF16_TOLERANCE: f32 = 3e-2;
/// int8's smallest per-token cosine to transformers' states (as BERT's int8 tests ask).
const INT8_MIN_COSINE: f32 = 0.99;

#[test]
fn differentiable_ops_match_transformers_on_shared_groups() {
    assert_parity(&fixtures(), "tiny-albert", Kernels::Differentiable);
}

#[test]
fn fused_kernels_match_transformers_on_shared_groups() {
    assert_parity(&fixtures(), "tiny-albert", Kernels::Fast);
}

#[test]
fn a_pytorch_masked_lm_pickle_with_the_albert_prefix_loads_its_encoder() {
    for kernels in [Kernels::Differentiable, Kernels::Fast] {
        assert_parity(&fixtures(), "tiny-albert-bin", kernels);
    }
}

#[test]
fn bf16_and_int8_kernels_stay_near_transformers() {
    for name in ["tiny-albert", "tiny-albert-bin"] {
        assert_parity(&fixtures(), name, Kernels::FastBf16);
        assert_parity(&fixtures(), name, Kernels::FastInt8);
    }
}

#[test]
fn switching_kernels_after_loading_gives_the_same_numbers() {
    let dir = fixtures().join("tiny-albert");
    let mut model = load_bert(&dir, &Device::Cpu, DType::F32, Kernels::Differentiable).unwrap();
    model.set_kernels(Kernels::Fast).unwrap();
    check_model(&fixtures(), "tiny-albert", &model, Kernels::Fast);
    model.set_kernels(Kernels::Differentiable).unwrap();
    check_model(&fixtures(), "tiny-albert", &model, Kernels::Differentiable);
}

/// Copies the fixture checkpoint `name` into a temporary directory and edits its config.
fn edited_copy(name: &str, edit: impl FnOnce(&mut Value)) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixtures().join(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), tmp.path().join(entry.file_name())).unwrap();
    }
    let path = tmp.path().join("config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, config.to_string()).unwrap();
    tmp
}

#[test]
fn the_parity_depends_on_the_activation_and_the_visible_matrix() {
    // Exact GELU in place of `gelu_new` must miss the reference by far more than the
    // tolerance, or the parity would not be testing the activation.
    let erf = edited_copy("tiny-albert", |c| c["hidden_act"] = "gelu".into());
    let model = load_bert(erf.path(), &Device::Cpu, DType::F32, Kernels::Fast).unwrap();
    let worst = max_diffs(&fixtures(), "tiny-albert", &model)
        .into_iter()
        .map(|(_, d)| d.max_abs)
        .fold(0f32, f32::max);
    eprintln!("exact GELU in place of gelu_new: max abs diff {worst:.3e}");
    assert!(worst > 1e-4, "exact GELU is within {worst} of gelu_new");

    let model = load_bert(
        &fixtures().join("tiny-albert"),
        &Device::Cpu,
        DType::F32,
        Kernels::Fast,
    )
    .unwrap();
    let mut case = lines(&fixtures().join("cases.jsonl"))[2].clone();
    assert_eq!(case["name"], "visible");
    let with = run_case(&model, &case);
    case.as_object_mut().unwrap().remove("visible_matrix");
    let without = run_case(&model, &case);
    let diff = with
        .iter()
        .flatten()
        .flatten()
        .zip(without.iter().flatten().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff > 1e-2, "visible matrix had no effect ({diff})");
}

#[test]
fn the_config_is_read_as_albert_with_shared_groups() {
    let cfg = zhishi::model::load::read_config(&fixtures().join("tiny-albert")).unwrap();
    assert_eq!(cfg.embedding_size(), 16);
    assert_eq!(cfg.hidden_size, 32);
    assert_eq!(cfg.distinct_layers(), 2);
    assert_eq!(cfg.layer_schedule(), [0, 0, 1, 1]);
    assert_eq!(cfg.hidden_act, zhishi::model::HiddenAct::GeluNew);
}

#[test]
fn unsupported_layouts_name_the_config_and_what_is_expected() {
    let three = edited_copy("tiny-albert", |c| c["num_hidden_groups"] = 3.into());
    let e = load_bert(three.path(), &Device::Cpu, DType::F32, Kernels::Fast).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("config.json")
            && msg.contains("num_hidden_groups 3 is not supported with num_hidden_layers 4"),
        "{msg}"
    );
    let inner = edited_copy("tiny-albert", |c| c["inner_group_num"] = 2.into());
    let e = load_bert(inner.path(), &Device::Cpu, DType::F32, Kernels::Fast).unwrap_err();
    assert!(
        e.to_string().contains("inner_group_num 2 is not supported"),
        "{e}"
    );
    let ernie = zhishi::model::load_ernie(
        &fixtures().join("tiny-albert"),
        &Device::Cpu,
        DType::F32,
        Kernels::Fast,
    )
    .unwrap_err();
    assert!(ernie.to_string().contains("ALBERT"), "{ernie}");
}

#[test]
fn a_missing_or_misshaped_tensor_is_named_with_the_file() {
    let tmp = edited_copy("tiny-albert", |_| {});
    let weights = tmp.path().join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    tensors.remove("encoder.embedding_hidden_mapping_in.weight");
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let e = load_bert(tmp.path(), &Device::Cpu, DType::F32, Kernels::Fast).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: missing tensor encoder.embedding_hidden_mapping_in.weight (expected shape [32, 16])",
            weights.display()
        )
    );

    let wide = edited_copy("tiny-albert", |c| c["embedding_size"] = 8.into());
    let e = load_bert(wide.path(), &Device::Cpu, DType::F32, Kernels::Fast).unwrap_err();
    assert!(
        e.to_string().contains(
            "tensor embeddings.word_embeddings.weight has shape [64, 16], expected [64, 8]"
        ),
        "{e}"
    );
}

#[test]
fn a_quantised_albert_directory_runs_the_saved_integers() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("int8");
    let src = fixtures().join("tiny-albert");
    let report = zhishi::model::quantized::quantize_dir(&src, &out).unwrap();
    // Six dense layers in each of the two groups.
    assert_eq!(report.files[0].1.quantized_tensors, 12);
    let dynamic = load_bert(&src, &Device::Cpu, DType::F32, Kernels::FastInt8).unwrap();
    let saved = load_bert(&out, &Device::Cpu, DType::F32, Kernels::FastInt8).unwrap();
    for case in lines(&fixtures().join("cases.jsonl")) {
        assert_eq!(run_case(&dynamic, &case), run_case(&saved, &case));
    }
    check_model(&fixtures(), "tiny-albert", &saved, Kernels::FastInt8);
}

/// Regenerates a fresh random ALBERT with transformers (`make_fixture.py`, a new seed each run)
/// and compares live. Needs `REF_PYTHON` (the venv of `shared/reference/setup.sh`):
/// `REF_PYTHON=... cargo test --test encoder -- albert:: --ignored --nocapture`.
#[test]
#[ignore = "needs REF_PYTHON (python with torch + transformers)"]
fn a_fresh_random_checkpoint_matches_transformers_live() {
    let Some(python) = std::env::var_os("REF_PYTHON") else {
        eprintln!("skipped: REF_PYTHON is not set (python with torch + transformers)");
        return;
    };
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs() % 1_000_000);
    let tmp = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(python)
        .arg(fixtures().join("make_fixture.py"))
        .args(["--out".as_ref(), tmp.path().as_os_str()])
        .args(["--seed", &seed.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "make_fixture.py failed: {status}");
    eprintln!("seed {seed}");
    for name in ["tiny-albert", "tiny-albert-bin"] {
        for kernels in [Kernels::Differentiable, Kernels::Fast] {
            assert_parity(tmp.path(), name, kernels);
        }
        assert_parity(tmp.path(), name, Kernels::FastInt8);
    }
}

/// A tiny ALBERT config of `groups` groups over 4 layers, for training.
fn train_config(groups: usize) -> BertConfig {
    let mut cfg = AlbertConfig::parse(&format!(
        r#"{{"vocab_size":20,"embedding_size":6,"hidden_size":8,"num_hidden_layers":4,
            "num_hidden_groups":{groups},"num_attention_heads":2,"intermediate_size":16,
            "max_position_embeddings":12}}"#
    ))
    .unwrap();
    cfg.validate().unwrap();
    cfg.kernels = Kernels::Differentiable;
    cfg
}

fn vars(varmap: &VarMap) -> std::collections::HashMap<String, Var> {
    varmap.data().lock().unwrap().clone()
}

/// The name of layer `layer`'s copy of a shared-layer variable `name` (`encoder.layer.0.*`).
fn in_layer(name: &str, layer: usize) -> String {
    name.replacen("encoder.layer.0.", &format!("encoder.layer.{layer}."), 1)
}

fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f32>()
        .unwrap()
}

#[test]
fn training_keeps_one_set_of_variables_per_group_and_adds_up_its_gradients() {
    let dev = Device::Cpu;
    let shared_map = VarMap::new();
    let shared = BertModel::load(
        VarBuilder::from_varmap(&shared_map, DType::F32, &dev),
        &train_config(1),
    )
    .unwrap();
    let shared_vars = vars(&shared_map);
    // One layer's 16 tensors for four positions, plus 5 embedding and 2 projection tensors.
    assert_eq!(shared_vars.len(), 5 + 2 + 16);
    assert!(shared_vars.keys().all(|n| !n.contains("encoder.layer.1.")));
    let mut rng = Rng::new(3);
    let mut names: Vec<&String> = shared_vars.keys().collect();
    names.sort();
    for name in names {
        let var = &shared_vars[name];
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| {
                0.5 * rng.normal()
                    + if name.contains("LayerNorm.weight") {
                        1.0
                    } else {
                        0.0
                    }
            })
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), &dev).unwrap())
            .unwrap();
    }

    // The same weights, unshared: four groups, each a copy of the one layer.
    let copies_map = VarMap::new();
    let copies = BertModel::load(
        VarBuilder::from_varmap(&copies_map, DType::F32, &dev),
        &train_config(4),
    )
    .unwrap();
    let copies_vars = vars(&copies_map);
    assert_eq!(copies_vars.len(), 5 + 2 + 4 * 16);
    let fill_copies = |layers: &[usize]| {
        for (name, var) in &shared_vars {
            if name.starts_with("encoder.layer.0.") {
                for &l in layers {
                    copies_vars[&in_layer(name, l)]
                        .set(var.as_tensor())
                        .unwrap();
                }
            } else {
                copies_vars[name].set(var.as_tensor()).unwrap();
            }
        }
    };
    fill_copies(&[0, 1, 2, 3]);

    let input_ids = Tensor::new(&[[2u32, 7, 9, 11, 3], [2, 5, 3, 0, 0]], &dev).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &dev).unwrap();
    let input = EncoderInput {
        attention_mask: Some(&mask),
        ..EncoderInput::new(&input_ids)
    };
    let weights = Tensor::from_vec(
        (0..2 * 5 * 8)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) / 8.0)
            .collect::<Vec<_>>(),
        (2, 5, 8),
        &dev,
    )
    .unwrap();
    let loss = |m: &BertModel| {
        m.forward_train(&input, &Dropout::disabled())
            .unwrap()
            .mul(&weights)
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let (a, b) = (
        shared.forward(&input).unwrap(),
        copies.forward(&input).unwrap(),
    );
    assert!(max_abs(&a, &b) < 1e-5);

    // The shared variable's gradient is the sum of its four copies' gradients.
    let shared_grads = loss(&shared).backward().unwrap();
    let copies_grads = loss(&copies).backward().unwrap();
    for (name, var) in shared_vars
        .iter()
        .filter(|(n, _)| n.starts_with("encoder.layer.0."))
    {
        let g = shared_grads
            .get(var)
            .expect("every shared variable has a gradient");
        let parts = (0..4)
            .map(|l| {
                copies_grads
                    .get(&copies_vars[&in_layer(name, l)])
                    .unwrap()
                    .clone()
            })
            .reduce(|x, y| (x + y).unwrap())
            .unwrap();
        let scale = parts
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(scale > 0.0, "{name} has a zero gradient");
        assert!(
            max_abs(g, &parts) <= 1e-4 * scale.max(1.0),
            "{name}: shared gradient differs from the sum over positions"
        );
    }

    // One SGD step on the shared variables moves every position that runs them: the shared
    // model now equals the copies with all four layers stepped, not with only the first.
    let lr = 0.1;
    for var in shared_vars.values() {
        if let Some(g) = shared_grads.get(var) {
            var.set(&(var.as_tensor() - (g * lr).unwrap()).unwrap())
                .unwrap();
        }
    }
    let stepped = shared.forward(&input).unwrap();
    assert!(max_abs(&stepped, &a) > 1e-3, "the step changed nothing");
    fill_copies(&[0]);
    let first_only = copies.forward(&input).unwrap();
    assert!(max_abs(&stepped, &first_only) > 1e-3);
    fill_copies(&[0, 1, 2, 3]);
    let all = copies.forward(&input).unwrap();
    assert!(max_abs(&stepped, &all) < 1e-5);
}
