//! The thread-local gradient tape.
//!
//! Every op whose inputs require grad appends one [`Entry`] as it runs: the op's name, attributes,
//! inputs, input and output shapes, the caller's source location, the tensors its backward rule
//! needs, and the rule itself. Under [`tracing`](super::tracing) every op is appended, with or
//! without a backward rule. Entry ids grow monotonically, so an entry's inputs always have smaller
//! ids than the entry: walking ids in decreasing order is a valid reverse topological order.
//!
//! The names, inputs and attributes an entry may have are declared once, in
//! [`schema`](super::schema); in debug builds every entry is checked against it as it is
//! appended.
//!
//! Entries are reference counted like PyTorch's graph nodes: an entry lives while a tensor handle
//! produced by it is alive or a later entry consumes it. When the count drops to zero the entry and
//! its saved tensors are freed, so a forward pass that is never differentiated (an evaluation loop
//! without `no_grad`) does not grow the tape.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::panic::Location;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, Weak};

use ndarray::IxDyn;

use crate::tensor::{DType, Data, Inner, Tensor};

/// Identifies a tape entry: the tape (one per thread) and the entry's id on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeRef {
    pub(crate) tape: u64,
    pub(crate) id: u64,
}

/// A non-tensor attribute of a recorded op (a dim, an exponent, a padding…), kept for graph
/// drawing and export. Which attributes each op has, and of which kind, is declared in
/// [`schema`](super::schema).
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    /// An integer.
    Int(i64),
    /// A list of integers.
    Ints(Vec<i64>),
    /// A float.
    Float(f64),
    /// A list of floats.
    Floats(Vec<f64>),
    /// A flag.
    Bool(bool),
    /// A string (an enumeration such as a reduction `"mean"`).
    Str(String),
    /// An element type.
    DType(DType),
}

impl Attr {
    /// An `Ints` of sizes, dims or positions.
    pub fn usizes(v: &[usize]) -> Attr {
        Attr::Ints(v.iter().map(|&d| d as i64).collect())
    }

    /// The integer, if this is an `Int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Attr::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The integers, if this is an `Ints`.
    pub fn as_ints(&self) -> Option<&[i64]> {
        match self {
            Attr::Ints(v) => Some(v),
            _ => None,
        }
    }

    /// The float, if this is a `Float`.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Attr::Float(v) => Some(*v),
            _ => None,
        }
    }

    /// The floats, if this is a `Floats`.
    pub fn as_floats(&self) -> Option<&[f64]> {
        match self {
            Attr::Floats(v) => Some(v),
            _ => None,
        }
    }

    /// The flag, if this is a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Attr::Bool(v) => Some(*v),
            _ => None,
        }
    }

    /// The string, if this is a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Attr::Str(v) => Some(v),
            _ => None,
        }
    }

    /// The dtype, if this is a `DType`.
    pub fn as_dtype(&self) -> Option<DType> {
        match self {
            Attr::DType(v) => Some(*v),
            _ => None,
        }
    }
}

/// Where an input of a recorded op comes from.
///
/// Every tensor operand of an op is an input, differentiable or not: a comparison's operands, a
/// `where`'s condition, a loss's target, a gather's index, a batch norm's running statistics, a
/// dropout mask. A scalar operand of arithmetic (`&x * 2.0`, `1.0 - &x`, `x.gt_scalar(0.5)`) is a
/// 0-d constant input holding the scalar; scalar *parameters* of an op (an exponent, an `eps`, a
/// slope) are attributes instead.
#[derive(Clone)]
pub enum Input {
    /// The output of an earlier tape entry.
    Node(u64),
    /// A leaf that requires grad (a parameter): backward accumulates into its `.grad`.
    Leaf(Tensor),
    /// A tensor that was not produced by a recorded op and does not require grad: data, a buffer,
    /// a constant, a scalar operand. The handle is the tensor itself (not a copy), so a reader
    /// can tell which constant is which by identity ([`Tensor::same`]) and read its values (as
    /// they are now: an in-place update after recording, such as a running statistic's, shows).
    Const(Tensor),
}

impl Input {
    /// The tensor of a `Leaf` or `Const` input.
    pub fn tensor(&self) -> Option<&Tensor> {
        match self {
            Input::Node(_) => None,
            Input::Leaf(t) | Input::Const(t) => Some(t),
        }
    }
}

/// A tensor saved for the backward pass.
pub(crate) enum Saved {
    /// A leaf (or constant): the tensor, and a snapshot of its values when saved (an in-place
    /// update of a parameter between forward and backward must not change the gradient).
    Tensor(Tensor, Data),
    /// A non-leaf: its data, and its entry so that higher-order gradients flow through it.
    Node(Data, NodeRef),
}

impl Saved {
    fn nbytes(&self) -> usize {
        match self {
            Saved::Tensor(_, d) => d.nbytes(),
            Saved::Node(d, _) => d.nbytes(),
        }
    }
}

/// The backward rule of an entry: given the saved tensors and the gradient of the output, the
/// gradients of the inputs (`None` where an input needs none).
pub(crate) type BackwardFn = Box<dyn Fn(&Ctx, &Tensor) -> Vec<Option<Tensor>>>;

pub(crate) struct BackwardState {
    pub(crate) needs: Vec<bool>,
    pub(crate) saved: Vec<Saved>,
    pub(crate) output: Option<Data>,
    pub(crate) f: BackwardFn,
}

/// What a backward rule sees: the tensors saved in forward.
pub struct Ctx<'a> {
    op: &'static str,
    state: &'a BackwardState,
    node: NodeRef,
    create_graph: bool,
}

impl Ctx<'_> {
    /// The `i`-th saved tensor. Under `create_graph` it is connected to the graph, so the gradient
    /// built from it can itself be differentiated.
    pub fn saved(&self, i: usize) -> Tensor {
        match &self.state.saved[i] {
            Saved::Tensor(t, d) => {
                if !self.create_graph || !t.requires_grad_enabled() {
                    return Tensor::from_data(d.clone());
                }
                // Higher-order gradients must flow to the leaf itself: only valid while it still
                // holds the values that were saved.
                if !t.with_data(|now| now.same_buffer(d)) {
                    panic!(
                        "backward: a tensor of shape {:?} saved by '{}' was modified in place \
                         after it was saved; its gradient cannot be differentiated again",
                        t.shape(),
                        self.op
                    );
                }
                t.clone()
            }
            Saved::Node(d, n) => self.attach(d, *n),
        }
    }

    /// The op's output, when the op saved it.
    ///
    /// # Panics
    /// If the op did not ask to save its output (a bug in the op).
    pub fn output(&self) -> Tensor {
        let d = self
            .state
            .output
            .as_ref()
            .expect("op did not save its output");
        self.attach(d, self.node)
    }

    /// Whether the `i`-th input needs a gradient (rules may skip work for the others).
    pub fn needs_grad(&self, i: usize) -> bool {
        self.state.needs[i]
    }

    /// Whether the gradient being computed will itself be differentiated.
    pub fn create_graph(&self) -> bool {
        self.create_graph
    }

    fn attach(&self, d: &Data, n: NodeRef) -> Tensor {
        if self.create_graph {
            retain(n);
            Tensor::with_node(d.clone(), Some(n))
        } else {
            Tensor::from_data(d.clone())
        }
    }
}

/// One recorded op.
pub struct Entry {
    /// The entry's id (increasing along the tape).
    pub id: u64,
    /// The op's name (`"matmul"`, `"tanh"`, …).
    pub op: &'static str,
    /// Non-tensor attributes.
    pub attrs: Vec<(&'static str, Attr)>,
    /// Where each input came from.
    pub inputs: Vec<Input>,
    /// Shapes of the inputs.
    pub input_shapes: Vec<IxDyn>,
    /// Shape of the output.
    pub output_shape: IxDyn,
    /// Dtype of the output.
    pub dtype: DType,
    /// The user's source line that called the op.
    pub location: &'static Location<'static>,
    /// Whether the output requires grad (the entry has a backward rule); false for entries
    /// recorded only because of [`tracing`](super::tracing).
    pub requires_grad: bool,
    /// The output's values, kept for entries recorded under tracing (a handle on the buffer,
    /// not a copy), so that a reader can fold constants without running ops again.
    traced_output: Option<Data>,
    rc: Cell<usize>,
    pub(crate) state: RefCell<Option<BackwardState>>,
    /// Bytes of saved tensors, 0 once freed.
    saved_bytes: Cell<usize>,
    pub(crate) retain: RefCell<Option<Weak<Inner>>>,
    /// Hooks registered on the entry's output with `register_hook`.
    pub(crate) hooks: std::cell::OnceCell<std::sync::Arc<super::hooks::Hooks>>,
}

impl Entry {
    /// Bytes held by the tensors saved for backward (0 after the entry was walked and freed).
    pub fn saved_bytes(&self) -> usize {
        self.saved_bytes.get()
    }

    /// Whether backward already walked this entry and freed what it saved (or it never had a
    /// backward rule: see [`requires_grad`](Entry::requires_grad)).
    pub fn is_freed(&self) -> bool {
        self.state.borrow().is_none()
    }

    /// The output's values, for entries recorded under [`tracing`](super::tracing) (a new leaf
    /// sharing the buffer); `None` otherwise.
    pub fn traced_output(&self) -> Option<Tensor> {
        self.traced_output.clone().map(Tensor::from_data)
    }

    /// The attribute `name`, if the entry has it.
    pub fn attr(&self, name: &str) -> Option<&Attr> {
        self.attrs.iter().find(|(k, _)| *k == name).map(|(_, v)| v)
    }

    /// The op's declaration in the [`schema`](super::schema).
    ///
    /// # Panics
    /// If the op is not declared (every recorded op is; a debug build checks it as it records).
    pub fn schema(&self) -> &'static super::schema::OpSchema {
        super::schema::get(self.op)
            .unwrap_or_else(|| panic!("op '{}' is not declared in autograd::schema", self.op))
    }
}

struct Tape {
    id: u64,
    next: u64,
    entries: BTreeMap<u64, Rc<Entry>>,
    saved_bytes: usize,
}

static NEXT_TAPE: AtomicU64 = AtomicU64::new(1);
/// Releases of entries whose last handle was dropped on another thread, applied by the owner.
static FOREIGN_RELEASES: Mutex<Vec<NodeRef>> = Mutex::new(Vec::new());
static FOREIGN_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Tapes whose thread has exited: releases for them are dropped, not queued.
static DEAD_TAPES: Mutex<Vec<u64>> = Mutex::new(Vec::new());

impl Drop for Tape {
    fn drop(&mut self) {
        DEAD_TAPES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(self.id);
        let mut q = FOREIGN_RELEASES.lock().unwrap_or_else(|e| e.into_inner());
        q.retain(|n| n.tape != self.id);
        FOREIGN_COUNT.store(q.len(), Ordering::Release);
    }
}

thread_local! {
    static TAPE: RefCell<Tape> = RefCell::new(Tape {
        id: NEXT_TAPE.fetch_add(1, Ordering::Relaxed),
        next: 1,
        entries: BTreeMap::new(),
        saved_bytes: 0,
    });
    /// Releases requested while the tape was borrowed (a tensor dropped inside a tape operation).
    static DEFERRED: RefCell<Vec<NodeRef>> = const { RefCell::new(Vec::new()) };
}

/// The id of this thread's tape.
pub(crate) fn current_tape_id() -> u64 {
    TAPE.with(|t| t.borrow().id)
}

/// Number of live entries on this thread's tape.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::autograd::tape;
/// let before = tape::len();
/// let w = Tensor::ones(&[3]).requires_grad();
/// let y = (&w * 2.0).sum();
/// assert_eq!(tape::len(), before + 2); // mul, sum
/// drop(y);
/// assert_eq!(tape::len(), before); // nothing refers to the entries any more
/// ```
pub fn len() -> usize {
    drain_pending();
    TAPE.with(|t| t.borrow().entries.len())
}

/// Whether this thread's tape has no live entries.
pub fn is_empty() -> bool {
    len() == 0
}

/// Bytes held by tensors saved for backward on this thread's tape.
pub fn saved_bytes() -> usize {
    drain_pending();
    TAPE.with(|t| t.borrow().saved_bytes)
}

/// The entry behind a tensor, if it was produced by a recorded op on this thread.
pub fn entry_of(t: &Tensor) -> Option<Rc<Entry>> {
    let n = t.node()?;
    get(n)
}

/// All live entries of this thread's tape, oldest first.
pub fn entries() -> Vec<Rc<Entry>> {
    drain_pending();
    TAPE.with(|t| t.borrow().entries.values().cloned().collect())
}

pub(crate) fn get(n: NodeRef) -> Option<Rc<Entry>> {
    TAPE.with(|t| {
        let t = t.borrow();
        if t.id != n.tape {
            return None;
        }
        t.entries.get(&n.id).cloned()
    })
}

pub(crate) fn op_name(n: NodeRef) -> Option<&'static str> {
    get(n).map(|e| e.op)
}

pub(crate) fn retain_grad(n: NodeRef, w: Weak<Inner>) {
    if let Some(e) = get(n) {
        *e.retain.borrow_mut() = Some(w);
    }
}

/// What an entry needs for backward: which inputs need a gradient, the saved tensors, whether
/// the output is saved, and the rule.
pub(crate) struct Backward {
    pub(crate) needs: Vec<bool>,
    pub(crate) saved: Vec<Saved>,
    pub(crate) save_output: bool,
    pub(crate) f: BackwardFn,
}

/// Appends an entry and returns the output tensor, connected to it. Without `backward` the entry
/// is recorded for tracing only: its output does not require grad.
pub(crate) fn push(
    op: &'static str,
    attrs: Vec<(&'static str, Attr)>,
    inputs: Vec<Input>,
    input_shapes: Vec<IxDyn>,
    backward: Option<Backward>,
    output: Data,
    location: &'static Location<'static>,
) -> Tensor {
    drain_pending();
    #[cfg(debug_assertions)]
    if let Err(e) = super::schema::check(op, &attrs, inputs.len()) {
        panic!("internal error: the tape entry of '{op}' (called at {location}) does not match autograd::schema: {e}");
    }
    let output_shape = IxDyn(output.shape());
    let dtype = output.dtype();
    let requires_grad = backward.is_some();
    let traced_output = super::mode::is_tracing().then(|| output.clone());
    let (state, saved_bytes) = match backward {
        None => (None, 0),
        Some(b) => {
            let bytes = b.saved.iter().map(Saved::nbytes).sum::<usize>()
                + if b.save_output { output.nbytes() } else { 0 };
            let state = BackwardState {
                needs: b.needs,
                saved: b.saved,
                output: b.save_output.then(|| output.clone()),
                f: b.f,
            };
            (Some(state), bytes)
        }
    };
    let node = TAPE.with(|t| {
        let mut t = t.borrow_mut();
        let id = t.next;
        t.next += 1;
        for inp in &inputs {
            if let Input::Node(j) = inp {
                if let Some(e) = t.entries.get(j) {
                    e.rc.set(e.rc.get() + 1);
                }
            }
        }
        t.saved_bytes += saved_bytes;
        let entry = Entry {
            id,
            op,
            attrs,
            inputs,
            input_shapes,
            output_shape,
            dtype,
            location,
            requires_grad,
            traced_output,
            rc: Cell::new(1),
            state: RefCell::new(state),
            saved_bytes: Cell::new(saved_bytes),
            retain: RefCell::new(None),
            hooks: Default::default(),
        };
        t.entries.insert(id, Rc::new(entry));
        NodeRef { tape: t.id, id }
    });
    let out = Tensor::with_node(output, Some(node));
    if !requires_grad {
        out.inner.requires_grad.store(false, Ordering::Relaxed);
    }
    out
}

/// Frees what an entry saved (after backward walked it without `retain_graph`).
pub(crate) fn free(e: &Entry) {
    let state = e.state.borrow_mut().take();
    let bytes = e.saved_bytes.replace(0);
    TAPE.with(|t| t.borrow_mut().saved_bytes -= bytes);
    drop(state);
}

/// A new handle on an entry's output.
pub(crate) fn retain(n: NodeRef) {
    TAPE.with(|t| {
        let t = t.borrow();
        if t.id == n.tape {
            if let Some(e) = t.entries.get(&n.id) {
                e.rc.set(e.rc.get() + 1);
            }
        }
    });
}

/// A handle on an entry's output was dropped.
pub(crate) fn release(n: NodeRef) {
    let on_this_thread = TAPE
        .try_with(|t| match t.try_borrow_mut() {
            Ok(mut t) => {
                if t.id != n.tape {
                    return false;
                }
                if let Some(e) = t.entries.get(&n.id) {
                    if e.rc.get() > 1 {
                        // still referenced: the common case, with nothing to free
                        e.rc.set(e.rc.get() - 1);
                        return true;
                    }
                }
                let removed = release_locked(&mut t, vec![n.id]);
                drop(t);
                drop(removed);
                true
            }
            Err(_) => {
                DEFERRED.with(|d| d.borrow_mut().push(n));
                true
            }
        })
        .unwrap_or(true); // the thread is exiting: its tape goes with it
    if !on_this_thread {
        queue_foreign(n);
    }
}

/// Queues the release of an entry of another thread's tape, unless that thread has exited.
fn queue_foreign(n: NodeRef) {
    if DEAD_TAPES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&n.tape)
    {
        return;
    }
    let mut q = FOREIGN_RELEASES.lock().unwrap_or_else(|e| e.into_inner());
    q.push(n);
    FOREIGN_COUNT.store(q.len(), Ordering::Release);
}

fn release_locked(t: &mut Tape, mut work: Vec<u64>) -> Vec<Rc<Entry>> {
    let mut removed = Vec::new();
    while let Some(id) = work.pop() {
        let Some(e) = t.entries.get(&id) else {
            continue;
        };
        let rc = e.rc.get() - 1;
        e.rc.set(rc);
        if rc == 0 {
            let e = t.entries.remove(&id).unwrap();
            t.saved_bytes -= e.saved_bytes.get();
            for inp in &e.inputs {
                if let Input::Node(j) = inp {
                    work.push(*j);
                }
            }
            removed.push(e);
        }
    }
    removed
}

/// Applies releases that could not be applied when they happened.
fn drain_pending() {
    let deferred = DEFERRED.with(|d| std::mem::take(&mut *d.borrow_mut()));
    let my = current_tape_id();
    let mut work = Vec::new();
    for n in deferred {
        if n.tape == my {
            work.push(n.id);
        } else {
            queue_foreign(n);
        }
    }
    if FOREIGN_COUNT.load(Ordering::Acquire) > 0 {
        let mut q = FOREIGN_RELEASES.lock().unwrap_or_else(|e| e.into_inner());
        q.retain(|n| {
            if n.tape == my {
                work.push(n.id);
                false
            } else {
                true
            }
        });
        FOREIGN_COUNT.store(q.len(), Ordering::Release);
    }
    if work.is_empty() {
        return;
    }
    let removed = TAPE.with(|t| release_locked(&mut t.borrow_mut(), work));
    drop(removed);
    // Dropping the removed entries may have deferred more releases.
    if DEFERRED.with(|d| !d.borrow().is_empty()) {
        drain_pending();
    }
}

pub(crate) fn make_ctx<'a>(
    op: &'static str,
    state: &'a BackwardState,
    node: NodeRef,
    create_graph: bool,
) -> Ctx<'a> {
    Ctx {
        op,
        state,
        node,
        create_graph,
    }
}

/// The leaves that require grad (parameters) reachable from `outputs` through this thread's tape,
/// each listed once, in the order the walk meets them (outputs first, newest entries first).
///
/// This is the question DDP's `find_unused_parameters` asks after a forward pass: a parameter not
/// in this list will not receive a gradient from a backward of `outputs`. An output that is itself
/// a leaf requiring grad is listed; outputs computed on another thread are ignored.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::autograd::tape;
/// let (a, b) = (Tensor::ones(&[2]).requires_grad(), Tensor::ones(&[2]).requires_grad());
/// let y = (&a * 3.0).sum();
/// let used = tape::reachable_leaves(&[&y]);
/// assert!(used.len() == 1 && used[0].same(&a) && !used[0].same(&b));
/// ```
pub fn reachable_leaves(outputs: &[&Tensor]) -> Vec<Tensor> {
    let my = current_tape_id();
    let mut seen_nodes = std::collections::HashSet::new();
    let mut seen_leaves = std::collections::HashSet::new();
    let mut leaves = Vec::new();
    let mut add_leaf = |t: &Tensor, leaves: &mut Vec<Tensor>| {
        if seen_leaves.insert(std::sync::Arc::as_ptr(&t.inner)) {
            leaves.push(t.clone());
        }
    };
    let mut work: Vec<u64> = Vec::new();
    for o in outputs {
        match o.node() {
            Some(n) if n.tape == my => work.push(n.id),
            Some(_) => {}
            None if o.requires_grad_enabled() => add_leaf(o, &mut leaves),
            None => {}
        }
    }
    while let Some(id) = work.pop() {
        if !seen_nodes.insert(id) {
            continue;
        }
        let Some(e) = get(NodeRef { tape: my, id }) else {
            continue;
        };
        for inp in &e.inputs {
            match inp {
                Input::Node(j) => work.push(*j),
                Input::Leaf(t) => add_leaf(t, &mut leaves),
                Input::Const(_) => {}
            }
        }
    }
    leaves
}
