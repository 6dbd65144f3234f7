//! int8 kernels against the scalar reference, bit for bit.
use super::*;

/// Deterministic values in about [-1, 1].
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

/// The scalar reference: the integer products written out naively over the unpacked
/// weight, then the shared epilogue.
fn reference(
    w: &PackedInt8,
    x: &[f32],
    bias: &[f32],
    residual: Option<&[f32]>,
    act: Act,
) -> Vec<f32> {
    let a = QuantRows::new(x, w.k);
    let qw = w.unpacked();
    let epi = Epilogue {
        w,
        a: &a,
        bias,
        residual,
        act,
    };
    let mut y = vec![f32::NAN; a.rows * w.out];
    for (i, d) in y.chunks_exact_mut(w.out).enumerate() {
        let (row, _, _) = a.row(i);
        let c: Vec<i32> = (0..w.out)
            .map(|n| {
                (0..w.k)
                    .map(|f| i32::from(row[f]) * i32::from(qw[n * w.k + f]))
                    .sum()
            })
            .collect();
        epi.write(i, 0, &c, d);
    }
    y
}

/// Odd shapes: m = 1, rows not a multiple of any row block, n odd and not a multiple of
/// 16 (and panel counts that leave a partial group of 4), k not a multiple of 4 or 32 and
/// longer than one cache block (128 quads).
const SHAPES: [(usize, usize, usize); 9] = [
    (1, 1, 1),
    (1, 33, 65),
    (13, 17, 7),
    (12, 32, 64),
    (25, 40, 300),
    (7, 48, 513),
    (30, 3, 2),
    (5, 113, 1031),
    (50, 80, 96),
];

#[test]
fn every_available_kernel_equals_the_scalar_reference_bit_for_bit() {
    let variants = Variant::available();
    assert_eq!(variants.last(), Some(&Variant::Scalar));
    for (seed, &(rows, out, k)) in SHAPES.iter().enumerate() {
        let seed = seed as u64;
        let x = values(rows * k, seed);
        let w = PackedInt8::pack(&values(out * k, seed + 100), out);
        let bias = values(out, seed + 200);
        let res = values(rows * out, seed + 300);
        let cases = [
            (None, Act::Identity),
            (Some(&res[..]), Act::Identity),
            (None, Act::Gelu),
            (Some(&res[..]), Act::GeluTanh),
            (Some(&res[..]), Act::Relu),
        ];
        for (residual, act) in cases {
            let want = reference(&w, &x, &bias, residual, act);
            for &v in &variants {
                for threads in [1, 2, 3] {
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(threads)
                        .build()
                        .unwrap();
                    let got = pool.install(|| w.linear_with(&x, &bias, residual, act, v));
                    let same = got.len() == want.len()
                        && got
                            .iter()
                            .zip(&want)
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(
                        same,
                        "{} differs from the reference on {rows}x{out}x{k}, {threads} \
                         threads, {act:?}",
                        v.name()
                    );
                }
            }
        }
    }
}

#[test]
fn simd_and_scalar_activation_codes_agree() {
    for (seed, k) in [1usize, 31, 32, 33, 100, 512, 1031].into_iter().enumerate() {
        let mut x = values(k, seed as u64 + 7);
        x.iter_mut().step_by(5).for_each(|v| *v *= 40.0);
        let (mut a, mut b) = (vec![0u8; k], vec![0u8; k]);
        let want = quantize_row_scalar(&x, &mut a);
        assert_eq!(quantize_row(&x, &mut b), want, "k = {k}");
        assert_eq!(a, b, "k = {k}");
        let positive: Vec<f32> = x.iter().map(|v| v.abs() + 0.5).collect();
        let want = quantize_row_scalar(&positive, &mut a);
        assert_eq!(quantize_row(&positive, &mut b), want, "k = {k}");
        assert_eq!(a, b, "k = {k}");
    }
}

#[test]
fn the_chosen_kernel_is_available() {
    assert!(Variant::best().is_available());
    assert!(Variant::Scalar.is_available());
}

#[test]
fn extreme_codes_do_not_saturate() {
    // Every activation at 255 (a row of equal positive values has min 0 -> q = 255) and
    // every weight at +-63: the largest i16 pair sum of vpmaddubsw, 2 * 255 * 63.
    let (rows, out, k) = (6, 32, 256);
    let x = vec![3.0f32; rows * k];
    let w: Vec<f32> = (0..out * k)
        .map(|i| if (i / k) % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let p = PackedInt8::pack(&w, out);
    for v in Variant::available() {
        let y = p.linear_with(&x, &[0.0; 32], None, Act::Identity, v);
        for (n, &yv) in y[..out].iter().enumerate() {
            let want = if n % 2 == 0 { 768.0 } else { -768.0 };
            assert!((yv - want).abs() < 1e-2, "{}: {yv} vs {want}", v.name());
        }
    }
}

#[test]
fn quantised_product_is_close_to_the_f32_product() {
    let (rows, out, k) = (9, 24, 200);
    let x = values(rows * k, 1);
    let w = values(out * k, 2);
    let p = PackedInt8::pack(&w, out);
    let y = p.linear(&x, &vec![0.0; out], None, Act::Identity);
    for i in 0..rows {
        for n in 0..out {
            let exact: f32 = (0..k).map(|f| x[i * k + f] * w[n * k + f]).sum();
            let scale: f32 = (0..k).map(|f| (x[i * k + f] * w[n * k + f]).abs()).sum();
            assert!(
                (y[i * out + n] - exact).abs() < 0.03 * scale,
                "{} vs {exact}",
                y[i * out + n]
            );
        }
    }
}

#[test]
fn activations_keep_zero_exact_and_span_their_range() {
    let x = [-1.0f32, 0.0, 0.5, 2.0, 0.0];
    let a = QuantRows::new(&x, 5);
    let (q, sx, zx) = a.row(0);
    assert_eq!(q[1] as i32, zx, "0 maps to the zero point");
    assert_eq!((q[0], q[3]), (0, 255));
    assert!((sx - 3.0 / 255.0).abs() < 1e-7);
    let back: Vec<f32> = q[..5]
        .iter()
        .map(|&v| (v as i32 - zx) as f32 * sx)
        .collect();
    for (b, v) in back.iter().zip(x) {
        assert!((b - v).abs() <= sx / 2.0 + 1e-6);
    }
    let zeros = QuantRows::new(&[0.0; 4], 4);
    assert_eq!(zeros.row(0), (&[0u8; 4][..], 1.0, 0));
}

#[test]
fn weights_are_seven_bit_per_channel() {
    let w = [0.6f32, -1.0, 0.25, 0.0, 0.0, 0.0, 2.0, 0.9];
    let p = PackedInt8::pack(&w, 2);
    assert_eq!(p.scales(), &[1.0 / 63.0, 2.0 / 63.0]);
    assert_eq!(p.unpacked(), vec![38, -63, 16, 0, 0, 0, 63, 28]);
    assert_eq!(p.col_sums, vec![-9, 91]);
}
