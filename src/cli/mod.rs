//! Subcommands of the `wgpu-infer` binary.

mod bench;
mod classify;
mod detect;
mod embed;
mod generate;
mod info;
mod inspect;

use clap::{Parser, Subcommand, ValueEnum};
use wgpu_infer::{Backend, Device, Result};

#[derive(Parser, Debug)]
#[command(
    name = "wgpu-infer",
    version,
    about = "GPU inference with hand-written WGSL kernels: BERT, GPT-2, ViT, YOLOv8"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show the adapters wgpu can see, the one chosen, its limits and features.
    Info(info::InfoArgs),
    /// Measure kernels and models on this adapter (GPU vs CPU reference, optionally PyTorch).
    Bench(bench::BenchArgs),
    /// Sentence embeddings from a BERT / sentence-transformers folder, as JSON.
    Embed(embed::EmbedArgs),
    /// Text generation with a GPT-2 folder (streams text; --json for one object at the end).
    Generate(generate::GenerateArgs),
    /// Image classification with a ViT folder: top-k labels per image, as JSON.
    Classify(classify::ClassifyArgs),
    /// Object detection with a YOLOv8 folder: boxes as JSON, optionally an annotated image.
    Detect(detect::DetectArgs),
    /// List a safetensors file's tensors (dtype, shape, bytes) and the detected model type.
    Inspect(inspect::InspectArgs),
}

/// Where to run: the GPU (wgpu adapter) or the CPU reference kernels.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendKind {
    Gpu,
    Cpu,
}

/// Storage type of the large weights (matmul weights, embedding tables).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum WeightDtype {
    F32,
    /// Half the weight bytes; arithmetic stays f32 (within 1e-2 of f32 results).
    F16,
}

/// Load options from the CLI flags; the loading bar shows unless `quiet` (and only on a
/// terminal).
pub fn load_options(d: WeightDtype, quiet: bool) -> wgpu_infer::LoadOptions {
    wgpu_infer::LoadOptions::with_dtype(match d {
        WeightDtype::F32 => wgpu_infer::DType::F32,
        WeightDtype::F16 => wgpu_infer::DType::F16,
    })
    .with_progress(!quiet)
}

/// `--model`: a local folder, or a hub id (org/name) from the Hugging Face cache, downloaded
/// when missing and online (progress on stderr unless `quiet`).
pub fn resolve_model(spec: &str, quiet: bool) -> Result<std::path::PathBuf> {
    use std::io::IsTerminal;
    let mut opts = wgpu_infer::hub::HubOptions::from_env();
    opts.progress = !quiet && std::io::stderr().is_terminal();
    wgpu_infer::hub::resolve(spec, &opts)
}

pub fn backend(kind: BackendKind) -> Result<Backend> {
    Ok(match kind {
        BackendKind::Gpu => Backend::Gpu(Device::new()?),
        BackendKind::Cpu => Backend::Cpu,
    })
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info(a) => info::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Embed(a) => embed::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Classify(a) => classify::run(a),
        Command::Detect(a) => detect::run(a),
        Command::Inspect(a) => inspect::run(a),
    }
}
