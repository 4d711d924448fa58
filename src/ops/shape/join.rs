//! Joining and splitting: cat, stack, split, split_sizes, chunk. The pieces of a split are
//! [`narrow`](Tensor::narrow) views (sharing the storage, differentiable as such), and the
//! gradient of `cat` is the narrows of the incoming gradient.

use std::panic::Location;

use ndarray::Axis;

use super::dim_of;
use crate::autograd::function::Op;
use crate::autograd::tape::Attr;
use crate::tensor::args::norm_dim;
use crate::tensor::{Data, Element, Tensor};

/// Concatenates same-dtype parts along `axis` (shapes checked by the caller).
fn concat<T: Element>(parts: &[Data], axis: usize) -> Data {
    let views: Vec<_> = parts
        .iter()
        .map(|p| T::unwrap(p).expect("dtypes were checked").view())
        .collect();
    Data::from(
        ndarray::concatenate(Axis(axis), &views)
            .expect("shapes were checked")
            .into_shared(),
    )
}

/// Checks the operands of `cat` and resolves `dim`.
fn check_cat(tensors: &[&Tensor], dim: isize) -> crate::Result<usize> {
    use crate::Error;
    let Some(first) = tensors.first() else {
        return Err(Error::Shape(
            "cat: expected a non-empty list of tensors".into(),
        ));
    };
    let n = first.ndim();
    if n == 0 {
        return Err(Error::Shape(
            "cat: zero-dimensional tensors cannot be concatenated".into(),
        ));
    }
    let d = crate::tensor::args::try_norm_dim(dim, n).ok_or_else(|| {
        Error::Index(format!(
            "cat: dimension out of range (expected to be in range of [{}, {}], but got {dim})",
            -(n as isize),
            n - 1
        ))
    })?;
    for (i, t) in tensors.iter().enumerate() {
        if t.dtype() != first.dtype() {
            return Err(Error::DType(format!(
                "cat: expected all tensors to have dtype {} (that of tensor 0), but tensor {i} has {}",
                first.dtype(),
                t.dtype()
            )));
        }
        let fits = t.ndim() == n && (0..n).all(|k| k == d || t.shape()[k] == first.shape()[k]);
        if !fits {
            return Err(Error::Shape(format!(
                "cat: sizes of tensors must match except in dim {d}: tensor 0 has shape {:?} but \
                 tensor {i} has shape {:?}",
                first.shape(),
                t.shape()
            )));
        }
    }
    Ok(d)
}

impl Tensor {
    /// [`cat`](Tensor::cat) returning an error instead of panicking.
    ///
    /// # Errors
    /// An empty list, a bad dim, or tensors whose dtypes or other sizes differ.
    #[track_caller]
    pub fn try_cat(tensors: &[&Tensor], dim: isize) -> crate::Result<Tensor> {
        check_cat(tensors, dim)?;
        Ok(Tensor::cat(tensors, dim))
    }

    /// Joins tensors along an existing dim, like `torch.cat(tensors, dim)`. All must have the
    /// same dtype and the same sizes except in `dim`. A copy.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let a = Tensor::ones(&[2, 1]);
    /// let b = Tensor::zeros(&[2, 2]);
    /// let c = Tensor::cat(&[&a, &b], -1);
    /// assert_eq!(c.shape(), &[2, 3]);
    /// assert_eq!(c.to_vec::<f32>(), vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
    /// ```
    ///
    /// # Panics
    /// If the list is empty, a tensor is 0-d, the dtypes differ, the shapes differ outside `dim`,
    /// or `dim` is out of range.
    #[track_caller]
    pub fn cat(tensors: &[&Tensor], dim: isize) -> Tensor {
        let loc = Location::caller();
        let d = check_cat(tensors, dim).unwrap_or_else(|e| panic!("{e}, at {loc}"));
        let op = Op::new("cat", tensors).attr("dim", Attr::Int(d as i64));
        let parts: Vec<Data> = tensors.iter().map(|t| t.data()).collect();
        let out = crate::with_any!(&parts[0], |_a: T| concat::<T>(&parts, d));
        let sizes: Vec<usize> = tensors.iter().map(|t| t.shape()[d]).collect();
        // each input gets back its own stretch of the gradient
        op.finish(out, move |ctx, g| {
            let mut start = 0;
            sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| {
                    let gi = ctx
                        .needs_grad(i)
                        .then(|| g.narrow(d as isize, start as isize, n));
                    start += n;
                    gi
                })
                .collect()
        })
    }

    /// Joins same-shape tensors along a new dim `dim`, like `torch.stack(tensors, dim)`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let a = Tensor::from_vec(vec![1.0, 2.0], &[2]);
    /// let b = Tensor::from_vec(vec![3.0, 4.0], &[2]);
    /// assert_eq!(Tensor::stack(&[&a, &b], 1).to_vec::<f32>(), vec![1.0, 3.0, 2.0, 4.0]);
    /// ```
    ///
    /// # Panics
    /// If the list is empty, the shapes or dtypes differ, or `dim` is out of range
    /// `[-ndim-1, ndim]`.
    #[track_caller]
    pub fn stack(tensors: &[&Tensor], dim: isize) -> Tensor {
        let loc = Location::caller();
        let Some(first) = tensors.first() else {
            panic!("stack: expected a non-empty list of tensors, at {loc}");
        };
        let d = norm_dim("stack", dim, first.ndim() + 1) as isize;
        for (i, t) in tensors.iter().enumerate() {
            if t.shape() != first.shape() {
                panic!(
                    "stack: expects each tensor to be equal size, but got {:?} at entry 0 and \
                     {:?} at entry {i}, at {loc}",
                    first.shape(),
                    t.shape()
                );
            }
        }
        let parts: Vec<Tensor> = tensors.iter().map(|t| t.unsqueeze(d)).collect();
        Tensor::cat(&parts.iter().collect::<Vec<_>>(), d)
    }

    /// Splits into pieces of `split_size` along `dim` (the last may be smaller), like
    /// `x.split(split_size, dim)`. The pieces are views sharing the storage.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let parts = Tensor::arange(0.0, 5.0, 1.0).split(2, 0);
    /// let sizes: Vec<usize> = parts.iter().map(|p| p.numel()).collect();
    /// assert_eq!(sizes, vec![2, 2, 1]);
    /// ```
    ///
    /// # Panics
    /// If `split_size` is 0 for a non-empty dim, the tensor is 0-d, or `dim` is out of range.
    #[track_caller]
    pub fn split(&self, split_size: usize, dim: isize) -> Vec<Tensor> {
        let d = dim_of("split", dim, self.shape());
        let n = self.shape()[d];
        if split_size == 0 && n > 0 {
            panic!(
                "split: split_size must be positive for dim {d} of size {n} (tensor shape {:?}), \
                 at {}",
                self.shape(),
                Location::caller()
            );
        }
        let count = n.div_ceil(split_size.max(1)).max(1);
        let sizes: Vec<usize> = (0..count)
            .map(|i| split_size.min(n - i * split_size))
            .collect();
        self.pieces(d, &sizes)
    }

    /// Splits along `dim` into pieces of the given sizes, which must add up to the size of the
    /// dim, like `x.split([s0, s1, …], dim)`. The pieces are views sharing the storage.
    ///
    /// # Panics
    /// If the sizes do not add up to the size of the dim, the tensor is 0-d, or `dim` is out of
    /// range.
    #[track_caller]
    pub fn split_sizes(&self, sizes: &[usize], dim: isize) -> Vec<Tensor> {
        let d = dim_of("split_sizes", dim, self.shape());
        let n = self.shape()[d];
        if sizes.iter().sum::<usize>() != n {
            panic!(
                "split_sizes: split sizes {sizes:?} do not add up to the size {n} of dim {d} \
                 (tensor shape {:?}), at {}",
                self.shape(),
                Location::caller()
            );
        }
        self.pieces(d, sizes)
    }

    /// Splits into `chunks` pieces along `dim` as PyTorch's `x.chunk(chunks, dim)` does: pieces of
    /// `ceil(size / chunks)`, the last smaller, so there may be fewer than `chunks` of them.
    /// The pieces are views sharing the storage.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// // 6 elements in 4 chunks: pieces of ceil(6 / 4) = 2, hence only 3 pieces
    /// assert_eq!(Tensor::zeros(&[6]).chunk(4, 0).len(), 3);
    /// ```
    ///
    /// # Panics
    /// If `chunks` is 0, the tensor is 0-d, or `dim` is out of range.
    #[track_caller]
    pub fn chunk(&self, chunks: usize, dim: isize) -> Vec<Tensor> {
        let d = dim_of("chunk", dim, self.shape());
        if chunks == 0 {
            panic!(
                "chunk: the number of chunks must be positive, got 0 (tensor shape {:?}), at {}",
                self.shape(),
                Location::caller()
            );
        }
        let n = self.shape()[d];
        if n == 0 {
            // as PyTorch: an empty dim gives `chunks` empty pieces
            return self.pieces(d, &vec![0; chunks]);
        }
        self.split(n.div_ceil(chunks), d as isize)
    }

    /// Consecutive narrows of dim `d` with the given sizes (which add up to the dim's size).
    #[track_caller]
    fn pieces(&self, d: usize, sizes: &[usize]) -> Vec<Tensor> {
        let mut start = 0;
        sizes
            .iter()
            .map(|&len| {
                let piece = self.narrow(d as isize, start as isize, len);
                start += len;
                piece
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn cat_joins_along_any_dim() {
        let a = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let b = Tensor::from_vec(vec![5.0, 6.0], &[1, 2]);
        let c = Tensor::cat(&[&a, &b], 0);
        assert_eq!(c.to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        // [[1, 2], [3, 4]] ++ [[1], [2]]ᵀ… along dim 1: [[1, 2, 5], [3, 4, 6]]
        let d = Tensor::cat(&[&a, &b.t()], -1);
        assert_eq!(d.to_vec::<f32>(), vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
        let ints = Tensor::from_vec_i64(vec![1, 2], &[2]);
        assert_eq!(
            Tensor::cat(&[&ints, &ints], 0).to_vec::<i64>(),
            vec![1, 2, 1, 2]
        );
    }

    #[test]
    fn stack_adds_a_dim() {
        let a = Tensor::from_vec(vec![1.0, 2.0], &[2]);
        let b = Tensor::from_vec(vec![3.0, 4.0], &[2]);
        let s = Tensor::stack(&[&a, &b], -1);
        assert_eq!(s.shape(), &[2, 2]);
        assert_eq!(s.to_vec::<f32>(), vec![1.0, 3.0, 2.0, 4.0]);
        assert_eq!(Tensor::stack(&[&a, &b, &a], 0).shape(), &[3, 2]);
    }

    #[test]
    fn split_and_chunk_follow_pytorch_sizes() {
        let x = Tensor::arange(0.0, 10.0, 1.0).reshape([2, 5]);
        let sizes = |v: Vec<Tensor>| v.iter().map(|t| t.shape()[1]).collect::<Vec<_>>();
        assert_eq!(sizes(x.split(2, 1)), vec![2, 2, 1]);
        assert_eq!(sizes(x.split(5, -1)), vec![5]);
        assert_eq!(sizes(x.split(7, 1)), vec![5]);
        assert_eq!(sizes(x.split_sizes(&[1, 0, 4], 1)), vec![1, 0, 4]);
        // chunk: pieces of ceil(5 / 3) = 2
        assert_eq!(sizes(x.chunk(3, 1)), vec![2, 2, 1]);
        assert_eq!(sizes(x.chunk(5, 1)), vec![1; 5]);
        // ceil(5 / 4) = 2 gives only 3 pieces, as in PyTorch
        assert_eq!(sizes(x.chunk(4, 1)), vec![2, 2, 1]);
        assert_eq!(Tensor::zeros(&[0]).chunk(3, 0).len(), 3);
        assert_eq!(Tensor::zeros(&[0]).split(2, 0).len(), 1);
        let parts = x.split(2, 1);
        assert_eq!(parts[2].to_vec::<f32>(), vec![4.0, 9.0]);
        assert!(!parts[0].is_contiguous());
    }

    #[test]
    fn split_pieces_share_storage_and_cat_rebuilds_the_tensor() {
        let x = Tensor::arange(0.0, 12.0, 1.0).reshape([3, 4]);
        let parts = x.chunk(2, 1);
        let base = x.to_ndarray::<f32>().as_ptr();
        assert_eq!(parts[1].to_ndarray::<f32>().as_ptr(), base.wrapping_add(2));
        let refs: Vec<&Tensor> = parts.iter().collect();
        assert_eq!(Tensor::cat(&refs, 1).to_vec::<f32>(), x.to_vec::<f32>());
    }

    #[test]
    fn cat_gradient_is_the_matching_stretch() {
        // y = Σ w ⊙ cat(a, b) ⇒ dy/da = w[:2], dy/db = w[2:]
        let a = Tensor::zeros(&[2]).requires_grad();
        let b = Tensor::zeros(&[1]).requires_grad();
        let w = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]);
        (Tensor::cat(&[&a, &b], 0) * &w).sum().backward();
        assert_eq!(a.grad().unwrap().to_vec::<f32>(), vec![1.0, 2.0]);
        assert_eq!(b.grad().unwrap().to_vec::<f32>(), vec![3.0]);
    }

    #[test]
    fn join_ops_gradcheck() {
        let a = randn64(&[2, 3], 1);
        let b = randn64_t(&[2, 4], 2);
        let c = randn64(&[5, 6], 3).narrow(0, 1, 2).slice(1, None, None, 3);
        gradcheck(
            |x| Tensor::cat(&[&x[0], &x[1], &x[2]], -1),
            &[a.clone(), b, c],
        )
        .unwrap();
        let d = randn64_t(&[2, 3], 4);
        gradcheck(
            |x| Tensor::stack(&[&x[0], &x[1]], 1),
            &[a.clone(), d.clone()],
        )
        .unwrap();
        gradcheck(|x| Tensor::stack(&[&x[0], &x[1]], -1), &[a, d]).unwrap();
        // each piece of a split, weighted differently so that mixing pieces up would show
        let x = randn64_t(&[5, 3], 5);
        gradcheck(
            |x| {
                let p = x[0].split(2, 0);
                Tensor::cat(&[&(&p[2] * 3.0), &p[0], &(&p[1] * 2.0)], 0)
            },
            std::slice::from_ref(&x),
        )
        .unwrap();
        gradcheck(
            |x| {
                let p = x[0].chunk(2, -1);
                &p[0] * &p[0] + (&p[1] * 2.0).sum()
            },
            std::slice::from_ref(&x),
        )
        .unwrap();
        gradcheck(
            |x| x[0].split_sizes(&[1, 2], 1)[1].sin(),
            std::slice::from_ref(&x),
        )
        .unwrap();
    }

    #[test]
    #[should_panic(
        expected = "cat: sizes of tensors must match except in dim 1: tensor 0 has shape [2, 3] but tensor 1 has shape [3, 3]"
    )]
    fn cat_with_mismatched_shapes_is_an_error() {
        let _ = Tensor::cat(&[&Tensor::zeros(&[2, 3]), &Tensor::zeros(&[3, 3])], 1);
    }

    #[test]
    #[should_panic(
        expected = "cat: expected all tensors to have dtype float32 (that of tensor 0), but tensor 1 has int64"
    )]
    fn cat_with_mixed_dtypes_is_an_error() {
        let _ = Tensor::cat(
            &[&Tensor::zeros(&[2]), &Tensor::from_vec_i64(vec![1], &[1])],
            0,
        );
    }

    #[test]
    #[should_panic(expected = "cat: expected a non-empty list of tensors")]
    fn cat_of_nothing_is_an_error() {
        let _ = Tensor::cat(&[], 0);
    }

    #[test]
    #[should_panic(
        expected = "stack: expects each tensor to be equal size, but got [2] at entry 0 and [3] at entry 1"
    )]
    fn stack_with_mismatched_shapes_is_an_error() {
        let _ = Tensor::stack(&[&Tensor::zeros(&[2]), &Tensor::zeros(&[3])], 0);
    }

    #[test]
    #[should_panic(
        expected = "split_sizes: split sizes [1, 1] do not add up to the size 3 of dim 0"
    )]
    fn split_sizes_must_cover_the_dim() {
        let _ = Tensor::zeros(&[3]).split_sizes(&[1, 1], 0);
    }

    #[test]
    #[should_panic(expected = "split: split_size must be positive for dim 0 of size 3")]
    fn split_by_zero_is_an_error() {
        let _ = Tensor::zeros(&[3]).split(0, 0);
    }

    #[test]
    #[should_panic(expected = "chunk: the number of chunks must be positive, got 0")]
    fn zero_chunks_is_an_error() {
        let _ = Tensor::zeros(&[3]).chunk(0, 0);
    }
}
