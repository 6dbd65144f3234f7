//! The bf16 inference path (`Kernels::FastBf16`) and the vectorised `exp` of the fused
//! softmax: the bf16 GEMM against references on the same bf16-rounded inputs (tight) and on
//! exact f32 inputs (loose), odd shapes, the fused bias/residual/GELU epilogue, and a whole
//! model in bf16 against f32.
//!
//! The GEMM tests need AVX512-BF16; on other CPUs they check that the kernel reports itself
//! unavailable and that `FastBf16` models run the f32 path instead (bit-identical to `Fast`).
//!
//! `bf16_accuracy_on_msra_sentences` (ignored: needs m3e-small in `M3E_DIR`) measures the
//! error of bf16 on real Chinese sentences; see the README's encoder section.
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use zhishi::model::kernels::bf16::{self, round_bf16, PackedBf16};
use zhishi::model::kernels::{self, Act};
use zhishi::model::{BertConfig, BertModel, EncoderInput, Kernels};

use crate::support::tiny::tiny_config;

/// Deterministic values in about [-1, 1] (an LCG; no `rand` dependency needed).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// `x · wᵀ + bias (+ residual)` in f64 over `x`, `w` as given, with `sum |x_i w_i|` per entry
/// (the scale of the rounding error).
fn reference(x: &[f32], w: &[f32], bias: &[f32], residual: Option<&[f32]>) -> (Vec<f64>, Vec<f64>) {
    let out = bias.len();
    let k = w.len() / out;
    let rows = x.len() / k;
    let mut y = Vec::with_capacity(rows * out);
    let mut scale = Vec::with_capacity(rows * out);
    for r in 0..rows {
        for c in 0..out {
            let terms = (0..k).map(|i| f64::from(x[r * k + i]) * f64::from(w[c * k + i]));
            let (sum, abs) = terms.fold((0.0, 0.0), |(s, a), t| (s + t, a + t.abs()));
            let res = residual.map_or(0.0, |res| f64::from(res[r * out + c]));
            y.push(sum + f64::from(bias[c]) + res);
            scale.push(abs);
        }
    }
    (y, scale)
}

fn rounded(xs: &[f32]) -> Vec<f32> {
    xs.iter().copied().map(round_bf16).collect()
}

fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + candle_core::cpu::erf::erf_f64(x / std::f64::consts::SQRT_2))
}

/// Odd shapes: rows not a multiple of the 12-row block, columns not a multiple of 16 (and an
/// odd number of 16-column panels), odd k, and k longer than one cache block (2 x 128 pairs).
const SHAPES: [(usize, usize, usize); 6] = [
    (1, 1, 1),
    (13, 17, 7),
    (12, 32, 64),
    (25, 40, 300),
    (7, 48, 513),
    (30, 3, 2),
];

#[test]
fn bf16_gemm_matches_f32_arithmetic_on_the_same_rounded_inputs() {
    if !bf16::available() {
        assert!(PackedBf16::new(&[1.0], 1).is_none());
        return;
    }
    for (seed, &(rows, out, k)) in SHAPES.iter().enumerate() {
        let seed = seed as u64;
        let (x, w, bias) = (
            values(rows * k, seed),
            values(out * k, seed + 100),
            values(out, seed + 200),
        );
        let packed = PackedBf16::new(&w, out).expect("bf16 CPU");
        let got = kernels::linear_bf16(&x, &packed, &bias, None, Act::Identity);
        let (want, scale) = reference(&rounded(&x), &rounded(&w), &bias, None);
        assert_eq!(got.len(), rows * out);
        for (i, ((g, w), s)) in got.iter().zip(&want).zip(&scale).enumerate() {
            // Exact products of bf16 values summed in f32: only the f32 additions round.
            let tol = 1e-6 * (s + 1.0) * (k as f64).sqrt();
            assert!(
                (f64::from(*g) - w).abs() <= tol,
                "shape {rows}x{out}x{k} entry {i}: {g} vs {w} (tol {tol:e})"
            );
        }
    }
}

#[test]
fn bf16_gemm_is_within_bf16_rounding_of_exact_f32() {
    if !bf16::available() {
        return;
    }
    for (seed, &(rows, out, k)) in SHAPES.iter().enumerate() {
        let seed = seed as u64 + 7;
        let (x, w, bias) = (
            values(rows * k, seed),
            values(out * k, seed + 100),
            values(out, seed + 200),
        );
        let packed = PackedBf16::new(&w, out).expect("bf16 CPU");
        let got = kernels::linear_bf16(&x, &packed, &bias, None, Act::Identity);
        let (want, scale) = reference(&x, &w, &bias, None);
        let mut max_rel = 0f64;
        for ((g, w), s) in got.iter().zip(&want).zip(&scale) {
            // bf16 keeps 8 significant bits, so each factor is off by at most 2^-8 relative
            // and each product by about 2^-7: the bound is 2^-7 of the sum of |products|
            // (typically the error is far below, as rounding errors cancel).
            let err = (f64::from(*g) - w).abs();
            assert!(err <= s / 128.0 + 1e-6, "{g} vs {w}, sum |x w| = {s}");
            max_rel = max_rel.max(err / (s + 1e-12));
        }
        assert!(
            max_rel > 0.0 || k == 1,
            "bf16 rounding left no trace: not bf16?"
        );
    }
}

#[test]
fn bias_residual_and_gelu_are_fused_like_the_f32_linear() {
    if !bf16::available() {
        return;
    }
    let (rows, out, k) = (14, 33, 19);
    let (x, w, bias, res) = (
        values(rows * k, 1),
        values(out * k, 2),
        values(out, 3),
        values(rows * out, 4),
    );
    let packed = PackedBf16::new(&w, out).expect("bf16 CPU");
    let (want, scale) = reference(&rounded(&x), &rounded(&w), &bias, Some(&res));
    let with_res = kernels::linear_bf16(&x, &packed, &bias, Some(&res), Act::Identity);
    let with_gelu = kernels::linear_bf16(&x, &packed, &bias, Some(&res), Act::Gelu);
    let with_relu = kernels::linear_bf16(&x, &packed, &bias, None, Act::Relu);
    let (plain, _) = reference(&rounded(&x), &rounded(&w), &bias, None);
    for i in 0..rows * out {
        let tol = 1e-5 * (scale[i] + 1.0);
        assert!((f64::from(with_res[i]) - want[i]).abs() <= tol);
        assert!((f64::from(with_gelu[i]) - gelu(want[i])).abs() <= tol);
        assert!((f64::from(with_relu[i]) - plain[i].max(0.0)).abs() <= tol);
    }
}

/// The tiny encoder made wider, with widths that are not multiples of the GEMM's blocks.
fn tiny(kernels: Kernels) -> BertConfig {
    BertConfig {
        hidden_size: 48,
        num_attention_heads: 3,
        intermediate_size: 80,
        kernels,
        ..tiny_config(40, 16)
    }
}

/// `last_hidden_state` of the same random weights under each kernel set, for a padded batch
/// with a visible matrix.
fn hidden_states(kernel_sets: &[Kernels]) -> Vec<Vec<f32>> {
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    // Creates the weights once; every model below reads the same ones.
    BertModel::load(
        VarBuilder::from_varmap(&varmap, DType::F32, &dev),
        &tiny(Kernels::Differentiable),
    )
    .unwrap();
    let ids = Tensor::new(&[[2u32, 15, 7, 31, 9, 3, 0], [2, 9, 21, 3, 0, 0, 0]], &dev).unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0, 0]], &dev).unwrap();
    let mut vis = vec![1u32; 2 * 7 * 7];
    vis[3] = 0; // token 0 of example 0 does not see token 3
    vis[3 * 7] = 0;
    let vis = Tensor::from_vec(vis, (2, 7, 7), &dev).unwrap();
    let input = EncoderInput {
        attention_mask: Some(&mask),
        visible_matrix: Some(&vis),
        ..EncoderInput::new(&ids)
    };
    kernel_sets
        .iter()
        .map(|&k| {
            let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
            let model = BertModel::load(vb, &tiny(k)).unwrap();
            let h = model.forward(&input).unwrap();
            h.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        })
        .collect()
}

#[test]
fn a_whole_model_in_bf16_stays_close_to_f32() {
    let hs = hidden_states(&[Kernels::Fast, Kernels::FastBf16, Kernels::Differentiable]);
    let (f32_fast, bf16, exact) = (&hs[0], &hs[1], &hs[2]);
    let max_f32 = f32_fast
        .iter()
        .zip(exact)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max_f32 < 1e-4, "fused f32 vs candle ops: {max_f32}");
    let max_bf16 = bf16
        .iter()
        .zip(f32_fast)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    let dot: f32 = bf16.iter().zip(f32_fast).map(|(a, b)| a * b).sum();
    let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
    let cosine = dot / (norm(bf16) * norm(f32_fast));
    if bf16::available() {
        // LayerNorm'd outputs of unit scale: bf16 keeps ~3 significant digits.
        assert!(max_bf16 > 0.0, "bf16 path did not run");
        assert!(max_bf16 < 0.1, "bf16 vs f32: max abs diff {max_bf16}");
        assert!(cosine > 0.999, "bf16 vs f32: cosine {cosine}");
    } else {
        assert_eq!(
            max_bf16, 0.0,
            "without AVX512-BF16, FastBf16 must be the f32 path"
        );
    }
}

#[test]
fn vectorised_exp_matches_std_exp_to_a_few_ulps() {
    let mut worst = 0f32;
    // Up to e^88, where it saturates (softmax only ever takes x <= 0).
    for i in -87_000..88_000 {
        for frac in [0.0f32, 0.123, 0.5, 0.777] {
            let x = i as f32 / 1000.0 + frac / 1000.0;
            let (got, want) = (kernels::exp(x), x.exp());
            let rel = ((got - want) / want).abs();
            worst = worst.max(rel);
            assert!(rel < 3e-7, "exp({x}) = {got}, want {want} (rel {rel:e})");
        }
    }
    assert!(
        worst > 0.0,
        "identical to std everywhere: the test compares nothing"
    );
}

#[test]
fn vectorised_exp_of_masked_scores_is_zero_or_below_the_smallest_normal() {
    for x in [
        f32::NEG_INFINITY,
        -1e30,
        -10_000.0,
        -10_000.0 - 3.5,
        -104.0,
        -88.0,
    ] {
        let got = kernels::exp(x);
        assert!(got >= 0.0, "exp({x}) = {got}");
        assert!(
            (got - x.exp()).abs() <= f32::MIN_POSITIVE,
            "exp({x}) = {got}"
        );
    }
    assert_eq!(kernels::exp(0.0), 1.0);
}

/// Real sentences of the MSRA NER test set (one character per line, blank line between
/// sentences), the first `n` of 10 to 120 characters.
fn msra_sentences(n: usize) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/ner/msra/msra_sighan2006_test.bmes");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines().chain(std::iter::once("")) {
        match line.split_whitespace().next() {
            Some(ch) => cur.push_str(ch),
            None => {
                let len = cur.chars().count();
                if (10..=120).contains(&len) {
                    out.push(std::mem::take(&mut cur));
                } else {
                    cur.clear();
                }
            }
        }
        if out.len() == n {
            break;
        }
    }
    out
}

/// bf16 vs f32 on m3e-small over 320 real sentences: max abs diff and mean cosine of
/// `last_hidden_state` (real tokens) and of the mean-pooled sentence embedding. Prints one
/// JSON line. Run: `M3E_DIR=/work/models/m3e-small cargo test --release --test encoder --
/// bf16:: --ignored --nocapture`.
#[test]
#[ignore]
fn bf16_accuracy_on_msra_sentences() {
    use zhishi::model::{load_bert, BertTokenizer};
    let dir = std::path::PathBuf::from(std::env::var("M3E_DIR").expect("set M3E_DIR"));
    assert!(bf16::available(), "this CPU has no AVX512-BF16");
    let tok = BertTokenizer::from_dir(&dir).unwrap();
    let f32m = load_bert(&dir, &Device::Cpu, DType::F32, Kernels::Fast).unwrap();
    let bf16m = load_bert(&dir, &Device::Cpu, DType::F32, Kernels::FastBf16).unwrap();
    let sentences = msra_sentences(320);
    assert_eq!(sentences.len(), 320);
    let (mut max_tok, mut sum_cos_tok, mut n_tok) = (0f32, 0f64, 0usize);
    let (mut max_pool, mut sum_cos_pool, mut min_cos_pool) = (0f32, 0f64, 1f64);
    let cosine = |a: &[f32], b: &[f32]| -> f64 {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum();
        let n = |v: &[f32]| v.iter().map(|x| f64::from(x * x)).sum::<f64>().sqrt();
        dot / (n(a) * n(b))
    };
    for batch in sentences.chunks(16) {
        let enc: Vec<Vec<u32>> = batch.iter().map(|s| tok.encode(s).unwrap().ids).collect();
        let l = enc.iter().map(Vec::len).max().unwrap();
        let mut ids = vec![0u32; batch.len() * l];
        let mut mask = vec![0u32; batch.len() * l];
        for (b, e) in enc.iter().enumerate() {
            ids[b * l..b * l + e.len()].copy_from_slice(e);
            mask[b * l..b * l + e.len()].fill(1);
        }
        let ids = Tensor::from_vec(ids, (batch.len(), l), &Device::Cpu).unwrap();
        let mask_t = Tensor::from_vec(mask.clone(), (batch.len(), l), &Device::Cpu).unwrap();
        let input = EncoderInput {
            attention_mask: Some(&mask_t),
            ..EncoderInput::new(&ids)
        };
        let a = f32m.forward(&input).unwrap().to_vec3::<f32>().unwrap();
        let b = bf16m.forward(&input).unwrap().to_vec3::<f32>().unwrap();
        for (s, e) in enc.iter().enumerate() {
            let h = a[s][0].len();
            let (mut pa, mut pb) = (vec![0f32; h], vec![0f32; h]);
            for t in 0..e.len() {
                let (x, y) = (&a[s][t], &b[s][t]);
                for i in 0..h {
                    max_tok = max_tok.max((x[i] - y[i]).abs());
                    pa[i] += x[i] / e.len() as f32;
                    pb[i] += y[i] / e.len() as f32;
                }
                sum_cos_tok += cosine(x, y);
                n_tok += 1;
            }
            for i in 0..h {
                max_pool = max_pool.max((pa[i] - pb[i]).abs());
            }
            let c = cosine(&pa, &pb);
            sum_cos_pool += c;
            min_cos_pool = min_cos_pool.min(c);
        }
    }
    let n = sentences.len() as f64;
    println!(
        "{}",
        serde_json::json!({
            "sentences": sentences.len(), "tokens": n_tok,
            "last_hidden_state": {"max_abs_diff": max_tok, "mean_cosine": sum_cos_tok / n_tok as f64},
            "mean_pooled": {"max_abs_diff": max_pool, "mean_cosine": sum_cos_pool / n,
                            "min_cosine": min_cos_pool},
        })
    );
    assert!(sum_cos_pool / n > 0.999, "bf16 sentence embeddings drift");
}
