//! int8 dynamic quantisation of the dense layers for inference, behind
//! [`Kernels::FastInt8`](crate::model::Kernels::FastInt8) (`--precision int8`).
//!
//! Scheme (the same on every CPU, so a model gives bit-identical outputs everywhere):
//! - **Weights**: symmetric, per output channel, **7 bits**: `w[n, k] ≈ sw[n] * qw[n, k]` with
//!   `sw[n] = max_k |w[n, k]| / 63` and `qw` in `-63..=63`, rounded and packed ONCE at load
//!   ([`PackedInt8::pack`]). Seven bits, not eight, because AVX2's `vpmaddubsw` adds two u8 x i8
//!   products into a saturating i16: `2 * 255 * 63 = 32130` fits, `2 * 255 * 127` does not (the
//!   `reduce_range` of onnxruntime and FBGEMM). VNNI (`vpdpbusd`) adds four products straight
//!   into i32 and would take 8-bit weights, but using 7 everywhere keeps every kernel exact
//!   and equal to the scalar reference.
//! - **Activations**: asymmetric u8, per row (per token), quantised at run time on each call
//!   ([`QuantRows`]): `x ≈ sx * (qx - zx)` with `sx = (max - min) / 255` over the row (the
//!   range widened to include 0, so zero is exact) and an integer zero point `zx` in `0..=255`;
//!   `qx = clamp(round_half_even(x / sx) + zx, 0, 255)`.
//! - **Products**: `acc[i, n] = Σ_k qx[i, k] * qw[n, k]` in i32 (exact: no saturation, no
//!   overflow below k = 130,000), then `acc - zx[i] * Σ_k qw[n, k]` (the zero point's
//!   compensation, the column sums precomputed at packing), dequantised in f32 as
//!   `(acc as f32) * (sx[i] * sw[n])` and added onto the bias and residual that
//!   [`super::linear`]'s epilogue wrote first. LayerNorm, softmax, GELU and the attention
//!   products stay f32.
//!
//! Kernels ([`Variant`], chosen at run time by `is_x86_feature_detected!`, best first):
//! AVX512-VNNI (`_mm512_dpbusd_epi32`, 6 rows x 64 columns = 24 zmm accumulators), AVX-VNNI
//! (`_mm256_dpbusd_avx_epi32`, 6 x 16), AVX2 (`_mm256_maddubs_epi16` + `_mm256_madd_epi16`,
//! 4 x 16) and a portable scalar loop. All compute the same integers, so they agree bit for bit
//! (the integer part is exact and the f32 epilogue is shared code).
//!
//! Layout: the weight is packed in panels of [`NR`] = 16 output columns; for every quad of
//! input features `(4q .. 4q + 3)` one 64-byte vector holds the quad of each of the 16
//! columns, the operand layout of `vpdpbusd` on a zmm (a ymm kernel takes the panel as two
//! halves of 8 columns). Activations are row-major u8 with `k` padded to a multiple of 4 and
//! the row count to a multiple of [`ROW_PAD`], so a micro-kernel may read whole row blocks;
//! it broadcasts one 32-bit quad per row and step. The k loop is blocked by [`KC`] quads so
//! the weight block of a panel group stays in L1 while the task's row blocks stream past it.
//! rayon splits the rows into tasks (each owns its rows of the output); with too few rows for
//! the pool it splits the columns instead.
use std::mem::MaybeUninit;
use std::sync::OnceLock;

use rayon::prelude::*;

use super::Act;

/// Output columns per packed weight panel.
pub const NR: usize = 16;
/// Input-feature quads per cache block of the k loop.
pub const KC: usize = 128;
/// Rows per sub-block of a task: its strip of the output (at most `RB x out` f32) stays in L2
/// while every panel group is computed and dequantised into it (a multiple of every kernel's
/// row block and of [`ROW_PAD`]).
const RB: usize = 48;
/// Rows of the quantised activations are padded to a multiple of this (every kernel's row
/// block divides it).
pub const ROW_PAD: usize = 12;
/// Largest weight magnitude after quantisation (7 bits, see the module docs).
pub const W_MAX: i32 = 63;

/// One implementation of the int8 GEMM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Portable Rust loops (any CPU).
    Scalar,
    /// AVX2 `vpmaddubsw` + `vpmaddwd`.
    Avx2,
    /// AVX-VNNI `vpdpbusd` on ymm registers.
    AvxVnni,
    /// AVX512-VNNI `vpdpbusd` on zmm registers.
    Avx512Vnni,
}

impl Variant {
    /// Every variant, best first.
    pub const ALL: [Variant; 4] = [
        Variant::Avx512Vnni,
        Variant::AvxVnni,
        Variant::Avx2,
        Variant::Scalar,
    ];

    /// Whether this CPU can run the variant.
    pub fn is_available(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            match self {
                Variant::Scalar => true,
                Variant::Avx2 => has!("avx2"),
                Variant::AvxVnni => has!("avx2") && has!("avxvnni"),
                Variant::Avx512Vnni => has!("avx512f") && has!("avx512bw") && has!("avx512vnni"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Variant::Scalar
        }
    }

    /// The variants this CPU can run, best first.
    pub fn available() -> Vec<Variant> {
        Self::ALL.into_iter().filter(|v| v.is_available()).collect()
    }

    /// The variant every int8 layer runs (decided once per process): the best this CPU has,
    /// or the one named by the environment variable `ZHISHI_INT8_KERNEL` (`avx512vnni`,
    /// `avxvnni`, `avx2`, `scalar`) when the CPU has it, to compare kernels. All variants give
    /// the same numbers; only the speed differs.
    pub fn best() -> Variant {
        static BEST: OnceLock<Variant> = OnceLock::new();
        *BEST.get_or_init(|| {
            let wanted = std::env::var("ZHISHI_INT8_KERNEL").ok();
            let forced = Self::ALL
                .into_iter()
                .find(|v| wanted.as_deref() == Some(v.name()) && v.is_available());
            forced.unwrap_or(Self::available()[0])
        })
    }

    /// A short name (`avx512vnni`, `avxvnni`, `avx2`, `scalar`).
    pub fn name(self) -> &'static str {
        match self {
            Variant::Scalar => "scalar",
            Variant::Avx2 => "avx2",
            Variant::AvxVnni => "avxvnni",
            Variant::Avx512Vnni => "avx512vnni",
        }
    }

    /// Rows per micro-kernel call.
    fn mr(self) -> usize {
        match self {
            Variant::Avx2 => 4,
            _ => 6,
        }
    }

    /// Panels per micro-kernel call.
    fn panels(self) -> usize {
        match self {
            Variant::Avx512Vnni => 4,
            _ => 1,
        }
    }
}

/// Quantises one weight row (one output channel) to `-W_MAX..=W_MAX`; returns the scale.
fn quantize_channel(w: &[f32], q: &mut [i8]) -> f32 {
    let amax = w.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scale = if amax > 0.0 { amax / W_MAX as f32 } else { 1.0 };
    let inv = 1.0 / scale;
    for (q, &v) in q.iter_mut().zip(w) {
        *q = (v * inv).round().clamp(-(W_MAX as f32), W_MAX as f32) as i8;
    }
    scale
}

/// A dense layer's weight `[out, k]` quantised per output channel and packed in [`NR`]-column
/// panels of input quads.
#[derive(Clone)]
pub struct PackedInt8 {
    k: usize,
    out: usize,
    /// `ceil(k / 4)`: quads per column (padding features are zero).
    quads: usize,
    /// `ceil(out / NR)`; padding columns are zero.
    panels: usize,
    /// `data[((p * quads + q) * NR + j) * 4 + t]` = feature `4q + t` of column `p * NR + j`.
    data: Vec<i8>,
    /// Per-column scale `sw`.
    scales: Vec<f32>,
    /// Per-column `Σ_k qw` (for the activations' zero point).
    col_sums: Vec<i32>,
}

impl PackedInt8 {
    /// Quantises and packs a row-major PyTorch weight `w [out, k]`.
    pub fn pack(w: &[f32], out: usize) -> Self {
        Self::pack_rows(w, out, |_, row, q| quantize_channel(row, q))
    }

    /// Packs a weight saved quantised: `w [out, k]` holds `scales[n] * q[n, k]` (the
    /// dequantised form `zhishi quantize` saves), so `q = round(w / scale)` recovers the saved
    /// integers exactly and the scales are kept as saved, bit for bit.
    pub fn pack_with_scales(w: &[f32], scales: &[f32]) -> Self {
        Self::pack_rows(w, scales.len(), |n, row, q| {
            let scale = scales[n];
            for (q, &v) in q.iter_mut().zip(row) {
                *q = (v / scale).round().clamp(-(W_MAX as f32), W_MAX as f32) as i8;
            }
            scale
        })
    }

    /// Packs `w [out, k]`, each row quantised by `quantize(n, row, q)` (returns its scale).
    fn pack_rows(
        w: &[f32],
        out: usize,
        mut quantize: impl FnMut(usize, &[f32], &mut [i8]) -> f32,
    ) -> Self {
        assert!(
            out > 0 && !w.is_empty() && w.len().is_multiple_of(out),
            "weight is not [out, k] with k > 0"
        );
        let k = w.len() / out;
        let (quads, panels) = (k.div_ceil(4), out.div_ceil(NR));
        let mut data = vec![0i8; panels * quads * NR * 4];
        let mut scales = Vec::with_capacity(out);
        let mut col_sums = Vec::with_capacity(out);
        let mut q = vec![0i8; k];
        for (n, row) in w.chunks_exact(k).enumerate() {
            scales.push(quantize(n, row, &mut q));
            col_sums.push(q.iter().map(|&v| i32::from(v)).sum());
            let (p, j) = (n / NR, n % NR);
            for (f, &v) in q.iter().enumerate() {
                data[((p * quads + f / 4) * NR + j) * 4 + f % 4] = v;
            }
        }
        Self {
            k,
            out,
            quads,
            panels,
            data,
            scales,
            col_sums,
        }
    }

    /// Input features.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output columns.
    pub fn out(&self) -> usize {
        self.out
    }

    /// The per-channel scales `sw`.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// The quantised weight `qw [out, k]`, unpacked (row-major, PyTorch's layout).
    pub fn unpacked(&self) -> Vec<i8> {
        let mut w = vec![0i8; self.out * self.k];
        for n in 0..self.out {
            for f in 0..self.k {
                w[n * self.k + f] = self.at(n, f);
            }
        }
        w
    }

    /// The dequantised weight `sw[n] * qw[n, k]` (what the kernel multiplies, in f32).
    pub fn dequantized(&self) -> Vec<f32> {
        let q = self.unpacked();
        q.chunks_exact(self.k.max(1))
            .zip(&self.scales)
            .flat_map(|(row, &s)| row.iter().map(move |&v| f32::from(v) * s))
            .collect()
    }

    fn at(&self, n: usize, f: usize) -> i8 {
        let (p, j) = (n / NR, n % NR);
        self.data[((p * self.quads + f / 4) * NR + j) * 4 + f % 4]
    }

    /// `act(bias + residual + x · Wᵀ)` for row-major `x [rows, k]` and optional `residual
    /// [rows, out]`, with `x` quantised per row and the best kernel for this CPU, on the
    /// rayon pool.
    pub fn linear(&self, x: &[f32], bias: &[f32], residual: Option<&[f32]>, act: Act) -> Vec<f32> {
        self.linear_with(x, bias, residual, act, Variant::best())
    }

    /// [`Self::linear`] with an explicit kernel. Panics if the CPU cannot run `variant`.
    ///
    /// Each task owns whole rows of the output: for a sub-block of [`RB`] rows it computes
    /// the i32 products of every column (an L2-sized buffer), then writes each output row
    /// once, dequantised, with bias, residual and activation applied (no separate passes).
    /// With too few rows for the pool, tasks split the columns instead.
    pub fn linear_with(
        &self,
        x: &[f32],
        bias: &[f32],
        residual: Option<&[f32]>,
        act: Act,
        variant: Variant,
    ) -> Vec<f32> {
        assert!(
            variant.is_available(),
            "this CPU cannot run the {} kernel",
            variant.name()
        );
        let (k, out) = (self.k, self.out);
        let rows = x.len() / k;
        assert_eq!(x.len(), rows * k, "x is not [rows, k]");
        assert_eq!(bias.len(), out, "bias is not [out]");
        if let Some(r) = residual {
            assert_eq!(r.len(), rows * out, "residual is not [rows, out]");
        }
        let mut y = Vec::with_capacity(rows * out);
        if rows == 0 {
            return y;
        }
        let a = QuantRows::new(x, k);
        let epi = Epilogue {
            w: self,
            a: &a,
            bias,
            residual,
            act,
        };
        let width = self.panels * NR;
        let threads = rayon::current_num_threads().max(1);
        let blocks = a.padded_rows() / ROW_PAD;
        let group = variant.panels();
        let groups = self.panels.div_ceil(group);
        let dst = &mut y.spare_capacity_mut()[..rows * out];
        if blocks >= 2 * threads || groups < 2 || threads == 1 {
            // Row tasks: a few per thread so uneven progress on a shared machine evens out.
            let tasks = (threads * 4).clamp(1, blocks);
            let per_task = blocks.div_ceil(tasks) * ROW_PAD;
            dst.par_chunks_mut(per_task * out)
                .enumerate()
                .for_each_init(
                    || vec![0i32; RB * width],
                    |acc, (t, dst)| {
                        let row0 = t * per_task;
                        let task_rows = dst.len() / out;
                        for rc in (0..task_rows).step_by(RB) {
                            let n = RB.min(task_rows - rc);
                            self.products(variant, &a, row0 + rc, n, 0, self.panels, acc);
                            for (r, d) in dst[rc * out..(rc + n) * out]
                                .chunks_exact_mut(out)
                                .enumerate()
                            {
                                epi.write(row0 + rc + r, 0, &acc[r * width..][..out], d);
                            }
                        }
                    },
                );
        } else {
            // Column tasks (few rows): the products of every row for a range of panels,
            // written out row by row afterwards.
            let per_task = groups.div_ceil(threads.min(groups)) * group;
            let padded = rows.div_ceil(ROW_PAD) * ROW_PAD;
            let parts: Vec<(usize, usize, Vec<i32>)> = (0..self.panels)
                .step_by(per_task)
                .collect::<Vec<_>>()
                .into_par_iter()
                .map(|p0| {
                    let np = per_task.min(self.panels - p0);
                    let mut acc = vec![0i32; padded * np * NR];
                    self.products(variant, &a, 0, rows, p0, np, &mut acc);
                    (p0, np, acc)
                })
                .collect();
            for (i, d) in dst.chunks_exact_mut(out).enumerate() {
                for (p0, np, acc) in &parts {
                    let (c0, c1) = (p0 * NR, ((p0 + np) * NR).min(out));
                    epi.write(i, c0, &acc[i * np * NR..][..c1 - c0], &mut d[c0..c1]);
                }
            }
        }
        // SAFETY: the loops above wrote every element of `dst`, the first `rows * out` of
        // `y`'s capacity: each row task all columns of its rows, the column tasks' parts all
        // columns of every row.
        unsafe { y.set_len(rows * out) };
        y
    }

    /// The i32 products of activation rows `row0..row0 + rows` and panels
    /// `panel0..panel0 + panels` into `acc` (row stride `panels * NR`), overwritten: for each
    /// group of panels and each [`KC`] block of quads, every row block of the kernel.
    #[allow(clippy::too_many_arguments)]
    fn products(
        &self,
        variant: Variant,
        a: &QuantRows,
        row0: usize,
        rows: usize,
        panel0: usize,
        panels: usize,
        acc: &mut [i32],
    ) {
        let (mr, group) = (variant.mr(), variant.panels());
        let padded = rows.div_ceil(mr) * mr;
        let ldc = panels * NR;
        acc[..padded * ldc].fill(0);
        for g in (0..panels).step_by(group) {
            let np = group.min(panels - g);
            let p = panel0 + g;
            for q0 in (0..self.quads).step_by(KC) {
                let nq = KC.min(self.quads - q0);
                for r in (0..padded).step_by(mr) {
                    let call = Micro {
                        a: &a.data[(row0 + r) * a.lda + q0 * 4..],
                        lda: a.lda,
                        b: &self.data[(p * self.quads + q0) * NR * 4..],
                        panel_stride: self.quads * NR * 4,
                        nq,
                        panels: np,
                        c: &mut acc[r * ldc + g * NR..],
                        ldc,
                    };
                    call.run(variant);
                }
            }
        }
    }
}

impl std::fmt::Debug for PackedInt8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedInt8")
            .field("k", &self.k)
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

/// What turns a row of i32 products into output: the weight's scales and column sums, the
/// activations' scales and zero points, bias, residual and activation.
struct Epilogue<'a> {
    w: &'a PackedInt8,
    a: &'a QuantRows,
    bias: &'a [f32],
    residual: Option<&'a [f32]>,
    act: Act,
}

impl Epilogue<'_> {
    /// Writes columns `c0..c0 + d.len()` of output row `i` from their products `c`:
    /// `act((bias + residual) + (c - zx * col_sum) * (sx * sw))`. Shared by every kernel
    /// (the same f32 operations in the same order), so their outputs agree bit for bit.
    fn write(&self, i: usize, c0: usize, c: &[i32], d: &mut [impl Slot]) {
        let cols = c0..c0 + d.len();
        let (sx, zx) = (self.a.scales[i], self.a.zeros[i]);
        let row = Row {
            c,
            sw: &self.w.scales[cols.clone()],
            col_sums: &self.w.col_sums[cols.clone()],
            bias: &self.bias[cols.clone()],
            residual: self.residual.map(|r| &r[i * self.w.out..][cols]),
            sx,
            zx,
        };
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: AVX512F was just detected; the body is safe code.
                return unsafe { write_row_avx512(&row, self.act, d) };
            }
        }
        write_row(&row, self.act, d);
    }
}

/// An output element the epilogue writes: `f32`, or not yet initialised output.
trait Slot {
    fn put(&mut self, v: f32);
}

impl Slot for f32 {
    #[inline(always)]
    fn put(&mut self, v: f32) {
        *self = v;
    }
}

impl Slot for MaybeUninit<f32> {
    #[inline(always)]
    fn put(&mut self, v: f32) {
        self.write(v);
    }
}

/// One row's inputs to the epilogue.
struct Row<'a> {
    c: &'a [i32],
    sw: &'a [f32],
    col_sums: &'a [i32],
    bias: &'a [f32],
    residual: Option<&'a [f32]>,
    sx: f32,
    zx: i32,
}

/// [`write_row`] compiled for AVX-512 (the same arithmetic: Rust never fuses a multiply and an
/// add).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn write_row_avx512(row: &Row, act: Act, d: &mut [impl Slot]) {
    write_row(row, act, d);
}

#[inline(always)]
fn write_row(row: &Row, act: Act, d: &mut [impl Slot]) {
    match act {
        Act::Identity => write_row_with(row, d, |v| v),
        Act::Gelu => write_row_with(row, d, |v| {
            0.5 * v * (1.0 + super::erf(v * std::f32::consts::FRAC_1_SQRT_2))
        }),
        Act::GeluTanh => write_row_with(row, d, super::gelu_tanh),
        Act::Relu => write_row_with(row, d, |v| if v > 0.0 { v } else { 0.0 }),
    }
}

#[inline(always)]
fn write_row_with(row: &Row, d: &mut [impl Slot], act: impl Fn(f32) -> f32) {
    let (sx, zx) = (row.sx, row.zx);
    let deq = |c: i32, s: f32, cs: i32| (c - zx * cs) as f32 * (sx * s);
    let terms = row.c.iter().zip(row.sw).zip(row.col_sums).zip(row.bias);
    match row.residual {
        Some(res) => {
            for ((d, (((&c, &s), &cs), &b)), &r) in d.iter_mut().zip(terms).zip(res) {
                d.put(act((r + b) + deq(c, s, cs)));
            }
        }
        None => {
            for (d, (((&c, &s), &cs), &b)) in d.iter_mut().zip(terms) {
                d.put(act(b + deq(c, s, cs)));
            }
        }
    }
}

/// Activations `[rows, k]` quantised per row to asymmetric u8 (see the module docs), row-major
/// with `k` padded to a multiple of 4 and rows to a multiple of [`ROW_PAD`] (padding is zero).
#[derive(Debug, Clone)]
pub struct QuantRows {
    rows: usize,
    /// Row stride in bytes (`4 * ceil(k / 4)`).
    lda: usize,
    data: Vec<u8>,
    scales: Vec<f32>,
    zeros: Vec<i32>,
}

impl QuantRows {
    /// Quantises row-major `x [rows, k]` (rows in parallel).
    pub fn new(x: &[f32], k: usize) -> Self {
        assert!(k > 0 && x.len().is_multiple_of(k), "x is not [rows, k]");
        let rows = x.len() / k;
        let lda = k.div_ceil(4) * 4;
        let padded = rows.div_ceil(ROW_PAD) * ROW_PAD;
        let mut data = vec![0u8; padded * lda];
        let mut params = vec![(1f32, 0i32); rows];
        data.par_chunks_mut(lda * 64)
            .zip(params.par_chunks_mut(64))
            .zip(x.par_chunks(k * 64))
            .for_each(|((d, p), x)| {
                for ((d, p), x) in d.chunks_exact_mut(lda).zip(p).zip(x.chunks_exact(k)) {
                    *p = quantize_row(x, &mut d[..k]);
                }
            });
        let (scales, zeros) = params.into_iter().unzip();
        Self {
            rows,
            lda,
            data,
            scales,
            zeros,
        }
    }

    /// Number of (real) rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    fn padded_rows(&self) -> usize {
        self.data.len() / self.lda
    }

    /// Row `i`'s quantised values (`k` padded to a multiple of 4), scale and zero point.
    pub fn row(&self, i: usize) -> (&[u8], f32, i32) {
        (
            &self.data[i * self.lda..(i + 1) * self.lda],
            self.scales[i],
            self.zeros[i],
        )
    }
}

/// Quantises one row; returns `(scale, zero_point)`. Inputs must be finite (a NaN gives
/// unspecified codes; a row with an infinity becomes all zero).
fn quantize_row(x: &[f32], q: &mut [u8]) -> (f32, i32) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was just detected.
            return unsafe { x86::quantize_row(x, q) };
        }
    }
    quantize_row_scalar(x, q)
}

/// [`quantize_row`] in portable code.
fn quantize_row_scalar(x: &[f32], q: &mut [u8]) -> (f32, i32) {
    let (min, max) = row_range(x, 0.0, 0.0);
    let Some((scale, inv, zero)) = row_params(min, max) else {
        q.fill(0);
        return (1.0, 0);
    };
    quantize_values(x, q, inv, zero as f32);
    (scale, zero as i32)
}

/// The minimum and maximum of `lo`, `hi` and `x` (plain comparisons: `f32::min`'s NaN rule
/// keeps a loop scalar).
#[inline(always)]
fn row_range(x: &[f32], mut min: f32, mut max: f32) -> (f32, f32) {
    for &v in x {
        min = if v < min { v } else { min };
        max = if v > max { v } else { max };
    }
    (min, max)
}

/// `(scale, 1 / scale, zero point)` of a row spanning `min..=max` (which include 0), or
/// `None` when it is all zeros or not finite (every code is then 0).
#[inline(always)]
fn row_params(min: f32, max: f32) -> Option<(f32, f32, u32)> {
    let range = max - min;
    if range <= 0.0 || !range.is_finite() {
        return None;
    }
    let inv = 255.0 / range;
    Some((
        range / 255.0,
        inv,
        round_even((-min * inv).clamp(0.0, 255.0)),
    ))
}

/// `q = round_half_even(clamp(x * inv + zero, 0, 255))`.
#[inline(always)]
fn quantize_values(x: &[f32], q: &mut [u8], inv: f32, zero: f32) {
    for (q, &v) in q.iter_mut().zip(x) {
        *q = round_even((v * inv + zero).clamp(0.0, 255.0)) as u8;
    }
}

/// Rounds `v` in `0..=255` to the nearest integer, ties to even, branch-free: adding 2^23
/// leaves no fraction bits, so the FPU rounds, and the integer is then the low mantissa bits
/// (no float-to-int conversion, so the loop vectorises).
#[inline(always)]
fn round_even(v: f32) -> u32 {
    const SHIFT: f32 = 8_388_608.0;
    (v + SHIFT).to_bits() & 0xff
}

/// One micro-kernel call: `c[r, j] += Σ_q a-quads · b-panels` for a row block of the
/// variant's height and up to its panel count.
struct Micro<'a> {
    /// First row's activations at the block's first quad; rows `lda` apart.
    a: &'a [u8],
    lda: usize,
    /// First panel's weights at the block's first quad; panels `panel_stride` apart.
    b: &'a [i8],
    panel_stride: usize,
    /// Quads in the block.
    nq: usize,
    /// Panels to compute (at most the variant's).
    panels: usize,
    /// Accumulators, row stride `ldc` (at least `panels * NR`).
    c: &'a mut [i32],
    ldc: usize,
}

impl Micro<'_> {
    fn run(mut self, variant: Variant) {
        let mr = variant.mr();
        assert!(self.panels >= 1 && self.panels <= variant.panels());
        assert!(self.a.len() >= (mr - 1) * self.lda + self.nq * 4);
        assert!(self.b.len() >= (self.panels - 1) * self.panel_stride + self.nq * NR * 4);
        assert!(self.c.len() >= (mr - 1) * self.ldc + self.panels * NR);
        match variant {
            Variant::Scalar => self.scalar(mr),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `run` is only reached through `linear_with`, which checked that the
            // CPU has the variant's features; the asserts above bound every access.
            v => unsafe { x86::micro(v, &mut self) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("only the scalar kernel exists off x86-64"),
        }
    }

    fn scalar(self, mr: usize) {
        for r in 0..mr {
            let a = &self.a[r * self.lda..r * self.lda + self.nq * 4];
            for p in 0..self.panels {
                let b = &self.b[p * self.panel_stride..p * self.panel_stride + self.nq * NR * 4];
                let mut acc = [0i32; NR];
                for (aq, bq) in a.chunks_exact(4).zip(b.chunks_exact(NR * 4)) {
                    for (acc, bj) in acc.iter_mut().zip(bq.chunks_exact(4)) {
                        *acc += aq
                            .iter()
                            .zip(bj)
                            .map(|(&x, &w)| i32::from(x) * i32::from(w))
                            .sum::<i32>();
                    }
                }
                let c = &mut self.c[r * self.ldc + p * NR..r * self.ldc + (p + 1) * NR];
                c.iter_mut().zip(acc).for_each(|(c, v)| *c += v);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests;
