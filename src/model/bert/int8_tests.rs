//! The int8 path ([`super::Kernels::FastInt8`]) of whole models against f32 on random weights.
use candle_core::Device;
use candle_nn::VarMap;

use super::*;
use crate::model::linear::Linear;

/// Cosine similarity of two equally long vectors.
pub(crate) fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

/// Overwrites every variable of `vm` with fixed pseudo-random values drawn from `seed`, so a
/// test's numbers are the same on every run (candle's CPU generator cannot be seeded): matrices
/// uniform in `±1/sqrt(fan_in)` (as candle initialises linear layers), embedding tables
/// `normal(0, 1)`, LayerNorm weights 1 and biases 0, other vectors uniform in `±0.1`.
pub(crate) fn fill_fixed(vm: &VarMap, seed: u64) {
    let mut rng = crate::model::Rng::new(seed);
    let vars = vm.data().lock().unwrap().clone();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    for name in names {
        let var = &vars[name];
        let n = var.elem_count();
        let dims = var.dims().to_vec();
        let values: Vec<f32> = if name.contains("LayerNorm") {
            let one = if name.ends_with("weight") { 1.0 } else { 0.0 };
            vec![one; n]
        } else if name.contains("embeddings") {
            (0..n).map(|_| rng.normal()).collect()
        } else {
            let bound = match dims.as_slice() {
                [_, fan_in] => 1.0 / (*fan_in as f32).sqrt(),
                _ => 0.1,
            };
            (0..n)
                .map(|_| (rng.next_f32() * 2.0 - 1.0) * bound)
                .collect()
        };
        var.set(&Tensor::from_vec(values, dims, &Device::Cpu).unwrap())
            .unwrap();
    }
}

/// A tiny BERT (H 64, 4 heads, 2 layers, I 256) with candle's random initialisation.
pub(crate) fn tiny_config(kernels: Kernels) -> BertConfig {
    BertConfig {
        vocab_size: 120,
        hidden_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 256,
        max_position_embeddings: 32,
        kernels,
        ..BertConfig::default()
    }
}

/// Ids `[2, 11]`, a padding mask (the second example has 8 real tokens) and a K-BERT-like
/// visible matrix (tokens 5..8 form a branch seen only by itself and token 4).
pub(crate) fn inputs() -> (Tensor, Tensor, Tensor) {
    let (b, l) = (2, 11);
    let ids: Vec<u32> = (0..b * l).map(|i| (i * 37 % 119 + 1) as u32).collect();
    let ids = Tensor::from_vec(ids, (b, l), &Device::Cpu).unwrap();
    let mut mask = vec![1u32; b * l];
    mask[l + 8..].fill(0);
    let mask = Tensor::from_vec(mask, (b, l), &Device::Cpu).unwrap();
    let mut vis = vec![1u8; l * l];
    for i in 0..l {
        for j in 5..8 {
            let seen = (5..8).contains(&i) || i == 4;
            vis[i * l + j] = u8::from(seen);
            vis[j * l + i] = u8::from(seen);
        }
    }
    let vis: Vec<u8> = vis.repeat(b);
    let vis = Tensor::from_vec(vis, (b, l, l), &Device::Cpu).unwrap();
    (ids, mask, vis)
}

fn hidden(model: &BertModel, visible: bool) -> Vec<Vec<Vec<f32>>> {
    let (ids, mask, vis) = inputs();
    let input = EncoderInput {
        attention_mask: Some(&mask),
        visible_matrix: visible.then_some(&vis),
        ..EncoderInput::new(&ids)
    };
    model.forward(&input).unwrap().to_vec3::<f32>().unwrap()
}

#[test]
fn a_tiny_int8_bert_is_close_to_f32_with_and_without_a_visible_matrix() {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    BertModel::load(vb.clone(), &tiny_config(Kernels::Fast)).unwrap(); // creates the variables
    fill_fixed(&vm, 5);
    let f32_model = BertModel::load(vb.clone(), &tiny_config(Kernels::Fast)).unwrap();
    let int8_model = BertModel::load(vb, &tiny_config(Kernels::FastInt8)).unwrap();
    let mut converted = f32_model.clone();
    converted.quantize().unwrap();
    assert_eq!(converted.config().kernels, Kernels::FastInt8);
    for visible in [false, true] {
        let want = hidden(&f32_model, visible);
        let got = hidden(&int8_model, visible);
        assert_eq!(
            got,
            hidden(&converted, visible),
            "quantize() = loading as int8"
        );
        assert_ne!(got, want, "int8 changes the numbers");
        let real = [11, 8];
        for (e, n) in real.into_iter().enumerate() {
            let mut pooled = (vec![0f32; 64], vec![0f32; 64]);
            for t in 0..n {
                let (g, w) = (&got[e][t], &want[e][t]);
                let c = cosine(g, w);
                assert!(c > 0.99, "token {e}/{t}: cosine {c}");
                pooled.0.iter_mut().zip(g).for_each(|(p, v)| *p += v);
                pooled.1.iter_mut().zip(w).for_each(|(p, v)| *p += v);
            }
            let c = cosine(&pooled.0, &pooled.1);
            assert!(c > 0.999, "example {e}: mean-pooled cosine {c}");
        }
    }
}

#[test]
fn the_visible_matrix_still_masks_under_int8() {
    // A visible matrix that lets every token see everything equals no visible matrix.
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let model = BertModel::load(vb, &tiny_config(Kernels::FastInt8)).unwrap();
    let (ids, mask, vis) = inputs();
    let all = vis.ones_like().unwrap();
    let run = |v: Option<&Tensor>| {
        let input = EncoderInput {
            attention_mask: Some(&mask),
            visible_matrix: v,
            ..EncoderInput::new(&ids)
        };
        model.forward(&input).unwrap().to_vec3::<f32>().unwrap()
    };
    assert_eq!(run(Some(&all)), run(None));
    assert_ne!(run(Some(&vis)), run(None));
}

#[test]
fn switching_kernels_back_restores_f32_exactly() {
    let vm = VarMap::new();
    let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
    let f32_model = BertModel::load(vb, &tiny_config(Kernels::Fast)).unwrap();
    let mut m = f32_model.clone();
    m.quantize().unwrap();
    m.set_kernels(Kernels::Differentiable).unwrap();
    let diff = hidden(&m, true);
    m.set_kernels(Kernels::Fast).unwrap();
    assert_eq!(hidden(&m, true), hidden(&f32_model, true));
    let close = diff
        .iter()
        .flatten()
        .zip(hidden(&f32_model, true).iter().flatten())
        .all(|(a, b)| cosine(a, b) > 0.9999);
    assert!(close, "candle ops and fused kernels agree");
}

#[test]
fn int8_layers_run_the_kernel_under_candle_ops_too() {
    let l = Linear::new(
        Tensor::new(&[[0.1f32, 0.2], [0.3, 0.4], [0.5, 0.6]], &Device::Cpu).unwrap(),
        Tensor::new(&[0.01f32, 0.02, 0.03], &Device::Cpu).unwrap(),
    )
    .prepare(Kernels::FastInt8)
    .unwrap();
    assert!(l.is_int8() && !l.is_bf16());
    let x = Tensor::new(&[[[1.1f32, -0.7]]], &Device::Cpu).unwrap();
    let y = l.forward(&x).unwrap();
    assert_eq!(y.dims(), &[1, 1, 3]);
    let fast = l.forward_fast(&[1.1, -0.7], None, Act::Identity).unwrap();
    assert_eq!(y.flatten_all().unwrap().to_vec1::<f32>().unwrap(), fast);
    let exact = 1.1f32 * 0.1 - 0.7 * 0.2 + 0.01;
    assert!((fast[0] - exact).abs() < 1e-2, "{} vs {exact}", fast[0]);
}
