//! Convolutions: `conv1d`, `conv2d` and `conv_transpose2d`, like their `torch.nn.functional`
//! namesakes.
//!
//! All three are built on one geometry ([`Geom`]) relating an *image* `[N, C, H, W]` to a
//! *column side* `[N, O, OH, OW]` through a `[O, C/groups, KH, KW]` kernel, and on three raw
//! kernels over contiguous slices, each recorded as one tape entry:
//!
//! - `conv2d`: image → columns, im2col then one gemm per group and sample;
//! - `conv_transpose2d`: columns → image, one gemm per group and sample then col2im; it is the
//!   adjoint of `conv2d` with respect to the image;
//! - `conv2d_backward_weight`: image and columns → kernel, `Σₙ gy · im2col(x)ᵀ`.
//!
//! Each op's backward is written with the other two, so the set is closed under differentiation
//! and `grad(.., create_graph = true)` through a convolution gives exact higher-order gradients.
//! Samples are spread over tapegrad's threads when the work is large enough.

use std::panic::Location;

use ndarray::{ArrayD, IxDyn};

use crate::autograd::function::{current_location, Op};
use crate::autograd::tape::Attr;
use crate::tensor::{DType, Data, Float, Tensor};

/// A per-dimension `(h, w)` size: a single `usize` means the same value for both dims, like
/// PyTorch's `int or tuple` arguments (`stride=2` or `stride=(2, 1)`).
pub trait Size2 {
    /// The `(h, w)` pair.
    fn pair(self) -> (usize, usize);
}

impl Size2 for usize {
    fn pair(self) -> (usize, usize) {
        (self, self)
    }
}

impl Size2 for (usize, usize) {
    fn pair(self) -> (usize, usize) {
        self
    }
}

impl Size2 for [usize; 2] {
    fn pair(self) -> (usize, usize) {
        (self[0], self[1])
    }
}

/// The options of [`conv2d`], with PyTorch's defaults (`stride 1, padding 0, dilation 1,
/// groups 1`) from `Default` and builder helpers that take a `usize` or an `(h, w)` pair:
///
/// ```
/// use tapegrad::nn::functional::Conv2dOpts;
/// let o = Conv2dOpts::default().stride(2).padding((1, 0)).groups(2);
/// assert_eq!((o.stride, o.padding, o.dilation, o.groups), ((2, 2), (1, 0), (1, 1), 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOpts {
    /// Step between windows, `(h, w)`.
    pub stride: (usize, usize),
    /// Implicit zeros added on both sides of each spatial dim, `(h, w)`.
    pub padding: (usize, usize),
    /// Spacing between kernel taps, `(h, w)`.
    pub dilation: (usize, usize),
    /// Number of blocked connections from input to output channels.
    pub groups: usize,
}

impl Default for Conv2dOpts {
    fn default() -> Self {
        Conv2dOpts {
            stride: (1, 1),
            padding: (0, 0),
            dilation: (1, 1),
            groups: 1,
        }
    }
}

impl Conv2dOpts {
    /// Sets the stride.
    pub fn stride(mut self, s: impl Size2) -> Self {
        self.stride = s.pair();
        self
    }

    /// Sets the padding.
    pub fn padding(mut self, p: impl Size2) -> Self {
        self.padding = p.pair();
        self
    }

    /// Sets the dilation.
    pub fn dilation(mut self, d: impl Size2) -> Self {
        self.dilation = d.pair();
        self
    }

    /// Sets the number of groups.
    pub fn groups(mut self, g: usize) -> Self {
        self.groups = g;
        self
    }
}

// ----- geometry --------------------------------------------------------------------------------

/// How an image `[n, c, h, w]` and a column side `[n, o, oh, ow]` are related by a
/// `[o, c / groups, kh, kw]` kernel. Both sizes are explicit, so the same geometry describes a
/// convolution and its transpose (whose `output_padding` makes `h` larger than the convolution
/// formula would need).
#[derive(Clone, Copy, Debug)]
struct Geom {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    oh: usize,
    ow: usize,
    kh: usize,
    kw: usize,
    stride: (usize, usize),
    pad: (usize, usize),
    dil: (usize, usize),
    groups: usize,
}

impl Geom {
    fn cg(&self) -> usize {
        self.c / self.groups
    }
    fn og(&self) -> usize {
        self.o / self.groups
    }
    /// Rows of a group's column matrix: `c/groups · kh · kw`.
    fn k(&self) -> usize {
        self.cg() * self.kh * self.kw
    }
    /// Columns of the column matrix: output positions `oh · ow`.
    fn l(&self) -> usize {
        self.oh * self.ow
    }
    fn hw(&self) -> usize {
        self.h * self.w
    }
    /// A 1x1 kernel with unit stride and no padding: the image *is* its column matrix.
    fn pointwise(&self) -> bool {
        self.kh == 1
            && self.kw == 1
            && self.stride == (1, 1)
            && self.pad == (0, 0)
            && (self.h, self.w) == (self.oh, self.ow)
    }
    fn image_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }
    fn column_shape(&self) -> [usize; 4] {
        [self.n, self.o, self.oh, self.ow]
    }
    fn weight_shape(&self) -> [usize; 4] {
        [self.o, self.cg(), self.kh, self.kw]
    }
    /// Multiply-adds of one pass, to decide whether to use both cores.
    fn work(&self) -> usize {
        self.n * self.o * self.k() * self.l()
    }
    fn attrs<'a>(&self, op: Op<'a>) -> Op<'a> {
        let ints = |(a, b): (usize, usize)| Attr::Ints(vec![a as i64, b as i64]);
        op.attr("stride", ints(self.stride))
            .attr("padding", ints(self.pad))
            .attr("dilation", ints(self.dil))
            .attr("groups", Attr::Int(self.groups as i64))
    }
}

/// Below this many multiply-adds a pass runs on one thread.
const PAR_WORK: usize = 1 << 16;

/// For kernel tap `j` (dilation `d`, padding `p`, stride `s`) along a dim of size `n` with `out`
/// positions: the range of output positions whose input coordinate `o·s − p + j·d` is inside
/// `[0, n)`.
fn valid_range(j: usize, d: usize, p: usize, s: usize, n: usize, out: usize) -> (usize, usize) {
    let off = j * d;
    // o·s + off ≥ p  ⇔  o ≥ ⌈(p − off) / s⌉
    let lo = if off >= p { 0 } else { (p - off).div_ceil(s) };
    // o·s + off < n + p  ⇔  o < ⌈(n + p − off) / s⌉
    let hi = if off >= n + p {
        0
    } else {
        (n + p - off).div_ceil(s)
    };
    (lo.min(out), hi.min(out).max(lo.min(out)))
}

/// Walks one group's image `[c/groups, h, w]` against its column matrix `[k, l]` (row
/// `(c, i, j)` holds tap `(i, j)` of channel `c` at every output position) in runs:
/// `run(col_offset, Some(img_offset), len, img_step)` for `len` taps inside the image,
/// `run(col_offset, None, len, 0)` for taps in the padding.
fn walk(g: &Geom, mut run: impl FnMut(usize, Option<usize>, usize, usize)) {
    let (h, w, oh, ow) = (g.h, g.w, g.oh, g.ow);
    let ((sh, sw), (ph, pw), (dh, dw)) = (g.stride, g.pad, g.dil);
    let l = g.l();
    for c in 0..g.cg() {
        for i in 0..g.kh {
            let (ylo, yhi) = valid_range(i, dh, ph, sh, h, oh);
            for j in 0..g.kw {
                let (xlo, xhi) = valid_range(j, dw, pw, sw, w, ow);
                let row = ((c * g.kh + i) * g.kw + j) * l;
                run(row, None, ylo * ow, 0);
                for oy in ylo..yhi {
                    let at = row + oy * ow;
                    let iy = oy * sh + i * dh - ph;
                    run(at, None, xlo, 0);
                    if xhi > xlo {
                        let ix = xlo * sw + j * dw - pw;
                        run(at + xlo, Some((c * h + iy) * w + ix), xhi - xlo, sw);
                    }
                    run(at + xhi, None, ow - xhi, 0);
                }
                run(row + yhi * ow, None, (oh - yhi) * ow, 0);
            }
        }
    }
}

/// im2col: one group's image `[c/groups, h, w]` → its column matrix `[k, l]`, zero where a tap
/// falls in the padding.
fn im2col<F: Float>(img: &[F], col: &mut [F], g: &Geom) {
    walk(g, |at, src, len, step| {
        let dst = &mut col[at..at + len];
        match src {
            None => dst.fill(F::zero()),
            Some(s) if step == 1 => dst.copy_from_slice(&img[s..s + len]),
            Some(s) => dst
                .iter_mut()
                .enumerate()
                .for_each(|(t, d)| *d = img[s + t * step]),
        }
    });
}

/// col2im, the adjoint of [`im2col`]: adds a column matrix `[k, l]` back into the image.
fn col2im<F: Float>(col: &[F], img: &mut [F], g: &Geom) {
    walk(g, |at, dst, len, step| {
        let Some(s) = dst else { return };
        let src = &col[at..at + len];
        if step == 1 {
            img[s..s + len]
                .iter_mut()
                .zip(src)
                .for_each(|(d, &v)| *d += v);
        } else {
            src.iter()
                .enumerate()
                .for_each(|(t, &v)| img[s + t * step] += v);
        }
    });
}

/// Runs `f(sample, chunk, scratch)` over `out` split into per-sample chunks of `chunk`
/// elements, on both cores when `parallel`; `scratch` is a per-thread buffer of `scratch_len`.
fn per_sample<F: Float>(
    out: &mut [F],
    chunk: usize,
    scratch_len: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [F], &mut Vec<F>) + Sync + Send,
) {
    if chunk == 0 {
        return;
    }
    let init = || vec![F::zero(); scratch_len];
    if parallel {
        // blocks of whole samples, a few per thread, each with its own scratch buffer
        let samples = out.len() / chunk;
        let per_block = samples
            .div_ceil(4 * crate::parallel::get_num_threads())
            .max(1);
        crate::parallel::for_each_chunk_mut(out, per_block * chunk, true, |start, block| {
            let mut s = init();
            for (j, c) in block.chunks_mut(chunk).enumerate() {
                f(start / chunk + j, c, &mut s)
            }
        });
    } else {
        let mut s = init();
        out.chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c, &mut s));
    }
}

/// Adds `bias[ch]` to every element of channel `ch` of one sample `[ch, plane]`.
fn add_bias<F: Float>(sample: &mut [F], bias: Option<&[F]>, plane: usize) {
    if let Some(b) = bias {
        for (c, &bc) in sample.chunks_mut(plane).zip(b) {
            c.iter_mut().for_each(|v| *v += bc);
        }
    }
}

/// The three passes over a geometry.
#[derive(Clone, Copy)]
enum Pass {
    /// `(x [image], w, bias?) → y [columns]`.
    Conv,
    /// `(y [columns], w, bias?) → x [image]`.
    Transpose,
    /// `(x [image], gy [columns]) → gw [weight]`.
    WeightGrad,
}

impl Pass {
    fn out_shape(self, g: &Geom) -> [usize; 4] {
        match self {
            Pass::Conv => g.column_shape(),
            Pass::Transpose => g.image_shape(),
            Pass::WeightGrad => g.weight_shape(),
        }
    }

    fn run<F: Float>(self, g: &Geom, a: &[F], b: &[F], bias: Option<&[F]>) -> Vec<F> {
        let (k, l, og, cg, hw) = (g.k(), g.l(), g.og(), g.cg(), g.hw());
        let par = g.n > 1 && crate::parallel::worth_splitting(g.work(), PAR_WORK);
        let scratch = if g.pointwise() { 0 } else { k * l };
        // group `gi` of sample `n` of the image / column side
        let img = |n: usize, gi: usize| &a[(n * g.c + gi * cg) * hw..][..cg * hw];
        let cols = |n: usize, gi: usize| &b[(n * g.o + gi * og) * l..][..og * l];
        match self {
            Pass::Conv => {
                let mut out = vec![F::zero(); g.n * g.o * l];
                per_sample(&mut out, g.o * l, scratch, par, |n, y, col| {
                    for gi in 0..g.groups {
                        let x = img(n, gi);
                        let colp = if g.pointwise() {
                            x.as_ptr()
                        } else {
                            im2col(x, col, g);
                            col.as_ptr()
                        };
                        // SAFETY: y_g [og, l] = w_g [og, k] · col [k, l], all in bounds.
                        unsafe {
                            F::gemm(
                                og,
                                k,
                                l,
                                F::one(),
                                b[gi * og * k..].as_ptr(),
                                k as isize,
                                1,
                                colp,
                                l as isize,
                                1,
                                F::zero(),
                                y[gi * og * l..].as_mut_ptr(),
                                l as isize,
                                1,
                            )
                        }
                    }
                    add_bias(y, bias, l);
                });
                out
            }
            Pass::Transpose => {
                // here `a` is the column side and `b` the kernel
                let ys = |n: usize, gi: usize| &a[(n * g.o + gi * og) * l..][..og * l];
                let mut out = vec![F::zero(); g.n * g.c * hw];
                per_sample(&mut out, g.c * hw, scratch, par, |n, x, col| {
                    for gi in 0..g.groups {
                        let xg = &mut x[gi * cg * hw..(gi + 1) * cg * hw];
                        let dst = if g.pointwise() {
                            &mut xg[..]
                        } else {
                            &mut col[..]
                        };
                        // SAFETY: col [k, l] = w_gᵀ [k, og] · y_g [og, l], all in bounds.
                        unsafe {
                            F::gemm(
                                k,
                                og,
                                l,
                                F::one(),
                                b[gi * og * k..].as_ptr(),
                                1,
                                k as isize,
                                ys(n, gi).as_ptr(),
                                l as isize,
                                1,
                                F::zero(),
                                dst.as_mut_ptr(),
                                l as isize,
                                1,
                            )
                        }
                        if !g.pointwise() {
                            col2im(col, xg, g);
                        }
                    }
                    add_bias(x, bias, hw);
                });
                out
            }
            Pass::WeightGrad => {
                // A fixed number of sample chunks, summed in order: the result does not depend
                // on how many threads ran them.
                let chunks = if par { g.n.min(8) } else { 1 };
                let per = g.n.div_ceil(chunks).max(1);
                let partial = |ci: usize| {
                    let mut acc = vec![F::zero(); g.o * k];
                    let mut col = vec![F::zero(); scratch];
                    for n in ci * per..((ci + 1) * per).min(g.n) {
                        for gi in 0..g.groups {
                            let x = img(n, gi);
                            let colp = if g.pointwise() {
                                x.as_ptr()
                            } else {
                                im2col(x, &mut col, g);
                                col.as_ptr()
                            };
                            // SAFETY: gw_g [og, k] += gy_g [og, l] · colᵀ [l, k], in bounds.
                            unsafe {
                                F::gemm(
                                    og,
                                    l,
                                    k,
                                    F::one(),
                                    cols(n, gi).as_ptr(),
                                    l as isize,
                                    1,
                                    colp,
                                    1,
                                    l as isize,
                                    F::one(),
                                    acc[gi * og * k..].as_mut_ptr(),
                                    k as isize,
                                    1,
                                )
                            }
                        }
                    }
                    acc
                };
                let mut parts = if chunks > 1 {
                    crate::parallel::map_collect(chunks, true, partial)
                } else {
                    vec![partial(0)]
                }
                .into_iter();
                let mut out = parts.next().expect("at least one chunk");
                for p in parts {
                    out.iter_mut().zip(&p).for_each(|(o, &v)| *o += v);
                }
                out
            }
        }
    }

    /// Runs the pass on tensors of one float dtype (checked by the callers).
    fn apply(self, op: &str, g: &Geom, a: &Tensor, b: &Tensor, bias: Option<&Tensor>) -> Data {
        let (a, b) = (a.data().to_standard_layout(), b.data().to_standard_layout());
        let bias = bias.map(|t| t.data().to_standard_layout());
        fn go<F: Float>(p: Pass, g: &Geom, a: &Data, b: &Data, bias: Option<&Data>) -> Data {
            let out = p.run::<F>(g, slice(a), slice(b), bias.map(slice));
            Data::from(
                ArrayD::from_shape_vec(IxDyn(&p.out_shape(g)), out)
                    .expect("one value per output element")
                    .into_shared(),
            )
        }
        match a.dtype() {
            DType::F32 => go::<f32>(self, g, &a, &b, bias.as_ref()),
            DType::F64 => go::<f64>(self, g, &a, &b, bias.as_ref()),
            d => panic!(
                "{op}: expected float32 or float64 tensors, got {d}{}",
                current_location()
            ),
        }
    }
}

/// The elements of standard-layout data of element type `F`.
fn slice<F: Float>(d: &Data) -> &[F] {
    F::unwrap(d)
        .expect("dtypes were checked")
        .as_slice()
        .expect("standard layout")
}

// ----- recorded ops ----------------------------------------------------------------------------

/// Records `conv2d` (image → columns). Backward: the image gets `conv_transpose2d(gy, w)`, the
/// kernel `conv2d_backward_weight(x, gy)`, the bias `Σ gy` over batch and positions.
#[track_caller]
fn conv_op(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, g: Geom) -> Tensor {
    let inputs: Vec<&Tensor> = [x, w].into_iter().chain(bias).collect();
    let op = g
        .attrs(Op::new("conv2d", &inputs))
        .attr("has_bias", Attr::Bool(bias.is_some()));
    let out = Pass::Conv.apply("conv2d", &g, x, w, bias);
    let has_bias = bias.is_some();
    op.save(x).save(w).finish(out, move |ctx, gy| {
        let mut grads = vec![
            ctx.needs_grad(0)
                .then(|| transpose_op(gy, &ctx.saved(1), None, g)),
            ctx.needs_grad(1)
                .then(|| weight_grad_op(&ctx.saved(0), gy, g)),
        ];
        if has_bias {
            grads.push(ctx.needs_grad(2).then(|| gy.sum_dim([0, 2, 3], false)));
        }
        grads
    })
}

/// Records `conv_transpose2d` (columns → image), the adjoint of [`conv_op`] in the image:
/// `<convT(y, w), G> = <y, conv(G, w)>`, so the columns get `conv2d(G, w)` and the kernel
/// `conv2d_backward_weight(G, y)`.
#[track_caller]
fn transpose_op(y: &Tensor, w: &Tensor, bias: Option<&Tensor>, g: Geom) -> Tensor {
    let inputs: Vec<&Tensor> = [y, w].into_iter().chain(bias).collect();
    let op = g
        .attrs(Op::new("conv_transpose2d", &inputs))
        .attr("has_bias", Attr::Bool(bias.is_some()));
    let out = Pass::Transpose.apply("conv_transpose2d", &g, y, w, bias);
    let has_bias = bias.is_some();
    op.save(y).save(w).finish(out, move |ctx, gx| {
        let mut grads = vec![
            ctx.needs_grad(0)
                .then(|| conv_op(gx, &ctx.saved(1), None, g)),
            ctx.needs_grad(1)
                .then(|| weight_grad_op(gx, &ctx.saved(0), g)),
        ];
        if has_bias {
            grads.push(ctx.needs_grad(2).then(|| gx.sum_dim([0, 2, 3], false)));
        }
        grads
    })
}

/// Records `conv2d_backward_weight`: `gw = Σₙ gy · im2col(x)ᵀ`, bilinear in `x` and `gy`:
/// `<gw(x, gy), G> = <gy, conv(x, G)> = <x, convT(gy, G)>`.
#[track_caller]
fn weight_grad_op(x: &Tensor, gy: &Tensor, g: Geom) -> Tensor {
    let inputs = [x, gy];
    let op = g.attrs(Op::new("conv2d_backward_weight", &inputs));
    let out = Pass::WeightGrad.apply("conv2d_backward_weight", &g, x, gy, None);
    op.save(x).save(gy).finish(out, move |ctx, gw| {
        vec![
            ctx.needs_grad(0)
                .then(|| transpose_op(&ctx.saved(1), gw, None, g)),
            ctx.needs_grad(1)
                .then(|| conv_op(&ctx.saved(0), gw, None, g)),
        ]
    })
}

// ----- argument checks -------------------------------------------------------------------------

/// The shapes of a convolution's arguments, for error messages.
fn shapes(x: &Tensor, w: &Tensor) -> String {
    format!("input {:?}, weight {:?}", x.shape(), w.shape())
}

/// Checks what every convolution needs of its arguments: ranks (`spatial` dims, batched or
/// not), float dtypes that agree, positive stride / dilation / groups, and a bias of `bias_len`
/// elements.
#[allow(clippy::too_many_arguments)]
fn check_common(
    op: &str,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    spatial: usize,
    stride: &[usize],
    dilation: &[usize],
    groups: usize,
    loc: &Location,
) {
    let dims = ["L", "H, W"][spatial - 1];
    if x.ndim() != spatial + 1 && x.ndim() != spatial + 2 {
        panic!(
            "{op}: expected a {}-d (unbatched) or {}-d (batched) input [N, C, {dims}], got {}, \
             at {loc}",
            spatial + 1,
            spatial + 2,
            shapes(x, w)
        );
    }
    if w.ndim() != spatial + 2 {
        panic!(
            "{op}: expected a {}-d weight, got {}, at {loc}",
            spatial + 2,
            shapes(x, w)
        );
    }
    if groups == 0 || stride.contains(&0) || dilation.contains(&0) {
        panic!(
            "{op}: stride, dilation and groups must be positive, got stride {stride:?}, dilation \
             {dilation:?}, groups {groups} ({}), at {loc}",
            shapes(x, w)
        );
    }
    for t in [Some(w), bias].into_iter().flatten() {
        if !x.dtype().is_float() || t.dtype() != x.dtype() {
            panic!(
                "{op}: expected floating-point tensors of one dtype, got input {} and {} {:?}, \
                 at {loc}",
                x.dtype(),
                t.dtype(),
                t.shape()
            );
        }
    }
}

/// Checks a bias against the number of output channels.
fn check_bias(
    op: &str,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    out_c: usize,
    loc: &Location,
) {
    if let Some(b) = bias {
        if b.shape() != [out_c] {
            panic!(
                "{op}: expected a bias of shape [{out_c}], got {:?} ({}), at {loc}",
                b.shape(),
                shapes(x, w)
            );
        }
    }
}

/// Checks a convolution's arguments and returns its output spatial sizes,
/// `⌊(in + 2p − d(k − 1) − 1) / s⌋ + 1` per dim.
#[allow(clippy::too_many_arguments)]
fn check_conv(
    op: &str,
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    stride: &[usize],
    padding: &[usize],
    dilation: &[usize],
    groups: usize,
    loc: &Location,
) -> Vec<usize> {
    let spatial = stride.len();
    check_common(op, x, w, bias, spatial, stride, dilation, groups, loc);
    let c = x.shape()[x.ndim() - spatial - 1];
    let (o, wc) = (w.shape()[0], w.shape()[1]);
    if c % groups != 0 || o % groups != 0 {
        panic!(
            "{op}: groups {groups} must divide both the input channels {c} and the output \
             channels {o} ({}), at {loc}",
            shapes(x, w)
        );
    }
    if c != wc * groups {
        panic!(
            "{op}: the input has {c} channels but the weight expects {wc} × groups {groups} = \
             {} ({}), at {loc}",
            wc * groups,
            shapes(x, w)
        );
    }
    check_bias(op, x, w, bias, o, loc);
    let size = &x.shape()[x.ndim() - spatial..];
    let kernel = &w.shape()[2..];
    (0..spatial)
        .map(|d| {
            let padded = size[d] + 2 * padding[d];
            let reach = dilation[d] * (kernel[d].max(1) - 1) + 1;
            if kernel[d] == 0 || padded < reach {
                panic!(
                    "{op}: the kernel (size {kernel:?}, dilation {dilation:?}) is larger than \
                     the padded input (size {size:?}, padding {padding:?}) ({}), at {loc}",
                    shapes(x, w)
                );
            }
            (padded - reach) / stride[d] + 1
        })
        .collect()
}

/// Runs `f` on a batched input: an unbatched one gets a batch dim of 1, removed from the result.
fn batched(x: &Tensor, spatial: usize, f: impl FnOnce(&Tensor) -> Tensor) -> Tensor {
    if x.ndim() == spatial + 2 {
        f(x)
    } else {
        f(&x.unsqueeze(0)).squeeze_dim(0)
    }
}

// ----- public functions ------------------------------------------------------------------------

/// 2-d convolution (cross-correlation, as in deep learning) of `input` `[N, C, H, W]` (or
/// unbatched `[C, H, W]`) with `weight` `[O, C / groups, kH, kW]`, plus `bias` `[O]`, like
/// `torch.nn.functional.conv2d`.
///
/// `out[n, o, y, x] = bias[o] + Σ_{c, i, j} input[n, g·C/groups + c, y·sH − pH + i·dH,
/// x·sW − pW + j·dW] · weight[o, c, i, j]` where `g` is `o`'s group and taps in the padding
/// read 0. The output is `[N, O, OH, OW]` with `OH = ⌊(H + 2pH − dH(kH − 1) − 1) / sH⌋ + 1`.
/// Computed as im2col + one matrix product per group; the backward is one tape entry per
/// argument kind (`conv_transpose2d` for the input, `conv2d_backward_weight` for the weight),
/// both differentiable again.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional::{conv2d, Conv2dOpts};
/// let x = Tensor::ones(&[1, 1, 4, 4]);
/// let w = Tensor::ones(&[2, 1, 3, 3]);
/// let b = Tensor::from_vec(vec![0.0, 1.0], &[2]);
/// let y = conv2d(&x, &w, Some(&b), Conv2dOpts::default().padding(1));
/// assert_eq!(y.shape(), &[1, 2, 4, 4]);
/// // a corner sees 2 × 2 ones of the 3 × 3 window, the middle all 9
/// assert_eq!(y.to_vec::<f32>()[..4], [4.0, 6.0, 6.0, 4.0]);
/// assert_eq!(y.to_vec::<f32>()[16 + 5], 10.0);
/// ```
///
/// # Panics
/// If the input is not 3-d or 4-d or the weight not 4-d, if the dtypes differ or are not
/// floating point, if stride, dilation or groups is 0, if groups does not divide the input and
/// output channels, if the input channels are not `weight.shape()[1] × groups`, if the bias is
/// not `[O]`, or if the dilated kernel is larger than the padded input.
#[track_caller]
pub fn conv2d(input: &Tensor, weight: &Tensor, bias: Option<&Tensor>, opts: Conv2dOpts) -> Tensor {
    let loc = Location::caller();
    let (s, p, d) = (opts.stride, opts.padding, opts.dilation);
    let out = check_conv(
        "conv2d",
        input,
        weight,
        bias,
        &[s.0, s.1],
        &[p.0, p.1],
        &[d.0, d.1],
        opts.groups,
        loc,
    );
    batched(input, 2, |x| {
        let xs = x.shape();
        let ws = weight.shape();
        let g = Geom {
            n: xs[0],
            c: xs[1],
            h: xs[2],
            w: xs[3],
            o: ws[0],
            oh: out[0],
            ow: out[1],
            kh: ws[2],
            kw: ws[3],
            stride: s,
            pad: p,
            dil: d,
            groups: opts.groups,
        };
        conv_op(x, weight, bias, g)
    })
}

/// 1-d convolution of `input` `[N, C, L]` (or unbatched `[C, L]`) with `weight`
/// `[O, C / groups, K]`, plus `bias` `[O]`, like `torch.nn.functional.conv1d(input, weight,
/// bias, stride, padding, dilation, groups)` (PyTorch's defaults are `1, 0, 1, 1`). Computed as
/// a [`conv2d`] over a height of 1.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional::conv1d;
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 4]);
/// let w = Tensor::from_vec(vec![1.0, -1.0], &[1, 1, 2]);
/// // y[i] = x[i] − x[i + 1]
/// assert_eq!(conv1d(&x, &w, None, 1, 0, 1, 1).to_vec::<f32>(), vec![-1.0, -1.0, -1.0]);
/// ```
///
/// # Panics
/// As [`conv2d`], for a 2-d or 3-d input and a 3-d weight.
#[track_caller]
pub fn conv1d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
    dilation: usize,
    groups: usize,
) -> Tensor {
    let loc = Location::caller();
    let out = check_conv(
        "conv1d",
        input,
        weight,
        bias,
        &[stride],
        &[padding],
        &[dilation],
        groups,
        loc,
    );
    batched(input, 1, |x| {
        let (xs, ws) = (x.shape(), weight.shape());
        let g = Geom {
            n: xs[0],
            c: xs[1],
            h: 1,
            w: xs[2],
            o: ws[0],
            oh: 1,
            ow: out[0],
            kh: 1,
            kw: ws[2],
            stride: (1, stride),
            pad: (0, padding),
            dil: (1, dilation),
            groups,
        };
        conv_op(&x.unsqueeze(2), &weight.unsqueeze(2), bias, g).squeeze_dim(2)
    })
}

/// 2-d transposed convolution ("deconvolution") of `input` `[N, C_in, H, W]` (or unbatched)
/// with `weight` `[C_in, C_out / groups, kH, kW]`, plus `bias` `[C_out]`, like
/// `torch.nn.functional.conv_transpose2d(input, weight, bias, stride, padding, output_padding,
/// groups, dilation)` — same argument order; PyTorch's defaults are `1, 0, 0, 1, 1`.
///
/// It is the gradient of [`conv2d`] with respect to its input: every input element scatters
/// `input · weight` into a `kH × kW` window of the output. The output is `[N, C_out, OH, OW]`
/// with `OH = (H − 1)·sH − 2pH + dH(kH − 1) + output_paddingH + 1`; `output_padding` picks
/// among the input sizes a strided convolution maps to the same size.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional::conv_transpose2d;
/// let x = Tensor::from_vec(vec![1.0, 2.0], &[1, 1, 1, 2]);
/// let w = Tensor::ones(&[1, 1, 2, 2]);
/// // stride 2: each input value fills its own 2 × 2 block
/// let y = conv_transpose2d(&x, &w, None, 2, 0, 0, 1, 1);
/// assert_eq!(y.shape(), &[1, 1, 2, 4]);
/// assert_eq!(y.to_vec::<f32>(), vec![1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
/// ```
///
/// # Panics
/// If the input is not 3-d or 4-d or the weight not 4-d, if the dtypes differ or are not
/// floating point, if stride, dilation or groups is 0, if the input channels differ from
/// `weight.shape()[0]` or are not divisible by groups, if the bias is not `[C_out]`, if an
/// output padding is not smaller than its stride or its dilation, or if the output would be
/// empty.
#[allow(clippy::too_many_arguments)] // PyTorch's signature
#[track_caller]
pub fn conv_transpose2d(
    input: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: impl Size2,
    padding: impl Size2,
    output_padding: impl Size2,
    groups: usize,
    dilation: impl Size2,
) -> Tensor {
    let loc = Location::caller();
    let op = "conv_transpose2d";
    let (s, p, q, d) = (
        stride.pair(),
        padding.pair(),
        output_padding.pair(),
        dilation.pair(),
    );
    check_common(
        op,
        input,
        weight,
        bias,
        2,
        &[s.0, s.1],
        &[d.0, d.1],
        groups,
        loc,
    );
    let cin = input.shape()[input.ndim() - 3];
    if cin != weight.shape()[0] || cin % groups != 0 {
        panic!(
            "{op}: the input has {cin} channels, but the weight expects {} (its first dim), \
             divisible by groups {groups} ({}), at {loc}",
            weight.shape()[0],
            shapes(input, weight)
        );
    }
    let cout = weight.shape()[1] * groups;
    check_bias(op, input, weight, bias, cout, loc);
    let size = &input.shape()[input.ndim() - 2..];
    let ks = &weight.shape()[2..];
    let out: Vec<usize> = [(s.0, p.0, q.0, d.0), (s.1, p.1, q.1, d.1)]
        .iter()
        .enumerate()
        .map(|(i, &(s, p, q, d))| {
            if q >= s && q >= d {
                panic!(
                    "{op}: output padding {:?} must be smaller than either the stride {:?} or \
                     the dilation {:?} ({}), at {loc}",
                    (q, q),
                    (s, s),
                    (d, d),
                    shapes(input, weight)
                );
            }
            let full = (size[i] as isize - 1) * s as isize
                + (d * ks[i].saturating_sub(1)) as isize
                + q as isize
                + 1;
            let o = full - 2 * p as isize;
            if size[i] == 0 || ks[i] == 0 || o <= 0 {
                panic!(
                    "{op}: the output would be empty (size {o} along dim {}) for padding \
                     {padding:?} ({}), at {loc}",
                    i + 2,
                    shapes(input, weight),
                    padding = (p, p)
                );
            }
            o as usize
        })
        .collect();
    batched(input, 2, |x| {
        let (xs, ws) = (x.shape(), weight.shape());
        let g = Geom {
            n: xs[0],
            c: cout,
            h: out[0],
            w: out[1],
            o: cin,
            oh: xs[2],
            ow: xs[3],
            kh: ws[2],
            kw: ws[3],
            stride: s,
            pad: p,
            dil: d,
            groups,
        };
        transpose_op(x, weight, bias, g)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    fn t(v: Vec<f64>, shape: &[usize]) -> Tensor {
        Tensor::from_vec_f64(v, shape)
    }

    fn x3x3() -> Tensor {
        t((1..=9).map(f64::from).collect(), &[1, 1, 3, 3])
    }

    #[test]
    fn conv2d_values_by_hand() {
        // x = [[1,2,3],[4,5,6],[7,8,9]], w = [[1,2],[3,4]], b = 1:
        // y[0,0] = 1·1 + 2·2 + 4·3 + 5·4 + 1 = 38, and so on
        let w = t(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
        let y = conv2d(
            &x3x3(),
            &w,
            Some(&t(vec![1.0], &[1])),
            Conv2dOpts::default(),
        );
        assert_eq!(y.shape(), &[1, 1, 2, 2]);
        assert_eq!(y.to_vec::<f64>(), vec![38.0, 48.0, 68.0, 78.0]);
        // stride 2, padding 1, 2x2 ones: windows cover rows/cols {-1,0} and {1,2}
        let ones = Tensor::ones_dtype(&[1, 1, 2, 2], DType::F64);
        let y = conv2d(
            &x3x3(),
            &ones,
            None,
            Conv2dOpts::default().stride(2).padding(1),
        );
        assert_eq!(
            y.to_vec::<f64>(),
            vec![1.0, 2.0 + 3.0, 4.0 + 7.0, 5.0 + 6.0 + 8.0 + 9.0]
        );
        // dilation 2: the four corners
        let y = conv2d(&x3x3(), &ones, None, Conv2dOpts::default().dilation(2));
        assert_eq!(y.to_vec::<f64>(), vec![1.0 + 3.0 + 7.0 + 9.0]);
        // non-square stride and padding: stride (1, 2), padding (0, 1)
        let y = conv2d(
            &x3x3(),
            &ones,
            None,
            Conv2dOpts::default().stride((1, 2)).padding((0, 1)),
        );
        assert_eq!(y.shape(), &[1, 1, 2, 2]);
        assert_eq!(
            y.to_vec::<f64>(),
            vec![
                1.0 + 4.0,
                2.0 + 3.0 + 5.0 + 6.0,
                4.0 + 7.0,
                5.0 + 6.0 + 8.0 + 9.0
            ]
        );
    }

    #[test]
    fn conv2d_groups_keep_channels_apart() {
        // channel 0 is all 1, channel 1 all 2; 1x1 weights 3 and 5, one per group
        let x = t(vec![1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0], &[1, 2, 2, 2]);
        let w = t(vec![3.0, 5.0], &[2, 1, 1, 1]);
        let y = conv2d(&x, &w, None, Conv2dOpts::default().groups(2));
        assert_eq!(
            y.to_vec::<f64>(),
            vec![3.0, 3.0, 3.0, 3.0, 10.0, 10.0, 10.0, 10.0]
        );
        // one group mixes them: 3·1 + 5·2
        let w = t(vec![3.0, 5.0], &[1, 2, 1, 1]);
        let y = conv2d(&x, &w, None, Conv2dOpts::default());
        assert_eq!(y.to_vec::<f64>(), vec![13.0; 4]);
    }

    #[test]
    fn conv2d_accepts_an_unbatched_input() {
        let w = randn64(&[2, 1, 2, 2], 1);
        let x = x3x3();
        let batched = conv2d(&x, &w, None, Conv2dOpts::default());
        let single = conv2d(&x.squeeze_dim(0), &w, None, Conv2dOpts::default());
        assert_eq!(single.shape(), &[2, 2, 2]);
        assert_eq!(single.to_vec::<f64>(), batched.to_vec::<f64>());
    }

    #[test]
    fn conv1d_values_by_hand() {
        // y[i] = x[2i − 1] − x[2i + 1] + 0.5 (stride 2, padding 1, dilation 2, taps [1, −1])
        let x = t(vec![1.0, 2.0, 4.0, 8.0, 16.0], &[1, 1, 5]);
        let w = t(vec![1.0, -1.0], &[1, 1, 2]);
        let y = conv1d(&x, &w, Some(&t(vec![0.5], &[1])), 2, 1, 2, 1);
        assert_eq!(y.shape(), &[1, 1, 3]);
        assert_eq!(
            y.to_vec::<f64>(),
            vec![0.0 - 2.0 + 0.5, 2.0 - 8.0 + 0.5, 8.0 - 0.0 + 0.5]
        );
        assert_eq!(
            conv1d(&x.squeeze_dim(0), &w, None, 1, 0, 1, 1).shape(),
            &[1, 4]
        );
    }

    #[test]
    fn conv_transpose2d_values_by_hand() {
        // each x[i, j] adds x[i, j] · ones(2x2) at rows i..i+2, cols j..j+2
        let x = t(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
        let ones = Tensor::ones_dtype(&[1, 1, 2, 2], DType::F64);
        let y = conv_transpose2d(&x, &ones, None, 1, 0, 0, 1, 1);
        assert_eq!(
            y.to_vec::<f64>(),
            vec![1.0, 3.0, 2.0, 4.0, 10.0, 6.0, 3.0, 7.0, 4.0]
        );
        // padding 1 crops the outer ring; output_padding 1 with stride 2 adds a row and column
        let y = conv_transpose2d(&x, &ones, Some(&t(vec![0.5], &[1])), 1, 1, 0, 1, 1);
        assert_eq!(y.to_vec::<f64>(), vec![10.5]);
        let y = conv_transpose2d(&x, &ones, None, 2, 0, 1, 1, 1);
        assert_eq!(y.shape(), &[1, 1, 5, 5]);
        assert_eq!(y.to_vec::<f64>()[20..], [0.0; 5]);
    }

    #[test]
    fn conv_transpose2d_is_the_adjoint_of_conv2d() {
        // <conv2d(x, w), y> = <x, conv_transpose2d(y, w)> for the same stride/padding/dilation
        let (x, w) = (randn64(&[2, 4, 9, 8], 1), randn64(&[6, 2, 3, 2], 2));
        let opts = Conv2dOpts::default()
            .stride(2)
            .padding((1, 0))
            .dilation((2, 1))
            .groups(2);
        let cx = conv2d(&x, &w, None, opts);
        let y = randn64(cx.shape(), 3);
        // output_padding recovers the sizes the strided convolution rounds away
        let (oh, ow) = (cx.shape()[2], cx.shape()[3]);
        let q = (9 + 2 - 2 * 2 - 1 - (oh - 1) * 2, 8 - 1 - 1 - (ow - 1) * 2);
        let ty = conv_transpose2d(&y, &w, None, 2, (1, 0), q, 2, (2, 1));
        assert_eq!(ty.shape(), x.shape());
        let lhs = (&cx * &y).sum().item();
        let rhs = (&x * &ty).sum().item();
        assert!(
            (lhs - rhs).abs() < 1e-9 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }

    fn check_conv2d(x: Tensor, w: Tensor, bias: Option<Tensor>, opts: Conv2dOpts) {
        let mut inputs = vec![x, w];
        inputs.extend(bias);
        gradcheck(|t| conv2d(&t[0], &t[1], t.get(2), opts), &inputs).unwrap();
    }

    #[test]
    fn conv2d_gradcheck() {
        let d = Conv2dOpts::default();
        // batch > 1, non-square kernel, bias
        check_conv2d(
            randn64(&[2, 3, 5, 6], 1),
            randn64(&[4, 3, 3, 2], 2),
            Some(randn64(&[4], 3)),
            d,
        );
        // stride 2, padding 1
        check_conv2d(
            randn64(&[2, 2, 6, 5], 4),
            randn64(&[3, 2, 3, 3], 5),
            Some(randn64(&[3], 6)),
            d.stride(2).padding(1),
        );
        // dilation 2, groups 2, no bias, non-square stride/padding
        check_conv2d(
            randn64(&[1, 4, 7, 6], 7),
            randn64(&[6, 2, 2, 3], 8),
            None,
            d.dilation(2).groups(2).stride((1, 2)).padding((0, 1)),
        );
        // 1x1 kernel (the image is its own column matrix), groups 2
        check_conv2d(
            randn64(&[2, 4, 3, 3], 9),
            randn64(&[2, 2, 1, 1], 10),
            Some(randn64(&[2], 11)),
            d.groups(2),
        );
        // unbatched input
        check_conv2d(
            randn64(&[2, 4, 4], 12),
            randn64(&[3, 2, 2, 2], 13),
            None,
            d.padding((1, 0)),
        );
    }

    #[test]
    fn conv2d_gradcheck_non_contiguous() {
        // an NHWC buffer seen as NCHW, and a transposed weight
        let x = randn64(&[2, 5, 6, 4], 1).permute([0, 3, 1, 2]);
        assert!(!x.is_contiguous());
        let w = randn64_t(&[2, 4, 3, 3], 2);
        check_conv2d(
            x,
            w,
            Some(randn64(&[2], 3)),
            Conv2dOpts::default().padding(1),
        );
    }

    #[test]
    fn conv1d_gradcheck() {
        gradcheck(
            |t| conv1d(&t[0], &t[1], Some(&t[2]), 2, 1, 2, 2),
            &[
                randn64(&[2, 4, 9], 1),
                randn64(&[6, 2, 3], 2),
                randn64(&[6], 3),
            ],
        )
        .unwrap();
        gradcheck(
            |t| conv1d(&t[0], &t[1], None, 1, 0, 1, 1),
            &[randn64_t(&[2, 3, 5], 4), randn64(&[2, 3, 2], 5)],
        )
        .unwrap();
    }

    #[test]
    fn conv_transpose2d_gradcheck() {
        gradcheck(
            |t| conv_transpose2d(&t[0], &t[1], Some(&t[2]), 2, 1, 1, 2, 1),
            &[
                randn64(&[2, 4, 3, 4], 1),
                randn64(&[4, 3, 3, 2], 2),
                randn64(&[6], 3),
            ],
        )
        .unwrap();
        gradcheck(
            |t| conv_transpose2d(&t[0], &t[1], None, (1, 2), (0, 1), (0, 1), 1, 2),
            &[randn64(&[1, 2, 3, 3], 4), randn64(&[2, 3, 2, 2], 5)],
        )
        .unwrap();
        // non-contiguous input, 1x1 kernel
        gradcheck(
            |t| conv_transpose2d(&t[0], &t[1], None, 1, 0, 0, 1, 1),
            &[
                randn64(&[2, 3, 4, 3], 6).permute([0, 3, 1, 2]),
                randn64(&[3, 2, 1, 1], 7),
            ],
        )
        .unwrap();
    }

    /// `t[i]` itself when gradcheck's analytic pass made it require grad, otherwise a fresh leaf
    /// (the finite-difference passes hand in plain tensors).
    fn leaf(t: &Tensor) -> Tensor {
        if t.requires_grad_enabled() {
            t.clone()
        } else {
            t.detach().requires_grad()
        }
    }

    #[test]
    fn conv2d_second_order_gradcheck() {
        // f(x, w) = ∂/∂x Σ tanh(conv2d(x, w) + b): its gradient in x and w goes through the
        // backward of conv_transpose2d (its input grad) and conv2d_backward_weight
        let opts = Conv2dOpts::default().stride(2).padding(1).groups(2);
        for wrt in 0..2 {
            gradcheck(
                |t| {
                    let _g = enable_grad();
                    let (x, w) = (leaf(&t[0]), leaf(&t[1]));
                    let y = conv2d(&x, &w, Some(&t[2]), opts).tanh().sum();
                    grad(&[&y], &[[&x, &w][wrt]], true).remove(0)
                },
                &[
                    randn64(&[2, 4, 5, 4], 1),
                    randn64(&[2, 2, 3, 2], 2),
                    randn64(&[2], 3),
                ],
            )
            .unwrap();
        }
    }

    #[test]
    fn conv_transpose2d_second_order_gradcheck() {
        gradcheck(
            |t| {
                let _g = enable_grad();
                let (x, w) = (leaf(&t[0]), leaf(&t[1]));
                let y = conv_transpose2d(&x, &w, None, 2, 0, 1, 1, 1).tanh().sum();
                let g = grad(&[&y], &[&x, &w], true);
                g[0].square().sum() + g[1].square().sum()
            },
            &[randn64(&[1, 2, 3, 2], 1), randn64(&[2, 2, 2, 2], 2)],
        )
        .unwrap();
    }

    #[test]
    fn large_batches_give_the_same_values_in_parallel() {
        // the weight gradient sums per-chunk partials in a fixed order: bitwise reproducible
        let x = randn64(&[16, 3, 12, 12], 1);
        let w = randn64(&[8, 3, 3, 3], 2).requires_grad();
        let run = || {
            w.zero_grad();
            let y = conv2d(&x, &w, None, Conv2dOpts::default().padding(1));
            y.square().sum().backward();
            (y.to_vec::<f64>(), w.grad().unwrap().to_vec::<f64>())
        };
        let (y1, g1) = run();
        let (y2, g2) = run();
        assert_eq!((y1.clone(), g1), (y2, g2));
        // and sample 5 alone gives the same output as inside the batch
        let one = conv2d(
            &x.narrow(0, 5, 1),
            &w,
            None,
            Conv2dOpts::default().padding(1),
        );
        let per = 8 * 12 * 12;
        assert_eq!(one.to_vec::<f64>(), y1[5 * per..6 * per]);
    }

    #[test]
    #[should_panic(expected = "conv2d: expected a 3-d (unbatched) or 4-d (batched) input")]
    fn conv2d_rejects_a_2d_input() {
        conv2d(
            &Tensor::zeros(&[3, 3]),
            &Tensor::zeros(&[1, 1, 2, 2]),
            None,
            Conv2dOpts::default(),
        );
    }

    #[test]
    #[should_panic(
        expected = "conv2d: expected a 4-d weight, got input [1, 1, 3, 3], weight [1, 2, 2]"
    )]
    fn conv2d_rejects_a_3d_weight() {
        conv2d(
            &Tensor::zeros(&[1, 1, 3, 3]),
            &Tensor::zeros(&[1, 2, 2]),
            None,
            Conv2dOpts::default(),
        );
    }

    #[test]
    #[should_panic(
        expected = "conv2d: the input has 3 channels but the weight expects 2 × groups 1 = 2 (input [1, 3, 5, 5], weight [4, 2, 3, 3])"
    )]
    fn conv2d_channel_mismatch_is_an_error() {
        conv2d(
            &Tensor::zeros(&[1, 3, 5, 5]),
            &Tensor::zeros(&[4, 2, 3, 3]),
            None,
            Conv2dOpts::default(),
        );
    }

    #[test]
    #[should_panic(
        expected = "conv2d: groups 2 must divide both the input channels 3 and the output channels 4"
    )]
    fn conv2d_groups_must_divide_the_channels() {
        conv2d(
            &Tensor::zeros(&[1, 3, 5, 5]),
            &Tensor::zeros(&[4, 1, 3, 3]),
            None,
            Conv2dOpts::default().groups(2),
        );
    }

    #[test]
    #[should_panic(
        expected = "conv2d: the kernel (size [3, 3], dilation [2, 2]) is larger than the padded input (size [4, 4], padding [0, 0])"
    )]
    fn conv2d_kernel_larger_than_the_padded_input_is_an_error() {
        conv2d(
            &Tensor::zeros(&[1, 1, 4, 4]),
            &Tensor::zeros(&[1, 1, 3, 3]),
            None,
            Conv2dOpts::default().dilation(2),
        );
    }

    #[test]
    #[should_panic(expected = "conv2d: expected a bias of shape [4], got [3]")]
    fn conv2d_bias_must_match_the_output_channels() {
        let b = Tensor::zeros(&[3]);
        conv2d(
            &Tensor::zeros(&[1, 2, 5, 5]),
            &Tensor::zeros(&[4, 2, 3, 3]),
            Some(&b),
            Conv2dOpts::default(),
        );
    }

    #[test]
    #[should_panic(
        expected = "conv1d: expected a 2-d (unbatched) or 3-d (batched) input [N, C, L]"
    )]
    fn conv1d_rejects_a_4d_input() {
        conv1d(
            &Tensor::zeros(&[1, 1, 3, 3]),
            &Tensor::zeros(&[1, 1, 2]),
            None,
            1,
            0,
            1,
            1,
        );
    }

    #[test]
    #[should_panic(
        expected = "conv_transpose2d: the input has 3 channels, but the weight expects 2"
    )]
    fn conv_transpose2d_channel_mismatch_is_an_error() {
        conv_transpose2d(
            &Tensor::zeros(&[1, 3, 4, 4]),
            &Tensor::zeros(&[2, 2, 3, 3]),
            None,
            1,
            0,
            0,
            1,
            1,
        );
    }

    #[test]
    #[should_panic(
        expected = "conv_transpose2d: output padding (2, 2) must be smaller than either the stride (2, 2) or the dilation (1, 1)"
    )]
    fn conv_transpose2d_output_padding_below_stride() {
        conv_transpose2d(
            &Tensor::zeros(&[1, 2, 4, 4]),
            &Tensor::zeros(&[2, 2, 3, 3]),
            None,
            2,
            0,
            2,
            1,
            1,
        );
    }

    #[test]
    fn conv_errors_name_the_callers_line() {
        let (x, w, opts) = (
            Tensor::zeros(&[1, 3, 5, 5]),
            Tensor::zeros(&[4, 2, 3, 3]),
            Conv2dOpts::default(),
        );
        let line = line!() + 1;
        let err = std::panic::catch_unwind(|| conv2d(&x, &w, None, opts)).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains(&format!("at {}:{line}:", file!())), "{msg}");
    }
}
