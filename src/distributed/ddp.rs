//! [`DistributedDataParallel`]: data-parallel training of one model replica per rank, with the
//! gradients averaged over the ranks during backward, like `torch.nn.parallel.DistributedDataParallel`.
//!
//! How it works (PyTorch's `Reducer`, in short):
//!
//! - At construction every rank exchanges the names, dtypes and shapes of its parameters and
//!   buffers (a mismatch is an error on every rank), then rank 0's values are broadcast, so all
//!   replicas start equal.
//! - The parameters are split into *buckets* in reverse registration order (≈ the order in which
//!   backward produces their gradients): the first bucket holds up to
//!   [`first_bucket_cap_mb`](DdpOptions::first_bucket_cap_mb) (1 MiB, PyTorch's
//!   `_DEFAULT_FIRST_BUCKET_BYTES`), the others up to [`bucket_cap_mb`](DdpOptions::bucket_cap_mb)
//!   (25 MiB). Parameters of different dtypes never share a bucket.
//! - Each parameter gets a post-accumulate-grad hook. When backward has produced the final
//!   gradient of every parameter of a bucket, the gradients are flattened into one buffer, divided
//!   by the world size and summed over the ranks with an asynchronous `all_reduce` while backward
//!   goes on computing the gradients of earlier layers (the overlap). Buckets are launched in
//!   order, so every rank issues the same collectives in the same order.
//! - A callback queued for the end of backward waits for every bucket and writes the averaged
//!   gradients back into each parameter's `.grad`. When backward returns, every rank holds the
//!   same gradients, and `optimizer.step()` keeps the replicas equal.
//!
//! Failures during backward (a rank that died, a collective that timed out, parameters that got
//! no gradient) are raised as a panic out of `backward()` at its end, with a message naming the
//! bucket, the collective and the cause: backward returns `()`, and PyTorch raises there too.

use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::autograd::tape;
use crate::distributed::{ProcessGroup, ReduceOp, Work};
use crate::nn::{Forward, Module, Visitor};
use crate::tensor::{DType, Tensor};
use crate::{Error, Result};

/// Bytes in a MiB: `bucket_cap_mb` counts MiB, as PyTorch's does (`bucket_cap_mb * 1024 * 1024`).
const MIB: f64 = 1024.0 * 1024.0;

/// Options of [`DistributedDataParallel::with_options`], named like PyTorch's keyword arguments.
#[derive(Clone, Debug)]
pub struct DdpOptions {
    /// Maximum size of a gradient bucket in MiB (25 in PyTorch). Smaller buckets start their
    /// all-reduce earlier (more overlap) but pay the per-message latency more often.
    pub bucket_cap_mb: f64,
    /// Maximum size of the first bucket (the last parameters, whose gradients are ready first)
    /// in MiB: 1 MiB as PyTorch's `dist._DEFAULT_FIRST_BUCKET_BYTES`, so that communication
    /// starts early. Capped at `bucket_cap_mb`.
    pub first_bucket_cap_mb: f64,
    /// Find, after each forward, the parameters the output does not depend on and reduce their
    /// gradient as zeros, so models whose forward skips parameters (branches, frozen heads) can
    /// train. Costs a walk of the tape per forward. Without it, a parameter that gets no gradient
    /// is an error at the end of backward.
    pub find_unused_parameters: bool,
    /// Broadcast rank 0's buffers (BatchNorm's running statistics) at the start of every
    /// training forward, so all replicas evaluate alike.
    pub broadcast_buffers: bool,
}

impl Default for DdpOptions {
    /// PyTorch's defaults: 25 MiB buckets (1 MiB first), no unused-parameter search, buffers
    /// broadcast.
    fn default() -> Self {
        DdpOptions {
            bucket_cap_mb: 25.0,
            first_bucket_cap_mb: 1.0,
            find_unused_parameters: false,
            broadcast_buffers: true,
        }
    }
}

/// A model replicated on every rank of a [`ProcessGroup`], whose gradients are averaged over the
/// ranks during backward, like `torch.nn.parallel.DistributedDataParallel`.
///
/// Each rank runs the same program on its own share of the data (see `DistributedSampler`):
/// forward through the wrapper, `loss.backward()`, `optimizer.step()`. After backward every
/// rank's `.grad` is the average of all ranks' gradients, so the replicas stay equal and the
/// result is that of one process training on the union of the ranks' batches (for a loss that is
/// a mean over the batch, with equal per-rank batch sizes).
///
/// The wrapper is a [`Module`] whose parameters are the wrapped model's under the prefix
/// `module.` (as in PyTorch, so `state_dict` keys read `module.fc.weight`); save
/// [`module`](DistributedDataParallel::module)'s `state_dict` to get the plain keys.
///
/// ```
/// use tapegrad::prelude::*;
/// use tapegrad::distributed::{launch, Backend};
/// use tapegrad::nn::{self, Forward, Module};
/// use tapegrad::nn::parallel::DistributedDataParallel;
/// use tapegrad::optim::{Optimizer, SGD};
///
/// # fn main() -> tapegrad::Result<()> {
/// // two ranks as two threads of this process (Backend::Mpi runs one rank per process)
/// let weights = launch(Backend::Threads(2), |pg| {
///     let model = DistributedDataParallel::new(nn::Linear::new(3, 1), &pg).unwrap();
///     let mut opt = SGD::new(model.parameters(), 0.1);
///     // each rank sees a different batch
///     let x = Tensor::full(&[4, 3], pg.rank() as f32 + 1.0);
///     let loss = model.forward(&x).powf(2.0).mean();
///     opt.zero_grad();
///     loss.backward(); // gradients averaged over both ranks here
///     opt.step();
///     model.module.weight.to_vec::<f32>()
/// })?;
/// assert_eq!(weights[0], weights[1]); // the replicas stay equal
/// # Ok(())
/// # }
/// ```
pub struct DistributedDataParallel<M> {
    /// The wrapped model (`ddp.module` in PyTorch).
    pub module: M,
    reducer: Arc<Reducer>,
    buffers: Vec<(String, Tensor)>,
    options: DdpOptions,
    _hooks: Hooks,
}

/// The wrapper's gradient hooks, removed when it is dropped or unwrapped.
struct Hooks(Vec<crate::autograd::HookHandle>);

impl Drop for Hooks {
    fn drop(&mut self) {
        for h in self.0.drain(..) {
            h.remove();
        }
    }
}

impl<M: Module> DistributedDataParallel<M> {
    /// Wraps `model` with PyTorch's default options (see [`DdpOptions`]).
    ///
    /// # Errors
    /// As [`with_options`](DistributedDataParallel::with_options).
    #[track_caller]
    pub fn new(model: M, group: &ProcessGroup) -> Result<Self> {
        Self::with_options(model, group, DdpOptions::default())
    }

    /// Wraps `model`: checks that every rank holds the same parameters and buffers (names, dtypes
    /// and shapes), copies rank 0's values to every rank, and registers the hooks that reduce the
    /// gradients during backward.
    ///
    /// This is a collective: every rank of `group` must call it.
    ///
    /// # Errors
    /// On every rank, if the ranks' parameters or buffers differ (naming the first differing one
    /// and the ranks that differ from rank 0), if a collective fails (a rank did not join within
    /// the group's timeout), or if the bucket caps are not positive.
    #[track_caller]
    pub fn with_options(model: M, group: &ProcessGroup, options: DdpOptions) -> Result<Self> {
        let loc = Location::caller();
        if !(options.bucket_cap_mb > 0.0 && options.first_bucket_cap_mb > 0.0) {
            return Err(dist_error(format!(
                "DistributedDataParallel: bucket_cap_mb ({}) and first_bucket_cap_mb ({}) must \
                 be positive, at {loc}",
                options.bucket_cap_mb, options.first_bucket_cap_mb
            )));
        }
        let params = model.named_parameters();
        let buffers = model.named_buffers();
        verify_same_across_ranks(group, &params, &buffers)?;
        {
            let _no_grad = crate::autograd::no_grad();
            for (name, t) in params.iter().chain(&buffers) {
                group.broadcast(t, 0).map_err(|e| {
                    dist_error(format!(
                        "DistributedDataParallel: broadcasting rank 0's '{name}' failed: {e}"
                    ))
                })?;
            }
        }
        let trainable: Vec<(String, Tensor)> = params
            .into_iter()
            .filter(|(_, t)| t.requires_grad_enabled())
            .collect();
        let sizes: Vec<(usize, DType)> = trainable
            .iter()
            .map(|(_, t)| (t.numel() * t.dtype().size_in_bytes(), t.dtype()))
            .collect();
        let cap = (options.bucket_cap_mb * MIB) as usize;
        let first_cap = ((options.first_bucket_cap_mb * MIB) as usize).min(cap);
        let buckets = assign_buckets(&sizes, first_cap.max(1), cap.max(1));
        let mut bucket_of = vec![(0, 0); trainable.len()];
        for (b, members) in buckets.iter().enumerate() {
            for (k, &i) in members.iter().enumerate() {
                bucket_of[i] = (b, k);
            }
        }
        let reducer = Arc::new(Reducer {
            group: group.clone(),
            names: trainable.iter().map(|(n, _)| n.clone()).collect(),
            params: trainable.into_iter().map(|(_, t)| t).collect(),
            buckets,
            bucket_of,
            find_unused: options.find_unused_parameters,
            require_sync: AtomicBool::new(true),
            pass: Mutex::new(Pass::default()),
        });
        let hooks = reducer
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let weak = Arc::downgrade(&reducer);
                p.register_post_accumulate_grad_hook(move |_p: &Tensor| {
                    if let Some(r) = weak.upgrade() {
                        r.mark_ready(i);
                    }
                })
            })
            .collect();
        Ok(DistributedDataParallel {
            module: model,
            reducer,
            buffers,
            options,
            _hooks: Hooks(hooks),
        })
    }

    /// The process group the gradients are reduced over.
    pub fn process_group(&self) -> &ProcessGroup {
        &self.reducer.group
    }

    /// The options the wrapper was built with.
    pub fn options(&self) -> &DdpOptions {
        &self.options
    }

    /// The buckets, as lists of the parameters' dotted names (of the wrapped model), in the
    /// order they are reduced: the first holds the last-registered parameters.
    pub fn bucket_names(&self) -> Vec<Vec<String>> {
        let r = &self.reducer;
        r.buckets
            .iter()
            .map(|b| b.iter().map(|&i| r.names[i].clone()).collect())
            .collect()
    }

    /// Runs a forward pass through `f` (for models whose forward is not [`Forward`], e.g. one
    /// that takes a mask) and prepares the gradient reduction of the backward from its output.
    ///
    /// # Panics
    /// If broadcasting the buffers fails (a rank died or timed out), naming the buffer.
    #[track_caller]
    pub fn forward_with(&self, f: impl FnOnce(&M) -> Tensor) -> Tensor {
        self.sync_buffers();
        let out = f(&self.module);
        self.reducer.prepare_for_backward(&[&out]);
        out
    }

    /// Disables the gradient reduction until the guard is dropped, like `with ddp.no_sync():`.
    ///
    /// Forward and backward passes run while the guard lives accumulate gradients locally; the
    /// first backward after it (of a forward run without the guard) reduces the accumulated
    /// gradients. This is gradient accumulation over `k` micro-batches with one all-reduce
    /// instead of `k`:
    ///
    /// ```
    /// # use tapegrad::prelude::*;
    /// # use tapegrad::distributed::{launch, Backend};
    /// # use tapegrad::nn::{self, Forward};
    /// # use tapegrad::nn::parallel::DistributedDataParallel;
    /// # fn main() -> tapegrad::Result<()> {
    /// # launch(Backend::Threads(2), |pg| {
    /// let model = DistributedDataParallel::new(nn::Linear::new(3, 1), &pg).unwrap();
    /// let micro_batches = [Tensor::randn(&[2, 3]), Tensor::randn(&[2, 3])];
    /// {
    ///     let _local = model.no_sync();
    ///     model.forward(&micro_batches[0]).sum().backward(); // local only
    /// }
    /// model.forward(&micro_batches[1]).sum().backward(); // reduces the sum of both
    /// # })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn no_sync(&self) -> NoSync<'_> {
        let previous = self.reducer.require_sync.swap(false, Ordering::SeqCst);
        NoSync {
            flag: &self.reducer.require_sync,
            previous,
        }
    }

    /// Unwraps the model (removing the gradient hooks).
    pub fn into_inner(self) -> M {
        self.module
    }

    /// Broadcasts rank 0's buffers when training (PyTorch's `broadcast_buffers`).
    #[track_caller]
    fn sync_buffers(&self) {
        if !self.options.broadcast_buffers
            || self.buffers.is_empty()
            || self.reducer.group.world_size() == 1
            || !self.module.is_training()
        {
            return;
        }
        let _no_grad = crate::autograd::no_grad();
        for (name, b) in &self.buffers {
            if let Err(e) = self.reducer.group.broadcast(b, 0) {
                panic!(
                    "DistributedDataParallel: broadcasting buffer '{name}' from rank 0 before the \
                     forward failed on rank {}: {e}, at {}",
                    self.reducer.group.rank(),
                    Location::caller()
                );
            }
        }
    }
}

impl<M: Module> Module for DistributedDataParallel<M> {
    /// The wrapped model under `module`, as PyTorch names it (`module.fc.weight`).
    fn visit(&self, v: &mut Visitor) {
        v.module("module", &self.module);
    }
}

impl<M: Module + Forward> Forward for DistributedDataParallel<M> {
    /// The wrapped model's output; see [`forward_with`](DistributedDataParallel::forward_with).
    #[track_caller]
    fn forward(&self, x: &Tensor) -> Tensor {
        self.forward_with(|m| m.forward(x))
    }
}

impl<M> fmt::Debug for DistributedDataParallel<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DistributedDataParallel")
            .field("rank", &self.reducer.group.rank())
            .field("world_size", &self.reducer.group.world_size())
            .field("parameters", &self.reducer.params.len())
            .field("buckets", &self.reducer.buckets.len())
            .field("options", &self.options)
            .finish()
    }
}

/// The guard of [`DistributedDataParallel::no_sync`]: gradient reduction is off while it lives.
#[must_use = "gradient reduction is only disabled while the guard lives"]
pub struct NoSync<'a> {
    flag: &'a AtomicBool,
    previous: bool,
}

impl Drop for NoSync<'_> {
    fn drop(&mut self) {
        self.flag.store(self.previous, Ordering::SeqCst);
    }
}

/// The gradient reduction state shared by the hooks of one wrapper.
struct Reducer {
    group: ProcessGroup,
    /// The trainable parameters in registration order, and their names.
    params: Vec<Tensor>,
    names: Vec<String>,
    /// Parameter indices of each bucket, in reduction order.
    buckets: Vec<Vec<usize>>,
    /// (bucket, position in it) of each parameter.
    bucket_of: Vec<(usize, usize)>,
    find_unused: bool,
    /// Off under `no_sync`.
    require_sync: AtomicBool,
    pass: Mutex<Pass>,
}

/// What one forward/backward pair has done so far.
#[derive(Default)]
struct Pass {
    /// A forward prepared this pass; the hooks reduce (false under `no_sync` and after the pass).
    armed: bool,
    ready: Vec<bool>,
    /// Parameters not yet ready, per bucket.
    pending: Vec<usize>,
    /// The next bucket to launch (buckets launch in order).
    next_bucket: usize,
    /// Launched buckets: index, flat buffer, the all-reduce in flight.
    launched: Vec<(usize, Tensor, Work)>,
    /// Parameters the output does not depend on (find_unused_parameters), marked ready at the
    /// first hook, and the all-reduce of the used-parameter mask.
    unused: Vec<usize>,
    used_mask: Option<(Tensor, Work)>,
    marked_unused: bool,
    callback_queued: bool,
    /// The first error met while launching (reported at the end of backward).
    error: Option<String>,
}

impl Reducer {
    fn lock(&self) -> MutexGuard<'_, Pass> {
        self.pass.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Arms the hooks for the backward of `outputs` (PyTorch's `prepare_for_backward`).
    fn prepare_for_backward(&self, outputs: &[&Tensor]) {
        let mut pass = self.lock();
        *pass = Pass::default();
        if !self.require_sync.load(Ordering::SeqCst)
            || !crate::autograd::is_grad_enabled()
            || !outputs.iter().any(|o| o.requires_grad_enabled())
        {
            return;
        }
        pass.armed = true;
        pass.ready = vec![false; self.params.len()];
        pass.pending = self.buckets.iter().map(Vec::len).collect();
        if self.find_unused {
            let used = tape::reachable_leaves(outputs);
            let mask: Vec<f32> = self
                .params
                .iter()
                .map(|p| used.iter().any(|u| u.same(p)) as u8 as f32)
                .collect();
            pass.unused = (0..self.params.len()).filter(|&i| mask[i] == 0.0).collect();
            // Which parameters are used on *some* rank: a parameter unused everywhere keeps its
            // `.grad` untouched, as in PyTorch. Issued now, so it precedes every bucket.
            let mask = Tensor::from_vec(mask, &[self.params.len()]);
            match self.group.all_reduce_async(&mask, ReduceOp::Max) {
                Ok(w) => pass.used_mask = Some((mask, w)),
                Err(e) => pass.error = Some(format!("all_reduce of the used-parameter mask: {e}")),
            }
        }
    }

    /// The post-accumulate-grad hook of parameter `i`: its gradient is final for this backward.
    fn mark_ready(self: &Arc<Self>, i: usize) {
        let mut pass = self.lock();
        if !pass.armed {
            return;
        }
        if !pass.callback_queued {
            pass.callback_queued = true;
            let me = Arc::clone(self);
            crate::autograd::queue_callback(move || me.finalize());
        }
        if !pass.marked_unused {
            pass.marked_unused = true;
            for j in std::mem::take(&mut pass.unused) {
                self.mark_one(&mut pass, j);
            }
        }
        self.mark_one(&mut pass, i);
    }

    fn mark_one(&self, pass: &mut Pass, i: usize) {
        if pass.ready[i] {
            if pass.error.is_none() {
                pass.error = Some(format!(
                    "parameter '{}' was marked ready twice in one backward pass (was it used \
                     in two backward passes after one forward?)",
                    self.names[i]
                ));
            }
            return;
        }
        pass.ready[i] = true;
        let b = self.bucket_of[i].0;
        pass.pending[b] -= 1;
        while pass.next_bucket < self.buckets.len() && pass.pending[pass.next_bucket] == 0 {
            let b = pass.next_bucket;
            pass.next_bucket += 1;
            self.launch(pass, b);
        }
    }

    /// Flattens bucket `b`'s gradients, divided by the world size, and starts their all-reduce.
    fn launch(&self, pass: &mut Pass, b: usize) {
        let _no_grad = crate::autograd::no_grad();
        let grads: Vec<Tensor> = self.buckets[b]
            .iter()
            .map(|&i| {
                let p = &self.params[i];
                p.grad()
                    .map(|g| g.detach())
                    .unwrap_or_else(|| Tensor::zeros_like(p))
                    .reshape([p.numel()])
            })
            .collect();
        let refs: Vec<&Tensor> = grads.iter().collect();
        let flat = Tensor::cat(&refs, 0).contiguous();
        let world = self.group.world_size();
        if world > 1 {
            // PyTorch's default comm hook: divide first, then sum (no overflow in low precision)
            flat.mul_scalar_(1.0 / world as f64);
        }
        match self.group.all_reduce_async(&flat, ReduceOp::Sum) {
            Ok(w) => pass.launched.push((b, flat, w)),
            Err(e) => {
                if pass.error.is_none() {
                    pass.error = Some(self.bucket_failure(b, &e.to_string()));
                }
            }
        }
    }

    fn bucket_failure(&self, b: usize, why: &str) -> String {
        let bytes: usize = self.buckets[b]
            .iter()
            .map(|&i| self.params[i].numel() * self.params[i].dtype().size_in_bytes())
            .sum();
        format!(
            "all_reduce of gradient bucket {b} of {} ({} parameters from '{}', {:.2} MiB) \
             failed: {why}",
            self.buckets.len(),
            self.buckets[b].len(),
            self.names[self.buckets[b][0]],
            bytes as f64 / MIB
        )
    }

    /// The end of backward: waits for every bucket and writes the averaged gradients back.
    fn finalize(&self) {
        let pass = std::mem::take(&mut *self.lock());
        let rank = self.group.rank();
        let world = self.group.world_size();
        let mut error = pass.error;
        let mut globally_used = None;
        if let Some((mask, work)) = pass.used_mask {
            match work.wait() {
                Ok(()) => globally_used = Some(mask.to_vec::<f32>()),
                Err(e) => {
                    error.get_or_insert(format!("all_reduce of the used-parameter mask: {e}"));
                }
            }
        }
        let _no_grad = crate::autograd::no_grad();
        for (b, flat, work) in pass.launched {
            if let Err(e) = work.wait() {
                error.get_or_insert(self.bucket_failure(b, &e.to_string()));
                continue;
            }
            if error.is_some() {
                continue;
            }
            let mut offset = 0;
            for &i in &self.buckets[b] {
                let p = &self.params[i];
                let n = p.numel();
                let used = globally_used.as_ref().is_none_or(|m| m[i] > 0.0);
                if used {
                    let g = flat.narrow(0, offset as isize, n).reshape(p.shape());
                    p.set_grad(Some(g.contiguous()));
                }
                offset += n;
            }
        }
        if let Some(e) = error {
            panic!(
                "DistributedDataParallel (rank {rank} of {world}): {e}. The gradients of this \
                 backward were not reduced; if a rank died or stopped training, the others stop \
                 here after the process group's timeout ({:?})",
                self.group.timeout()
            );
        }
        if pass.next_bucket < self.buckets.len() {
            let missing: Vec<&str> = (0..self.params.len())
                .filter(|&i| !pass.ready[i])
                .map(|i| self.names[i].as_str())
                .collect();
            panic!(
                "DistributedDataParallel (rank {rank} of {world}): expected every parameter to \
                 receive a gradient in this backward pass, but {} did not: {}. This happens when \
                 the loss does not depend on some parameters (a branch the forward skipped, an \
                 output not used in the loss). Pass DdpOptions {{ find_unused_parameters: true, \
                 .. }} to DistributedDataParallel::with_options to reduce them as zeros, or make \
                 the loss depend on every output of the forward",
                missing.len(),
                missing.join(", ")
            );
        }
    }
}

/// Splits parameters (given by size in bytes and dtype, in registration order) into buckets, as
/// PyTorch's `compute_bucket_assignment_by_size`: walking the parameters in reverse order, each
/// joins the open bucket of its dtype, which closes once it holds at least its cap (`first_cap`
/// for the first bucket of each dtype, `cap` after). Buckets come out in the order they were
/// opened: the first holds the last parameters.
fn assign_buckets(sizes: &[(usize, DType)], first_cap: usize, cap: usize) -> Vec<Vec<usize>> {
    struct Open {
        dtype: DType,
        members: Vec<usize>,
        bytes: usize,
        cap: usize,
    }
    let mut closed: Vec<Vec<usize>> = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    for i in (0..sizes.len()).rev() {
        let (bytes, dtype) = sizes[i];
        let k = match open.iter().position(|o| o.dtype == dtype) {
            Some(k) => k,
            None => {
                open.push(Open {
                    dtype,
                    members: Vec::new(),
                    bytes: 0,
                    cap: first_cap,
                });
                open.len() - 1
            }
        };
        let o = &mut open[k];
        o.members.push(i);
        o.bytes += bytes;
        if o.bytes >= o.cap {
            closed.push(std::mem::take(&mut o.members));
            o.bytes = 0;
            o.cap = cap;
        }
    }
    closed.extend(
        open.into_iter()
            .map(|o| o.members)
            .filter(|m| !m.is_empty()),
    );
    // the first member of a bucket is its highest index: order by it, descending
    closed.sort_by_key(|b| std::cmp::Reverse(b[0]));
    closed
}

/// Checks that every rank holds the same parameter and buffer names, dtypes and shapes.
fn verify_same_across_ranks(
    group: &ProcessGroup,
    params: &[(String, Tensor)],
    buffers: &[(String, Tensor)],
) -> Result<()> {
    let describe = |kind: &str, (name, t): &(String, Tensor)| {
        format!("{kind} '{name}' {:?} {}", t.shape(), t.dtype())
    };
    let mine: Vec<String> = params
        .iter()
        .map(|p| describe("parameter", p))
        .chain(buffers.iter().map(|b| describe("buffer", b)))
        .collect();
    let all = group
        .all_gather_bytes(mine.join("\n").as_bytes())
        .map_err(|e| {
            dist_error(format!(
                "DistributedDataParallel: exchanging the parameter lists failed: {e}"
            ))
        })?;
    let lists: Vec<Vec<String>> = all
        .iter()
        .map(|b| {
            String::from_utf8_lossy(b)
                .split('\n')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect();
    let longest = lists.iter().map(Vec::len).max().unwrap_or(0);
    for k in 0..longest {
        let at = |r: usize| lists[r].get(k).map_or("nothing", String::as_str);
        let differing: Vec<usize> = (1..lists.len()).filter(|&r| at(r) != at(0)).collect();
        if !differing.is_empty() {
            let others: Vec<String> = differing
                .iter()
                .map(|&r| format!("rank {r} has {}", at(r)))
                .collect();
            return Err(dist_error(format!(
                "DistributedDataParallel: the ranks hold different models: at position {k}, \
                 rank 0 has {} but {}. Every rank must build the same model",
                at(0),
                others.join(", ")
            )));
        }
    }
    Ok(())
}

fn dist_error(msg: String) -> Error {
    Error::Distributed(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: DType = DType::F32;

    #[test]
    fn buckets_take_parameters_in_reverse_order_up_to_the_caps() {
        // sizes in bytes: p0 = 100, p1 = 50, p2 = 50, p3 = 10; first cap 40, then cap 100
        let sizes = [(100, F), (50, F), (50, F), (10, F)];
        // walk p3 (10), p2 (60 ≥ 40: close) | p1 (50), p0 (150 ≥ 100: close)
        assert_eq!(
            assign_buckets(&sizes, 40, 100),
            vec![vec![3, 2], vec![1, 0]]
        );
        // a cap above the total: one bucket
        assert_eq!(assign_buckets(&sizes, 1000, 1000), vec![vec![3, 2, 1, 0]]);
        // a cap of one byte: one bucket per parameter
        assert_eq!(
            assign_buckets(&sizes, 1, 1),
            vec![vec![3], vec![2], vec![1], vec![0]]
        );
    }

    #[test]
    fn buckets_never_mix_dtypes() {
        let sizes = [(8, F), (8, DType::F64), (8, F), (8, DType::F64)];
        let b = assign_buckets(&sizes, 1000, 1000);
        // the f64 bucket opens first (p3), then the f32 one (p2)
        assert_eq!(b, vec![vec![3, 1], vec![2, 0]]);
    }
}
