//! The x86 int8 kernels (AVX2, AVX-VNNI, AVX512-VNNI) and their SIMD helpers.
use std::arch::x86_64::*;

use super::{Micro, Variant, NR};

/// Runs `m` with the SIMD kernel of `v`.
///
/// # Safety
/// The CPU must have `v`'s features, and `m`'s slices must hold the row block, panels and
/// quads it describes (as [`Micro::run`] asserts).
pub(super) unsafe fn micro(v: Variant, m: &mut Micro) {
    let (a, b, c) = (m.a.as_ptr(), m.b.as_ptr(), m.c.as_mut_ptr());
    match v {
        // SAFETY (all arms): as this function's contract.
        Variant::Avx512Vnni => unsafe {
            match m.panels {
                4 => avx512::<4>(a, m.lda, b, m.panel_stride, m.nq, c, m.ldc),
                3 => avx512::<3>(a, m.lda, b, m.panel_stride, m.nq, c, m.ldc),
                2 => avx512::<2>(a, m.lda, b, m.panel_stride, m.nq, c, m.ldc),
                _ => avx512::<1>(a, m.lda, b, m.panel_stride, m.nq, c, m.ldc),
            }
        },
        Variant::AvxVnni => unsafe { avx_vnni(a, m.lda, b, m.nq, c, m.ldc) },
        Variant::Avx2 => unsafe { avx2(a, m.lda, b, m.nq, c, m.ldc) },
        Variant::Scalar => unreachable!("the scalar kernel is not SIMD"),
    }
}

/// [`super::quantize_row`] with AVX2, 32 values at a time: the same operations as the
/// scalar code (minimum/maximum, multiply, add, clamp, rounding through 2^23), so the
/// same codes for finite inputs.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn quantize_row(x: &[f32], q: &mut [u8]) -> (f32, i32) {
    assert_eq!(x.len(), q.len());
    let n = x.len() / 32 * 32;
    let (xp, qp) = (x.as_ptr(), q.as_mut_ptr());
    let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for i in (0..n).step_by(8) {
        // SAFETY: i + 8 <= n <= x.len().
        let v = unsafe { _mm256_loadu_ps(xp.add(i)) };
        lo = _mm256_min_ps(v, lo);
        hi = _mm256_max_ps(v, hi);
    }
    let (mut l, mut h) = ([0f32; 8], [0f32; 8]);
    // SAFETY: both arrays hold 8 f32.
    unsafe {
        _mm256_storeu_ps(l.as_mut_ptr(), lo);
        _mm256_storeu_ps(h.as_mut_ptr(), hi);
    }
    let (min, max) = super::row_range(&x[n..], 0.0, 0.0);
    let (min, _) = super::row_range(&l, min, max);
    let (_, max) = super::row_range(&h, min, max);
    let Some((scale, inv, zero)) = super::row_params(min, max) else {
        q.fill(0);
        return (1.0, 0);
    };
    let zf = zero as f32;
    let (vinv, vz) = (_mm256_set1_ps(inv), _mm256_set1_ps(zf));
    let (v0, v255) = (_mm256_setzero_ps(), _mm256_set1_ps(255.0));
    let shift = _mm256_set1_ps(8_388_608.0);
    let byte = _mm256_set1_epi32(0xff);
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for i in (0..n).step_by(32) {
        let mut codes = [_mm256_setzero_si256(); 4];
        for (j, c) in codes.iter_mut().enumerate() {
            // SAFETY: i + 8j + 8 <= n <= x.len().
            let v = unsafe { _mm256_loadu_ps(xp.add(i + 8 * j)) };
            let t = _mm256_add_ps(_mm256_mul_ps(v, vinv), vz);
            let t = _mm256_min_ps(_mm256_max_ps(t, v0), v255);
            *c = _mm256_and_si256(_mm256_castps_si256(_mm256_add_ps(t, shift)), byte);
        }
        let words = _mm256_packus_epi16(
            _mm256_packus_epi32(codes[0], codes[1]),
            _mm256_packus_epi32(codes[2], codes[3]),
        );
        let bytes = _mm256_permutevar8x32_epi32(words, order);
        // SAFETY: i + 32 <= n <= q.len().
        unsafe { _mm256_storeu_si256(qp.add(i) as *mut __m256i, bytes) };
    }
    super::quantize_values(&x[n..], &mut q[n..], inv, zf);
    (scale, zero as i32)
}

/// The 4 bytes of row `r`'s quad `q`, broadcast.
#[inline(always)]
unsafe fn quad(a: *const u8, lda: usize, r: usize, q: usize) -> i32 {
    // SAFETY: the caller keeps (r, q) inside the row block.
    unsafe { (a.add(r * lda + 4 * q) as *const i32).read_unaligned() }
}

/// 6 rows x `P` panels (16 columns each) with `vpdpbusd` on zmm.
///
/// # Safety
/// AVX512F/BW/VNNI present; `a` holds 6 rows (`lda` apart) of `nq` quads, `b` `P` panels
/// (`stride` apart) of `nq` quads, `c` 6 rows (`ldc` apart) of `16 P` i32.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn avx512<const P: usize>(
    a: *const u8,
    lda: usize,
    b: *const i8,
    stride: usize,
    nq: usize,
    c: *mut i32,
    ldc: usize,
) {
    const MR: usize = 6;
    let mut acc = [[_mm512_setzero_si512(); P]; MR];
    for q in 0..nq {
        let mut bv = [_mm512_setzero_si512(); P];
        for (i, v) in bv.iter_mut().enumerate() {
            // SAFETY: panel i, quad q is inside `b` (contract).
            *v = unsafe { _mm512_loadu_si512(b.add(i * stride + q * NR * 4) as *const _) };
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: row r, quad q is inside `a` (contract).
            let av = _mm512_set1_epi32(unsafe { quad(a, lda, r, q) });
            for (acc_ri, &bvi) in acc_r.iter_mut().zip(&bv) {
                *acc_ri = _mm512_dpbusd_epi32(*acc_ri, av, bvi);
            }
        }
    }
    for (r, acc_r) in acc.iter().enumerate() {
        for (i, v) in acc_r.iter().enumerate() {
            // SAFETY: row r, columns 16i..16i+16 are inside `c` (contract).
            unsafe {
                let dst = c.add(r * ldc + i * NR) as *mut __m512i;
                _mm512_storeu_si512(dst, _mm512_add_epi32(_mm512_loadu_si512(dst), *v));
            }
        }
    }
}

/// 6 rows x 1 panel (two ymm halves of 8 columns) with AVX-VNNI `vpdpbusd`.
///
/// # Safety
/// AVX2 and AVX-VNNI present; `a` holds 6 rows of `nq` quads, `b` one panel of `nq`
/// quads, `c` 6 rows of 16 i32.
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn avx_vnni(a: *const u8, lda: usize, b: *const i8, nq: usize, c: *mut i32, ldc: usize) {
    const MR: usize = 6;
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    for q in 0..nq {
        // SAFETY: quad q of the panel is inside `b` (contract).
        let bv = unsafe {
            let p = b.add(q * NR * 4) as *const __m256i;
            [_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1))]
        };
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: row r, quad q is inside `a` (contract).
            let av = _mm256_set1_epi32(unsafe { quad(a, lda, r, q) });
            for (acc_ri, &bvi) in acc_r.iter_mut().zip(&bv) {
                *acc_ri = _mm256_dpbusd_avx_epi32(*acc_ri, av, bvi);
            }
        }
    }
    // SAFETY: 6 rows x 16 columns inside `c` (contract).
    unsafe { store_ymm::<MR>(&acc, c, ldc) };
}

/// 4 rows x 1 panel with `vpmaddubsw` (u8 x i8 pairs into i16: `2 * 255 * 63` cannot
/// saturate) and `vpmaddwd` by ones (pairs of i16 into i32).
///
/// # Safety
/// AVX2 present; `a` holds 4 rows of `nq` quads, `b` one panel of `nq` quads, `c` 4 rows
/// of 16 i32.
#[target_feature(enable = "avx2")]
unsafe fn avx2(a: *const u8, lda: usize, b: *const i8, nq: usize, c: *mut i32, ldc: usize) {
    const MR: usize = 4;
    let ones = _mm256_set1_epi16(1);
    let mut acc = [[_mm256_setzero_si256(); 2]; MR];
    for q in 0..nq {
        // SAFETY: quad q of the panel is inside `b` (contract).
        let bv = unsafe {
            let p = b.add(q * NR * 4) as *const __m256i;
            [_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1))]
        };
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: row r, quad q is inside `a` (contract).
            let av = _mm256_set1_epi32(unsafe { quad(a, lda, r, q) });
            for (acc_ri, &bvi) in acc_r.iter_mut().zip(&bv) {
                let pairs = _mm256_maddubs_epi16(av, bvi);
                *acc_ri = _mm256_add_epi32(*acc_ri, _mm256_madd_epi16(pairs, ones));
            }
        }
    }
    // SAFETY: 4 rows x 16 columns inside `c` (contract).
    unsafe { store_ymm::<MR>(&acc, c, ldc) };
}

/// `c[r, 0..16] += acc[r]` (two ymm per row).
///
/// # Safety
/// AVX2 present; `c` holds `MR` rows (`ldc` apart) of 16 i32.
#[target_feature(enable = "avx2")]
unsafe fn store_ymm<const MR: usize>(acc: &[[__m256i; 2]; MR], c: *mut i32, ldc: usize) {
    for (r, acc_r) in acc.iter().enumerate() {
        for (i, v) in acc_r.iter().enumerate() {
            // SAFETY: row r, columns 8i..8i+8 are inside `c` (contract).
            unsafe {
                let dst = c.add(r * ldc + i * 8) as *mut __m256i;
                _mm256_storeu_si256(dst, _mm256_add_epi32(_mm256_loadu_si256(dst), *v));
            }
        }
    }
}
