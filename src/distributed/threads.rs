//! The threads backend: collectives between worker threads of one process, in memory.
//!
//! The ranks share a [`Hub`]: a table of open collectives, keyed by their number. Each rank puts
//! its contribution into the entry and returns at once (that is what makes `all_reduce_async`
//! asynchronous here); the last rank to arrive combines the contributions, in rank order, and
//! wakes the others, who each take their part of the outcome. A rank waiting for others checks,
//! whenever it wakes, whether its deadline has passed or whether a missing rank has left the
//! group (its thread returned or panicked), so both fail promptly with an error that names the
//! ranks concerned. After one failure the hub is broken, and every collective fails at once.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::group::{check_matching, label, Coll, Contribution, Outcome, Ticket, Transport};
use super::payload::{reduce_in_rank_order, Payload};
use crate::{Error, Result};

/// The state the ranks of one threads group share.
pub(crate) struct Hub {
    n: usize,
    state: Mutex<HubState>,
    wake: Condvar,
}

struct HubState {
    /// Ranks that have joined (for [`join`]; `n` from the start for [`Hub::full`]).
    joined: usize,
    open: BTreeMap<u64, Entry>,
    /// For each rank that left: how many collectives it issued, and why it left.
    left: Vec<Option<(u64, String)>>,
    /// The first failure; every later collective fails with it.
    broken: Option<String>,
}

/// One collective in progress.
struct Entry {
    parts: Vec<Option<Contribution>>,
    /// Set by the last rank to arrive: the combined result, or why the ranks' calls do not match.
    outcome: Option<std::result::Result<Arc<Combined>, String>>,
    /// Ranks that took their part of the outcome; the entry goes when all have.
    taken: usize,
}

/// A collective's result before each rank takes its part.
enum Combined {
    Done,
    Same(Payload),
    Each(Vec<Payload>),
    Chunks(Vec<Payload>),
}

impl Hub {
    fn new(n: usize, joined: usize) -> Arc<Hub> {
        Arc::new(Hub {
            n,
            state: Mutex::new(HubState {
                joined,
                open: BTreeMap::new(),
                left: vec![None; n],
                broken: None,
            }),
            wake: Condvar::new(),
        })
    }

    /// A hub whose `n` ranks are all present (for `launch`).
    pub(crate) fn full(n: usize) -> Arc<Hub> {
        Hub::new(n, n)
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The transport of rank `rank` on this hub.
    pub(crate) fn transport(self: &Arc<Hub>, rank: usize) -> Box<dyn Transport> {
        Box::new(ThreadsTransport {
            hub: self.clone(),
            rank,
        })
    }
}

/// Combines every rank's contribution (all present, in rank order).
fn combine(seq: u64, parts: &[Contribution], n: usize) -> std::result::Result<Combined, String> {
    let heads: Vec<_> = parts
        .iter()
        .map(|c| (c.coll, c.kind, c.shape.as_slice()))
        .collect();
    check_matching(seq, &heads).map_err(|e| e.to_string())?;
    let payloads: Vec<&Payload> = parts.iter().map(|c| &c.payload).collect();
    Ok(match parts[0].coll {
        Coll::Barrier => Combined::Done,
        Coll::Broadcast { src } => Combined::Same(payloads[src].clone()),
        Coll::AllReduce(op) => Combined::Same(reduce_in_rank_order(&payloads, op)),
        Coll::AllGather | Coll::AllGatherBytes => {
            Combined::Each(payloads.into_iter().cloned().collect())
        }
        Coll::ReduceScatter(op) => {
            let full = reduce_in_rank_order(&payloads, op);
            let chunk = full.len() / n;
            Combined::Chunks((0..n).map(|r| full.slice(r * chunk, chunk)).collect())
        }
    })
}

struct ThreadsTransport {
    hub: Arc<Hub>,
    rank: usize,
}

impl Transport for ThreadsTransport {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.hub.n
    }

    fn submit(&self, seq: u64, c: Contribution, deadline: Instant) -> Result<Ticket> {
        let what = label(c.coll, seq);
        let hub = &self.hub;
        let mut st = hub.lock();
        if let Some(why) = &st.broken {
            return Err(broken(&what, why));
        }
        let n = hub.n;
        let entry = st.open.entry(seq).or_insert_with(|| Entry {
            parts: vec![None; n],
            outcome: None,
            taken: 0,
        });
        entry.parts[self.rank] = Some(c);
        if entry.parts.iter().all(Option::is_some) {
            let parts: Vec<Contribution> =
                entry.parts.iter_mut().map(|p| p.take().unwrap()).collect();
            entry.outcome = Some(combine(seq, &parts, n).map(Arc::new));
            hub.wake.notify_all();
        }
        drop(st);
        let (hub, rank) = (hub.clone(), self.rank);
        Ok(Box::new(move || wait(&hub, rank, seq, &what, deadline)))
    }

    fn leave(&self, issued: u64, reason: &str) {
        let mut st = self.hub.lock();
        st.left[self.rank] = Some((issued, reason.to_owned()));
        self.hub.wake.notify_all();
    }
}

fn broken(what: &str, why: &str) -> Error {
    Error::Distributed(format!("{what}: the process group is broken: {why}"))
}

/// Waits until collective `seq` is complete and takes `rank`'s part, or fails at `deadline`, or
/// as soon as a rank it waits for has left the group.
fn wait(hub: &Hub, rank: usize, seq: u64, what: &str, deadline: Instant) -> Result<Outcome> {
    let mut st = hub.lock();
    loop {
        let entry = st
            .open
            .get_mut(&seq)
            .expect("an entry lives until every rank took its part");
        if let Some(outcome) = entry.outcome.clone() {
            entry.taken += 1;
            if entry.taken == hub.n {
                st.open.remove(&seq);
            }
            let combined = match outcome {
                Ok(c) => c,
                Err(msg) => {
                    st.broken.get_or_insert_with(|| msg.clone());
                    return Err(Error::Distributed(msg));
                }
            };
            return Ok(match &*combined {
                Combined::Done => Outcome::Done,
                Combined::Same(p) => Outcome::One(p.clone()),
                Combined::Each(ps) => Outcome::Each(ps.clone()),
                Combined::Chunks(ps) => Outcome::One(ps[rank].clone()),
            });
        }
        let missing: Vec<usize> = (0..hub.n).filter(|&r| entry.parts[r].is_none()).collect();
        if let Some(why) = &st.broken {
            return Err(broken(what, why));
        }
        let gone: Vec<String> = missing
            .iter()
            .filter_map(|&r| match &st.left[r] {
                Some((issued, why)) if *issued < seq => Some(format!(
                    "rank {r} left the group after {issued} collectives ({why})"
                )),
                _ => None,
            })
            .collect();
        if !gone.is_empty() {
            let msg = format!("{what}: {} before reaching it", gone.join("; "));
            st.broken = Some(msg.clone());
            hub.wake.notify_all();
            return Err(Error::Distributed(msg));
        }
        let now = Instant::now();
        if now >= deadline {
            let msg = format!(
                "{what} timed out on rank {rank}: ranks {missing:?} did not arrive within the \
                 timeout"
            );
            st.broken = Some(msg.clone());
            hub.wake.notify_all();
            return Err(Error::Distributed(msg));
        }
        st = hub
            .wake
            .wait_timeout(st, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Hubs being formed by `init_process_group(Backend::Threads(n))` outside `launch`, by world size.
fn forming() -> &'static Mutex<HashMap<usize, Arc<Hub>>> {
    static FORMING: OnceLock<Mutex<HashMap<usize, Arc<Hub>>>> = OnceLock::new();
    FORMING.get_or_init(Default::default)
}

/// Joins the group of `n` threads being formed (ranks in order of arrival) and waits, up to
/// `timeout`, for all `n` to join. Returns the hub and this thread's rank.
pub(crate) fn join(n: usize, timeout: Duration) -> Result<(Arc<Hub>, usize)> {
    let deadline = Instant::now() + timeout;
    let (hub, rank) = {
        let mut forming = forming().lock().unwrap_or_else(|e| e.into_inner());
        let hub = forming.entry(n).or_insert_with(|| Hub::new(n, 0)).clone();
        let mut st = hub.lock();
        let rank = st.joined;
        st.joined += 1;
        if st.joined == n {
            forming.remove(&n);
            hub.wake.notify_all();
        }
        drop(st);
        (hub, rank)
    };
    let mut st = hub.lock();
    while st.joined < n {
        if let Some(why) = &st.broken {
            return Err(Error::Distributed(why.clone()));
        }
        let now = Instant::now();
        if now >= deadline {
            let msg = format!(
                "init_process_group: only {} of {n} threads joined the group within {timeout:?} \
                 (ranks {:?} never joined)",
                st.joined,
                (st.joined..n).collect::<Vec<_>>()
            );
            st.broken = Some(msg.clone());
            drop(st);
            let mut forming = forming().lock().unwrap_or_else(|e| e.into_inner());
            if forming.get(&n).is_some_and(|h| Arc::ptr_eq(h, &hub)) {
                forming.remove(&n);
            }
            hub.wake.notify_all();
            return Err(Error::Distributed(msg));
        }
        st = hub
            .wake
            .wait_timeout(st, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    drop(st);
    Ok((hub, rank))
}
