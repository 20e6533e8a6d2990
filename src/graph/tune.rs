//! The generic tuner: before a graph is lowered, every node's [`Tunable`]s are settled.
//!
//! - A key the device's cache lacks is **measured**: each candidate runs the op's stand-in
//!   problem (the real inner sizes, so the cost is dominated by the same loop), timed with GPU
//!   timestamps when the adapter has them (wall clock otherwise), at least
//!   [`MIN_RUNS`] runs and [`MIN_SECS`] of measured time; a candidate whose first run is
//!   [`ABANDON`]× the best median so far is dropped after that run.
//! - The **decision** keeps the op's default unless a challenger wins clearly: a median at
//!   least [`MARGIN`] faster and the two middle halves of the samples apart ([`decide`]).
//! - A key the cache has is **re-validated** once per process: one short timing of the chosen
//!   kernel; [`RETUNE`]× slower than stored means the choice is measured again.
//!
//! Ops define their tunables beside their kernels; lowering only reads the cache.

use super::{Backend, Graph, Lower};
use crate::device::{Device, TunedChoice};
use crate::error::Result;
use crate::tensor::Tensor;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use web_time::Instant;

/// Builds the stand-in problem of one candidate: a graph that runs it, and its feeds.
pub type ProblemFn = dyn Fn(&str) -> Result<(Graph, Vec<Tensor>)> + Send + Sync;

/// A kernel-variant choice an op wants measured on the real adapter.
pub struct Tunable {
    /// The tuning-cache key (it should include the candidate set, so adding a kernel
    /// invalidates old choices, and the sizes the stand-in problem uses).
    pub key: String,
    /// Variant names to measure.
    pub candidates: Vec<&'static str>,
    /// The choice when nothing could be measured, and the one a challenger must beat clearly.
    pub default: &'static str,
    /// The stand-in problem for a candidate; its graph must not itself ask for tuning.
    pub problem: Box<ProblemFn>,
}

impl std::fmt::Debug for Tunable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tunable({} of {:?})", self.key, self.candidates)
    }
}

/// Timed runs per candidate: at least this many...
pub const MIN_RUNS: usize = 5;
/// ...and at least this much measured time, up to [`MAX_RUNS`].
pub const MIN_SECS: f64 = 0.02;
pub const MAX_RUNS: usize = 15;
/// A challenger must have a median this much faster than the default (10 %).
pub const MARGIN: f64 = 0.10;
/// A candidate whose first run takes this many times the best median so far is abandoned.
pub const ABANDON: f64 = 4.0;
/// A cached choice re-timed this many times slower than stored is measured again.
pub const RETUNE: f64 = 1.5;
/// Times below this (seconds) cannot be told apart: wall clock less the fixed overhead of a
/// plan run leaves noise there (ratios of 600x between two 1 µs kernels were seen), so samples
/// count as at least this much.
pub const FLOOR: f64 = 20e-6;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Settles the tunables of `graph`'s nodes on `device` (when the kernel policy allows
/// autotuning): measures missing choices and re-validates cached ones once per process.
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
            let cached = {
                let cache = device.tuning();
                if cache.is_validated(&t.key) {
                    continue;
                }
                cache.get(&t.key).cloned()
            };
            if let Some(c) = cached {
                if revalidate(device, &t, &c).await {
                    device.tuning().mark_validated(&t.key);
                    continue;
                }
            }
            let choice = measure(device, &t).await;
            device.tuning().insert(&t.key, choice);
        }
        Ok(())
    })
}

/// One timed run: wall clock (submit to readback) and, where the adapter has them, the sum
/// of the dispatches' GPU timestamps.
#[derive(Clone, Copy, Debug)]
pub struct Run {
    pub wall: f64,
    pub gpu: Option<f64>,
}

/// How a set of runs is turned into seconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Method {
    /// GPU timestamps: only the kernels' own time.
    Timestamps,
    /// Wall clock less the fixed submit + readback overhead of a trivial plan.
    Wall { overhead: f64 },
}

impl Method {
    pub fn name(&self) -> &'static str {
        match self {
            Method::Timestamps => "gpu timestamps",
            Method::Wall { .. } => "wall clock less a trivial plan's overhead",
        }
    }
    /// Seconds of one run (a run without timestamps falls back to its wall clock).
    pub fn secs(&self, r: &Run) -> f64 {
        match (self, r.gpu) {
            (Method::Timestamps, Some(g)) => g,
            (Method::Timestamps, None) => r.wall,
            // Never zero or negative when the overhead is noisy.
            (Method::Wall { overhead }, _) => (r.wall - overhead).max(r.wall * 0.05),
        }
    }
}

/// Timestamps are trusted when every run has them and they account for at least half of the
/// run's wall time beyond the fixed overhead. (lavapipe's do not for storage-buffer kernels:
/// a 1.2 GFLOP matmul "took" 0.09 ms.)
pub fn method_for(runs: &[&[Run]], overhead: f64) -> Method {
    let plausible = runs.iter().flat_map(|r| r.iter()).all(|r| match r.gpu {
        Some(g) => g >= 0.5 * (r.wall - overhead),
        None => false,
    });
    if plausible && runs.iter().any(|r| !r.is_empty()) {
        Method::Timestamps
    } else {
        Method::Wall { overhead }
    }
}

/// One short timing of the cached choice, in the method it was stored with: still within
/// [`RETUNE`]× of its stored time?
async fn revalidate(device: &Device, t: &Tunable, c: &TunedChoice) -> bool {
    let (Some(stored), true) = (c.chosen_secs(), t.candidates.contains(&c.variant.as_str())) else {
        return false;
    };
    let Ok(overhead) = fixed_overhead(device).await else {
        return false;
    };
    let method = if c.method == Method::Timestamps.name() {
        Method::Timestamps
    } else {
        Method::Wall { overhead }
    };
    match time_candidate(device, t, &c.variant, 3, 0.0, None, overhead).await {
        Ok(runs) if method == Method::Timestamps && method_for(&[&runs], overhead) != method => {
            false
        }
        Ok(runs) => {
            let s: Vec<f64> = runs.iter().map(|r| method.secs(r)).collect();
            still_valid(stored, median(&s))
        }
        Err(_) => false,
    }
}

/// Whether a choice re-timed at `observed` seconds still matches its stored `stored` seconds.
pub fn still_valid(stored: f64, observed: f64) -> bool {
    observed <= stored * RETUNE
}

/// Wall-clock seconds of a trivial plan (one tiny dispatch): submit + readback overhead,
/// measured once per process.
async fn fixed_overhead(device: &Device) -> Result<f64> {
    if let Some(o) = device.tuning().overhead() {
        return Ok(o);
    }
    let o = measure_overhead(device).await?;
    device.tuning().set_overhead(o);
    Ok(o)
}

async fn measure_overhead(device: &Device) -> Result<f64> {
    let mut g = Graph::new();
    let x = g.input("x", &[4], crate::tensor::DType::F32)?;
    let y = g.gelu(x)?;
    g.output("y", y);
    let mut plan = Backend::Gpu(device.clone())
        .compile_async(Arc::new(g), &[])
        .await?;
    let feed = Tensor::from_f32(&[4], vec![0.5; 4])?;
    plan.run_async(&[&feed]).await?;
    let mut t = Vec::with_capacity(7);
    for _ in 0..7 {
        let t0 = Instant::now();
        plan.run_async(&[&feed]).await?;
        t.push(t0.elapsed().as_secs_f64());
    }
    Ok(median(&t))
}

/// Measures every candidate (the default first) and decides.
async fn measure(device: &Device, t: &Tunable) -> TunedChoice {
    let overhead = fixed_overhead(device).await.unwrap_or(0.0);
    let mut order: Vec<&'static str> = t.candidates.clone();
    order.sort_by_key(|c| *c != t.default);
    let mut runs: Vec<(&'static str, Vec<Run>)> = Vec::new();
    for c in order {
        // The best median so far, by wall clock (which cannot miss work).
        let wall = Method::Wall { overhead };
        let best = runs
            .iter()
            .filter(|(_, r)| r.len() > 1)
            .map(|(_, r)| median(&r.iter().map(|r| wall.secs(r)).collect::<Vec<_>>()))
            .min_by(f64::total_cmp);
        // A candidate that cannot run here is skipped, not fatal.
        if let Ok(r) = time_candidate(device, t, c, MAX_RUNS, MIN_SECS, best, overhead).await {
            runs.push((c, r));
        }
    }
    let all: Vec<&[Run]> = runs.iter().map(|(_, r)| r.as_slice()).collect();
    let method = method_for(&all, overhead);
    let samples: Vec<(&'static str, Vec<f64>)> = runs
        .iter()
        .map(|(c, r)| (*c, r.iter().map(|r| method.secs(r)).collect()))
        .collect();
    let (variant, reason) = decide(t.default, &samples);
    TunedChoice {
        variant: variant.to_string(),
        secs: samples
            .iter()
            .map(|(c, s)| (c.to_string(), median(s)))
            .collect::<BTreeMap<_, _>>(),
        method: method.name().into(),
        reason,
    }
}

/// The median of `s` (0 for none).
pub fn median(s: &[f64]) -> f64 {
    quantile(s, 0.5)
}

fn quantile(s: &[f64], q: f64) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let mut v = s.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i.min(v.len() - 1)]
}

/// The choice from per-candidate samples (seconds): the default stays unless a challenger
/// wins clearly — its median [`MARGIN`] faster and its upper quartile below the default's
/// lower quartile; among such challengers the fastest median wins. Without samples of the
/// default, the fastest median; with no samples at all, the default.
pub fn decide(
    default: &'static str,
    samples: &[(&'static str, Vec<f64>)],
) -> (&'static str, String) {
    let floored: Vec<(&'static str, Vec<f64>)> = samples
        .iter()
        .map(|(c, s)| (*c, s.iter().map(|x| x.max(FLOOR)).collect()))
        .collect();
    let ran: Vec<&(&'static str, Vec<f64>)> =
        floored.iter().filter(|(_, s)| !s.is_empty()).collect();
    let Some(d) = ran.iter().find(|(c, _)| *c == default) else {
        return match ran
            .iter()
            .min_by(|a, b| median(&a.1).total_cmp(&median(&b.1)))
        {
            Some((c, _)) => (c, format!("fastest; the default {default} could not run")),
            None => (default, "default; nothing could be measured".into()),
        };
    };
    let (dm, dq1) = (median(&d.1), quantile(&d.1, 0.25));
    let winner = ran
        .iter()
        .filter(|(c, s)| {
            *c != default
                && s.len() > 1
                && median(s) * (1.0 + MARGIN) < dm
                && quantile(s, 0.75) < dq1
        })
        .min_by(|a, b| median(&a.1).total_cmp(&median(&b.1)));
    match winner {
        Some((c, s)) => (
            c,
            format!("{:.2}x faster than the default {default}", dm / median(s)),
        ),
        None => (default, "default; no candidate was clearly faster".into()),
    }
}

/// Timed runs of candidate `c`: up to `max_runs`, stopping after [`MIN_RUNS`] once `min_secs`
/// of kernel time are measured. A challenger (`best` known) skips the warm-up: its first run
/// decides whether it is abandoned ([`ABANDON`]× `best`, by wall clock less `overhead`), and
/// is discarded otherwise.
async fn time_candidate(
    device: &Device,
    t: &Tunable,
    c: &str,
    max_runs: usize,
    min_secs: f64,
    best: Option<f64>,
    overhead: f64,
) -> Result<Vec<Run>> {
    let (g, feeds) = (t.problem)(c)?;
    let mut plan = Backend::Gpu(device.clone())
        .compile_async(Arc::new(g), &[])
        .await?;
    let refs: Vec<&Tensor> = feeds.iter().collect();
    let wall = Method::Wall { overhead };
    let one = async |plan: &mut super::Plan| -> Result<Run> {
        let t0 = Instant::now();
        let gpu = plan.profile_async(&refs).await?;
        let wall = t0.elapsed().as_secs_f64();
        Ok(Run {
            wall,
            gpu: gpu.map(|d| d.iter().map(|d| d.nanos).sum::<f64>() * 1e-9),
        })
    };
    let first = one(&mut plan).await?; // warm-up, or the abandon check
    if best.is_some_and(|b| wall.secs(&first) > ABANDON * b) {
        return Ok(vec![first]);
    }
    let mut runs = Vec::with_capacity(max_runs);
    while runs.len() < max_runs {
        runs.push(one(&mut plan).await?);
        let total: f64 = runs.iter().map(|r| wall.secs(r)).sum();
        if runs.len() >= MIN_RUNS.min(max_runs) && total >= min_secs {
            break;
        }
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[f64]) -> Vec<f64> {
        v.to_vec()
    }

    #[test]
    fn the_default_stays_unless_a_challenger_wins_clearly() {
        // 5 % faster: within the margin, the default stays.
        let (c, why) = decide(
            "texture",
            &[
                ("texture", s(&[1.0, 1.0, 1.0, 1.02, 0.98])),
                ("reg", s(&[0.95, 0.95, 0.96, 0.94, 0.95])),
            ],
        );
        assert_eq!(c, "texture", "{why}");
        // 30 % faster but the samples overlap (one noisy default run is not enough).
        let (c, _) = decide(
            "texture",
            &[
                ("texture", s(&[1.0, 0.7, 1.0, 0.7, 1.0])),
                ("reg", s(&[0.7, 0.72, 0.9, 0.69, 0.71])),
            ],
        );
        assert_eq!(c, "texture");
        // Clearly faster: 2x, no overlap.
        let (c, why) = decide(
            "texture",
            &[
                ("texture", s(&[1.0, 1.1, 0.9, 1.0, 1.05])),
                ("reg", s(&[0.5, 0.52, 0.49, 0.5, 0.51])),
            ],
        );
        assert_eq!(c, "reg");
        assert!(why.contains("faster than the default texture"), "{why}");
        // The fastest of two clear winners.
        let (c, _) = decide(
            "tiled",
            &[
                ("tiled", s(&[10.0, 10.0, 10.0])),
                ("reg", s(&[2.0, 2.0, 2.1])),
                ("texture", s(&[1.0, 1.1, 1.0])),
            ],
        );
        assert_eq!(c, "texture");
    }

    #[test]
    fn kernels_too_fast_to_time_keep_the_default() {
        // Wall clock less overhead: 1-3 µs against 1 ns is noise, not a 1000x win.
        let (c, why) = decide(
            "texture",
            &[
                ("texture", vec![1e-6, 2e-6, 3e-6, 2e-6, 1e-6]),
                ("reg", vec![1e-9, 1e-9, 2e-9, 1e-9, 1e-9]),
            ],
        );
        assert_eq!(c, "texture", "{why}");
        // Above the floor a clear win still counts.
        let (c, _) = decide(
            "texture",
            &[
                ("texture", vec![90e-6, 95e-6, 100e-6, 92e-6, 94e-6]),
                ("reg", vec![30e-6, 31e-6, 29e-6, 30e-6, 32e-6]),
            ],
        );
        assert_eq!(c, "reg");
    }

    #[test]
    fn an_abandoned_or_missing_candidate_never_wins() {
        // The case that locked in a 12x slower GEMV: a challenger with a single (abandoned)
        // run cannot win, however fast that run looked.
        let (c, _) = decide(
            "texture",
            &[
                ("texture", s(&[0.022, 0.021, 0.023, 0.022, 0.022])),
                ("reg", s(&[0.001])),
            ],
        );
        assert_eq!(c, "texture");
        // The default could not run: the fastest that did.
        let (c, why) = decide(
            "texture",
            &[("reg", s(&[0.2, 0.2])), ("tiled", s(&[1.5, 1.4]))],
        );
        assert_eq!(c, "reg");
        assert!(why.contains("could not run"), "{why}");
        // Nothing ran: the default.
        assert_eq!(decide("texture", &[]).0, "texture");
        assert_eq!(decide("texture", &[("reg", vec![])]).0, "texture");
    }

    #[test]
    fn timestamps_are_used_only_when_they_account_for_the_work() {
        let r = |wall: f64, gpu: f64| Run {
            wall,
            gpu: Some(gpu),
        };
        // Kernels of 10 and 20 ms inside runs of 10.5 and 20.5 ms: trusted.
        let a = [r(0.0105, 0.010), r(0.0105, 0.0099)];
        let b = [r(0.0205, 0.020)];
        assert_eq!(method_for(&[&a, &b], 0.0005), Method::Timestamps);
        // lavapipe: a 1.2 GFLOP matmul "took" 0.09 ms inside a 1.5 s run.
        let lying = [r(1.5, 0.00009)];
        let m = method_for(&[&a, &lying], 0.0005);
        assert_eq!(m, Method::Wall { overhead: 0.0005 });
        assert!((m.secs(&lying[0]) - 1.4995).abs() < 1e-9);
        // No timestamps at all: wall clock.
        let none = [Run {
            wall: 0.01,
            gpu: None,
        }];
        assert!(matches!(method_for(&[&none], 0.001), Method::Wall { .. }));
        // Overhead larger than a (noisy) run never gives a negative or zero time.
        assert!(Method::Wall { overhead: 0.01 }.secs(&none[0]) > 0.0);
    }

    #[test]
    fn a_cached_choice_is_retuned_only_when_clearly_slower() {
        assert!(still_valid(0.022, 0.022));
        assert!(still_valid(0.022, 0.030)); // 1.36x: noise, keep
        assert!(!still_valid(0.022, 0.259)); // 12x: the machine or driver changed, measure again
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[]), 0.0);
    }
}
