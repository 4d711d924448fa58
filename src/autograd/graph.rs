//! The graph model: the part of the tape behind some tensors, as nodes in topological order.
//! What [`viz`](crate::viz) draws, TensorBoard's `add_graph` writes and the ONNX exporter
//! translates; op nodes carry the op's name and attributes as the [`schema`](super::schema)
//! declares them.

use std::collections::{HashMap, HashSet};
use std::panic::Location;
use std::rc::Rc;

use ndarray::Dimension as _;

use super::tape::{self, Attr, Entry, Input};
use crate::tensor::{DType, Tensor};

/// What a [`GraphNode`] is.
#[derive(Clone, Debug)]
pub enum NodeKind {
    /// A recorded op (a tape entry).
    Op {
        /// The op's name (`"matmul"`, `"tanh"`, …), declared in [`schema`](super::schema).
        op: &'static str,
        /// Its non-tensor attributes.
        attrs: Vec<(&'static str, Attr)>,
        /// The source line that called it.
        location: &'static Location<'static>,
        /// The tape entry's id (see [`tape::entries`]).
        id: u64,
    },
    /// A leaf that requires grad: a parameter.
    Param,
    /// A tensor that was not produced by a recorded op and does not require grad: the model's
    /// input, data, buffers, constants, scalar operands (0-d).
    Input,
}

/// One node of a [`TapeGraph`].
#[derive(Clone, Debug)]
pub struct GraphNode {
    /// What the node is.
    pub kind: NodeKind,
    /// A name unique in the graph: a parameter's module path (`fc1.weight`), `input_<k>`, or
    /// `<op>_<k>` (the k-th use of that op in the graph).
    pub name: String,
    /// The shape of the node's value.
    pub shape: Vec<usize>,
    /// The dtype of the node's value, when known.
    pub dtype: Option<DType>,
    /// Indices (into [`TapeGraph::nodes`]) of the node's inputs, in argument order.
    pub inputs: Vec<usize>,
    /// The tensor of a parameter or input node (the handle itself: compare with [`Tensor::same`]
    /// to find the model's input, read it for a constant's values); `None` for op nodes.
    pub value: Option<Tensor>,
}

impl GraphNode {
    /// The op's name, for an op node.
    pub fn op_name(&self) -> Option<&'static str> {
        match &self.kind {
            NodeKind::Op { op, .. } => Some(op),
            _ => None,
        }
    }

    /// The attribute `name` of an op node.
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        match &self.kind {
            NodeKind::Op { attrs, .. } => attrs.iter().find(|(k, _)| *k == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// The part of this thread's tape that some tensors depend on, as a graph in topological order
/// (every node after its inputs).
#[derive(Clone, Debug)]
pub struct TapeGraph {
    /// The nodes, inputs before the nodes that use them.
    pub nodes: Vec<GraphNode>,
    /// The nodes of the tensors the graph was made for, in the order given.
    pub outputs: Vec<usize>,
}

impl TapeGraph {
    /// The graph behind `output` (see [`of`](TapeGraph::of)); its node is the last one.
    pub fn new(output: &Tensor, params: &[(String, Tensor)]) -> TapeGraph {
        TapeGraph::of(&[output], params)
    }

    /// The graph behind `outputs`: every tape entry they depend on, and the leaves and constants
    /// those read. Leaves found in `params` (compared by identity, see [`Tensor::same`]) are named
    /// by their names there, other leaves by [`Tensor::name`] or `param_<k>`. A tensor used
    /// several times is one node.
    ///
    /// Run the computation under [`tracing`](super::tracing) to have every op in the graph (also
    /// under `no_grad` and for inputs that do not require grad).
    pub fn of(outputs: &[&Tensor], params: &[(String, Tensor)]) -> TapeGraph {
        let mut b = Builder {
            params,
            nodes: Vec::new(),
            leaves: Vec::new(),
            op_counts: HashMap::new(),
            inputs: 0,
            params_seen: 0,
        };
        let roots: Vec<Rc<Entry>> = outputs.iter().filter_map(|t| tape::entry_of(t)).collect();
        let mut index = HashMap::new();
        if !roots.is_empty() {
            let live: HashMap<u64, Rc<Entry>> =
                tape::entries().into_iter().map(|e| (e.id, e)).collect();
            // the entries reachable from the roots, oldest first (ids are topological)
            let mut seen: HashSet<u64> = roots.iter().map(|e| e.id).collect();
            let mut stack = roots;
            while let Some(e) = stack.pop() {
                for inp in &e.inputs {
                    if let Input::Node(j) = inp {
                        if let Some(ej) = live.get(j) {
                            if seen.insert(*j) {
                                stack.push(ej.clone());
                            }
                        }
                    }
                }
            }
            let mut reach: Vec<u64> = seen.into_iter().collect();
            reach.sort_unstable();
            for id in reach {
                let e = &live[&id];
                let inputs = e
                    .inputs
                    .iter()
                    .zip(&e.input_shapes)
                    .map(|(inp, shape)| match inp {
                        Input::Node(j) => match index.get(j) {
                            Some(&i) => i,
                            None => b.input(None, shape.slice().to_vec()),
                        },
                        Input::Leaf(t) => b.leaf(t),
                        Input::Const(t) => b.input(Some(t), t.shape().to_vec()),
                    })
                    .collect();
                let k = b.op_counts.entry(e.op).or_insert(0);
                let name = format!("{}_{k}", e.op);
                *k += 1;
                b.nodes.push(GraphNode {
                    kind: NodeKind::Op {
                        op: e.op,
                        attrs: e.attrs.clone(),
                        location: e.location,
                        id: e.id,
                    },
                    name,
                    shape: e.output_shape.slice().to_vec(),
                    dtype: Some(e.dtype),
                    inputs,
                    value: None,
                });
                index.insert(id, b.nodes.len() - 1);
            }
        }
        let outputs = outputs
            .iter()
            .map(|t| match t.node().and_then(|n| index.get(&n.id)) {
                Some(&i) => i,
                None if t.requires_grad_enabled() => b.leaf(t),
                None => b.input(Some(t), t.shape().to_vec()),
            })
            .collect();
        TapeGraph {
            nodes: b.nodes,
            outputs,
        }
    }

    /// The index of the (first) output's node.
    pub fn output(&self) -> usize {
        self.outputs[0]
    }

    /// The op nodes with their indices, in topological order.
    pub fn ops(&self) -> impl Iterator<Item = (usize, &GraphNode)> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.kind, NodeKind::Op { .. }))
    }
}

struct Builder<'a> {
    params: &'a [(String, Tensor)],
    nodes: Vec<GraphNode>,
    /// Leaves and inputs already added, with their node index.
    leaves: Vec<(Tensor, usize)>,
    op_counts: HashMap<&'static str, usize>,
    inputs: usize,
    /// Parameters added so far (numbering the unnamed ones).
    params_seen: usize,
}

impl Builder<'_> {
    fn leaf(&mut self, t: &Tensor) -> usize {
        if let Some((_, i)) = self.leaves.iter().find(|(l, _)| l.same(t)) {
            return *i;
        }
        let name = self
            .params
            .iter()
            .find(|(_, p)| p.same(t))
            .map(|(n, _)| n.clone())
            .or_else(|| t.name())
            .unwrap_or_else(|| format!("param_{}", self.params_seen));
        self.params_seen += 1;
        self.nodes.push(GraphNode {
            kind: NodeKind::Param,
            name,
            shape: t.shape().to_vec(),
            dtype: Some(t.dtype()),
            inputs: Vec::new(),
            value: Some(t.clone()),
        });
        self.leaves.push((t.clone(), self.nodes.len() - 1));
        self.nodes.len() - 1
    }

    /// The node of a tensor not produced by a recorded op (one node per tensor), or a new
    /// anonymous input node when the tensor is unknown.
    fn input(&mut self, t: Option<&Tensor>, shape: Vec<usize>) -> usize {
        if let Some(t) = t {
            if let Some((_, i)) = self.leaves.iter().find(|(l, _)| l.same(t)) {
                return *i;
            }
        }
        self.nodes.push(GraphNode {
            kind: NodeKind::Input,
            name: format!("input_{}", self.inputs),
            shape,
            dtype: t.map(Tensor::dtype),
            inputs: Vec::new(),
            value: t.cloned(),
        });
        if let Some(t) = t {
            self.leaves.push((t.clone(), self.nodes.len() - 1));
        }
        self.inputs += 1;
        self.nodes.len() - 1
    }
}
