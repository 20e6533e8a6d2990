//! Kernel variant choice per adapter, by measurement.
//!
//! The first time a shape class needs a choice, each candidate runs on a representative
//! problem and the fastest wins. Choices are cached in memory and in
//! `$WGPU_INFER_CACHE_DIR/tune.json` (default `$XDG_CACHE_HOME/wgpu-infer` or
//! `~/.cache/wgpu-infer`), keyed by adapter name and driver. `WGPU_INFER_AUTOTUNE=0` disables
//! measuring (a per-adapter-type default is used); `WGPU_INFER_MATMUL=tiled|reg` forces a kernel.

use crate::device::Device;
use crate::graph::{Backend, Graph};
use crate::ops::matmul::{Matmul, MatmulVariant};
use crate::tensor::{DType, Tensor};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Default)]
pub struct TuneCache {
    adapter_key: String,
    choices: BTreeMap<String, String>,
}

/// Directory of the tuning cache.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("WGPU_INFER_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("wgpu-infer"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("wgpu-infer"))
}

fn cache_file() -> Option<PathBuf> {
    cache_dir().map(|d| d.join("tune.json"))
}

fn autotune_enabled() -> bool {
    std::env::var("WGPU_INFER_AUTOTUNE").map_or(true, |v| v != "0")
}

impl TuneCache {
    pub(crate) fn load(info: &wgpu::AdapterInfo) -> TuneCache {
        let adapter_key = format!(
            "{} | {:?} | {} {}",
            info.name, info.backend, info.driver, info.driver_info
        );
        let mut choices = BTreeMap::new();
        if let Some(f) = cache_file() {
            if let Ok(text) = std::fs::read_to_string(&f) {
                if let Ok(all) =
                    serde_json::from_str::<BTreeMap<String, BTreeMap<String, String>>>(&text)
                {
                    if let Some(c) = all.get(&adapter_key) {
                        choices = c.clone();
                    }
                }
            }
        }
        TuneCache {
            adapter_key,
            choices,
        }
    }

    fn save(&self) {
        let Some(f) = cache_file() else { return };
        let mut all: BTreeMap<String, BTreeMap<String, String>> = std::fs::read_to_string(&f)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        all.insert(self.adapter_key.clone(), self.choices.clone());
        if let (Some(dir), Ok(text)) = (f.parent(), serde_json::to_string_pretty(&all)) {
            // Best effort: a read-only home must not break inference.
            if std::fs::create_dir_all(dir).is_ok() {
                let tmp = f.with_extension(format!("tmp{}", std::process::id()));
                if std::fs::write(&tmp, text).is_ok() {
                    let _ = std::fs::rename(&tmp, &f);
                }
            }
        }
    }

    /// Cached choices, for `wgpu-infer info`.
    pub fn entries(&self) -> Vec<(String, String)> {
        self.choices
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Shape class of a matmul for tuning purposes.
fn matmul_class(m: usize) -> (&'static str, usize) {
    match m {
        1 => ("m1", 1),
        2..=8 => ("m2-8", 8),
        _ => ("m9+", 256),
    }
}

/// Default when not measuring: CPU-backed adapters want the register kernel.
fn default_variant(
    device: &Device,
    m: usize,
    k: usize,
    n: usize,
    constant_b: bool,
) -> MatmulVariant {
    if !device.is_cpu() {
        MatmulVariant::Tiled
    } else if MatmulVariant::Texture.supports(device, m, k, n, constant_b) {
        MatmulVariant::Texture
    } else {
        MatmulVariant::Reg
    }
}

/// The matmul kernel to use for an (m, k, n) problem on this device.
pub fn matmul_variant(
    device: &Device,
    m: usize,
    k: usize,
    n: usize,
    constant_b: bool,
) -> MatmulVariant {
    if let Some(v) = std::env::var("WGPU_INFER_MATMUL")
        .ok()
        .and_then(|s| MatmulVariant::parse(&s))
        .filter(|v| v.supports(device, m, k, n, constant_b))
    {
        return v;
    }
    let (class, rep_m) = matmul_class(m);
    // The candidate set is part of the key: adding a kernel invalidates old choices.
    let candidates: Vec<&str> = MatmulVariant::ALL
        .iter()
        .filter(|v| {
            v.supports(
                device,
                rep_m,
                k.clamp(64, 512),
                n.clamp(64, 512),
                constant_b,
            )
        })
        .map(|v| v.name())
        .collect();
    let key = format!(
        "matmul:{class}:{}:{}",
        if constant_b { "w" } else { "x" },
        candidates.join("/")
    );
    if let Some(v) = device
        .tuning()
        .lock()
        .unwrap()
        .choices
        .get(&key)
        .and_then(|s| MatmulVariant::parse(s))
        .filter(|v| v.supports(device, m, k, n, constant_b))
    {
        return v;
    }
    if !autotune_enabled() {
        return default_variant(device, m, k, n, constant_b);
    }
    let (k, n) = (k.clamp(64, 512), n.clamp(64, 512));
    let mut best: Option<(f64, MatmulVariant)> = None;
    for v in MatmulVariant::ALL {
        if !v.supports(device, rep_m, k, n, constant_b) {
            continue;
        }
        match time_matmul(device, v, rep_m, k, n, constant_b) {
            Ok(t) if best.is_none_or(|(bt, _)| t < bt) => best = Some((t, v)),
            _ => {}
        }
    }
    let choice = best.map_or_else(|| default_variant(device, m, k, n, constant_b), |(_, v)| v);
    let mut cache = device.tuning().lock().unwrap();
    cache.choices.insert(key, choice.name().to_string());
    cache.save();
    choice
}

/// Median seconds of 3 runs of one matmul with a forced kernel.
fn time_matmul(
    device: &Device,
    v: MatmulVariant,
    m: usize,
    k: usize,
    n: usize,
    constant_b: bool,
) -> crate::Result<f64> {
    let mut g = Graph::new();
    let a = g.input("a", &[m, k], DType::F32)?;
    let bt = Tensor::from_f32(&[k, n], vec![0.5; k * n])?;
    let b = if constant_b {
        g.constant_tensor("b", bt.clone())?
    } else {
        g.input("b", &[k, n], DType::F32)?
    };
    let c = g.node1(
        Matmul {
            variant: Some(v),
            ..Default::default()
        },
        &[a, b],
    )?;
    g.output("c", c);
    let mut plan = Backend::Gpu(device.clone()).compile(Arc::new(g), &[])?;
    let at = Tensor::from_f32(&[m, k], vec![0.25; m * k])?;
    let feeds: Vec<&Tensor> = if constant_b {
        vec![&at]
    } else {
        vec![&at, &bt]
    };
    plan.run(&feeds)?;
    let mut times = Vec::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        plan.run(&feeds)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[1])
}

/// The choices cached for this device's adapter.
pub fn tuned_choices(device: &Device) -> Vec<(String, String)> {
    device.tuning().lock().unwrap().entries()
}

/// Where the cache file lives, for messages.
pub fn cache_path_display() -> String {
    cache_file().map_or_else(
        || "(no cache directory)".into(),
        |p| p.display().to_string(),
    )
}
