//! Reverse-mode differentiation: `backward()` and `grad()` walk the tape from the outputs back to
//! the leaves.

use ndarray::Dimension as _;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::Location;
use std::sync::Arc;

use super::function::check_finite;
use super::hooks::{self, Hooks};
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
    let pass = hooks::begin_pass();
    let mut hooked = if hooks::any_leaf_hooks() {
        HookedLeaves::count_uses(outputs, &sink, my_tape)
    } else {
        HookedLeaves::default()
    };
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
            None if o.requires_grad_enabled() => hooked.deliver(&mut sink, o, Some(g)),
            None => panic!(
                "backward: the tensor does not require grad and has no grad_fn (did you forget \
                 requires_grad(), or compute it under no_grad?), at {loc}"
            ),
        }
    }

    while let Some((id, mut g)) = pending.pop_last() {
        let Some(entry) = tape::get(tape::NodeRef { tape: my_tape, id }) else {
            panic!("backward: internal error: tape entry {id} is missing, at {loc}");
        };
        // All consumers have larger ids, so `g` is complete: the moment for the tensor's hooks.
        if let Some(h) = entry.hooks.get() {
            g = h.run_tensor_hooks(g);
        }
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
            let Some(gi) = gi else {
                if let Input::Leaf(t) = inp {
                    hooked.deliver(&mut sink, t, None);
                }
                continue;
            };
            if matches!(inp, Input::Const(_)) {
                continue;
            }
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
                Input::Leaf(t) => hooked.deliver(&mut sink, t, Some(gi)),
                Input::Const(_) => {}
            }
        }
    }
    hooked.flush(&mut sink);
    pass.finish();
}

fn leaf_key(leaf: &Tensor) -> *const () {
    Arc::as_ptr(&leaf.inner) as *const ()
}

/// Hands a leaf its (final, for hooked leaves) gradient: its tensor hooks, then `.grad` or the
/// captured slot, then its post-accumulate hooks. Leaves `grad()` did not ask for get nothing and
/// run no hooks, as PyTorch does not run their `AccumulateGrad`.
fn deliver_final(sink: &mut Sink, leaf: &Tensor, hooks: Option<&Hooks>, g: Tensor) {
    match sink {
        Sink::Accumulate => {
            let g = match hooks {
                Some(h) => h.run_tensor_hooks(g),
                None => g,
            };
            leaf.accumulate_grad(g);
            if let Some(h) = hooks {
                h.run_post_hooks(leaf);
            }
        }
        Sink::Capture { leaves, out, .. } => {
            if let Some(&i) = leaves.get(&leaf_key(leaf)) {
                let g = match hooks {
                    Some(h) => h.run_tensor_hooks(g),
                    None => g,
                };
                add_into(&mut out[i], g);
            }
        }
    }
}

/// Leaves with hooks, whose contributions are summed over the pass so that their hooks run once,
/// on the final gradient, as PyTorch's `AccumulateGrad` node runs once its inputs are all in.
#[derive(Default)]
struct HookedLeaves {
    index: HashMap<*const (), usize>,
    slots: Vec<HookedLeaf>,
}

struct HookedLeaf {
    leaf: Tensor,
    hooks: Arc<Hooks>,
    grad: Option<Tensor>,
    /// Uses in the graph whose contribution has not arrived yet.
    remaining: usize,
}

impl HookedLeaves {
    /// Counts the uses of hooked leaves in the part of the tape reachable from `outputs`.
    fn count_uses(outputs: &[&Tensor], sink: &Sink, my_tape: u64) -> HookedLeaves {
        let mut h = HookedLeaves::default();
        let mut seen = HashSet::new();
        let mut stack = Vec::new();
        for o in outputs {
            match o.node() {
                Some(n) if n.tape == my_tape => {
                    if seen.insert(n.id) {
                        stack.push(n.id);
                    }
                }
                Some(_) => {}
                None => h.add_use(o, sink),
            }
        }
        while let Some(id) = stack.pop() {
            let Some(e) = tape::get(tape::NodeRef { tape: my_tape, id }) else {
                continue;
            };
            for inp in &e.inputs {
                match inp {
                    Input::Node(j) => {
                        if seen.insert(*j) {
                            stack.push(*j);
                        }
                    }
                    Input::Leaf(t) => h.add_use(t, sink),
                    Input::Const(_) => {}
                }
            }
        }
        h
    }

    fn add_use(&mut self, leaf: &Tensor, sink: &Sink) {
        let Some(hooks) = leaf.leaf_hooks() else {
            return;
        };
        if let Sink::Capture { leaves, .. } = sink {
            if !leaves.contains_key(&leaf_key(leaf)) {
                return;
            }
        }
        let slots = &mut self.slots;
        let i = *self.index.entry(leaf_key(leaf)).or_insert_with(|| {
            slots.push(HookedLeaf {
                leaf: leaf.clone(),
                hooks: hooks.clone(),
                grad: None,
                remaining: 0,
            });
            slots.len() - 1
        });
        self.slots[i].remaining += 1;
    }

    /// One use of `leaf` contributed `g` (`None`: that use gave it no gradient).
    fn deliver(&mut self, sink: &mut Sink, leaf: &Tensor, g: Option<Tensor>) {
        let slot = if self.index.is_empty() {
            None
        } else {
            self.index.get(&leaf_key(leaf)).copied()
        };
        let Some(i) = slot else {
            // Not counted: no hooks (the common case), or hooks registered during this pass,
            // which then run on each contribution.
            if let Some(g) = g {
                deliver_final(sink, leaf, leaf.leaf_hooks().map(|h| &**h), g);
            }
            return;
        };
        let s = &mut self.slots[i];
        if let Some(g) = g {
            add_into(&mut s.grad, g);
        }
        s.remaining = s.remaining.saturating_sub(1);
        if s.remaining == 0 {
            self.finish(sink, i);
        }
    }

    fn finish(&mut self, sink: &mut Sink, i: usize) {
        let s = &mut self.slots[i];
        if let Some(g) = s.grad.take() {
            let (leaf, hooks) = (s.leaf.clone(), s.hooks.clone());
            deliver_final(sink, &leaf, Some(&hooks), g);
        }
    }

    /// Delivers what is still summed: leaves some of whose uses got no gradient (a branch of the
    /// graph that the walk never reached).
    fn flush(&mut self, sink: &mut Sink) {
        for i in 0..self.slots.len() {
            if self.slots[i].remaining > 0 {
                self.slots[i].remaining = 0;
                self.finish(sink, i);
            }
        }
    }
}
