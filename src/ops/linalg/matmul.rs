//! `matmul`: 1-d, 2-d and batched products with broadcast batch dims, through matrixmultiply.

use ndarray::Dimension as _;
use std::panic::Location;

use ndarray::{ArrayD, IxDyn};
use rayon::prelude::*;

use crate::autograd::function::Op;
use crate::ops::binary::{broadcast_or_panic, same_dtype_or_panic};
use crate::tensor::{Data, Float, Storage, Tensor};

/// Below this many multiply-adds per batch item, batches are spread over threads instead of
/// splitting each product.
const SMALL_GEMM: usize = 64 * 64 * 64;

/// `out[b] = a[b] @ b[b]` for a `[..., n, k]` and b `[..., k, m]` broadcast to `batch`.
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
    let mut out = ArrayD::<F>::zeros(IxDyn(&out_shape));
    if nb == 0 || n == 0 || m == 0 {
        return out.into_shared();
    }
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
    // Raw pointers are Send through usize; each task writes a disjoint output block.
    let (pa, pb) = (av.as_ptr() as usize, bv.as_ptr() as usize);
    let pc = out.as_mut_ptr() as usize;
    let run = |i: usize| {
        // SAFETY: offsets stay inside the broadcast views; output blocks do not overlap.
        unsafe {
            F::gemm(
                n,
                k,
                m,
                F::one(),
                (pa as *const F).offset(offset(i, &sa)),
                sa[nd],
                sa[nd + 1],
                (pb as *const F).offset(offset(i, &sb)),
                sb[nd],
                sb[nd + 1],
                F::zero(),
                (pc as *mut F).add(i * n * m),
                m as isize,
                1,
            )
        }
    };
    if nb > 1 && n * k * m < SMALL_GEMM {
        (0..nb).into_par_iter().for_each(run);
    } else {
        (0..nb).for_each(run);
    }
    out.into_shared()
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
        let (ra, rb) = (self.ndim(), other.ndim());
        if ra == 0 || rb == 0 {
            panic!(
                "matmul: both arguments need at least 1 dimension, got shapes {:?} and {:?}, at {}",
                self.shape(),
                other.shape(),
                Location::caller()
            );
        }
        match (ra, rb) {
            (1, 1) => self
                .unsqueeze(0)
                .matmul_nd(&other.unsqueeze(1))
                .reshape([0usize; 0]),
            (1, _) => self.unsqueeze(0).matmul_nd(other).squeeze_dim(-2),
            (_, 1) => self.matmul_nd(&other.unsqueeze(1)).squeeze_dim(-1),
            _ => self.matmul_nd(other),
        }
    }

    /// Matrix product of two operands with at least 2 dims each.
    #[track_caller]
    fn matmul_nd(&self, other: &Tensor) -> Tensor {
        let (sa, sb) = (self.shape(), other.shape());
        let k = sa[sa.len() - 1];
        if sb[sb.len() - 2] != k {
            panic!(
                "matmul: shapes {sa:?} and {sb:?} cannot be multiplied ({}x{k} and {}x{}), at {}",
                sa[sa.len() - 2],
                sb[sb.len() - 2],
                sb[sb.len() - 1],
                Location::caller()
            );
        }
        let batch = broadcast_or_panic("matmul", &sa[..sa.len() - 2], &sb[..sb.len() - 2]);
        same_dtype_or_panic("matmul", self, other);
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
        // C = A B: dA = dC Bᵀ, dB = Aᵀ dC (summed over broadcast batch dims)
        op.save(self).save(other).finish(out, move |ctx, g| {
            let (a, b) = (ctx.saved(0), ctx.saved(1));
            vec![
                ctx.needs_grad(0)
                    .then(|| g.matmul_nd(&b.transpose(-1, -2)).sum_to(sa.slice())),
                ctx.needs_grad(1)
                    .then(|| a.transpose(-1, -2).matmul_nd(g).sum_to(sb.slice())),
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

    #[test]
    #[should_panic(expected = "matmul: shapes [2, 3] and [4, 5] cannot be multiplied")]
    fn matmul_inner_size_mismatch_is_an_error() {
        let _ = Tensor::zeros(&[2, 3]).matmul(&Tensor::zeros(&[4, 5]));
    }
}
