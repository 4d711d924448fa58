//! Running the model under tracing and reading the tape into the exporter's view of the graph.
//!
//! The forward runs twice: once on the example inputs and once on inputs grown by one along every
//! dynamic axis. Dims (and shape attributes) that differ between the two runs depend on a dynamic
//! axis; everything else is a literal. Both runs must record the same ops in the same order.

use std::collections::{HashMap, HashSet};
use std::panic::Location;
use std::rc::Rc;

use ndarray::Dimension as _;

use crate::autograd::tape::{self, Attr, Entry, Input};
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor};

/// Where an input of a traced op comes from.
#[derive(Clone)]
pub(crate) enum Src {
    /// The output of an earlier node (index into [`Traced::nodes`]).
    Node(usize),
    /// The `k`-th graph input.
    Input(usize),
    /// A parameter or buffer, by its `state_dict` name.
    Param(String, Tensor),
    /// A constant made by the model (a scalar operand, a mask) with its value.
    Const(Tensor),
    /// A constant whose shape changes with the input's size (made inside forward from a size),
    /// with its shape at the grown inputs.
    SizedConst(Tensor, Vec<usize>),
}

/// One traced op.
pub(crate) struct Node {
    pub op: &'static str,
    pub attrs: Vec<(&'static str, Attr)>,
    pub inputs: Vec<Src>,
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub location: &'static Location<'static>,
    /// Per output dim: whether it changed between the two runs (depends on a dynamic axis).
    pub dynamic: Vec<bool>,
    /// The output's shape in the second run.
    pub shape_b: Vec<usize>,
    /// The output's value when every input is a constant (constant folding).
    pub folded: Option<Tensor>,
}

impl Node {
    pub fn attr(&self, key: &str) -> Option<&Attr> {
        self.attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Whether flag attribute `key` (`has_bias`, …) is set.
    pub fn has(&self, key: &str) -> bool {
        matches!(self.attr(key), Some(Attr::Bool(true)))
    }
}

/// The graph of one forward pass, in topological order.
pub(crate) struct Traced {
    pub nodes: Vec<Node>,
    /// The nodes (or inputs) that are the graph's outputs.
    pub outputs: Vec<Src>,
}

/// The inputs of the second run: every dynamic axis grown by one (its first slice repeated), so
/// ids and masks stay valid values.
pub(crate) fn grow(x: &Tensor, axes: &[usize]) -> Tensor {
    let _g = crate::autograd::no_grad();
    let mut y = x.detach();
    for &a in axes {
        y = Tensor::cat(&[&y, &y.narrow(a as isize, 0, 1)], a as isize);
    }
    y.detach()
}

/// One forward pass: the entries behind its outputs (oldest first), the outputs, and the input
/// handles it ran on.
type Run = (Vec<Rc<Entry>>, Vec<Tensor>, Vec<Tensor>);

/// Runs `f` on `inputs` and reads the tape behind its outputs.
fn run(
    f: &dyn Fn(&[Tensor]) -> Vec<Tensor>,
    inputs: &[Tensor],
    params: &[(String, Tensor)],
) -> Result<Run> {
    // Fresh handles, so that each graph input is found on the tape by identity.
    let handles: Vec<Tensor> = inputs.iter().map(|x| x.detach()).collect();
    let outs = {
        let _trace = crate::autograd::tracing();
        let _grad = crate::autograd::no_grad();
        f(&handles)
    };
    let live: HashMap<u64, Rc<Entry>> = tape::entries().into_iter().map(|e| (e.id, e)).collect();
    let mut reach = HashSet::new();
    let mut stack: Vec<Rc<Entry>> = outs.iter().filter_map(tape::entry_of).collect();
    while let Some(e) = stack.pop() {
        if !reach.insert(e.id) {
            continue;
        }
        for inp in &e.inputs {
            if let Input::Node(j) = inp {
                if let Some(ej) = live.get(j) {
                    stack.push(ej.clone());
                }
            }
        }
    }
    let mut ids: Vec<u64> = reach.into_iter().collect();
    ids.sort_unstable();
    let entries = ids.into_iter().map(|id| live[&id].clone()).collect();
    let _ = params;
    Ok((entries, outs, handles))
}

/// Traces `f` at the example inputs and at inputs grown along `dynamic_axes` (per input).
pub(crate) fn trace(
    f: &dyn Fn(&[Tensor]) -> Vec<Tensor>,
    inputs: &[&Tensor],
    dynamic_axes: &[Vec<usize>],
    params: &[(String, Tensor)],
) -> Result<Traced> {
    let a_in: Vec<Tensor> = inputs.iter().map(|x| x.detach()).collect();
    let b_in: Vec<Tensor> = inputs
        .iter()
        .zip(dynamic_axes)
        .map(|(x, axes)| grow(x, axes))
        .collect();
    let (ea, outs_a, ha) = run(f, &a_in, params)?;
    let (eb, _outs_b, _hb) = run(f, &b_in, params)?;
    if ea.len() != eb.len() || ea.iter().zip(&eb).any(|(a, b)| a.op != b.op) {
        return Err(Error::Unsupported(format!(
            "export: the model records different ops for inputs of another size ({} ops at the \
             example inputs, {} with the dynamic axes grown by one): its control flow depends \
             on the input's shape",
            ea.len(),
            eb.len()
        )));
    }
    let index: HashMap<u64, usize> = ea.iter().enumerate().map(|(i, e)| (e.id, i)).collect();
    let src = |inp: &Input, shape_b: &[usize]| -> Src {
        let t = match inp {
            Input::Node(j) => return Src::Node(index[j]),
            Input::Leaf(t) | Input::Const(t) => t,
        };
        if let Some(k) = ha.iter().position(|h| h.same(t)) {
            return Src::Input(k);
        }
        if let Some((n, p)) = params.iter().find(|(_, p)| p.same(t)) {
            return Src::Param(n.clone(), p.clone());
        }
        if t.requires_grad_enabled() {
            // a parameter outside the state dict (a tensor the forward closes over)
            let name = t.name().unwrap_or_else(|| "parameter".into());
            return Src::Param(name, t.clone());
        }
        if t.shape() != shape_b {
            return Src::SizedConst(t.clone(), shape_b.to_vec());
        }
        Src::Const(t.clone())
    };
    let mut nodes: Vec<Node> = Vec::with_capacity(ea.len());
    for (a, b) in ea.iter().zip(&eb) {
        let inputs: Vec<Src> = a
            .inputs
            .iter()
            .zip(&b.input_shapes)
            .map(|(i, sb)| src(i, sb.slice()))
            .collect();
        let constant = inputs.iter().all(|s| match s {
            Src::Const(_) => true,
            Src::Node(i) => nodes[*i].folded.is_some(),
            _ => false,
        });
        nodes.push(Node {
            op: a.op,
            attrs: a.attrs.clone(),
            inputs,
            shape: a.output_shape.slice().to_vec(),
            dtype: a.dtype,
            location: a.location,
            dynamic: a
                .output_shape
                .slice()
                .iter()
                .zip(b.output_shape.slice())
                .map(|(x, y)| x != y)
                .collect(),
            shape_b: b.output_shape.slice().to_vec(),
            folded: if constant { a.traced_output() } else { None },
        });
    }
    let outputs = outs_a
        .iter()
        .map(|o| match tape::entry_of(o) {
            Some(e) if index.contains_key(&e.id) => Src::Node(index[&e.id]),
            _ => match ha.iter().position(|h| h.same(o)) {
                Some(k) => Src::Input(k),
                None => Src::Const(o.clone()),
            },
        })
        .collect();
    Ok(Traced { nodes, outputs })
}
