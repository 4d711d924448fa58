//! Loss functions, like those of `torch.nn.functional`: regression losses (`mse_loss`, `l1_loss`,
//! `smooth_l1_loss`, `huber_loss`), classification losses (`cross_entropy`, `nll_loss`,
//! `binary_cross_entropy`, `binary_cross_entropy_with_logits`) and `kl_div`.
//!
//! Every loss is composed of differentiable tensor ops (`log_softmax`, `gather`, `where_`, …), so
//! gradients of any order come from the ops' own backward rules. Two exceptions are recorded as
//! ops of their own, with backwards that are themselves differentiable: `binary_cross_entropy`,
//! so that its gradient at inputs of exactly 0 or 1 is PyTorch's finite
//! `(x - y) / max(x (1 - x), 1e-12)` rather than the `0 · ∞` a composed clamped log would give;
//! and `cross_entropy` of a `[N, C]` batch of class indices reduced to a scalar (the training
//! step's loss), fused into one pass: about 15 µs instead of 45 µs forward + backward on
//! `[64, 10]`.
//!
//! Semantics follow PyTorch 2.x, including the weighted mean of `cross_entropy` / `nll_loss`
//! (`Σ w_y l / Σ w_y` over the targets that are not `ignore_index`) and label smoothing with
//! weights. Input and target must have the same shape where PyTorch would merely warn and
//! broadcast (a mismatch there is nearly always a bug, such as `[N, 1]` against `[N]`).

use std::panic::Location;

use ndarray::{Array2, Ix2};

use crate::autograd::function::Op;
use crate::autograd::no_grad;
use crate::autograd::tape::Attr;
use crate::tensor::args::broadcast_shapes;
use crate::tensor::{DType, Data, Float, Tensor};

/// How a loss reduces its elementwise values, like PyTorch's `reduction=` string.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// No reduction: one loss per element (`'none'`).
    None,
    /// The mean (`'mean'`, the default); a weighted mean for losses with class weights.
    #[default]
    Mean,
    /// The sum (`'sum'`).
    Sum,
}

/// PyTorch's string for a reduction (`reduction='mean'`), as recorded on the tape.
fn reduction_name(r: Reduction) -> &'static str {
    match r {
        Reduction::None => "none",
        Reduction::Mean => "mean",
        Reduction::Sum => "sum",
    }
}

/// The reductions of [`kl_div`], PyTorch's `reduction=` for `F.kl_div`: those of [`Reduction`]
/// plus `'batchmean'`, the sum divided by the batch size (the mathematically correct KL
/// divergence; `Mean` divides by the number of elements).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KlDivReduction {
    /// One value per element (`'none'`).
    None,
    /// The mean over all elements (`'mean'`, PyTorch's default).
    #[default]
    Mean,
    /// The sum (`'sum'`).
    Sum,
    /// The sum divided by the size of the first dimension (`'batchmean'`).
    BatchMean,
}

impl From<Reduction> for KlDivReduction {
    fn from(r: Reduction) -> Self {
        match r {
            Reduction::None => KlDivReduction::None,
            Reduction::Mean => KlDivReduction::Mean,
            Reduction::Sum => KlDivReduction::Sum,
        }
    }
}

/// The options of [`cross_entropy`], named and defaulted as PyTorch's keyword arguments.
///
/// ```
/// use tapegrad::nn::functional::{CrossEntropyOpts, Reduction};
/// let opts = CrossEntropyOpts { label_smoothing: 0.1, ..Default::default() };
/// assert_eq!((opts.ignore_index, opts.reduction), (-100, Reduction::Mean));
/// ```
#[derive(Clone, Debug)]
pub struct CrossEntropyOpts {
    /// A rescaling weight for each class, `[C]` (default none: all 1).
    pub weight: Option<Tensor>,
    /// A class-index target value that contributes neither loss nor gradient (default -100).
    /// Only used with class-index targets.
    pub ignore_index: i64,
    /// The reduction (default [`Reduction::Mean`]).
    pub reduction: Reduction,
    /// In `[0, 1]`: the target becomes `(1 - ε) · target + ε / C` (default 0).
    pub label_smoothing: f64,
}

impl Default for CrossEntropyOpts {
    fn default() -> Self {
        CrossEntropyOpts {
            weight: None,
            ignore_index: -100,
            reduction: Reduction::Mean,
            label_smoothing: 0.0,
        }
    }
}

// ----- shared checks and reductions ------------------------------------------------------------

/// Panics unless `t` is floating point.
fn check_float(name: &str, what: &str, t: &Tensor, loc: &Location) {
    if !t.dtype().is_float() {
        panic!(
            "{name}: {what} must be floating point, got {} (shape {:?}), at {loc}",
            t.dtype(),
            t.shape()
        );
    }
}

/// Panics unless `input` and `target` are floats of one dtype and one shape.
fn check_pair(name: &str, input: &Tensor, target: &Tensor, loc: &Location) {
    check_float(name, "input", input, loc);
    check_float(name, "target", target, loc);
    if input.shape() != target.shape() {
        panic!(
            "{name}: target of shape {:?} does not match input of shape {:?}, at {loc}",
            target.shape(),
            input.shape()
        );
    }
    if input.dtype() != target.dtype() {
        panic!(
            "{name}: target is {} but input is {} (shape {:?}), at {loc}",
            target.dtype(),
            input.dtype(),
            input.shape()
        );
    }
}

/// Panics unless `w` has `input`'s dtype and broadcasts to the input's shape.
fn check_weight(name: &str, what: &str, w: &Tensor, input: &Tensor, loc: &Location) {
    if w.dtype() != input.dtype() {
        panic!(
            "{name}: {what} is {} but input is {} (shape {:?}), at {loc}",
            w.dtype(),
            input.dtype(),
            input.shape()
        );
    }
    if broadcast_shapes(w.shape(), input.shape()).as_deref() != Some(input.shape()) {
        panic!(
            "{name}: {what} of shape {:?} cannot be broadcast to the input's shape {:?}, at {loc}",
            w.shape(),
            input.shape()
        );
    }
}

/// The sum of `l` divided by `count`; NaN when `count` is 0, as in PyTorch (`0 · ∞`).
fn mean_over(l: &Tensor, count: usize) -> Tensor {
    l.sum() * (1.0 / count as f64)
}

/// Applies `reduction` to elementwise losses.
fn reduce(l: Tensor, reduction: Reduction) -> Tensor {
    match reduction {
        Reduction::None => l,
        Reduction::Sum => l.sum(),
        Reduction::Mean => mean_over(&l, l.numel()),
    }
}

/// `l`, multiplied by `weight` if there is one.
fn weighted(l: Tensor, weight: Option<&Tensor>) -> Tensor {
    match weight {
        Some(w) => l * w,
        None => l,
    }
}

/// The elementwise loss `f(input - target)` of a regression loss, reduced.
#[track_caller]
fn regression(
    name: &str,
    input: &Tensor,
    target: &Tensor,
    reduction: Reduction,
    f: impl FnOnce(Tensor) -> Tensor,
) -> Tensor {
    let loc = Location::caller();
    check_pair(name, input, target, loc);
    reduce(f(input - target), reduction)
}

// ----- regression losses -----------------------------------------------------------------------

/// Mean squared error `(x - y)²`, like `F.mse_loss(input, target, reduction=...)`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional::{mse_loss, Reduction};
/// let x = Tensor::from_vec(vec![1.0, 2.0], &[2]);
/// let y = Tensor::from_vec(vec![0.0, 4.0], &[2]);
/// assert_eq!(mse_loss(&x, &y, Reduction::Mean).item(), 2.5); // (1 + 4) / 2
/// ```
///
/// # Panics
/// If input and target differ in shape or dtype, or are not floating point.
#[track_caller]
pub fn mse_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    regression("mse_loss", input, target, reduction, |d| d.square())
}

/// Mean absolute error `|x - y|`, like `F.l1_loss(input, target, reduction=...)`.
///
/// # Panics
/// If input and target differ in shape or dtype, or are not floating point.
#[track_caller]
pub fn l1_loss(input: &Tensor, target: &Tensor, reduction: Reduction) -> Tensor {
    regression("l1_loss", input, target, reduction, |d| d.abs())
}

/// `0.5 d² / β` where `|d| < β`, `|d| - 0.5 β` elsewhere, with `d = x - y`, like
/// `F.smooth_l1_loss(input, target, reduction=..., beta=...)` (PyTorch's default `beta` is 1).
/// `beta = 0` gives [`l1_loss`].
///
/// # Panics
/// If `beta` is negative, or input and target differ in shape or dtype, or are not floating
/// point.
#[track_caller]
pub fn smooth_l1_loss(input: &Tensor, target: &Tensor, reduction: Reduction, beta: f64) -> Tensor {
    let loc = Location::caller();
    if beta.is_nan() || beta < 0.0 {
        panic!("smooth_l1_loss: beta must be non-negative, got {beta}, at {loc}");
    }
    regression("smooth_l1_loss", input, target, reduction, |d| {
        let a = d.abs();
        if beta == 0.0 {
            return a;
        }
        (d.square() * (0.5 / beta)).where_(&a.lt_scalar(beta), &(&a - 0.5 * beta))
    })
}

/// `0.5 d²` where `|d| < δ`, `δ (|d| - 0.5 δ)` elsewhere, with `d = x - y`, like
/// `F.huber_loss(input, target, reduction=..., delta=...)` (PyTorch's default `delta` is 1).
/// Equals `δ ·` [`smooth_l1_loss`] with `β = δ`.
///
/// # Panics
/// If `delta` is not positive, or input and target differ in shape or dtype, or are not
/// floating point.
#[track_caller]
pub fn huber_loss(input: &Tensor, target: &Tensor, reduction: Reduction, delta: f64) -> Tensor {
    let loc = Location::caller();
    if delta.is_nan() || delta <= 0.0 {
        panic!("huber_loss: delta must be positive, got {delta}, at {loc}");
    }
    regression("huber_loss", input, target, reduction, |d| {
        let a = d.abs();
        (d.square() * 0.5).where_(&a.lt_scalar(delta), &((&a - 0.5 * delta) * delta))
    })
}

// ----- classification with class indices -------------------------------------------------------

/// Class-index targets, checked and prepared for `gather`.
struct ClassTarget {
    /// The targets with `ignore_index` replaced by 0 (a valid index), int64, `[N, d1, …]`.
    safe: Tensor,
    /// True where the target is `ignore_index`; `None` when no target is.
    ignored: Option<Tensor>,
    /// The number of targets that are not ignored.
    count: usize,
}

/// Checks class-index targets against a batched input `[N, C, d1, …]`: int64, of shape
/// `[N, d1, …]`, each in `[0, C)` or equal to `ignore_index`.
fn class_target(
    name: &str,
    input: &Tensor,
    target: &Tensor,
    ignore_index: i64,
    loc: &Location,
) -> ClassTarget {
    let s = input.shape();
    let want: Vec<usize> = std::iter::once(s[0])
        .chain(s[2..].iter().copied())
        .collect();
    if target.shape() != want {
        panic!(
            "{name}: target of shape {:?} does not match input of shape {s:?} (expected a target \
             of shape {want:?}), at {loc}",
            target.shape()
        );
    }
    let c = s[1] as i64;
    let t = target.to_vec::<i64>();
    let mut any_ignored = false;
    for &v in &t {
        if v == ignore_index {
            any_ignored = true;
        } else if !(0..c).contains(&v) {
            panic!(
                "{name}: target index {v} is out of bounds for {c} classes (input shape {s:?}, \
                 target shape {:?}, ignore_index {ignore_index}), at {loc}",
                target.shape()
            );
        }
    }
    if !any_ignored {
        return ClassTarget {
            safe: target.clone(),
            ignored: None,
            count: t.len(),
        };
    }
    let ignored: Vec<bool> = t.iter().map(|&v| v == ignore_index).collect();
    let count = ignored.iter().filter(|&&i| !i).count();
    let safe = t
        .iter()
        .map(|&v| if v == ignore_index { 0 } else { v })
        .collect();
    ClassTarget {
        safe: Tensor::from_vec_i64(safe, target.shape()),
        ignored: Some(Tensor::from_values(ignored, target.shape())),
        count,
    }
}

/// Panics unless a class weight is a `[C]` tensor of `input`'s dtype.
fn check_class_weight(name: &str, w: &Tensor, input: &Tensor, loc: &Location) {
    let c = input.shape()[1];
    if w.shape() != [c] || w.dtype() != input.dtype() {
        panic!(
            "{name}: weight must be a {} tensor of shape [{c}] (one per class), got {} of shape \
             {:?} (input shape {:?}), at {loc}",
            input.dtype(),
            w.dtype(),
            w.shape(),
            input.shape()
        );
    }
}

/// What a weighted mean divides by: the number of non-ignored targets, or the sum of their
/// class weights.
enum Denominator {
    Count(usize),
    Weights(Tensor),
}

impl Denominator {
    fn reduce(&self, l: Tensor, reduction: Reduction) -> Tensor {
        match (reduction, self) {
            (Reduction::None, _) => l,
            (Reduction::Sum, _) => l.sum(),
            (Reduction::Mean, Denominator::Count(n)) => mean_over(&l, *n),
            (Reduction::Mean, Denominator::Weights(w)) => l.sum() / w.sum(),
        }
    }
}

/// The unreduced negative log-likelihood `-w_y · logp[y]` of batched log-probabilities
/// `[N, C, d1, …]` (0 at ignored targets), and what its weighted mean divides by.
fn nll_terms(logp: &Tensor, ct: &ClassTarget, weight: Option<&Tensor>) -> (Tensor, Denominator) {
    let mut picked = logp.gather(1, &ct.safe.unsqueeze(1)).squeeze_dim(1);
    if let Some(ign) = &ct.ignored {
        picked = picked.masked_fill(ign, 0.0);
    }
    match weight {
        None => (-picked, Denominator::Count(ct.count)),
        Some(w) => {
            let mut wy = w
                .index_select(0, &ct.safe.flatten_all())
                .reshape(ct.safe.shape());
            if let Some(ign) = &ct.ignored {
                wy = wy.masked_fill(ign, 0.0);
            }
            (-(picked * &wy), Denominator::Weights(wy))
        }
    }
}

/// Checks a class-dimensioned input and its target's dtype, and turns an unbatched input `[C]`
/// into a batch of one (`[1, C]` with target `[1]`, or `[1, C]` for probabilities).
fn batched(
    name: &str,
    input: &Tensor,
    target: &Tensor,
    probabilities: bool,
    loc: &Location,
) -> (Tensor, Tensor) {
    check_float(name, "input", input, loc);
    if probabilities {
        check_pair(name, input, target, loc);
    } else if target.dtype() != DType::I64 {
        panic!(
            "{name}: class-index target must be int64, got {} (shape {:?}; input shape {:?}), at \
             {loc}",
            target.dtype(),
            target.shape(),
            input.shape()
        );
    }
    match input.ndim() {
        0 => panic!(
            "{name}: input of shape [] has no class dimension (expected [C], [N, C] or \
             [N, C, d1, …]), at {loc}"
        ),
        1 if !probabilities && target.ndim() != 0 => panic!(
            "{name}: an unbatched input of shape {:?} needs a 0-d target, got shape {:?}, at {loc}",
            input.shape(),
            target.shape()
        ),
        1 => (input.unsqueeze(0), target.unsqueeze(0)),
        _ => (input.clone(), target.clone()),
    }
}

/// Reshapes the `Reduction::None` result `[1]` of an unbatched `[C]` input back to 0-d.
fn unbatch(l: Tensor, input: &Tensor) -> Tensor {
    if input.ndim() == 1 && l.ndim() == 1 {
        l.reshape(Vec::<usize>::new())
    } else {
        l
    }
}

/// The negative log-likelihood loss of log-probabilities, like
/// `F.nll_loss(input, target, weight=None, ignore_index=-100, reduction='mean')`.
///
/// `log_probs` is `[N, C]` or `[N, C, d1, …]` (or `[C]` with a 0-d target), `target` the int64
/// class indices `[N, d1, …]`. Each element's loss is `-weight[y] · log_probs[y]` (0 where
/// `y == ignore_index`); the mean is weighted, `Σ w_y l / Σ w_y` over non-ignored targets (NaN
/// if every target is ignored, as in PyTorch).
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional::{nll_loss, Reduction};
/// let logp = Tensor::from_vec(vec![-0.5, -1.0, -2.0, -0.25], &[2, 2]);
/// let y = Tensor::from_vec_i64(vec![1, 0], &[2]);
/// assert_eq!(nll_loss(&logp, &y, None, -100, Reduction::Mean).item(), 1.5); // (1 + 2) / 2
/// ```
///
/// # Panics
/// If `log_probs` is not floating point or has no class dimension, `target` is not int64 or not
/// of shape `[N, d1, …]`, a target is outside `[0, C)` and not `ignore_index`, or `weight` is not
/// a `[C]` tensor of the input's dtype.
#[track_caller]
pub fn nll_loss(
    log_probs: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    ignore_index: i64,
    reduction: Reduction,
) -> Tensor {
    let loc = Location::caller();
    let (x, t) = batched("nll_loss", log_probs, target, false, loc);
    let ct = class_target("nll_loss", &x, &t, ignore_index, loc);
    if let Some(w) = weight {
        check_class_weight("nll_loss", w, &x, loc);
    }
    let (l, denom) = nll_terms(&x, &ct, weight);
    unbatch(denom.reduce(l, reduction), log_probs)
}

/// Cross entropy between logits and targets, like `F.cross_entropy(input, target, weight=None,
/// ignore_index=-100, reduction='mean', label_smoothing=0.0)`: `log_softmax` over the class
/// dimension (dim 1, or 0 for an unbatched `[C]` input) followed by the negative log-likelihood.
///
/// `input` is `[N, C]` or `[N, C, d1, …]` (or `[C]`). `target` is either
/// - int64 class indices `[N, d1, …]` (0-d for a `[C]` input): the loss is `-w_y log p_y`,
///   0 at `ignore_index`, and the mean is weighted, `Σ w_y l / Σ w_y` over non-ignored targets;
///   with label smoothing ε it is `(1 - ε) · nll + ε / C · Σ_c -w_c log p_c` (the smoothing term
///   is averaged by the same `Σ w_y`), exactly as PyTorch defines it;
/// - float class probabilities of the input's shape: the loss is `-Σ_c w_c q_c log p_c` with
///   `q = (1 - ε) target + ε / C`, and the mean divides by the number of samples `N · d1 · …`
///   (not by the weights); `ignore_index` is not used.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional::{cross_entropy, CrossEntropyOpts};
/// let logits = Tensor::from_vec_f64(vec![0.0, 0.0, 3f64.ln(), 0.0], &[2, 2]);
/// let y = Tensor::from_vec_i64(vec![0, 0], &[2]);
/// let loss = cross_entropy(&logits, &y, &CrossEntropyOpts::default());
/// // p = [1/2, 3/4]: loss = (ln 2 + ln 4/3) / 2
/// assert!((loss.item() - (2f64.ln() + (4.0f64 / 3.0).ln()) / 2.0).abs() < 1e-12);
/// ```
///
/// # Panics
/// If the input is not floating point or has no class dimension; an index target is not of shape
/// `[N, d1, …]` or holds an index outside `[0, C)` that is not `ignore_index`; a probability
/// target differs from the input in shape or dtype; the target is neither int64 nor float; the
/// weight is not a `[C]` tensor of the input's dtype; or `label_smoothing` is outside `[0, 1]`.
#[track_caller]
pub fn cross_entropy(input: &Tensor, target: &Tensor, opts: &CrossEntropyOpts) -> Tensor {
    let loc = Location::caller();
    let name = "cross_entropy";
    let eps = opts.label_smoothing;
    if !(0.0..=1.0).contains(&eps) {
        panic!("{name}: label_smoothing must be in [0, 1], got {eps}, at {loc}");
    }
    let probabilities = target.dtype().is_float();
    let (x, t) = batched(name, input, target, probabilities, loc);
    let weight = opts.weight.as_ref();
    if let Some(w) = weight {
        check_class_weight(name, w, &x, loc);
    }
    let c = x.shape()[1];
    // the class weights shaped to broadcast along dim 1 of [N, C, d1, …]
    let class_w = weight.map(|w| {
        let mut s = vec![1; x.ndim()];
        s[1] = c;
        w.reshape(s)
    });
    let out = if probabilities {
        let logp = x.log_softmax(1);
        let q = if eps > 0.0 {
            &t * (1.0 - eps) + eps / c as f64
        } else {
            t
        };
        let terms = weighted(logp * q, class_w.as_ref());
        match opts.reduction {
            Reduction::None => -terms.sum_dim(1, false),
            Reduction::Sum => -terms.sum(),
            Reduction::Mean => -mean_over(&terms, x.numel() / c.max(1)),
        }
    } else {
        let ct = class_target(name, &x, &t, opts.ignore_index, loc);
        let fusable = x.ndim() == 2
            && eps == 0.0
            && opts.reduction != Reduction::None
            && !weight.is_some_and(Tensor::requires_grad_enabled);
        if fusable {
            return cross_entropy_fused(&x, &t, &ct, opts);
        }
        let logp = x.log_softmax(1);
        let (nll, denom) = nll_terms(&logp, &ct, weight);
        if eps == 0.0 {
            denom.reduce(nll, opts.reduction)
        } else {
            let mut smooth = -weighted(logp, class_w.as_ref()).sum_dim(1, false);
            if let Some(ign) = &ct.ignored {
                smooth = smooth.masked_fill(ign, 0.0);
            }
            denom.reduce(nll, opts.reduction) * (1.0 - eps)
                + denom.reduce(smooth, opts.reduction) * (eps / c as f64)
        }
    };
    unbatch(out, input)
}

// ----- the fused cross entropy of the training step ---------------------------------------------

/// `cross_entropy` of a `[N, C]` input with class indices, no label smoothing and a reduction to
/// a scalar, in one pass and one tape entry (the composed form costs about three times as much
/// on a `[64, 10]` batch, most of it in the separate log_softmax, gather and their backwards).
///
/// Each row contributes `coef_i (lse(x_i) - x_i[y_i])` with `coef_i = w_{y_i} / D` (0 where
/// ignored; `D = Σ w_y` for the mean, 1 for the sum). The forward keeps `softmax(x)`, so the
/// backward `g coef_i (softmax(x_i) - onehot(y_i))` needs no second `exp`; it is recorded as an
/// op of its own, [`cross_entropy_backward`], whose derivative is written with tensor ops.
#[track_caller]
fn cross_entropy_fused(
    x: &Tensor,
    t: &Tensor,
    ct: &ClassTarget,
    opts: &CrossEntropyOpts,
) -> Tensor {
    let (weight, reduction) = (opts.weight.as_ref(), opts.reduction);
    let target = ct.safe.to_vec::<i64>();
    let ignored = ct
        .ignored
        .as_ref()
        .map_or_else(|| vec![false; target.len()], |m| m.to_vec::<bool>());
    let w = weight.map(Tensor::to_vec_f64);
    let mut coef: Vec<f64> = target
        .iter()
        .zip(&ignored)
        .map(|(&y, &ign)| match (&w, ign) {
            (_, true) => 0.0,
            (Some(w), false) => w[y as usize],
            (None, false) => 1.0,
        })
        .collect();
    if reduction == Reduction::Mean {
        // 0 / 0 = NaN when every target is ignored, as in PyTorch
        let d: f64 = coef.iter().sum();
        coef.iter_mut().for_each(|c| *c /= d);
    }
    let inputs: Vec<&Tensor> = [x, t].into_iter().chain(weight).collect();
    let mut op = Op::new("cross_entropy", &inputs);
    if op.recording() {
        op = op
            .attr("reduction", Attr::Str(reduction_name(reduction).into()))
            .attr("ignore_index", Attr::Int(opts.ignore_index))
            .attr("label_smoothing", Attr::Float(opts.label_smoothing))
            .attr("has_weight", Attr::Bool(weight.is_some()));
    }
    let (out, p) = x.with_data(|d| {
        crate::with_float!(d, "cross_entropy", |a: F| ce_forward_kernel(
            a, &target, &coef
        ))
    });
    let p = Tensor::from_data(p);
    let t = t.clone();
    op.save(x).save(&p).finish(out, move |ctx, g| {
        let (x, p) = (ctx.saved(0), ctx.saved(1));
        vec![
            Some(cross_entropy_backward(&x, &p, g, &t, &target, &coef)),
            None,
            None,
        ]
    })
}

/// The loss `Σ_i coef_i (lse(x_i) - x_i[y_i])` (accumulated in f64) and `softmax(x)`, row by row.
fn ce_forward_kernel<F: Float>(
    a: &crate::tensor::Storage<F>,
    target: &[i64],
    coef: &[f64],
) -> (Data, Data) {
    let a = a.view().into_dimensionality::<Ix2>().expect("2-d input");
    let mut p = Array2::<F>::zeros(a.raw_dim());
    let mut loss = 0f64;
    for (i, (row, mut prow)) in a.rows().into_iter().zip(p.rows_mut()).enumerate() {
        // shift by the maximum (0 if infinite, as log_softmax does) so exp cannot overflow
        let m = row.fold(F::neg_infinity(), |m, &v| m.max(v));
        let m = if m.is_infinite() { F::zero() } else { m };
        let mut sum = F::zero();
        for (o, &v) in prow.iter_mut().zip(row) {
            *o = (v - m).exp();
            sum += *o;
        }
        prow.mapv_inplace(|e| e / sum);
        if coef[i] != 0.0 {
            let lse = sum.ln() + m;
            loss += coef[i] * (lse - row[target[i] as usize]).to_f64();
        }
    }
    let out = ndarray::arr0(F::c(loss)).into_dyn().into_shared();
    (Data::from(out), Data::from(p.into_dyn().into_shared()))
}

/// `g · coef_i (p_i - onehot(y_i))`, the gradient of the fused cross entropy, as an op of
/// inputs `x` and `g` (`p = softmax(x)` is the forward's, passed along as data), so that it can
/// itself be differentiated.
#[track_caller]
fn cross_entropy_backward(
    x: &Tensor,
    p: &Tensor,
    g: &Tensor,
    t: &Tensor,
    target: &[i64],
    coef: &[f64],
) -> Tensor {
    let inputs = [x, g, t];
    let mut op = Op::new("cross_entropy_backward", &inputs);
    if op.recording() {
        op = op.attr("coef", Attr::Floats(coef.to_vec()));
    }
    let gv = g.item();
    let out = p.with_data(|d| {
        crate::with_float!(d, "cross_entropy_backward", |a: F| {
            let mut out = a.to_owned();
            for (i, mut row) in out.outer_iter_mut().enumerate() {
                let s = F::c(gv * coef[i]);
                row.mapv_inplace(|v| v * s);
                row[target[i] as usize] -= s;
            }
            Data::from(out.into_shared())
        })
    });
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let (target, coef) = (target.to_vec(), coef.to_vec());
    op.save(x).save(g).finish(out, move |ctx, gg| {
        let (x, g) = (ctx.saved(0), ctx.saved(1));
        let dt = x.dtype();
        let coef = Tensor::from_vec_f64(coef.clone(), &[n, 1]).to_dtype(dt);
        // softmax recomputed on the tape, so that derivatives of any order follow
        let p = x.softmax(1);
        let gx = ctx.needs_grad(0).then(|| {
            // d softmax_j / d x_k = p_j (δ_jk - p_k)
            &g * &coef * &p * (gg - (gg * &p).sum_dim(1, true))
        });
        let gg_g = ctx.needs_grad(1).then(|| {
            let mut onehot = vec![0.0; n * c];
            target
                .iter()
                .enumerate()
                .for_each(|(i, &y)| onehot[i * c + y as usize] = 1.0);
            let onehot = Tensor::from_vec_f64(onehot, &[n, c]).to_dtype(dt);
            (gg * &coef * (p - onehot)).sum()
        });
        vec![gx, gg_g, None]
    })
}

// ----- binary classification -------------------------------------------------------------------

/// Binary cross entropy of probabilities, like `F.binary_cross_entropy(input, target,
/// weight=None, reduction='mean')`: `-w (y log x + (1 - y) log(1 - x))`, with each log clamped to
/// at least -100 as PyTorch does (so `x = 0` or `1` gives a finite loss).
///
/// The gradient is PyTorch's, `w (x - y) / max(x (1 - x), 1e-12)`, finite even at 0 and 1.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional::{binary_cross_entropy, Reduction};
/// let p = Tensor::from_vec_f64(vec![0.5, 1.0], &[2]);
/// let y = Tensor::from_vec_f64(vec![1.0, 0.0], &[2]);
/// let l = binary_cross_entropy(&p, &y, None, Reduction::None).to_vec::<f64>();
/// assert_eq!(l, vec![2f64.ln(), 100.0]); // log(1 - 1) is clamped to -100
/// ```
///
/// # Panics
/// If input and target differ in shape or dtype or are not floating point, an input is outside
/// `[0, 1]`, or `weight` has another dtype or does not broadcast to the input's shape.
#[track_caller]
pub fn binary_cross_entropy(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    reduction: Reduction,
) -> Tensor {
    let loc = Location::caller();
    let name = "binary_cross_entropy";
    check_pair(name, input, target, loc);
    if let Some(w) = weight {
        check_weight(name, "weight", w, input, loc);
    }
    if let Some(v) = input
        .to_vec_f64()
        .into_iter()
        .find(|v| !(0.0..=1.0).contains(v))
    {
        panic!(
            "{name}: all elements of input should be between 0 and 1, found {v} (input shape \
             {:?}), at {loc}",
            input.shape()
        );
    }
    reduce(weighted(bce_elementwise(input, target), weight), reduction)
}

/// `log` clamped to at least -100, as PyTorch's binary cross entropy takes it.
fn clamped_log(x: &Tensor) -> Tensor {
    x.log().clamp_min(-100.0)
}

/// The unweighted elementwise binary cross entropy, one tape entry with PyTorch's gradients.
#[track_caller]
fn bce_elementwise(x: &Tensor, y: &Tensor) -> Tensor {
    let inputs = [x, y];
    let op = Op::new("binary_cross_entropy", &inputs).save(x).save(y);
    let out = {
        let _g = no_grad();
        -(y * clamped_log(x) + (1.0 - y) * clamped_log(&(1.0 - x)))
    };
    op.finish(out.data(), |ctx, g| {
        let (x, y) = (ctx.saved(0), ctx.saved(1));
        // ∂l/∂x = (x - y) / (x (1 - x)), the denominator kept ≥ 1e-12 (PyTorch's EPSILON)
        let gx = ctx
            .needs_grad(0)
            .then(|| g * (&x - &y) / (&x * (1.0 - &x)).clamp_min(1e-12));
        // ∂l/∂y = log(1 - x) - log x, with the forward's clamps
        let gy = ctx
            .needs_grad(1)
            .then(|| g * (clamped_log(&(1.0 - &x)) - clamped_log(&x)));
        vec![gx, gy]
    })
}

/// Binary cross entropy of logits, like `F.binary_cross_entropy_with_logits(input, target,
/// weight=None, reduction='mean', pos_weight=None)`:
/// `w ((1 - y) x + (1 + (p - 1) y) · softplus(-x))`, which equals
/// `-w (p y log σ(x) + (1 - y) log(1 - σ(x)))` but never overflows (softplus is computed stably,
/// and `log σ(x) = -softplus(-x)`).
///
/// `pos_weight` (`p`, usually `[C]` for the last dimension) weighs the positive term; `weight`
/// weighs the whole loss; both broadcast to the input's shape.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional::{binary_cross_entropy_with_logits, Reduction};
/// let x = Tensor::from_vec_f64(vec![0.0, 1000.0], &[2]);
/// let y = Tensor::from_vec_f64(vec![1.0, 0.0], &[2]);
/// let l = binary_cross_entropy_with_logits(&x, &y, None, None, Reduction::None).to_vec::<f64>();
/// assert!((l[0] - 2f64.ln()).abs() < 1e-12 && l[1] == 1000.0); // no overflow
/// ```
///
/// # Panics
/// If input and target differ in shape or dtype or are not floating point, or `weight` or
/// `pos_weight` has another dtype or does not broadcast to the input's shape.
#[track_caller]
pub fn binary_cross_entropy_with_logits(
    input: &Tensor,
    target: &Tensor,
    weight: Option<&Tensor>,
    pos_weight: Option<&Tensor>,
    reduction: Reduction,
) -> Tensor {
    let loc = Location::caller();
    let name = "binary_cross_entropy_with_logits";
    check_pair(name, input, target, loc);
    if let Some(w) = weight {
        check_weight(name, "weight", w, input, loc);
    }
    if let Some(p) = pos_weight {
        check_weight(name, "pos_weight", p, input, loc);
    }
    let neg_log_sigmoid = (-input).softplus();
    let pos = match pos_weight {
        Some(p) => (target * (p - 1.0) + 1.0) * neg_log_sigmoid,
        None => neg_log_sigmoid,
    };
    let l = (1.0 - target) * input + pos;
    reduce(weighted(l, weight), reduction)
}

// ----- KL divergence ---------------------------------------------------------------------------

/// The Kullback–Leibler divergence `KL(target ‖ p)` with `input = log p`, like
/// `F.kl_div(input, target, reduction='mean', log_target=False)`: elementwise
/// `y (log y - x)` (0 where `y = 0`), or `eʸ (y - x)` when `log_target` (the target is given as
/// log-probabilities too).
///
/// [`KlDivReduction::BatchMean`] (the sum divided by the batch size, `input.shape()[0]`) is the
/// true KL divergence per sample; `Mean`, PyTorch's default, divides by the number of elements.
/// A [`Reduction`] converts with `.into()`.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::nn::functional::{kl_div, KlDivReduction};
/// let logp = Tensor::from_vec_f64(vec![0.5f64.ln(), 0.5f64.ln()], &[1, 2]);
/// let q = Tensor::from_vec_f64(vec![0.25, 0.75], &[1, 2]);
/// let kl = kl_div(&logp, &q, KlDivReduction::BatchMean, false).item();
/// assert!((kl - (0.25 * 0.5f64.ln() + 0.75 * 1.5f64.ln())).abs() < 1e-12);
/// ```
///
/// # Panics
/// If input and target differ in shape or dtype, or are not floating point.
#[track_caller]
pub fn kl_div(
    input: &Tensor,
    target: &Tensor,
    reduction: impl Into<KlDivReduction>,
    log_target: bool,
) -> Tensor {
    let loc = Location::caller();
    check_pair("kl_div", input, target, loc);
    let l = if log_target {
        target.exp() * (target - input)
    } else {
        // y log y, taken as 0 at y = 0 (PyTorch's xlogy): log of 1 there keeps the gradient finite
        let y_log_y = target * target.masked_fill(&target.eq_scalar(0.0), 1.0).log();
        y_log_y - target * input
    };
    match reduction.into() {
        KlDivReduction::None => l,
        KlDivReduction::Mean => reduce(l, Reduction::Mean),
        KlDivReduction::Sum => l.sum(),
        KlDivReduction::BatchMean if input.ndim() == 0 => l.sum(),
        KlDivReduction::BatchMean => mean_over(&l, input.shape()[0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::gradcheck;
    use crate::autograd::{enable_grad, grad};
    use crate::testing::{randn64, randn64_t};

    /// Gradchecks the gradient of the scalar `f` (taken with `create_graph`), i.e. the second
    /// derivatives of `f`.
    #[track_caller]
    fn check_second_order(f: impl Fn(&Tensor) -> Tensor, x: &Tensor) {
        let first = |v: &[Tensor]| {
            let _g = enable_grad();
            // finite differences pass plain leaves: make them differentiable for `grad`
            let x = if v[0].requires_grad_enabled() {
                v[0].clone()
            } else {
                v[0].detach().requires_grad()
            };
            grad(&[&f(&x)], &[&x], true).remove(0)
        };
        gradcheck(first, std::slice::from_ref(x)).unwrap();
    }

    const REDUCTIONS: [Reduction; 3] = [Reduction::None, Reduction::Mean, Reduction::Sum];

    fn t(v: Vec<f64>, shape: &[usize]) -> Tensor {
        Tensor::from_vec_f64(v, shape)
    }

    fn idx(v: Vec<i64>, shape: &[usize]) -> Tensor {
        Tensor::from_vec_i64(v, shape)
    }

    #[track_caller]
    fn close(got: &Tensor, want: &[f64]) {
        let g = got.to_vec_f64();
        assert_eq!(g.len(), want.len(), "{g:?} vs {want:?}");
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()), "{g:?} vs {want:?}");
        }
    }

    /// Gradchecks `loss(input)` for every reduction, with a contiguous and a transposed input.
    #[track_caller]
    fn gradcheck_all(shape: &[usize], loss: impl Fn(&Tensor, Reduction) -> Tensor) {
        for (k, x) in [randn64(shape, 7), randn64_t(shape, 8)].iter().enumerate() {
            for r in REDUCTIONS {
                gradcheck(|v| loss(&v[0], r), std::slice::from_ref(x))
                    .unwrap_or_else(|e| panic!("{r:?}, input {k}: {e}"));
            }
        }
    }

    // ----- values

    #[test]
    fn regression_losses_match_their_formulas() {
        let x = t(vec![0.0, 1.0, -3.0, 0.25], &[4]);
        let y = t(vec![0.5, -1.0, 0.0, 0.0], &[4]);
        // d = x - y = [-0.5, 2, -3, 0.25]
        let none = Reduction::None;
        close(&mse_loss(&x, &y, none), &[0.25, 4.0, 9.0, 0.0625]);
        close(&mse_loss(&x, &y, Reduction::Sum), &[13.3125]);
        close(&l1_loss(&x, &y, Reduction::Mean), &[5.75 / 4.0]);
        // β = 1: 0.5 d² inside |d| < 1, |d| - 0.5 outside
        close(
            &smooth_l1_loss(&x, &y, none, 1.0),
            &[0.125, 1.5, 2.5, 0.03125],
        );
        // β = 0 is the L1 loss
        close(&smooth_l1_loss(&x, &y, none, 0.0), &[0.5, 2.0, 3.0, 0.25]);
        // δ = 2: 0.5 d² inside |d| < 2, 2 (|d| - 1) outside (|d| = 2 is outside: 2 = 0.5·4 anyway)
        close(&huber_loss(&x, &y, none, 2.0), &[0.125, 2.0, 4.0, 0.03125]);
    }

    #[test]
    fn huber_is_delta_times_smooth_l1_with_beta_delta() {
        let (x, y) = (randn64(&[5, 3], 1), randn64(&[5, 3], 2));
        let h = huber_loss(&x, &y, Reduction::None, 0.7);
        let s = smooth_l1_loss(&x, &y, Reduction::None, 0.7) * 0.7;
        h.assert_close(&s, 1e-12, 1e-12);
    }

    #[test]
    fn nll_loss_weighted_mean_divides_by_the_weights_of_the_kept_targets() {
        let logp = t(vec![-1.0, -2.0, -3.0, -4.0, -5.0, -6.0], &[3, 2]);
        let w = t(vec![2.0, 0.5], &[2]);
        let y = idx(vec![1, -100, 0], &[3]);
        // kept: row 0 class 1 (w 0.5, -logp 2), row 2 class 0 (w 2, -logp 5)
        let none = nll_loss(&logp, &y, Some(&w), -100, Reduction::None);
        close(&none, &[1.0, 0.0, 10.0]);
        let mean = nll_loss(&logp, &y, Some(&w), -100, Reduction::Mean);
        close(&mean, &[11.0 / 2.5]);
        close(&nll_loss(&logp, &y, None, -100, Reduction::Mean), &[3.5]);
        close(&nll_loss(&logp, &y, None, -100, Reduction::Sum), &[7.0]);
    }

    #[test]
    fn nll_loss_mean_is_nan_when_every_target_is_ignored() {
        let logp = t(vec![-1.0, -2.0], &[1, 2]);
        assert!(
            nll_loss(&logp, &idx(vec![-100], &[1]), None, -100, Reduction::Mean)
                .item()
                .is_nan()
        );
    }

    #[test]
    fn cross_entropy_is_log_softmax_then_nll() {
        let x = randn64(&[4, 3, 2], 3);
        let y = idx(vec![0, 2, 1, 1, 2, -100, 0, 0], &[4, 2]);
        let w = randn64(&[3], 4).abs();
        for r in REDUCTIONS {
            let opts = CrossEntropyOpts {
                weight: Some(w.clone()),
                reduction: r,
                ..Default::default()
            };
            let ce = cross_entropy(&x, &y, &opts);
            let nll = nll_loss(&x.log_softmax(1), &y, Some(&w), -100, r);
            ce.assert_close(&nll, 1e-12, 1e-12);
        }
    }

    #[test]
    fn fused_2d_cross_entropy_equals_the_composed_form() {
        // the [N, C] path with a scalar reduction is one fused op; [N, C, 1] takes the composed one
        let x = randn64_t(&[5, 3], 40);
        let y = idx(vec![2, -100, 0, 1, 2], &[5]);
        let w = randn64(&[3], 41).abs();
        for (weight, r) in [
            (None, Reduction::Mean),
            (Some(w.clone()), Reduction::Mean),
            (Some(w), Reduction::Sum),
        ] {
            let opts = CrossEntropyOpts {
                weight,
                reduction: r,
                ..Default::default()
            };
            let fused = cross_entropy(&x, &y, &opts);
            let composed = cross_entropy(&x.unsqueeze(2), &y.unsqueeze(1), &opts);
            fused.assert_close(&composed, 1e-12, 1e-12);
        }
    }

    #[test]
    fn label_smoothing_mixes_in_the_uniform_distribution() {
        // logits [0, ln 3]: log p = [ln ¼, ln ¾]; target 1, ε = 0.2, C = 2
        let x = t(vec![0.0, 3f64.ln()], &[1, 2]);
        let opts = CrossEntropyOpts {
            label_smoothing: 0.2,
            ..Default::default()
        };
        let l = cross_entropy(&x, &idx(vec![1], &[1]), &opts);
        // (1 - ε)(-ln ¾) + ε/2 (-ln ¼ - ln ¾)
        let want = -0.8 * 0.75f64.ln() - 0.1 * (0.25f64.ln() + 0.75f64.ln());
        close(&l, &[want]);
        // the same as probability target [ε/2, 1 - ε/2]
        let p = cross_entropy(
            &x,
            &t(vec![0.1, 0.9], &[1, 2]),
            &CrossEntropyOpts::default(),
        );
        close(&p, &[want]);
    }

    #[test]
    fn probability_target_mean_divides_by_samples_not_weights() {
        let x = randn64(&[3, 4], 5);
        let q = randn64(&[3, 4], 6).softmax(1);
        let w = t(vec![1.0, 2.0, 3.0, 4.0], &[4]);
        let opts = |r| CrossEntropyOpts {
            weight: Some(w.clone()),
            reduction: r,
            ..Default::default()
        };
        let none = cross_entropy(&x, &q, &opts(Reduction::None));
        // -Σ_c w_c q_c log p_c per sample
        let want = -(x.log_softmax(1) * &q * w.reshape([1, 4])).sum_dim(1, false);
        none.assert_close(&want, 1e-12, 1e-12);
        let mean = cross_entropy(&x, &q, &opts(Reduction::Mean));
        close(&mean, &[want.sum().item() / 3.0]);
    }

    #[test]
    fn unbatched_input_gives_a_0d_loss() {
        let x = randn64(&[4], 9);
        let none = CrossEntropyOpts {
            reduction: Reduction::None,
            ..Default::default()
        };
        let l = cross_entropy(&x, &idx(vec![2], &[]), &none);
        assert_eq!(l.shape(), &[] as &[usize]);
        close(&l, &[-x.log_softmax(0).to_vec_f64()[2]]);
        let lp = cross_entropy(&x, &randn64(&[4], 10).softmax(0), &none);
        assert_eq!(lp.shape(), &[] as &[usize]);
    }

    #[test]
    fn binary_cross_entropy_clamps_logs_and_keeps_gradients_finite_at_0_and_1() {
        let p = t(vec![0.0, 1.0, 0.25], &[3]).requires_grad();
        let y = t(vec![1.0, 1.0, 0.0], &[3]);
        let l = binary_cross_entropy(&p, &y, None, Reduction::None);
        // -log 0 clamped to 100; -log 1 = 0; -log(1 - ¼)
        close(&l, &[100.0, 0.0, -(0.75f64.ln())]);
        l.sum().backward();
        // (x - y) / max(x (1 - x), 1e-12)
        close(&p.grad().unwrap(), &[-1e12, 0.0, 0.25 / 0.1875]);
    }

    #[test]
    fn bce_with_logits_equals_bce_of_sigmoid_and_handles_huge_logits() {
        let x = randn64(&[3, 4], 11);
        let y = randn64(&[3, 4], 12).sigmoid();
        let pw = randn64(&[4], 13).abs();
        let w = randn64(&[3, 1], 14).abs();
        let a = binary_cross_entropy_with_logits(&x, &y, Some(&w), Some(&pw), Reduction::None);
        // -w (p y log σ(x) + (1 - y) log(1 - σ(x)))
        let s = x.sigmoid();
        let b = -(&w * (&pw * &y * s.log() + (1.0 - &y) * (1.0 - &s).log()));
        a.assert_close(&b, 1e-10, 1e-12);
        let big = t(vec![-800.0, 800.0], &[2]);
        let ones = t(vec![1.0, 1.0], &[2]);
        close(
            &binary_cross_entropy_with_logits(&big, &ones, None, None, Reduction::None),
            &[800.0, 0.0],
        );
    }

    #[test]
    fn kl_div_is_zero_for_equal_distributions_and_treats_0_log_0_as_0() {
        let q = t(vec![0.0, 0.25, 0.75], &[1, 3]);
        let logq = q.masked_fill(&q.eq_scalar(0.0), 1.0).log();
        close(&kl_div(&logq, &q, KlDivReduction::Sum, false), &[0.0]);
        close(
            &kl_div(&logq.slice_last(), &logq.slice_last(), Reduction::Sum, true),
            &[0.0],
        );
        // batchmean divides the sum by N = 2, mean by all 4 elements
        let x = t(vec![-1.0, -2.0, -0.5, -0.25], &[2, 2]);
        let y = t(vec![0.5, 0.5, 0.25, 0.75], &[2, 2]);
        let sum = kl_div(&x, &y, KlDivReduction::Sum, false).item();
        close(
            &kl_div(&x, &y, KlDivReduction::BatchMean, false),
            &[sum / 2.0],
        );
        close(&kl_div(&x, &y, Reduction::Mean, false), &[sum / 4.0]);
    }

    trait SliceLast {
        fn slice_last(&self) -> Tensor;
    }
    impl SliceLast for Tensor {
        /// The last two entries of a `[1, 3]` tensor (the finite logs).
        fn slice_last(&self) -> Tensor {
            self.narrow(1, 1, 2)
        }
    }

    // ----- gradients

    #[test]
    fn regression_losses_pass_gradcheck() {
        let y = randn64(&[3, 4], 20);
        gradcheck_all(&[3, 4], |x, r| mse_loss(x, &y, r));
        gradcheck_all(&[3, 4], |x, r| l1_loss(x, &y, r));
        gradcheck_all(&[3, 4], |x, r| smooth_l1_loss(x, &y, r, 0.8));
        gradcheck_all(&[3, 4], |x, r| huber_loss(x, &y, r, 0.6));
        // the target is differentiable too
        gradcheck(
            |v| mse_loss(&v[0], &v[1], Reduction::Mean),
            &[randn64(&[3], 1), randn64(&[3], 2)],
        )
        .unwrap();
    }

    #[test]
    fn cross_entropy_passes_gradcheck_with_every_option() {
        let w = randn64(&[4], 21).abs() + 0.1;
        let y2 = idx(vec![0, 3, -100], &[3]);
        let y3 = idx(vec![1, 0, 3, 2, 2, -100], &[3, 2]);
        let q = randn64(&[3, 4], 22).softmax(1);
        for (weight, eps) in [(None, 0.0), (Some(w.clone()), 0.0), (Some(w.clone()), 0.3)] {
            let opts = |r| CrossEntropyOpts {
                weight: weight.clone(),
                reduction: r,
                label_smoothing: eps,
                ..Default::default()
            };
            gradcheck_all(&[3, 4], |x, r| cross_entropy(x, &y2, &opts(r)));
            gradcheck_all(&[3, 4, 2], |x, r| cross_entropy(x, &y3, &opts(r)));
            gradcheck_all(&[3, 4], |x, r| cross_entropy(x, &q, &opts(r)));
        }
    }

    #[test]
    fn nll_loss_passes_gradcheck() {
        let w = randn64(&[4], 23).abs() + 0.1;
        let y = idx(vec![0, 3, 2], &[3]);
        gradcheck_all(&[3, 4], |x, r| nll_loss(x, &y, Some(&w), 2, r));
        gradcheck_all(&[3, 4], |x, r| nll_loss(x, &y, None, -100, r));
    }

    #[test]
    fn binary_losses_pass_gradcheck() {
        let y = randn64(&[3, 4], 24).sigmoid();
        let w = randn64(&[4], 25).abs();
        gradcheck_all(&[3, 4], |x, r| {
            binary_cross_entropy(&x.sigmoid(), &y, Some(&w), r)
        });
        gradcheck_all(&[3, 4], |x, r| {
            binary_cross_entropy_with_logits(x, &y, Some(&w), Some(&(&w + 0.5)), r)
        });
        // the target of binary_cross_entropy is differentiable too
        let p = randn64(&[5], 26).sigmoid();
        gradcheck(
            |v| binary_cross_entropy(&p, &v[0], None, Reduction::Sum),
            &[randn64(&[5], 27)],
        )
        .unwrap();
    }

    #[test]
    fn kl_div_passes_gradcheck() {
        let q = randn64(&[3, 4], 28).softmax(1);
        let lq = randn64(&[3, 4], 29).log_softmax(1);
        for x in [randn64(&[3, 4], 30), randn64_t(&[3, 4], 31)] {
            let batchmean = |v: &[Tensor]| kl_div(&v[0], &q, KlDivReduction::BatchMean, false);
            gradcheck(batchmean, &[x]).unwrap();
        }
        gradcheck_all(&[3, 4], |x, r| kl_div(x, &q, r, false));
        gradcheck_all(&[3, 4], |x, r| kl_div(x, &lq, r, true));
    }

    #[test]
    fn losses_have_second_derivatives() {
        let y = idx(vec![0, 3, -100], &[3]);
        let opts = CrossEntropyOpts {
            weight: Some(randn64(&[4], 31).abs()),
            label_smoothing: 0.1,
            ..Default::default()
        };
        check_second_order(|x| cross_entropy(x, &y, &opts), &randn64(&[3, 4], 32));
        // the fused [N, C] path, through its recorded backward, to third order
        let fused = CrossEntropyOpts {
            weight: Some(randn64(&[4], 37).abs()),
            ..Default::default()
        };
        check_second_order(|x| cross_entropy(x, &y, &fused), &randn64(&[3, 4], 38));
        let third = |x: &Tensor| {
            let x = x.clone();
            let g = grad(&[&cross_entropy(&x, &y, &fused)], &[&x], true).remove(0);
            (&g * &g).sum()
        };
        check_second_order(third, &randn64(&[3, 4], 39));
        let p = randn64(&[3, 4], 33).sigmoid();
        check_second_order(
            |x| binary_cross_entropy_with_logits(x, &p, None, None, Reduction::Mean),
            &randn64(&[3, 4], 34),
        );
        check_second_order(
            |x| binary_cross_entropy(&x.sigmoid(), &p, None, Reduction::Sum),
            &randn64(&[3, 4], 35),
        );
        check_second_order(
            |x| huber_loss(x, &p, Reduction::Sum, 0.5),
            &randn64(&[3, 4], 36),
        );
    }

    // ----- errors

    #[test]
    #[should_panic(expected = "cross_entropy: target index 4 is out of bounds for 4 classes")]
    fn out_of_range_class_panics_naming_index_and_classes() {
        let y = idx(vec![0, 4], &[2]);
        cross_entropy(&randn64(&[2, 4], 1), &y, &CrossEntropyOpts::default());
    }

    #[test]
    #[should_panic(expected = "nll_loss: target index -1 is out of bounds for 3 classes")]
    fn negative_class_that_is_not_ignore_index_panics() {
        nll_loss(
            &randn64(&[2, 3], 1),
            &idx(vec![-1, 0], &[2]),
            None,
            -100,
            Reduction::Mean,
        );
    }

    #[test]
    #[should_panic(expected = "cross_entropy: class-index target must be int64, got bool")]
    fn bool_target_panics() {
        let y = Tensor::from_values(vec![true, false], &[2]);
        cross_entropy(&randn64(&[2, 3], 1), &y, &CrossEntropyOpts::default());
    }

    #[test]
    #[should_panic(
        expected = "cross_entropy: target of shape [3] does not match input of shape [2, 3] (expected a target of shape [2])"
    )]
    fn class_target_of_wrong_shape_panics() {
        cross_entropy(
            &randn64(&[2, 3], 1),
            &idx(vec![0, 1, 2], &[3]),
            &CrossEntropyOpts::default(),
        );
    }

    #[test]
    #[should_panic(
        expected = "cross_entropy: target of shape [2, 4] does not match input of shape [2, 3]"
    )]
    fn probability_target_of_wrong_shape_panics() {
        cross_entropy(
            &randn64(&[2, 3], 1),
            &randn64(&[2, 4], 2),
            &CrossEntropyOpts::default(),
        );
    }

    #[test]
    #[should_panic(expected = "cross_entropy: weight must be a float64 tensor of shape [3]")]
    fn class_weight_of_wrong_size_panics() {
        let opts = CrossEntropyOpts {
            weight: Some(randn64(&[4], 2)),
            ..Default::default()
        };
        cross_entropy(&randn64(&[2, 3], 1), &idx(vec![0, 1], &[2]), &opts);
    }

    #[test]
    #[should_panic(expected = "mse_loss: target of shape [3, 1] does not match input of shape [3]")]
    fn regression_shape_mismatch_panics_instead_of_broadcasting() {
        mse_loss(&randn64(&[3], 1), &randn64(&[3, 1], 2), Reduction::Mean);
    }

    #[test]
    #[should_panic(expected = "l1_loss: target is float32 but input is float64")]
    fn dtype_mismatch_panics() {
        l1_loss(
            &randn64(&[3], 1),
            &randn64(&[3], 2).float(),
            Reduction::Mean,
        );
    }

    #[test]
    #[should_panic(
        expected = "binary_cross_entropy: all elements of input should be between 0 and 1, found 1.5"
    )]
    fn bce_input_outside_0_1_panics() {
        let p = t(vec![0.5, 1.5], &[2]);
        binary_cross_entropy(&p, &p, None, Reduction::Mean);
    }

    #[test]
    #[should_panic(
        expected = "binary_cross_entropy_with_logits: pos_weight of shape [3] cannot be broadcast to the input's shape [2, 4]"
    )]
    fn pos_weight_that_does_not_broadcast_panics() {
        let x = randn64(&[2, 4], 1);
        binary_cross_entropy_with_logits(&x, &x, None, Some(&randn64(&[3], 2)), Reduction::Mean);
    }

    #[test]
    #[should_panic(expected = "cross_entropy: label_smoothing must be in [0, 1], got 1.5")]
    fn label_smoothing_outside_0_1_panics() {
        let opts = CrossEntropyOpts {
            label_smoothing: 1.5,
            ..Default::default()
        };
        cross_entropy(&randn64(&[2, 3], 1), &idx(vec![0, 1], &[2]), &opts);
    }

    #[test]
    fn errors_name_the_callers_line() {
        let line = line!() + 2;
        let r = std::panic::catch_unwind(|| {
            mse_loss(&randn64(&[3], 1), &randn64(&[2], 2), Reduction::Mean)
        });
        let e = r.unwrap_err();
        let msg = e.downcast_ref::<String>().unwrap();
        assert!(msg.ends_with(&format!("loss.rs:{line}:13")), "{msg}");
    }
}
