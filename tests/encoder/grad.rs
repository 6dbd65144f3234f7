//! Training needs gradients through the whole encoder: with `Kernels::Differentiable` they
//! reach the word embeddings; the fused inference kernels stop them (which is why the switch
//! exists).
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use zhishi::model::{BertConfig, BertModel, EncoderInput, Kernels};

use crate::support::tiny::tiny_config;

fn tiny(kernels: Kernels) -> BertConfig {
    BertConfig {
        kernels,
        ..tiny_config(20, 12)
    }
}

/// Gradient of `sum(h²)` w.r.t. the word-embedding table, if any reaches it.
fn word_embedding_grad(kernels: Kernels) -> Option<Tensor> {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let model = BertModel::load(vb, &tiny(kernels)).unwrap();
    let ids = Tensor::new(&[[2u32, 5, 7, 3], [2, 9, 3, 0]], &dev).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1], [1, 1, 1, 0]], &dev).unwrap();
    let vis = Tensor::ones((2, 4, 4), DType::U32, &dev).unwrap();
    let input = EncoderInput {
        attention_mask: Some(&mask),
        visible_matrix: Some(&vis),
        ..EncoderInput::new(&ids)
    };
    let h = model.forward(&input).unwrap();
    let grads = h.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let table = varmap
        .data()
        .lock()
        .unwrap()
        .get("embeddings.word_embeddings.weight")
        .map(Var::as_tensor)
        .cloned()
        .unwrap();
    grads.get(&table).cloned()
}

#[test]
fn gradients_reach_the_word_embeddings_of_the_tokens_used() {
    let g = word_embedding_grad(Kernels::Differentiable).expect("no gradient");
    let row_norms: Vec<f32> = g.sqr().unwrap().sum(1).unwrap().to_vec1().unwrap();
    for used in [2, 3, 5, 7, 9] {
        assert!(row_norms[used] > 0.0, "token {used} got no gradient");
    }
    // Token 0 only pads the second example's last position; token 11 never occurs.
    assert_eq!(row_norms[11], 0.0);
}

#[test]
fn fused_kernels_do_not_propagate_gradients() {
    assert!(word_embedding_grad(Kernels::Fast).is_none());
}

/// Deterministic pseudo-random values in [-1, 1) (a 64-bit LCG), for weights and directions.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 52) as f64 - 1.0
        })
        .collect()
}

/// Autograd must compute the true gradient, not merely a non-zero one: for every parameter
/// the directional derivative from `backward` matches a central finite difference (f64).
#[test]
fn gradients_match_finite_differences_for_every_parameter() {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F64, &dev);
    let model = BertModel::load(vb, &tiny(Kernels::Differentiable)).unwrap();
    let mut vars: Vec<(String, Var)> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (_, v)) in vars.iter().enumerate() {
        // LayerNorm scales near 1, everything else near 0.
        let base = if v.dims().len() == 1 { 1.0 } else { 0.0 };
        let w: Vec<f64> = values(v.elem_count(), i as u64)
            .iter()
            .map(|x| base + 0.5 * x)
            .collect();
        v.set(&Tensor::from_vec(w, v.shape(), &dev).unwrap())
            .unwrap();
    }
    let ids = Tensor::new(&[[2u32, 5, 7, 3], [2, 9, 3, 0]], &dev).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1], [1, 1, 1, 0]], &dev).unwrap();
    let input = EncoderInput {
        attention_mask: Some(&mask),
        ..EncoderInput::new(&ids)
    };
    let target = Tensor::from_vec(values(2 * 4 * 16, 99), (2, 4, 16), &dev).unwrap();
    let loss = |m: &BertModel| -> Tensor {
        let h = m.forward(&input).unwrap();
        h.mul(&target).unwrap().sum_all().unwrap()
    };
    let grads = loss(&model).backward().unwrap();
    let mut checked = 0;
    for (i, (name, v)) in vars.iter().enumerate() {
        let d = Tensor::from_vec(values(v.elem_count(), 1000 + i as u64), v.shape(), &dev).unwrap();
        let analytic = grads
            .get(v.as_tensor())
            .map(|g| {
                g.mul(&d)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap()
            })
            .unwrap_or(0.0);
        let orig = v.as_tensor().copy().unwrap();
        let eps = 1e-5;
        let at = |sign: f64| {
            v.set(&(&orig + (&d * (sign * eps)).unwrap()).unwrap())
                .unwrap();
            loss(&model).to_scalar::<f64>().unwrap()
        };
        let numeric = (at(1.0) - at(-1.0)) / (2.0 * eps);
        v.set(&orig).unwrap();
        // Key biases cannot change a softmax over keys: both sides are ~0 there.
        if numeric.abs() < 1e-4 {
            assert!(
                analytic.abs() < 1e-4,
                "{name}: analytic {analytic}, numeric {numeric}"
            );
            continue;
        }
        let rel = (analytic - numeric).abs() / numeric.abs();
        assert!(
            rel < 1e-5,
            "{name}: analytic {analytic}, numeric {numeric} (rel {rel:.1e})"
        );
        checked += 1;
    }
    assert!(
        checked >= 30,
        "only {checked} parameters had a measurable gradient"
    );
}

/// Training-mode dropout acts inside the encoder (not only on its output) and is seeded;
/// the inference forward never drops anything.
#[test]
fn training_dropout_acts_inside_the_encoder_and_is_seeded() {
    use zhishi::model::Dropout;
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
    let model = BertModel::load(vb, &tiny(Kernels::Differentiable)).unwrap();
    let ids = Tensor::new(&[[2u32, 5, 7, 3]], &dev).unwrap();
    let input = EncoderInput::new(&ids);
    let plain = model.forward(&input).unwrap();
    let disabled = model.forward_train(&input, &Dropout::disabled()).unwrap();
    let diff = |a: &Tensor, b: &Tensor| -> f32 {
        a.sub(b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar()
            .unwrap()
    };
    assert_eq!(diff(&plain, &disabled), 0.0);
    let a = model.forward_train(&input, &Dropout::new(0.3, 7)).unwrap();
    let b = model.forward_train(&input, &Dropout::new(0.3, 7)).unwrap();
    assert_eq!(diff(&a, &b), 0.0, "same seed, same masks");
    assert!(diff(&a, &plain) > 1e-3, "dropout changed nothing");
    // The output is LayerNormed: dropout only on the output would leave zeros in it; dropout
    // inside leaves none (each row is renormalised after the last residual).
    let zeros: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    assert!(zeros.iter().all(|&x| x != 0.0));
}
