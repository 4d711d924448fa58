//! [`ProcessGroup`] and [`Work`]: the collectives as users call them, written once over the
//! [`Transport`] trait that each backend implements (threads in `threads.rs`, MPI in `mpi.rs`).
//!
//! A collective is turned into a [`Contribution`] (which op, the tensor's shape, its elements as
//! a flat [`Payload`]), numbered, and handed to the transport, which returns at once with a
//! [`Ticket`]; waiting on the ticket gives the [`Outcome`], which is written back into the
//! tensor. Blocking collectives are the asynchronous ones followed by a wait, so every
//! collective of a group, blocking or not, runs in the order it was issued.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::payload::{check_reducible, Kind, Payload};
use super::ReduceOp;
use crate::tensor::Tensor;
use crate::{Error, Result};

/// Which collective a rank called, with the arguments every rank must agree on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coll {
    Barrier,
    Broadcast { src: usize },
    AllReduce(ReduceOp),
    AllGather,
    ReduceScatter(ReduceOp),
    AllGatherBytes,
}

impl Coll {
    /// The op's name as users call it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Coll::Barrier => "barrier",
            Coll::Broadcast { .. } => "broadcast",
            Coll::AllReduce(_) => "all_reduce",
            Coll::AllGather => "all_gather",
            Coll::ReduceScatter(_) => "reduce_scatter",
            Coll::AllGatherBytes => "all_gather_bytes",
        }
    }

    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    /// Two small integers for headers sent between processes.
    pub(crate) fn code(self) -> [i64; 2] {
        let op = |op: ReduceOp| op as i64;
        match self {
            Coll::Barrier => [1, 0],
            Coll::Broadcast { src } => [2, src as i64],
            Coll::AllReduce(o) => [3, op(o)],
            Coll::AllGather => [4, 0],
            Coll::ReduceScatter(o) => [5, op(o)],
            Coll::AllGatherBytes => [6, 0],
        }
    }

    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    /// The collective of a header's [`code`](Coll::code).
    pub(crate) fn from_code(c: [i64; 2]) -> Option<Coll> {
        let op = |v: i64| ReduceOp::ALL.get(usize::try_from(v).ok()?).copied();
        Some(match c[0] {
            1 => Coll::Barrier,
            2 => Coll::Broadcast {
                src: usize::try_from(c[1]).ok()?,
            },
            3 => Coll::AllReduce(op(c[1])?),
            4 => Coll::AllGather,
            5 => Coll::ReduceScatter(op(c[1])?),
            6 => Coll::AllGatherBytes,
            _ => return None,
        })
    }
}

impl fmt::Display for Coll {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Coll::Broadcast { src } => write!(f, "broadcast(src={src})"),
            Coll::AllReduce(op) | Coll::ReduceScatter(op) => write!(f, "{}({op:?})", self.name()),
            _ => f.write_str(self.name()),
        }
    }
}

/// "all_reduce #17": how errors name the `seq`-th collective of a group (counted from 1).
pub(crate) fn label(coll: Coll, seq: u64) -> String {
    format!("{} #{seq}", coll.name())
}

/// One rank's part of a collective.
#[derive(Clone, Debug)]
pub(crate) struct Contribution {
    pub(crate) coll: Coll,
    /// The tensor's shape (`[len]` for bytes, `[]` for a barrier).
    pub(crate) shape: Vec<usize>,
    pub(crate) kind: Kind,
    /// The elements this rank sends (empty where it only receives, as a broadcast's non-source).
    pub(crate) payload: Payload,
}

/// What a rank gets back from a collective.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A barrier.
    Done,
    /// The new value of the tensor (broadcast, all_reduce) or this rank's chunk (reduce_scatter).
    One(Payload),
    /// Every rank's payload, in rank order (all_gather).
    Each(Vec<Payload>),
}

/// Waits for a submitted collective; enforces the deadline given at submission.
pub(crate) type Ticket = Box<dyn FnOnce() -> Result<Outcome> + Send>;

/// What a backend provides: numbered, non-blocking submission in issue order, and notice that a
/// rank has left.
pub(crate) trait Transport: Send + Sync {
    fn rank(&self) -> usize;
    fn world_size(&self) -> usize;
    /// Starts collective number `seq` (1, 2, … on every rank, in issue order); returns without
    /// waiting for the other ranks.
    fn submit(&self, seq: u64, c: Contribution, deadline: Instant) -> Result<Ticket>;
    /// Tells the other ranks that this one issued `issued` collectives and will issue no more,
    /// because of `reason`; their pending collectives that it never reached fail at once.
    fn leave(&self, issued: u64, reason: &str);
}

/// Checks that every rank called the same collective on tensors of one dtype and shape, given
/// each rank's contribution in rank order (headers, for MPI).
pub(crate) fn check_matching(seq: u64, parts: &[(Coll, Kind, &[usize])]) -> Result<()> {
    let (c0, k0, s0) = parts[0];
    let what = label(c0, seq);
    if let Some(r) = parts.iter().position(|p| p.0 != c0) {
        let calls: Vec<String> = parts
            .iter()
            .enumerate()
            .map(|(r, p)| format!("rank {r}: {}", p.0))
            .collect();
        return Err(Error::Distributed(format!(
            "{what}: the ranks called different collectives as their collective #{seq} (rank {r} \
             differs from rank 0; {}): every rank must issue the same collectives in the same \
             order",
            calls.join(", ")
        )));
    }
    let differs =
        |p: &(Coll, Kind, &[usize])| p.1 != k0 || (c0 != Coll::AllGatherBytes && p.2 != s0);
    if parts.iter().any(differs) {
        let each: Vec<String> = parts
            .iter()
            .enumerate()
            .map(|(r, p)| format!("rank {r} has {} {:?}", p.1, p.2))
            .collect();
        return Err(Error::Distributed(format!(
            "{what}: the tensors differ across ranks ({}); every rank must pass a tensor of the \
             same dtype and shape",
            each.join(", ")
        )));
    }
    Ok(())
}

/// A group of ranks that run collectives together, like `torch.distributed`'s `ProcessGroup`.
///
/// Cheap to clone (clones are handles on one group) and `Send + Sync`. Every rank must issue the
/// same collectives in the same order; on one rank, collectives run in the order they were
/// issued, whether blocking or asynchronous. See the [module docs](super) for an example.
///
/// Collectives are not recorded on the tape (torch.distributed's are not differentiable either):
/// they read the tensor's values when issued and write their result into it in place, as
/// [`Tensor::assign`] does, whether or not it requires grad, so every handle on the tensor sees
/// the result. Non-contiguous tensors are read through their strides.
#[derive(Clone)]
pub struct ProcessGroup {
    inner: Arc<GroupInner>,
}

struct GroupInner {
    transport: Box<dyn Transport>,
    backend: &'static str,
    timeout_ms: AtomicU64,
    issue: Mutex<IssueState>,
}

struct IssueState {
    /// Collectives issued so far (the next one is `issued + 1`).
    issued: u64,
    /// Why this rank left the group, once it has.
    left: Option<String>,
}

impl fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ProcessGroup({}, rank {} of {})",
            self.inner.backend,
            self.rank(),
            self.world_size()
        )
    }
}

impl ProcessGroup {
    pub(crate) fn new(
        transport: Box<dyn Transport>,
        backend: &'static str,
        timeout: Duration,
    ) -> ProcessGroup {
        ProcessGroup {
            inner: Arc::new(GroupInner {
                transport,
                backend,
                timeout_ms: AtomicU64::new(timeout.as_millis() as u64),
                issue: Mutex::new(IssueState {
                    issued: 0,
                    left: None,
                }),
            }),
        }
    }

    /// This process's (or thread's) rank in the group, `0..world_size()`, like `dist.get_rank()`.
    pub fn rank(&self) -> usize {
        self.inner.transport.rank()
    }

    /// The number of ranks in the group, like `dist.get_world_size()`.
    pub fn world_size(&self) -> usize {
        self.inner.transport.world_size()
    }

    /// The backend's name: `"threads"` or `"mpi"`.
    pub fn backend(&self) -> &'static str {
        self.inner.backend
    }

    /// How long a collective may wait for the other ranks before it fails.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.inner.timeout_ms.load(Ordering::Relaxed))
    }

    /// Sets the timeout of collectives issued from now on (on this rank; set it on every rank).
    pub fn set_timeout(&self, d: Duration) {
        self.inner
            .timeout_ms
            .store(d.as_millis().max(1) as u64, Ordering::Relaxed);
    }

    /// Whether two handles refer to the same group.
    pub fn same(&self, other: &ProcessGroup) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// Numbers the contribution and hands it to the backend, under the issue lock so that the
    /// numbering is the submission order.
    fn issue(&self, c: Contribution) -> Result<(String, Ticket)> {
        let mut st = self.inner.issue.lock().unwrap_or_else(|e| e.into_inner());
        let seq = st.issued + 1;
        let what = label(c.coll, seq);
        if let Some(why) = &st.left {
            return Err(Error::Distributed(format!(
                "{what}: this rank ({}) has left the process group ({why})",
                self.rank()
            )));
        }
        let deadline = Instant::now() + self.timeout();
        let ticket = self.inner.transport.submit(seq, c, deadline)?;
        st.issued = seq;
        Ok((what, ticket))
    }

    /// Leaves the group: this rank issues no more collectives, and the others' collectives that
    /// it never reached fail at once with `reason`. Later calls do nothing.
    pub(crate) fn leave(&self, reason: &str) {
        let mut st = self.inner.issue.lock().unwrap_or_else(|e| e.into_inner());
        if st.left.is_none() {
            st.left = Some(reason.to_owned());
            self.inner.transport.leave(st.issued, reason);
        }
    }

    fn tensor_part(&self, coll: Coll, t: &Tensor, send: bool) -> Contribution {
        let kind = Kind::Tensor(t.dtype());
        Contribution {
            coll,
            shape: t.shape().to_vec(),
            kind,
            payload: if send {
                Payload::of_tensor(t)
            } else {
                Payload::zeros(kind, 0)
            },
        }
    }

    /// Blocks until every rank has reached the barrier, like `dist.barrier()`.
    ///
    /// # Errors
    /// If a rank does not arrive within the [timeout](ProcessGroup::timeout) (the error names the
    /// ranks that did not), if a rank left the group, or if the ranks called different collectives.
    pub fn barrier(&self) -> Result<()> {
        let (_, ticket) = self.issue(Contribution {
            coll: Coll::Barrier,
            shape: vec![],
            kind: Kind::Bytes,
            payload: Payload::Bytes(vec![]),
        })?;
        ticket().map(|_| ())
    }

    /// Copies rank `src`'s values of `t` into `t` on every rank, in place, like
    /// `dist.broadcast(t, src)`.
    ///
    /// # Errors
    /// If `src` is not a rank of the group, if the ranks pass tensors of different shapes or
    /// dtypes, or as [`barrier`](ProcessGroup::barrier).
    pub fn broadcast(&self, t: &Tensor, src: usize) -> Result<()> {
        if src >= self.world_size() {
            return Err(Error::Distributed(format!(
                "broadcast: src {src} is not a rank of this group of {} ranks",
                self.world_size()
            )));
        }
        let part = self.tensor_part(Coll::Broadcast { src }, t, self.rank() == src);
        let (what, ticket) = self.issue(part)?;
        write_back(&what, t, ticket()?)
    }

    /// Reduces `t` over all ranks with `op` and writes the result into `t` on every rank, in
    /// place, like `dist.all_reduce(t, op)`.
    ///
    /// The threads backend reduces in rank order (`((t₀ + t₁) + t₂) + …`), so results are
    /// bitwise reproducible; MPI uses Open MPI's algorithms, deterministic for a given world size
    /// and message size. `Avg` divides the sum by the world size (integers round toward zero).
    /// On bool tensors, `Sum` and `Max` are "any", `Product` and `Min` are "all".
    ///
    /// # Errors
    /// If `op` is `Avg` on a bool tensor, if the ranks pass tensors of different shapes or dtypes,
    /// or as [`barrier`](ProcessGroup::barrier).
    pub fn all_reduce(&self, t: &Tensor, op: ReduceOp) -> Result<()> {
        self.all_reduce_async(t, op)?.wait()
    }

    /// Starts [`all_reduce`](ProcessGroup::all_reduce) and returns at once, like
    /// `dist.all_reduce(t, op, async_op=True)`: the reduction runs in the background, after the
    /// collectives issued before it. [`Work::wait`] writes the result into `t`; until then `t`
    /// keeps its values (the reduction uses the values `t` had when this was called).
    ///
    /// # Errors
    /// At once if `op` is `Avg` on a bool tensor or this rank left the group; the collective's
    /// own failures come from [`Work::wait`].
    pub fn all_reduce_async(&self, t: &Tensor, op: ReduceOp) -> Result<Work> {
        check_reducible("all_reduce", t.dtype(), op)?;
        let (what, ticket) = self.issue(self.tensor_part(Coll::AllReduce(op), t, true))?;
        let t = t.clone();
        Ok(Work {
            ticket,
            finish: Box::new(move |out| write_back(&what, &t, out)),
        })
    }

    /// Every rank's `t`, in rank order, on every rank, like `dist.all_gather(list, t)`.
    ///
    /// # Errors
    /// If the ranks pass tensors of different shapes or dtypes, or as
    /// [`barrier`](ProcessGroup::barrier).
    pub fn all_gather(&self, t: &Tensor) -> Result<Vec<Tensor>> {
        let (what, ticket) = self.issue(self.tensor_part(Coll::AllGather, t, true))?;
        match ticket()? {
            Outcome::Each(parts) => Ok(parts
                .into_iter()
                .map(|p| p.into_tensor(t.shape()))
                .collect()),
            other => Err(unexpected(&what, &other)),
        }
    }

    /// Reduces `t` over all ranks with `op` and gives rank `r` the `r`-th of `world_size()`
    /// equal chunks of the result along dim 0, like `dist.reduce_scatter_tensor(out, t, op)`.
    ///
    /// # Errors
    /// If `t` is a scalar or its dim 0 is not a multiple of the world size, as
    /// [`all_reduce`](ProcessGroup::all_reduce) otherwise.
    pub fn reduce_scatter(&self, t: &Tensor, op: ReduceOp) -> Result<Tensor> {
        let n = self.world_size();
        if t.ndim() == 0 || t.shape()[0] % n != 0 {
            return Err(Error::Distributed(format!(
                "reduce_scatter: dim 0 of the tensor of shape {:?} must split into {n} equal \
                 chunks (one per rank)",
                t.shape()
            )));
        }
        check_reducible("reduce_scatter", t.dtype(), op)?;
        let (what, ticket) = self.issue(self.tensor_part(Coll::ReduceScatter(op), t, true))?;
        let mut shape = t.shape().to_vec();
        shape[0] /= n;
        match ticket()? {
            Outcome::One(p) => Ok(p.into_tensor(&shape)),
            other => Err(unexpected(&what, &other)),
        }
    }

    /// Every rank's `bytes`, in rank order, on every rank (the lengths may differ): for small
    /// metadata, like `dist.all_gather_object`.
    ///
    /// # Errors
    /// As [`barrier`](ProcessGroup::barrier).
    pub fn all_gather_bytes(&self, bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
        let (what, ticket) = self.issue(Contribution {
            coll: Coll::AllGatherBytes,
            shape: vec![bytes.len()],
            kind: Kind::Bytes,
            payload: Payload::Bytes(bytes.to_vec()),
        })?;
        match ticket()? {
            Outcome::Each(parts) => Ok(parts.into_iter().map(Payload::into_bytes).collect()),
            other => Err(unexpected(&what, &other)),
        }
    }

    /// Rank `src`'s `bytes` on every rank (what the other ranks pass is ignored), like
    /// `dist.broadcast_object_list`.
    ///
    /// # Errors
    /// If `src` is not a rank of the group, as [`barrier`](ProcessGroup::barrier) otherwise.
    pub fn broadcast_bytes(&self, bytes: &[u8], src: usize) -> Result<Vec<u8>> {
        if src >= self.world_size() {
            return Err(Error::Distributed(format!(
                "broadcast_bytes: src {src} is not a rank of this group of {} ranks",
                self.world_size()
            )));
        }
        let mine = if self.rank() == src { bytes } else { &[] };
        Ok(self.all_gather_bytes(mine)?.swap_remove(src))
    }
}

fn unexpected(what: &str, out: &Outcome) -> Error {
    Error::Distributed(format!(
        "{what}: the backend returned {out:?} (a tapegrad bug)"
    ))
}

/// Writes a collective's result into `t`, in place for every handle on it.
fn write_back(what: &str, t: &Tensor, out: Outcome) -> Result<()> {
    match out {
        Outcome::One(p) if p.len() == t.numel() && p.kind() == Kind::Tensor(t.dtype()) => {
            t.set_data(p.into_data(t.shape()));
            Ok(())
        }
        other => Err(unexpected(what, &other)),
    }
}

/// A collective running in the background, returned by
/// [`all_reduce_async`](ProcessGroup::all_reduce_async), like PyTorch's `Work`.
///
/// `Send`, so it can be waited on from another thread. Dropping it without waiting lets the
/// collective run to its end on the other ranks' side, but leaves the tensor unchanged.
#[must_use = "the result is written into the tensor by .wait()"]
pub struct Work {
    ticket: Ticket,
    finish: Box<dyn FnOnce(Outcome) -> Result<()> + Send>,
}

impl Work {
    /// Waits for the collective and writes its result into the tensor.
    ///
    /// # Errors
    /// If the collective failed: timeout (naming the ranks that did not arrive), a rank that
    /// left, or tensors that differ across ranks. After one failure the group is broken, and
    /// every later wait returns an error at once.
    pub fn wait(self) -> Result<()> {
        (self.finish)((self.ticket)()?)
    }
}

impl fmt::Debug for Work {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Work")
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    fn send<T: Send>() {}
    is::<ProcessGroup>();
    send::<Work>();
}
