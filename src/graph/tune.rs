//! The generic tuner: before a graph is lowered, every node's [`Tunable`]s that the device's
//! tuning cache lacks are measured, and the fastest candidate is cached. Ops define their
//! tunables beside their kernels; lowering only reads the cache.

use super::{Backend, Graph, Lower};
use crate::device::Device;
use crate::error::Result;
use crate::tensor::Tensor;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use web_time::Instant;

/// Builds the stand-in problem of one candidate: a graph that runs it, and its feeds.
pub type ProblemFn = dyn Fn(&str) -> Result<(Graph, Vec<Tensor>)> + Send + Sync;

/// A kernel-variant choice an op wants measured on the real adapter.
pub struct Tunable {
    /// The tuning-cache key (it should include the candidate set, so adding a kernel
    /// invalidates old choices).
    pub key: String,
    /// Variant names to measure.
    pub candidates: Vec<&'static str>,
    /// The choice when nothing could be measured.
    pub default: &'static str,
    /// The stand-in problem for a candidate; its graph must not itself ask for tuning.
    pub problem: Box<ProblemFn>,
}

impl std::fmt::Debug for Tunable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tunable({} of {:?})", self.key, self.candidates)
    }
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Measures the tunables of `graph`'s nodes that `device` has no cached choice for (when the
/// kernel policy allows autotuning).
pub(crate) fn tune_graph<'a>(device: &'a Device, graph: &'a Graph) -> BoxFuture<'a, Result<()>> {
    // Boxed: measuring compiles stand-in graphs, which comes back here.
    Box::pin(async move {
        if !device.policy().autotune {
            return Ok(());
        }
        let wanted: Vec<Tunable> = {
            let cx = Lower::new(device, graph);
            graph
                .nodes
                .iter()
                .flat_map(|n| n.op.tunables(&cx, &n.inputs))
                .collect()
        };
        for t in wanted {
            if device.tuning().get(&t.key).is_some() {
                continue;
            }
            let choice = measure(device, &t).await.unwrap_or(t.default);
            device.tuning().insert(&t.key, choice);
        }
        Ok(())
    })
}

/// The fastest candidate (median of 3 timed runs after a warm-up), if any ran.
async fn measure(device: &Device, t: &Tunable) -> Option<&'static str> {
    let mut best: Option<(f64, &'static str)> = None;
    for &c in &t.candidates {
        // A candidate that cannot run here is skipped, not fatal.
        if let Ok(secs) = time_candidate(device, t, c).await {
            if best.is_none_or(|(b, _)| secs < b) {
                best = Some((secs, c));
            }
        }
    }
    best.map(|(_, c)| c)
}

async fn time_candidate(device: &Device, t: &Tunable, c: &str) -> Result<f64> {
    let (g, feeds) = (t.problem)(c)?;
    let mut plan = Backend::Gpu(device.clone())
        .compile_async(Arc::new(g), &[])
        .await?;
    let refs: Vec<&Tensor> = feeds.iter().collect();
    plan.run_async(&refs).await?;
    let mut times = Vec::with_capacity(3);
    for _ in 0..3 {
        let t0 = Instant::now();
        plan.run_async(&refs).await?;
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[1])
}
