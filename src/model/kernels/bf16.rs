//! bf16 GEMM for inference on CPUs with AVX512-BF16 (`VDPBF16PS`), behind
//! [`Kernels::FastBf16`](crate::model::Kernels::FastBf16).
//!
//! Weights are rounded to bf16 and packed ONCE at load ([`PackedBf16::new`]) into panels of
//! 16 output columns: for every pair of input features `(2q, 2q + 1)` one 64-byte vector holds
//! the pair for each of the 16 columns, which is exactly the operand layout of `VDPBF16PS`
//! (`acc[j] += a[2j] * b[2j] + a[2j + 1] * b[2j + 1]`, one instruction doing the work of two
//! f32 FMAs). Activations are rounded to bf16 per call into row blocks of [`MR`] rows, pair
//! by pair, so the micro-kernel broadcasts one 32-bit pair per row and step. Products
//! accumulate in f32 on top of the bias and residual that [`super::linear`]'s epilogue writes
//! first; GELU follows as in f32.
//!
//! Micro-kernel: [`MR`] = 12 rows x 2 panels (32 columns) = 24 zmm accumulators; the k loop
//! is blocked by [`KC`] pairs so a block of both panels (16 KiB) stays in L1 while every row
//! block of the task streams past it. rayon splits the rows; each task owns its rows of the
//! output. Rounding to bf16 keeps 8 significant bits, so each product is off by up to about
//! 2^-7 relative (2^-8 per factor; errors largely cancel over the k terms): use it where that is
//! acceptable, e.g. sentence embeddings (see the README for the measured error on m3e-small).
use rayon::prelude::*;

/// Rows of activations per micro-kernel call (and per packed activation block).
pub const MR: usize = 12;
/// Output columns per packed weight panel (one zmm of f32).
pub const NR: usize = 16;
/// Input-feature pairs per cache block of the k loop.
pub const KC: usize = 128;

/// Whether this CPU runs the bf16 kernel (x86-64 with AVX512F and AVX512-BF16).
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Rounds `x` to the nearest bf16 (ties to even), as its 16 bits; NaN stays NaN.
#[inline(always)]
pub fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    let rounded = (bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16) as u16;
    if x.is_nan() {
        0x7fc0
    } else {
        rounded
    }
}

/// The f32 value of bf16 bits.
#[inline(always)]
pub fn from_bf16(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

/// `x` rounded to bf16 and back (what the kernel multiplies).
pub fn round_bf16(x: f32) -> f32 {
    from_bf16(to_bf16(x))
}

/// Two consecutive features as one bf16 pair (`lo` in the low half).
#[inline(always)]
fn pair(lo: f32, hi: f32) -> u32 {
    u32::from(to_bf16(lo)) | (u32::from(to_bf16(hi)) << 16)
}

/// A dense layer's weight `[out, k]` in bf16, packed in [`NR`]-column panels of k pairs.
#[derive(Clone)]
pub struct PackedBf16 {
    k: usize,
    out: usize,
    /// `ceil(k / 2)`: pairs per column (an odd `k` is padded with a zero feature).
    pairs: usize,
    /// `ceil(out / NR)`; padding columns are zero.
    panels: usize,
    /// `data[(p * pairs + q) * NR + j]` = features `2q, 2q + 1` of column `p * NR + j`.
    data: Vec<u32>,
}

impl PackedBf16 {
    /// Packs a row-major PyTorch weight `w [out, k]`, or `None` when this CPU lacks the
    /// instructions (callers then keep the f32 path).
    pub fn new(w: &[f32], out: usize) -> Option<Self> {
        available().then(|| Self::pack(w, out))
    }

    /// Packs without checking the CPU (the layout is portable; only [`Self::matmul_acc`]
    /// needs the instructions).
    pub fn pack(w: &[f32], out: usize) -> Self {
        assert!(
            out > 0 && w.len().is_multiple_of(out),
            "weight is not [out, k]"
        );
        let k = w.len() / out;
        let pairs = k.div_ceil(2);
        let panels = out.div_ceil(NR);
        let mut data = vec![0u32; panels * pairs * NR];
        let feature = |col: usize, f: usize| if f < k { w[col * k + f] } else { 0.0 };
        for (p, panel) in data.chunks_exact_mut(pairs * NR).enumerate() {
            for (q, lanes) in panel.chunks_exact_mut(NR).enumerate() {
                for (j, lane) in lanes.iter_mut().enumerate() {
                    let col = p * NR + j;
                    if col < out {
                        *lane = pair(feature(col, 2 * q), feature(col, 2 * q + 1));
                    }
                }
            }
        }
        Self {
            k,
            out,
            pairs,
            panels,
            data,
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

    /// `dst[rows, out] += bf16(x)[rows, k] · bf16(w)ᵀ` with f32 accumulation, on the rayon
    /// pool. Panics if this CPU lacks AVX512-BF16 (construct through [`Self::new`]).
    pub fn matmul_acc(&self, dst: &mut [f32], x: &[f32]) {
        assert!(available(), "the bf16 kernel needs AVX512-BF16");
        let rows = x.len() / self.k;
        assert_eq!(x.len(), rows * self.k);
        assert_eq!(dst.len(), rows * self.out);
        if rows == 0 {
            return;
        }
        let a = pack_rows(x, self.k, self.pairs);
        let blocks = rows.div_ceil(MR);
        // A few tasks per thread so uneven progress on a shared machine evens out.
        let tasks = (rayon::current_num_threads() * 4).clamp(1, blocks);
        let blocks_per_task = blocks.div_ceil(tasks);
        let chunk = blocks_per_task * MR * self.out;
        dst.par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(t, dst_rows)| {
                let first = t * blocks_per_task;
                #[cfg(target_arch = "x86_64")]
                // Safety: `available()` was checked above; `a` holds every block, `dst_rows`
                // covers the rows of blocks `first..` (the last block may be partial).
                unsafe {
                    simd::task(self, &a, first, dst_rows)
                };
                #[cfg(not(target_arch = "x86_64"))]
                let _ = (first, dst_rows, &a);
            });
    }
}

impl std::fmt::Debug for PackedBf16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedBf16")
            .field("k", &self.k)
            .field("out", &self.out)
            .finish_non_exhaustive()
    }
}

/// Rounds `x [rows, k]` to bf16 pairs in row blocks: `a[(b * pairs + q) * MR + r]` holds
/// features `2q, 2q + 1` of row `b * MR + r` (rows past the end are zero). Only called once
/// [`available`] holds.
fn pack_rows(x: &[f32], k: usize, pairs: usize) -> Vec<u32> {
    let rows = x.len() / k;
    let blocks = rows.div_ceil(MR);
    let mut a = vec![0u32; blocks * pairs * MR];
    a.par_chunks_mut(pairs * MR).enumerate().for_each_init(
        || vec![0u32; pairs],
        |row_pairs, (b, block)| {
            for r in 0..MR.min(rows - b * MR) {
                let row = &x[(b * MR + r) * k..(b * MR + r + 1) * k];
                #[cfg(target_arch = "x86_64")]
                // Safety: callers checked `available()`.
                unsafe {
                    simd::row_to_pairs(row, row_pairs)
                };
                #[cfg(not(target_arch = "x86_64"))]
                row_to_pairs(row, row_pairs);
                for (q, &p) in row_pairs.iter().enumerate() {
                    block[q * MR + r] = p;
                }
            }
        },
    );
    a
}

/// `row` as bf16 pairs (a zero feature pads an odd length).
fn row_to_pairs(row: &[f32], out: &mut [u32]) {
    for (o, two) in out.iter_mut().zip(row.chunks(2)) {
        *o = pair(two[0], two.get(1).copied().unwrap_or(0.0));
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    use super::{PackedBf16, KC, MR, NR};

    /// [`super::row_to_pairs`] with `VCVTNE2PS2BF16`, 32 features at a time (round to
    /// nearest even like [`super::to_bf16`], except that subnormal inputs become zero).
    ///
    /// # Safety
    /// The CPU must support AVX512F and AVX512-BF16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn row_to_pairs(row: &[f32], out: &mut [u32]) {
        let n = row.len() / 32;
        for i in 0..n {
            let lo = _mm512_loadu_ps(row.as_ptr().add(32 * i));
            let hi = _mm512_loadu_ps(row.as_ptr().add(32 * i + 16));
            let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(out.as_mut_ptr().add(16 * i) as *mut __m512i, v);
        }
        super::row_to_pairs(&row[32 * n..], &mut out[16 * n..]);
    }

    /// Computes row blocks `first..` of the product into `dst` (their rows of the output).
    ///
    /// # Safety
    /// The CPU must support AVX512F and AVX512-BF16.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn task(w: &PackedBf16, a: &[u32], first: usize, dst: &mut [f32]) {
        let out = w.out;
        let rows = dst.len() / out;
        let blocks = rows.div_ceil(MR);
        for q0 in (0..w.pairs).step_by(KC) {
            let nq = KC.min(w.pairs - q0);
            let mut p = 0;
            while p < w.panels {
                let two = p + 1 < w.panels;
                let b = w.data.as_ptr().add((p * w.pairs + q0) * NR);
                for blk in 0..blocks {
                    let ap = a.as_ptr().add(((first + blk) * w.pairs + q0) * MR);
                    let r = MR.min(rows - blk * MR);
                    let c = dst.as_mut_ptr().add(blk * MR * out + p * NR);
                    let cols = out - p * NR;
                    if two {
                        micro::<2>(ap, b, w.pairs * NR, nq, c, out, r, cols);
                    } else {
                        micro::<1>(ap, b, w.pairs * NR, nq, c, out, r, cols);
                    }
                }
                p += 2;
            }
        }
    }

    /// `c[r, 0..16 * P] += a-block · panels` over `nq` pairs: `P` panels of 16 columns
    /// (`b`, `b + stride`) by [`MR`] rows, only the first `rows` rows and `cols` columns stored.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[allow(clippy::too_many_arguments)]
    #[inline]
    unsafe fn micro<const P: usize>(
        a: *const u32,
        b: *const u32,
        stride: usize,
        nq: usize,
        c: *mut f32,
        ldc: usize,
        rows: usize,
        cols: usize,
    ) {
        let mut acc = [[_mm512_setzero_ps(); P]; MR];
        for q in 0..nq {
            let mut bv = [_mm512_setzero_si512(); P];
            for (i, v) in bv.iter_mut().enumerate() {
                *v = _mm512_loadu_si512(b.add(i * stride + q * NR) as *const __m512i);
            }
            let ar = a.add(q * MR);
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_epi32(*ar.add(r) as i32);
                for (acc_ri, bvi) in acc_r.iter_mut().zip(bv) {
                    *acc_ri = _mm512_dpbf16_ps(*acc_ri, as_bh(av), as_bh(bvi));
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate().take(rows) {
            for (i, v) in acc_r.iter().enumerate() {
                let left = cols.saturating_sub(i * NR);
                if left == 0 {
                    break;
                }
                let dst = c.add(r * ldc + i * NR);
                if left >= NR {
                    _mm512_storeu_ps(dst, _mm512_add_ps(_mm512_loadu_ps(dst), *v));
                } else {
                    let m: __mmask16 = (1u16 << left) - 1;
                    let old = _mm512_maskz_loadu_ps(m, dst);
                    _mm512_mask_storeu_ps(dst, m, _mm512_add_ps(old, *v));
                }
            }
        }
    }

    #[inline(always)]
    fn as_bh(v: __m512i) -> __m512bh {
        // Safety: both are 512-bit plain-data vectors.
        unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(round_bf16(1.0), 1.0);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to the even mantissa (1.0).
        assert_eq!(round_bf16(1.0 + 1.0 / 256.0), 1.0);
        // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6: ties to 1 + 2^-6.
        assert_eq!(round_bf16(1.0 + 3.0 / 256.0), 1.0 + 1.0 / 64.0);
        assert_eq!(round_bf16(-2.5), -2.5);
        assert!(round_bf16(f32::NAN).is_nan());
        assert_eq!(round_bf16(f32::INFINITY), f32::INFINITY);
    }

    #[test]
    fn packing_puts_feature_pairs_of_sixteen_columns_side_by_side() {
        // w [3, 3]: column c, feature f = 10c + f; odd k is padded with a zero feature.
        let w: Vec<f32> = (0..3)
            .flat_map(|c| (0..3).map(move |f| (10 * c + f) as f32))
            .collect();
        let p = PackedBf16::pack(&w, 3);
        assert_eq!((p.pairs, p.panels, p.data.len()), (2, 1, 2 * NR));
        assert_eq!(p.data[1], pair(10.0, 11.0));
        assert_eq!(p.data[NR + 2], pair(22.0, 0.0));
        assert_eq!(p.data[3], 0, "padding columns are zero");
    }
}
