//! The graph behind a tensor, read off the tape: what [`Dot`](super::Dot) draws and
//! `SummaryWriter::add_graph` exports.

use std::collections::HashMap;
use std::panic::Location;
use std::rc::Rc;

use ndarray::Dimension as _;

use crate::autograd::tape::{self, Attr, Entry, Input};
use crate::tensor::{DType, Tensor};

/// What a [`GraphNode`] is.
#[derive(Clone, Debug)]
pub enum NodeKind {
    /// A recorded op (a tape entry).
    Op {
        /// The op's name (`"matmul"`, `"tanh"`, …).
        op: &'static str,
        /// Its non-tensor attributes.
        attrs: Vec<(&'static str, Attr)>,
        /// The source line that called it.
        location: &'static Location<'static>,
    },
    /// A leaf that requires grad: a parameter.
    Param,
    /// An input that does not require grad (data, constants).
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
    /// The dtype of the node's value, when known (not for inputs that do not require grad).
    pub dtype: Option<DType>,
    /// Indices (into [`TapeGraph::nodes`]) of the node's inputs, in argument order.
    pub inputs: Vec<usize>,
}

/// The part of this thread's tape that a tensor depends on, as a graph in topological order
/// (every node after its inputs; the last node is the tensor's own).
#[derive(Clone, Debug)]
pub struct TapeGraph {
    /// The nodes, inputs before the nodes that use them.
    pub nodes: Vec<GraphNode>,
}

impl TapeGraph {
    /// The graph behind `output`; leaves found in `params` (compared by identity, see
    /// [`Tensor::same`]) are named by their names there, other leaves by [`Tensor::name`] or
    /// `param_<k>`.
    pub fn new(output: &Tensor, params: &[(String, Tensor)]) -> TapeGraph {
        let mut b = Builder {
            params,
            nodes: Vec::new(),
            leaves: Vec::new(),
            op_counts: HashMap::new(),
            inputs: 0,
        };
        match tape::entry_of(output) {
            None => {
                if output.requires_grad_enabled() {
                    b.leaf(output);
                } else {
                    b.input(output.shape().to_vec());
                }
            }
            Some(root) => {
                let live: HashMap<u64, Rc<Entry>> =
                    tape::entries().into_iter().map(|e| (e.id, e)).collect();
                // the entries reachable from the root, oldest first (ids are topological)
                let mut reach = vec![root.id];
                let mut stack = vec![root];
                while let Some(e) = stack.pop() {
                    for inp in &e.inputs {
                        if let Input::Node(j) = inp {
                            if let Some(ej) = live.get(j) {
                                if !reach.contains(j) {
                                    reach.push(*j);
                                    stack.push(ej.clone());
                                }
                            }
                        }
                    }
                }
                reach.sort_unstable();
                let mut index = HashMap::new();
                for id in reach {
                    let e = &live[&id];
                    let inputs = e
                        .inputs
                        .iter()
                        .zip(&e.input_shapes)
                        .map(|(inp, shape)| match inp {
                            Input::Node(j) => match index.get(j) {
                                Some(&i) => i,
                                None => b.input(shape.slice().to_vec()),
                            },
                            Input::Leaf(t) => b.leaf(t),
                            Input::Const => b.input(shape.slice().to_vec()),
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
                        },
                        name,
                        shape: e.output_shape.slice().to_vec(),
                        dtype: Some(e.dtype),
                        inputs,
                    });
                    index.insert(id, b.nodes.len() - 1);
                }
            }
        }
        TapeGraph { nodes: b.nodes }
    }

    /// The index of the output's node (the last one).
    pub fn output(&self) -> usize {
        self.nodes.len() - 1
    }
}

struct Builder<'a> {
    params: &'a [(String, Tensor)],
    nodes: Vec<GraphNode>,
    /// Leaves already added, with their node index.
    leaves: Vec<(Tensor, usize)>,
    op_counts: HashMap<&'static str, usize>,
    inputs: usize,
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
            .unwrap_or_else(|| format!("param_{}", self.leaves.len()));
        self.nodes.push(GraphNode {
            kind: NodeKind::Param,
            name,
            shape: t.shape().to_vec(),
            dtype: Some(t.dtype()),
            inputs: Vec::new(),
        });
        self.leaves.push((t.clone(), self.nodes.len() - 1));
        self.nodes.len() - 1
    }

    fn input(&mut self, shape: Vec<usize>) -> usize {
        self.nodes.push(GraphNode {
            kind: NodeKind::Input,
            name: format!("input_{}", self.inputs),
            shape,
            dtype: None,
            inputs: Vec::new(),
        });
        self.inputs += 1;
        self.nodes.len() - 1
    }
}
