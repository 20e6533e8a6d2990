//! The one plan runner every model uses: compiled plans per input shape on one backend, run
//! asynchronously. Concurrent callers of one shape each run their own copy of its plan (up to
//! [`PARALLEL_PLANS`], more wait for one), so independent forwards overlap: no lock is held
//! across a submit and its readback except the running plan's own.

use crate::error::{Error, Result};
use crate::graph::{Backend, Graph, Outputs, Plan, PlanStats};
use crate::tensor::Tensor;
use futures_util::lock::{Mutex, OwnedMutexGuard};
use std::sync::Arc;

/// Copies of one shape's plan that may run at once (each has its own intermediate buffers).
pub const PARALLEL_PLANS: usize = 4;

/// One copy of a plan; `None` until its first user compiles it (or after a failed compile).
type Slot = Arc<Mutex<Option<Plan>>>;

/// Plans keyed by `K` (usually the input shape) on one backend.
pub(crate) struct Runner<K> {
    backend: Backend,
    /// Keys by recency of use (most recent last), each with its plan copies.
    slots: std::sync::Mutex<Vec<(K, Vec<Slot>)>>,
    /// Distinct keys kept.
    capacity: usize,
    /// (device bytes of the largest plan so far, stats of the last plan run), readable without
    /// waiting for a running forward.
    stats: std::sync::Mutex<(u64, Option<PlanStats>)>,
}

fn relock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a caller got from the slot table.
enum Claim {
    /// An idle copy (or a new empty one), already locked.
    Ready(Slot, OwnedMutexGuard<Option<Plan>>),
    /// Every copy is busy and there are `PARALLEL_PLANS`: wait for this one.
    Wait(Slot),
}

impl<K: PartialEq + Clone> Runner<K> {
    pub fn new(backend: Backend, capacity: usize) -> Self {
        Runner {
            backend,
            slots: std::sync::Mutex::new(Vec::new()),
            capacity: capacity.max(1),
            stats: std::sync::Mutex::new((0, None)),
        }
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Rows per forward so that an f32 intermediate of `row_elems` values per row fits one
    /// storage binding, at most `max`.
    pub fn rows_per_pass(&self, row_elems: usize, max: usize) -> usize {
        let limit = self.backend.device().map_or(u64::MAX, |d| d.max_binding());
        let by_limit = (limit / (row_elems.max(1) as u64 * 4)).max(1) as usize;
        by_limit.min(max.max(1))
    }

    /// An idle copy of `key`'s plan, a new empty one, or (all busy, `limit` copies) one to
    /// wait for. Never waits itself.
    fn claim(&self, key: &K, limit: usize) -> Claim {
        let mut table = relock(&self.slots);
        let i = match table.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                if table.len() == self.capacity {
                    table.remove(0); // copies still running keep their own Arc
                }
                table.push((key.clone(), Vec::new()));
                table.len() - 1
            }
        };
        let entry = table.remove(i);
        table.push(entry);
        let copies = &mut table.last_mut().expect("just pushed").1;
        if let Some((s, g)) = copies
            .iter()
            .find_map(|s| Some((s.clone(), s.try_lock_owned()?)))
        {
            return Claim::Ready(s, g);
        }
        if copies.len() < limit.max(1) {
            let slot: Slot = Arc::new(Mutex::new(None));
            let g = slot.try_lock_owned().expect("a new mutex is free");
            copies.push(slot.clone());
            return Claim::Ready(slot, g);
        }
        // The copies are busy: wait on the one a round-robin over callers picks.
        let pick = copies.len() - 1;
        copies.rotate_left(1);
        Claim::Wait(copies[pick].clone())
    }

    /// Forgets an empty copy whose compile failed for lack of memory.
    fn drop_slot(&self, key: &K, slot: &Slot) {
        let mut table = relock(&self.slots);
        if let Some((_, copies)) = table.iter_mut().find(|(k, _)| k == key) {
            copies.retain(|s| !Arc::ptr_eq(s, slot));
        }
    }

    /// Runs the plan for `key` (compiled from `build()` on first use) on `feeds`.
    pub async fn run(
        &self,
        key: K,
        build: impl Fn() -> Result<Graph>,
        feeds: &[&Tensor],
    ) -> Result<Outputs> {
        let mut limit = PARALLEL_PLANS;
        let mut guard = loop {
            let (slot, mut guard) = match self.claim(&key, limit) {
                Claim::Ready(s, g) => (s, g),
                Claim::Wait(s) => (s.clone(), s.lock_owned().await),
            };
            if guard.is_some() {
                break guard;
            }
            match self.backend.compile_async(Arc::new(build()?), &[]).await {
                Ok(plan) => {
                    *guard = Some(plan);
                    break guard;
                }
                // Another copy would not fit the memory budget: share the existing ones.
                Err(Error::Limit { .. }) if limit > 1 && self.copies(&key) > 1 => {
                    self.drop_slot(&key, &slot);
                    drop(guard);
                    limit = 1;
                }
                Err(e) => return Err(e),
            }
        };
        let plan = guard.as_mut().expect("compiled above");
        let out = plan.run_async(feeds).await?;
        let last = plan.stats();
        let bytes = last.constant_bytes + last.intermediate_bytes + last.io_bytes;
        let mut s = relock(&self.stats);
        *s = (s.0.max(bytes), Some(last));
        Ok(out)
    }

    fn copies(&self, key: &K) -> usize {
        relock(&self.slots)
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0, |(_, c)| c.len())
    }

    /// Device memory of the largest plan run so far (weights + activations + I/O), and the
    /// dispatch count of the last one.
    pub fn memory_and_dispatches(&self) -> (u64, usize) {
        let s = relock(&self.stats);
        (s.0, s.1.as_ref().map_or(0, |st| st.dispatches))
    }

    /// Kernels the last plan run used.
    pub fn kernels(&self) -> Vec<String> {
        let s = relock(&self.stats);
        s.1.as_ref().map_or_else(Vec::new, |st| st.kernels.clone())
    }
}
