//! How an op records itself: `Op` collects the inputs, attributes and saved tensors, computes
//! whether anything needs recording, and appends the tape entry with the backward rule.
//!
//! A typical op body reads:
//!
//! ```ignore
//! let op = Op::new("mul", &[a, b]);
//! let out = /* compute the output Data */;
//! op.save(a).save(b).finish(out, |ctx, g| vec![Some(g * ctx.saved(1)), Some(g * ctx.saved(0))])
//! ```

use std::panic::Location;

use ndarray::IxDyn;

use super::mode::{is_anomaly_enabled, is_grad_enabled, is_tracing};
use super::tape::{self, Attr, Backward, Ctx, Input, Saved};
use crate::tensor::{Data, Tensor};

thread_local! {
    /// The user's call site of the op being applied on this thread, for error messages raised
    /// deep inside kernels (where `#[track_caller]` cannot reach).
    static CURRENT: std::cell::Cell<Option<&'static Location<'static>>> =
        const { std::cell::Cell::new(None) };
}

/// `", at file:line"` naming the user's call of the op being applied, or nothing if unknown.
#[doc(hidden)]
pub fn current_location() -> String {
    CURRENT
        .with(|c| c.get())
        .map(|l| format!(", at {l}"))
        .unwrap_or_default()
}

/// The recording of one op application. Does nothing (and allocates nothing) when no input needs
/// a gradient or grad mode is off, unless [`tracing`](super::tracing) is on.
pub(crate) struct Op<'a> {
    name: &'static str,
    inputs: &'a [&'a Tensor],
    /// Whether an entry is appended (for backward, or for tracing).
    record: bool,
    /// Whether the entry gets its backward rule (an input requires grad and grad mode is on).
    grad: bool,
    attrs: Vec<(&'static str, Attr)>,
    saved: Vec<Saved>,
    save_output: bool,
    location: &'static Location<'static>,
}

#[allow(dead_code)] // accessors for ops still to come
impl<'a> Op<'a> {
    /// Starts recording op `name` applied to `inputs`.
    ///
    /// # Panics
    /// If an input was produced on another thread's tape.
    #[track_caller]
    pub(crate) fn new(name: &'static str, inputs: &'a [&'a Tensor]) -> Op<'a> {
        let location = Location::caller();
        CURRENT.with(|c| c.set(Some(location)));
        let grad = is_grad_enabled() && inputs.iter().any(|t| t.requires_grad_enabled());
        let record = grad || is_tracing();
        if record {
            let my = tape::current_tape_id();
            for t in inputs {
                if let Some(n) = t.node() {
                    if n.tape != my {
                        panic!(
                            "{name}: an input was computed on another thread's tape; gradients \
                             cannot flow across threads (call .detach() on it first), at {location}"
                        );
                    }
                }
            }
        }
        Op {
            name,
            inputs,
            record,
            grad,
            attrs: Vec::new(),
            saved: Vec::new(),
            save_output: false,
            location,
        }
    }

    /// Whether this application is being recorded (for backward or for tracing).
    pub(crate) fn recording(&self) -> bool {
        self.record
    }

    /// Whether this application is recorded with its backward rule.
    pub(crate) fn differentiable(&self) -> bool {
        self.grad
    }

    /// The op's name.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The source location of the user's call.
    pub(crate) fn location(&self) -> &'static Location<'static> {
        self.location
    }

    /// Adds a non-tensor attribute (kept for graph drawing and export).
    pub(crate) fn attr(mut self, key: &'static str, value: Attr) -> Self {
        if self.record {
            self.attrs.push((key, value));
        }
        self
    }

    /// Saves a tensor for the backward rule; read it back with `ctx.saved(i)` in save order.
    pub(crate) fn save(mut self, t: &Tensor) -> Self {
        if self.grad {
            self.saved.push(match t.node() {
                // an output of a tracing-only entry has no gradient to flow back through
                Some(n) if t.requires_grad_enabled() => Saved::Node(t.data(), n),
                _ => Saved::Tensor(t.clone(), t.data()),
            });
        }
        self
    }

    /// Saves the op's output for the backward rule (`ctx.output()`).
    pub(crate) fn save_output(mut self) -> Self {
        self.save_output = true;
        self
    }

    /// Wraps the output and, when recording, appends the tape entry with backward rule `f`.
    pub(crate) fn finish<F>(self, out: Data, f: F) -> Tensor
    where
        F: Fn(&Ctx, &Tensor) -> Vec<Option<Tensor>> + 'static,
    {
        if is_anomaly_enabled() {
            check_finite(&out, || match super::mode::in_backward() {
                Some((op, loc)) => format!(
                    "detect_anomaly: the backward of '{op}' (called at {loc}) produced NaN or \
                     infinity (in its '{}' step)",
                    self.name
                ),
                None => format!(
                    "detect_anomaly: op '{}' called at {} produced NaN or infinity in its output",
                    self.name, self.location
                ),
            });
        }
        if !self.record {
            return Tensor::from_data(out);
        }
        let backward = self.grad.then(|| Backward {
            needs: self
                .inputs
                .iter()
                .map(|t| t.requires_grad_enabled())
                .collect(),
            saved: Vec::new(),
            save_output: self.save_output,
            f: Box::new(f),
        });
        self.push(out, backward)
    }

    /// Wraps an output that no gradient flows through (comparisons, argmax, …): recorded only
    /// while tracing.
    pub(crate) fn finish_no_grad(self, out: Data) -> Tensor {
        if !is_tracing() {
            return Tensor::from_data(out);
        }
        self.push(out, None)
    }

    fn push(mut self, out: Data, backward: Option<Backward>) -> Tensor {
        let backward = backward.map(|mut b| {
            b.saved = std::mem::take(&mut self.saved);
            b
        });
        let inputs: Vec<Input> = self
            .inputs
            .iter()
            .map(|t| match t.node() {
                Some(n) => Input::Node(n.id),
                None if t.requires_grad_enabled() => Input::Leaf((*t).clone()),
                None => Input::Const((*t).clone()),
            })
            .collect();
        let input_shapes = self.inputs.iter().map(|t| IxDyn(t.shape())).collect();
        tape::push(
            self.name,
            self.attrs,
            inputs,
            input_shapes,
            backward,
            out,
            self.location,
        )
    }
}

/// Panics with `msg()` if `d` holds a NaN or an infinity.
pub(crate) fn check_finite(d: &Data, msg: impl FnOnce() -> String) {
    let bad = match d {
        Data::F32(a) => a.iter().any(|v| !v.is_finite()),
        Data::F64(a) => a.iter().any(|v| !v.is_finite()),
        _ => false,
    };
    if bad {
        panic!("{}", msg());
    }
}
