//! Each op against candle's own ops and autograd on the same inputs: values and gradients.
use candle_core::{Device, Tensor, Var, D};

use super::*;

/// Deterministic values in about [-3, 3] (candle's random tensors cannot be seeded).
fn fixed(shape: &[usize], salt: u32) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n as u32)
        .map(|i| {
            let h = (i.wrapping_mul(2_654_435_761) ^ salt.wrapping_mul(40_503)).wrapping_mul(97);
            (h % 6001) as f32 / 1000.0 - 3.0
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    a.sub(b)
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

/// Runs `ours` and `reference` on fresh variables made from `inputs`, weights the outputs by a
/// fixed tensor (so every output element gets a distinct gradient), and checks the values and
/// the gradient of every input.
fn check(
    inputs: &[Tensor],
    ours: impl Fn(&[Tensor]) -> candle_core::Result<Tensor>,
    reference: impl Fn(&[Tensor]) -> candle_core::Result<Tensor>,
    tol: f32,
) {
    let run = |f: &dyn Fn(&[Tensor]) -> candle_core::Result<Tensor>| {
        let vars: Vec<Var> = inputs
            .iter()
            .map(|t| Var::from_tensor(t).unwrap())
            .collect();
        let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let y = f(&ts).unwrap();
        let w = fixed(y.dims(), 7);
        let grads = y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
        let g: Vec<Tensor> = vars
            .iter()
            .map(|v| grads.get(v).expect("every input gets a gradient").clone())
            .collect();
        (y, g)
    };
    let (y1, g1) = run(&ours);
    let (y2, g2) = run(&reference);
    assert_eq!(y1.dims(), y2.dims());
    let d = max_abs_diff(&y1, &y2);
    assert!(d < tol, "values differ by {d}");
    for (i, (a, b)) in g1.iter().zip(&g2).enumerate() {
        assert_eq!(a.dims(), b.dims(), "gradient {i} shape");
        let d = max_abs_diff(a, b);
        assert!(d < tol, "gradient {i} differs by {d}");
    }
}

#[test]
fn layer_norm_matches_candle_ops_forward_and_backward() {
    let x = fixed(&[3, 5, 40], 1);
    let gamma = fixed(&[40], 2);
    let beta = fixed(&[40], 3);
    check(
        &[x, gamma, beta],
        |t| layer_norm(&t[0], &t[1], &t[2], 1e-12),
        |t| candle_nn::ops::layer_norm_slow(&t[0], &t[1], &t[2], 1e-12),
        2e-4,
    );
}

#[test]
fn softmax_matches_candle_ops_forward_and_backward() {
    check(
        &[fixed(&[2, 3, 7, 33], 4)],
        |t| softmax_last_dim(&t[0]),
        |t| candle_nn::ops::softmax(&t[0], D::Minus1),
        1e-5,
    );
}

#[test]
fn gelu_matches_candle_ops_forward_and_backward() {
    check(
        &[fixed(&[4, 1000], 5)],
        |t| gelu(&t[0]),
        |t| t[0].gelu_erf(),
        2e-6,
    );
}

#[test]
fn bias_add_matches_candle_ops_forward_and_backward() {
    check(
        &[fixed(&[3, 50, 24], 6), fixed(&[24], 8)],
        |t| add_bias(&t[0], &t[1]),
        |t| t[0].broadcast_add(&t[1]),
        1e-4,
    );
}

#[test]
fn strided_inputs_are_handled() {
    let x = fixed(&[6, 10], 9).t().unwrap();
    let ours = softmax_last_dim(&x).unwrap();
    let want = candle_nn::ops::softmax(&x, D::Minus1).unwrap();
    assert!(max_abs_diff(&ours, &want) < 1e-6);
}

#[test]
fn gradients_do_not_depend_on_the_number_of_threads() {
    // Many rows, so the parallel reductions split into several tasks.
    let x = fixed(&[300, 64], 10);
    let gamma = fixed(&[64], 11);
    let beta = fixed(&[64], 12);
    let grads = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let vars: Vec<Var> = [&x, &gamma, &beta]
                .iter()
                .map(|t| Var::from_tensor(t).unwrap())
                .collect();
            let y = layer_norm(
                vars[0].as_tensor(),
                vars[1].as_tensor(),
                vars[2].as_tensor(),
                1e-5,
            )
            .and_then(|y| add_bias(&y, vars[2].as_tensor()))
            .unwrap();
            let g = y
                .mul(&fixed(y.dims(), 13))
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            vars.iter()
                .map(|v| {
                    g.get(v)
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap()
                })
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(grads(1), grads(3), "bit for bit");
}

#[test]
fn gelu_tanh_matches_candle_ops_forward_and_backward() {
    // candle's `gelu` is the tanh approximation (transformers' `gelu_new`).
    check(
        &[fixed(&[4, 1000], 15)],
        |t| gelu_tanh(&t[0]),
        |t| t[0].gelu(),
        2e-6,
    );
}

#[test]
fn non_f32_input_falls_back_to_candle_ops() {
    let x = fixed(&[2, 8], 14)
        .to_dtype(candle_core::DType::F64)
        .unwrap();
    let ours = gelu(&x).unwrap();
    assert_eq!(ours.dtype(), candle_core::DType::F64);
    let want = x.gelu_erf().unwrap();
    assert!(
        ours.sub(&want)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
            < 1e-12
    );
}

/// Runs `$body` as is (baseline x86-64) and through the AVX2+FMA and AVX-512 wrappers that
/// `with_simd!` picks from (when the CPU has them), and checks that every tier gives the same bits.
#[cfg(target_arch = "x86_64")]
macro_rules! assert_same_on_every_tier {
    ($name:expr, $body:expr) => {{
        use crate::model::kernels::simd;
        let base = $body;
        if simd::has_avx2() {
            // SAFETY: the features were just detected.
            assert_eq!(unsafe { simd::avx2(|| $body) }, base, "{}: AVX2", $name);
        }
        if simd::has_avx512() {
            // SAFETY: the feature was just detected.
            assert_eq!(
                unsafe { simd::avx512(|| $body) },
                base,
                "{}: AVX-512",
                $name
            );
        }
    }};
}

/// The row kernels give the same bits on every SIMD tier (the fleet's Zen 3 machines run the
/// AVX2 one; this machine may pick AVX-512); widths not a multiple of the lanes test the tails.
/// The loops are vectorised in an optimised build (`cargo test --release --lib every_simd_tier`);
/// the test profile (opt-level 1) checks the same code unvectorised under each target.
#[cfg(target_arch = "x86_64")]
#[test]
fn every_simd_tier_computes_the_same_bits() {
    use crate::model::kernels::{gelu_slice, layer_norm_row};

    const W: usize = 389;
    let vec = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (x, dy, gamma) = (
        vec(fixed(&[3, W], 20)),
        vec(fixed(&[3, W], 21)),
        vec(fixed(&[W], 22)),
    );
    assert_same_on_every_tier!("gelu", {
        let mut y = x.clone();
        gelu_slice(&mut y);
        y
    });
    assert_same_on_every_tier!("gelu tanh", {
        let mut y = x.clone();
        crate::model::kernels::gelu_tanh_slice(&mut y);
        y
    });
    assert_same_on_every_tier!("gelu tanh grad", {
        let mut dx = vec![0f32; x.len()];
        gelu_tanh_grad_slice(&mut dx, &x, &dy);
        dx
    });
    assert_same_on_every_tier!("gelu grad", {
        let mut dx = vec![0f32; x.len()];
        gelu_grad_slice(&mut dx, &x, &dy);
        dx
    });
    assert_same_on_every_tier!("softmax", {
        let mut y = x.clone();
        y.chunks_exact_mut(W).for_each(softmax_row);
        y
    });
    assert_same_on_every_tier!("softmax grad", {
        let mut dx = vec![0f32; x.len()];
        for ((d, y), g) in dx
            .chunks_exact_mut(W)
            .zip(x.chunks_exact(W))
            .zip(dy.chunks_exact(W))
        {
            softmax_grad_row(d, y, g);
        }
        dx
    });
    assert_same_on_every_tier!("layer norm", {
        let mut y = x.clone();
        y.chunks_exact_mut(W)
            .for_each(|r| layer_norm_row(r, &gamma, &gamma, 1e-5));
        y
    });
    assert_same_on_every_tier!("layer norm grad", {
        let (mut dx, mut dg, mut db) = (vec![0f32; x.len()], vec![0f32; W], vec![0f32; W]);
        for ((d, x), dy) in dx
            .chunks_exact_mut(W)
            .zip(x.chunks_exact(W))
            .zip(dy.chunks_exact(W))
        {
            layer_norm_grad_row(d, x, dy, &gamma, 1e-5, &mut dg, &mut db);
        }
        [dx, dg, db].concat()
    });
}
