//! Unit tests of the encoder's layers.
use super::*;
use crate::model::linear::Linear;
use candle_core::Device;

fn layer() -> Linear {
    // w [3, 2] and bias [3], with values bf16 cannot hold exactly.
    let w = Tensor::new(&[[0.1f32, 0.2], [0.3, 0.4], [0.5, 0.6]], &Device::Cpu).unwrap();
    let b = Tensor::new(&[0.01f32, 0.02, 0.03], &Device::Cpu).unwrap();
    Linear::new(w, b)
}

#[test]
fn without_bf16_instructions_fast_bf16_layers_keep_the_f32_path() {
    let x = [1.1f32, -0.7];
    let f32_layer = layer().prepare_with(Kernels::Fast, true).unwrap();
    let fallback = layer().prepare_with(Kernels::FastBf16, false).unwrap();
    assert!(!f32_layer.is_bf16() && !fallback.is_bf16());
    let want = f32_layer.forward_fast(&x, None, Act::Identity).unwrap();
    assert_eq!(
        fallback.forward_fast(&x, None, Act::Identity).unwrap(),
        want
    );
    let expected = [1.1 * 0.1 - 0.7 * 0.2 + 0.01, 1.1 * 0.3 - 0.7 * 0.4 + 0.02];
    assert!((want[0] - expected[0]).abs() < 1e-6 && (want[1] - expected[1]).abs() < 1e-6);
}

#[test]
fn training_kernels_never_pack_weights() {
    let l = layer().prepare_with(Kernels::Differentiable, true).unwrap();
    assert!(!l.is_bf16());
}

#[test]
fn fast_bf16_packs_the_weight_on_a_capable_cpu() {
    let l = layer().prepare(Kernels::FastBf16).unwrap();
    assert_eq!(l.is_bf16(), kernels::bf16::available());
    if l.is_bf16() {
        let y = l.forward_fast(&[1.1, -0.7], None, Act::Identity).unwrap();
        let exact = 1.1f32 * 0.1 - 0.7 * 0.2 + 0.01;
        assert!(
            y[0] != exact && (y[0] - exact).abs() < 5e-3,
            "{} vs {exact}",
            y[0]
        );
    }
}
