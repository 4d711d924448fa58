//! Reverse-mode differentiation: `backward()` and `grad()` walk the tape from the outputs back to
//! the leaves.

use ndarray::Dimension as _;
use std::collections::{BTreeMap, HashMap};
use std::panic::Location;
use std::sync::Arc;

use super::function::check_finite;
use super::mode::{is_anomaly_enabled, set_grad_enabled, set_tracing};
use super::tape::{self, Input};
use crate::tensor::Tensor;

/// Options of a backward pass, like the keyword arguments of `torch.autograd.backward`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BackwardOptions {
    /// Keep what the walked entries saved, so the graph can be walked again.
    pub retain_graph: bool,
    /// Record the backward computation itself, so gradients can be differentiated again
    /// (implies `retain_graph`).
    pub create_graph: bool,
}

/// Where the gradients of the walk go.
enum Sink<'a> {
    /// Into `.grad` of leaves (and of non-leaves that asked with `retain_grad`).
    Accumulate,
    /// Into the returned vector, one slot per requested input.
    Capture {
        leaves: HashMap<*const (), usize>,
        nodes: HashMap<u64, usize>,
        out: &'a mut Vec<Option<Tensor>>,
    },
}

impl Tensor {
    /// Computes the gradient of this scalar with respect to every leaf that requires grad and adds
    /// it to their `.grad`, like `loss.backward()`. The walked part of the tape is then freed.
    ///
    /// # Panics
    /// If the tensor has more than one element (use [`backward_with`](Tensor::backward_with)), if
    /// it does not require grad, or if its graph was already freed by an earlier backward.
    #[track_caller]
    pub fn backward(&self) {
        if self.numel() != 1 {
            panic!(
                "backward: grad can be implicitly created only for scalar outputs, but the tensor \
                 has shape {:?}; use backward_with(grad), at {}",
                self.shape(),
                Location::caller()
            );
        }
        let one = Tensor::ones_like(self);
        self.backward_opts(&one, BackwardOptions::default());
    }

    /// Backward from a non-scalar output given the gradient of the loss with respect to it, like
    /// `y.backward(gradient=grad)`.
    ///
    /// # Panics
    /// If `grad`'s shape differs from this tensor's, or as [`backward`](Tensor::backward).
    #[track_caller]
    pub fn backward_with(&self, grad: &Tensor) {
        self.backward_opts(grad, BackwardOptions::default());
    }

    /// Backward with explicit options (`retain_graph`, `create_graph`).
    ///
    /// # Panics
    /// As [`backward_with`](Tensor::backward_with).
    #[track_caller]
    pub fn backward_opts(&self, grad: &Tensor, opts: BackwardOptions) {
        run(&[self], &[grad], opts, Sink::Accumulate, Location::caller());
    }
}

/// Gradients of `outputs` (summed, each scalar) with respect to `inputs`, returned rather than
/// accumulated into `.grad`, like `torch.autograd.grad`. With `create_graph` the returned gradients
/// are on the tape themselves, so they can be differentiated again (gradient penalties,
/// Hessian-vector products).
///
/// ```
/// use tapegrad::prelude::*;
/// // y = x³, dy/dx = 3x², d²y/dx² = 6x
/// let x = Tensor::from_vec(vec![2.0], &[1]).requires_grad();
/// let y = x.powf(3.0).sum();
/// let dx = grad(&[&y], &[&x], true).remove(0);
/// assert_eq!(dx.item(), 12.0);
/// let ddx = grad(&[&dx.sum()], &[&x], false).remove(0);
/// assert_eq!(ddx.item(), 12.0);
/// ```
///
/// # Panics
/// If an output is not a scalar or does not require grad, or if an input is not reachable from the
/// outputs (use [`grad_allow_unused`]).
#[track_caller]
pub fn grad(outputs: &[&Tensor], inputs: &[&Tensor], create_graph: bool) -> Vec<Tensor> {
    let loc = Location::caller();
    grad_allow_unused(outputs, inputs, create_graph)
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            g.unwrap_or_else(|| {
                panic!(
                    "grad: input {i} (shape {:?}) was not used to compute the outputs; use \
                     grad_allow_unused, at {loc}",
                    inputs[i].shape()
                )
            })
        })
        .collect()
}

/// Like [`grad`], with `None` for inputs the outputs do not depend on.
///
/// # Panics
/// If an output is not a scalar or does not require grad.
#[track_caller]
pub fn grad_allow_unused(
    outputs: &[&Tensor],
    inputs: &[&Tensor],
    create_graph: bool,
) -> Vec<Option<Tensor>> {
    let loc = Location::caller();
    let seeds: Vec<Tensor> = outputs
        .iter()
        .map(|o| {
            if o.numel() != 1 {
                panic!(
                    "grad: outputs must be scalars, got shape {:?}; use grad_with, at {loc}",
                    o.shape()
                );
            }
            Tensor::ones_like(o)
        })
        .collect();
    let seed_refs: Vec<&Tensor> = seeds.iter().collect();
    grad_with(outputs, &seed_refs, inputs, create_graph, loc)
}

/// [`grad`] with explicit output gradients (`grad_outputs` in PyTorch).
pub(crate) fn grad_with(
    outputs: &[&Tensor],
    grad_outputs: &[&Tensor],
    inputs: &[&Tensor],
    create_graph: bool,
    loc: &'static Location<'static>,
) -> Vec<Option<Tensor>> {
    let mut out = vec![None; inputs.len()];
    let mut leaves = HashMap::new();
    let mut nodes = HashMap::new();
    for (i, t) in inputs.iter().enumerate() {
        if !t.requires_grad_enabled() {
            panic!(
                "grad: input {i} (shape {:?}) does not require grad, at {loc}",
                t.shape()
            );
        }
        match t.node() {
            Some(n) => nodes.insert(n.id, i),
            None => leaves.insert(Arc::as_ptr(&t.inner) as *const (), i),
        };
    }
    let opts = BackwardOptions {
        retain_graph: create_graph,
        create_graph,
    };
    run(
        outputs,
        grad_outputs,
        opts,
        Sink::Capture {
            leaves,
            nodes,
            out: &mut out,
        },
        loc,
    );
    out
}

fn add_into(slot: &mut Option<Tensor>, g: Tensor) {
    *slot = Some(match slot.take() {
        None => g,
        Some(old) => &old + &g,
    });
}

fn run(
    outputs: &[&Tensor],
    grads: &[&Tensor],
    opts: BackwardOptions,
    mut sink: Sink,
    loc: &'static Location<'static>,
) {
    let retain_graph = opts.retain_graph || opts.create_graph;
    let _mode = set_grad_enabled(opts.create_graph);
    // a trace is of the forward computation: the ops of backward rules are not part of it
    let _no_trace = set_tracing(false);
    let my_tape = tape::current_tape_id();
    let mut pending: BTreeMap<u64, Tensor> = BTreeMap::new();
    for (o, g) in outputs.iter().zip(grads) {
        if g.shape() != o.shape() {
            panic!(
                "backward: gradient of shape {:?} does not match output of shape {:?}, at {loc}",
                g.shape(),
                o.shape()
            );
        }
        if g.dtype() != o.dtype() {
            panic!(
                "backward: gradient dtype {} does not match output dtype {}, at {loc}",
                g.dtype(),
                o.dtype()
            );
        }
        let g = if opts.create_graph {
            (*g).clone()
        } else {
            g.detach()
        };
        match o.node() {
            // an output of an entry recorded only for tracing: nothing to differentiate
            Some(_) if !o.requires_grad_enabled() => panic!(
                "backward: the tensor does not require grad (it was computed under no_grad or \
                 from inputs that do not require grad), at {loc}"
            ),
            Some(n) if n.tape == my_tape => {
                let slot = pending.entry(n.id).or_insert_with(|| g.clone());
                if !slot.same(&g) {
                    *slot = &*slot + &g;
                }
            }
            Some(_) => panic!(
                "backward: this tensor was computed on another thread; call backward on the \
                 thread that computed it, at {loc}"
            ),
            None if o.requires_grad_enabled() => deliver_leaf(&mut sink, o, g),
            None => panic!(
                "backward: the tensor does not require grad and has no grad_fn (did you forget \
                 requires_grad(), or compute it under no_grad?), at {loc}"
            ),
        }
    }

    while let Some((id, g)) = pending.pop_last() {
        let Some(entry) = tape::get(tape::NodeRef { tape: my_tape, id }) else {
            panic!("backward: internal error: tape entry {id} is missing, at {loc}");
        };
        if let Sink::Capture { nodes, out, .. } = &mut sink {
            if let Some(&i) = nodes.get(&id) {
                add_into(&mut out[i], g.clone());
            }
        }
        if let Some(w) = entry.retain.borrow().as_ref().and_then(|w| w.upgrade()) {
            if matches!(sink, Sink::Accumulate) {
                let t = Tensor { inner: w };
                t.accumulate_grad(if opts.create_graph {
                    g.clone()
                } else {
                    g.detach()
                });
            }
        }
        let input_grads = {
            let state = entry.state.borrow();
            let Some(state) = state.as_ref() else {
                panic!(
                    "backward: trying to backward through the graph a second time: the saved \
                     tensors of '{}' (called at {}) were freed by an earlier backward; pass \
                     retain_graph: true to the first backward if you need to do this, at {loc}",
                    entry.op, entry.location
                );
            };
            let ctx = tape::make_ctx(
                entry.op,
                state,
                tape::NodeRef { tape: my_tape, id },
                opts.create_graph,
            );
            let _running = super::mode::enter_backward(entry.op, entry.location);
            let mut grads = (state.f)(&ctx, &g);
            // inputs that need no gradient (constants, outputs of tracing-only entries) get none,
            // whatever the rule returned
            for (gi, &need) in grads.iter_mut().zip(&state.needs) {
                if !need {
                    *gi = None;
                }
            }
            grads
        };
        drop(g);
        if !retain_graph {
            tape::free(&entry);
        }
        for (i, (inp, gi)) in entry.inputs.iter().zip(input_grads).enumerate() {
            let Some(gi) = gi else { continue };
            if gi.shape() != entry.input_shapes[i].slice() {
                panic!(
                    "backward: internal error: '{}' returned a gradient of shape {:?} for input \
                     {i} of shape {:?}",
                    entry.op,
                    gi.shape(),
                    entry.input_shapes[i].slice()
                );
            }
            if is_anomaly_enabled() {
                gi.with_data(|d| {
                    check_finite(d, || {
                        format!(
                            "detect_anomaly: the backward of '{}' (called at {}) produced NaN or \
                             infinity in the gradient of input {i}",
                            entry.op, entry.location
                        )
                    })
                });
            }
            match inp {
                Input::Node(j) => {
                    use std::collections::btree_map::Entry as E;
                    match pending.entry(*j) {
                        E::Vacant(v) => {
                            v.insert(gi);
                        }
                        E::Occupied(mut o) => {
                            let sum = o.get() + &gi;
                            o.insert(sum);
                        }
                    }
                }
                Input::Leaf(t) => deliver_leaf(&mut sink, t, gi),
                Input::Const(_) => {}
            }
        }
    }
}

fn deliver_leaf(sink: &mut Sink, leaf: &Tensor, g: Tensor) {
    match sink {
        Sink::Accumulate => leaf.accumulate_grad(g),
        Sink::Capture { leaves, out, .. } => {
            if let Some(&i) = leaves.get(&(Arc::as_ptr(&leaf.inner) as *const ())) {
                add_into(&mut out[i], g);
            }
        }
    }
}
