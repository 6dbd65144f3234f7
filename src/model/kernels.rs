//! Fused CPU kernels for inference (`Kernels::Fast`, `Kernels::FastBf16`, `Kernels::FastInt8`):
//! bias-and-residual GEMM (f32 via the `gemm` crate, bf16 via [`bf16`] or int8 via [`int8`]),
//! GELU, LayerNorm and whole-head attention with the mask and softmax fused.
//!
//! These run on plain `f32` slices borrowed from candle tensors, so a layer makes no copies
//! between ops. None has a backward pass; [`grad`] wraps the element-wise ones in candle custom
//! ops that have one, for training. The element-wise loops (softmax, GELU, LayerNorm) are
//! branch-free with explicit 16-lane partial sums and run compiled for AVX-512, else AVX2 with
//! FMA, when the CPU has it (`with_simd!`, chosen at run time): the crate itself targets
//! baseline x86-64. The fixed lane order makes every tier give the same numbers.
//!
//! Where time goes (m3e-small, batch 8 x 128, 1 thread; `perf record` CPU samples of
//! `zhishi bench encoder-run`, which do not depend on the machine's load):
//! - f32: the dense GEMMs and the per-head attention GEMMs (`gemm` crate: micro-kernel 78%,
//!   its packing 11%) are ~90%; softmax 1.6% (was the scalar `exp`: before the vectorised
//!   [`exp`], attention was ~25% of the wall time), GELU 1.1%, LayerNorm 0.5%, copies ~2%.
//!   The dense GEMMs run near the f32 FMA peak, like PyTorch's MKL: f32 alone is ~1.1x PyTorch.
//! - bf16: the bf16 dense GEMMs 68% (~70% of the `VDPBF16PS` peak), attention ~11% (f32 `gemm`
//!   8%, softmax 2.7%), rounding activations to bf16 2%, GELU 1.7%, LayerNorm 0.7%, buffer
//!   allocation and copies ~5%. 1.5-2.1x PyTorch on 1 thread (README, "Encoder speed").
//! - int8 ([`int8`], AVX512-VNNI): the int8 micro-kernel 52%, its epilogue (dequantise, bias,
//!   residual, GELU: [`int8`]'s `write_row`) 10%, quantising activations 5%, attention ~20%
//!   (f32 `gemm` 13%, softmax 7%), LayerNorm 1.4%, packing at load 1%. 2.8x f32 and 5.6x
//!   PyTorch on 1 thread (benches/RESULTS.md).
//!
//! The attention GEMMs stay f32 (and single-threaded per (example, head) task) in both modes:
//! they are ~4% of the FLOPs; bf16 there would save at most a few percent.
use candle_core::{DType, Device, Storage, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

pub mod batched;
pub mod bf16;
pub mod int8;

use bf16::PackedBf16;
use int8::PackedInt8;

/// Whether the fused kernels can run on this tensor (f32 on the CPU).
pub fn supported(t: &Tensor) -> bool {
    matches!(t.device(), Device::Cpu) && t.dtype() == DType::F32
}

/// Calls `f` with the tensor's contiguous `f32` data (copies only if the layout is strided).
pub fn with_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("fused kernels need a CPU tensor");
    };
    let data = cpu.as_slice::<f32>()?;
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("fused kernels need a contiguous tensor");
    };
    Ok(f(&data[start..end]))
}

/// GEMM parallelism for a large product: every thread of the current rayon pool.
fn parallelism() -> Parallelism {
    match rayon::current_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// `dst[rows, out] += x[rows, k] · wᵀ` where `w` is `[out, k]` (PyTorch's layout), all row-major.
fn gemm_acc(dst: &mut [f32], x: &[f32], w: &[f32], rows: usize, k: usize, out: usize) {
    assert_eq!(dst.len(), rows * out);
    assert_eq!(x.len(), rows * k);
    assert_eq!(w.len(), out * k);
    // Safety: the three slices have exactly the sizes described by the strides above.
    unsafe {
        gemm::gemm(
            rows,
            out,
            k,
            dst.as_mut_ptr(),
            1,
            out as isize,
            true,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism(),
        )
    }
}

/// Activation applied after a dense layer's bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// None.
    Identity,
    /// Exact (erf) GELU.
    Gelu,
    /// GELU's tanh approximation (`gelu_new`, ALBERT's).
    GeluTanh,
    /// ReLU.
    Relu,
}

impl Act {
    /// The activation that runs `hidden_act` after a dense layer.
    pub fn of(act: super::config::HiddenAct) -> Self {
        match act {
            super::config::HiddenAct::Gelu => Act::Gelu,
            super::config::HiddenAct::GeluNew => Act::GeluTanh,
            super::config::HiddenAct::Relu => Act::Relu,
        }
    }
}

/// `act(x · wᵀ + bias + residual)` for row-major `x [rows, k]`, `w [out, k]`, `bias [out]` and an
/// optional `residual [rows, out]`; the bias and residual are written first and the GEMM
/// accumulates onto them, so neither costs a separate pass.
pub fn linear(x: &[f32], w: &[f32], bias: &[f32], residual: Option<&[f32]>, act: Act) -> Vec<f32> {
    let out = bias.len();
    let k = w.len() / out;
    let rows = x.len() / k;
    fused_linear(rows, bias, residual, act, |dst| {
        gemm_acc(dst, x, w, rows, k, out)
    })
}

/// [`linear`] with the weight pre-packed in bf16 ([`PackedBf16`]): `x` is rounded to bf16,
/// products accumulate in f32; bias, residual and activation as in [`linear`].
pub fn linear_bf16(
    x: &[f32],
    w: &PackedBf16,
    bias: &[f32],
    residual: Option<&[f32]>,
    act: Act,
) -> Vec<f32> {
    assert_eq!(w.out(), bias.len());
    let rows = x.len() / w.k();
    fused_linear(rows, bias, residual, act, |dst| w.matmul_acc(dst, x))
}

/// [`linear`] with the weight quantised to int8 ([`PackedInt8`]): `x` is quantised per row,
/// products accumulate in i32 and are dequantised with bias, residual and activation in one
/// pass over the output ([`PackedInt8::linear`]).
pub fn linear_int8(
    x: &[f32],
    w: &PackedInt8,
    bias: &[f32],
    residual: Option<&[f32]>,
    act: Act,
) -> Vec<f32> {
    w.linear(x, bias, residual, act)
}

/// Writes `bias + residual` into a fresh `[rows, out]` buffer, lets `gemm` accumulate the
/// product onto it, then applies `act`.
fn fused_linear(
    rows: usize,
    bias: &[f32],
    residual: Option<&[f32]>,
    act: Act,
    gemm: impl FnOnce(&mut [f32]),
) -> Vec<f32> {
    let out = bias.len();
    let mut dst = Vec::with_capacity(rows * out);
    match residual {
        Some(r) => {
            for row in r.chunks_exact(out) {
                dst.extend(row.iter().zip(bias).map(|(a, b)| a + b));
            }
        }
        None => {
            for _ in 0..rows {
                dst.extend_from_slice(bias);
            }
        }
    }
    gemm(&mut dst);
    match act {
        Act::Identity => {}
        Act::Gelu => dst.par_chunks_mut(1 << 14).for_each(gelu_in_place),
        Act::GeluTanh => dst.par_chunks_mut(1 << 14).for_each(gelu_tanh_in_place),
        Act::Relu => dst.iter_mut().for_each(|v| *v = v.max(0.0)),
    }
    dst
}

/// The error function, as a rational approximation accurate to about 2e-7 absolute
/// (the coefficients of Eigen's `generic_fast_erf_float`). Branch-free, so loops over it
/// vectorise; candle's scalar `erf` made GELU a tenth of the forward pass.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_6e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329_2e-3;
    q = q * x2 + -1.426_473_9e-2;
    x * p / q
}

/// `e^x`, branch-free so loops over it vectorise (Cephes' `expf`: `x = n ln 2 + r` with
/// `|r| <= ln 2 / 2`, a degree-7 polynomial for `e^r`, and `2^n` built in the exponent bits).
/// Relative error below 3e-7 over `[-87.3, 88]`; below that (including `-inf`, the masked
/// attention scores) it returns 0 where `f32::exp` returns 0 or a subnormal under 1.2e-38;
/// above 88 it saturates at `e^88`.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOW: f32 = -87.336_55;
    // 1.5 * 2^23: adding it rounds to an integer held in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    let xc = x.clamp(LOW, 88.0);
    let t = xc * std::f32::consts::LOG2_E + SHIFTER;
    let n = t - SHIFTER;
    let r = xc - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    let scale = f32::from_bits(
        (t.to_bits().wrapping_sub(SHIFTER.to_bits()) as i32 + 127).wrapping_shl(23) as u32,
    );
    if x < LOW {
        0.0
    } else {
        y * scale
    }
}

/// The SIMD tiers the element-wise loops are compiled for: each wrapper runs a closure with the
/// tier's target features, so the loops inlined into it vectorise for that tier.
#[cfg(target_arch = "x86_64")]
mod simd {
    /// Runs `f` compiled for AVX-512.
    ///
    /// # Safety
    /// The CPU must have `avx512f`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    /// Runs `f` compiled for AVX2 with FMA.
    ///
    /// # Safety
    /// The CPU must have `avx2` and `fma`.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    /// Whether the CPU has AVX-512.
    pub(super) fn has_avx512() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }

    /// Whether the CPU has AVX2 and FMA.
    pub(super) fn has_avx2() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
}

/// Runs `$body` compiled for AVX-512 when the CPU has it, else for AVX2 with FMA, else as is
/// (the crate is built for baseline x86-64, where these loops vectorise only to SSE2). The
/// loops keep explicit lane accumulators, so each tier computes the same sums in the same order.
macro_rules! with_simd {
    ($body:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if $crate::model::kernels::simd::has_avx512() {
                // Safety: the feature was just detected.
                unsafe { $crate::model::kernels::simd::avx512(|| $body) }
            } else if $crate::model::kernels::simd::has_avx2() {
                // Safety: the features were just detected.
                unsafe { $crate::model::kernels::simd::avx2(|| $body) }
            } else {
                $body
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $body
        }
    }};
}

pub mod grad;

pub mod attention;

/// Exact (erf) GELU in place.
fn gelu_in_place(xs: &mut [f32]) {
    with_simd!(gelu_slice(xs))
}

#[inline(always)]
fn gelu_slice(xs: &mut [f32]) {
    for v in xs {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// GELU's tanh approximation in place.
fn gelu_tanh_in_place(xs: &mut [f32]) {
    with_simd!(gelu_tanh_slice(xs))
}

/// `√(2/π)`.
const SQRT_2_OVER_PI: f32 = 0.797_884_6;
/// The cubic coefficient of GELU's tanh approximation.
const GELU_TANH_CUBIC: f32 = 0.044_715;

/// GELU's tanh approximation (transformers' `gelu_new`), `0.5 x (1 + tanh(u))` with
/// `u = √(2/π) (x + 0.044715 x³)`, written as `x / (1 + e^(-2u))` (the same function) so that it
/// is branch-free with the vectorised [`exp`].
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    let u = SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x);
    x / (1.0 + exp(-2.0 * u))
}

#[inline(always)]
fn gelu_tanh_slice(xs: &mut [f32]) {
    for v in xs {
        *v = gelu_tanh(*v);
    }
}

/// LayerNorm over rows of `width`, in place: `(x - mean) / sqrt(var + eps) * gamma + beta`.
pub fn layer_norm_in_place(xs: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    xs.par_chunks_mut(width * 64).for_each(|block| {
        for row in block.chunks_exact_mut(width) {
            with_simd!(layer_norm_row(row, gamma, beta, eps));
        }
    });
}

/// Sum of `xs` in [`LANES`] partial sums, so the loop vectorises.
#[inline(always)]
fn lane_sum(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut sums = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| f(v)).sum();
    for c in chunks {
        for (s, &v) in sums.iter_mut().zip(c) {
            *s += f(v);
        }
    }
    sums.iter().sum::<f32>() + tail
}

#[inline(always)]
fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = row.len() as f32;
    let mean = lane_sum(row, |v| v) / width;
    let var = lane_sum(row, |v| (v - mean) * (v - mean)) / width;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

/// Shapes for [`attention`].
#[derive(Debug, Clone, Copy)]
pub struct AttnShape {
    /// Batch size.
    pub batch: usize,
    /// Sequence length.
    pub len: usize,
    /// Number of heads.
    pub heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// Rows of the additive bias per example: 1 (padding only) or `len` (visible matrix).
    pub bias_rows: usize,
}

/// Multi-head scaled dot-product attention over a fused `qkv [batch, len, 3 * hidden]`
/// (query, key and value side by side in each row) with an additive `bias
/// [batch, bias_rows, len]`; returns the context `[batch, len, hidden]`, heads already merged.
///
/// One task per (example, head), run on the rayon pool with single-threaded GEMMs: these
/// products are small (128 x 64 x 128 for m3e-small), and splitting each over threads cost
/// more than it saved. Scores, bias and softmax stay in one per-task buffer.
pub fn attention(qkv: &[f32], bias: &[f32], s: AttnShape) -> Vec<f32> {
    let hidden = s.heads * s.head_dim;
    let (l, d) = (s.len, s.head_dim);
    let row = 3 * hidden;
    assert_eq!(qkv.len(), s.batch * l * row);
    assert_eq!(bias.len(), s.batch * s.bias_rows * l);
    let mut ctx = vec![0f32; s.batch * l * hidden];
    let scale = 1.0 / (d as f32).sqrt();
    let ctx_ptr = SendPtr(ctx.as_mut_ptr());
    (0..s.batch * s.heads).into_par_iter().for_each_init(
        || vec![0f32; l * l],
        |scores, task| {
            let (b, h) = (task / s.heads, task % s.heads);
            let base = b * l * row;
            let q = qkv[base + h * d..].as_ptr();
            let k = qkv[base + hidden + h * d..].as_ptr();
            let v = qkv[base + 2 * hidden + h * d..].as_ptr();
            // Safety: q/k/v are read with row stride `row` over `l` rows of `d` columns, all
            // inside this example's block of `qkv`; `scores` is l x l.
            unsafe {
                gemm::gemm(
                    l,
                    l,
                    d,
                    scores.as_mut_ptr(),
                    1,
                    l as isize,
                    false,
                    q,
                    1,
                    row as isize,
                    k,
                    row as isize,
                    1,
                    0.0,
                    scale,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
            let bias_b = &bias[b * s.bias_rows * l..(b + 1) * s.bias_rows * l];
            for (i, srow) in scores.chunks_exact_mut(l).enumerate() {
                let brow = if s.bias_rows == 1 {
                    &bias_b[..l]
                } else {
                    &bias_b[i * l..(i + 1) * l]
                };
                softmax_with_bias(srow, brow);
            }
            let dst = ctx_ptr.get().wrapping_add(b * l * hidden + h * d);
            // Safety: each (b, h) task writes only its own `d` columns of its own `l` rows.
            unsafe {
                gemm::gemm(
                    l,
                    d,
                    l,
                    dst,
                    1,
                    hidden as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    l as isize,
                    v,
                    1,
                    row as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    Parallelism::None,
                );
            }
        },
    );
    ctx
}

/// `row = softmax(row + bias)` in place.
fn softmax_with_bias(row: &mut [f32], bias: &[f32]) {
    with_simd!(softmax_body(row, bias))
}

/// Lanes of the explicit vector accumulators in [`softmax_body`] (float sums and maxima do
/// not vectorise otherwise: the compiler keeps their sequential order).
const LANES: usize = 16;

#[inline(always)]
fn softmax_body(row: &mut [f32], bias: &[f32]) {
    let n = row.len() / LANES * LANES;
    let (head, tail) = row.split_at_mut(n);
    let mut maxes = [f32::NEG_INFINITY; LANES];
    for (c, b) in head.chunks_exact_mut(LANES).zip(bias.chunks_exact(LANES)) {
        for ((v, b), m) in c.iter_mut().zip(b).zip(&mut maxes) {
            *v += b;
            *m = m.max(*v);
        }
    }
    let mut max = maxes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    for (v, b) in tail.iter_mut().zip(&bias[n..]) {
        *v += b;
        max = max.max(*v);
    }
    let mut sums = [0f32; LANES];
    for c in head.chunks_exact_mut(LANES) {
        for (v, s) in c.iter_mut().zip(&mut sums) {
            *v = exp(*v - max);
            *s += *v;
        }
    }
    let mut sum: f32 = sums.iter().sum();
    for v in tail.iter_mut() {
        *v = exp(*v - max);
        sum += *v;
    }
    let inv = 1.0 / sum;
    row.iter_mut().for_each(|v| *v *= inv);
}

/// A raw pointer that tasks writing disjoint parts of one buffer may share.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// Safety: only used by `attention`, whose tasks write disjoint elements.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}
impl SendPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        // erf(0.5) = 0.5204998778, erf(1) = 0.8427007929, erf(-2) = -0.9953222650
        assert!((erf(0.5) - 0.520_499_9).abs() < 1e-6);
        assert!((erf(1.0) - 0.842_700_8).abs() < 1e-6);
        assert!((erf(-2.0) + 0.995_322_3).abs() < 1e-6);
        assert!((erf(9.0) - 1.0).abs() < 2e-7);
    }

    #[test]
    fn erf_agrees_with_candles_reference_erf_everywhere() {
        for i in -600..=600 {
            let x = i as f32 / 100.0;
            let want = candle_core::cpu::erf::erf_f64(x as f64) as f32;
            assert!(
                (erf(x) - want).abs() < 5e-7,
                "erf({x}) = {} vs {want}",
                erf(x)
            );
        }
    }

    #[test]
    fn linear_adds_bias_and_residual() {
        // x = [[1, 2]], w = [[1, 0], [0, 1], [1, 1]], bias = [10, 20, 30], residual = [1, 1, 1]
        let y = linear(
            &[1.0, 2.0],
            &[1.0, 0.0, 0.0, 1.0, 1.0, 1.0],
            &[10.0, 20.0, 30.0],
            Some(&[1.0, 1.0, 1.0]),
            Act::Identity,
        );
        assert_eq!(y, vec![12.0, 23.0, 34.0]);
    }

    #[test]
    fn masked_keys_get_no_attention() {
        // One example, two tokens, one head of width 1; the second key is masked out, so both
        // queries copy the first value (3.0).
        let qkv = [1.0, 1.0, 3.0, 1.0, 5.0, 7.0];
        let ctx = attention(
            &qkv,
            &[0.0, -10000.0],
            AttnShape {
                batch: 1,
                len: 2,
                heads: 1,
                head_dim: 1,
                bias_rows: 1,
            },
        );
        assert_eq!(ctx, vec![3.0, 3.0]);
    }
}
