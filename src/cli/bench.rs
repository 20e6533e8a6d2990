use super::bench_harness::{self, BenchOptions, TorchResult};
use super::output;
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
    /// PyTorch (2 threads) through tools/bench_torch.py and reports the ratio.
    #[arg(long)]
    torch: Option<PathBuf>,
    #[arg(long, conflicts_with = "models_only")]
    kernels_only: bool,
    #[arg(long)]
    models_only: bool,
    /// Keep Mesa's on-disk shader cache (cold-start figures then include cache hits).
    #[arg(long)]
    warm_cache: bool,
    /// Folder of YOLOv8n weights (default: the test fixture).
    #[arg(long)]
    yolo: Option<PathBuf>,
    /// No progress lines on stderr.
    #[arg(long)]
    quiet: bool,
}

fn torch_results(python: &PathBuf, quick: bool) -> Result<Vec<TorchResult>> {
    let script = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/bench_torch.py"));
    // A fresh private file (O_EXCL, random name), removed when `tmp` drops.
    let tmp = tempfile::Builder::new()
        .prefix("wgpu-infer-torch-")
        .suffix(".json")
        .tempfile()
        .map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let out = tmp.path().to_path_buf();
    let mut cmd = std::process::Command::new(python);
    cmd.arg(&script)
        .arg("models")
        .arg("--threads")
        .arg("2")
        .arg("--json")
        .arg(&out);
    if quick {
        cmd.arg("--quick");
    }
    let status = cmd.status().map_err(|e| Error::io(python, e))?;
    if !status.success() {
        return Err(Error::InvalidArgument(format!(
            "{} {} failed ({status})",
            python.display(),
            script.display()
        )));
    }
    let text = std::fs::read_to_string(&out).map_err(|e| Error::io(&out, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        path: out,
        msg: format!("unexpected output of bench_torch.py: {e}"),
    })
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
    let opts = BenchOptions {
        quick: args.quick,
        skip_kernels: args.models_only,
        skip_models: args.kernels_only,
        yolo_dir: args.yolo.clone(),
    };
    let verbose = !args.quiet && std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let report = bench_harness::run(&dev, &opts, |what| {
        if verbose {
            eprintln!("[{:>5.1}s] {what}", started.elapsed().as_secs_f64());
        }
    })?;
    let torch = match &args.torch {
        Some(py) if !args.kernels_only => {
            if verbose {
                eprintln!(
                    "[{:>5.1}s] PyTorch via {}",
                    started.elapsed().as_secs_f64(),
                    py.display()
                );
            }
            torch_results(py, args.quick)?
        }
        _ => Vec::new(),
    };
    print!("{}", report.to_markdown(&torch));
    println!("\n(total {:.0} s)", started.elapsed().as_secs_f64());
    if let Some(out) = &json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            report: &'a bench_harness::Report,
            torch: &'a [TorchResult],
        }
        let text = serde_json::to_string_pretty(&Out {
            report: &report,
            torch: &torch,
        })
        .expect("plain data");
        out.write(|w| {
            w.write_all(text.as_bytes())
                .map_err(|e| Error::io(out.path(), e))
        })?;
    }
    Ok(())
}
