//! narrow, slice (with steps), select and multi-dim indexing with [`s!`](crate::s): all views
//! that share the storage, recorded as one "slice" op over a [`Region`]. Its backward is the
//! embedding of the gradient into zeros of the input shape ("slice_backward"), itself a recorded
//! op whose backward is the slice again, so higher-order gradients flow. Constant padding is the
//! same embedding with another fill value.

use ndarray::Dimension as _;
use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};
use std::panic::Location;

use ndarray::{ArrayD, Axis, IxDyn, Slice};

use super::dim_of;
use crate::autograd::function::Op;
use crate::autograd::tape::Attr;
use crate::tensor::{Data, Element, Storage, Tensor};

/// One normalized range per dim of a tensor: `start..end` by `step`, with
/// `0 <= start <= end <= size` and `step >= 1`.
pub(crate) type Region = Vec<Slice>;

/// The region covering the whole of `shape`.
pub(crate) fn full_region(shape: &[usize]) -> Region {
    shape
        .iter()
        .map(|&n| Slice::new(0, Some(n as isize), 1))
        .collect()
}

/// A normalized range of one dim.
pub(crate) fn range(start: usize, end: usize, step: usize) -> Slice {
    Slice::new(start as isize, Some(end as isize), step as isize)
}

/// The number of elements `s` selects.
fn range_len(s: &Slice) -> usize {
    let end = s.end.expect("regions are normalized");
    ((end - s.start).max(0) as usize).div_ceil(s.step as usize)
}

fn region_attr(region: &[Slice]) -> Attr {
    Attr::Ints(
        region
            .iter()
            .flat_map(|s| [s.start as i64, s.end.unwrap_or(0) as i64, s.step as i64])
            .collect(),
    )
}

/// Resolves a Python slice bound against a dim of size `n`: negative counts from the end, and
/// out-of-range values are clamped to `[0, n]`.
fn clamp_bound(b: isize, n: usize) -> usize {
    let n = n as isize;
    (if b < 0 { b + n } else { b }).clamp(0, n) as usize
}

/// Resolves Python `start:end` bounds (clamped, never an error) for a dim of size `n`.
fn python_range(start: Option<isize>, end: Option<isize>, step: usize, n: usize) -> Slice {
    let s = start.map_or(0, |b| clamp_bound(b, n));
    let e = end.map_or(n, |b| clamp_bound(b, n)).max(s);
    range(s, e, step)
}

/// Resolves a possibly negative index into a dim of size `n`, or `None` if out of range.
fn wrap_index(i: isize, n: usize) -> Option<usize> {
    let j = if i < 0 { i + n as isize } else { i };
    (0..n as isize).contains(&j).then_some(j as usize)
}

/// The view of `x` over `region`, recorded as op `name`.
#[track_caller]
pub(crate) fn slice_region(x: &Tensor, name: &'static str, region: Region) -> Tensor {
    debug_assert_eq!(region.len(), x.ndim());
    let inputs = [x];
    let op = Op::new(name, &inputs).attr("region", region_attr(&region));
    let out = x.with_data(|d| crate::with_any!(d, |a: T| Data::from(slice_storage(a, &region))));
    let from = IxDyn(x.shape());
    // the gradient flows back to the selected elements; the others get zero
    op.finish(out, move |_, g| {
        vec![Some(embed_region(
            g,
            "slice_backward",
            from.slice(),
            region.clone(),
            0.0,
        ))]
    })
}

/// A view of `a` over `region`, sharing the buffer.
fn slice_storage<T>(a: &Storage<T>, region: &[Slice]) -> Storage<T> {
    let mut v = a.clone();
    for (i, s) in region.iter().enumerate() {
        // the inherent ArcArray method only moves the pointer and strides: no unsharing copy
        v.slice_axis_inplace(Axis(i), *s);
    }
    v
}

/// A new tensor of `shape` filled with `fill`, with `x` written over `region` (whose shape must
/// be `x`'s), recorded as op `name`. The backward is the slice over `region`.
#[track_caller]
pub(crate) fn embed_region(
    x: &Tensor,
    name: &'static str,
    shape: &[usize],
    region: Region,
    fill: f64,
) -> Tensor {
    debug_assert_eq!(
        region.iter().map(range_len).collect::<Vec<_>>(),
        x.shape(),
        "{name}: region does not match the embedded tensor"
    );
    let inputs = [x];
    let op = Op::new(name, &inputs)
        .attr("shape", Attr::usizes(shape))
        .attr("region", region_attr(&region))
        .attr("value", Attr::Float(fill));
    let out = x.with_data(|d| {
        crate::with_any!(d, |a: T| {
            let mut o = ArrayD::from_elem(IxDyn(shape), <T as Element>::from_f64(fill));
            o.slice_each_axis_mut(|ax| region[ax.axis.index()])
                .assign(a);
            Data::from(o.into_shared())
        })
    });
    op.finish(out, move |_, g| {
        vec![Some(slice_region(g, "slice", region.clone()))]
    })
}

/// One entry of a multi-dim index for [`Tensor::index`], usually written with [`s!`](crate::s):
/// a range of a dim (Python `start:end:step`), or a single position that removes the dim
/// (Python `x[i]`).
///
/// Made from Rust ranges and integers: `..`, `a..b`, `a..`, `..b`, `a..=b`, `..=b` and `i`, all
/// `isize`, where negative values count from the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SliceArg {
    /// Elements `start..end` by `step`, with Python's rules: a missing bound means the start or
    /// end of the dim, negative bounds count from the end, out-of-range bounds are clamped.
    Range {
        /// First element (`None`: 0).
        start: Option<isize>,
        /// One past the last element (`None`: the dim's size).
        end: Option<isize>,
        /// Distance between selected elements, at least 1.
        step: usize,
    },
    /// A single position; the dim is removed. Negative counts from the end; out of range panics.
    Index(isize),
}

impl SliceArg {
    /// This range taken every `step` elements (`s![0..10;2]` writes `SliceArg::from(0..10).step(2)`).
    ///
    /// # Panics
    /// If this is a single index rather than a range.
    #[track_caller]
    pub fn step(self, step: usize) -> SliceArg {
        match self {
            SliceArg::Range { start, end, .. } => SliceArg::Range { start, end, step },
            SliceArg::Index(i) => panic!(
                "index: a step ({step}) needs a range, not the single index {i}, at {}",
                Location::caller()
            ),
        }
    }
}

impl From<isize> for SliceArg {
    fn from(i: isize) -> Self {
        SliceArg::Index(i)
    }
}

impl From<RangeFull> for SliceArg {
    fn from(_: RangeFull) -> Self {
        SliceArg::Range {
            start: None,
            end: None,
            step: 1,
        }
    }
}

impl From<Range<isize>> for SliceArg {
    fn from(r: Range<isize>) -> Self {
        SliceArg::Range {
            start: Some(r.start),
            end: Some(r.end),
            step: 1,
        }
    }
}

impl From<RangeFrom<isize>> for SliceArg {
    fn from(r: RangeFrom<isize>) -> Self {
        SliceArg::Range {
            start: Some(r.start),
            end: None,
            step: 1,
        }
    }
}

impl From<RangeTo<isize>> for SliceArg {
    fn from(r: RangeTo<isize>) -> Self {
        SliceArg::Range {
            start: None,
            end: Some(r.end),
            step: 1,
        }
    }
}

impl From<RangeInclusive<isize>> for SliceArg {
    fn from(r: RangeInclusive<isize>) -> Self {
        // `a..=-1` is "up to and including the last": its exclusive end is "the end"
        let end = *r.end();
        SliceArg::Range {
            start: Some(*r.start()),
            end: (end != -1).then_some(end + 1),
            step: 1,
        }
    }
}

impl From<RangeToInclusive<isize>> for SliceArg {
    fn from(r: RangeToInclusive<isize>) -> Self {
        SliceArg::from(0..=r.end)
    }
}

/// Builds the argument of [`Tensor::index`] with Python-like slicing syntax: each entry is a
/// range (`..`, `1..3`, `2..`, `..-1`, `0..=2`) or an index (`-1`, which removes the dim),
/// optionally followed by `;step` for ranges.
///
/// `x.index(&s![.., 1..;2, -1])` is PyTorch's `x[:, 1::2, -1]`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::s;
/// let x = Tensor::arange(0.0, 24.0, 1.0).reshape([2, 3, 4]);
/// let y = x.index(&s![.., 1.., 0..;2]); // x[:, 1:, ::2]
/// assert_eq!(y.shape(), &[2, 2, 2]);
/// assert_eq!(y.to_vec::<f32>(), vec![4.0, 6.0, 8.0, 10.0, 16.0, 18.0, 20.0, 22.0]);
/// assert_eq!(x.index(&s![1, -1]).to_vec::<f32>(), vec![20.0, 21.0, 22.0, 23.0]); // x[1, -1]
/// ```
#[macro_export]
macro_rules! s {
    ($($r:expr $(; $step:expr)?),* $(,)?) => {
        [$($crate::Tensor::slice_arg($r)$(.step($step))?),*]
    };
}

impl Tensor {
    /// The elements `start..start + length` of dim `dim`, like `x.narrow(dim, start, length)`.
    /// A view sharing the storage; a negative `start` counts from the end.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]);
    /// assert_eq!(x.narrow(1, 1, 2).to_vec::<f32>(), vec![1.0, 2.0, 4.0, 5.0]);
    /// ```
    ///
    /// # Panics
    /// If the tensor is 0-d, `dim` is out of range, or the range does not fit in the dim.
    #[track_caller]
    pub fn narrow(&self, dim: isize, start: isize, length: usize) -> Tensor {
        let loc = Location::caller();
        let d = dim_of("narrow", dim, self.shape());
        let n = self.shape()[d];
        let s = if start < 0 { start + n as isize } else { start };
        if !(0..=n as isize).contains(&s) {
            panic!(
                "narrow: start {start} is out of range for dim {dim} of size {n} (tensor shape \
                 {:?}), at {loc}",
                self.shape()
            );
        }
        let s = s as usize;
        if s + length > n {
            panic!(
                "narrow: start ({s}) + length ({length}) exceeds the size {n} of dim {dim} \
                 (tensor shape {:?}), at {loc}",
                self.shape()
            );
        }
        let mut region = full_region(self.shape());
        region[d] = range(s, s + length, 1);
        slice_region(self, "narrow", region)
    }

    /// Python slicing `x[start:end:step]` along dim `dim`, like PyTorch's `x[:, start:end:step]`.
    /// A view sharing the storage. `None` bounds mean the start / end of the dim; negative bounds
    /// count from the end; out-of-range bounds are clamped (an empty result, not an error).
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::arange(0.0, 6.0, 1.0);
    /// assert_eq!(x.slice(0, Some(1), None, 2).to_vec::<f32>(), vec![1.0, 3.0, 5.0]); // x[1::2]
    /// assert_eq!(x.slice(0, Some(-2), Some(100), 1).to_vec::<f32>(), vec![4.0, 5.0]); // x[-2:100]
    /// ```
    ///
    /// # Panics
    /// If the tensor is 0-d, `dim` is out of range, or `step` is 0.
    #[track_caller]
    pub fn slice(
        &self,
        dim: isize,
        start: Option<isize>,
        end: Option<isize>,
        step: usize,
    ) -> Tensor {
        let d = dim_of("slice", dim, self.shape());
        check_step("slice", step, Location::caller());
        let mut region = full_region(self.shape());
        region[d] = python_range(start, end, step, self.shape()[d]);
        slice_region(self, "slice", region)
    }

    /// The sub-tensor at position `index` of dim `dim`, which is removed, like
    /// `x.select(dim, index)` (`x[:, index]`). A view; a negative index counts from the end.
    ///
    /// # Panics
    /// If the tensor is 0-d, `dim` is out of range or `index` is out of range for the dim.
    #[track_caller]
    pub fn select(&self, dim: isize, index: isize) -> Tensor {
        let d = dim_of("select", dim, self.shape());
        let n = self.shape()[d];
        let Some(i) = wrap_index(index, n) else {
            panic!(
                "select: index {index} is out of range for dim {dim} of size {n} (tensor shape \
                 {:?}), at {}",
                self.shape(),
                Location::caller()
            );
        };
        let mut region = full_region(self.shape());
        region[d] = range(i, i + 1, 1);
        slice_region(self, "select", region).squeeze_dim(d as isize)
    }

    /// Multi-dim Python indexing: `x.index(&s![.., 1..;2, -1])` is PyTorch's `x[:, 1::2, -1]`.
    /// One `SliceArg` per leading dim (missing trailing dims are taken whole); ranges keep their
    /// dim, indices remove it. A view sharing the storage.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// use tapegrad::s;
    /// let x = Tensor::arange(0.0, 6.0, 1.0).reshape([2, 3]);
    /// assert_eq!(x.index(&s![.., -1]).to_vec::<f32>(), vec![2.0, 5.0]); // x[:, -1]
    /// ```
    ///
    /// # Panics
    /// If there are more entries than dims, a step is 0 or an index is out of range.
    #[track_caller]
    pub fn index(&self, args: &[SliceArg]) -> Tensor {
        let loc = Location::caller();
        let shape = self.shape();
        if args.len() > shape.len() {
            panic!(
                "index: too many indices ({}) for a tensor of {} dims (shape {shape:?}), at {loc}",
                args.len(),
                shape.len()
            );
        }
        let mut region = full_region(shape);
        let mut removed = Vec::new();
        for (d, arg) in args.iter().enumerate() {
            region[d] = match *arg {
                SliceArg::Range { start, end, step } => {
                    check_step("index", step, loc);
                    python_range(start, end, step, shape[d])
                }
                SliceArg::Index(i) => {
                    let Some(j) = wrap_index(i, shape[d]) else {
                        panic!(
                            "index: index {i} is out of range for dim {d} of size {} (tensor \
                             shape {shape:?}), at {loc}",
                            shape[d]
                        );
                    };
                    removed.push(d);
                    range(j, j + 1, 1)
                }
            };
        }
        let mut out = slice_region(self, "slice", region);
        for &d in removed.iter().rev() {
            out = out.squeeze_dim(d as isize);
        }
        out
    }

    /// Converts a range or an index into a `SliceArg` (what [`s!`](crate::s) calls).
    pub fn slice_arg(r: impl Into<SliceArg>) -> SliceArg {
        r.into()
    }
}

fn check_step(op: &str, step: usize, loc: &Location) {
    if step == 0 {
        panic!("{op}: slice step must be positive, got 0, at {loc}");
    }
}

#[cfg(test)]
mod tests {
    use crate::ops::shape::grad_of;
    use crate::prelude::*;

    use crate::testing::{randn64, randn64_t};

    fn arange(n: usize, shape: &[usize]) -> Tensor {
        Tensor::arange(0.0, n as f64, 1.0).reshape(shape.to_vec())
    }

    /// The address of the first element of the view and the span of the base buffer.
    fn ptr_in_buffer(view: &Tensor, base: &Tensor) -> bool {
        let b = base.to_ndarray::<f32>();
        let lo = b.as_ptr() as usize;
        let hi = lo + b.len() * std::mem::size_of::<f32>();
        let p = view.to_ndarray::<f32>().as_ptr() as usize;
        (lo..hi).contains(&p)
    }

    #[test]
    fn narrow_is_a_strided_view_into_the_same_buffer() {
        let x = arange(12, &[3, 4]);
        let y = x.narrow(1, 1, 2);
        assert_eq!(y.shape(), &[3, 2]);
        assert!(!y.is_contiguous());
        assert_eq!(y.stride(), vec![4, 1]);
        assert!(ptr_in_buffer(&y, &x));
        // x[:, 1:3] of [[0..4], [4..8], [8..12]]
        assert_eq!(y.to_vec::<f32>(), vec![1.0, 2.0, 5.0, 6.0, 9.0, 10.0]);
        // a negative start counts from the end
        assert_eq!(x.narrow(-1, -1, 1).to_vec::<f32>(), vec![3.0, 7.0, 11.0]);
    }

    #[test]
    fn slice_with_step_has_scaled_strides() {
        let x = arange(10, &[10]);
        let y = x.slice(0, Some(1), Some(8), 3); // x[1:8:3] = 1, 4, 7
        assert_eq!(y.to_vec::<f32>(), vec![1.0, 4.0, 7.0]);
        assert_eq!(y.stride(), vec![3]);
        assert!(!y.is_contiguous());
        assert!(ptr_in_buffer(&y, &x));
    }

    #[test]
    fn slice_clamps_bounds_like_python() {
        let x = arange(5, &[5]);
        let v = |s: Option<isize>, e: Option<isize>, st| x.slice(0, s, e, st).to_vec::<f32>();
        assert_eq!(v(Some(-3), None, 1), vec![2.0, 3.0, 4.0]); // x[-3:]
        assert_eq!(v(Some(-100), Some(2), 1), vec![0.0, 1.0]); // x[-100:2]
        assert_eq!(v(Some(3), Some(100), 1), vec![3.0, 4.0]); // x[3:100]
        assert_eq!(v(Some(4), Some(2), 1), Vec::<f32>::new()); // x[4:2] is empty
        assert_eq!(v(Some(7), None, 1), Vec::<f32>::new()); // x[7:] is empty
        assert_eq!(v(None, Some(-1), 2), vec![0.0, 2.0]); // x[:-1:2]
        assert_eq!(x.slice(0, Some(7), None, 1).shape(), &[0]);
    }

    #[test]
    fn index_with_the_s_macro_matches_python_indexing() {
        let x = arange(24, &[2, 3, 4]);
        // x[1, :, ::3] = [[12, 15], [16, 19], [20, 23]]
        let y = x.index(&s![1, .., ..;3]);
        assert_eq!(y.shape(), &[3, 2]);
        assert_eq!(y.to_vec::<f32>(), vec![12.0, 15.0, 16.0, 19.0, 20.0, 23.0]);
        // x[:, -1] = [[8..12], [20..24]]; trailing dims taken whole
        let z = x.index(&s![.., -1]);
        assert_eq!(z.shape(), &[2, 4]);
        assert_eq!(z.to_vec::<f32>()[..4], [8.0, 9.0, 10.0, 11.0]);
        // inclusive ranges: x[0, 0:=1, ..=-1] is x[0, 0:2, :]
        assert_eq!(x.index(&s![0, 0..=1, ..=-1]).shape(), &[2, 4]);
        assert_eq!(x.index(&s![0, 0, 1..=2]).to_vec::<f32>(), vec![1.0, 2.0]);
        assert!(ptr_in_buffer(&y, &x));
    }

    #[test]
    fn select_removes_the_dim() {
        let x = arange(6, &[2, 3]);
        assert_eq!(x.select(1, -1).to_vec::<f32>(), vec![2.0, 5.0]);
        assert_eq!(x.select(0, 1).shape(), &[3]);
    }

    #[test]
    fn views_keep_old_values_when_the_base_is_assigned() {
        let x = arange(6, &[2, 3]);
        let y = x.narrow(1, 0, 2);
        let z = x.index(&s![1]);
        x.assign(&Tensor::zeros(&[2, 3]));
        // copy-on-write: x got new storage, the views keep sharing the old one
        assert_eq!(y.to_vec::<f32>(), vec![0.0, 1.0, 3.0, 4.0]);
        assert_eq!(z.to_vec::<f32>(), vec![3.0, 4.0, 5.0]);
        assert_eq!(x.to_vec::<f32>(), vec![0.0; 6]);
        // writing through a handle on the shared buffer copies it first: the view is untouched
        let mut a = y.to_ndarray::<f32>();
        a[[0, 0]] = 100.0;
        assert_eq!(y.to_vec::<f32>(), vec![0.0, 1.0, 3.0, 4.0]);
        assert_eq!(a[[0, 0]], 100.0);
    }

    #[test]
    fn slice_gradient_is_zero_outside_the_selection() {
        // y = Σ x[1::2] ⇒ dy/dx = 1 at odd positions, 0 elsewhere
        let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0], &[5]).requires_grad();
        x.slice(0, Some(1), None, 2).sum().backward();
        assert_eq!(
            x.grad().unwrap().to_vec::<f32>(),
            vec![0.0, 1.0, 0.0, 1.0, 0.0]
        );
    }

    #[test]
    fn slicing_ops_gradcheck() {
        // plain, non-contiguous (transposed) and a slice of a bigger tensor
        let inputs = [
            randn64(&[4, 5], 1),
            randn64_t(&[4, 5], 2),
            randn64(&[6, 7], 3).narrow(0, 1, 4).narrow(1, 2, 5),
        ];
        for x in inputs {
            let x = std::slice::from_ref(&x);
            gradcheck(|x| x[0].narrow(1, 1, 3), x).unwrap();
            gradcheck(|x| x[0].narrow(-2, -3, 2), x).unwrap();
            gradcheck(|x| x[0].slice(-1, Some(-4), None, 2), x).unwrap();
            gradcheck(|x| x[0].slice(0, None, Some(3), 2), x).unwrap();
            gradcheck(|x| x[0].select(-1, 2), x).unwrap();
            gradcheck(|x| x[0].index(&s![1..;2, -2]), x).unwrap();
        }
    }

    #[test]
    fn slice_backward_is_differentiable_again() {
        // g ↦ slice_backward(g) is linear; its own backward must be the slice again, so the
        // double-backward of Σ (x[1:3] * x[1:3]) gives ∂/∂x (2 x[1:3] embedded) = 2 on [1:3]
        let x = randn64(&[4], 5).requires_grad();
        let y = x.narrow(0, 1, 2).square().sum();
        let gx = grad(&[&y], &[&x], true).remove(0);
        assert_eq!(gx.grad_fn(), Some("slice_backward"));
        let ggx = grad(&[&gx.sum()], &[&x], false).remove(0);
        assert_eq!(ggx.to_vec::<f64>(), vec![0.0, 2.0, 2.0, 0.0]);
        gradcheck(
            |x| grad_of(&x[0], |x| x.narrow(0, 1, 2).powf(3.0).sum()),
            &[randn64(&[4], 6)],
        )
        .unwrap();
    }

    #[test]
    fn slicing_works_on_integer_tensors() {
        let x = Tensor::from_vec_i64(vec![1, 2, 3, 4], &[4]);
        assert_eq!(x.slice(0, None, None, 3).to_vec::<i64>(), vec![1, 4]);
    }

    #[test]
    #[should_panic(
        expected = "narrow: start (2) + length (3) exceeds the size 4 of dim 1 (tensor shape [3, 4])"
    )]
    fn narrow_past_the_end_is_an_error() {
        let _ = Tensor::zeros(&[3, 4]).narrow(1, 2, 3);
    }

    #[test]
    #[should_panic(expected = "narrow: start -5 is out of range for dim 0 of size 4")]
    fn narrow_with_a_too_negative_start_is_an_error() {
        let _ = Tensor::zeros(&[4]).narrow(0, -5, 1);
    }

    #[test]
    #[should_panic(
        expected = "narrow: dimension out of range (expected to be in range of [-2, 1], but got 2)"
    )]
    fn narrow_on_a_missing_dim_is_an_error() {
        let _ = Tensor::zeros(&[3, 4]).narrow(2, 0, 1);
    }

    #[test]
    #[should_panic(expected = "narrow: cannot be applied to a 0-dim tensor")]
    fn narrow_of_a_scalar_is_an_error() {
        let _ = Tensor::scalar(1.0).narrow(0, 0, 1);
    }

    #[test]
    #[should_panic(expected = "slice: slice step must be positive, got 0")]
    fn slice_with_zero_step_is_an_error() {
        let _ = Tensor::zeros(&[3]).slice(0, None, None, 0);
    }

    #[test]
    #[should_panic(
        expected = "index: index 3 is out of range for dim 1 of size 3 (tensor shape [2, 3])"
    )]
    fn index_out_of_range_is_an_error() {
        let _ = Tensor::zeros(&[2, 3]).index(&s![.., 3]);
    }

    #[test]
    #[should_panic(expected = "index: too many indices (3) for a tensor of 2 dims (shape [2, 3])")]
    fn index_with_too_many_entries_is_an_error() {
        let _ = Tensor::zeros(&[2, 3]).index(&s![0, 0, 0]);
    }

    #[test]
    #[should_panic(expected = "select: index -4 is out of range for dim 0 of size 3")]
    fn select_out_of_range_is_an_error() {
        let _ = Tensor::zeros(&[3]).select(0, -4);
    }
}
