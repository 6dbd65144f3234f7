//! The K-BERT visible matrix stored as bit rows: `L * ceil(L / 64)` words instead of a dense
//! `L x L` f32 matrix (at L = 256: 8 KiB instead of 256 KiB per sentence). Expand it with
//! [`VisibleMatrix::to_dense_f32`] only when the model consumes it.
use std::ops::Range;

/// Which token may attend to which: `get(i, j)` is true when token `i` sees token `j`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibleMatrix {
    len: usize,
    words_per_row: usize,
    bits: Vec<u64>,
}

impl VisibleMatrix {
    /// An `len x len` matrix with nothing visible.
    pub fn new(len: usize) -> Self {
        let words_per_row = len.div_ceil(64);
        Self {
            len,
            words_per_row,
            bits: vec![0; len * words_per_row],
        }
    }

    /// Side length `L`.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the matrix is `0 x 0`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The tokens whose output after `hops` attention layers that follow this matrix can
    /// depend on the tokens `from`: `from` itself, then every token that sees a token
    /// reached so far, `hops` times (indices outside the matrix are ignored).
    pub fn reach(&self, from: &[usize], hops: usize) -> Vec<bool> {
        let mut reached = vec![false; self.len];
        for &t in from {
            if let Some(r) = reached.get_mut(t) {
                *r = true;
            }
        }
        for _ in 0..hops {
            let next: Vec<bool> = (0..self.len)
                .map(|q| reached[q] || (0..self.len).any(|k| reached[k] && self.get(q, k)))
                .collect();
            if next == reached {
                break;
            }
            reached = next;
        }
        reached
    }

    /// Whether token `row` sees token `col`; false outside the matrix.
    pub fn get(&self, row: usize, col: usize) -> bool {
        if row >= self.len || col >= self.len {
            return false;
        }
        self.bits[row * self.words_per_row + col / 64] >> (col % 64) & 1 == 1
    }

    /// Makes token `row` see token `col`. Panics if either is outside the matrix.
    pub fn set(&mut self, row: usize, col: usize) {
        assert!(
            row < self.len && col < self.len,
            "visible index out of range"
        );
        self.bits[row * self.words_per_row + col / 64] |= 1 << (col % 64);
    }

    /// Makes token `row` see every token in `cols` (clipped to the matrix).
    pub fn set_range(&mut self, row: usize, cols: Range<usize>) {
        let cols = cols.start..cols.end.min(self.len);
        set_bits(self.row_mut(row), cols);
    }

    /// The bit words of one row (bit `j % 64` of word `j / 64` is column `j`).
    pub(crate) fn row_mut(&mut self, row: usize) -> &mut [u64] {
        let w = self.words_per_row;
        &mut self.bits[row * w..(row + 1) * w]
    }

    /// Copies row `from` onto row `to`.
    pub fn copy_row(&mut self, from: usize, to: usize) {
        let w = self.words_per_row;
        self.bits.copy_within(from * w..(from + 1) * w, to * w);
    }

    /// Row `row` as a string of `'0'`/`'1'`, the `zhishi kbert` output format.
    pub fn row_string(&self, row: usize) -> String {
        (0..self.len)
            .map(|col| if self.get(row, col) { '1' } else { '0' })
            .collect()
    }

    /// Dense row-major 0/1 bytes, `L * L` long.
    pub fn to_dense_u8(&self) -> Vec<u8> {
        self.dense(0u8, 1u8)
    }

    /// Dense row-major 0.0/1.0 values, `L * L` long, ready for a `[L, L]` tensor.
    pub fn to_dense_f32(&self) -> Vec<f32> {
        self.dense(0.0f32, 1.0f32)
    }

    fn dense<T: Copy>(&self, zero: T, one: T) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len * self.len);
        for row in self
            .bits
            .chunks_exact(self.words_per_row.max(1))
            .take(self.len)
        {
            out.extend((0..self.len).map(|col| {
                if row[col / 64] >> (col % 64) & 1 == 1 {
                    one
                } else {
                    zero
                }
            }));
        }
        out
    }

    /// Whether `get(i, j) == get(j, i)` for all pairs.
    pub fn is_symmetric(&self) -> bool {
        (0..self.len).all(|i| (i + 1..self.len).all(|j| self.get(i, j) == self.get(j, i)))
    }
}

/// Sets bits `cols` in a bit row (bit `j % 64` of word `j / 64` is column `j`).
pub(crate) fn set_bits(row: &mut [u64], cols: Range<usize>) {
    let mut col = cols.start;
    while col < cols.end {
        let word = col / 64;
        let lo = col % 64;
        let hi = (cols.end - word * 64).min(64);
        let mask = if hi - lo == 64 {
            u64::MAX
        } else {
            ((1u64 << (hi - lo)) - 1) << lo
        };
        row[word] |= mask;
        col = word * 64 + hi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_follows_who_sees_whom_hop_by_hop() {
        // 0 and 1 see each other; 2 sees 1; 3 sees only itself.
        let mut m = VisibleMatrix::new(4);
        for (q, k) in [(0, 0), (0, 1), (1, 0), (1, 1), (2, 1), (2, 2), (3, 3)] {
            m.set(q, k);
        }
        assert_eq!(m.reach(&[0], 0), [true, false, false, false]);
        assert_eq!(m.reach(&[0], 1), [true, true, false, false]);
        assert_eq!(m.reach(&[0], 2), [true, true, true, false]);
        assert_eq!(m.reach(&[0, 9], 5), [true, true, true, false]);
    }

    #[test]
    fn ranges_cross_word_boundaries() {
        let mut m = VisibleMatrix::new(130);
        m.set_range(1, 60..129);
        let row: Vec<usize> = (0..130).filter(|&c| m.get(1, c)).collect();
        assert_eq!(row, (60..129).collect::<Vec<_>>());
        m.set_range(2, 0..500);
        assert!((0..130).all(|c| m.get(2, c)));
        m.copy_row(1, 3);
        assert_eq!(m.row_string(3), m.row_string(1));
        assert!(!m.get(0, 0));
    }

    #[test]
    fn dense_expansion_is_row_major() {
        let mut m = VisibleMatrix::new(3);
        m.set(0, 2);
        m.set(2, 1);
        assert_eq!(m.to_dense_u8(), vec![0, 0, 1, 0, 0, 0, 0, 1, 0]);
        assert_eq!(m.to_dense_f32()[2], 1.0);
        assert!(!m.is_symmetric());
    }
}
