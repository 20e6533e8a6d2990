//! The measurements behind `wgpu-infer bench`: the adapter's FMA peak, every kernel variant on
//! the model-sized shapes of the op-case table's bench group, and end-to-end models of real
//! sizes (random weights), GPU against the CPU reference path, all in one process so every
//! ratio is same-run.

use super::bench_core::*;
use super::torch_peer::TorchPeer;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;
use wgpu_infer::models::bert::{Bert, BertConfig, BertInput};
use wgpu_infer::models::gpt2::{Gpt2, Gpt2Config};
use wgpu_infer::models::vision::ImageProcessorConfig;
use wgpu_infer::models::vit::{Vit, VitConfig};
use wgpu_infer::models::yolo::{DetectOptions, Yolo};
use wgpu_infer::models::CausalLm;
use wgpu_infer::ops::cases::{self, OpCase, Work};
use wgpu_infer::{Backend, DType, Device, LoadOptions, Result, Tensor};

/// One kernel measurement.
#[derive(Clone, Debug, Serialize)]
pub struct KernelResult {
    pub kernel: String,
    pub shape: String,
    pub variant: String,
    pub backend: String,
    pub ms: f64,
    /// GFLOP/s or GB/s (see `unit`).
    pub rate: f64,
    pub unit: &'static str,
    /// Of the FMA peak measured in the same run (compute-bound kernels only).
    pub pct_peak: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub adapter: String,
    pub backend: String,
    /// FMA peak at the start of the run.
    pub peak_gflops: f64,
    /// FMA peak at the end of the run.
    pub peak_end_gflops: f64,
    /// The two peaks differ by more than 15 %: the machine was not quiet, ratios are suspect.
    pub noisy: bool,
    /// 1-minute load average at the start and at the end (Linux; empty elsewhere).
    pub load: [String; 2],
    pub quick: bool,
    pub shader_cache: &'static str,
    pub kernels: Vec<KernelResult>,
    pub models: Vec<ModelResult>,
    /// PyTorch's figures, measured in alternation with ours.
    pub torch: Vec<TorchResult>,
    /// The tuned kernel choices the models' plans used: (shape class key, variant, why).
    pub tuned: Vec<(String, String, String)>,
}

/// How far apart the start and end FMA peaks may be before a run is flagged noisy.
pub const NOISY_SPREAD: f64 = 0.15;

/// Times every case of the op-case table's bench group: each GPU variant the adapter can run,
/// and the CPU reference once per shape.
fn kernels(
    dev: &Device,
    peak: f64,
    quick: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<KernelResult>> {
    let gpu = Backend::Gpu(dev.clone());
    let group = cases::group(cases::BENCH).expect("the op-case table has a bench group");
    let mut out = Vec::new();
    let mut cpu_done: BTreeMap<(String, String), ()> = BTreeMap::new();
    for case in group.cases()? {
        if !case.runs_on(dev) {
            continue;
        }
        let family = case.op.split('/').next().unwrap_or(&case.op).to_string();
        let variant = case.variant.unwrap_or("auto").to_string();
        // The generic matmul kernels run at ~1 GFLOP/s on CPU-backed adapters: quick runs skip
        // them on the largest problems.
        let flops = match case.work {
            Work::Flops(f) => f,
            Work::Bytes(_) => 0.0,
        };
        let slow = family == "matmul" && variant != "texture" && dev.is_cpu();
        if !(slow && quick && flops > 4e8) {
            out.push(time_case(
                &case, &gpu, &family, &variant, peak, quick, progress,
            )?);
        }
        if cpu_done
            .insert((family.clone(), case.name.clone()), ())
            .is_none()
        {
            out.push(time_case(
                &case,
                &Backend::Cpu,
                &family,
                "reference",
                peak,
                quick,
                progress,
            )?);
        }
    }
    Ok(out)
}

fn time_case(
    case: &OpCase,
    backend: &Backend,
    family: &str,
    variant: &str,
    peak: f64,
    quick: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<KernelResult> {
    progress(&format!(
        "{family} {} {variant} ({})",
        case.name,
        backend.name()
    ));
    let mut plan = backend.compile(case.graph.clone(), &[])?;
    let refs: Vec<&Tensor> = case.feeds.iter().collect();
    let (reps, budget) = match (backend, quick) {
        (Backend::Cpu, true) => (1, 2.0),
        (Backend::Cpu, false) => (3, 10.0),
        (_, true) => (3, 2.0),
        (_, false) => (7, 8.0),
    };
    let s = time(reps, budget, || plan.run(&refs).map(|_| ()))?;
    let (work, unit, flops) = match case.work {
        Work::Flops(f) => (f, "GFLOP/s", true),
        Work::Bytes(b) => (b, "GB/s", false),
    };
    let rate = work / s / 1e9;
    Ok(KernelResult {
        kernel: family.into(),
        shape: case.name.clone(),
        variant: variant.into(),
        backend: backend.name().into(),
        ms: s * 1e3,
        rate,
        unit,
        pct_peak: flops.then(|| 100.0 * rate / peak),
    })
}

/// ViT-B/16 at 224: 12 layers, 768 wide, 12 heads, 1000 classes.
fn vit_base_16() -> VitConfig {
    VitConfig {
        model_type: "vit".into(),
        mlp_ratio: None,
        use_swiglu_ffn: false,
        image_size: 224,
        patch_size: 16,
        num_channels: 3,
        hidden_size: 768,
        num_hidden_layers: 12,
        num_attention_heads: 12,
        intermediate_size: 3072,
        layer_norm_eps: 1e-12,
        hidden_act: "gelu".into(),
        id2label: (0..1000)
            .map(|i| (i.to_string(), format!("LABEL_{i}")))
            .collect(),
        num_register_tokens: None,
    }
}

/// Independent single-sentence requests from 1, 2 and 4 threads sharing one model (a server's
/// load): sentences per second over all threads, the median of 3 rounds of `per` requests per
/// thread.
fn threads(model: &Bert, quick: bool, run: &Run, out: &mut Vec<ModelResult>) -> Result<()> {
    let seq = 18;
    let input = BertInput {
        batch: 1,
        seq,
        input_ids: (0..seq).map(|i| (i as u32 * 7919) % 30000 + 100).collect(),
        token_type_ids: vec![0; seq],
        attention_mask: vec![1; seq],
    };
    let per = if quick { 6 } else { 16 };
    for n in [1usize, 2, 4] {
        // Warm-up: every thread's plan copy compiled.
        let round = || -> Result<f64> {
            let t0 = Instant::now();
            std::thread::scope(|s| {
                let hs: Vec<_> = (0..n)
                    .map(|_| {
                        s.spawn(|| -> Result<()> {
                            for _ in 0..per {
                                model.forward(&input, false)?;
                            }
                            Ok(())
                        })
                    })
                    .collect();
                hs.into_iter()
                    .try_for_each(|h| h.join().expect("a bench thread panicked"))
            })?;
            Ok(t0.elapsed().as_secs_f64())
        };
        round()?;
        let cpu0 = process_cpu_secs();
        let mut t = (0..3).map(|_| round()).collect::<Result<Vec<f64>>>()?;
        let busy = (process_cpu_secs() - cpu0) / t.iter().sum::<f64>();
        t.sort_by(f64::total_cmp);
        let wall = t[1];
        // The process's CPU use shows whether the device had room: lavapipe's "GPU" is these
        // same cores.
        let workload = format!(
            "batch 1 x {seq} tokens, {n} threads sharing the model (process CPU {:.0}%)",
            busy * 100.0
        );
        // `ms` is the wall time per request round (every thread one request).
        out.push(run.row(workload, wall / per as f64, n as f64, "sentences/s"));
    }
    Ok(())
}

/// CPU seconds this process has used (user + system, all threads); NaN where unknown.
#[cfg(not(unix))]
fn process_cpu_secs() -> f64 {
    f64::NAN
}

/// CPU seconds this process has used (user + system, all threads).
#[cfg(unix)]
fn process_cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn backends(dev: &Device) -> [Backend; 2] {
    [Backend::Gpu(dev.clone()), Backend::Cpu]
}

fn models(
    dev: &Device,
    opts: &BenchOptions,
    out: &mut Vec<ModelResult>,
    torch: &mut Torch<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let quick = opts.quick;
    // MiniLM-L6 sized BERT (random weights), 18-token sentences.
    let minilm = BertConfig {
        model_type: "bert".into(),
        pad_token_id: 0,
        relative_attention_num_buckets: 32,
        vocab_size: 30522,
        hidden_size: 384,
        num_hidden_layers: 6,
        num_attention_heads: 12,
        intermediate_size: 1536,
        hidden_act: "gelu".into(),
        layer_norm_eps: 1e-12,
        max_position_embeddings: 512,
        type_vocab_size: 2,
        position_embedding_type: None,
    };
    for backend in backends(dev) {
        progress(&format!("MiniLM-L6 ({})", backend.name()));
        let t0 = Instant::now();
        let model = Bert::from_source(
            backend.clone(),
            minilm.clone(),
            &random_source,
            false,
            None,
            &LoadOptions::default(),
        )?;
        let mut cold = None;
        for batch in [1usize, 32, 64] {
            let seq = 18;
            let ids: Vec<u32> = (0..batch * seq)
                .map(|i| (i as u32 * 7919) % 30000 + 100)
                .collect();
            let input = BertInput {
                batch,
                seq,
                input_ids: ids,
                token_type_ids: vec![0; batch * seq],
                attention_mask: vec![1; batch * seq],
            };
            if cold.is_none() {
                model.forward(&input, false)?;
                cold = Some(t0.elapsed().as_secs_f64());
            }
            let reps = if matches!(backend, Backend::Cpu) || quick {
                3
            } else {
                7
            };
            let workload = format!("batch {batch} x {seq} tokens");
            let name = "MiniLM-L6 (random weights)";
            let budget = if quick { 3.0 } else { 10.0 };
            let fwd = || model.forward(&input, false).map(|_| ());
            let s = match backend {
                Backend::Cpu => time(reps, budget, fwd)?,
                _ => time_vs(torch, (name, &workload, "sentences/s"), reps, budget, fwd)?,
            };
            let run = Run {
                model: name,
                backend: backend.name().into(),
                cold_start_s: cold.unwrap_or(0.0),
                memory: model.memory_and_dispatches(),
                kernels: model.kernels(),
            };
            out.push(run.row(workload, s, batch as f64, "sentences/s"));
        }
        progress(&format!("MiniLM-L6 threads ({})", backend.name()));
        let run = Run {
            model: "MiniLM-L6 (random weights)",
            backend: backend.name().into(),
            cold_start_s: cold.unwrap_or(0.0),
            memory: model.memory_and_dispatches(),
            kernels: model.kernels(),
        };
        threads(&model, quick, &run, out)?;
    }
    // GPT-2 small sized (random weights): 16-token prompt, 32 greedy tokens with the KV cache;
    // on the GPU with f32, f16 and q8 weights, and the CPU reference.
    let [gpu, cpu] = backends(dev);
    let runs = [
        (gpu.clone(), DType::F32),
        (gpu.clone(), DType::F16),
        (gpu, DType::Q8),
        (cpu, DType::F32),
    ];
    let build = |b: Backend, d: DType| -> Result<CausalLm> {
        let o = LoadOptions::with_dtype(d);
        Ok(Gpt2::from_source(b, Gpt2Config::small(), &random_source, None, &o)?.into())
    };
    let name = "GPT-2 small (random weights)";
    super::bench_decoders::decoder_rows((name, 50257), &runs, quick, &build, out, torch, progress)?;
    // ViT-B/16 at 224 (random weights).
    for backend in backends(dev) {
        progress(&format!("ViT-B/16 ({})", backend.name()));
        let t0 = Instant::now();
        let cfg = vit_base_16();
        let model = Vit::from_source(
            backend.clone(),
            cfg,
            ImageProcessorConfig::vit_default(224),
            &RandomWeights { absent: VIT_ABSENT },
            true,
            &LoadOptions::default(),
        )?;
        let batches: &[usize] = if quick { &[1] } else { &[1, 8] };
        let mut cold = None;
        for &b in batches {
            let pix = random_tensor(&[b, 3, 224, 224], 1.0, 12);
            if cold.is_none() {
                model.forward(&pix)?;
                cold = Some(t0.elapsed().as_secs_f64());
            }
            let reps = if matches!(backend, Backend::Cpu) || quick {
                2
            } else {
                5
            };
            let name = "ViT-B/16 224 (random weights)";
            let workload = format!("batch {b}");
            let budget = if quick { 3.0 } else { 10.0 };
            let fwd = || model.forward(&pix).map(|_| ());
            let s = match backend {
                Backend::Cpu => time(reps, budget, fwd)?,
                _ => time_vs(torch, (name, &workload, "images/s"), reps, budget, fwd)?,
            };
            let run = Run {
                model: name,
                backend: backend.name().into(),
                cold_start_s: cold.unwrap_or(0.0),
                memory: model.memory_and_dispatches(),
                kernels: model.kernels(),
            };
            out.push(run.row(workload, s, b as f64, "images/s"));
        }
    }
    // YOLOv8n at 640: network only, and the full predict (letterbox, NMS) on bus.jpg.
    let ydir = opts.yolo_dir.clone().unwrap_or_else(|| {
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/yolo/yolov8n"
        ))
    });
    let bus = ydir
        .parent()
        .map(|p| p.join("bus_decoded.png"))
        .filter(|p| p.is_file());
    for backend in backends(dev) {
        progress(&format!("YOLOv8n ({})", backend.name()));
        let t0 = Instant::now();
        let model = Yolo::load(backend.clone(), &ydir)?;
        let x = random_tensor(&[1, 3, 640, 640], 0.5, 13);
        model.forward(&x)?;
        let cold = t0.elapsed().as_secs_f64();
        let reps = if matches!(backend, Backend::Cpu) || quick {
            2
        } else {
            5
        };
        let name = "YOLOv8n 640";
        let gpu = !matches!(backend, Backend::Cpu);
        let fwd = || model.forward(&x).map(|_| ());
        let budget = if quick { 2.0 } else { 10.0 };
        let workload = "network, 640x640";
        let s = if gpu {
            time_vs(torch, (name, workload, "images/s"), reps, budget, fwd)?
        } else {
            time(reps, budget, fwd)?
        };
        let run = Run {
            model: name,
            backend: backend.name().into(),
            cold_start_s: cold,
            memory: model.memory_and_dispatches(),
            kernels: model.kernels(),
        };
        out.push(run.row(workload.into(), s, 1.0, "images/s"));
        if let Some(bus) = &bus {
            let img =
                wgpu_infer::imageio::load_rgb_as(bus, wgpu_infer::imageio::Convention::OpenCv)?;
            let predict = || {
                model
                    .detect_image(&img, &DetectOptions::default())
                    .map(|_| ())
            };
            let workload = "predict bus.jpg (letterbox 640x480, NMS)";
            let s = if gpu {
                time_vs(torch, (name, workload, "images/s"), reps, 5.0, predict)?
            } else {
                time(reps, 5.0, predict)?
            };
            out.push(run.row(workload.into(), s, 1.0, "images/s"));
        }
    }
    Ok(())
}

/// Runs the benchmark. `progress` receives a line before each measurement.
pub fn run(
    dev: &Device,
    opts: &BenchOptions,
    peer: Option<&mut TorchPeer>,
    mut progress: impl FnMut(&str),
) -> Result<Report> {
    progress("FMA peak");
    let load_start = load_average();
    let peak_reps = if opts.quick { 3 } else { 7 };
    let peak = dev.measure_fma_peak(peak_reps)?;
    let mut torch = Torch::new(peer);
    let kernel_results = if opts.skip_kernels {
        Vec::new()
    } else {
        kernels(dev, peak, opts.quick, &mut progress)?
    };
    let mut model_results = Vec::new();
    if !opts.skip_models && !opts.families_only {
        models(dev, opts, &mut model_results, &mut torch, &mut progress)?;
    }
    if !opts.skip_models && !opts.skip_families {
        super::bench_families::families(dev, opts, &mut model_results, &mut torch, &mut progress)?;
    }
    progress("FMA peak (end)");
    let peak_end = dev.measure_fma_peak(peak_reps)?;
    let info = dev.adapter_info();
    Ok(Report {
        date: today(),
        adapter: format!("{} ({:?}, {})", info.name, info.backend, info.driver_info),
        backend: format!("{:?}", info.backend),
        peak_gflops: peak,
        peak_end_gflops: peak_end,
        noisy: (peak - peak_end).abs() > NOISY_SPREAD * peak.max(peak_end),
        load: [load_start, load_average()],
        quick: opts.quick,
        shader_cache: if std::env::var("MESA_SHADER_CACHE_DISABLE")
            .is_ok_and(|v| v == "true" || v == "1")
        {
            "disabled (cold compiles)"
        } else {
            "default"
        },
        kernels: kernel_results,
        models: model_results,
        torch: torch.results(),
        tuned: dev
            .tuned_choices()
            .0
            .into_iter()
            .map(|(k, c)| (k, c.variant, c.reason))
            .collect(),
    })
}

/// The 1-minute load average (Linux), else an empty string.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

/// UTC date as YYYY-MM-DD (civil-from-days, no time zone database needed).
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let z = (secs / 86400) as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{:02}-{:02}", if m <= 2 { y + 1 } else { y }, m, d)
}

impl Report {
    /// Markdown tables: kernels (with the same-run CPU reference) and models.
    pub fn to_markdown(&self) -> String {
        use std::fmt::Write;
        let torch = &self.torch;
        let mut s = String::new();
        let _ = writeln!(s, "wgpu-infer bench — {} — {}", self.date, self.adapter);
        let _ = writeln!(
            s,
            "FMA peak: {:.1} GFLOP/s at the start, {:.1} at the end; load average {} -> {}; shader cache: {}",
            self.peak_gflops, self.peak_end_gflops, self.load[0], self.load[1], self.shader_cache
        );
        if self.noisy {
            let _ = writeln!(
                s,
                "**NOISY RUN**: the two FMA peaks differ by more than {:.0} %; the machine was busy, do not trust these ratios.",
                NOISY_SPREAD * 100.0
            );
        }
        if !torch.is_empty() {
            let _ = writeln!(
                s,
                "PyTorch ran in the same process tree, one repetition after each of ours (alternating)."
            );
        }
        s.push('\n');
        if !self.kernels.is_empty() {
            let _ = writeln!(
                s,
                "| kernel | shape | variant | backend | ms | throughput | % peak | vs CPU ref |"
            );
            let _ = writeln!(s, "|---|---|---|---|---:|---:|---:|---:|");
            for k in &self.kernels {
                let cpu = self
                    .kernels
                    .iter()
                    .find(|c| c.kernel == k.kernel && c.shape == k.shape && c.backend == "cpu");
                let vs = match cpu {
                    Some(c) if k.backend != "cpu" => format!("{:.2}x", c.ms / k.ms),
                    _ => "".into(),
                };
                let pct = k.pct_peak.map_or(String::new(), |p| format!("{p:.1}%"));
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {} | {:.2} | {:.2} {} | {} | {} |",
                    k.kernel, k.shape, k.variant, k.backend, k.ms, k.rate, k.unit, pct, vs
                );
            }
            s.push('\n');
        }
        if !self.models.is_empty() {
            let _ = writeln!(s, "| model | workload | backend | ms | throughput | vs CPU ref | vs PyTorch | cold start | memory | dispatches |");
            let _ = writeln!(s, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
            for m in &self.models {
                let cpu = self
                    .models
                    .iter()
                    .find(|c| c.model == m.model && c.workload == m.workload && c.backend == "cpu");
                let vs = match cpu {
                    Some(c) if m.backend != "cpu" => format!("{:.2}x", m.rate / c.rate),
                    _ => "".into(),
                };
                let vt = torch
                    .iter()
                    .find(|t| t.model == m.model && t.workload == m.workload)
                    .map_or(String::new(), |t| format!("{:.2}x", m.rate / t.rate));
                let _ = writeln!(
                    s,
                    "| {} | {} | {} | {:.1} | {:.1} {} | {} | {} | {:.1} s | {:.0} MiB | {} |",
                    m.model,
                    m.workload,
                    m.backend,
                    m.ms,
                    m.rate,
                    m.unit,
                    vs,
                    vt,
                    m.cold_start_s,
                    m.memory_bytes as f64 / (1 << 20) as f64,
                    m.dispatches
                );
            }
            for t in torch {
                let _ = writeln!(
                    s,
                    "| {} | {} | pytorch ({} threads, {} reps) | {:.1} | {:.1} {} | | 1.00x | | | |",
                    t.model, t.workload, t.threads, t.samples, t.ms, t.rate, t.unit
                );
            }
            // Which kernels each GPU model ran (the tuned or default variants).
            let _ = writeln!(s, "\n| model | backend | kernels of the measured plan |");
            let _ = writeln!(s, "|---|---|---|");
            let mut seen = std::collections::BTreeSet::new();
            for m in &self.models {
                if m.backend == "cpu" || m.kernels.is_empty() {
                    continue;
                }
                if seen.insert((m.model.clone(), m.backend.clone())) {
                    let _ = writeln!(
                        s,
                        "| {} | {} | {} |",
                        m.model,
                        m.backend,
                        m.kernels.join(", ")
                    );
                }
            }
            if !self.tuned.is_empty() {
                let _ = writeln!(s, "\n| tuned shape class | variant | why |");
                let _ = writeln!(s, "|---|---|---|");
                for (k, v, why) in &self.tuned {
                    let _ = writeln!(s, "| `{k}` | {v} | {why} |");
                }
            }
        }
        s
    }
}
