//! Normalisation layers: layer_norm, batch_norm and group_norm, like their
//! `torch.nn.functional` namesakes.
//!
//! All three compute `y = (x - mean) / sqrt(var + eps) · weight + bias` and differ only in which
//! elements share a mean and a variance (a *group*): the trailing `normalized_shape` dims of each
//! sample (layer_norm), each channel over the batch and spatial dims (batch_norm), or each block
//! of `C / G` channels of each sample (group_norm). One mechanism, [`Norm`], serves them: a fused
//! forward kernel (per-group statistics on all cores, then one pass for normalisation and the
//! affine map) recorded as one tape entry, whose backward is written with tensor ops so that it
//! can be differentiated again.

use std::panic::Location;

use ndarray::Dimension as _;
use ndarray::{ArrayD, ArrayViewD, IxDyn, Zip};

use crate::autograd::function::Op;
use crate::autograd::tape::Attr;
use crate::ops::binary::same_dtype_or_panic;
use crate::ops::unary::PAR_THRESHOLD;
use crate::tensor::{Data, Element, Float, Storage, Tensor};

/// Where the statistics come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stats {
    /// Computed from the input (they depend on it: the backward differentiates through them).
    Batch,
    /// Given (batch_norm's running statistics in eval mode): constants.
    Fixed,
}

/// How one normalisation layer groups its input.
struct Norm {
    name: &'static str,
    /// The input's shape.
    shape: Vec<usize>,
    /// The input seen in a shape where each group is the set of elements that agree outside
    /// `dims` (the input's own shape, except for group_norm's `[N, G, C/G · spatial]`).
    group_shape: Vec<usize>,
    /// The dims of `group_shape` a mean and a variance reduce over.
    dims: Vec<usize>,
    /// The shape weight and bias are viewed as to broadcast against the input.
    affine_shape: Vec<usize>,
    eps: f64,
}

/// What a normalisation's forward returns besides the output: the per-group mean and biased
/// variance (shape `group_shape` with size 1 in `dims`), for running-statistic updates.
struct Moments {
    mean: Tensor,
    var: Tensor,
}

/// The mean and biased variance of each `len`-long row of `data` (row-major), accumulated in f64,
/// two-pass; rows are spread over all cores for large inputs.
fn row_moments<F: Float>(data: &[F], len: usize) -> Vec<(F, F)> {
    let moments = |row: &[F]| {
        let n = len as f64;
        let mean = row.iter().map(|&v| Element::to_f64(v)).sum::<f64>() / n;
        let var = row
            .iter()
            .map(|&v| (Element::to_f64(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        (F::c(mean), F::c(var))
    };
    if crate::parallel::worth_splitting(data.len(), PAR_THRESHOLD) {
        let rows = data.len() / len.max(1);
        crate::parallel::map_collect(rows, true, |r| moments(&data[r * len..(r + 1) * len]))
    } else {
        data.chunks(len).map(moments).collect()
    }
}

/// `f(a, b, c)` elementwise with `b` and `c` broadcast to `a`'s shape, on all cores when large.
fn zip3<F: Float>(
    a: &ArrayViewD<F>,
    b: &ArrayViewD<F>,
    c: &ArrayViewD<F>,
    f: impl Fn(F, F, F) -> F + Sync + Send,
) -> ArrayD<F> {
    if !crate::parallel::worth_splitting(a.len(), PAR_THRESHOLD) {
        return Zip::from(a)
            .and_broadcast(b)
            .and_broadcast(c)
            .map_collect(|&x, &y, &w| f(x, y, w));
    }
    let (bv, cv) = (
        b.broadcast(a.raw_dim()).expect("norm operands broadcast"),
        c.broadcast(a.raw_dim()).expect("norm operands broadcast"),
    );
    crate::parallel::build_in_blocks(a.shape(), |o, ax, start| {
        let n = o.len_of(ax);
        let block = |v| crate::parallel::block_of(v, ax, start, n);
        Zip::from(o)
            .and(&block(a))
            .and(&block(&bv))
            .and(&block(&cv))
            .for_each(|o, &x, &y, &w| {
                o.write(f(x, y, w));
            })
    })
}

/// `a` with shape `shape`: `a` itself when it already has it (any layout), else a row-major
/// reshape (a view when possible).
fn reshaped<'a, F: Float>(
    a: ArrayViewD<'a, F>,
    shape: &[usize],
) -> ndarray::CowArray<'a, F, IxDyn> {
    if a.shape() == shape {
        return ndarray::CowArray::from(a);
    }
    let std = if a.is_standard_layout() {
        ndarray::CowArray::from(a)
    } else {
        ndarray::CowArray::from(a.as_standard_layout().into_owned())
    };
    std.into_shape_with_order(IxDyn(shape))
        .expect("sizes match")
}

/// The typed storage of `d`, whose dtype was checked to be `F`'s.
fn typed<F: Float>(d: &Data) -> &Storage<F> {
    <F as Element>::unwrap(d).expect("dtypes were checked")
}

impl Norm {
    /// `group_shape` with size 1 in the reduced dims.
    fn kept_shape(&self) -> Vec<usize> {
        let mut k = self.group_shape.clone();
        for &d in &self.dims {
            k[d] = 1;
        }
        k
    }

    /// The output, the mean and the reciprocal standard deviation `1 / sqrt(var + eps)` (both in
    /// the kept shape), and the biased variance, from `x`'s data; `fixed` gives the mean and
    /// variance instead of computing them.
    fn kernel<F: Float>(
        &self,
        x: &Storage<F>,
        weight: Option<&Storage<F>>,
        bias: Option<&Storage<F>>,
        fixed: Option<(&Storage<F>, &Storage<F>)>,
    ) -> [Storage<F>; 4] {
        let kept = IxDyn(&self.kept_shape());
        let xg = reshaped(x.view(), &self.group_shape);
        let (mean, var) = match fixed {
            Some((m, v)) => (
                reshaped(m.view(), kept.slice()).to_owned(),
                reshaped(v.view(), kept.slice()).to_owned(),
            ),
            None => {
                // move the reduced dims last, so that each group is one contiguous row
                let order: Vec<usize> = (0..xg.ndim())
                    .filter(|d| !self.dims.contains(d))
                    .chain(self.dims.iter().copied())
                    .collect();
                let lanes = xg.view().permuted_axes(IxDyn(&order));
                let lanes = lanes.as_standard_layout();
                let len: usize = self.dims.iter().map(|&d| xg.shape()[d]).product();
                let m = row_moments(lanes.as_slice().expect("standard layout"), len.max(1));
                let split = |f: fn(&(F, F)) -> F| {
                    ArrayD::from_shape_vec(kept.clone(), m.iter().map(f).collect())
                        .expect("one group per kept position")
                };
                (split(|p| p.0), split(|p| p.1))
            }
        };
        let eps = F::c(self.eps);
        let rstd = var.mapv(|v| F::one() / (v + eps).sqrt());
        let xhat = zip3(&xg.view(), &mean.view(), &rstd.view(), |x, m, r| {
            (x - m) * r
        });
        let xhat = if self.group_shape == self.shape {
            xhat
        } else {
            reshaped(xhat.view(), &self.shape).into_owned()
        };
        let out = if weight.is_none() && bias.is_none() {
            xhat
        } else {
            let one = ArrayD::from_elem(IxDyn(&[]), F::one());
            let zero = ArrayD::from_elem(IxDyn(&[]), F::zero());
            let w = weight.map_or(one.view(), |w| w.view());
            let b = bias.map_or(zero.view(), |b| b.view());
            let (w, b) = (
                reshaped(
                    w,
                    if weight.is_some() {
                        &self.affine_shape
                    } else {
                        &[]
                    },
                ),
                reshaped(
                    b,
                    if bias.is_some() {
                        &self.affine_shape
                    } else {
                        &[]
                    },
                ),
            );
            zip3(&xhat.view(), &w.view(), &b.view(), |x, w, b| x * w + b)
        };
        [
            out.into_shared(),
            mean.into_shared(),
            rstd.into_shared(),
            var.into_shared(),
        ]
    }

    /// Normalises `x`, recording one tape entry with inputs `[x, weight?, bias?]` followed by
    /// the given `running` statistics (batch_norm's `running_mean?, running_var?`), and the
    /// attributes `head`, `eps`, `has_weight`, `has_bias` and a `has_` flag per running statistic
    /// (the schema's order).
    #[track_caller]
    fn apply(
        self,
        x: &Tensor,
        (weight, bias): (Option<&Tensor>, Option<&Tensor>),
        fixed: Option<(&Tensor, &Tensor)>,
        head: Vec<(&'static str, Attr)>,
        running: &[(&'static str, Option<&Tensor>)],
    ) -> (Tensor, Moments) {
        let name = self.name;
        for t in weight.iter().chain(bias.iter()) {
            same_dtype_or_panic(name, x, t);
        }
        let mut inputs = vec![x];
        inputs.extend(weight);
        inputs.extend(bias);
        inputs.extend(running.iter().filter_map(|(_, t)| *t));
        let mut op = Op::new(name, &inputs);
        if op.recording() {
            for (k, v) in head {
                op = op.attr(k, v);
            }
            op = op
                .attr("eps", Attr::Float(self.eps))
                .attr("has_weight", Attr::Bool(weight.is_some()))
                .attr("has_bias", Attr::Bool(bias.is_some()));
            for (flag, t) in running {
                op = op.attr(flag, Attr::Bool(t.is_some()));
            }
        }
        let (wd, bd) = (weight.map(Tensor::data), bias.map(Tensor::data));
        let fd = fixed.map(|(m, v)| (m.data(), v.data()));
        let [out, mean, rstd, var] = x.with_data(|d| {
            crate::with_float!(d, name, |a: F| {
                let fixed = fd.as_ref().map(|(m, v)| (typed::<F>(m), typed::<F>(v)));
                self.kernel(
                    a,
                    wd.as_ref().map(typed::<F>),
                    bd.as_ref().map(typed::<F>),
                    fixed,
                )
                .map(Data::from)
            })
        });
        let (mean, rstd, var) = (
            Tensor::from_data(mean),
            Tensor::from_data(rstd),
            Tensor::from_data(var),
        );
        let stats = if fixed.is_some() {
            Stats::Fixed
        } else {
            Stats::Batch
        };
        let (has_w, has_b) = (weight.is_some(), bias.is_some());
        let w_shape = IxDyn(weight.or(bias).map_or(&[][..], |t| t.shape()));
        let mut op = op.save(x);
        if let Some(w) = weight {
            op = op.save(w);
        }
        let op = op.save(&mean).save(&rstd);
        let out = op.finish(out, move |ctx, g| {
            self.backward(ctx, g, stats, has_w, has_b, &w_shape)
        });
        (out, Moments { mean, var })
    }

    /// The gradients of `[x, weight?, bias?]`, with x̂ = (x - mean) · rstd over each group and
    /// `g_w = g · weight` (or `g` without weight):
    ///
    /// - batch statistics: `dx = rstd · (g_w - mean(g_w) - x̂ · mean(g_w · x̂))`, means over the
    ///   group (the derivative through the mean and the variance);
    /// - fixed statistics: `dx = g_w · rstd`;
    /// - `dweight = Σ g · x̂`, `dbias = Σ g`, summed over everything but the affine dims.
    ///
    /// Under `create_graph` the statistics are recomputed from `x` with tensor ops, so the
    /// gradient is differentiable in `x` too; otherwise the saved ones are used.
    fn backward(
        &self,
        ctx: &crate::autograd::tape::Ctx,
        g: &Tensor,
        stats: Stats,
        has_w: bool,
        has_b: bool,
        w_shape: &IxDyn,
    ) -> Vec<Option<Tensor>> {
        if stats == Stats::Batch && !ctx.create_graph() && self.name == "layer_norm" {
            if let Some(grads) = self.layer_norm_backward(ctx, g, has_w, has_b, w_shape) {
                return grads;
            }
        }
        let x = ctx.saved(0);
        let k = 1 + has_w as usize;
        let xg = x.reshape(&self.group_shape);
        let (mean, rstd) = if stats == Stats::Batch && ctx.create_graph() {
            let var = xg.var_dim(&self.dims, false, true);
            (xg.mean_dim(&self.dims, true), (var + self.eps).rsqrt())
        } else {
            (ctx.saved(k), ctx.saved(k + 1))
        };
        let xhat = (&xg - &mean) * &rstd;
        let dx = ctx.needs_grad(0).then(|| {
            let gw = if has_w {
                g * ctx.saved(1).reshape(&self.affine_shape)
            } else {
                g.clone()
            };
            let gw = gw.reshape(&self.group_shape);
            let dx = match stats {
                Stats::Batch => {
                    let d = &self.dims;
                    &rstd * (&gw - gw.mean_dim(d, true) - &xhat * (&gw * &xhat).mean_dim(d, true))
                }
                Stats::Fixed => gw * &rstd,
            };
            dx.reshape(&self.shape)
        });
        let mut grads = vec![dx];
        if has_w {
            grads.push(ctx.needs_grad(1).then(|| {
                (g * xhat.reshape(&self.shape))
                    .sum_to(&self.affine_shape)
                    .reshape(w_shape.slice())
            }));
        }
        if has_b {
            grads.push(
                ctx.needs_grad(k)
                    .then(|| g.sum_to(&self.affine_shape).reshape(w_shape.slice())),
            );
        }
        grads
    }
}

impl Norm {
    /// The first-order backward of layer_norm in one pass over the rows (each group is one
    /// contiguous row of the affine size), with the formulas of [`Norm::backward`]; `None` when
    /// the input or the gradient is not contiguous (the tensor-op path handles those).
    fn layer_norm_backward(
        &self,
        ctx: &crate::autograd::tape::Ctx,
        g: &Tensor,
        has_w: bool,
        has_b: bool,
        w_shape: &IxDyn,
    ) -> Option<Vec<Option<Tensor>>> {
        let k = 1 + has_w as usize;
        let (x, mean, rstd) = (ctx.saved(0), ctx.saved(k), ctx.saved(k + 1));
        let w = has_w.then(|| ctx.saved(1));
        let n: usize = self.affine_shape.iter().product();
        if n == 0 {
            return None;
        }
        let (xd, gd, md, rd) = (x.data(), g.data(), mean.data(), rstd.data());
        let wd = w.as_ref().map(Tensor::data);
        let [dx, dw, db] = crate::with_float!(&xd, self.name, |xa: F| {
            let rows = RowGrads {
                x: xa.as_slice()?,
                g: typed::<F>(&gd).as_slice()?,
                w: match &wd {
                    Some(w) => Some(typed::<F>(w).as_slice()?),
                    None => None,
                },
                mean: typed::<F>(&md).as_slice()?,
                rstd: typed::<F>(&rd).as_slice()?,
                n,
            };
            let [dx, dw, db] = rows.run();
            let shaped = |v: Vec<F>, shape: &[usize]| {
                let a = ArrayD::from_shape_vec(IxDyn(shape), v).expect("one value per element");
                Tensor::from_data(Data::from(a.into_shared()))
            };
            // weight and bias (when present) have the normalized shape
            let affine = if has_w || has_b {
                w_shape.slice()
            } else {
                &[n][..]
            };
            [
                shaped(dx, &self.shape),
                shaped(dw, affine),
                shaped(db, affine),
            ]
        });
        let mut grads = vec![ctx.needs_grad(0).then_some(dx)];
        if has_w {
            grads.push(ctx.needs_grad(1).then_some(dw));
        }
        if has_b {
            grads.push(ctx.needs_grad(k).then_some(db));
        }
        Some(grads)
    }
}

/// The slices of a row-wise (layer_norm) backward: input, upstream gradient, weight, and the
/// saved per-row mean and `1/std`, rows of length `n`.
struct RowGrads<'a, F> {
    x: &'a [F],
    g: &'a [F],
    w: Option<&'a [F]>,
    mean: &'a [F],
    rstd: &'a [F],
    n: usize,
}

impl<F: Float> RowGrads<'_, F> {
    /// `[dx, dweight, dbias]`: per row, with `x̂ = (x - mean) · rstd` and `g_w = g · weight`,
    /// `dx = rstd · (g_w - mean(g_w) - x̂ · mean(g_w · x̂))`; `dweight = Σ_rows g · x̂`,
    /// `dbias = Σ_rows g`.
    fn run(&self) -> [Vec<F>; 3] {
        let n = self.n;
        let mut dx = vec![F::zero(); self.x.len()];
        let mut dw = vec![F::zero(); n];
        let mut db = vec![F::zero(); n];
        let mut gw = vec![F::zero(); n];
        let mut xhat = vec![F::zero(); n];
        let inv_n = F::one() / F::c(n as f64);
        for (r, (xr, gr)) in self
            .x
            .chunks_exact(n)
            .zip(self.g.chunks_exact(n))
            .enumerate()
        {
            let (m, rs) = (self.mean[r], self.rstd[r]);
            let (mut s1, mut s2) = (F::zero(), F::zero());
            for j in 0..n {
                let xh = (xr[j] - m) * rs;
                let gj = gr[j];
                let gwj = match self.w {
                    Some(w) => gj * w[j],
                    None => gj,
                };
                xhat[j] = xh;
                gw[j] = gwj;
                s1 += gwj;
                s2 += gwj * xh;
                dw[j] += gj * xh;
                db[j] += gj;
            }
            let (s1, s2) = (s1 * inv_n, s2 * inv_n);
            for (j, d) in dx[r * n..(r + 1) * n].iter_mut().enumerate() {
                *d = rs * (gw[j] - s1 - xhat[j] * s2);
            }
        }
        [dx, dw, db]
    }
}

/// Panics unless `t` (named `what`) is absent or has shape `want`.
fn check_shape(op: &str, what: &str, t: Option<&Tensor>, want: &[usize], loc: &Location) {
    if let Some(t) = t {
        if t.shape() != want {
            panic!(
                "{op}: {what} of shape {:?} does not match the expected shape {want:?}, at {loc}",
                t.shape()
            );
        }
    }
}

/// The per-channel affine view `[1, C, 1, …]` for an `[N, C, …]` input.
fn channel_shape(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    s[1] = shape[1];
    s
}

/// Panics unless the input is at least `[N, C]`.
fn check_channels(op: &str, x: &Tensor, loc: &Location) {
    if x.ndim() < 2 {
        panic!(
            "{op}: expected an input of shape [N, C, ...] (at least 2 dims), got shape {:?}, at \
             {loc}",
            x.shape()
        );
    }
}

/// Layer normalisation over the trailing `normalized_shape` dims, like
/// `torch.nn.functional.layer_norm(input, normalized_shape, weight, bias, eps)`: each sample is
/// shifted and scaled to mean 0 and (biased) variance 1 over those dims, then multiplied by
/// `weight` and shifted by `bias` (both of shape `normalized_shape`) when given.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional as F;
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 2.0, 2.0, 2.0, 6.0], &[2, 4]);
/// let y = F::layer_norm(&x, &[4], None, None, 1e-5);
/// // each row now has mean 0 and variance 1
/// let row0 = y.narrow(0, 0, 1);
/// assert!(row0.mean().item().abs() < 1e-6);
/// assert!((row0.var(false).item() - 1.0).abs() < 1e-4);
/// ```
///
/// # Panics
/// If `normalized_shape` is empty or is not the input's trailing shape, if `weight` or `bias` do
/// not have shape `normalized_shape` or the input's dtype, or if the input is not floating point.
#[track_caller]
pub fn layer_norm(
    input: &Tensor,
    normalized_shape: &[usize],
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Tensor {
    let loc = Location::caller();
    let shape = input.shape();
    let k = normalized_shape.len();
    if k == 0 || k > shape.len() || shape[shape.len() - k..] != *normalized_shape {
        panic!(
            "layer_norm: normalized_shape {normalized_shape:?} must be the trailing dims of the \
             input, of shape {shape:?}, at {loc}"
        );
    }
    check_shape("layer_norm", "weight", weight, normalized_shape, loc);
    check_shape("layer_norm", "bias", bias, normalized_shape, loc);
    let norm = Norm {
        name: "layer_norm",
        shape: shape.to_vec(),
        group_shape: shape.to_vec(),
        dims: (shape.len() - k..shape.len()).collect(),
        affine_shape: normalized_shape.to_vec(),
        eps,
    };
    let head = vec![("normalized_shape", Attr::usizes(normalized_shape))];
    norm.apply(input, (weight, bias), None, head, &[]).0
}

/// Batch normalisation of an `[N, C, ...]` input per channel, like
/// `torch.nn.functional.batch_norm(input, running_mean, running_var, weight, bias, training,
/// momentum, eps)`.
///
/// In training mode each channel is normalised with the mean and biased variance of its values
/// over the batch and spatial dims, and the running statistics, when given, are updated in place
/// (without recording): `running = (1 - momentum) · running + momentum · batch_stat`, using the
/// *unbiased* batch variance for `running_var`, as PyTorch does. In eval mode the running
/// statistics are used instead (and the gradient treats them as constants). `weight` and `bias`
/// are `[C]`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional as F;
/// // one channel, values 1 and 3: batch mean 2, biased variance 1, unbiased variance 2
/// let x = Tensor::from_vec(vec![1.0, 3.0], &[2, 1]);
/// let (rm, rv) = (Tensor::zeros(&[1]), Tensor::ones(&[1]));
/// let y = F::batch_norm(&x, Some(&rm), Some(&rv), None, None, true, 0.1, 0.0);
/// assert_eq!(y.to_vec::<f32>(), vec![-1.0, 1.0]);
/// assert_eq!(rm.to_vec::<f32>(), vec![0.2]); // 0.9 · 0 + 0.1 · 2
/// assert_eq!(rv.to_vec::<f32>(), vec![1.1]); // 0.9 · 1 + 0.1 · 2
/// ```
///
/// # Panics
/// If the input has fewer than 2 dims; if `running_mean`, `running_var`, `weight` or `bias` are
/// not `[C]` (or differ in dtype from the input); in eval mode, if the running statistics are
/// missing; in training mode, if there is only one value per channel.
#[allow(clippy::too_many_arguments)]
#[track_caller]
pub fn batch_norm(
    input: &Tensor,
    running_mean: Option<&Tensor>,
    running_var: Option<&Tensor>,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Tensor {
    let loc = Location::caller();
    check_channels("batch_norm", input, loc);
    let shape = input.shape();
    let c = shape[1];
    for (what, t) in [
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ] {
        check_shape("batch_norm", what, t, &[c], loc);
    }
    for t in running_mean.iter().chain(running_var.iter()) {
        same_dtype_or_panic("batch_norm", input, t);
    }
    let n_per_channel = input.numel() / c.max(1);
    let norm = Norm {
        name: "batch_norm",
        shape: shape.to_vec(),
        group_shape: shape.to_vec(),
        dims: (0..shape.len()).filter(|&d| d != 1).collect(),
        affine_shape: channel_shape(shape),
        eps,
    };
    let head = vec![
        ("training", Attr::Bool(training)),
        ("momentum", Attr::Float(momentum)),
    ];
    let running = [
        ("has_running_mean", running_mean),
        ("has_running_var", running_var),
    ];
    if !training {
        let (Some(rm), Some(rv)) = (running_mean, running_var) else {
            panic!(
                "batch_norm: running_mean and running_var must be given in eval mode \
                 (training = false), at {loc}"
            );
        };
        return norm
            .apply(input, (weight, bias), Some((rm, rv)), head, &running)
            .0;
    }
    if n_per_channel <= 1 {
        panic!(
            "batch_norm: expected more than 1 value per channel when training, got input of \
             shape {shape:?}, at {loc}"
        );
    }
    let (out, moments) = norm.apply(input, (weight, bias), None, head, &running);
    let _off = crate::autograd::no_grad();
    if let Some(rm) = running_mean {
        rm.mul_scalar_(1.0 - momentum)
            .add_scaled_(&moments.mean.reshape([c]), momentum);
    }
    if let Some(rv) = running_var {
        // Bessel's correction: the running variance estimates the population variance
        let unbiased =
            moments.var.reshape([c]) * (n_per_channel as f64 / (n_per_channel - 1) as f64);
        rv.mul_scalar_(1.0 - momentum)
            .add_scaled_(&unbiased, momentum);
    }
    out
}

/// Group normalisation of an `[N, C, ...]` input, like
/// `torch.nn.functional.group_norm(input, num_groups, weight, bias, eps)`: the channels of each
/// sample are split into `num_groups` blocks of `C / num_groups`, and each block (with its spatial
/// dims) is normalised to mean 0 and biased variance 1; then the per-channel `weight` and `bias`
/// (`[C]`) apply. `num_groups = 1` normalises each sample like layer_norm over `[C, ...]`;
/// `num_groups = C` is instance normalisation.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional as F;
/// let x = Tensor::randn(&[2, 4, 3]);
/// let y = F::group_norm(&x, 2, None, None, 1e-5);
/// // sample 0, channels 0 and 1, form one group
/// let group = y.narrow(0, 0, 1).narrow(1, 0, 2);
/// assert!(group.mean().item().abs() < 1e-5);
/// ```
///
/// # Panics
/// If the input has fewer than 2 dims, `num_groups` is 0 or does not divide the number of
/// channels, `weight` or `bias` are not `[C]` (or differ in dtype), or the input is not floating
/// point.
#[track_caller]
pub fn group_norm(
    input: &Tensor,
    num_groups: usize,
    weight: Option<&Tensor>,
    bias: Option<&Tensor>,
    eps: f64,
) -> Tensor {
    let loc = Location::caller();
    check_channels("group_norm", input, loc);
    let shape = input.shape();
    let (n, c) = (shape[0], shape[1]);
    if num_groups == 0 || c % num_groups != 0 {
        panic!(
            "group_norm: expected the number of channels ({c}) to be divisible by num_groups \
             ({num_groups}), input of shape {shape:?}, at {loc}"
        );
    }
    check_shape("group_norm", "weight", weight, &[c], loc);
    check_shape("group_norm", "bias", bias, &[c], loc);
    let per_group = input.numel() / (n * num_groups).max(1);
    let norm = Norm {
        name: "group_norm",
        shape: shape.to_vec(),
        group_shape: vec![n, num_groups, per_group],
        dims: vec![2],
        affine_shape: channel_shape(shape),
        eps,
    };
    let head = vec![("num_groups", Attr::Int(num_groups as i64))];
    norm.apply(input, (weight, bias), None, head, &[]).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::functional::dropout::grad_of;
    use crate::prelude::*;
    use crate::testing::{randn64, randn64_t};

    fn t(v: Vec<f64>, shape: &[usize]) -> Tensor {
        Tensor::from_vec_f64(v, shape)
    }

    /// `(x - mean) / sqrt(var + eps)` over `dims` with tensor ops: the reference the fused kernel
    /// must match.
    fn reference(x: &Tensor, dims: &[usize], eps: f64) -> Tensor {
        let dims = dims.to_vec();
        (x - x.mean_dim(&dims, true)) / (x.var_dim(&dims, false, true) + eps).sqrt()
    }

    fn assert_close(a: &Tensor, b: &Tensor) {
        a.assert_close(b, 1e-10, 1e-10);
    }

    /// batch_norm in training mode without affine parameters.
    #[track_caller]
    fn train_bn(x: &Tensor, rm: Option<&Tensor>, rv: Option<&Tensor>) -> Tensor {
        batch_norm(x, rm, rv, None, None, true, 0.1, 1e-5)
    }

    #[test]
    fn layer_norm_with_and_without_affine_matches_the_formula() {
        let x = randn64(&[3, 2, 4], 1);
        let (w, b) = (randn64(&[2, 4], 2), randn64(&[2, 4], 3));
        let plain = layer_norm(&x, &[2, 4], None, None, 1e-5);
        assert_close(&plain, &reference(&x, &[1, 2], 1e-5));
        let affine = layer_norm(&x, &[2, 4], Some(&w), Some(&b), 1e-5);
        assert_close(&affine, &(&plain * &w + &b));
        // weight only, and bias only
        assert_close(
            &layer_norm(&x, &[4], Some(&w.narrow(0, 0, 1).flatten_all()), None, 0.1),
            &(reference(&x, &[2], 0.1) * w.narrow(0, 0, 1).flatten_all()),
        );
        assert_close(
            &layer_norm(&x, &[4], None, Some(&b.narrow(0, 1, 1).flatten_all()), 0.1),
            &(reference(&x, &[2], 0.1) + b.narrow(0, 1, 1).flatten_all()),
        );
    }

    #[test]
    fn layer_norm_hand_computed_values() {
        // x = [1, 3]: mean 2, biased var 1 ⇒ x̂ = [-1, 1] / sqrt(1 + eps)
        let y = layer_norm(&t(vec![1.0, 3.0], &[1, 2]), &[2], None, None, 0.0);
        assert_eq!(y.to_vec::<f64>(), vec![-1.0, 1.0]);
        let y = layer_norm(&t(vec![1.0, 3.0], &[2]), &[2], None, None, 3.0);
        assert_eq!(y.to_vec::<f64>(), vec![-0.5, 0.5]);
    }

    #[test]
    fn layer_norm_gradcheck() {
        let w = randn64(&[3, 4], 4);
        let b = randn64(&[3, 4], 5);
        for x in [randn64(&[2, 3, 4], 1), randn64_t(&[2, 3, 4], 2)] {
            gradcheck(
                |x| layer_norm(&x[0], &[4], None, None, 1e-5),
                std::slice::from_ref(&x),
            )
            .unwrap();
            gradcheck(
                |x| layer_norm(&x[0], &[3, 4], Some(&x[1]), Some(&x[2]), 1e-5),
                &[x.clone(), w.clone(), b.clone()],
            )
            .unwrap();
            // bias only
            gradcheck(
                |x| layer_norm(&x[0], &[4], None, Some(&x[1]), 1e-5),
                &[x.clone(), randn64(&[4], 7)],
            )
            .unwrap();
            // weight broadcast over the leading dims, on a transposed weight
            gradcheck(
                |x| layer_norm(&x[0], &[3, 4], Some(&x[1]), None, 1e-5),
                &[x.clone(), randn64_t(&[3, 4], 6)],
            )
            .unwrap();
        }
    }

    #[test]
    fn norms_are_differentiable_twice() {
        let w = randn64(&[4], 7);
        gradcheck(
            |x| {
                grad_of(&x[0], |x| {
                    layer_norm(x, &[4], Some(&w), None, 1e-5).powf(3.0).sum()
                })
            },
            &[randn64(&[2, 4], 8)],
        )
        .unwrap();
        gradcheck(
            |x| {
                grad_of(&x[0], |x| {
                    group_norm(x, 2, Some(&w), None, 1e-5).powf(3.0).sum()
                })
            },
            &[randn64(&[2, 4, 2], 9)],
        )
        .unwrap();
        gradcheck(
            |x| {
                grad_of(&x[0], |x| {
                    batch_norm(x, None, None, Some(&w), None, true, 0.1, 1e-5)
                        .powf(3.0)
                        .sum()
                })
            },
            &[randn64(&[3, 4], 10)],
        )
        .unwrap();
        // and in the weight: d/dw of Σ (layer_norm · w)² is 2 Σ x̂² w, linear in w
        let x = randn64(&[2, 4], 11);
        gradcheck(
            |w| {
                grad_of(&w[0], |w| {
                    layer_norm(&x, &[4], Some(w), None, 1e-5).powf(2.0).sum()
                })
            },
            &[randn64(&[4], 12)],
        )
        .unwrap();
    }

    #[test]
    fn batch_norm_train_normalises_per_channel_and_updates_running_stats() {
        // channel 0 holds 1, 2, 3, 6 (N = 2, L = 2); channel 1 holds 0, 0, 4, 4
        let x = t(vec![1.0, 2.0, 0.0, 0.0, 3.0, 6.0, 4.0, 4.0], &[2, 2, 2]);
        let rm = t(vec![1.0, -1.0], &[2]);
        let rv = t(vec![2.0, 0.5], &[2]);
        let y = batch_norm(&x, Some(&rm), Some(&rv), None, None, true, 0.25, 0.0);
        // channel 0: mean 3, biased var (4 + 1 + 0 + 9) / 4 = 3.5, unbiased 14 / 3
        // channel 1: mean 2, biased var 4, unbiased 16 / 3
        let s0 = 3.5f64.sqrt();
        let want = [-2.0 / s0, -1.0 / s0, -1.0, -1.0, 0.0, 3.0 / s0, 1.0, 1.0];
        assert_close(&y, &t(want.to_vec(), &[2, 2, 2]));
        // running = 0.75 · running + 0.25 · batch
        assert_close(&rm, &t(vec![0.75 + 0.75, -0.75 + 0.5], &[2]));
        assert_close(
            &rv,
            &t(
                vec![1.5 + 0.25 * 14.0 / 3.0, 0.375 + 0.25 * 16.0 / 3.0],
                &[2],
            ),
        );
    }

    #[test]
    fn batch_norm_eval_uses_running_stats() {
        let x = randn64(&[3, 2, 2], 1);
        let (rm, rv) = (t(vec![0.5, -1.0], &[2]), t(vec![4.0, 0.25], &[2]));
        let (w, b) = (t(vec![2.0, 3.0], &[2]), t(vec![0.1, 0.2], &[2]));
        let y = batch_norm(
            &x,
            Some(&rm),
            Some(&rv),
            Some(&w),
            Some(&b),
            false,
            0.1,
            0.0,
        );
        // y = (x - rm) / sqrt(rv) · w + b, per channel; running stats unchanged
        let c = |v: &Tensor| v.reshape([1, 2, 1]);
        let want = (&x - c(&rm)) / c(&rv).sqrt() * c(&w) + c(&b);
        assert_close(&y, &want);
        assert_eq!(rm.to_vec::<f64>(), vec![0.5, -1.0]);
        assert_eq!(rv.to_vec::<f64>(), vec![4.0, 0.25]);
    }

    #[test]
    fn batch_norm_gradcheck_train_and_eval() {
        let (w, b) = (randn64(&[3], 4), randn64(&[3], 5));
        let (rm, rv) = (randn64(&[3], 6), randn64(&[3], 7).abs() + 0.5);
        for x in [
            randn64(&[4, 3, 2], 1),
            randn64_t(&[4, 3, 2], 2),
            randn64_t(&[5, 3], 3),
        ] {
            let xs = [x.clone(), w.clone(), b.clone()];
            gradcheck(
                |x| batch_norm(&x[0], None, None, Some(&x[1]), Some(&x[2]), true, 0.1, 1e-5),
                &xs,
            )
            .unwrap();
            gradcheck(
                |x| {
                    batch_norm(
                        &x[0],
                        Some(&rm),
                        Some(&rv),
                        Some(&x[1]),
                        Some(&x[2]),
                        false,
                        0.1,
                        1e-5,
                    )
                },
                &xs,
            )
            .unwrap();
            gradcheck(
                |x| batch_norm(&x[0], None, None, None, None, true, 0.1, 1e-5),
                &xs[..1],
            )
            .unwrap();
        }
    }

    #[test]
    fn group_norm_with_one_two_and_c_groups() {
        let x = randn64(&[2, 4, 3], 1);
        let (w, b) = (randn64(&[4], 2), randn64(&[4], 3));
        let c = |v: &Tensor| v.reshape([1, 4, 1]);
        // groups = 1: each sample over [C, L], like layer_norm over [4, 3]
        assert_close(
            &group_norm(&x, 1, Some(&w), Some(&b), 1e-5),
            &(reference(&x, &[1, 2], 1e-5) * c(&w) + c(&b)),
        );
        // groups = 2: channels {0, 1} and {2, 3} of each sample
        let by_group = reference(&x.reshape([2, 2, 6]), &[2], 1e-5).reshape([2, 4, 3]);
        assert_close(&group_norm(&x, 2, None, None, 1e-5), &by_group);
        // groups = C: each channel of each sample alone (instance norm)
        assert_close(
            &group_norm(&x, 4, None, None, 1e-5),
            &reference(&x, &[2], 1e-5),
        );
    }

    #[test]
    fn group_norm_gradcheck() {
        let (w, b) = (randn64(&[4], 4), randn64(&[4], 5));
        for x in [randn64(&[2, 4, 3], 1), randn64_t(&[2, 4, 3], 2)] {
            for groups in [1, 2, 4] {
                gradcheck(
                    |x| group_norm(&x[0], groups, Some(&x[1]), Some(&x[2]), 1e-5),
                    &[x.clone(), w.clone(), b.clone()],
                )
                .unwrap();
            }
            gradcheck(
                |x| group_norm(&x[0], 2, None, None, 1e-5),
                std::slice::from_ref(&x),
            )
            .unwrap();
        }
    }

    #[test]
    fn large_inputs_match_the_reference() {
        // above the parallel threshold statistics and normalisation run on all cores
        let x = randn64(&[64, 16, 40], 1);
        assert_close(
            &layer_norm(&x, &[40], None, None, 1e-5),
            &reference(&x, &[2], 1e-5),
        );
        assert_close(
            &batch_norm(&x, None, None, None, None, true, 0.1, 1e-5),
            &reference(&x, &[0, 2], 1e-5),
        );
        assert_close(
            &group_norm(&x, 4, None, None, 1e-5),
            &reference(&x.reshape([64, 4, 160]), &[2], 1e-5).reshape([64, 16, 40]),
        );
    }

    #[test]
    fn one_tape_entry_per_norm() {
        let x = Tensor::randn(&[2, 4, 3]).requires_grad();
        let w = Tensor::ones(&[4]).requires_grad();
        let before = crate::autograd::tape::len();
        let y = group_norm(&x, 2, Some(&w), None, 1e-5);
        assert_eq!(crate::autograd::tape::len(), before + 1);
        assert_eq!(y.grad_fn(), Some("group_norm"));
    }

    #[test]
    #[should_panic(
        expected = "layer_norm: normalized_shape [3] must be the trailing dims of the input, of \
                    shape [2, 4], at src/nn/functional/norm.rs"
    )]
    fn layer_norm_shape_mismatch_is_an_error() {
        let _ = layer_norm(&Tensor::zeros(&[2, 4]), &[3], None, None, 1e-5);
    }

    #[test]
    #[should_panic(
        expected = "layer_norm: weight of shape [3] does not match the expected shape [4]"
    )]
    fn layer_norm_weight_shape_is_checked() {
        let _ = layer_norm(
            &Tensor::zeros(&[2, 4]),
            &[4],
            Some(&Tensor::ones(&[3])),
            None,
            1e-5,
        );
    }

    #[test]
    #[should_panic(
        expected = "batch_norm: running_mean and running_var must be given in eval mode"
    )]
    fn batch_norm_eval_needs_running_stats() {
        let _ = batch_norm(
            &Tensor::zeros(&[2, 3]),
            None,
            None,
            None,
            None,
            false,
            0.1,
            1e-5,
        );
    }

    #[test]
    #[should_panic(
        expected = "batch_norm: expected more than 1 value per channel when training, \
                               got input of shape [1, 3]"
    )]
    fn batch_norm_train_needs_two_values_per_channel() {
        let _ = train_bn(&Tensor::zeros(&[1, 3]), None, None);
    }

    #[test]
    #[should_panic(
        expected = "batch_norm: running_var of shape [2] does not match the expected shape [3]"
    )]
    fn batch_norm_running_stat_shapes_are_checked() {
        let rm = Tensor::zeros(&[3]);
        let rv = Tensor::ones(&[2]);
        let _ = train_bn(&Tensor::zeros(&[2, 3]), Some(&rm), Some(&rv));
    }

    #[test]
    #[should_panic(
        expected = "batch_norm: expected an input of shape [N, C, ...] (at least 2 dims), got shape [3]"
    )]
    fn batch_norm_needs_channels() {
        let _ = train_bn(&Tensor::zeros(&[3]), None, None);
    }

    #[test]
    #[should_panic(
        expected = "group_norm: expected the number of channels (6) to be divisible by num_groups (4)"
    )]
    fn group_norm_groups_must_divide_channels() {
        let _ = group_norm(&Tensor::zeros(&[2, 6, 3]), 4, None, None, 1e-5);
    }

    #[test]
    #[should_panic(
        expected = "layer_norm: expected both tensors to have the same dtype, got float64 and float32"
    )]
    fn affine_dtype_must_match() {
        let _ = layer_norm(
            &randn64(&[2, 4], 1),
            &[4],
            Some(&Tensor::ones(&[4])),
            None,
            1e-5,
        );
    }
}
