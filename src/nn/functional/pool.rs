//! 2-d pooling: `max_pool2d` (and `max_pool2d_with_indices`), `avg_pool2d` and
//! `adaptive_avg_pool2d`, like their `torch.nn.functional` namesakes.
//!
//! Inputs are `[N, C, H, W]` or unbatched `[C, H, W]`; every `H × W` plane is pooled on its own,
//! planes spread over both cores when the work is large. Each op is one tape entry with a raw
//! kernel for its backward, itself recorded so gradients can be differentiated again:
//!
//! - max pooling reads one element per window (its argmax); the backward scatters the gradient
//!   to those positions, and the backward of that scatter reads at the same positions again;
//! - average pooling (plain or adaptive) is a linear map given by per-output row and column
//!   windows and divisors; the backward spreads the gradient over each window, and the backward
//!   of the spreading averages again.

use std::panic::Location;
use std::sync::Arc;

use ndarray::{ArrayD, IxDyn};

use super::conv::Size2;
use crate::autograd::function::Op;
use crate::autograd::tape::Attr;
use crate::tensor::{Data, Float, Storage, Tensor};

/// Below this many element visits a pass runs on one thread.
const PAR_WORK: usize = 1 << 15;

/// Runs `f(plane, out_chunk)` for each plane's chunk of `out` (`chunk` elements each), on both
/// cores when `work` is large.
fn per_plane<T: Send>(
    out: &mut [T],
    chunk: usize,
    work: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if chunk == 0 {
        return;
    }
    if crate::parallel::worth_splitting(work, PAR_WORK) {
        // blocks of whole planes, a few per thread
        let planes = out.len() / chunk;
        let per_block = planes
            .div_ceil(4 * crate::parallel::get_num_threads())
            .max(1);
        crate::parallel::for_each_chunk_mut(out, per_block * chunk, true, |start, block| {
            for (j, c) in block.chunks_mut(chunk).enumerate() {
                f(start / chunk + j, c)
            }
        });
    } else {
        out.chunks_mut(chunk).enumerate().for_each(|(p, c)| f(p, c));
    }
}

/// The elements of `t` in row-major order as data of standard layout.
fn standard(t: &Tensor) -> Data {
    t.data().to_standard_layout()
}

/// The indices of standard-layout int64 data.
fn slice_of(d: &Data) -> &[i64] {
    match d {
        Data::I64(a) => a.as_slice().expect("standard layout"),
        _ => unreachable!("pooling indices are int64"),
    }
}

fn wrap<T: crate::tensor::Element>(v: Vec<T>, shape: &[usize]) -> Storage<T> {
    ArrayD::from_shape_vec(IxDyn(shape), v)
        .expect("one value per element")
        .into_shared()
}

/// `shape` with its last two dims replaced by `(h, w)`.
fn with_plane(shape: &[usize], (h, w): (usize, usize)) -> Vec<usize> {
    let mut s = shape[..shape.len() - 2].to_vec();
    s.extend([h, w]);
    s
}

/// Checks the input is `[C, H, W]` or `[N, C, H, W]` with non-empty planes, of a float dtype.
fn check_input(op: &str, x: &Tensor, loc: &Location) {
    let s = x.shape();
    if !(3..=4).contains(&s.len()) || s[s.len() - 2..].contains(&0) {
        panic!(
            "{op}: expected a 3-d [C, H, W] or 4-d [N, C, H, W] input with non-empty H and W, \
             got {s:?}, at {loc}"
        );
    }
    if !x.dtype().is_float() {
        panic!(
            "{op}: expected a floating-point input, got {} {s:?}, at {loc}",
            x.dtype()
        );
    }
}

/// The output size of a pooling dim, as PyTorch computes it: `⌊(n + 2p − d(k − 1) − 1 + (ceil ?
/// s − 1 : 0)) / s⌋ + 1`, minus one in ceil mode if the last window would start in the right
/// padding. `None` if it is not positive.
fn out_size(n: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> Option<usize> {
    let span =
        (n + 2 * p) as isize - (d * (k - 1) + 1) as isize + if ceil { s as isize - 1 } else { 0 };
    if span < 0 {
        return None;
    }
    let mut o = span as usize / s + 1;
    if ceil && (o - 1) * s >= n + p {
        o -= 1;
    }
    (o > 0).then_some(o)
}

/// Checks the window parameters of a pooling op and returns the output `(oh, ow)`.
#[allow(clippy::too_many_arguments)]
fn check_window(
    op: &str,
    x: &Tensor,
    k: (usize, usize),
    s: (usize, usize),
    p: (usize, usize),
    d: (usize, usize),
    ceil: bool,
    loc: &Location,
) -> (usize, usize) {
    check_input(op, x, loc);
    let shape = x.shape();
    if [k.0, k.1, s.0, s.1, d.0, d.1].contains(&0) {
        panic!(
            "{op}: kernel size, stride and dilation must be positive, got kernel {k:?}, stride \
             {s:?}, dilation {d:?} (input {shape:?}), at {loc}"
        );
    }
    if p.0 > k.0 / 2 || p.1 > k.1 / 2 {
        panic!(
            "{op}: padding {p:?} must be at most half of the kernel size {k:?} (input \
             {shape:?}), at {loc}"
        );
    }
    let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    match (
        out_size(h, k.0, s.0, p.0, d.0, ceil),
        out_size(w, k.1, s.1, p.1, d.1, ceil),
    ) {
        (Some(oh), Some(ow)) => (oh, ow),
        _ => panic!(
            "{op}: the kernel {k:?} (dilation {d:?}) is larger than the padded input (size \
             {:?}, padding {p:?}; input {shape:?}), at {loc}",
            (h, w)
        ),
    }
}

// ----- max pooling: read at indices / scatter to indices ---------------------------------------

/// `x` as f32 values, when `F` is f32.
#[cfg(target_arch = "x86_64")]
fn as_f32<F: Float>(x: &[F]) -> Option<&[f32]> {
    (std::any::TypeId::of::<F>() == std::any::TypeId::of::<f32>()).then(|| {
        // SAFETY: F is f32, so the slice's layout is that of a [f32] of the same length.
        unsafe { std::slice::from_raw_parts(x.as_ptr().cast::<f32>(), x.len()) }
    })
}

/// The argmaxes of one output row of a 2×2, stride-2 max pooling: windows `ox` of the input rows
/// starting at `top` and `top + w` of `plane`, in window order (first of equal maxima, last NaN),
/// as positions in the plane. Four windows at a time with SSE2 compares and blends (no branches
/// to mispredict on random data), the rest one by one.
#[cfg(target_arch = "x86_64")]
fn argmax_2x2_row(plane: &[f32], w: usize, top: usize, out: &mut [i64]) {
    use std::arch::x86_64::*;
    let ow = out.len();
    let (r0, r1) = (&plane[top..top + w], &plane[top + w..top + 2 * w]);
    let step = |best: f32, at: usize, v: f32, pos: usize| {
        if v > best || v.is_nan() {
            (v, pos)
        } else {
            (best, at)
        }
    };
    let vectors = ow / 4;
    // SAFETY: SSE2 is part of x86_64; every load reads 8 floats at 8·q ≤ 2·ow − 8 < w of a row,
    // and every store writes 4 i32s into a local array.
    unsafe {
        let pick =
            |m: __m128, a: __m128, b: __m128| _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b));
        let picki = |m: __m128, a: __m128i, b: __m128i| {
            let m = _mm_castps_si128(m);
            _mm_or_si128(_mm_and_si128(m, a), _mm_andnot_si128(m, b))
        };
        let lanes = _mm_set_epi32(6, 4, 2, 0);
        for q in 0..vectors {
            let c = 8 * q;
            let (lo0, hi0) = (
                _mm_loadu_ps(r0.as_ptr().add(c)),
                _mm_loadu_ps(r0.as_ptr().add(c + 4)),
            );
            let (lo1, hi1) = (
                _mm_loadu_ps(r1.as_ptr().add(c)),
                _mm_loadu_ps(r1.as_ptr().add(c + 4)),
            );
            // even / odd columns of each row: the four taps of four windows
            let taps = [
                _mm_shuffle_ps::<0b10_00_10_00>(lo0, hi0),
                _mm_shuffle_ps::<0b11_01_11_01>(lo0, hi0),
                _mm_shuffle_ps::<0b10_00_10_00>(lo1, hi1),
                _mm_shuffle_ps::<0b11_01_11_01>(lo1, hi1),
            ];
            let corner = _mm_add_epi32(_mm_set1_epi32((top + c) as i32), lanes);
            let offsets = [0, 1, w as i32, w as i32 + 1];
            let mut best = taps[0];
            let mut at = corner;
            for t in 1..4 {
                let v = taps[t];
                let take = _mm_or_ps(_mm_cmpgt_ps(v, best), _mm_cmpunord_ps(v, v));
                best = pick(take, v, best);
                at = picki(take, _mm_add_epi32(corner, _mm_set1_epi32(offsets[t])), at);
            }
            let mut pos = [0i32; 4];
            _mm_storeu_si128(pos.as_mut_ptr().cast(), at);
            for (o, &p) in out[4 * q..4 * q + 4].iter_mut().zip(&pos) {
                *o = i64::from(p);
            }
        }
    }
    for (ox, o) in out.iter_mut().enumerate().skip(4 * vectors) {
        let c = 2 * ox;
        let (mut best, mut at) = (r0[c], top + c);
        (best, at) = step(best, at, r0[c + 1], top + c + 1);
        (best, at) = step(best, at, r1[c], top + w + c);
        (_, at) = step(best, at, r1[c + 1], top + w + c + 1);
        *o = at as i64;
    }
}

/// The argmax of every window, as flat `y · W + x` positions within the plane: the first of
/// equal maxima, a NaN if the window holds one (the last, as in PyTorch).
#[allow(clippy::too_many_arguments)]
fn argmax_windows<F: Float>(
    x: &[F],
    (h, w): (usize, usize),
    (oh, ow): (usize, usize),
    k: (usize, usize),
    s: (usize, usize),
    p: (usize, usize),
    d: (usize, usize),
) -> Vec<i64> {
    let planes = x.len() / (h * w);
    let mut idx = vec![0i64; planes * oh * ow];
    // the in-bounds input coordinates of each output row / column
    let taps = |out: usize, k: usize, s: usize, p: usize, d: usize, n: usize| -> Vec<Vec<usize>> {
        (0..out)
            .map(|o| {
                (0..k)
                    .map(|i| (o * s + i * d) as isize - p as isize)
                    .filter(|&v| v >= 0 && (v as usize) < n)
                    .map(|v| v as usize)
                    .collect()
            })
            .collect()
    };
    let inside = |out: usize, k: usize, s: usize, n: usize| out == 0 || (out - 1) * s + k <= n;
    #[cfg(target_arch = "x86_64")]
    if let Some(x32) = as_f32(x) {
        let fits = h * w <= i32::MAX as usize;
        if k == (2, 2)
            && s == (2, 2)
            && p == (0, 0)
            && fits
            && inside(oh, 2, 2, h)
            && inside(ow, 2, 2, w)
        {
            // the usual 2×2 pooling of f32, four windows at a time
            per_plane(&mut idx, oh * ow, planes * oh * ow * 4, |pl, out| {
                let plane = &x32[pl * h * w..(pl + 1) * h * w];
                for (oy, at) in out.chunks_mut(ow).enumerate() {
                    argmax_2x2_row(plane, w, 2 * oy * w, at);
                }
            });
            return idx;
        }
    }
    if p == (0, 0) && d == (1, 1) && inside(oh, k.0, s.0, h) && inside(ow, k.1, s.1, w) {
        // The common case (no padding or dilation, every window inside the plane): direct
        // offsets and a branch-free running maximum, which random data cannot mispredict.
        per_plane(
            &mut idx,
            oh * ow,
            planes * oh * ow * k.0 * k.1,
            |pl, out| {
                let plane = &x[pl * h * w..(pl + 1) * h * w];
                for oy in 0..oh {
                    for ox in 0..ow {
                        let corner = oy * s.0 * w + ox * s.1;
                        let (mut best, mut at) = (F::neg_infinity(), corner);
                        for i in 0..k.0 {
                            let row = corner + i * w;
                            for (j, &v) in plane[row..row + k.1].iter().enumerate() {
                                let take = v > best || v.is_nan();
                                best = if take { v } else { best };
                                at = if take { row + j } else { at };
                            }
                        }
                        out[oy * ow + ox] = at as i64;
                    }
                }
            },
        );
        return idx;
    }
    let (rows, cols) = (
        taps(oh, k.0, s.0, p.0, d.0, h),
        taps(ow, k.1, s.1, p.1, d.1, w),
    );
    per_plane(
        &mut idx,
        oh * ow,
        planes * oh * ow * k.0 * k.1,
        |pl, out| {
            let plane = &x[pl * h * w..(pl + 1) * h * w];
            for (oy, ry) in rows.iter().enumerate() {
                for (ox, cx) in cols.iter().enumerate() {
                    // PyTorch: start from -∞ at the first tap; a larger value or a NaN takes over
                    let first = ry.first().zip(cx.first()).map_or(0, |(y, x)| y * w + x);
                    let (mut best, mut at) = (F::neg_infinity(), first);
                    for &iy in ry {
                        let line = &plane[iy * w..(iy + 1) * w];
                        for &ix in cx {
                            let v = line[ix];
                            if v > best || v.is_nan() {
                                (best, at) = (v, iy * w + ix);
                            }
                        }
                    }
                    out[oy * ow + ox] = at as i64;
                }
            }
        },
    );
    idx
}

/// `out[plane, j] = x[plane, idx[plane, j]]` over planes of `x.len() / planes` elements.
fn gather_planes<F: Float>(x: &[F], idx: &[i64], planes: usize) -> Vec<F> {
    let (inp, outp) = (x.len() / planes.max(1), idx.len() / planes.max(1));
    let mut out = vec![F::zero(); idx.len()];
    per_plane(&mut out, outp, idx.len(), |pl, o| {
        let (src, ix) = (&x[pl * inp..], &idx[pl * outp..(pl + 1) * outp]);
        o.iter_mut()
            .zip(ix)
            .for_each(|(o, &i)| *o = src[i as usize]);
    });
    out
}

/// `out[plane, idx[plane, j]] += g[plane, j]`, planes of `plane_len` elements: the adjoint of
/// [`gather_planes`].
fn scatter_planes<F: Float>(g: &[F], idx: &[i64], planes: usize, plane_len: usize) -> Vec<F> {
    let outp = idx.len() / planes.max(1);
    let mut out = vec![F::zero(); planes * plane_len];
    per_plane(&mut out, plane_len, idx.len(), |pl, o| {
        let range = pl * outp..(pl + 1) * outp;
        for (&v, &i) in g[range.clone()].iter().zip(&idx[range]) {
            o[i as usize] += v;
        }
    });
    out
}

/// The arguments of a max pooling, recorded as the attributes of its tape entries.
#[derive(Clone, Copy)]
struct MaxPoolArgs {
    kernel_size: (usize, usize),
    stride: (usize, usize),
    padding: (usize, usize),
    dilation: (usize, usize),
    ceil_mode: bool,
}

/// An `Ints` attribute of an `(h, w)` pair.
fn pair_attr((a, b): (usize, usize)) -> Attr {
    Attr::usizes(&[a, b])
}

impl MaxPoolArgs {
    /// Adds the attributes the schema declares for the max pooling ops (only when recording,
    /// so that an unrecorded call allocates nothing for them).
    fn attrs<'a>(&self, op: Op<'a>) -> Op<'a> {
        if !op.recording() {
            return op;
        }
        op.attr("kernel_size", pair_attr(self.kernel_size))
            .attr("stride", pair_attr(self.stride))
            .attr("padding", pair_attr(self.padding))
            .attr("dilation", pair_attr(self.dilation))
            .attr("ceil_mode", Attr::Bool(self.ceil_mode))
    }
}

/// Records `name`: `x` (`[.., H, W]`) read at the per-plane positions `idx` (`[.., OH, OW]`):
/// `max_pool2d` itself (input `x`; the positions are its own result) or, in a recorded
/// backward, `max_pool2d_gather` (inputs `x` and `idx`). The backward scatters the gradient back
/// to the positions.
#[track_caller]
fn gather_op(name: &'static str, x: &Tensor, idx: &Tensor, args: MaxPoolArgs) -> Tensor {
    let both = [x, idx];
    let inputs = if name == "max_pool2d" {
        &both[..1]
    } else {
        &both[..]
    };
    let op = args.attrs(Op::new(name, inputs));
    let (xd, id) = (standard(x), standard(idx));
    let planes = idx.numel() / (idx.shape()[idx.ndim() - 2] * idx.shape()[idx.ndim() - 1]).max(1);
    let out = crate::with_float!(&xd, name, |a: F| {
        let v = gather_planes(a.as_slice().expect("standard"), slice_of(&id), planes);
        Data::from(wrap(v, idx.shape()))
    });
    let in_shape = x.shape().to_vec();
    op.save(idx).finish(out, move |ctx, g| {
        vec![Some(scatter_op(g, &ctx.saved(0), &in_shape, args)), None]
    })
}

/// Records `max_pool2d_backward`: `g` (`[.., OH, OW]`) added into zeros of `shape` at the
/// per-plane positions `idx`. The backward reads the gradient at the positions again.
#[track_caller]
fn scatter_op(g: &Tensor, idx: &Tensor, shape: &[usize], args: MaxPoolArgs) -> Tensor {
    let inputs = [g, idx];
    let op = args.attrs(Op::new("max_pool2d_backward", &inputs));
    let (gd, id) = (standard(g), standard(idx));
    let plane_len = shape[shape.len() - 2] * shape[shape.len() - 1];
    let planes = shape.iter().product::<usize>() / plane_len.max(1);
    let out = crate::with_float!(&gd, "max_pool2d_backward", |a: F| {
        let v = scatter_planes(
            a.as_slice().expect("standard"),
            slice_of(&id),
            planes,
            plane_len,
        );
        Data::from(wrap(v, shape))
    });
    op.save(idx).finish(out, move |ctx, gg| {
        vec![
            Some(gather_op("max_pool2d_gather", gg, &ctx.saved(0), args)),
            None,
        ]
    })
}

/// 2-d max pooling and the position of each maximum, like
/// `torch.nn.functional.max_pool2d(..., return_indices=True)`.
///
/// The indices are int64 positions `y · W + x` within each input plane (as PyTorch returns them,
/// usable with `max_unpool2d`). The gradient flows to those positions only. See
/// [`max_pool2d`] for the arguments.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional::max_pool2d_with_indices;
/// let x = Tensor::from_vec(vec![1.0, 5.0, 2.0, 0.0, 3.0, 4.0, 9.0, 8.0], &[1, 2, 4]);
/// let (y, i) = max_pool2d_with_indices(&x, 2, 2, 0, 1, false);
/// assert_eq!(y.to_vec::<f32>(), vec![5.0, 9.0]);
/// assert_eq!(i.to_vec::<i64>(), vec![1, 6]);
/// ```
///
/// # Panics
/// As [`max_pool2d`].
#[track_caller]
pub fn max_pool2d_with_indices(
    input: &Tensor,
    kernel_size: impl Size2,
    stride: impl Size2,
    padding: impl Size2,
    dilation: impl Size2,
    ceil_mode: bool,
) -> (Tensor, Tensor) {
    let loc = Location::caller();
    let (k, s, p, d) = (
        kernel_size.pair(),
        stride.pair(),
        padding.pair(),
        dilation.pair(),
    );
    let op = "max_pool2d";
    let (oh, ow) = check_window(op, input, k, s, p, d, ceil_mode, loc);
    let shape = input.shape();
    let hw = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let xd = standard(input);
    let idx = crate::with_float!(&xd, op, |a: F| {
        argmax_windows(a.as_slice().expect("standard"), hw, (oh, ow), k, s, p, d)
    });
    let idx = Tensor::from_data(Data::I64(wrap(idx, &with_plane(shape, (oh, ow)))));
    let args = MaxPoolArgs {
        kernel_size: k,
        stride: s,
        padding: p,
        dilation: d,
        ceil_mode,
    };
    (gather_op(op, input, &idx, args), idx)
}

/// 2-d max pooling, like `torch.nn.functional.max_pool2d(input, kernel_size, stride, padding,
/// dilation, ceil_mode)`: the largest value of each `kernel_size` window (taps `dilation`
/// apart), windows `stride` apart over the input padded with `-∞`. PyTorch's defaults are
/// `stride = kernel_size, padding 0, dilation 1, ceil_mode false`; each size is a `usize` or
/// an `(h, w)` pair.
///
/// The output is `[.., OH, OW]` with `OH = ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1` (rounded up in
/// `ceil_mode`, as long as the last window starts inside the input or the left padding). The
/// gradient goes to the (first) maximum of each window.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional::max_pool2d;
/// let x = Tensor::arange(0.0, 16.0, 1.0).reshape([1, 1, 4, 4]);
/// assert_eq!(max_pool2d(&x, 2, 2, 0, 1, false).to_vec::<f32>(), vec![5.0, 7.0, 13.0, 15.0]);
/// ```
///
/// # Panics
/// If the input is not 3-d or 4-d with non-empty planes or not floating point, if a kernel
/// size, stride or dilation is 0, if the padding is more than half the kernel size, or if the
/// window does not fit the padded input.
#[track_caller]
pub fn max_pool2d(
    input: &Tensor,
    kernel_size: impl Size2,
    stride: impl Size2,
    padding: impl Size2,
    dilation: impl Size2,
    ceil_mode: bool,
) -> Tensor {
    max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode).0
}

// ----- average pooling: a separable window average and its adjoint -----------------------------

/// An averaging of `[.., H, W]` planes over rectangular windows: output `(oy, ox)` sums input
/// rows `rows[oy].0 .. rows[oy].1` and columns `cols[ox].0 .. cols[ox].1`, divided by
/// `rows[oy].2 · cols[ox].2`.
#[derive(Debug)]
struct Windows {
    h: usize,
    w: usize,
    rows: Vec<(usize, usize, usize)>,
    cols: Vec<(usize, usize, usize)>,
    /// The pooling the windows come from, recorded as the attributes of its tape entries.
    pooling: Pooling,
}

/// Which average pooling made some [`Windows`], with its arguments.
#[derive(Debug, Clone, Copy)]
enum Pooling {
    Avg {
        kernel_size: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        ceil_mode: bool,
        count_include_pad: bool,
    },
    Adaptive {
        output_size: (usize, usize),
    },
}

impl Pooling {
    /// The op's name forward (`TRANSPOSE = false`) and its adjoint's.
    fn name(&self, transpose: bool) -> &'static str {
        match (self, transpose) {
            (Pooling::Avg { .. }, false) => "avg_pool2d",
            (Pooling::Avg { .. }, true) => "avg_pool2d_backward",
            (Pooling::Adaptive { .. }, false) => "adaptive_avg_pool2d",
            (Pooling::Adaptive { .. }, true) => "adaptive_avg_pool2d_backward",
        }
    }

    /// Adds the attributes the schema declares (only when recording).
    fn attrs<'a>(&self, op: Op<'a>) -> Op<'a> {
        if !op.recording() {
            return op;
        }
        match *self {
            Pooling::Avg {
                kernel_size,
                stride,
                padding,
                ceil_mode,
                count_include_pad,
            } => op
                .attr("kernel_size", pair_attr(kernel_size))
                .attr("stride", pair_attr(stride))
                .attr("padding", pair_attr(padding))
                .attr("ceil_mode", Attr::Bool(ceil_mode))
                .attr("count_include_pad", Attr::Bool(count_include_pad)),
            Pooling::Adaptive { output_size } => op.attr("output_size", pair_attr(output_size)),
        }
    }
}

impl Windows {
    fn out(&self) -> (usize, usize) {
        (self.rows.len(), self.cols.len())
    }

    /// `TRANSPOSE = false`: `x [P, H·W] → y [P, OH·OW]`; `true`: the adjoint, spreading
    /// `y [P, OH·OW]` back over `[P, H·W]`.
    fn run<F: Float, const TRANSPOSE: bool>(&self, src: &[F]) -> Vec<F> {
        let (hw, l) = (self.h * self.w, self.rows.len() * self.cols.len());
        let (inp, outp) = if TRANSPOSE { (l, hw) } else { (hw, l) };
        let planes = src.len() / inp.max(1);
        let mut out = vec![F::zero(); planes * outp];
        let work = planes * (hw + l);
        per_plane(&mut out, outp, work, |pl, o| {
            let s = &src[pl * inp..(pl + 1) * inp];
            for (oy, &(r0, r1, rd)) in self.rows.iter().enumerate() {
                for (ox, &(c0, c1, cd)) in self.cols.iter().enumerate() {
                    let scale = F::one() / F::c((rd * cd) as f64);
                    let at = oy * self.cols.len() + ox;
                    if TRANSPOSE {
                        let v = s[at] * scale;
                        for r in r0..r1 {
                            o[r * self.w + c0..r * self.w + c1]
                                .iter_mut()
                                .for_each(|e| *e += v);
                        }
                    } else {
                        let sum: F = (r0..r1)
                            .map(|r| {
                                s[r * self.w + c0..r * self.w + c1]
                                    .iter()
                                    .copied()
                                    .sum::<F>()
                            })
                            .sum();
                        o[at] = sum * scale;
                    }
                }
            }
        });
        out
    }
}

/// Records the window average of `x` (`TRANSPOSE = false`, `[.., H, W] → [.., OH, OW]`) or its
/// adjoint (`[.., OH, OW] → [.., H, W]`), named after `win.pooling`; the backward of each is the
/// other.
#[track_caller]
fn window_op<const TRANSPOSE: bool>(x: &Tensor, win: Arc<Windows>) -> Tensor {
    let name = win.pooling.name(TRANSPOSE);
    let inputs = [x];
    let op = win.pooling.attrs(Op::new(name, &inputs));
    let plane = if TRANSPOSE { (win.h, win.w) } else { win.out() };
    let shape = with_plane(x.shape(), plane);
    let xd = standard(x);
    let out = crate::with_float!(&xd, name, |a: F| {
        Data::from(wrap(
            win.run::<F, TRANSPOSE>(a.as_slice().expect("standard")),
            &shape,
        ))
    });
    op.finish(out, move |_, g| {
        vec![Some(if TRANSPOSE {
            window_op::<false>(g, win.clone())
        } else {
            window_op::<true>(g, win.clone())
        })]
    })
}

/// 2-d average pooling, like `torch.nn.functional.avg_pool2d(input, kernel_size, stride,
/// padding, ceil_mode, count_include_pad)`: the mean of each `kernel_size` window, windows
/// `stride` apart over the input zero-padded by `padding`. PyTorch's defaults are `stride =
/// kernel_size, padding 0, ceil_mode false, count_include_pad true`.
///
/// With `count_include_pad` the divisor counts the padding taps of a window (but not the part of
/// a `ceil_mode` window beyond the padding); without it only the input taps. The output size is
/// as in [`max_pool2d`] with dilation 1.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional::avg_pool2d;
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 2, 2]);
/// assert_eq!(avg_pool2d(&x, 2, 2, 0, false, true).to_vec::<f32>(), vec![2.5]);
/// // padding 1, stride 2: the corner windows hold one input each, counted with 3 padding zeros
/// assert_eq!(avg_pool2d(&x, 2, 2, 1, false, true).to_vec::<f32>(), vec![0.25, 0.5, 0.75, 1.0]);
/// assert_eq!(avg_pool2d(&x, 2, 2, 1, false, false).to_vec::<f32>(), vec![1.0, 2.0, 3.0, 4.0]);
/// ```
///
/// # Panics
/// As [`max_pool2d`].
#[track_caller]
pub fn avg_pool2d(
    input: &Tensor,
    kernel_size: impl Size2,
    stride: impl Size2,
    padding: impl Size2,
    ceil_mode: bool,
    count_include_pad: bool,
) -> Tensor {
    let loc = Location::caller();
    let (k, s, p) = (kernel_size.pair(), stride.pair(), padding.pair());
    let (oh, ow) = check_window("avg_pool2d", input, k, s, p, (1, 1), ceil_mode, loc);
    let shape = input.shape();
    let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    // PyTorch: the window [o·s − p, min(o·s − p + k, n + p)) sets the padded count; clipped to
    // [0, n) it sets the input count
    let dim = |out: usize, n: usize, k: usize, s: usize, p: usize| {
        (0..out)
            .map(|o| {
                let start = (o * s) as isize - p as isize;
                let end = (start + k as isize).min((n + p) as isize);
                let padded = (end - start) as usize;
                let (a, b) = (start.max(0) as usize, (end as usize).min(n));
                (a, b, if count_include_pad { padded } else { b - a })
            })
            .collect()
    };
    let win = Windows {
        h,
        w,
        rows: dim(oh, h, k.0, s.0, p.0),
        cols: dim(ow, w, k.1, s.1, p.1),
        pooling: Pooling::Avg {
            kernel_size: k,
            stride: s,
            padding: p,
            ceil_mode,
            count_include_pad,
        },
    };
    window_op::<false>(input, Arc::new(win))
}

/// 2-d adaptive average pooling to a fixed `output_size` `(OH, OW)` whatever the input size,
/// like `torch.nn.functional.adaptive_avg_pool2d`: output row `i` averages input rows
/// `⌊i·H/OH⌋ .. ⌈(i + 1)·H/OH⌉` (the windows overlap when `H` is not a multiple of `OH`), and
/// likewise for columns.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional::adaptive_avg_pool2d;
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[1, 1, 3]);
/// // rows 0..1 and cols 0..2, 1..3: the windows share the middle column
/// assert_eq!(adaptive_avg_pool2d(&x, (1, 2)).to_vec::<f32>(), vec![1.5, 2.5]);
/// ```
///
/// # Panics
/// If the input is not 3-d or 4-d with non-empty planes or not floating point, or if an output
/// size is 0.
#[track_caller]
pub fn adaptive_avg_pool2d(input: &Tensor, output_size: impl Size2) -> Tensor {
    let loc = Location::caller();
    let (oh, ow) = output_size.pair();
    check_input("adaptive_avg_pool2d", input, loc);
    if oh == 0 || ow == 0 {
        panic!(
            "adaptive_avg_pool2d: the output size must be positive, got {:?} (input {:?}), at \
             {loc}",
            (oh, ow),
            input.shape()
        );
    }
    let shape = input.shape();
    let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let dim = |out: usize, n: usize| {
        (0..out)
            .map(|i| {
                let (a, b) = (i * n / out, ((i + 1) * n).div_ceil(out));
                (a, b, b - a)
            })
            .collect()
    };
    let win = Windows {
        h,
        w,
        rows: dim(oh, h),
        cols: dim(ow, w),
        pooling: Pooling::Adaptive {
            output_size: (oh, ow),
        },
    };
    window_op::<false>(input, Arc::new(win))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    #[test]
    fn max_pool2d_f32_2x2_fast_path_matches_the_general_path() {
        // ties (values on a coarse grid), NaNs and -∞, and widths that leave 0 to 3 windows after
        // the groups of four: the f32 2×2 kernel must give the f64 (general) path's indices
        for (h, w) in [(4, 8), (5, 9), (6, 14), (3, 31), (2, 2)] {
            let mut v: Vec<f64> = randn64(&[2, 3, h, w], (h * w) as u64)
                .to_vec::<f64>()
                .iter()
                .map(|x| (x * 2.0).round() / 2.0)
                .collect();
            for i in (0..v.len()).step_by(7) {
                v[i] = if i % 2 == 0 {
                    f64::NAN
                } else {
                    f64::NEG_INFINITY
                };
            }
            let x64 = Tensor::from_vec_f64(v.clone(), &[2, 3, h, w]);
            let x32 = Tensor::from_vec(v.iter().map(|&x| x as f32).collect(), &[2, 3, h, w]);
            let (y64, i64_) = max_pool2d_with_indices(&x64, 2, 2, 0, 1, false);
            let (y32, i32_) = max_pool2d_with_indices(&x32, 2, 2, 0, 1, false);
            assert_eq!(i32_.to_vec::<i64>(), i64_.to_vec::<i64>(), "{h}x{w}");
            let (a, b) = (y32.to_vec::<f32>(), y64.to_vec::<f64>());
            assert!(a
                .iter()
                .zip(&b)
                .all(|(&a, &b)| (a.is_nan() && b.is_nan()) || a as f64 == b));
        }
    }

    fn x3x3() -> Tensor {
        Tensor::from_vec_f64((1..=9).map(f64::from).collect(), &[1, 1, 3, 3])
    }

    #[test]
    fn max_pool2d_values_and_indices_by_hand() {
        // x = [[1,2,3],[4,5,6],[7,8,9]]
        // kernel 2, stride 2, padding 1: windows over rows/cols {-1,0} and {1,2}
        let (y, i) = max_pool2d_with_indices(&x3x3(), 2, 2, 1, 1, false);
        assert_eq!(y.to_vec::<f64>(), vec![1.0, 3.0, 7.0, 9.0]);
        assert_eq!(i.to_vec::<i64>(), vec![0, 2, 6, 8]);
        assert_eq!(i.dtype(), DType::I64);
        // dilation 2: the four corners
        let (y, i) = max_pool2d_with_indices(&x3x3(), 2, 1, 0, 2, false);
        assert_eq!((y.to_vec::<f64>(), i.to_vec::<i64>()), (vec![9.0], vec![8]));
        // ceil_mode keeps the partial windows starting at row/col 2
        assert_eq!(
            max_pool2d(&x3x3(), 2, 2, 0, 1, false).to_vec::<f64>(),
            vec![5.0]
        );
        let y = max_pool2d(&x3x3(), 2, 2, 0, 1, true);
        assert_eq!(y.shape(), &[1, 1, 2, 2]);
        assert_eq!(y.to_vec::<f64>(), vec![5.0, 6.0, 8.0, 9.0]);
        // non-square kernel (1, 3) with stride (1, 3) on an unbatched input
        let y = max_pool2d(&x3x3().squeeze_dim(0), (1, 3), (1, 3), 0, 1, false);
        assert_eq!(y.shape(), &[1, 3, 1]);
        assert_eq!(y.to_vec::<f64>(), vec![3.0, 6.0, 9.0]);
    }

    #[test]
    fn max_pool2d_gradient_goes_to_the_first_maximum_and_nan_wins() {
        let x = Tensor::ones_dtype(&[1, 1, 2, 2], DType::F64).requires_grad();
        max_pool2d(&x, 2, 2, 0, 1, false).sum().backward();
        assert_eq!(x.grad().unwrap().to_vec::<f64>(), vec![1.0, 0.0, 0.0, 0.0]);
        let x = Tensor::from_vec_f64(vec![1.0, f64::NAN, 3.0, 2.0], &[1, 2, 2]);
        let (y, i) = max_pool2d_with_indices(&x, 2, 2, 0, 1, false);
        assert!(y.item().is_nan());
        assert_eq!(i.to_vec::<i64>(), vec![1]);
    }

    #[test]
    fn avg_pool2d_divisors_follow_pytorch() {
        // ceil_mode, count_include_pad: the windows past the input count only up to H + p = 3:
        // (1+2+4+5)/4, (3+6)/2, (7+8)/2, 9/1
        let y = avg_pool2d(&x3x3(), 2, 2, 0, true, true);
        assert_eq!(y.to_vec::<f64>(), vec![3.0, 4.5, 7.5, 9.0]);
        // padding 1, kernel 3, stride 2: the corner window holds 4 inputs of 9 taps
        let y = avg_pool2d(&x3x3(), 3, 2, 1, false, true);
        assert_eq!(y.to_vec::<f64>()[0], (1.0 + 2.0 + 4.0 + 5.0) / 9.0);
        let y = avg_pool2d(&x3x3(), 3, 2, 1, false, false);
        assert_eq!(y.to_vec::<f64>()[0], (1.0 + 2.0 + 4.0 + 5.0) / 4.0);
    }

    #[test]
    fn adaptive_avg_pool2d_windows_follow_pytorch() {
        // 3 → 2: rows/cols [0, 2) and [1, 3)
        let y = adaptive_avg_pool2d(&x3x3(), (2, 2));
        assert_eq!(y.to_vec::<f64>(), vec![3.0, 4.0, 6.0, 7.0]);
        // 5 → 3: [0, 2), [1, 4), [3, 5)
        let x = Tensor::from_vec_f64(vec![1.0, 2.0, 3.0, 4.0, 5.0], &[1, 1, 5]);
        assert_eq!(
            adaptive_avg_pool2d(&x, (1, 3)).to_vec::<f64>(),
            vec![1.5, 3.0, 4.5]
        );
        // a multiple of the output size is a plain average pool
        let x = randn64(&[2, 3, 4, 6], 1);
        let a = adaptive_avg_pool2d(&x, (2, 3)).to_vec::<f64>();
        let b = avg_pool2d(&x, 2, 2, 0, false, true).to_vec::<f64>();
        a.iter()
            .zip(&b)
            .for_each(|(a, b)| assert!((a - b).abs() < 1e-12));
    }

    type Case = (
        &'static [usize],
        (usize, usize),
        (usize, usize),
        (usize, usize),
        usize,
        bool,
    );

    #[test]
    fn max_pool2d_gradcheck() {
        // (shape, kernel, stride, padding, dilation, ceil_mode)
        let cases: [Case; 5] = [
            (&[2, 3, 6, 5], (2, 2), (2, 2), (1, 1), 1, false),
            (&[1, 2, 7, 7], (3, 2), (2, 1), (1, 0), 2, false),
            (&[2, 2, 5, 5], (2, 2), (2, 2), (0, 0), 1, true),
            (&[3, 5, 4], (3, 3), (1, 1), (1, 1), 1, false),
            (&[1, 1, 6, 6], (3, 3), (2, 2), (1, 1), 1, true),
        ];
        for (i, &(shape, k, s, p, d, ceil)) in cases.iter().enumerate() {
            gradcheck(
                |t| max_pool2d(&t[0], k, s, p, d, ceil),
                &[randn64(shape, i as u64)],
            )
            .unwrap();
        }
        // non-contiguous: an NHWC buffer seen as NCHW
        let x = randn64(&[2, 5, 6, 3], 9).permute([0, 3, 1, 2]);
        gradcheck(|t| max_pool2d(&t[0], 2, 2, 0, 1, false), &[x]).unwrap();
    }

    #[test]
    fn avg_pool2d_gradcheck() {
        for (i, &(k, s, p, ceil, cip)) in [
            ((2, 2), (2, 2), (0, 0), false, true),
            ((3, 2), (2, 1), (1, 1), false, true),
            ((3, 3), (2, 2), (1, 1), true, false),
            ((2, 3), (2, 2), (1, 0), true, true),
        ]
        .iter()
        .enumerate()
        {
            gradcheck(
                |t| avg_pool2d(&t[0], k, s, p, ceil, cip),
                &[randn64(&[2, 3, 7, 6], i as u64)],
            )
            .unwrap();
        }
        gradcheck(
            |t| avg_pool2d(&t[0], 2, 1, 1, false, false),
            &[randn64_t(&[4, 5, 3], 7)],
        )
        .unwrap();
    }

    #[test]
    fn adaptive_avg_pool2d_gradcheck() {
        gradcheck(
            |t| adaptive_avg_pool2d(&t[0], (3, 2)),
            &[randn64(&[2, 3, 7, 5], 1)],
        )
        .unwrap();
        gradcheck(
            |t| adaptive_avg_pool2d(&t[0], (4, 7)),
            &[randn64_t(&[3, 5, 6], 2)],
        )
        .unwrap();
        let x = randn64(&[2, 5, 6, 3], 3).permute([0, 3, 1, 2]);
        gradcheck(|t| adaptive_avg_pool2d(&t[0], 1), &[x]).unwrap();
    }

    fn leaf(t: &Tensor) -> Tensor {
        if t.requires_grad_enabled() {
            t.clone()
        } else {
            t.detach().requires_grad()
        }
    }

    #[test]
    fn pooling_second_order_gradcheck() {
        // ∂/∂x Σ tanh(pool(x))², differentiated again: through the recorded backward ops
        let pools: [fn(&Tensor) -> Tensor; 3] = [
            |x| max_pool2d(x, 2, 2, 1, 1, false),
            |x| avg_pool2d(x, 3, 2, 1, true, false),
            |x| adaptive_avg_pool2d(x, (2, 3)),
        ];
        for pool in pools {
            gradcheck(
                |t| {
                    let _g = enable_grad();
                    let x = leaf(&t[0]);
                    let y = pool(&x).tanh().square().sum();
                    grad(&[&y], &[&x], true).remove(0)
                },
                &[randn64(&[2, 2, 5, 5], 1)],
            )
            .unwrap();
        }
    }

    #[test]
    fn large_inputs_pool_in_parallel_with_the_same_values() {
        let x = randn64(&[8, 16, 32, 32], 1);
        let small = x.narrow(0, 3, 1);
        let per = 16 * 16 * 16;
        let big = max_pool2d(&x, 2, 2, 0, 1, false).to_vec::<f64>();
        assert_eq!(
            big[3 * per..4 * per],
            max_pool2d(&small, 2, 2, 0, 1, false).to_vec::<f64>()
        );
        let big = avg_pool2d(&x, 2, 2, 0, false, true).to_vec::<f64>();
        assert_eq!(
            big[3 * per..4 * per],
            avg_pool2d(&small, 2, 2, 0, false, true).to_vec::<f64>()
        );
    }

    #[test]
    #[should_panic(
        expected = "max_pool2d: expected a 3-d [C, H, W] or 4-d [N, C, H, W] input with non-empty H and W, got [4, 4]"
    )]
    fn max_pool2d_rejects_a_2d_input() {
        max_pool2d(&Tensor::zeros(&[4, 4]), 2, 2, 0, 1, false);
    }

    #[test]
    #[should_panic(
        expected = "avg_pool2d: padding (2, 2) must be at most half of the kernel size (3, 3)"
    )]
    fn avg_pool2d_padding_at_most_half_the_kernel() {
        avg_pool2d(&Tensor::zeros(&[1, 1, 5, 5]), 3, 1, 2, false, true);
    }

    #[test]
    #[should_panic(
        expected = "max_pool2d: the kernel (3, 3) (dilation (1, 1)) is larger than the padded input (size (2, 5), padding (0, 0); input [1, 1, 2, 5])"
    )]
    fn max_pool2d_kernel_larger_than_the_input() {
        max_pool2d(&Tensor::zeros(&[1, 1, 2, 5]), 3, 1, 0, 1, false);
    }

    #[test]
    #[should_panic(expected = "adaptive_avg_pool2d: the output size must be positive, got (0, 2)")]
    fn adaptive_avg_pool2d_rejects_an_empty_output() {
        adaptive_avg_pool2d(&Tensor::zeros(&[1, 3, 3]), (0, 2));
    }

    #[test]
    fn pool_errors_name_the_callers_line() {
        let x = Tensor::zeros(&[2, 2]);
        let line = line!() + 1;
        let err = std::panic::catch_unwind(|| avg_pool2d(&x, 2, 2, 0, false, true)).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains(&format!("at {}:{line}:", file!())), "{msg}");
    }
}
