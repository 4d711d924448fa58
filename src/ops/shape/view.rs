//! reshape / view / flatten / unflatten, expand, permute / transpose / t, squeeze / unsqueeze,
//! contiguous, to_dtype.

use ndarray::Dimension as _;
use std::panic::Location;

use ndarray::{Axis, IxDyn};

use crate::autograd::function::Op;
use crate::autograd::tape::Attr;
use crate::tensor::args::{infer_shape, norm_dim, try_infer_shape, ShapeArg};
use crate::tensor::{DType, Data, Tensor};

/// Reshapes data, sharing storage when the layout is row-major contiguous.
fn reshape_data(d: &Data, shape: &[usize]) -> Data {
    let d = d.to_standard_layout();
    crate::with_any!(&d, |a: T| Data::from(
        a.clone()
            .into_shape_with_order(IxDyn(shape))
            .expect("sizes were checked")
    ))
}

impl Tensor {
    /// The same elements in a new shape (one size may be `-1`), like `x.reshape(...)`. Shares the
    /// storage when the tensor is contiguous, copies otherwise.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::arange(0.0, 6.0, 1.0);
    /// assert_eq!(x.reshape([2, -1]).shape(), &[2, 3]);
    /// ```
    ///
    /// # Panics
    /// If the sizes do not multiply to the number of elements.
    #[track_caller]
    pub fn reshape(&self, shape: impl ShapeArg) -> Tensor {
        let shape = infer_shape("reshape", &shape.to_isizes(), self.numel(), self.shape());
        self.reshape_to(shape, "reshape")
    }

    /// [`reshape`](Tensor::reshape) returning an error instead of panicking.
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) if the sizes do not fit the number of elements.
    #[track_caller]
    pub fn try_reshape(&self, shape: impl ShapeArg) -> crate::Result<Tensor> {
        let shape = try_infer_shape("reshape", &shape.to_isizes(), self.numel(), self.shape())
            .map_err(crate::Error::Shape)?;
        Ok(self.reshape_to(shape, "reshape"))
    }

    /// A reshape recorded under PyTorch's `_unsafe_view` name, which is what PyTorch's own
    /// folded n-d @ 2-d matmul ends with (its node shows as `UnsafeViewBackward0`).
    #[track_caller]
    pub(crate) fn unsafe_view(&self, shape: Vec<usize>) -> Tensor {
        self.reshape_to(shape, "unsafe_view")
    }

    #[track_caller]
    fn reshape_to(&self, shape: Vec<usize>, name: &'static str) -> Tensor {
        if shape == self.shape() {
            return self.clone();
        }
        let inputs = [self];
        let op = Op::new(name, &inputs).attr("shape", Attr::usizes(&shape));
        let out = self.with_data(|d| reshape_data(d, &shape));
        let from = IxDyn(self.shape());
        op.finish(out, move |_, g| vec![Some(g.reshape(from.slice()))])
    }

    /// Like [`reshape`](Tensor::reshape) but, as in PyTorch, only for contiguous tensors.
    ///
    /// # Panics
    /// If the tensor is not contiguous (call [`contiguous`](Tensor::contiguous) or use
    /// `reshape`), or if the sizes do not fit.
    #[track_caller]
    pub fn view(&self, shape: impl ShapeArg) -> Tensor {
        if !self.is_contiguous() {
            panic!(
                "view: the tensor of shape {:?} with strides {:?} is not contiguous; use \
                 .reshape(...) instead, at {}",
                self.shape(),
                self.stride(),
                Location::caller()
            );
        }
        self.reshape(shape)
    }

    /// Merges dims `start_dim..=end_dim` into one, like `torch.flatten(x, start_dim, end_dim)`.
    /// Shares the storage when the tensor is contiguous (as [`reshape`](Tensor::reshape)). A 0-d
    /// tensor becomes 1-d.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::zeros(&[2, 3, 4, 5]);
    /// assert_eq!(x.flatten(1, 2).shape(), &[2, 12, 5]);
    /// assert_eq!(x.flatten(1, -1).shape(), &[2, 60]);
    /// ```
    ///
    /// # Panics
    /// If a dim is out of range or `start_dim` comes after `end_dim`.
    #[track_caller]
    pub fn flatten(&self, start_dim: isize, end_dim: isize) -> Tensor {
        let n = self.ndim();
        // a 0-d tensor takes dims like a 1-d one (0 and -1), as in PyTorch
        let (s, e) = (
            norm_dim("flatten", start_dim, n.max(1)),
            norm_dim("flatten", end_dim, n.max(1)),
        );
        if s > e {
            panic!(
                "flatten: start_dim ({start_dim}) cannot come after end_dim ({end_dim}) for a \
                 tensor of shape {:?}, at {}",
                self.shape(),
                Location::caller()
            );
        }
        if n == 0 {
            return self.reshape([1]);
        }
        let me = self.shape();
        let mut shape = me[..s].to_vec();
        shape.push(me[s..=e].iter().product());
        shape.extend_from_slice(&me[e + 1..]);
        self.reshape(shape)
    }

    /// All dims merged into one, like `x.flatten()`.
    #[track_caller]
    pub fn flatten_all(&self) -> Tensor {
        self.flatten(0, -1)
    }

    /// Splits dim `dim` into `sizes` (one may be `-1`), like `x.unflatten(dim, sizes)`: the
    /// inverse of [`flatten`](Tensor::flatten).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// assert_eq!(Tensor::zeros(&[2, 12]).unflatten(-1, [3, -1]).shape(), &[2, 3, 4]);
    /// ```
    ///
    /// # Panics
    /// If `dim` is out of range or the sizes do not multiply to the size of the dim.
    #[track_caller]
    pub fn unflatten(&self, dim: isize, sizes: impl ShapeArg) -> Tensor {
        let d = super::dim_of("unflatten", dim, self.shape());
        let me = self.shape();
        let inner = infer_shape("unflatten", &sizes.to_isizes(), me[d], &me[d..=d]);
        let mut shape = me[..d].to_vec();
        shape.extend(inner);
        shape.extend_from_slice(&me[d + 1..]);
        self.reshape(shape)
    }

    /// Repeats size-1 dims (and prepends new ones) to reach `shape`, like `x.expand(...)`; a size
    /// of `-1` keeps that dim. Its gradient sums over the expanded dims.
    ///
    /// # Panics
    /// If a non-1 dim would change size.
    #[track_caller]
    pub fn expand(&self, shape: impl ShapeArg) -> Tensor {
        let req = shape.to_isizes();
        let me = self.shape();
        if req.len() < me.len() {
            panic!(
                "expand: the number of sizes provided ({}) must be greater or equal to the number \
                 of dimensions in the tensor ({}), at {}",
                req.len(),
                me.len(),
                Location::caller()
            );
        }
        let lead = req.len() - me.len();
        let target: Vec<usize> = req
            .iter()
            .enumerate()
            .map(|(i, &s)| {
                if s == -1 && i >= lead {
                    me[i - lead]
                } else {
                    s.max(0) as usize
                }
            })
            .collect();
        for i in 0..me.len() {
            if me[i] != 1 && me[i] != target[lead + i] {
                panic!(
                    "expand: the expanded size {} must match the existing size {} at dim {i} \
                     (tensor shape {me:?}, target {target:?}), at {}",
                    target[lead + i],
                    me[i],
                    Location::caller()
                );
            }
        }
        if target == me {
            return self.clone();
        }
        let inputs = [self];
        let op = Op::new("expand", &inputs).attr("shape", Attr::usizes(&target));
        let out = self.with_data(|d| {
            crate::with_any!(d, |a: T| Data::from(
                a.broadcast(IxDyn(&target))
                    .expect("checked")
                    .to_owned()
                    .into_shared()
            ))
        });
        let from = IxDyn(me);
        op.finish(out, move |_, g| vec![Some(g.sum_to(from.slice()))])
    }

    /// Alias of [`expand`](Tensor::expand), like `torch.broadcast_to`.
    ///
    /// # Panics
    /// As `expand`.
    #[track_caller]
    pub fn broadcast_to(&self, shape: impl ShapeArg) -> Tensor {
        self.expand(shape)
    }

    /// Reorders the dims, like `x.permute(...)`. A view: no data moves.
    ///
    /// # Panics
    /// If `dims` is not a permutation of the tensor's dims.
    #[track_caller]
    pub fn permute(&self, dims: impl ShapeArg) -> Tensor {
        let n = self.ndim();
        let raw = dims.to_isizes();
        let perm: Vec<usize> = raw.iter().map(|&d| norm_dim("permute", d, n)).collect();
        let mut seen = vec![false; n];
        let valid = perm.len() == n && perm.iter().all(|&d| !std::mem::replace(&mut seen[d], true));
        if !valid {
            panic!(
                "permute: {raw:?} is not a permutation of the {n} dims of a tensor of shape {:?}, at {}",
                self.shape(),
                Location::caller()
            );
        }
        let inputs = [self];
        let op = Op::new("permute", &inputs).attr("dims", Attr::usizes(&perm));
        let out = self.with_data(|d| {
            crate::with_any!(d, |a: T| Data::from(a.clone().permuted_axes(IxDyn(&perm))))
        });
        let mut inv = vec![0usize; n];
        for (i, &p) in perm.iter().enumerate() {
            inv[p] = i;
        }
        op.finish(out, move |_, g| vec![Some(g.permute(inv.clone()))])
    }

    /// Swaps two dims, like `x.transpose(d0, d1)`. A view.
    ///
    /// # Panics
    /// If a dim is out of range.
    #[track_caller]
    pub fn transpose(&self, dim0: isize, dim1: isize) -> Tensor {
        let n = self.ndim();
        let (a, b) = (
            norm_dim("transpose", dim0, n),
            norm_dim("transpose", dim1, n),
        );
        if a == b {
            return self.clone();
        }
        let mut perm: Vec<usize> = (0..n).collect();
        perm.swap(a, b);
        self.permute(perm)
    }

    /// The transpose of a matrix (a 1-d or 0-d tensor is returned as is), like `x.t()`.
    ///
    /// # Panics
    /// If the tensor has more than 2 dims.
    #[track_caller]
    pub fn t(&self) -> Tensor {
        match self.ndim() {
            0 | 1 => self.clone(),
            2 => self.transpose(0, 1),
            n => panic!(
                "t: expects a tensor with <= 2 dimensions, but the tensor has {n} (shape {:?}); \
                 use transpose, at {}",
                self.shape(),
                Location::caller()
            ),
        }
    }

    /// Inserts a size-1 dim at `dim`, like `x.unsqueeze(dim)`. A view.
    ///
    /// # Panics
    /// If `dim` is out of range `[-ndim-1, ndim]`.
    #[track_caller]
    pub fn unsqueeze(&self, dim: isize) -> Tensor {
        let d = norm_dim("unsqueeze", dim, self.ndim() + 1);
        let mut shape = self.shape().to_vec();
        shape.insert(d, 1);
        self.reshape_view(shape, d, true)
    }

    /// Removes all size-1 dims, like `x.squeeze()`.
    pub fn squeeze(&self) -> Tensor {
        let shape: Vec<usize> = self.shape().iter().copied().filter(|&s| s != 1).collect();
        self.reshape(shape)
    }

    /// Removes dim `dim` if its size is 1 (otherwise returns the tensor as is), like
    /// `x.squeeze(dim)`.
    ///
    /// # Panics
    /// If `dim` is out of range.
    #[track_caller]
    pub fn squeeze_dim(&self, dim: isize) -> Tensor {
        let d = norm_dim("squeeze", dim, self.ndim());
        if self.ndim() == 0 || self.shape()[d] != 1 {
            return self.clone();
        }
        let mut shape = self.shape().to_vec();
        shape.remove(d);
        self.reshape_view(shape, d, false)
    }

    /// Adds or removes one size-1 axis without copying, whatever the layout.
    #[track_caller]
    fn reshape_view(&self, shape: Vec<usize>, axis: usize, insert: bool) -> Tensor {
        let inputs = [self];
        let op = Op::new(if insert { "unsqueeze" } else { "squeeze" }, &inputs)
            .attr("dim", Attr::Int(axis as i64));
        let out = self.with_data(|d| {
            crate::with_any!(d, |a: T| Data::from(if insert {
                a.clone().insert_axis(Axis(axis))
            } else {
                a.clone().index_axis_move(Axis(axis), 0)
            }))
        });
        debug_assert_eq!(out.shape(), &shape[..]);
        let from = IxDyn(self.shape());
        op.finish(out, move |_, g| vec![Some(g.reshape(from.slice()))])
    }

    /// A row-major contiguous copy, or the tensor itself if it already is, like
    /// `x.contiguous()`.
    #[track_caller]
    pub fn contiguous(&self) -> Tensor {
        if self.is_contiguous() {
            return self.clone();
        }
        let inputs = [self];
        let op = Op::new("contiguous", &inputs);
        let out = self.with_data(Data::to_standard_layout);
        op.finish(out, |_, g| vec![Some(g.clone())])
    }

    /// The tensor converted to `dtype`, like `x.to(dtype)`. Between float dtypes the gradient
    /// flows back (converted); to integer or bool dtypes it does not.
    #[track_caller]
    pub fn to_dtype(&self, dtype: DType) -> Tensor {
        if dtype == self.dtype() {
            return self.clone();
        }
        let inputs = [self];
        let op = Op::new("to_dtype", &inputs).attr("dtype", Attr::DType(dtype));
        let out = self.with_data(|d| d.cast(dtype));
        if !dtype.is_float() {
            return op.finish_no_grad(out);
        }
        let from = self.dtype();
        op.finish(out, move |_, g| vec![Some(g.to_dtype(from))])
    }

    /// Converted to float64, like `x.double()`.
    #[track_caller]
    pub fn double(&self) -> Tensor {
        self.to_dtype(DType::F64)
    }

    /// Converted to float32, like `x.float()`.
    #[track_caller]
    pub fn float(&self) -> Tensor {
        self.to_dtype(DType::F32)
    }

    /// Converted to int64 (truncating), like `x.long()`.
    #[track_caller]
    pub fn long(&self) -> Tensor {
        self.to_dtype(DType::I64)
    }
}

#[cfg(test)]
mod tests {
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn reshape_shares_storage_when_contiguous() {
        let x = Tensor::arange(0.0, 6.0, 1.0);
        let y = x.reshape([3, 2]);
        assert_eq!(y.to_vec::<f32>(), x.to_vec::<f32>());
        let px = x.to_ndarray::<f32>().as_ptr();
        assert_eq!(px, y.to_ndarray::<f32>().as_ptr());
    }

    #[test]
    fn reshape_of_a_transpose_copies_in_logical_order() {
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        assert_eq!(
            x.t().reshape([-1]).to_vec::<f32>(),
            vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]
        );
    }

    #[test]
    fn shape_ops_gradcheck() {
        for x in [randn64(&[2, 3, 4], 1), randn64_t(&[4, 3], 2).unsqueeze(0)] {
            gradcheck(|x| x[0].reshape([-1, 2]), std::slice::from_ref(&x)).unwrap();
            gradcheck(|x| x[0].permute([2, 0, 1]), std::slice::from_ref(&x)).unwrap();
            gradcheck(|x| x[0].transpose(0, -1), std::slice::from_ref(&x)).unwrap();
            gradcheck(
                |x| x[0].unsqueeze(1).squeeze_dim(1),
                std::slice::from_ref(&x),
            )
            .unwrap();
            gradcheck(|x| x[0].contiguous(), std::slice::from_ref(&x)).unwrap();
        }
        gradcheck(|x| x[0].expand([2, 3, 4]), &[randn64(&[3, 1], 3)]).unwrap();
        gradcheck(|x| x[0].t(), &[randn64(&[3, 2], 4)]).unwrap();
    }

    #[test]
    fn to_dtype_passes_gradients_between_floats() {
        let x = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
        let y = x.double().powf(2.0).sum();
        y.backward();
        assert_eq!(x.grad().unwrap().to_vec::<f32>(), vec![2.0, 4.0]);
    }

    #[test]
    fn flatten_merges_a_range_of_dims() {
        let x = Tensor::zeros(&[2, 3, 4, 5]);
        assert_eq!(x.flatten(0, 1).shape(), &[6, 4, 5]);
        assert_eq!(x.flatten(-2, -1).shape(), &[2, 3, 20]);
        assert_eq!(x.flatten(2, 2).shape(), &[2, 3, 4, 5]);
        assert_eq!(x.flatten_all().shape(), &[120]);
        assert_eq!(Tensor::scalar(3.0).flatten_all().shape(), &[1]);
        // a transposed input flattens in logical order: xᵀ = [[1, 3], [2, 4]]
        let y = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]).t();
        assert_eq!(y.flatten_all().to_vec::<f32>(), vec![1.0, 3.0, 2.0, 4.0]);
        assert_eq!(x.flatten(1, 2).unflatten(1, [3, -1]).shape(), x.shape());
    }

    #[test]
    fn flatten_gradcheck() {
        for x in [randn64(&[2, 3, 4], 5), randn64_t(&[2, 3, 4], 6)] {
            gradcheck(|x| x[0].flatten(1, -1), std::slice::from_ref(&x)).unwrap();
            gradcheck(|x| x[0].flatten_all(), std::slice::from_ref(&x)).unwrap();
            gradcheck(|x| x[0].unflatten(-1, [2, 2]), std::slice::from_ref(&x)).unwrap();
        }
    }

    #[test]
    #[should_panic(
        expected = "flatten: start_dim (2) cannot come after end_dim (1) for a tensor of shape [2, 3, 4]"
    )]
    fn flatten_with_reversed_dims_is_an_error() {
        let _ = Tensor::zeros(&[2, 3, 4]).flatten(2, 1);
    }

    #[test]
    #[should_panic(expected = "unflatten: shape [4, -1] is invalid for input of size 6")]
    fn unflatten_to_wrong_sizes_is_an_error() {
        let _ = Tensor::zeros(&[2, 6]).unflatten(1, [4, -1]);
    }

    #[test]
    #[should_panic(expected = "view: the tensor of shape [3, 2]")]
    fn view_of_a_non_contiguous_tensor_is_an_error() {
        let _ = Tensor::zeros(&[2, 3]).t().view([6]);
    }

    #[test]
    #[should_panic(expected = "reshape: shape [4, -1] is invalid for input of size 6")]
    fn reshape_to_a_wrong_size_is_an_error() {
        let _ = Tensor::zeros(&[2, 3]).reshape([4, -1]);
    }

    #[test]
    #[should_panic(expected = "permute: [0, 0] is not a permutation")]
    fn permute_rejects_repeated_dims() {
        let _ = Tensor::zeros(&[2, 3]).permute([0, 0]);
    }
}
