//! Hooks on the tape: code that runs when backward reaches a tensor, as PyTorch's
//! `Tensor.register_hook`, `Tensor.register_post_accumulate_grad_hook` and
//! `Variable._execution_engine.queue_callback`.
//!
//! - A **tensor hook** ([`Tensor::register_hook`]) sees the gradient with respect to its tensor each
//!   time a backward pass (or [`grad`](crate::autograd::grad)) computes it, and may replace it. On a
//!   leaf it runs on the leaf's gradient summed over all its uses in the graph, before that sum is
//!   accumulated into `.grad`; on a non-leaf it runs before the gradient flows on to the inputs of
//!   the op that made the tensor.
//! - A **post-accumulate-grad hook** ([`Tensor::register_post_accumulate_grad_hook`], leaves only)
//!   sees the leaf right after its `.grad` became final for this backward pass — the point where
//!   data-parallel training can start all-reducing that gradient while backward goes on.
//! - [`queue_callback`], called from inside a hook, runs a closure once the pass has walked the
//!   whole tape (where data-parallel training waits for its last all-reduce).
//!
//! Leaves keep their hooks in the tensor's shared state (every clone of the handle sees them),
//! non-leaves in their tape entry. Each registration returns a [`HookHandle`] that removes the hook;
//! dropping the handle keeps the hook, as PyTorch's `RemovableHandle`.
//!
//! Hooks cost nothing when none are registered: backward checks one pointer per walked entry and,
//! only while some leaf somewhere has a hook, first counts the uses of the hooked leaves in the
//! graph (to know when their gradient is final).

use std::cell::RefCell;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use super::tape;
use crate::tensor::Tensor;

type TensorHook = Arc<dyn Fn(&Tensor) -> Option<Tensor> + Send + Sync>;
type PostHook = Arc<dyn Fn(&Tensor) + Send + Sync>;

/// The hooks of one tensor, in registration order.
#[derive(Default)]
pub(crate) struct HookList {
    tensor: Vec<(u64, TensorHook)>,
    post: Vec<(u64, PostHook)>,
}

/// The hooks of one tensor, shared between the tensor (or its tape entry) and the handles.
pub(crate) struct Hooks {
    list: Mutex<HookList>,
    /// Whether these hooks belong to a leaf (they count in [`LEAF_HOOKS`]).
    leaf: bool,
}

impl Hooks {
    pub(crate) fn new(leaf: bool) -> Hooks {
        Hooks {
            list: Mutex::new(HookList::default()),
            leaf,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HookList> {
        // A hook never runs under this lock (the list is copied out first), so a poisoned lock can
        // only come from a panic in Vec::push: the list is still consistent.
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, hook: Hook) -> u64 {
        let id = NEXT_HOOK.fetch_add(1, Ordering::Relaxed);
        let mut l = self.lock();
        match hook {
            Hook::Tensor(f) => l.tensor.push((id, f)),
            Hook::Post(f) => l.post.push((id, f)),
        }
        if self.leaf {
            LEAF_HOOKS.fetch_add(1, Ordering::AcqRel);
        }
        id
    }

    fn remove(&self, id: u64) {
        let mut l = self.lock();
        let before = l.tensor.len() + l.post.len();
        l.tensor.retain(|(i, _)| *i != id);
        l.post.retain(|(i, _)| *i != id);
        let removed = before - (l.tensor.len() + l.post.len());
        if self.leaf && removed > 0 {
            LEAF_HOOKS.fetch_sub(removed, Ordering::AcqRel);
        }
    }

    /// Runs the tensor hooks in registration order, each on the previous one's result.
    ///
    /// # Panics
    /// If a hook returns a gradient of another shape or dtype.
    pub(crate) fn run_tensor_hooks(&self, mut grad: Tensor) -> Tensor {
        // Copied out so that a hook may register or remove hooks, and so that a panicking hook
        // cannot poison the list.
        let hooks: Vec<TensorHook> = self.lock().tensor.iter().map(|(_, f)| f.clone()).collect();
        for (i, f) in hooks.iter().enumerate() {
            if let Some(new) = f(&grad) {
                if new.shape() != grad.shape() || new.dtype() != grad.dtype() {
                    panic!(
                        "register_hook: hook {i} replaced a gradient of shape {:?} ({}) by one of \
                         shape {:?} ({}); a hook must keep the shape and dtype",
                        grad.shape(),
                        grad.dtype(),
                        new.shape(),
                        new.dtype()
                    );
                }
                grad = new;
            }
        }
        grad
    }

    /// Runs the post-accumulate-grad hooks on `leaf`, in registration order.
    pub(crate) fn run_post_hooks(&self, leaf: &Tensor) {
        let hooks: Vec<PostHook> = self.lock().post.iter().map(|(_, f)| f.clone()).collect();
        for f in hooks {
            f(leaf);
        }
    }
}

impl Drop for Hooks {
    fn drop(&mut self) {
        if self.leaf {
            let l = self.list.get_mut().unwrap_or_else(|e| e.into_inner());
            let n = l.tensor.len() + l.post.len();
            if n > 0 {
                LEAF_HOOKS.fetch_sub(n, Ordering::AcqRel);
            }
        }
    }
}

enum Hook {
    Tensor(TensorHook),
    Post(PostHook),
}

static NEXT_HOOK: AtomicU64 = AtomicU64::new(1);
/// Hooks registered on leaves and not removed, over all threads. While it is zero, backward skips
/// counting the uses of hooked leaves.
static LEAF_HOOKS: AtomicUsize = AtomicUsize::new(0);

/// Whether some leaf (of any thread) has a hook.
pub(crate) fn any_leaf_hooks() -> bool {
    LEAF_HOOKS.load(Ordering::Acquire) > 0
}

/// Removes a hook registered with [`Tensor::register_hook`] or
/// [`Tensor::register_post_accumulate_grad_hook`], like PyTorch's `RemovableHandle`.
///
/// Dropping the handle keeps the hook. The handle does not keep the tensor alive, and it is
/// `Send + Sync`: a hook can be removed from any thread.
#[must_use = "dropping the handle keeps the hook; call .remove() to remove it"]
pub struct HookHandle {
    hooks: Weak<Hooks>,
    id: u64,
}

impl HookHandle {
    /// Removes the hook. Does nothing if the tensor is gone or the hook was already removed.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
    /// let h = x.register_hook(|g| Some(g * 10.0));
    /// h.remove();
    /// x.sum().backward();
    /// assert_eq!(x.grad().unwrap().to_vec::<f32>(), vec![1.0, 1.0]); // the hook did not run
    /// ```
    pub fn remove(self) {
        if let Some(h) = self.hooks.upgrade() {
            h.remove(self.id);
        }
    }
}

impl std::fmt::Debug for HookHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookHandle").field("id", &self.id).finish()
    }
}

impl Tensor {
    /// Registers a hook called with the gradient with respect to this tensor each time a backward
    /// pass (or [`grad`](crate::autograd::grad)) computes it, like PyTorch's
    /// `Tensor.register_hook`. Returning `Some(g)` replaces the gradient: for a leaf, before it is
    /// accumulated into `.grad` (or returned by `grad`); for a non-leaf, before it flows on to the
    /// inputs of the op that made the tensor (and into `.grad` after
    /// [`retain_grad`](Tensor::retain_grad)). Returning `None` leaves it unchanged.
    ///
    /// Several hooks run in registration order, each seeing the previous one's result. A leaf used
    /// several times in the graph gets its gradients summed first: its hooks run once per pass.
    /// Under `create_graph` the gradient given to the hook is on the tape, and a replacement built
    /// with tensor ops stays differentiable. Under [`grad`](crate::autograd::grad), hooks of leaves
    /// other than the requested inputs do not run (nothing is computed for them), as in PyTorch;
    /// hooks of non-leaves run for every non-leaf the walk passes.
    ///
    /// ```
    /// use tapegrad::prelude::*;
    /// let x = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
    /// let y = &x * 3.0; // dy/dx = 3
    /// let _h = y.register_hook(|g| Some(g * 2.0)); // double the gradient flowing through y
    /// y.sum().backward();
    /// assert_eq!(x.grad().unwrap().to_vec::<f32>(), vec![6.0, 6.0]);
    /// ```
    ///
    /// # Panics
    /// If the tensor does not require grad, or if it is a non-leaf computed on another thread
    /// (its tape entry lives on that thread). During backward, if a hook returns a gradient of
    /// another shape or dtype.
    #[track_caller]
    pub fn register_hook<F>(&self, f: F) -> HookHandle
    where
        F: Fn(&Tensor) -> Option<Tensor> + Send + Sync + 'static,
    {
        self.add_hook("register_hook", Hook::Tensor(Arc::new(f)))
    }

    /// Registers a hook called with this leaf right after its `.grad` has been accumulated in a
    /// backward pass, like PyTorch's `Tensor.register_post_accumulate_grad_hook`: the leaf's
    /// gradient is final for this pass (a leaf used several times in the graph gets its
    /// contributions summed first, and the hook fires once). It does not run under
    /// [`grad`](crate::autograd::grad), which accumulates nothing.
    ///
    /// This is where data-parallel training starts reducing a parameter's gradient while the rest
    /// of backward goes on, and where an optimizer can step a parameter inside backward.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use tapegrad::prelude::*;
    /// let w = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let s = seen.clone();
    /// let _h = w.register_post_accumulate_grad_hook(move |p| {
    ///     s.lock().unwrap().push(p.grad().unwrap().to_vec::<f32>())
    /// });
    /// (&w * &w + &w).sum().backward(); // w used three times: d/dw = 2w + 1
    /// assert_eq!(*seen.lock().unwrap(), vec![vec![3.0, 5.0]]); // once, with the final grad
    /// ```
    ///
    /// # Panics
    /// If the tensor is not a leaf or does not require grad.
    #[track_caller]
    pub fn register_post_accumulate_grad_hook<F>(&self, f: F) -> HookHandle
    where
        F: Fn(&Tensor) + Send + Sync + 'static,
    {
        if !self.is_leaf() {
            panic!(
                "register_post_accumulate_grad_hook: post accumulate grad hooks cannot be \
                 registered on non-leaf tensors (this one was made by '{}'), at {}",
                self.grad_fn().unwrap_or("an op of another thread"),
                Location::caller()
            );
        }
        self.add_hook(
            "register_post_accumulate_grad_hook",
            Hook::Post(Arc::new(f)),
        )
    }

    #[track_caller]
    fn add_hook(&self, op: &str, hook: Hook) -> HookHandle {
        if !self.requires_grad_enabled() {
            panic!(
                "{op}: cannot register a hook on a tensor that does not require grad (shape \
                 {:?}), at {}",
                self.shape(),
                Location::caller()
            );
        }
        let hooks = match self.node() {
            None => self
                .inner
                .hooks
                .get_or_init(|| Arc::new(Hooks::new(true)))
                .clone(),
            Some(n) => {
                let Some(entry) = tape::get(n) else {
                    panic!(
                        "{op}: this tensor (shape {:?}) was computed on another thread; register \
                         hooks on the thread that computed it, at {}",
                        self.shape(),
                        Location::caller()
                    );
                };
                entry
                    .hooks
                    .get_or_init(|| Arc::new(Hooks::new(false)))
                    .clone()
            }
        };
        let id = hooks.add(hook);
        HookHandle {
            hooks: Arc::downgrade(&hooks),
            id,
        }
    }

    /// The hooks of this leaf, if any were ever registered.
    pub(crate) fn leaf_hooks(&self) -> Option<&Arc<Hooks>> {
        self.inner.hooks.get()
    }
}

/// Storage for a leaf's hooks in the tensor's shared state (set once, on the first registration).
pub(crate) type LeafHooks = OnceLock<Arc<Hooks>>;

type Callback = Box<dyn FnOnce()>;

thread_local! {
    /// One queue per backward pass running on this thread (a hook may itself run a backward).
    static CALLBACKS: RefCell<Vec<Vec<Callback>>> = const { RefCell::new(Vec::new()) };
}

/// Queues `f` to run once, on this thread, when the backward pass that is running (a `backward`,
/// `backward_with`, `backward_opts` or [`grad`](crate::autograd::grad)) has walked the whole tape,
/// after all its hooks; like PyTorch's `Variable._execution_engine.queue_callback`. Call it from
/// inside a hook. Callbacks run in the order they were queued, and may queue more.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use tapegrad::prelude::*;
/// use tapegrad::autograd::queue_callback;
/// let w = Tensor::from_vec(vec![1.0, 2.0], &[2]).requires_grad();
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let l = log.clone();
/// let _h = w.register_post_accumulate_grad_hook(move |_| {
///     l.lock().unwrap().push("hook");
///     let l = l.clone();
///     queue_callback(move || l.lock().unwrap().push("end of backward"));
/// });
/// w.sum().backward();
/// assert_eq!(*log.lock().unwrap(), vec!["hook", "end of backward"]);
/// ```
///
/// # Panics
/// If no backward pass is running on this thread.
#[track_caller]
pub fn queue_callback<F: FnOnce() + 'static>(f: F) {
    let queued = CALLBACKS.with(|c| match c.borrow_mut().last_mut() {
        Some(q) => {
            q.push(Box::new(f));
            true
        }
        None => false,
    });
    if !queued {
        panic!(
            "queue_callback: no backward pass is running on this thread; call it from inside a \
             hook during backward, at {}",
            Location::caller()
        );
    }
}

/// Opens the callback queue of a backward pass; it is discarded if the pass unwinds.
pub(crate) fn begin_pass() -> PassGuard {
    CALLBACKS.with(|c| c.borrow_mut().push(Vec::new()));
    PassGuard { done: false }
}

/// The callback queue of one backward pass (see [`begin_pass`]).
pub(crate) struct PassGuard {
    done: bool,
}

impl PassGuard {
    /// Runs the queued callbacks (and those they queue), then closes the queue.
    pub(crate) fn finish(mut self) {
        loop {
            let batch = CALLBACKS.with(|c| std::mem::take(c.borrow_mut().last_mut().unwrap()));
            if batch.is_empty() {
                break;
            }
            for f in batch {
                f();
            }
        }
        self.done = true;
        CALLBACKS.with(|c| c.borrow_mut().pop());
    }
}

impl Drop for PassGuard {
    fn drop(&mut self) {
        if !self.done {
            // Unwinding out of the pass (a hook or a rule panicked): drop its callbacks so that
            // the next pass starts clean.
            let q = CALLBACKS.with(|c| c.borrow_mut().pop());
            drop(q);
        }
    }
}
