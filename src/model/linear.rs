//! The dense layer `y = x · Wᵀ + b` of every model here, with PyTorch's `[out, in]` weight,
//! running f32 candle ops (training), the fused f32 kernel, or a weight packed once for the
//! bf16 or int8 kernels (inference). A weight saved quantised (`zhishi quantize`, see
//! [`super::quantized`]) keeps its saved per-channel scales, so the int8 kernel multiplies
//! exactly the saved integers.
use std::sync::Arc;

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::config::Kernels;
use super::kernels::{self, bf16::PackedBf16, int8::PackedInt8, Act};

/// The name, beside a layer's `weight`, of its saved per-channel int8 scales.
pub const SCALE_NAME: &str = "weight_scale";

/// A dense layer `y = x · Wᵀ + b` over the last dimension, with PyTorch's `[out, in]` weight.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    bias: Tensor,
    /// The weight packed for a reduced-precision kernel, if [`Linear::prepare`] chose one.
    packed: Packed,
    /// The per-output-channel int8 scales the weight was saved with (`weight_scale`), when it
    /// was loaded from a quantised file: `weight` then holds `scale[n] * q[n, k]` exactly and
    /// the int8 kernel packs the saved `q` instead of quantising afresh.
    int8_scales: Option<Tensor>,
}

/// A [`Linear`]'s weight packed for a reduced-precision kernel.
#[derive(Debug, Clone)]
enum Packed {
    /// f32 (the weight tensor as is).
    None,
    /// bf16 ([`Kernels::FastBf16`] on a CPU with AVX512-BF16).
    Bf16(Arc<PackedBf16>),
    /// int8 ([`Kernels::FastInt8`], any CPU).
    Int8(Arc<PackedInt8>),
}

impl Linear {
    /// A layer of `weight [out, in]` and `bias [out]`, unpacked (f32).
    pub fn new(weight: Tensor, bias: Tensor) -> Self {
        Self {
            weight,
            bias,
            packed: Packed::None,
            int8_scales: None,
        }
    }

    /// Loads `weight [out, in]` and `bias [out]` (initialised like PyTorch when training),
    /// and `weight_scale [out]` when the weight was saved quantised.
    pub fn load(vb: VarBuilder, in_dim: usize, out_dim: usize) -> Result<Self> {
        let int8_scales = if vb.contains_tensor(SCALE_NAME) {
            Some(vb.get(out_dim, SCALE_NAME)?)
        } else {
            None
        };
        let l = candle_nn::linear(in_dim, out_dim, vb)?;
        let bias = l
            .bias()
            .cloned()
            .ok_or_else(|| candle_core::Error::Msg("bias".into()))?;
        Ok(Self {
            weight: l.weight().clone(),
            bias,
            packed: Packed::None,
            int8_scales,
        })
    }

    /// Whether the weight was loaded from a quantised file (its int8 scales are known).
    pub fn is_saved_int8(&self) -> bool {
        self.int8_scales.is_some()
    }

    /// Readies the layer for `kernels`: with [`Kernels::FastBf16`] on a CPU with AVX512-BF16
    /// (and an f32 CPU weight) the weight is packed to bf16 once, here; with
    /// [`Kernels::FastInt8`] (f32 CPU weight, any CPU) it is quantised to int8 and packed;
    /// otherwise the layer keeps the f32 path. The f32 weight is kept either way.
    pub fn prepare(self, kernels: Kernels) -> Result<Self> {
        self.prepare_with(kernels, kernels::bf16::available())
    }

    /// [`Self::prepare`] with the CPU check given (`false` exercises the fallback).
    pub(crate) fn prepare_with(mut self, kernels: Kernels, bf16_cpu: bool) -> Result<Self> {
        self.packed = Packed::None;
        if !kernels::supported(&self.weight) {
            return Ok(self);
        }
        let out = self.bias.dim(0)?;
        if kernels == Kernels::FastBf16 && bf16_cpu {
            let packed = kernels::with_slice(&self.weight, |w| PackedBf16::pack(w, out))?;
            self.packed = Packed::Bf16(Arc::new(packed));
        } else if kernels == Kernels::FastInt8 {
            let packed = match &self.int8_scales {
                Some(scales) => kernels::with_slice(&self.weight, |w| {
                    kernels::with_slice(scales, |s| PackedInt8::pack_with_scales(w, s))
                })??,
                None => kernels::with_slice(&self.weight, |w| PackedInt8::pack(w, out))?,
            };
            self.packed = Packed::Int8(Arc::new(packed));
        }
        Ok(self)
    }

    /// Whether forward passes run the bf16 kernel.
    pub fn is_bf16(&self) -> bool {
        matches!(self.packed, Packed::Bf16(_))
    }

    /// [`Self::prepare`] in place (for a loaded model switching kernels).
    pub fn set_kernels(&mut self, kernels: Kernels) -> Result<()> {
        *self = self.clone().prepare(kernels)?;
        Ok(())
    }

    /// Whether forward passes (fused kernels and candle ops alike) run the int8 kernel.
    pub fn is_int8(&self) -> bool {
        matches!(self.packed, Packed::Int8(_))
    }

    /// The int8 weight, when the layer runs the int8 kernel.
    pub fn int8_weight(&self) -> Option<&PackedInt8> {
        match &self.packed {
            Packed::Int8(p) => Some(p),
            _ => None,
        }
    }

    /// Stacks several layers with the same input into one (their outputs side by side); saved
    /// int8 scales are kept when every part has them (per-channel scales stack like rows).
    pub(crate) fn concat(parts: &[Linear]) -> Result<Self> {
        let ws: Vec<&Tensor> = parts.iter().map(|p| &p.weight).collect();
        let bs: Vec<&Tensor> = parts.iter().map(|p| &p.bias).collect();
        let scales: Option<Vec<&Tensor>> = parts.iter().map(|p| p.int8_scales.as_ref()).collect();
        Ok(Self {
            weight: Tensor::cat(&ws, 0)?,
            bias: Tensor::cat(&bs, 0)?,
            packed: Packed::None,
            int8_scales: scales.map(|s| Tensor::cat(&s, 0)).transpose()?,
        })
    }

    /// Output rows `start..start + len` of the layer as a layer of their own (unpacked).
    pub(crate) fn narrow(&self, start: usize, len: usize) -> Result<Self> {
        let scales = self.int8_scales.as_ref();
        Ok(Self {
            weight: self.weight.narrow(0, start, len)?.contiguous()?,
            bias: self.bias.narrow(0, start, len)?.contiguous()?,
            packed: Packed::None,
            int8_scales: scales.map(|s| s.narrow(0, start, len)).transpose()?,
        })
    }

    /// Fused-kernel forward on row-major data: `act(x · Wᵀ + b + residual)`.
    pub(crate) fn forward_fast(
        &self,
        x: &[f32],
        residual: Option<&[f32]>,
        act: Act,
    ) -> Result<Vec<f32>> {
        match &self.packed {
            Packed::Bf16(packed) => kernels::with_slice(&self.bias, |b| {
                kernels::linear_bf16(x, packed, b, residual, act)
            }),
            Packed::Int8(packed) => kernels::with_slice(&self.bias, |b| {
                kernels::linear_int8(x, packed, b, residual, act)
            }),
            Packed::None => kernels::with_slice(&self.weight, |w| {
                kernels::with_slice(&self.bias, |b| kernels::linear(x, w, b, residual, act))
            })?,
        }
    }
}

impl Module for Linear {
    /// `x · Wᵀ + b`; an int8 layer runs its kernel on CPU f32 input (no backward pass), so the
    /// candle-op paths (ERNIE's layers) are quantised too.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut dims = x.dims().to_vec();
        let k = dims.pop().unwrap_or(1);
        let rows = x.elem_count() / k.max(1);
        let out = self.bias.dim(0)?;
        dims.push(out);
        if let Packed::Int8(packed) = &self.packed {
            if kernels::supported(x) {
                let y = kernels::with_slice(x, |x| {
                    kernels::with_slice(&self.bias, |b| {
                        kernels::linear_int8(x, packed, b, None, Act::Identity)
                    })
                })??;
                return Tensor::from_vec(y, dims, x.device());
            }
        }
        let y = x.reshape((rows, k))?.matmul(&self.weight.t()?)?;
        kernels::grad::add_bias(&y, &self.bias)?.reshape(dims)
    }
}
