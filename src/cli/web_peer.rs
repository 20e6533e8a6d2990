//! `wgpu-infer bench --web-peer SPEC`: the browser benchmark's workloads (web/bench.js, spec
//! written by tools/bench_web.sh) run natively, the same calls on the same folders timed the
//! same way (load, first call, median of `reps` warm calls), printed as JSON, so the browser
//! (WebGPU) and native (this adapter) figures come from one run on one machine.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Instant;
use wgpu_infer::imageio::{load_rgb_as, Convention};
use wgpu_infer::models::detect::DetectOptions;
use wgpu_infer::models::generate::GenerateOptions;
use wgpu_infer::models::{Bert, Gpt2, Vit, Yolo};
use wgpu_infer::{Backend, Device, Error, Result};

#[derive(Deserialize)]
pub struct Spec {
    #[serde(default = "three")]
    reps: usize,
    workloads: Vec<Workload>,
}

fn three() -> usize {
    3
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Workload {
    name: String,
    family: String,
    /// The folder on disk (the browser fetches the same one from `model`).
    dir: PathBuf,
    #[serde(default)]
    texts: Vec<String>,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    max_new_tokens: usize,
    /// The image file on disk (the browser decodes the same file from `image`).
    image_path: Option<PathBuf>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timed {
    name: String,
    load_ms: f64,
    first_ms: f64,
    median_ms: f64,
    items: usize,
    times: Vec<f64>,
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// Times `reps` warm calls after a first one; returns (first ms, median ms, items).
fn timed(reps: usize, mut f: impl FnMut() -> Result<usize>) -> Result<(f64, Vec<f64>, usize)> {
    let t = Instant::now();
    let items = f()?;
    let first = ms(t);
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        f()?;
        times.push(ms(t));
    }
    Ok((first, times, items))
}

fn median(xs: &[f64]) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

pub fn run(spec_path: &std::path::Path, dev: &Device) -> Result<Vec<Timed>> {
    let text = std::fs::read_to_string(spec_path).map_err(|e| Error::io(spec_path, e))?;
    let spec: Spec = serde_json::from_str(&text).map_err(|e| Error::Config {
        path: spec_path.to_path_buf(),
        msg: format!("invalid benchmark spec: {e}"),
    })?;
    let gpu = || Backend::Gpu(dev.clone());
    let image = |w: &Workload, c: Convention| {
        let p = w.image_path.as_ref().ok_or_else(|| {
            Error::InvalidArgument(format!("workload '{}' needs imagePath", w.name))
        })?;
        load_rgb_as(p, c)
    };
    let mut out = Vec::new();
    for w in &spec.workloads {
        let t = Instant::now();
        let (load_ms, (first_ms, times, items)) = match w.family.as_str() {
            "bert" => {
                let m = Bert::load(gpu(), &w.dir)?;
                let load = ms(t);
                let texts: Vec<&str> = w.texts.iter().map(String::as_str).collect();
                (load, timed(spec.reps, || Ok(m.embed(&texts)?.len()))?)
            }
            "gpt2" => {
                let m = Gpt2::load(gpu(), &w.dir)?;
                let load = ms(t);
                let opts = GenerateOptions {
                    max_new_tokens: w.max_new_tokens,
                    stop_at_eos: false,
                    ..Default::default()
                };
                let f = || Ok(m.generate(&w.prompt, &opts, |_| true)?.tokens.len());
                (load, timed(spec.reps, f)?)
            }
            "vit" => {
                let img = image(w, Convention::Pil)?;
                let t = Instant::now();
                let m = Vit::load(gpu(), &w.dir)?;
                let load = ms(t);
                let imgs = std::slice::from_ref(&img);
                (
                    load,
                    timed(spec.reps, || Ok(m.classify_images(imgs, 5)?.len()))?,
                )
            }
            "yolo" => {
                let img = image(w, Convention::OpenCv)?;
                let t = Instant::now();
                let m = Yolo::load(gpu(), &w.dir)?;
                let load = ms(t);
                let opts = DetectOptions::default();
                (
                    load,
                    timed(spec.reps, || m.detect_image(&img, &opts).map(|_| 1))?,
                )
            }
            other => {
                return Err(Error::InvalidArgument(format!(
                    "workload '{}': unknown family '{other}' (bert, gpt2, vit, yolo)",
                    w.name
                )))
            }
        };
        out.push(Timed {
            name: w.name.clone(),
            load_ms,
            first_ms,
            median_ms: median(&times),
            items,
            times,
        });
    }
    Ok(out)
}
