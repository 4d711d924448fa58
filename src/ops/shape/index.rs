//! Indexing with integer (int64) index tensors: index_select / index_add along one dim, and the
//! element-wise gather / scatter_add. Each one's backward is written with the other:
//! index_select ↔ index_add, gather ↔ scatter_add, so higher-order gradients flow.
//!
//! Indices are checked before any element is read or written: an out-of-range index panics with
//! the op, the index value, the dim and its size, never reads out of bounds.

use ndarray::Dimension as _;
use std::ops::AddAssign;
use std::panic::Location;

use ndarray::{ArrayD, Axis, IxDyn};

use super::dim_of;
use super::slice::{embed_region, range};
use crate::autograd::function::Op;
use crate::autograd::tape::Attr;
use crate::ops::binary::same_dtype_or_panic;
use crate::ops::unary::PAR_THRESHOLD;
use crate::tensor::{Data, Storage, Tensor};

/// The elements of an int64 index tensor.
fn index_data(op: &str, index: &Tensor, loc: &Location) -> Storage<i64> {
    index.with_data(|d| match d {
        Data::I64(a) => a.clone(),
        other => panic!(
            "{op}: the index tensor must be int64, got {} (convert it with .long()), at {loc}",
            other.dtype()
        ),
    })
}

/// Panics at the first index outside `[0, size)`, naming `op`, the value, the dim and its size.
fn check_bounds(op: &str, idx: &Storage<i64>, dim: usize, shape: &[usize], loc: &Location) {
    let size = shape[dim] as i64;
    if let Some(bad) = idx.iter().find(|&&i| !(0..size).contains(&i)) {
        panic!(
            "{op}: index {bad} is out of bounds for dim {dim} with size {size} (tensor shape \
             {shape:?}), at {loc}"
        );
    }
}

/// Panics unless `index` is 1-d (or 0-d, read as one index).
fn check_vector(op: &str, index: &Tensor, loc: &Location) {
    if index.ndim() > 1 {
        panic!(
            "{op}: the index must be a 1-d tensor, got shape {:?}, at {loc}",
            index.shape()
        );
    }
}

/// Panics unless `index` has the dims of `t` (named `what`) and is no larger than it in each dim
/// (except `skip`, the indexed dim of the tensor indices point into).
fn check_fits(
    op: &str,
    index: &[usize],
    t: &[usize],
    what: &str,
    skip: Option<usize>,
    loc: &Location,
) {
    let fits = index.len() == t.len() && (0..t.len()).all(|k| Some(k) == skip || index[k] <= t[k]);
    if !fits {
        panic!(
            "{op}: index of shape {index:?} does not fit {what} of shape {t:?} (it needs as many \
             dims and no larger sizes{}), at {loc}",
            skip.map_or(String::new(), |d| format!(" outside dim {d}"))
        );
    }
}

/// Runs `$body` with `$x`, `$y` bound to two arrays of the same addable dtype (float or int64).
macro_rules! with_addable2 {
    ($a:expr, $b:expr, $op:expr, $loc:expr, |$x:ident, $y:ident| $body:expr) => {
        match ($a, $b) {
            (Data::F32($x), Data::F32($y)) => Data::from($body),
            (Data::F64($x), Data::F64($y)) => Data::from($body),
            (Data::I64($x), Data::I64($y)) => Data::from($body),
            (x, _) => panic!(
                "{}: expected float or int64 tensors, got {}, at {}",
                $op,
                x.dtype(),
                $loc
            ),
        }
    };
}

/// `out = a; out[.., pos[j], ..] += src[.., j, ..]` along `dim`.
fn index_add_kernel<T: Copy + AddAssign>(
    a: &Storage<T>,
    dim: usize,
    pos: &[usize],
    src: &Storage<T>,
) -> Storage<T> {
    let mut out = a.to_owned();
    for (j, &i) in pos.iter().enumerate() {
        out.index_axis_mut(Axis(dim), i)
            .zip_mut_with(&src.index_axis(Axis(dim), j), |o, &s| *o += s);
    }
    out.into_shared()
}

/// Row-major strides of `shape`, in elements.
fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        strides[k] = strides[k + 1] * shape[k + 1];
    }
    strides
}

/// The offset, under `strides`, of the `j`-th position (row-major) of `shape`, with the
/// coordinate of dim `dim` replaced by `at` when given.
fn offset(j: usize, shape: &[usize], strides: &[usize], replace: Option<(usize, usize)>) -> usize {
    let (mut rem, mut off) = (j, 0);
    for k in (0..shape.len()).rev() {
        let c = rem % shape[k];
        rem /= shape[k];
        off += match replace {
            Some((dim, at)) if dim == k => at,
            _ => c,
        } * strides[k];
    }
    off
}

/// `out[p] = a[p with p[dim] = idx[p]]` for every position `p` of `idx`.
fn gather_kernel<T: Copy + Send + Sync>(
    a: &Storage<T>,
    dim: usize,
    idx: &Storage<i64>,
) -> Storage<T> {
    let (src, ix) = (a.as_standard_layout(), idx.as_standard_layout());
    let (src, ix) = (
        src.as_slice().expect("standard"),
        ix.as_slice().expect("standard"),
    );
    let (shape, strides) = (idx.shape(), row_major_strides(a.shape()));
    let read = |j: usize| src[offset(j, shape, &strides, Some((dim, ix[j] as usize)))];
    let par = crate::parallel::worth_splitting(ix.len(), PAR_THRESHOLD);
    let out: Vec<T> = crate::parallel::map_collect(ix.len(), par, read);
    ArrayD::from_shape_vec(IxDyn(shape), out)
        .expect("one value per index")
        .into_shared()
}

/// `out = a; out[p with p[dim] = idx[p]] += src[p]` for every position `p` of `idx`.
fn scatter_add_kernel<T: Copy + AddAssign>(
    a: &Storage<T>,
    dim: usize,
    idx: &Storage<i64>,
    src: &Storage<T>,
) -> Storage<T> {
    let mut out = a.as_standard_layout().into_owned();
    let (vals, ix) = (src.as_standard_layout(), idx.as_standard_layout());
    let (vals, ix) = (
        vals.as_slice().expect("standard"),
        ix.as_slice().expect("standard"),
    );
    let (shape, out_strides, src_strides) = (
        idx.shape(),
        row_major_strides(a.shape()),
        row_major_strides(src.shape()),
    );
    let flat = out.as_slice_mut().expect("standard");
    for (j, &i) in ix.iter().enumerate() {
        flat[offset(j, shape, &out_strides, Some((dim, i as usize)))] +=
            vals[offset(j, shape, &src_strides, None)];
    }
    out.into_shared()
}

/// The two indexing pairs, each a read and the scatter-add that is its adjoint: the backward
/// of one is the other.
#[derive(Clone, Copy)]
enum Pair {
    /// index_select / index_add: whole entries along a dim, picked by a 1-d index.
    Entries,
    /// gather / scatter_add: single elements, picked by an index with the input's dims.
    Elements,
}

impl Pair {
    #[track_caller]
    fn read(self, x: &Tensor, dim: usize, index: &Tensor) -> Tensor {
        match self {
            Pair::Entries => x.index_select(dim as isize, index),
            Pair::Elements => x.gather(dim as isize, index),
        }
    }

    #[track_caller]
    fn add(self, x: &Tensor, dim: usize, index: &Tensor, src: &Tensor) -> Tensor {
        match self {
            Pair::Entries => x.index_add(dim as isize, index, src),
            Pair::Elements => x.scatter_add(dim as isize, index, src),
        }
    }

    /// Records `out`, read from `x` at `index` along `dim`.
    #[track_caller]
    fn record_read(
        self,
        name: &'static str,
        x: &Tensor,
        dim: usize,
        index: &Tensor,
        out: Data,
    ) -> Tensor {
        let inputs = [x, index];
        let op = Op::new(name, &inputs)
            .attr("dim", Attr::Int(dim as i64))
            .save(index);
        let shape = IxDyn(x.shape());
        // each read element sends its gradient back to where it was read, summing repeats
        op.finish(out, move |ctx, g| {
            let zeros = Tensor::zeros_dtype(shape.slice(), g.dtype());
            vec![Some(self.add(&zeros, dim, &ctx.saved(0), g)), None]
        })
    }

    /// Records `out`, `x` with `src` added at `index` along `dim`.
    #[track_caller]
    fn record_add(
        self,
        name: &'static str,
        x: &Tensor,
        dim: usize,
        index: &Tensor,
        src: &Tensor,
        out: Data,
    ) -> Tensor {
        let inputs = [x, index, src];
        let op = Op::new(name, &inputs)
            .attr("dim", Attr::Int(dim as i64))
            .save(index);
        let src_shape = IxDyn(src.shape());
        // ∂out/∂x = identity; each element of src reads the gradient where it was added (zero
        // for the part of a scatter_add src outside index's shape, which is not used)
        op.finish(out, move |ctx, g| {
            let gs = ctx.needs_grad(2).then(|| {
                let picked = self.read(g, dim, &ctx.saved(0));
                if picked.shape() == src_shape.slice() {
                    return picked;
                }
                let region = picked.shape().iter().map(|&n| range(0, n, 1)).collect();
                embed_region(&picked, "slice_backward", src_shape.slice(), region, 0.0)
            });
            vec![Some(g.clone()), None, gs]
        })
    }
}

impl Tensor {
    /// The entries `index[0], index[1], …` of dim `dim`, like `torch.index_select(x, dim, index)`
    /// (`x[:, index]` for `dim = 1`). A copy. `index` is a 1-d int64 tensor; entries may repeat.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]);
    /// let i = Tensor::from_vec_i64(vec![2, 0, 2], &[3]);
    /// assert_eq!(x.index_select(1, &i).to_vec::<f32>(), vec![2.0, 0.0, 2.0, 5.0, 3.0, 5.0]);
    /// ```
    ///
    /// # Panics
    /// If `index` is not a 1-d int64 tensor, an index is outside `[0, size of dim)`, or `dim` is
    /// out of range.
    #[track_caller]
    pub fn index_select(&self, dim: isize, index: &Tensor) -> Tensor {
        let loc = Location::caller();
        let d = dim_of("index_select", dim, self.shape());
        check_vector("index_select", index, loc);
        let idx = index_data("index_select", index, loc);
        check_bounds("index_select", &idx, d, self.shape(), loc);
        let pos: Vec<usize> = idx.iter().map(|&i| i as usize).collect();
        let out = self.with_data(|a| {
            crate::with_any!(a, |a: T| Data::from(a.select(Axis(d), &pos).into_shared()))
        });
        Pair::Entries.record_read("index_select", self, d, index, out)
    }

    /// `self` with `source[.., j, ..]` added to entry `index[j]` of dim `dim`, out of place, like
    /// `torch.index_add(x, dim, index, source)`. Repeated indices accumulate.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::zeros(&[3]);
    /// let i = Tensor::from_vec_i64(vec![0, 2, 0], &[3]);
    /// let y = x.index_add(0, &i, &Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]));
    /// assert_eq!(y.to_vec::<f32>(), vec![4.0, 0.0, 2.0]);
    /// ```
    ///
    /// # Panics
    /// If `index` is not a 1-d int64 tensor, an index is out of range, the dtypes differ, or
    /// `source` does not have `self`'s shape with `index.len()` entries in dim `dim`.
    #[track_caller]
    pub fn index_add(&self, dim: isize, index: &Tensor, source: &Tensor) -> Tensor {
        let loc = Location::caller();
        let d = dim_of("index_add", dim, self.shape());
        check_vector("index_add", index, loc);
        same_dtype_or_panic("index_add", self, source);
        let mut expect = self.shape().to_vec();
        expect[d] = index.numel();
        if source.shape() != expect {
            panic!(
                "index_add: source of shape {:?} does not match the expected shape {expect:?} \
                 (tensor shape {:?}, {} indices along dim {d}), at {loc}",
                source.shape(),
                self.shape(),
                index.numel()
            );
        }
        let idx = index_data("index_add", index, loc);
        check_bounds("index_add", &idx, d, self.shape(), loc);
        let pos: Vec<usize> = idx.iter().map(|&i| i as usize).collect();
        let out = self.with_data(|a| {
            source.with_data(|b| {
                with_addable2!(a, b, "index_add", loc, |a, b| index_add_kernel(
                    a, d, &pos, b
                ))
            })
        });
        Pair::Entries.record_add("index_add", self, d, index, source, out)
    }

    /// Picks elements along dim `dim` by an index tensor of the same number of dims, like
    /// `torch.gather(x, dim, index)`: for `dim = 1`, `out[i][j][k] = x[i][index[i][j][k]][k]`.
    /// The output has `index`'s shape, which may be smaller than `x`'s in every dim but `dim`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    /// let i = Tensor::from_vec_i64(vec![0, 0, 1, 0], &[2, 2]);
    /// assert_eq!(x.gather(1, &i).to_vec::<f32>(), vec![1.0, 1.0, 4.0, 3.0]);
    /// ```
    ///
    /// # Panics
    /// If `index` is not int64, has another number of dims or a larger size outside `dim`, an
    /// index is outside `[0, size of dim)`, or `dim` is out of range.
    #[track_caller]
    pub fn gather(&self, dim: isize, index: &Tensor) -> Tensor {
        let loc = Location::caller();
        let d = dim_of("gather", dim, self.shape());
        check_fits(
            "gather",
            index.shape(),
            self.shape(),
            "the input",
            Some(d),
            loc,
        );
        let idx = index_data("gather", index, loc);
        check_bounds("gather", &idx, d, self.shape(), loc);
        let out =
            self.with_data(|a| crate::with_any!(a, |a: T| Data::from(gather_kernel(a, d, &idx))));
        Pair::Elements.record_read("gather", self, d, index, out)
    }

    /// `self` with `src[p]` added at position `p` with `p[dim]` replaced by `index[p]`, for every
    /// position `p` of `index`; out of place, like `torch.scatter_add(x, dim, index, src)`:
    /// for `dim = 0`, `out[index[i][j]][j] += src[i][j]`.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::zeros(&[2, 2]);
    /// let i = Tensor::from_vec_i64(vec![1, 0, 1, 1], &[2, 2]);
    /// let src = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]);
    /// // out[1][0] = 1 + 3, out[0][1] = 2, out[1][1] = 4
    /// assert_eq!(x.scatter_add(0, &i, &src).to_vec::<f32>(), vec![0.0, 2.0, 4.0, 4.0]);
    /// ```
    ///
    /// # Panics
    /// If `index` is not int64, the dtypes of `self` and `src` differ, the three do not have the
    /// same number of dims, `index` is larger than `src` in some dim or than `self` outside
    /// `dim`, or an index is outside `[0, size of dim)`.
    #[track_caller]
    pub fn scatter_add(&self, dim: isize, index: &Tensor, src: &Tensor) -> Tensor {
        let loc = Location::caller();
        let d = dim_of("scatter_add", dim, self.shape());
        same_dtype_or_panic("scatter_add", self, src);
        check_fits("scatter_add", index.shape(), src.shape(), "src", None, loc);
        check_fits(
            "scatter_add",
            index.shape(),
            self.shape(),
            "self",
            Some(d),
            loc,
        );
        let idx = index_data("scatter_add", index, loc);
        check_bounds("scatter_add", &idx, d, self.shape(), loc);
        let out = self.with_data(|a| {
            src.with_data(|b| {
                with_addable2!(a, b, "scatter_add", loc, |a, b| scatter_add_kernel(
                    a, d, &idx, b
                ))
            })
        });
        Pair::Elements.record_add("scatter_add", self, d, index, src, out)
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::shape::grad_of;
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    fn long(v: Vec<i64>, shape: &[usize]) -> Tensor {
        Tensor::from_vec_i64(v, shape)
    }

    #[test]
    fn index_select_picks_rows_with_repeats() {
        let x = Tensor::arange(0.0, 6.0, 1.0).reshape([3, 2]);
        // rows 2, 2, 0 of [[0, 1], [2, 3], [4, 5]]
        let y = x.index_select(-2, &long(vec![2, 2, 0], &[3]));
        assert_eq!(y.to_vec::<f32>(), vec![4.0, 5.0, 4.0, 5.0, 0.0, 1.0]);
        let ints = long(vec![7, 8, 9], &[3]).index_select(0, &long(vec![1], &[1]));
        assert_eq!(ints.to_vec::<i64>(), vec![8]);
    }

    #[test]
    fn index_select_gradient_counts_repeats() {
        // y = Σ x[[2, 2, 0]] ⇒ dy/dx = number of times each entry was picked
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).requires_grad();
        x.index_select(0, &long(vec![2, 2, 0], &[3]))
            .sum()
            .backward();
        assert_eq!(x.grad().unwrap().to_vec::<f32>(), vec![1.0, 0.0, 2.0]);
    }

    #[test]
    fn gather_and_scatter_add_values() {
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        // dim 1: out[i][j] = x[i][idx[i][j]], idx = [[2, 0], [1, 1]]
        let idx = long(vec![2, 0, 1, 1], &[2, 2]);
        assert_eq!(x.gather(1, &idx).to_vec::<f32>(), vec![3.0, 1.0, 5.0, 5.0]);
        // dim 0 with a smaller index: out[0][j] = x[idx[0][j]][j], idx = [[1, 0, 1]]
        let idx0 = long(vec![1, 0, 1], &[1, 3]);
        assert_eq!(x.gather(0, &idx0).to_vec::<f32>(), vec![4.0, 2.0, 6.0]);
        // scatter_add dim 1: out[i][idx[i][j]] += src[i][j]
        let src = Tensor::from_vec(vec![10.0, 20.0, 30.0, 40.0], &[2, 2]);
        assert_eq!(
            x.scatter_add(1, &idx, &src).to_vec::<f32>(),
            vec![1.0 + 20.0, 2.0, 3.0 + 10.0, 4.0, 5.0 + 30.0 + 40.0, 6.0]
        );
    }

    #[test]
    fn index_ops_gradcheck() {
        let idx1 = long(vec![3, 0, 3, 1, 2], &[5]);
        let idx2 = long(vec![0, 2, 2, 1, 0, 0, 1, 1], &[2, 4]);
        let idx2_dim0 = long(vec![1, 0, 2, 3, 3, 3], &[2, 3]);
        let inputs = [
            randn64(&[4, 3], 1),
            randn64_t(&[4, 3], 2),
            randn64(&[6, 5], 3).narrow(0, 1, 4).narrow(1, 1, 3),
        ];
        for x in inputs {
            let x1 = std::slice::from_ref(&x);
            gradcheck(|x| x[0].index_select(0, &idx1), x1).unwrap();
            gradcheck(
                |x| x[0].index_select(-1, &idx2_dim0.narrow(0, 0, 1).flatten_all()),
                x1,
            )
            .unwrap();
            gradcheck(|x| x[0].t().gather(-1, &idx2), x1).unwrap();
            gradcheck(|x| x[0].gather(0, &idx2_dim0), x1).unwrap();
            // scatter_add: both self and src (src larger than index) differentiate
            let src = randn64(&[3, 5], 4);
            gradcheck(|x| x[0].t().scatter_add(1, &idx2, &x[1]), &[x.clone(), src]).unwrap();
            let src0 = randn64_t(&[2, 3], 5);
            gradcheck(
                |x| x[0].scatter_add(-2, &idx2_dim0, &x[1]),
                &[x.clone(), src0],
            )
            .unwrap();
            let s = randn64(&[5, 3], 6);
            gradcheck(|x| x[0].index_add(0, &idx1, &x[1]), &[x.clone(), s]).unwrap();
        }
    }

    #[test]
    fn gather_is_differentiable_twice() {
        // y = Σ gather(x, idx)³ ⇒ the first gradient goes through scatter_add; check it again
        let idx = long(vec![1, 1, 0], &[3]);
        gradcheck(
            |x| grad_of(&x[0], |x| x.gather(0, &idx).powf(3.0).sum()),
            &[randn64(&[2], 7)],
        )
        .unwrap();
        gradcheck(
            |x| grad_of(&x[0], |x| x.index_select(0, &idx).powf(3.0).sum()),
            &[randn64(&[2], 8)],
        )
        .unwrap();
    }

    #[test]
    fn large_gather_runs_in_parallel_with_the_same_values() {
        let n = crate::ops::unary::PAR_THRESHOLD + 3;
        let x = Tensor::arange(0.0, n as f64, 1.0).reshape([1, -1]);
        let rev: Vec<i64> = (0..n as i64).rev().collect();
        let y = x.gather(1, &long(rev, &[1, n]));
        let v = y.to_vec::<f32>();
        assert_eq!((v[0], v[n - 1]), ((n - 1) as f32, 0.0));
    }

    #[test]
    // the message ends with the caller's location (this file), through the #[track_caller] chain
    #[should_panic(
        expected = "gather: index 3 is out of bounds for dim 1 with size 3 (tensor shape [2, 3]), \
                    at src/ops/shape/index.rs"
    )]
    fn gather_out_of_range_names_index_and_size() {
        let _ = Tensor::zeros(&[2, 3]).gather(1, &long(vec![0, 3], &[2, 1]));
    }

    #[test]
    #[should_panic(expected = "index_select: index -1 is out of bounds for dim 0 with size 2")]
    fn index_select_rejects_negative_indices() {
        let _ = Tensor::zeros(&[2]).index_select(0, &long(vec![-1], &[1]));
    }

    #[test]
    #[should_panic(expected = "scatter_add: index 2 is out of bounds for dim 0 with size 2")]
    fn scatter_add_out_of_range_is_an_error() {
        let _ = Tensor::zeros(&[2]).scatter_add(0, &long(vec![2], &[1]), &Tensor::ones(&[1]));
    }

    #[test]
    #[should_panic(expected = "index_select: the index tensor must be int64, got float32")]
    fn float_indices_are_rejected() {
        let _ = Tensor::zeros(&[2]).index_select(0, &Tensor::zeros(&[1]));
    }

    #[test]
    #[should_panic(
        expected = "gather: index of shape [3, 1] does not fit the input of shape [2, 3]"
    )]
    fn gather_with_a_larger_index_is_an_error() {
        let _ = Tensor::zeros(&[2, 3]).gather(1, &long(vec![0, 0, 0], &[3, 1]));
    }

    #[test]
    #[should_panic(
        expected = "index_add: source of shape [2, 2] does not match the expected shape [2, 3]"
    )]
    fn index_add_with_a_wrong_source_is_an_error() {
        let _ = Tensor::zeros(&[2, 4]).index_add(
            1,
            &long(vec![0, 1, 1], &[3]),
            &Tensor::zeros(&[2, 2]),
        );
    }

    #[test]
    #[should_panic(expected = "scatter_add: expected float or int64 tensors, got bool")]
    fn scatter_add_of_bools_is_an_error() {
        let b = Tensor::from_values(vec![true, false], &[2]);
        let _ = b.scatter_add(0, &long(vec![1], &[1]), &b.narrow(0, 0, 1));
    }

    #[test]
    #[should_panic(expected = "index_select: the index must be a 1-d tensor, got shape [1, 1]")]
    fn index_select_needs_a_vector() {
        let _ = Tensor::zeros(&[2]).index_select(0, &long(vec![0], &[1, 1]));
    }
}
