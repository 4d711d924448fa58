//! The [`Tensor`] type: a cheaply cloned handle to shared, copy-on-write n-d storage, plus the
//! autograd state (`requires_grad`, `.grad`, the tape entry that produced it).

pub mod args;
mod compare;
pub mod create;
pub mod data;
mod display;
mod inplace;
mod interop;
pub mod random;

use ndarray::Dimension as _;
use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use ndarray::IxDyn;

use crate::autograd::tape::{self, NodeRef};
pub use data::{DType, Data, Element, Float, Storage};

/// An n-dimensional array that records the operations applied to it, for reverse-mode autograd.
///
/// Cloning a `Tensor` is cheap: the clone is another handle to the same tensor (same storage, same
/// `.grad`), like a Python reference. Tensors are `Send + Sync`, so a model can be handed to worker
/// threads; each thread records on its own tape.
///
/// ```
/// use tapegrad::prelude::*;
/// let x = Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]).requires_grad();
/// let y = (&x * &x).sum(); // y = Σ x²
/// y.backward();
/// assert_eq!(x.grad().unwrap().to_vec::<f32>(), vec![2.0, 4.0, 6.0]); // dy/dx = 2x
/// ```
#[derive(Clone)]
pub struct Tensor {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) data: RwLock<Data>,
    pub(crate) shape: IxDyn,
    pub(crate) dtype: DType,
    pub(crate) requires_grad: AtomicBool,
    pub(crate) grad: Mutex<Option<Tensor>>,
    /// The tape entry that produced this tensor; `None` for leaves.
    pub(crate) node: Option<NodeRef>,
    pub(crate) name: Mutex<Option<Arc<str>>>,
    /// Hooks of a leaf (non-leaves keep theirs in their tape entry).
    pub(crate) hooks: crate::autograd::hooks::LeafHooks,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(node) = self.node {
            tape::release(node);
        }
    }
}

impl Tensor {
    /// Wraps data as a new leaf that does not require grad.
    pub(crate) fn from_data(data: Data) -> Tensor {
        Tensor::with_node(data, None)
    }

    pub(crate) fn with_node(data: Data, node: Option<NodeRef>) -> Tensor {
        crate::memory::tune_malloc_once();
        let shape = IxDyn(data.shape());
        let dtype = data.dtype();
        Tensor {
            inner: Arc::new(Inner {
                data: RwLock::new(data),
                shape,
                dtype,
                requires_grad: AtomicBool::new(node.is_some()),
                grad: Mutex::new(None),
                node,
                name: Mutex::new(None),
                hooks: Default::default(),
            }),
        }
    }

    /// A handle on the storage (shared, not copied).
    pub(crate) fn data(&self) -> Data {
        self.inner
            .data
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Runs `f` on a handle to the storage.
    ///
    /// The lock is released before `f` runs (the handle keeps the buffer alive), so ops that read
    /// several tensors — or one tensor twice, as in `&w * &w` — never hold two locks at once and
    /// cannot deadlock against a writer on another thread.
    pub(crate) fn with_data<R>(&self, f: impl FnOnce(&Data) -> R) -> R {
        f(&self.data())
    }

    /// Replaces the storage in place (shape and dtype must match; checked by callers).
    pub(crate) fn set_data(&self, data: Data) {
        debug_assert_eq!(data.shape(), self.shape());
        debug_assert_eq!(data.dtype(), self.dtype());
        *self.inner.data.write().unwrap_or_else(|e| e.into_inner()) = data;
    }

    pub(crate) fn node(&self) -> Option<NodeRef> {
        self.inner.node
    }

    /// The size of each dimension, like `x.shape` in PyTorch.
    pub fn shape(&self) -> &[usize] {
        self.inner.shape.slice()
    }

    /// Alias of [`shape`](Tensor::shape), like `x.size()`.
    pub fn size(&self) -> &[usize] {
        self.shape()
    }

    /// The number of dimensions.
    pub fn ndim(&self) -> usize {
        self.inner.shape.ndim()
    }

    /// Alias of [`ndim`](Tensor::ndim), like `x.dim()`.
    pub fn dim(&self) -> usize {
        self.ndim()
    }

    /// The number of elements.
    pub fn numel(&self) -> usize {
        self.inner.shape.size()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.inner.dtype
    }

    /// The strides of the storage, in elements (views can have any strides).
    pub fn stride(&self) -> Vec<isize> {
        self.with_data(|d| d.strides().to_vec())
    }

    /// Whether the elements are stored row-major without gaps.
    pub fn is_contiguous(&self) -> bool {
        self.with_data(|d| d.is_standard_layout())
    }

    /// Whether two handles refer to the very same tensor (not just equal values).
    pub fn same(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// A name for this tensor, shown in graphs (modules name their parameters by their path).
    pub fn name(&self) -> Option<String> {
        self.inner
            .name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
            .map(str::to_owned)
    }

    /// Sets the name shown for this tensor in graphs.
    pub fn set_name(&self, name: &str) {
        *self.inner.name.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::from(name));
    }

    // ----- autograd state --------------------------------------------------------------------

    /// Whether gradients flow to (or through) this tensor.
    pub fn requires_grad_enabled(&self) -> bool {
        self.inner.requires_grad.load(Ordering::Relaxed)
    }

    /// Alias of [`requires_grad_enabled`](Tensor::requires_grad_enabled), reading like PyTorch's
    /// `x.requires_grad` attribute.
    pub fn is_requires_grad(&self) -> bool {
        self.requires_grad_enabled()
    }

    /// Marks this leaf as requiring grad and returns it (builder style, like
    /// `torch.tensor(..., requires_grad=True)`).
    ///
    /// # Panics
    /// If the tensor is not a leaf or not floating point.
    #[track_caller]
    pub fn requires_grad(self) -> Tensor {
        self.requires_grad_(true);
        self
    }

    /// Sets whether this leaf requires grad, like `x.requires_grad_(flag)`.
    ///
    /// # Panics
    /// If the tensor is not a leaf (it was produced by a recorded op: use
    /// [`detach`](Tensor::detach) first), or if `flag` is true for an integer or boolean tensor.
    #[track_caller]
    pub fn requires_grad_(&self, flag: bool) -> &Tensor {
        if !self.is_leaf() {
            panic!(
                "requires_grad_: only leaf tensors can change requires_grad (this one was made by \
                 '{}'); use .detach() to get a leaf, at {}",
                tape::op_name(self.node().unwrap()).unwrap_or("?"),
                Location::caller()
            );
        }
        if flag && !self.dtype().is_float() {
            panic!(
                "requires_grad_: only floating-point tensors can require gradients, got {}, at {}",
                self.dtype(),
                Location::caller()
            );
        }
        self.inner.requires_grad.store(flag, Ordering::Relaxed);
        self
    }

    /// Whether this tensor is a leaf of the graph (made by the user, not by a recorded op).
    pub fn is_leaf(&self) -> bool {
        self.inner.node.is_none()
    }

    /// The gradient accumulated by [`backward`](Tensor::backward), if any.
    ///
    /// Leaves get a gradient when they require grad; other tensors only after
    /// [`retain_grad`](Tensor::retain_grad).
    pub fn grad(&self) -> Option<Tensor> {
        self.inner
            .grad
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the gradient (for optimizers and gradient clipping).
    ///
    /// # Panics
    /// If the shape or dtype of `grad` differ from this tensor's.
    #[track_caller]
    pub fn set_grad(&self, grad: Option<Tensor>) {
        if let Some(g) = &grad {
            if g.shape() != self.shape() || g.dtype() != self.dtype() {
                panic!(
                    "set_grad: gradient of shape {:?} ({}) does not match tensor of shape {:?} \
                     ({}), at {}",
                    g.shape(),
                    g.dtype(),
                    self.shape(),
                    self.dtype(),
                    Location::caller()
                );
            }
        }
        *self.inner.grad.lock().unwrap_or_else(|e| e.into_inner()) = grad;
    }

    /// Adds `g` into `.grad` (sets it when empty).
    ///
    /// When nobody else holds the old gradient and neither side is on the tape, the sum is done in
    /// place in the old gradient's buffer, as PyTorch does, saving an allocation per parameter per
    /// backward pass.
    pub(crate) fn accumulate_grad(&self, g: Tensor) {
        let mut slot = self.inner.grad.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(match slot.take() {
            None => g,
            Some(old) => {
                if Arc::strong_count(&old.inner) == 1 && old.is_leaf() && g.is_leaf() {
                    let gd = g.data();
                    {
                        let mut od = old.inner.data.write().unwrap_or_else(|e| e.into_inner());
                        match (&mut *od, &gd) {
                            (Data::F32(a), Data::F32(b)) => a.zip_mut_with(b, |x, &y| *x += y),
                            (Data::F64(a), Data::F64(b)) => a.zip_mut_with(b, |x, &y| *x += y),
                            _ => unreachable!("gradients have the dtype of their tensor"),
                        }
                    }
                    old
                } else {
                    &old + &g
                }
            }
        });
    }

    /// Clears the gradient, like `x.grad = None` (what `optimizer.zero_grad()` does by default).
    pub fn zero_grad(&self) {
        self.set_grad(None);
    }

    /// A new leaf sharing this tensor's storage but cut off from the graph, like `x.detach()`.
    pub fn detach(&self) -> Tensor {
        Tensor::from_data(self.data())
    }

    /// Asks `backward` to fill `.grad` of this non-leaf tensor too, like `x.retain_grad()`.
    /// On a leaf it does nothing.
    pub fn retain_grad(&self) {
        if let Some(node) = self.node() {
            tape::retain_grad(node, Arc::downgrade(&self.inner));
        }
    }

    /// The name of the op that produced this tensor (`None` for leaves), like `x.grad_fn`.
    pub fn grad_fn(&self) -> Option<&'static str> {
        self.node().and_then(tape::op_name)
    }

    // ----- reading values ---------------------------------------------------------------------

    /// The single value of a one-element tensor, as f64 (like Python's `x.item()`).
    ///
    /// # Panics
    /// If the tensor has more than one element.
    #[track_caller]
    pub fn item(&self) -> f64 {
        if self.numel() != 1 {
            panic!(
                "item: a tensor with {} elements (shape {:?}) cannot be converted to a scalar, at {}",
                self.numel(),
                self.shape(),
                Location::caller()
            );
        }
        self.with_data(|d| crate::with_any!(d, |a: T| a.iter().next().unwrap().to_f64()))
    }

    /// The elements in row-major order.
    ///
    /// # Panics
    /// If `T` is not the tensor's dtype (convert with [`to_dtype`](Tensor::to_dtype) first).
    #[track_caller]
    pub fn to_vec<T: Element>(&self) -> Vec<T> {
        self.with_data(|d| match T::unwrap(d) {
            Some(a) => a.iter().copied().collect(),
            None => panic!(
                "to_vec: asked for {} elements but the tensor holds {}, at {}",
                T::DTYPE,
                d.dtype(),
                Location::caller()
            ),
        })
    }

    /// The elements in row-major order, converted to f64 whatever the dtype.
    pub fn to_vec_f64(&self) -> Vec<f64> {
        self.with_data(|d| crate::with_any!(d, |a: T| a.iter().map(|v| v.to_f64()).collect()))
    }

    /// Overwrites this tensor's values with `src`'s, in place, like `x.data.copy_(src)`: every
    /// handle on this tensor sees the new values. Not recorded on the tape (use it under
    /// [`no_grad`](crate::autograd::no_grad), as optimizers do).
    ///
    /// # Panics
    /// If the shapes or dtypes differ.
    #[track_caller]
    pub fn assign(&self, src: &Tensor) {
        if src.shape() != self.shape() || src.dtype() != self.dtype() {
            panic!(
                "assign: source of shape {:?} ({}) does not match tensor of shape {:?} ({}), at {}",
                src.shape(),
                src.dtype(),
                self.shape(),
                self.dtype(),
                Location::caller()
            );
        }
        self.set_data(src.data());
    }

    /// Bytes used by the elements.
    pub fn nbytes(&self) -> usize {
        self.numel() * self.dtype().size_in_bytes()
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Asserts at compile time that tensors can be sent to and shared between threads.
#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Tensor>();
}
