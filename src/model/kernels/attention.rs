//! Attention's core in training as one candle custom op with a backward pass:
//! `C = dropout(softmax(Q·Kᵀ · scale + bias)) · V` for each (sequence, head), in parallel over
//! the pairs.
//!
//! As candle ops the core is six nodes (product, scale, bias, softmax, dropout, product), each
//! with a `[B, heads, L, L]` result that the backward pass zero-fills and adds into on one
//! thread before using it (candle's gradient store). Here the pairs run in parallel tasks, each
//! on one thread with `gemm`, and the backward pass recomputes the dropout mask from its
//! generator state instead of storing it. The arithmetic is the candle composition's, operation
//! for operation ([`super::grad`]'s softmax, the same `gemm` calls, `x · scale + 0` as candle's
//! affine), so the results are the same bits, for any thread count (tested below).
use std::borrow::Cow;
use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::batched::{product, Matrix};
use super::grad::{data, softmax_grad_row, softmax_row};
use super::{supported, with_slice};
use crate::model::dropout::{DropMask, Dropout};

/// `dropout(softmax(q·kᵀ · scale + bias)) · v` for `q`, `k`, `v` `[B, heads, L, d]` and
/// `bias [B, 1 | L, L]` (added to every head's scores), the dropout mask drawn from `dropout`
/// (nothing drawn when the op does not apply); `None` when the op does not apply
/// (off the CPU, other dtypes, other shapes): the caller then uses candle ops.
pub fn fused_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: &Tensor,
    scale: f64,
    dropout: &Dropout,
) -> Result<Option<Tensor>> {
    let all_f32_cpu = [q, k, v, bias].iter().all(|t| supported(t));
    let (Ok((b, h, l, d)), Ok((bb, rows, bl))) = (q.dims4(), bias.dims3()) else {
        return Ok(None);
    };
    if !all_f32_cpu
        || k.dims() != q.dims()
        || v.dims() != q.dims()
        || bb != b
        || bl != l
        || !(rows == 1 || rows == l)
    {
        return Ok(None);
    }
    let mask = dropout.draw(b * h * l * l)?;
    let op = AttentionOp {
        shape: Dims { b, h, l, d, rows },
        bias: bias.contiguous()?,
        scale: scale as f32,
        mask,
        probs: OnceLock::new(),
    };
    let out = q
        .contiguous()?
        .apply_op3(&k.contiguous()?, &v.contiguous()?, op)?;
    Ok(Some(out))
}

/// The sizes: `b` sequences, `h` heads, `l` positions, `d` per head, `rows` bias rows (1 or l).
#[derive(Debug, Clone, Copy)]
struct Dims {
    b: usize,
    h: usize,
    l: usize,
    d: usize,
    rows: usize,
}

impl Dims {
    /// The bias row that query row `r` of pair `pair` adds.
    fn bias_row<'a>(&self, bias: &'a [f32], pair: usize, r: usize) -> &'a [f32] {
        let seq = pair / self.h;
        let row = if self.rows == 1 { 0 } else { r };
        let start = (seq * self.rows + row) * self.l;
        &bias[start..start + self.l]
    }
}

/// The op; `probs` keeps the softmax (before dropout) for the backward pass.
struct AttentionOp {
    shape: Dims,
    bias: Tensor,
    scale: f32,
    mask: Option<DropMask>,
    probs: OnceLock<Vec<f32>>,
}

impl AttentionOp {
    /// The forward pass over contiguous `q`, `k`, `v` and the bias: the output, with the softmax
    /// kept for the backward pass.
    fn forward(&self, [q, k, v]: [&[f32]; 3], bias: &[f32]) -> Vec<f32> {
        let Dims { b, h, l, d, .. } = self.shape;
        let (ld, ll) = (l * d, l * l);
        let mut probs = vec![0f32; b * h * ll];
        let mut out = vec![0f32; b * h * ld];
        probs
            .par_chunks_mut(ll.max(1))
            .zip(out.par_chunks_mut(ld.max(1)))
            .enumerate()
            .for_each(|(pair, (p, c))| {
                let item = pair * ld..(pair + 1) * ld;
                let (qi, ki, vi) = (&q[item.clone()], &k[item.clone()], &v[item]);
                // Scores: q · kᵀ, kᵀ read as a transposed view of k, as candle's `k.t()`.
                product(
                    p,
                    (l, l, d),
                    Matrix::new(qi, d, 1),
                    Matrix::new(ki, d, 1).t(),
                );
                for (r, row) in p.chunks_exact_mut(l).enumerate() {
                    let bias = self.shape.bias_row(bias, pair, r);
                    for (s, &m) in row.iter_mut().zip(bias) {
                        *s = (*s * self.scale + 0.0) + m;
                    }
                    with_simd!(softmax_row(row));
                }
                let dropped = self.dropped(pair, p);
                product(
                    c,
                    (l, d, l),
                    Matrix::new(&dropped, l, 1),
                    Matrix::new(vi, d, 1),
                );
            });
        self.probs.set(probs).ok();
        out
    }

    /// `dq`, `dk`, `dv` from `q`, `k`, `v`, the output's gradient `dc` and the stored softmax.
    fn gradients(
        &self,
        [q, k, v, dc]: [&[f32]; 4],
        probs: &[f32],
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let Dims { b, h, l, d, .. } = self.shape;
        let (ld, ll) = (l * d, l * l);
        let mut dq = vec![0f32; b * h * ld];
        let mut dk = vec![0f32; b * h * ld];
        let mut dv = vec![0f32; b * h * ld];
        dq.par_chunks_mut(ld.max(1))
            .zip(dk.par_chunks_mut(ld.max(1)))
            .zip(dv.par_chunks_mut(ld.max(1)))
            .enumerate()
            .for_each(|(pair, ((dqi, dki), dvi))| {
                let item = pair * ld..(pair + 1) * ld;
                let (qi, ki, vi, dci) = (
                    &q[item.clone()],
                    &k[item.clone()],
                    &v[item.clone()],
                    &dc[item],
                );
                let p = &probs[pair * ll..(pair + 1) * ll];
                let dropped = self.dropped(pair, p);
                // Through `· v`: d(dropped) = dc · vᵀ, dv = droppedᵀ · dc.
                let mut dp = vec![0f32; ll];
                product(
                    &mut dp,
                    (l, l, d),
                    Matrix::new(dci, d, 1),
                    Matrix::new(vi, d, 1).t(),
                );
                product(
                    dvi,
                    (l, d, l),
                    Matrix::new(&dropped, l, 1).t(),
                    Matrix::new(dci, d, 1),
                );
                // Through dropout, softmax, the bias (identity) and the scale.
                if let Some(mask) = &self.mask {
                    let base = pair as u64 * ll as u64;
                    dp.iter_mut()
                        .enumerate()
                        .for_each(|(j, g)| *g *= mask.factor(base + j as u64));
                }
                let mut ds = vec![0f32; ll];
                for ((dx, y), dy) in ds
                    .chunks_exact_mut(l)
                    .zip(p.chunks_exact(l))
                    .zip(dp.chunks_exact(l))
                {
                    with_simd!(softmax_grad_row(dx, y, dy));
                }
                ds.iter_mut().for_each(|g| *g = *g * self.scale + 0.0);
                // Through q · kᵀ: dq = ds · k; d(kᵀ) = qᵀ · ds, written back transposed.
                product(
                    dqi,
                    (l, d, l),
                    Matrix::new(&ds, l, 1),
                    Matrix::new(ki, d, 1),
                );
                let mut dkt = vec![0f32; ld];
                product(
                    &mut dkt,
                    (d, l, l),
                    Matrix::new(qi, d, 1).t(),
                    Matrix::new(&ds, l, 1),
                );
                for (c, row) in dkt.chunks_exact(l).enumerate() {
                    for (j, &g) in row.iter().enumerate() {
                        dki[j * d + c] = g;
                    }
                }
            });
        (dq, dk, dv)
    }

    /// `probs` with the dropout mask applied to pair `pair` (the mask is indexed over the
    /// whole `[B, heads, L, L]` tensor, as `Dropout::forward` on it would be).
    fn dropped<'p>(&self, pair: usize, probs: &'p [f32]) -> Cow<'p, [f32]> {
        let ll = (self.shape.l * self.shape.l) as u64;
        match &self.mask {
            None => Cow::Borrowed(probs),
            Some(mask) => probs
                .iter()
                .enumerate()
                .map(|(j, &p)| p * mask.factor(pair as u64 * ll + j as u64))
                .collect(),
        }
    }
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "zhishi-attention"
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
        let Dims { b, h, l, d, .. } = self.shape;
        let name = self.name();
        let (q, k, v) = (
            data(s1, l1, name)?,
            data(s2, l2, name)?,
            data(s3, l3, name)?,
        );
        let ld = l * d;
        let out = with_slice(&self.bias, |bias| {
            if [q, k, v].iter().any(|t| t.len() != b * h * ld)
                || bias.len() != b * self.shape.rows * l
            {
                candle_core::bail!("{name}: arguments do not match {:?}", self.shape);
            }
            Ok(self.forward([q, k, v], bias))
        })??;
        Ok((CpuStorage::F32(out), l1.shape().clone()))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Dims { b, h, l, d, .. } = self.shape;
        let Some(probs) = self.probs.get() else {
            candle_core::bail!("{}: backward before forward", self.name());
        };
        // The arguments' own storage (no copy when contiguous, as the op's inputs are).
        let (q, k, v, dc) = (
            q.contiguous()?,
            k.contiguous()?,
            v.contiguous()?,
            grad.contiguous()?,
        );
        if [q.dims(), k.dims(), v.dims(), dc.dims()]
            .iter()
            .any(|x| *x != [b, h, l, d])
        {
            candle_core::bail!(
                "{}: gradient shapes do not match {:?}",
                self.name(),
                self.shape
            );
        }
        let (dq, dk, dv) = with_slice(&q, |q| {
            with_slice(&k, |k| {
                with_slice(&v, |v| {
                    with_slice(&dc, |dc| self.gradients([q, k, v, dc], probs))
                })
            })
        })????;
        let shape = (b, h, l, d);
        let dev = grad.device();
        Ok((
            Some(Tensor::from_vec(dq, shape, dev)?),
            Some(Tensor::from_vec(dk, shape, dev)?),
            Some(Tensor::from_vec(dv, shape, dev)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The candle composition the op replaces, as `BertSelfAttention` wrote it.
    fn composed([q, k, v]: [&Tensor; 3], bias: &Tensor, dropout: &Dropout) -> Result<Tensor> {
        let scale = 0.5;
        let raw = (super::super::batched::batched_matmul(q, &k.t()?)? * scale)?;
        let scores = raw.broadcast_add(&bias.unsqueeze(1)?)?;
        let probs = dropout.forward(&super::super::grad::softmax_last_dim(&scores)?)?;
        super::super::batched::batched_matmul(&probs, v)
    }

    /// Values with some structure, seeded by `seed`.
    fn values(shape: &[usize], seed: f32) -> Result<Tensor> {
        let n: usize = shape.iter().product();
        Tensor::arange(0f32, n as f32, &Device::Cpu)?
            .affine(0.37, f64::from(seed))?
            .sin()?
            .reshape(shape)
    }

    /// The output and the gradients of q, k and v, with the fused op or the composition.
    fn run(fused: bool, bias_rows: usize, p: f32) -> Result<Vec<Vec<f32>>> {
        let (b, h, l, d) = (2, 3, 7, 4);
        let vars: Vec<Var> = [1.0, 2.0, 3.0]
            .iter()
            .map(|&s| Var::from_tensor(&values(&[b, h, l, d], s)?))
            .collect::<Result<_>>()?;
        // A padding-style or visible-matrix-style bias with masked entries.
        let bias = values(&[b, bias_rows, l], 4.0)?
            .ge(0.6)?
            .to_dtype(candle_core::DType::F32)?
            .affine(-10000.0, 0.0)?;
        let dropout = Dropout::new(p, 11);
        let (q, k, v) = (
            vars[0].as_tensor(),
            vars[1].as_tensor(),
            vars[2].as_tensor(),
        );
        let out = if fused {
            fused_attention(q, k, v, &bias, 0.5, &dropout)?
                .ok_or_else(|| candle_core::Error::Msg("the op did not apply".into()))?
        } else {
            composed([q, k, v], &bias, &dropout)?
        };
        let weights = values(&[b, h, l, d], 5.0)?;
        let grads = (&out * &weights)?.sum_all()?.backward()?;
        let mut all = vec![out.flatten_all()?.to_vec1::<f32>()?];
        for var in &vars {
            let g = grads
                .get(var)
                .ok_or_else(|| candle_core::Error::Msg("no gradient".into()))?;
            all.push(g.flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(all)
    }

    #[test]
    fn the_fused_op_is_the_composition_bit_for_bit() -> Result<()> {
        for (rows, p) in [(1, 0.0), (7, 0.0), (1, 0.3), (7, 0.3)] {
            assert_eq!(
                run(true, rows, p)?,
                run(false, rows, p)?,
                "bias rows {rows}, dropout {p}"
            );
        }
        Ok(())
    }

    #[test]
    fn the_fused_op_does_not_depend_on_the_number_of_threads() -> Result<()> {
        let in_pool = |threads: usize| -> Result<Vec<Vec<f32>>> {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| candle_core::Error::Msg(e.to_string()))?
                .install(|| run(true, 7, 0.2))
        };
        assert_eq!(in_pool(1)?, in_pool(3)?);
        Ok(())
    }

    #[test]
    fn other_shapes_go_to_candle() -> Result<()> {
        let q = values(&[2, 3, 7, 4], 1.0)?;
        let bias = values(&[2, 2, 7], 2.0)?;
        let off = Dropout::disabled();
        assert!(fused_attention(&q, &q, &q, &bias, 0.5, &off)?.is_none());
        Ok(())
    }
}
