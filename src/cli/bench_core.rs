//! What every bench section shares: the options, the result rows, PyTorch as a same-run peer
//! ([`Torch`], timed one repetition after each of ours), the timing loops, and random weights
//! of real model sizes.

use super::torch_peer::TorchPeer;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;
use wgpu_infer::{Result, Tensor};

/// What to run.
#[derive(Clone, Debug, Default)]
pub struct BenchOptions {
    /// Fewer repetitions and smaller problems for the slow paths; under 5 minutes on lavapipe.
    pub quick: bool,
    /// Kernels only / models only.
    pub skip_kernels: bool,
    pub skip_models: bool,
    /// The newer families' rows (MPNet, DINOv2, CLIP, SmolLM2, YOLO11): skipped / the only models run.
    pub skip_families: bool,
    pub families_only: bool,
    /// Folder of the YOLOv8n weights (defaults to the test fixture).
    pub yolo_dir: Option<PathBuf>,
}

/// One end-to-end model measurement.
#[derive(Clone, Debug, Serialize)]
pub struct ModelResult {
    pub model: String,
    pub workload: String,
    pub backend: String,
    /// Median latency of one call.
    pub ms: f64,
    /// Throughput in `unit`.
    pub rate: f64,
    pub unit: &'static str,
    /// Load + first result, pipeline compiles included (seconds).
    pub cold_start_s: f64,
    /// Device (or host, on the CPU backend) bytes of weights + activations + states.
    pub memory_bytes: u64,
    /// Kernel dispatches per forward (GPU).
    pub dispatches: usize,
    /// Kernels (shaders) the measured plan ran: which variants were chosen.
    pub kernels: Vec<String>,
}

/// PyTorch's side of the same-run comparison: one repetition of the same workload after each
/// of ours, collected per (model, workload).
pub struct Torch<'a> {
    peer: Option<&'a mut TorchPeer>,
    /// (seconds per call, items per call, unit)
    samples: BTreeMap<(String, String), (Vec<f64>, f64, &'static str)>,
}

impl<'a> Torch<'a> {
    pub fn new(peer: Option<&'a mut TorchPeer>) -> Self {
        Torch {
            peer,
            samples: BTreeMap::new(),
        }
    }

    /// `reps` repetitions of PyTorch's `workload` (0: its warm-up only), kept as samples.
    pub fn sample(
        &mut self,
        model: &str,
        workload: &str,
        unit: &'static str,
        reps: usize,
    ) -> Result<()> {
        let Some(peer) = self.peer.as_deref_mut() else {
            return Ok(());
        };
        let (secs, items) = peer.time(model, workload, reps)?;
        let e = self
            .samples
            .entry((model.to_string(), workload.to_string()))
            .or_insert_with(|| (Vec::new(), items, unit));
        e.0.extend(secs);
        e.1 = items;
        Ok(())
    }

    pub fn results(&self) -> Vec<TorchResult> {
        let threads = self.peer.as_ref().map_or(0, |p| p.threads);
        self.samples
            .iter()
            .filter(|(_, (v, _, _))| !v.is_empty())
            .map(|((model, workload), (v, items, unit))| {
                let mut v = v.clone();
                v.sort_by(f64::total_cmp);
                let secs = v[v.len() / 2];
                TorchResult {
                    model: model.clone(),
                    workload: workload.clone(),
                    ms: secs * 1e3,
                    rate: items / secs.max(1e-12),
                    unit: unit.to_string(),
                    threads,
                    samples: v.len(),
                }
            })
            .collect()
    }
}

/// Like [`time`] (seconds per call of `f`), with PyTorch's same workload (`model`,
/// `workload`, `items` per call) timed once after each of our repetitions when a peer is given.
#[allow(clippy::too_many_arguments)]
pub fn time_vs(
    torch: &mut Torch<'_>,
    (model, workload, unit): (&str, &str, &'static str),
    reps: usize,
    budget: f64,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    f()?;
    torch.sample(model, workload, unit, 0)?;
    let start = Instant::now();
    let mut ours = 0.0;
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        f()?;
        let dt = t0.elapsed().as_secs_f64();
        ours += dt;
        t.push(dt);
        torch.sample(model, workload, unit, 1)?;
        if ours > budget || start.elapsed().as_secs_f64() > 3.0 * budget {
            break;
        }
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

/// Median of `reps` timed calls after one warm-up (seconds), stopping early after `budget` s.
pub fn time(reps: usize, budget: f64, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    f()?;
    let start = Instant::now();
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t0 = Instant::now();
        f()?;
        t.push(t0.elapsed().as_secs_f64());
        if start.elapsed().as_secs_f64() > budget {
            break;
        }
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

/// Deterministic pseudo-random tensor in [-a, a).
pub fn random_tensor(shape: &[usize], a: f32, seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15).wrapping_add(1);
    let v = (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E3779B97F4A7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
            z ^= z >> 31;
            ((z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * a
        })
        .collect();
    Tensor::from_f32(shape, v).expect("sizes match")
}

/// Random weights of a real model's size ([`random_source`]) that lack the optional tensors
/// named in `absent` (matched as name suffixes), so a loader probing for optional parts (a
/// DeiT distillation token, a second head, a pooler) builds the plain architecture.
pub struct RandomWeights {
    pub absent: &'static [&'static str],
}

/// What a ViT-family checkpoint without DeiT's extras or a pooler lacks.
pub const VIT_ABSENT: &[&str] = &[
    "embeddings.distillation_token",
    "cls_classifier.weight",
    "pooler.dense.weight",
];

impl wgpu_infer::models::nn::TensorSource for RandomWeights {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        if !self.contains(name) {
            return Err(wgpu_infer::Error::InvalidArgument(format!(
                "random weights: '{name}' is absent"
            )));
        }
        random_source(name, shape)
    }
    fn contains(&self, name: &str) -> bool {
        !self.absent.iter().any(|a| name.ends_with(a))
    }
    fn shape(&self, _name: &str) -> Option<Vec<usize>> {
        None
    }
}

/// Random weights for a model of a real size: LayerNorm weights 1, everything else small.
pub fn random_source(name: &str, shape: &[usize]) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let seed = name
        .bytes()
        .fold(17u64, |h, b| h.wrapping_mul(131).wrapping_add(b as u64));
    if (name.contains("LayerNorm") || name.contains("ln_") || name.contains("layernorm"))
        && name.ends_with("weight")
    {
        return Tensor::from_f32(shape, vec![1.0; n]);
    }
    Ok(random_tensor(shape, 0.05, seed))
}

/// What every row of one model run shares.
pub struct Run<'a> {
    pub model: &'a str,
    pub backend: String,
    pub cold_start_s: f64,
    /// (device bytes, dispatches per forward)
    pub memory: (u64, usize),
    pub kernels: Vec<String>,
}

impl Run<'_> {
    /// A row: `items` (sentences, tokens, images) per call of `secs`.
    pub fn row(&self, workload: String, secs: f64, items: f64, unit: &'static str) -> ModelResult {
        ModelResult {
            model: self.model.into(),
            workload,
            backend: self.backend.clone(),
            ms: secs * 1e3,
            rate: items / secs.max(1e-12),
            unit,
            cold_start_s: self.cold_start_s,
            memory_bytes: self.memory.0,
            dispatches: self.memory.1,
            kernels: self.kernels.clone(),
        }
    }
}

/// One PyTorch measurement from tools/bench_torch.py.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct TorchResult {
    pub model: String,
    pub workload: String,
    pub ms: f64,
    pub rate: f64,
    pub unit: String,
    pub threads: usize,
    /// Repetitions behind the median.
    #[serde(default)]
    pub samples: usize,
}
