//! The one plan runner every model uses: compiled plans per input shape on one backend, run
//! asynchronously; concurrent callers of one model take turns on its plans (an async lock,
//! never held by a blocked thread).

use crate::error::Result;
use crate::graph::{Backend, Graph, Outputs, PlanCache, PlanStats};
use crate::tensor::Tensor;
use futures_util::lock::Mutex;
use std::sync::Arc;

/// Plans keyed by `K` (usually the input shape) on one backend.
pub(crate) struct Runner<K> {
    backend: Backend,
    plans: Mutex<PlanCache<K>>,
    /// (device bytes of the largest plan so far, stats of the last plan run), readable without
    /// waiting for a running forward.
    stats: std::sync::Mutex<(u64, Option<PlanStats>)>,
}

impl<K: PartialEq> Runner<K> {
    pub fn new(backend: Backend, capacity: usize) -> Self {
        Runner {
            backend,
            plans: Mutex::new(PlanCache::new(capacity)),
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

    /// Runs the plan for `key` (compiled from `build()` on first use) on `feeds`.
    pub async fn run(
        &self,
        key: K,
        build: impl FnOnce() -> Result<Graph>,
        feeds: &[&Tensor],
    ) -> Result<Outputs> {
        let mut plans = self.plans.lock().await;
        let backend = &self.backend;
        let plan = plans
            .get_or_build_async(key, || async move {
                backend.compile_async(Arc::new(build()?), &[]).await
            })
            .await?;
        let out = plan.run_async(feeds).await?;
        let last = plan.stats();
        let peak = plans.peak_bytes();
        *self.stats.lock().unwrap_or_else(|p| p.into_inner()) = (peak, Some(last));
        Ok(out)
    }

    /// Device memory of the largest plan run so far (weights + activations + I/O), and the
    /// dispatch count of the last one.
    pub fn memory_and_dispatches(&self) -> (u64, usize) {
        let s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        (s.0, s.1.as_ref().map_or(0, |st| st.dispatches))
    }

    /// Kernels the last plan run used.
    pub fn kernels(&self) -> Vec<String> {
        let s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        s.1.as_ref().map_or_else(Vec::new, |st| st.kernels.clone())
    }
}
