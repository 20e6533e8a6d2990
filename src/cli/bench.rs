use super::bench_core::BenchOptions;
use super::bench_harness;
use super::output;
use super::torch_peer::TorchPeer;
use clap::Args;
use std::io::IsTerminal;
use std::io::Write;
use std::path::PathBuf;
use wgpu_infer::{Device, Error, Result};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Fewer repetitions and skips of the slowest paths (under 5 minutes on lavapipe).
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A Python with torch, transformers and ultralytics: runs the same model workloads in
    /// PyTorch (2 threads) through tools/bench_torch.py, one repetition after each of ours, and
    /// reports the ratio.
    #[arg(long)]
    torch: Option<PathBuf>,
    #[arg(long, conflicts_with = "models_only")]
    kernels_only: bool,
    #[arg(long)]
    models_only: bool,
    /// Only the newer families' rows (MPNet, DINOv2, CLIP, SmolLM2, YOLO11, YOLO11-seg), on the GPU.
    #[arg(long, conflicts_with_all = ["kernels_only", "skip_families"])]
    families_only: bool,
    /// Leave out the newer families' rows.
    #[arg(long)]
    skip_families: bool,
    /// Keep Mesa's on-disk shader cache (cold-start figures then include cache hits).
    #[arg(long)]
    warm_cache: bool,
    /// Folder of YOLOv8n weights (default: the test fixture).
    #[arg(long)]
    yolo: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
    /// Only run the browser benchmark's workloads (a spec written by tools/bench_web.sh) on this
    /// adapter, the same calls timed the same way as web/bench.js; prints JSON.
    #[arg(long, value_name = "SPEC", conflicts_with_all = ["kernels_only", "models_only", "torch"])]
    web_peer: Option<PathBuf>,
}

pub fn run(args: BenchArgs) -> Result<()> {
    if !args.warm_cache {
        // Cold starts must include real shader compiles. Set before any Vulkan instance exists.
        std::env::set_var("MESA_SHADER_CACHE_DISABLE", "true");
    }
    // Checked before minutes of measuring, not after.
    let json = match &args.json {
        Some(p) => Some(output::OutputPath::check("--json", p, &[])?),
        None => None,
    };
    let dev = Device::new()?;
    if let Some(spec) = &args.web_peer {
        let results = super::web_peer::run(spec, &dev)?;
        let text = serde_json::to_string_pretty(&results).expect("plain data");
        match &json {
            Some(out) => out.write(|w| {
                w.write_all(text.as_bytes())
                    .map_err(|e| Error::io(out.path(), e))
            })?,
            None => println!("{text}"),
        }
        return Ok(());
    }
    let opts = BenchOptions {
        quick: args.quick,
        skip_kernels: args.models_only || args.families_only,
        skip_models: args.kernels_only,
        skip_families: args.skip_families,
        families_only: args.families_only,
        yolo_dir: args.yolo.clone(),
    };
    let verbose = !args.quiet && std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let mut peer = match &args.torch {
        Some(py) if !args.kernels_only => {
            if verbose {
                eprintln!("[  0.0s] starting PyTorch via {}", py.display());
            }
            Some(TorchPeer::spawn(py, 2)?)
        }
        _ => None,
    };
    let report = bench_harness::run(&dev, &opts, peer.as_mut(), |what| {
        if verbose {
            eprintln!("[{:>5.1}s] {what}", started.elapsed().as_secs_f64());
        }
    })?;
    drop(peer);
    print!("{}", report.to_markdown());
    println!("\n(total {:.0} s)", started.elapsed().as_secs_f64());
    if report.noisy {
        eprintln!(
            "warning: noisy run: FMA peak {:.1} GFLOP/s at the start, {:.1} at the end",
            report.peak_gflops, report.peak_end_gflops
        );
    }
    if let Some(out) = &json {
        let text = serde_json::to_string_pretty(&report).expect("plain data");
        out.write(|w| {
            w.write_all(text.as_bytes())
                .map_err(|e| Error::io(out.path(), e))
        })?;
    }
    Ok(())
}
