//! The training path's element-wise ops as candle custom ops with a backward pass: LayerNorm,
//! softmax over the last dimension, exact (erf) GELU, its tanh approximation (ALBERT's
//! `gelu_new`) and the bias add of a dense layer.
//!
//! Written as candle ops, these are chains of small tensor ops: candle-nn's `layer_norm_slow`
//! is nine ops forward and about twenty backward, several of them reductions that candle runs
//! on one thread, and GELU's backward calls the scalar `erf` again. On m3e-small pretraining
//! (batch 16 x 128, 2 threads) those chains were about a third of the main thread's time and
//! left the second core idle. Here each op is one parallel pass over the rows (rayon, the
//! current pool) forward and one backward, with the vectorised [`super::erf`] and
//! [`super::exp`] and explicit lane sums, compiled for the widest SIMD the CPU has
//! (`with_simd!`).
//!
//! Each function falls back to the equivalent candle ops off the CPU or for dtypes other than
//! f32, so the CUDA build trains as before. The backward passes are checked against candle's
//! own autograd of those ops in the tests below.
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;
use std::mem::MaybeUninit;

use super::{
    erf, exp, gelu_in_place, gelu_tanh_in_place, layer_norm_in_place, supported, GELU_TANH_CUBIC,
    LANES, SQRT_2_OVER_PI,
};

/// Elements per parallel task: large enough that a task outweighs its scheduling.
const TASK: usize = 1 << 14;

/// LayerNorm over the last dimension: `(x - mean) / sqrt(var + eps) * gamma + beta`.
pub fn layer_norm(x: &Tensor, gamma: &Tensor, beta: &Tensor, eps: f64) -> Result<Tensor> {
    if supported(x) && supported(gamma) && supported(beta) {
        let op = LayerNormOp { eps: eps as f32 };
        return x
            .contiguous()?
            .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op);
    }
    candle_nn::ops::layer_norm_slow(x, gamma, beta, eps as f32)
}

/// Softmax over the last dimension.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if supported(x) {
        return x.contiguous()?.apply_op1(SoftmaxOp);
    }
    candle_nn::ops::softmax(x, D::Minus1)
}

/// Exact (erf) GELU: `x * Φ(x)`.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if supported(x) {
        return x.contiguous()?.apply_op1(GeluOp);
    }
    x.gelu_erf()
}

/// GELU's tanh approximation (`gelu_new`): `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`, the
/// same numbers as the fused kernels' (candle's `gelu` off the CPU or for other dtypes).
pub fn gelu_tanh(x: &Tensor) -> Result<Tensor> {
    if supported(x) {
        return x.contiguous()?.apply_op1(GeluTanhOp);
    }
    x.gelu()
}

/// `y + bias` with `bias [out]` broadcast over the rows of `y [.., out]`; its backward sums the
/// gradient's rows for the bias in one parallel pass (candle's broadcast backward reduces on one
/// thread).
pub fn add_bias(y: &Tensor, bias: &Tensor) -> Result<Tensor> {
    if supported(y) && supported(bias) && bias.rank() == 1 {
        return y.contiguous()?.apply_op2(&bias.contiguous()?, BiasAddOp);
    }
    y.broadcast_add(bias)
}

/// The contiguous f32 data of a custom op's argument.
pub(super) fn data<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let all = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&all[start..end]),
        None => candle_core::bail!("{op}: the input is not contiguous"),
    }
}

/// The width of the last dimension (not zero).
fn last_dim(layout: &Layout, op: &str) -> Result<usize> {
    match layout.dims().last() {
        Some(&w) if w > 0 => Ok(w),
        _ => candle_core::bail!(
            "{op}: needs a non-empty last dimension, got {:?}",
            layout.dims()
        ),
    }
}

/// Rows of `width` per parallel task.
fn rows_per_task(width: usize) -> usize {
    (TASK / width).max(1)
}

/// A vector of `len` floats built in parallel tasks of `step` elements: `fill(start, chunk)`
/// gets each chunk zeroed with the index of its first element. No thread copies or zeroes the
/// whole buffer alone (a serial `to_vec` or `vec![0.0; n]` of a layer's activations left the
/// other cores idle).
fn build_parallel(len: usize, step: usize, fill: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(len);
    out.spare_capacity_mut()[..len]
        .par_chunks_mut(step.max(1))
        .enumerate()
        .for_each(|(task, chunk)| {
            chunk.iter_mut().for_each(|v| {
                v.write(0.0);
            });
            // SAFETY: every element of `chunk` was written just above, and `f32` has no
            // invalid bit patterns.
            let chunk = unsafe { &mut *(chunk as *mut [MaybeUninit<f32>] as *mut [f32]) };
            fill(task * step.max(1), chunk);
        });
    // SAFETY: the chunks cover the first `len` elements and each was written.
    unsafe { out.set_len(len) };
    out
}

/// A copy of `x` with `f` applied in place to each row of `width`, rows in parallel tasks.
fn map_rows(x: &[f32], width: usize, f: impl Fn(&mut [f32]) + Sync) -> Vec<f32> {
    build_parallel(x.len(), rows_per_task(width) * width, |start, rows| {
        rows.copy_from_slice(&x[start..start + rows.len()]);
        rows.chunks_exact_mut(width).for_each(&f);
    })
}

/// `f(out_row, a_row, b_row)` over the rows of `width` of two inputs of one shape, into a
/// fresh buffer, rows in parallel tasks.
fn zip_rows(
    a: &[f32],
    b: &[f32],
    width: usize,
    f: impl Fn(&mut [f32], &[f32], &[f32]) + Sync,
) -> Vec<f32> {
    build_parallel(a.len(), rows_per_task(width) * width, |start, out| {
        let end = start + out.len();
        for ((o, a), b) in out
            .chunks_exact_mut(width)
            .zip(a[start..end].chunks_exact(width))
            .zip(b[start..end].chunks_exact(width))
        {
            f(o, a, b);
        }
    })
}

/// The data of a backward op's two arguments of one shape, and their row width.
fn same_shape<'a>(
    op: &str,
    (s1, l1): (&'a CpuStorage, &Layout),
    (s2, l2): (&'a CpuStorage, &Layout),
) -> Result<(&'a [f32], &'a [f32], usize)> {
    let width = last_dim(l1, op)?;
    let (a, b) = (data(s1, l1, op)?, data(s2, l2, op)?);
    if l1.dims() != l2.dims() {
        candle_core::bail!("{op}: shapes {:?} and {:?} differ", l1.dims(), l2.dims());
    }
    Ok((a, b, width))
}

/// A gradient as a contiguous tensor cut off from the graph.
fn plain(t: &Tensor) -> Result<Tensor> {
    t.detach().contiguous()
}

/// [`layer_norm`]'s op: arguments `x [.., H]`, `gamma [H]`, `beta [H]`.
struct LayerNormOp {
    eps: f32,
}

impl CustomOp3 for LayerNormOp {
    fn name(&self) -> &'static str {
        "zhishi-layer-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let width = last_dim(l1, self.name())?;
        let (x, gamma, beta) = (
            data(s1, l1, self.name())?,
            data(s2, l2, self.name())?,
            data(s3, l3, self.name())?,
        );
        if gamma.len() != width || beta.len() != width {
            candle_core::bail!(
                "{}: gamma {} and beta {} for rows of {width}",
                self.name(),
                gamma.len(),
                beta.len()
            );
        }
        let mut y = build_parallel(x.len(), TASK, |start, chunk| {
            chunk.copy_from_slice(&x[start..start + chunk.len()]);
        });
        layer_norm_in_place(&mut y, gamma, beta, self.eps);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let width = gamma.elem_count();
        let rows = x.elem_count() / width;
        let all = plain(x)?.apply_op3_no_bwd(
            &plain(gamma)?,
            &plain(grad)?,
            &LayerNormGradOp { eps: self.eps },
        )?;
        let dx = all.narrow(0, 0, rows)?.reshape(x.shape())?;
        let dgamma = all.get(rows)?;
        let dbeta = all.get(rows + 1)?;
        Ok((Some(dx), Some(dgamma), Some(dbeta)))
    }
}

/// The backward of [`LayerNormOp`]: arguments `x`, `gamma`, `dy`; result `[rows + 2, H]`:
/// `dx` by row, then `dgamma`, then `dbeta`.
struct LayerNormGradOp {
    eps: f32,
}

impl CustomOp3 for LayerNormGradOp {
    fn name(&self) -> &'static str {
        "zhishi-layer-norm-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let width = last_dim(l1, self.name())?;
        let (x, gamma, dy) = (
            data(s1, l1, self.name())?,
            data(s2, l2, self.name())?,
            data(s3, l3, self.name())?,
        );
        if gamma.len() != width || dy.len() != x.len() {
            candle_core::bail!("{}: mismatched shapes", self.name());
        }
        let rows = x.len() / width;
        let mut out = build_parallel((rows + 2) * width, TASK, |_, _| {});
        let (dx, params) = out.split_at_mut(rows * width);
        let step = rows_per_task(width) * width;
        let (dgamma, dbeta) = dx
            .par_chunks_mut(step)
            .zip(x.par_chunks(step).zip(dy.par_chunks(step)))
            .map(|(dx, (x, dy))| {
                let mut dgamma = vec![0f32; width];
                let mut dbeta = vec![0f32; width];
                for ((dx, x), dy) in dx
                    .chunks_exact_mut(width)
                    .zip(x.chunks_exact(width))
                    .zip(dy.chunks_exact(width))
                {
                    with_simd!(layer_norm_grad_row(
                        dx,
                        x,
                        dy,
                        gamma,
                        self.eps,
                        &mut dgamma,
                        &mut dbeta
                    ));
                }
                (dgamma, dbeta)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .fold(
                (vec![0f32; width], vec![0f32; width]),
                |(mut g, mut b), (g2, b2)| {
                    add_to(&mut g, &g2);
                    add_to(&mut b, &b2);
                    (g, b)
                },
            );
        params[..width].copy_from_slice(&dgamma);
        params[width..].copy_from_slice(&dbeta);
        Ok((CpuStorage::F32(out), Shape::from((rows + 2, width))))
    }
}

/// One row of LayerNorm's backward: with `x̂ = (x - mean) · r`, `r = 1 / sqrt(var + eps)` and
/// `g = dy · gamma`, `dx = r · (g - mean(g) - x̂ · mean(g · x̂))`; accumulates `dy · x̂` into
/// `dgamma` and `dy` into `dbeta`.
#[inline(always)]
fn layer_norm_grad_row(
    dx: &mut [f32],
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    eps: f32,
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let width = x.len() as f32;
    // The forward pass's statistics, computed the same way (`super::lane_sum`).
    let mean = super::lane_sum(x, |v| v) / width;
    let var = super::lane_sum(x, |v| (v - mean) * (v - mean)) / width;
    let r = 1.0 / (var + eps).sqrt();
    let mean_g = lane_sum_iter(dy.iter().zip(gamma).map(|(d, g)| d * g)) / width;
    let mean_gx = lane_sum_iter(
        dy.iter()
            .zip(gamma)
            .zip(x)
            .map(|((d, g), &v)| d * g * (v - mean) * r),
    ) / width;
    for (i, d) in dx.iter_mut().enumerate() {
        let xhat = (x[i] - mean) * r;
        *d = r * (dy[i] * gamma[i] - mean_g - xhat * mean_gx);
        dgamma[i] += dy[i] * xhat;
        dbeta[i] += dy[i];
    }
}

/// `acc += v`, element by element. Partial sums are combined with it in task order, so the
/// result does not depend on the number of threads or on work stealing.
fn add_to(acc: &mut [f32], v: &[f32]) {
    acc.iter_mut().zip(v).for_each(|(a, v)| *a += v);
}

/// The sum of `values` in [`LANES`] partial sums, in a fixed order ([`super::lane_sum`] for
/// values computed from several slices).
#[inline(always)]
fn lane_sum_iter(values: impl Iterator<Item = f32>) -> f32 {
    let mut sums = [0f32; LANES];
    for (i, v) in values.enumerate() {
        sums[i % LANES] += v;
    }
    sums.iter().sum()
}

/// [`softmax_last_dim`]'s op.
struct SoftmaxOp;

impl CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "zhishi-softmax"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let width = last_dim(l, self.name())?;
        let y = map_rows(data(s, l, self.name())?, width, |row| {
            with_simd!(softmax_row(row))
        });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            plain(y)?.apply_op2_no_bwd(&plain(grad)?, &SOFTMAX_GRAD)?,
        ))
    }
}

/// `row = softmax(row)` in place. The sum runs in row order, like candle's: an attention row
/// whose masked keys (probability 0) sit elsewhere, as in a packed batch, sums to the same
/// float, so packing does not change a prediction.
#[inline(always)]
pub(super) fn softmax_row(row: &mut [f32]) {
    let mut maxes = [f32::NEG_INFINITY; LANES];
    for (i, &v) in row.iter().enumerate() {
        let m = &mut maxes[i % LANES];
        *m = m.max(v);
    }
    let max = maxes.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    row.iter_mut().for_each(|v| *v = exp(*v - max));
    let inv = 1.0 / row.iter().sum::<f32>();
    row.iter_mut().for_each(|v| *v *= inv);
}

/// The backward of an element-wise or row-wise op, over the rows of two arguments of one
/// shape (the forward's input or output, and `dy`): `row(dx, a, dy)` for each row.
struct RowGradOp {
    name: &'static str,
    row: fn(&mut [f32], &[f32], &[f32]),
}

impl CustomOp2 for RowGradOp {
    fn name(&self) -> &'static str {
        self.name
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (a, dy, width) = same_shape(self.name, (s1, l1), (s2, l2))?;
        let dx = zip_rows(a, dy, width, self.row);
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

/// The backward of [`SoftmaxOp`] from its output `y`: `dx = y · (dy - Σ dy · y)` per row.
const SOFTMAX_GRAD: RowGradOp = RowGradOp {
    name: "zhishi-softmax-grad",
    row: |dx, y, dy| with_simd!(softmax_grad_row(dx, y, dy)),
};

#[inline(always)]
pub(super) fn softmax_grad_row(dx: &mut [f32], y: &[f32], dy: &[f32]) {
    // In row order, as in the forward pass.
    let dot: f32 = y.iter().zip(dy).map(|(a, b)| a * b).sum();
    for ((d, &y), &g) in dx.iter_mut().zip(y).zip(dy) {
        *d = y * (g - dot);
    }
}

/// [`gelu`]'s op.
struct GeluOp;

impl CustomOp1 for GeluOp {
    fn name(&self) -> &'static str {
        "zhishi-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let width = last_dim(l, self.name())?;
        let y = map_rows(data(s, l, self.name())?, width, gelu_in_place);
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(plain(x)?.apply_op2_no_bwd(&plain(grad)?, &GELU_GRAD)?))
    }
}

/// The backward of [`GeluOp`] from its input `x`: `dx = dy · (Φ(x) + x · φ(x))`.
const GELU_GRAD: RowGradOp = RowGradOp {
    name: "zhishi-gelu-grad",
    row: |dx, x, dy| with_simd!(gelu_grad_slice(dx, x, dy)),
};

#[inline(always)]
fn gelu_grad_slice(dx: &mut [f32], x: &[f32], dy: &[f32]) {
    // 1 / sqrt(2π)
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    for ((d, &x), &g) in dx.iter_mut().zip(x).zip(dy) {
        let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
        let pdf = INV_SQRT_2PI * exp(-0.5 * x * x);
        *d = g * (cdf + x * pdf);
    }
}

/// [`gelu_tanh`]'s op.
struct GeluTanhOp;

impl CustomOp1 for GeluTanhOp {
    fn name(&self) -> &'static str {
        "zhishi-gelu-tanh"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let width = last_dim(l, self.name())?;
        let y = map_rows(data(s, l, self.name())?, width, gelu_tanh_in_place);
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            plain(x)?.apply_op2_no_bwd(&plain(grad)?, &GELU_TANH_GRAD)?,
        ))
    }
}

/// The backward of [`GeluTanhOp`] from its input `x`: with `s = σ(2u)`,
/// `u = √(2/π) (x + 0.044715 x³)`, `dx = dy · (s + x · s (1 - s) · 2√(2/π) (1 + 3 · 0.044715 x²))`.
const GELU_TANH_GRAD: RowGradOp = RowGradOp {
    name: "zhishi-gelu-tanh-grad",
    row: |dx, x, dy| with_simd!(gelu_tanh_grad_slice(dx, x, dy)),
};

#[inline(always)]
fn gelu_tanh_grad_slice(dx: &mut [f32], x: &[f32], dy: &[f32]) {
    for ((d, &x), &g) in dx.iter_mut().zip(x).zip(dy) {
        let u = SQRT_2_OVER_PI * (x + GELU_TANH_CUBIC * x * x * x);
        let s = 1.0 / (1.0 + exp(-2.0 * u));
        let du = 2.0 * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_CUBIC * x * x);
        *d = g * (s + x * s * (1.0 - s) * du);
    }
}

/// [`add_bias`]'s op: arguments `y [.., out]` and `bias [out]`.
struct BiasAddOp;

impl CustomOp2 for BiasAddOp {
    fn name(&self) -> &'static str {
        "zhishi-add-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let width = last_dim(l1, self.name())?;
        let (y, bias) = (data(s1, l1, self.name())?, data(s2, l2, self.name())?);
        if bias.len() != width {
            candle_core::bail!("{}: bias {} for rows of {width}", self.name(), bias.len());
        }
        let out = map_rows(y, width, |row| add_to(row, bias));
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _y: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let dbias = plain(grad)?.apply_op1_no_bwd(&RowSumOp)?;
        Ok((Some(grad.clone()), Some(dbias)))
    }
}

/// The sum of the rows of `[.., width]`: `[width]`, in parallel blocks of rows.
struct RowSumOp;

impl CustomOp1 for RowSumOp {
    fn name(&self) -> &'static str {
        "zhishi-row-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let width = last_dim(l, self.name())?;
        let x = data(s, l, self.name())?;
        let sum = x
            .par_chunks(rows_per_task(width) * width)
            .map(|rows| {
                let mut acc = vec![0f32; width];
                for row in rows.chunks_exact(width) {
                    add_to(&mut acc, row);
                }
                acc
            })
            .collect::<Vec<_>>()
            .into_iter()
            .fold(vec![0f32; width], |mut a, b| {
                add_to(&mut a, &b);
                a
            });
        Ok((CpuStorage::F32(sum), Shape::from(width)))
    }
}

#[cfg(test)]
mod tests;
