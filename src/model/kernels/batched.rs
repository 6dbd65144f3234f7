//! Batched matrix products (attention's `Q·Kᵀ` and `P·V`) as a candle custom op with a
//! backward pass, parallel over the batch.
//!
//! candle runs a batched product as a loop over the batch, each product spread over the
//! threads: attention's products are small (`[256 x 64] · [64 x 256]` per head), so the threads
//! spend much of each product joining. Here each thread takes whole products, each run by
//! `gemm` on one thread: on 2 cores (AMD EPYC, AVX-512) a `[32, 256, 64] · [32, 64, 256]`
//! product went from 57 to 69 G multiply-adds per second. Every product is the same `gemm`
//! call for any thread count, so results do not depend on it.
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::supported;

/// `a · b` for `a [.., m, k]` and `b [.., k, n]` with the same leading dimensions; candle's
/// `matmul` off the CPU, for other dtypes, below rank 3 or when the leading dimensions differ.
pub fn batched_matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (ra, rb) = (a.rank(), b.rank());
    if supported(a)
        && supported(b)
        && ra >= 3
        && ra == rb
        && a.dims()[..ra - 2] == b.dims()[..rb - 2]
    {
        return a.apply_op2(b, BatchedMatMul);
    }
    a.matmul(b)
}

/// A matrix read from a slice with a row and a column stride (a transposed view swaps them).
#[derive(Clone, Copy)]
pub(super) struct Matrix<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// The matrix starting at `data[0]`.
    pub(super) fn new(data: &'a [f32], row_stride: usize, col_stride: usize) -> Self {
        Self {
            data,
            row_stride,
            col_stride,
        }
    }

    /// The same data read as the transpose.
    pub(super) fn t(self) -> Self {
        Self::new(self.data, self.col_stride, self.row_stride)
    }

    /// Whether `rows x cols` elements fit in the slice.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }
}

/// `c = a · b` for `a [m x k]` and `b [k x n]` into row-major `c [m x n]`, by `gemm` on this
/// thread (the same call for every thread count). Panics when a matrix does not fit its slice:
/// callers size the slices from the shapes they pass.
pub(super) fn product(c: &mut [f32], (m, n, k): (usize, usize, usize), a: Matrix, b: Matrix) {
    assert!(
        c.len() >= m * n && a.fits(m, k) && b.fits(k, n),
        "zhishi-batched-matmul: a {m}x{k} by {k}x{n} product does not fit its buffers"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the assertion above keeps every element gemm reads
    // (row * row_stride + col * col_stride) inside `a` and `b`, and `c` holds `m x n` elements.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// The op: the products of the batch in parallel tasks.
struct BatchedMatMul;

/// One operand: its data, the offset of each batch item, and the strides of its two matrix
/// dimensions (rows, columns).
struct Operand<'a> {
    data: &'a [f32],
    offsets: Vec<usize>,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Operand<'a> {
    /// Reads a rank >= 3 layout; `rows` and `cols` are its last two dimensions.
    fn new(storage: &'a CpuStorage, layout: &Layout) -> Result<(Self, usize, usize)> {
        let data = storage.as_slice::<f32>()?;
        let (dims, strides) = (layout.dims(), layout.stride());
        let rank = dims.len();
        let batch = &dims[..rank - 2];
        let mut offsets = vec![layout.start_offset()];
        for (&dim, &stride) in batch.iter().zip(&strides[..rank - 2]) {
            offsets = offsets
                .iter()
                .flat_map(|&o| (0..dim).map(move |i| o + i * stride))
                .collect();
        }
        let (rows, cols) = (dims[rank - 2], dims[rank - 1]);
        let (row_stride, col_stride) = (strides[rank - 2], strides[rank - 1]);
        // The last element any item reads must lie inside the storage.
        let reach = rows.saturating_sub(1) * row_stride + cols.saturating_sub(1) * col_stride;
        if rows > 0 && cols > 0 && offsets.iter().any(|&o| o + reach >= data.len()) {
            candle_core::bail!("zhishi-batched-matmul: layout {layout:?} outside its storage");
        }
        let operand = Self {
            data,
            offsets,
            row_stride,
            col_stride,
        };
        Ok((operand, rows, cols))
    }
}

impl CustomOp2 for BatchedMatMul {
    fn name(&self) -> &'static str {
        "zhishi-batched-matmul"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (a, m, k) = Operand::new(s1, l1)?;
        let (b, k2, n) = Operand::new(s2, l2)?;
        if k != k2 || a.offsets.len() != b.offsets.len() {
            candle_core::bail!(
                "{}: shapes {:?} and {:?} do not multiply",
                self.name(),
                l1.dims(),
                l2.dims()
            );
        }
        let mut dims = l1.dims().to_vec();
        let rank = dims.len();
        dims[rank - 1] = n;
        let mut out = vec![0f32; a.offsets.len() * m * n];
        if m * n > 0 {
            out.par_chunks_mut(m * n)
                .zip(a.offsets.par_iter().zip(&b.offsets))
                .for_each(|(c, (&oa, &ob))| {
                    let a_item = Matrix::new(&a.data[oa..], a.row_stride, a.col_stride);
                    let b_item = Matrix::new(&b.data[ob..], b.row_stride, b.col_stride);
                    product(c, (m, n, k), a_item, b_item);
                });
        }
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }

    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let rank = a.rank();
        let (a, b, grad) = (a.detach(), b.detach(), grad.detach());
        let da = grad.apply_op2_no_bwd(&b.transpose(rank - 2, rank - 1)?, &BatchedMatMul)?;
        let db = a
            .transpose(rank - 2, rank - 1)?
            .apply_op2_no_bwd(&grad, &BatchedMatMul)?;
        Ok((Some(da), Some(db)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn products_and_gradients_equal_candles_matmul() -> Result<()> {
        let dev = Device::Cpu;
        let a = Var::randn(0f32, 1.0, (2, 3, 5, 4), &dev)?;
        let b = Var::randn(0f32, 1.0, (2, 3, 6, 4), &dev)?;
        // `b` transposed, as attention's Kᵀ: a strided operand.
        let bt = b.transpose(2, 3)?;
        let ours = batched_matmul(&a, &bt)?;
        let theirs = a.matmul(&bt)?;
        assert_eq!(ours.dims(), &[2, 3, 5, 6]);
        let weights = Tensor::randn(0f32, 1.0, (2, 3, 5, 6), &dev)?;
        let loss = |t: &Tensor| (t * &weights)?.sum_all();
        let (g1, g2) = (loss(&ours)?.backward()?, loss(&theirs)?.backward()?);
        let flat = |t: &Tensor| t.flatten_all()?.to_vec1::<f32>();
        assert_eq!(flat(&ours)?, flat(&theirs)?);
        for v in [&a, &b] {
            let (x, y) = (g1.get(v), g2.get(v));
            match (x, y) {
                (Some(x), Some(y)) => assert_eq!(flat(x)?, flat(y)?),
                _ => panic!("a gradient is missing"),
            }
        }
        // Shapes that do not fit the op go to candle.
        let m = Tensor::randn(0f32, 1.0, (4, 3), &dev)?;
        assert_eq!(batched_matmul(&m, &m.t()?)?.dims(), &[4, 4]);
        Ok(())
    }

    #[test]
    fn products_and_gradients_do_not_depend_on_the_number_of_threads() -> Result<()> {
        let run = |threads: usize| -> Result<Vec<Vec<f32>>> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            pool.install(|| {
                let dev = Device::Cpu;
                let a = Var::from_tensor(
                    &Tensor::arange(0f32, 8.0 * 33.0 * 16.0, &dev)?
                        .reshape((8, 33, 16))?
                        .sin()?,
                )?;
                let b = Var::from_tensor(
                    &Tensor::arange(0f32, 8.0 * 16.0 * 20.0, &dev)?
                        .reshape((8, 16, 20))?
                        .cos()?,
                )?;
                let y = batched_matmul(&a, &b)?;
                let grads = y.sqr()?.sum_all()?.backward()?;
                let mut out = vec![y.flatten_all()?.to_vec1::<f32>()?];
                for v in [&a, &b] {
                    let g = grads
                        .get(v)
                        .ok_or_else(|| candle_core::Error::Msg("no grad".into()))?;
                    out.push(g.flatten_all()?.to_vec1::<f32>()?);
                }
                Ok(out)
            })
        };
        assert_eq!(run(1)?, run(3)?, "bit for bit");
        Ok(())
    }
}
