//! `matmul`: 1-d, 2-d and batched products with broadcast batch dims, through matrixmultiply.

use ndarray::Dimension as _;
use std::panic::Location;

use ndarray::{ArrayD, IxDyn};

use crate::autograd::function::Op;
use crate::ops::binary::broadcast_or_panic;
use crate::parallel;
use crate::tensor::{Data, Float, Storage, Tensor};

/// A product is split over threads only when each thread gets at least this many multiply-adds:
/// waking a thread costs a few microseconds, the time of about this much work.
const MIN_WORK_PER_THREAD: usize = 1 << 18;

/// Blocks start at multiples of this (the tile size of matrixmultiply's widest kernel), so that
/// only the last block of a product has a partial panel.
const ALIGN: usize = 16;

/// Which part of the output one thread computes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Split {
    /// Everything, on the calling thread.
    None,
    /// Rows of the batch stacked on top of each other (`nb * n` rows), in `parts` equal blocks:
    /// batches, products and parts of products are all spread evenly this way.
    Rows { parts: usize },
    /// Columns of every product, in `parts` blocks: for products with few rows (matrix-vector).
    Cols { parts: usize },
}

/// How to spread `nb` products of `[n, k] @ [k, m]` over up to `threads` threads.
///
/// Rows are the default (each thread packs its own rows of A and all of B). Columns are taken
/// when they balance better: blocks are cut at whole kernel panels (`ALIGN`), so 144 rows make 9
/// panels that two threads can only share 5 : 4, while 384 columns share 12 : 12 (about 10%
/// faster for all-MiniLM-L6-v2's `[144, 384] @ [384, 384]` at two threads).
fn plan(nb: usize, n: usize, k: usize, m: usize, threads: usize) -> Split {
    let work = nb * n * k * m;
    let parts = threads.min(work / MIN_WORK_PER_THREAD);
    // share of the threads' time doing work when `len` is cut into `parts` panel-aligned blocks
    let balance = |len: usize| {
        let widest = (0..parts)
            .map(|i| block_start(i + 1, parts, len, ALIGN) - block_start(i, parts, len, ALIGN))
            .max()
            .unwrap_or(0);
        len as f64 / (parts * widest.max(1)) as f64
    };
    let rows_ok = nb * n >= parts * ALIGN;
    let cols_ok = m >= parts * ALIGN;
    if parts <= 1 {
        Split::None
    } else if rows_ok && (!cols_ok || balance(nb * n) >= balance(m)) {
        Split::Rows { parts }
    } else if cols_ok {
        Split::Cols { parts }
    } else {
        Split::None
    }
}

/// The start of block `i` of `parts` over `len`, rounded to a multiple of `align`.
fn block_start(i: usize, parts: usize, len: usize, align: usize) -> usize {
    if i >= parts {
        return len;
    }
    ((i * len / parts) / align * align).min(len)
}

/// `out[b] = a[b] @ b[b]` for a `[..., n, k]` and b `[..., k, m]` broadcast to `batch`, spread
/// over [`parallel::gemm_threads`] threads.
fn batched_gemm<F: Float>(a: &Storage<F>, b: &Storage<F>, batch: &[usize]) -> Storage<F> {
    let (n, k) = (a.shape()[a.ndim() - 2], a.shape()[a.ndim() - 1]);
    let m = b.shape()[b.ndim() - 1];
    let mut full_a = batch.to_vec();
    full_a.extend([n, k]);
    let mut full_b = batch.to_vec();
    full_b.extend([k, m]);
    let av = a.broadcast(IxDyn(&full_a)).expect("checked");
    let bv = b.broadcast(IxDyn(&full_b)).expect("checked");
    let nb: usize = batch.iter().product();
    let mut out_shape = batch.to_vec();
    out_shape.extend([n, m]);
    // gemm with beta = 0 writes every element of C without reading it (zeros when k = 0).
    let mut out = ArrayD::<F>::uninit(IxDyn(&out_shape));
    let (sa, sb) = (av.strides().to_vec(), bv.strides().to_vec());
    let nd = batch.len();
    let offset = |mut i: usize, strides: &[isize]| -> isize {
        let mut off = 0isize;
        for d in (0..nd).rev() {
            off += (i % batch[d]) as isize * strides[d];
            i /= batch[d];
        }
        off
    };
    // Raw pointers are Send through usize; each call writes a disjoint block of the output.
    let (pa, pb) = (av.as_ptr() as usize, bv.as_ptr() as usize);
    let pc = out.as_mut_ptr() as usize;
    // Rows r0..r1 and columns c0..c1 of product i.
    let block = |i: usize, (r0, r1): (usize, usize), (c0, c1): (usize, usize)| {
        if r1 <= r0 || c1 <= c0 {
            return;
        }
        // SAFETY: the offsets stay inside the broadcast views and the output; the blocks written
        // by concurrent calls do not overlap.
        unsafe {
            F::gemm(
                r1 - r0,
                k,
                c1 - c0,
                F::one(),
                (pa as *const F).offset(offset(i, &sa) + r0 as isize * sa[nd]),
                sa[nd],
                sa[nd + 1],
                (pb as *const F).offset(offset(i, &sb) + c0 as isize * sb[nd + 1]),
                sb[nd],
                sb[nd + 1],
                F::zero(),
                (pc as *mut F).add(i * n * m + r0 * m + c0),
                m as isize,
                1,
            )
        }
    };
    match plan(nb, n, k, m, parallel::gemm_threads()) {
        Split::None => (0..nb).for_each(|i| block(i, (0, n), (0, m))),
        Split::Rows { parts } => parallel::for_each_task(parts, |t| {
            // Rows s..e of the stacked batch, cut at product boundaries.
            let (s, e) = (
                block_start(t, parts, nb * n, ALIGN),
                block_start(t + 1, parts, nb * n, ALIGN),
            );
            let mut r = s;
            while r < e {
                let (i, r0) = (r / n, r % n);
                let r1 = n.min(r0 + (e - r));
                block(i, (r0, r1), (0, m));
                r += r1 - r0;
            }
        }),
        Split::Cols { parts } => parallel::for_each_task(parts, |t| {
            let cols = (
                block_start(t, parts, m, ALIGN),
                block_start(t + 1, parts, m, ALIGN),
            );
            (0..nb).for_each(|i| block(i, (0, n), cols));
        }),
    }
    // SAFETY: the blocks cover every element of every product, and gemm wrote each of them.
    unsafe { out.assume_init() }.into_shared()
}

/// Checks the operands of `matmul`: both at least 1-d, inner sizes equal (after promoting 1-d
/// operands), batch dims broadcastable, same floating dtype.
fn check_matmul(a: &Tensor, b: &Tensor) -> crate::Result<()> {
    use crate::Error;
    let (sa, sb) = (a.shape(), b.shape());
    if sa.is_empty() || sb.is_empty() {
        return Err(Error::Shape(format!(
            "matmul: both arguments need at least 1 dimension, got shapes {sa:?} and {sb:?}"
        )));
    }
    // 1-d operands act as a row (left) or a column (right)
    let (n, k) = if sa.len() == 1 {
        (1, sa[0])
    } else {
        (sa[sa.len() - 2], sa[sa.len() - 1])
    };
    let (k2, m) = if sb.len() == 1 {
        (sb[0], 1)
    } else {
        (sb[sb.len() - 2], sb[sb.len() - 1])
    };
    if k != k2 {
        return Err(Error::Shape(format!(
            "matmul: shapes {sa:?} and {sb:?} cannot be multiplied ({n}x{k} and {k2}x{m})"
        )));
    }
    let (ba, bb) = (
        &sa[..sa.len().saturating_sub(2)],
        &sb[..sb.len().saturating_sub(2)],
    );
    if crate::tensor::args::broadcast_shapes(ba, bb).is_none() {
        return Err(Error::Shape(format!(
            "matmul: batch dims of shapes {sa:?} and {sb:?} cannot be broadcast together"
        )));
    }
    if a.dtype() != b.dtype() || !a.dtype().is_float() {
        return Err(Error::DType(format!(
            "matmul: expected two floating-point tensors of the same dtype, got {} and {}",
            a.dtype(),
            b.dtype()
        )));
    }
    Ok(())
}

/// Whether the matrices of `t` (its last two dims) are stored column by column, as the transpose
/// of a row-major matrix is (vectors and single elements count as row-major).
fn column_major(t: &Tensor) -> bool {
    let (sh, st) = (t.shape(), t.stride());
    let (r, c) = (sh[sh.len() - 2], sh[sh.len() - 1]);
    r > 1 && c > 1 && st[st.len() - 2] == 1 && st[st.len() - 1] == r as isize
}

impl Tensor {
    /// The matrix product with PyTorch's `torch.matmul` semantics:
    /// 1-d · 1-d is a dot product, 2-d @ 2-d a matrix product, a 1-d operand is promoted to a
    /// matrix and the added dim removed afterwards, and n-d operands are batches of matrices whose
    /// batch dims broadcast.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    /// let b = Tensor::from_vec(vec![1.0, 1.0], &[2]);
    /// assert_eq!(a.matmul(&b).to_vec::<f32>(), vec![3.0, 7.0]);
    /// assert_eq!(Tensor::randn(&[5, 1, 2, 3]).matmul(&Tensor::randn(&[4, 3, 6])).shape(), &[5, 4, 2, 6]);
    /// ```
    ///
    /// # Panics
    /// If an operand is 0-d, the inner sizes differ, the batch dims cannot be broadcast, or the
    /// dtypes differ.
    #[track_caller]
    pub fn matmul(&self, other: &Tensor) -> Tensor {
        if let Err(e) = check_matmul(self, other) {
            panic!("{e}, at {}", Location::caller());
        }
        match (self.ndim(), other.ndim()) {
            (1, 1) => self
                .unsqueeze(0)
                .matmul_nd(&other.unsqueeze(1))
                .reshape([0usize; 0]),
            (1, _) => self.unsqueeze(0).matmul_nd(other).squeeze_dim(-2),
            (_, 1) => self.matmul_nd(&other.unsqueeze(1)).squeeze_dim(-1),
            (n, 2) if n > 2 => {
                // [.., m, k] @ [k, p]: one product of the stacked rows, as PyTorch does, so that
                // the backward's dB is one [k, rows] @ [rows, p] product and not a stack of
                // per-batch products summed afterwards
                let s = self.shape();
                let mut out: Vec<usize> = s[..n - 1].to_vec();
                out.push(other.shape()[1]);
                self.reshape([s[..n - 1].iter().product(), s[n - 1]])
                    .matmul_nd(other)
                    .unsafe_view(out)
            }
            _ => self.matmul_nd(other),
        }
    }

    /// [`matmul`](Tensor::matmul) returning an error instead of panicking on bad shapes or dtypes.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let e = Tensor::zeros(&[2, 3]).try_matmul(&Tensor::zeros(&[4, 5])).unwrap_err();
    /// assert!(e.to_string().starts_with("matmul: shapes [2, 3] and [4, 5] cannot be multiplied"));
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) or [`Error::DType`](crate::Error::DType), with the
    /// message `matmul` would panic with.
    #[track_caller]
    pub fn try_matmul(&self, other: &Tensor) -> crate::Result<Tensor> {
        check_matmul(self, other)?;
        Ok(self.matmul(other))
    }

    /// Matrix product of two operands with at least 2 dims each (checked by `check_matmul`).
    #[track_caller]
    fn matmul_nd(&self, other: &Tensor) -> Tensor {
        let (sa, sb) = (self.shape(), other.shape());
        let batch = broadcast_or_panic("matmul", &sa[..sa.len() - 2], &sb[..sb.len() - 2]);
        let inputs = [self, other];
        let op = Op::new("matmul", &inputs);
        let out = self.with_data(|da| {
            other.with_data(|db| match (da, db) {
                (Data::F32(a), Data::F32(b)) => Data::F32(batched_gemm(a, b, &batch)),
                (Data::F64(a), Data::F64(b)) => Data::F64(batched_gemm(a, b, &batch)),
                _ => panic!(
                    "matmul: expected floating-point tensors, got {}, at {}",
                    self.dtype(),
                    Location::caller()
                ),
            })
        });
        let (sa, sb) = (IxDyn(sa), IxDyn(sb));
        // C = A B: dA = dC Bᵀ, dB = Aᵀ dC (summed over broadcast batch dims). A gradient is
        // computed in the layout of its operand: for a transposed operand (the weight of a
        // linear layer, `x @ w.t()`) as the transpose of a row-major product, dBᵀ = dCᵀ A, so
        // that the transpose's own backward hands the parameter a row-major gradient and the
        // optimizer never copies a transposed one.
        op.save(self).save(other).finish(out, move |ctx, g| {
            let (a, b) = (ctx.saved(0), ctx.saved(1));
            let t = |x: &Tensor| x.transpose(-1, -2);
            vec![
                ctx.needs_grad(0).then(|| {
                    let da = if column_major(&a) {
                        t(&b.matmul_nd(&t(g)))
                    } else {
                        g.matmul_nd(&t(&b))
                    };
                    da.sum_to(sa.slice())
                }),
                ctx.needs_grad(1).then(|| {
                    let db = if column_major(&b) {
                        t(&t(g).matmul_nd(&a))
                    } else {
                        t(&a).matmul_nd(g)
                    };
                    db.sum_to(sb.slice())
                }),
            ]
        })
    }

    /// Alias of [`matmul`](Tensor::matmul) for 2-d operands, like `torch.mm`.
    ///
    /// # Panics
    /// As `matmul`.
    #[track_caller]
    pub fn mm(&self, other: &Tensor) -> Tensor {
        self.matmul(other)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn matmul_gradient_of_a_transposed_weight_is_row_major() {
        // y = x wᵀ: dw = gᵀ x, handed to w as a row-major [out, in] array (not a transposed
        // view that the optimizer would have to copy), with the same values as computed plainly
        let x = randn64(&[5, 3], 1);
        let w = randn64(&[4, 3], 2).requires_grad();
        x.matmul(&w.t()).square().sum().backward();
        let dw = w.grad().unwrap();
        assert!(dw.is_contiguous());
        let y = x.matmul(&w.detach().t());
        let want = (y * 2.0).t().matmul(&x); // d Σy² / dw = (2y)ᵀ x
        dw.assert_close(&want, 1e-12, 1e-12);
    }

    #[test]
    fn matmul_gradcheck_with_transposed_operands() {
        let a = randn64(&[4, 3], 3);
        let b = randn64(&[5, 4], 4);
        gradcheck(|x| x[0].t().matmul(&x[1].t()), &[a, b]).unwrap();
        let a = randn64(&[2, 4, 3], 5);
        let b = randn64(&[2, 5, 4], 6);
        gradcheck(
            |x| x[0].transpose(1, 2).matmul(&x[1].transpose(1, 2)),
            &[a, b],
        )
        .unwrap();
    }

    #[test]
    fn matmul_2d_values() {
        // [[1,2],[3,4]] @ [[5,6],[7,8]] = [[19,22],[43,50]]
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let b = Tensor::from_vec(vec![5.0, 6.0, 7.0, 8.0], &[2, 2]);
        assert_eq!(a.matmul(&b).to_vec::<f32>(), vec![19.0, 22.0, 43.0, 50.0]);
        assert_eq!(
            a.t().matmul(&b).to_vec::<f32>(),
            vec![26.0, 30.0, 38.0, 44.0]
        );
    }

    #[test]
    fn matmul_shapes_follow_pytorch() {
        let v = Tensor::ones(&[3]);
        assert_eq!(v.matmul(&v).shape(), &[] as &[usize]);
        assert_eq!(Tensor::ones(&[2, 3]).matmul(&v).shape(), &[2]);
        assert_eq!(v.matmul(&Tensor::ones(&[3, 4])).shape(), &[4]);
        assert_eq!(Tensor::ones(&[7, 2, 3]).matmul(&v).shape(), &[7, 2]);
        assert_eq!(
            Tensor::ones(&[2, 1, 2, 3])
                .matmul(&Tensor::ones(&[5, 3, 4]))
                .shape(),
            &[2, 5, 2, 4]
        );
    }

    #[test]
    fn matmul_gradcheck() {
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[randn64(&[3, 4], 1), randn64(&[4, 2], 2)],
        )
        .unwrap();
        // non-contiguous operands
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[randn64_t(&[4, 3], 3), randn64_t(&[3, 2], 4)],
        )
        .unwrap();
        // 1-d operands
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[randn64(&[4], 5), randn64(&[4], 6)],
        )
        .unwrap();
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[randn64(&[4], 7), randn64(&[4, 3], 8)],
        )
        .unwrap();
        // broadcast batch dims
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[randn64(&[2, 1, 3, 4], 9), randn64(&[3, 4, 2], 10)],
        )
        .unwrap();
    }

    /// `a @ b` for 2-d row-major `a: [n, k]`, `b: [k, m]`, by the definition Σ_j a[i,j] b[j,l].
    fn naive(a: &[f64], b: &[f64], n: usize, k: usize, m: usize) -> Vec<f64> {
        let mut c = vec![0.0; n * m];
        for i in 0..n {
            for l in 0..m {
                c[i * m + l] = (0..k).map(|j| a[i * k + j] * b[j * m + l]).sum();
            }
        }
        c
    }

    #[test]
    fn plan_spreads_big_products_and_keeps_small_ones_serial() {
        use super::{plan, Split};
        assert_eq!(plan(1, 8, 8, 8, 2), Split::None);
        assert_eq!(plan(1, 512, 512, 512, 1), Split::None);
        assert_eq!(plan(1, 512, 512, 512, 2), Split::Rows { parts: 2 });
        // many small products: the stacked rows are split, across product boundaries
        assert_eq!(plan(64, 32, 32, 32, 2), Split::Rows { parts: 2 });
        // a vector-matrix product has one row: split the columns
        assert_eq!(plan(1, 1, 4096, 4096, 2), Split::Cols { parts: 2 });
        // 144 rows are 9 panels of 16 (shared 4 : 5), 384 columns 24 (12 : 12): columns
        assert_eq!(plan(1, 144, 384, 384, 2), Split::Cols { parts: 2 });
        // equally balanced: rows
        assert_eq!(plan(1, 128, 512, 384, 2), Split::Rows { parts: 2 });
    }

    #[test]
    fn split_products_match_the_definition_and_the_serial_result() {
        use crate::parallel::with_threads;
        // (batch, n, k, m): rows split inside one product, rows split across products (3 x 37 rows
        // into 3 blocks), columns split for a single row, and a transposed (strided) operand
        for (nb, n, k, m) in [(1, 300, 40, 50), (3, 37, 60, 150), (1, 1, 1000, 600)] {
            let a = randn64(&[nb, n, k], 1);
            let b = randn64_t(&[nb, m, k], 2).transpose(-1, -2);
            let (av, bv) = (a.to_vec::<f64>(), b.contiguous().to_vec::<f64>());
            let want: Vec<f64> = (0..nb)
                .flat_map(|i| {
                    let ai = &av[i * n * k..(i + 1) * n * k];
                    naive(ai, &bv[i * k * m..(i + 1) * k * m], n, k, m)
                })
                .collect();
            assert_ne!(super::plan(nb, n, k, m, 3), super::Split::None);
            let serial = with_threads(1, || a.matmul(&b).to_vec::<f64>());
            let split = with_threads(3, || a.matmul(&b).to_vec::<f64>());
            assert_eq!(split, serial, "shape {:?}", (nb, n, k, m));
            for (x, y) in split.iter().zip(&want) {
                assert!((x - y).abs() < 1e-10, "{x} vs {y}");
            }
        }
    }

    #[test]
    fn matmul_with_an_empty_inner_dim_is_zeros() {
        // Σ over an empty range is 0
        let c = Tensor::zeros(&[3, 0]).matmul(&Tensor::zeros(&[0, 4]));
        assert_eq!(c.to_vec::<f32>(), vec![0.0; 12]);
    }

    #[test]
    #[should_panic(expected = "matmul: shapes [2, 3] and [4, 5] cannot be multiplied")]
    fn matmul_inner_size_mismatch_is_an_error() {
        let _ = Tensor::zeros(&[2, 3]).matmul(&Tensor::zeros(&[4, 5]));
    }
}
