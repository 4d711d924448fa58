//! Reductions: over all elements or over given dims, with `keepdim`, as in PyTorch.
//!
//! Kernels work on *lanes*: the input with the reduced dims moved last and flattened to a 2-d
//! array, so that each row holds the elements that reduce into one output element ([`lanes`]).
//! [`reduce_lanes`] reduces each row to a value, [`map_lanes`] maps each row to a row of the same
//! length (softmax). Each row is processed sequentially and large inputs are split across cores by
//! rows, and long rows are folded in chunks of a fixed length ([`fold_chunks`]), so results do not
//! depend on the number of threads.
//!
//! Each reduction's backward reshapes the incoming gradient to the kept-dims shape and expands it
//! back over the reduced dims ([`grad_to_input`]).

mod extrema;
mod norm;
mod prod;
mod softmax;
mod sum;
mod var;

use ndarray::Dimension as _;
use ndarray::{aview1, Array2, Axis, CowArray, Ix2, IxDyn};
use std::panic::Location;

use super::unary::PAR_THRESHOLD;
use crate::autograd::function::Op;
use crate::autograd::tape::Attr;
use crate::tensor::{DType, Float, Storage, Tensor};

/// Length of the chunks [`fold_chunks`] folds separately: fixed, so that the result does not depend
/// on the number of threads.
const CHUNK: usize = 1 << 12;

/// Sums `a` over `dims` (sorted ascending), keeping them as size-1 dims if `keepdim`.
///
/// Reductions over trailing dims (the last dim, or all of them) go through [`reduce_lanes`], on all
/// cores for large inputs; others sum whole sub-arrays axis by axis.
pub(crate) fn sum_axes<F: Float>(a: &Storage<F>, dims: &[usize], keepdim: bool) -> Storage<F> {
    let first = a.ndim() - dims.len();
    if dims.iter().enumerate().all(|(i, &d)| d == first + i) {
        return reduce_lanes(a, dims, keepdim, sum_slice);
    }
    if let Some(x) = a.as_slice().filter(|x| !x.is_empty()) {
        // row-major: add whole runs of the input into the output, with no copy of the input
        let groups = dim_groups(a.shape(), dims);
        let kept: usize = groups.iter().filter(|g| !g.1).map(|g| g.0).product();
        let mut out = vec![F::zero(); kept];
        sum_groups(x, &groups, &mut out);
        return ndarray::ArrayD::from_shape_vec(
            IxDyn(&reduced_shape(a.shape(), dims, keepdim)),
            out,
        )
        .expect("sum_axes: sizes match")
        .into_shared();
    }
    let mut r = a.to_owned();
    for &d in dims.iter().rev() {
        r = r.sum_axis(Axis(d));
    }
    if keepdim {
        for &d in dims {
            r = r.insert_axis(Axis(d));
        }
    }
    r.into_shared()
}

/// `shape` as runs of adjacent dims that are all reduced or all kept: `(size, reduced)` per run,
/// size-1 dims left out.
fn dim_groups(shape: &[usize], dims: &[usize]) -> Vec<(usize, bool)> {
    let mut groups: Vec<(usize, bool)> = Vec::new();
    for (d, &n) in shape.iter().enumerate().filter(|(_, &n)| n != 1) {
        let reduced = dims.contains(&d);
        match groups.last_mut() {
            Some(g) if g.1 == reduced => g.0 *= n,
            _ => groups.push((n, reduced)),
        }
    }
    groups
}

/// Adds the row-major `x`, laid out as `groups` (see [`dim_groups`]), into `out` (the kept
/// groups' elements), summing over the reduced groups: a trailing reduced run is summed as one
/// slice, a trailing kept run is added element-wise, both in index order.
fn sum_groups<F: Float>(x: &[F], groups: &[(usize, bool)], out: &mut [F]) {
    match groups {
        [] => out[0] += x[0],
        [(_, true)] => out[0] += sum_slice(x),
        [(_, false)] => out.iter_mut().zip(x).for_each(|(o, &v)| *o += v),
        [(n, reduced), rest @ ..] => {
            let step = x.len() / n;
            let out_step = if *reduced { 0 } else { out.len() / n };
            for i in 0..*n {
                let o = if *reduced {
                    &mut *out
                } else {
                    &mut out[i * out_step..(i + 1) * out_step]
                };
                sum_groups(&x[i * step..(i + 1) * step], rest, o);
            }
        }
    }
}

/// The sum of a slice, folded in fixed chunks (deterministic whatever the thread count).
pub(crate) fn sum_slice<F: Float>(s: &[F]) -> F {
    fold_chunks(s, |c, _| aview1(c).sum(), |a, b| a + b).unwrap_or_else(F::zero)
}

/// Folds `s` chunk by chunk (`f` gets each chunk and its offset in `s`) and combines the chunk
/// results left to right; `None` for an empty slice. Long slices are folded on all cores; the
/// chunks do not depend on the thread count, so neither does the result.
pub(crate) fn fold_chunks<T: Sync, A: Send>(
    s: &[T],
    f: impl Fn(&[T], usize) -> A + Sync + Send,
    combine: impl Fn(A, A) -> A,
) -> Option<A> {
    if s.len() <= CHUNK {
        return (!s.is_empty()).then(|| f(s, 0));
    }
    let par = crate::parallel::worth_splitting(s.len(), PAR_THRESHOLD);
    let parts = crate::parallel::map_collect(s.len().div_ceil(CHUNK), par, |i| {
        let start = i * CHUNK;
        f(&s[start..s.len().min(start + CHUNK)], start)
    });
    parts.into_iter().reduce(combine)
}

/// The axis order that puts the kept dims first and `dims` last.
fn lane_order(ndim: usize, dims: &[usize]) -> Vec<usize> {
    (0..ndim)
        .filter(|d| !dims.contains(d))
        .chain(dims.iter().copied())
        .collect()
}

/// `a` with `dims` moved last and flattened, as a row-major `[outer, inner]` array: row `r` holds
/// the elements that reduce into the `r`-th output element. A view when the layout allows,
/// otherwise a copy.
pub(crate) fn lanes<'a, T: Clone>(a: &'a Storage<T>, dims: &[usize]) -> CowArray<'a, T, Ix2> {
    let inner: usize = dims.iter().map(|&d| a.shape()[d]).product();
    let outer: usize = reduced_shape(a.shape(), dims, false).iter().product();
    let v = a.view().permuted_axes(IxDyn(&lane_order(a.ndim(), dims)));
    let c = if v.is_standard_layout() {
        CowArray::from(v)
    } else {
        CowArray::from(v.as_standard_layout().into_owned())
    };
    c.into_shape_with_order((outer, inner))
        .expect("lanes: sizes match")
}

/// The output shape of a reduction of `shape` over `dims`.
pub(crate) fn reduced_shape(shape: &[usize], dims: &[usize], keepdim: bool) -> Vec<usize> {
    if keepdim {
        return kept_shape(shape, dims);
    }
    (0..shape.len())
        .filter(|d| !dims.contains(d))
        .map(|d| shape[d])
        .collect()
}

/// Reduces each lane of `a` over `dims` (see [`lanes`]) to one value with `f`, on all cores for
/// large inputs with several lanes.
pub(crate) fn reduce_lanes<T, U>(
    a: &Storage<T>,
    dims: &[usize],
    keepdim: bool,
    f: impl Fn(&[T]) -> U + Sync + Send,
) -> Storage<U>
where
    T: Clone + Sync,
    U: Clone + Send,
{
    let l = lanes(a, dims);
    let par = crate::parallel::worth_splitting(a.len(), PAR_THRESHOLD) && l.nrows() > 1;
    let out = crate::parallel::map_collect(l.nrows(), par, |r| {
        f(l.row(r).to_slice().expect("lanes are row-major"))
    });
    Storage::from_shape_vec(IxDyn(&reduced_shape(a.shape(), dims, keepdim)), out)
        .expect("reduce_lanes: sizes match")
}

/// Maps each lane of `a` over `dims` (see [`lanes`]) to a lane of the same length with
/// `f(input, output)`, on all cores for large inputs with several lanes. The result has `a`'s
/// shape, in row-major layout.
pub(crate) fn map_lanes<T>(
    a: &Storage<T>,
    dims: &[usize],
    f: impl Fn(&[T], &mut [T]) + Sync + Send,
) -> Storage<T>
where
    T: Clone + Default + Send + Sync,
{
    map_lanes2(a, a, dims, |x, _, o| f(x, o))
}

/// [`map_lanes`] over the matching lanes of `a` and `b` (of one shape): `f(a_lane, b_lane, out)`.
pub(crate) fn map_lanes2<T>(
    a: &Storage<T>,
    b: &Storage<T>,
    dims: &[usize],
    f: impl Fn(&[T], &[T], &mut [T]) + Sync + Send,
) -> Storage<T>
where
    T: Clone + Default + Send + Sync,
{
    assert_eq!(a.shape(), b.shape(), "map_lanes2: shapes differ");
    let l = lanes(a, dims);
    let lb = if std::ptr::eq(a, b) {
        None
    } else {
        Some(lanes(b, dims))
    };
    let lb = lb.as_ref().unwrap_or(&l);
    let mut out = Array2::<T>::default(l.raw_dim());
    let (rows, n) = l.dim();
    let par = crate::parallel::worth_splitting(a.len(), PAR_THRESHOLD) && rows > 1;
    // blocks of whole lanes, a few per thread
    let per_block = rows.div_ceil(4 * crate::parallel::get_num_threads()).max(1);
    let out_slice = out.as_slice_mut().expect("a new array is row-major");
    crate::parallel::for_each_chunk_mut(out_slice, (per_block * n).max(1), par, |start, o| {
        let first = start / n.max(1);
        for (j, o) in o.chunks_mut(n.max(1)).enumerate() {
            let r = first + j;
            f(
                l.row(r).to_slice().expect("lanes are row-major"),
                lb.row(r).to_slice().expect("lanes are row-major"),
                o,
            )
        }
    });
    let order = lane_order(a.ndim(), dims);
    let permuted: Vec<usize> = order.iter().map(|&d| a.shape()[d]).collect();
    let mut inverse = vec![0; order.len()];
    for (i, &d) in order.iter().enumerate() {
        inverse[d] = i;
    }
    let out = out
        .into_shape_with_order(IxDyn(&permuted))
        .expect("map_lanes: sizes match")
        .permuted_axes(IxDyn(&inverse));
    if out.is_standard_layout() {
        out.into_shared()
    } else {
        out.as_standard_layout().into_owned().into_shared()
    }
}

/// Starts recording the reduction `name` of `inputs` over `dims`, with its `dims` and `keepdim`
/// attributes.
#[track_caller]
pub(crate) fn record<'a>(
    name: &'static str,
    inputs: &'a [&'a Tensor],
    dims: &[usize],
    keepdim: bool,
) -> Op<'a> {
    Op::new(name, inputs)
        .attr("dims", Attr::usizes(dims))
        .attr("keepdim", Attr::Bool(keepdim))
}

/// The shape of `shape` reduced over `dims` with `keepdim` true.
pub(crate) fn kept_shape(shape: &[usize], dims: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &s)| if dims.contains(&i) { 1 } else { s })
        .collect()
}

/// Brings the gradient of a reduction (shape with or without the reduced dims) back to the input
/// shape by reshaping to the kept-dims shape and expanding.
pub(crate) fn grad_to_input(g: &Tensor, input_shape: &IxDyn, dims: &[usize]) -> Tensor {
    if g.ndim() == 0 {
        // a full reduction: broadcasting a 0-d gradient needs no reshape
        return g.expand(input_shape.slice());
    }
    let kept = kept_shape(input_shape.slice(), dims);
    g.reshape(&kept).expand(input_shape.slice())
}

/// The dims a single-dim reduction (`max_dim`, `softmax`, …) reduces over: `dim` resolved against
/// the tensor's dims, or none for a 0-d tensor (whose only valid dims, 0 and -1, name the tensor
/// itself, as in PyTorch).
///
/// # Panics
/// If `dim` is out of range, naming `op` and the caller.
#[track_caller]
pub(crate) fn one_dim(op: &str, dim: isize, ndim: usize) -> Vec<usize> {
    if ndim == 0 && (dim == 0 || dim == -1) {
        return Vec::new();
    }
    vec![crate::tensor::args::norm_dim(op, dim, ndim)]
}

/// Panics if one of `dims` has size 0, for reductions without an identity (max, min, argmax).
#[track_caller]
pub(crate) fn check_nonempty(op: &str, shape: &[usize], dims: &[usize]) {
    if let Some(d) = dims.iter().find(|&&d| shape[d] == 0) {
        panic!(
            "{op}: cannot reduce over dim {d} of size 0 (tensor of shape {shape:?}): the \
             reduction has no identity, at {}",
            Location::caller()
        );
    }
}

/// A bool mask of `shape`, true where the position along `dim` equals `indices` (given in the
/// kept-dims shape, size 1 at `dim`): the one-hot mask that routes the gradient of `max_dim`.
pub(crate) fn index_mask(indices: &Tensor, dim: usize, shape: &[usize]) -> Tensor {
    let n = shape[dim];
    let mut along = vec![1; shape.len()];
    along[dim] = n;
    let positions = Tensor::arange_dtype(0.0, n as f64, 1.0, DType::I64).reshape(along);
    indices.eq(&positions)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn sum_over_leading_and_interleaved_dims_adds_runs_without_copying() {
        // every subset of dims of a [3, 1, 4, 5] array, with and without keepdim, against ndarray's
        // sum_axis one axis at a time
        let a = ndarray::ArrayD::from_shape_fn(IxDyn(&[3, 1, 4, 5]), |i| {
            (i[0] * 100 + i[2] * 10 + i[3]) as f64 * 0.5 - 40.0
        })
        .into_shared();
        for mask in 1..16usize {
            let dims: Vec<usize> = (0..4).filter(|d| mask & (1 << d) != 0).collect();
            for keepdim in [false, true] {
                let got = sum_axes(&a, &dims, keepdim);
                let mut want = a.to_owned();
                for &d in dims.iter().rev() {
                    want = want.sum_axis(Axis(d));
                }
                let want = want
                    .into_shape_with_order(IxDyn(&reduced_shape(a.shape(), &dims, keepdim)))
                    .unwrap();
                assert_eq!(got.shape(), want.shape(), "dims {dims:?} keepdim {keepdim}");
                assert_eq!(
                    got.iter().collect::<Vec<_>>(),
                    want.iter().collect::<Vec<_>>()
                );
            }
        }
        // an empty dim: zeros where something is kept, like torch.zeros(3, 0, 4).sum((0, 2))
        let empty = ndarray::ArrayD::<f64>::zeros(IxDyn(&[3, 0, 4])).into_shared();
        assert_eq!(sum_axes(&empty, &[0, 2], false).shape(), &[0]);
        let z = sum_axes(&empty, &[1], true);
        assert_eq!(
            (z.shape(), z.iter().all(|&v| v == 0.0)),
            (&[3, 1, 4][..], true)
        );
    }

    /// Checks the second derivative of `f` at `x`: with `L(x) = Σ r·f(x)` for a fixed random `r`,
    /// the Hessian-vector product `H v` from differentiating the first gradient (built with
    /// `create_graph`) against central differences `(∇L(x + εv) − ∇L(x − εv)) / 2ε`.
    pub(crate) fn check_second_order(f: impl Fn(&Tensor) -> Tensor, x: &Tensor) {
        let x = x.detach().requires_grad();
        let r = randn64(f(&x).shape(), 99);
        let v = randn64(x.shape(), 98);
        let first = |x: &Tensor, create: bool| grad(&[&(f(x) * &r).sum()], &[x], create).remove(0);
        let gx = first(&x, true);
        assert!(
            gx.requires_grad_enabled(),
            "first gradient is not on the tape"
        );
        let hv = grad(&[&(&gx * &v).sum()], &[&x], false).remove(0);
        let eps = 1e-6;
        let at = |d: f64| first(&(x.detach() + &v * d).requires_grad(), false).to_vec::<f64>();
        let (p, m) = (at(eps), at(-eps));
        for (i, a) in hv.to_vec::<f64>().into_iter().enumerate() {
            let numeric = (p[i] - m[i]) / (2.0 * eps);
            assert!(
                (a - numeric).abs() <= 1e-5 + 1e-3 * numeric.abs(),
                "second derivative mismatch at element {i}: analytic {a} vs numeric {numeric}"
            );
        }
    }

    #[test]
    fn lanes_put_reduced_dims_last() {
        // x[i, j, k] = 12 i + 4 j + k; reducing dims 0 and 2 gives lanes indexed by j
        let x = Tensor::arange_dtype(0.0, 24.0, 1.0, DType::F64).reshape([2, 3, 4]);
        let s = x.to_ndarray::<f64>();
        let l = lanes(&s, &[0, 2]);
        assert_eq!(l.shape(), &[3, 8]);
        let row1: Vec<f64> = l.row(1).to_vec();
        assert_eq!(row1, vec![4., 5., 6., 7., 16., 17., 18., 19.]);
    }

    #[test]
    fn map_lanes_keeps_the_input_shape_and_order() {
        // doubling every lane along dim 0 of a transposed (non-contiguous) array
        let x = randn64_t(&[3, 5], 1);
        let s = x.to_ndarray::<f64>();
        let y = map_lanes(&s, &[0], |i, o| {
            o.iter_mut().zip(i).for_each(|(o, &v)| *o = 2.0 * v)
        });
        assert!(y.is_standard_layout());
        let want: Vec<f64> = x.to_vec::<f64>().iter().map(|v| 2.0 * v).collect();
        assert_eq!(y.iter().copied().collect::<Vec<_>>(), want);
    }

    #[test]
    fn sum_over_the_last_dim_of_a_large_tensor_matches_a_sequential_sum() {
        // 2 × 40000 elements: above PAR_THRESHOLD, so each lane's chunks are summed on all cores;
        // the chunks are fixed, so a sequential chunked sum gives the very same bits.
        let x = randn64(&[2, 40000], 3);
        let v = x.to_vec::<f64>();
        let expect: Vec<f64> = v
            .chunks(40000)
            .map(|lane| {
                lane.chunks(CHUNK)
                    .map(|c| aview1(c).sum())
                    .fold(None, |acc: Option<f64>, p| Some(acc.map_or(p, |a| a + p)))
                    .unwrap()
            })
            .collect();
        assert_eq!(x.sum_dim(-1, false).to_vec::<f64>(), expect);
        let total: f64 = v.iter().sum();
        assert!((x.sum().item() - total).abs() < 1e-9);
    }

    #[test]
    fn fold_chunks_passes_offsets() {
        let v: Vec<usize> = (0..3 * CHUNK + 5).collect();
        let max = fold_chunks(
            &v,
            |c, off| (c[0] == off, c.len()),
            |a, b| (a.0 && b.0, a.1 + b.1),
        );
        assert_eq!(max, Some((true, v.len())));
        assert_eq!(
            fold_chunks(&[] as &[f64], |c, _| c.len(), |a, b| a + b),
            None
        );
    }
}
