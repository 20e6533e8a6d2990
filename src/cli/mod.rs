//! Subcommands of the `wgpu-infer` binary. User-facing text (hints, progress bars) lives here,
//! not in the library.

mod bench;
mod bench_core;
mod bench_decoders;
mod bench_families;
mod bench_harness;
mod chat;
mod classify;
mod detect;
mod embed;
mod embed_image;
mod generate;
mod info;
mod inspect;
mod output;
mod rerank;
mod serve;
mod torch_peer;
mod tune;
mod web_peer;
mod zero_shot;

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use wgpu_infer::models::ModelKind;
use wgpu_infer::{Backend, DType, Device, Error, LoadOptions, Result};

#[derive(Parser, Debug)]
#[command(
    name = "wgpu-infer",
    version,
    about = "GPU inference with hand-written WGSL kernels: BERT (and RoBERTa, XLM-R, DistilBERT, MPNet), GPT-2, ViT (and DeiT, DINOv2), CLIP, YOLOv8"
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
    /// Sentence embeddings from a BERT-family / sentence-transformers folder, or normalized
    /// text embeddings from a CLIP folder, as JSON.
    Embed(embed::EmbedArgs),
    /// Rank documents for a query with a cross-encoder (BertForSequenceClassification, 1 label):
    /// [{"index", "score"}] best first, score = sigmoid(logit) unless --raw-scores.
    Rerank(rerank::RerankArgs),
    /// Text generation with a GPT-2 or Llama / Qwen2 folder (streams text; --json for one
    /// object at the end).
    Generate(generate::GenerateArgs),
    /// Chat with a chat model (Llama / Qwen2 / SmolLM folders with a chat template): one turn
    /// with --message, otherwise one user turn per line of stdin.
    Chat(chat::ChatArgs),
    /// Image classification with a ViT folder: top-k labels per image, as JSON.
    Classify(classify::ClassifyArgs),
    /// Image embeddings with a ViT / DeiT / DINOv2 folder: [{"image", "embedding"}] (the pooler
    /// output when the checkpoint has one, else the final CLS token); normalized image
    /// embeddings with a CLIP folder.
    EmbedImage(embed_image::EmbedImageArgs),
    /// Zero-shot image classification with a CLIP folder: [{"image", "scores": [{"label",
    /// "score"}]}], the softmax over the labels, best first.
    ZeroShot(zero_shot::ZeroShotArgs),
    /// Object detection with a YOLOv8 folder: boxes as JSON, optionally an annotated image.
    Detect(detect::DetectArgs),
    /// List a safetensors file's tensors (dtype, shape, bytes) and the detected model type.
    Inspect(inspect::InspectArgs),
    /// Serve the models over HTTP: TEI- and OpenAI-compatible endpoints, dynamic batching.
    Serve(serve::ServeArgs),
    /// Show (or reset) the kernel choices the autotuner cached for this adapter.
    Tune(tune::TuneArgs),
}

/// Where to run: the GPU (wgpu adapter) or the CPU reference kernels.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum BackendKind {
    Gpu,
    Cpu,
}

/// Storage type of the large weights (matmul weights, embedding tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WeightDtype {
    F32,
    /// Half the weight bytes; arithmetic stays f32 (within 1e-2 of f32 results).
    F16,
    /// Symmetric int8 with one f32 scale per 32 weights (≈ 28 % of the f32 bytes), dequantized
    /// in the kernels; arithmetic stays f32 (text and vision transformers).
    Q8,
}

/// The flags every model command shares.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// Model folder (config.json, model.safetensors, ...), or a Hugging Face hub id (org/name)
    /// from the hub cache, downloaded when missing and online.
    #[arg(long)]
    pub model: String,
    #[arg(long, value_enum, default_value = "gpu")]
    pub backend: BackendKind,
    /// Storage type of the weights (f16 halves their memory, q8 stores int8 with block scales;
    /// arithmetic stays f32).
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: WeightDtype,
    /// No progress bars or warnings on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl ModelArgs {
    /// `--model` as a folder: a local one as is, a hub id through the hub cache.
    pub fn dir(&self) -> Result<PathBuf> {
        use std::io::IsTerminal;
        let mut opts = wgpu_infer::hub::HubOptions::from_env();
        opts.progress = !self.quiet && std::io::stderr().is_terminal();
        wgpu_infer::hub::resolve(&self.model, &opts)
    }

    pub fn backend(&self) -> Result<Backend> {
        Ok(match self.backend {
            BackendKind::Gpu => Backend::Gpu(Device::new()?),
            BackendKind::Cpu => Backend::Cpu,
        })
    }

    /// Load options from the flags, with a loading bar on a terminal unless `--quiet`; clear
    /// the returned bar once loaded.
    pub fn load_options(&self) -> (LoadOptions, indicatif::ProgressBar) {
        use std::io::IsTerminal;
        let dtype = match self.dtype {
            WeightDtype::F32 => DType::F32,
            WeightDtype::F16 => DType::F16,
            WeightDtype::Q8 => DType::Q8,
        };
        let opts = LoadOptions::with_dtype(dtype);
        if self.quiet || !std::io::stderr().is_terminal() {
            return (opts, indicatif::ProgressBar::hidden());
        }
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("loading [{bar:30}] {pos}/{len} tensors")
                .expect("valid template")
                .progress_chars("=> "),
        );
        let b = bar.clone();
        let opts = opts.with_progress(move |done, total| {
            b.set_length(total as u64);
            b.set_position(done as u64);
        });
        (opts, bar)
    }

    /// Prints load warnings unless `--quiet`.
    pub fn warn(&self, warnings: &[String]) {
        if !self.quiet {
            for w in warnings {
                eprintln!("warning: {w}");
            }
        }
    }
}

/// The family of `--model`'s folder, from its config.json (`None` when it has none or the
/// config does not parse: the family's loader then reports why).
pub fn folder_kind(args: &ModelArgs) -> Result<Option<ModelKind>> {
    let dir = args.dir()?;
    // Read as the loaders read it (a FIFO or an oversized file is refused, not waited on).
    let text = wgpu_infer::models::ModelFiles::open(&dir)
        .ok()
        .and_then(|f| f.text("config.json").ok().flatten());
    Ok(text
        .and_then(|t| wgpu_infer::models::parse_config(&t).ok())
        .map(|c| c.kind()))
}

/// Loads a model with `load(backend, dir, options)`, with the loading bar and warnings of the
/// shared flags.
pub fn load<M>(
    args: &ModelArgs,
    load: impl FnOnce(Backend, &std::path::Path, &LoadOptions) -> Result<M>,
    warnings: impl Fn(&M) -> &[String],
) -> Result<M> {
    let dir = args.dir()?;
    let backend = args.backend()?;
    let (opts, bar) = args.load_options();
    let model = load(backend, &dir, &opts);
    bar.finish_and_clear();
    let model = model?;
    args.warn(warnings(&model));
    Ok(model)
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info(a) => info::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Embed(a) => embed::run(a),
        Command::Rerank(a) => rerank::run(a),
        Command::Generate(a) => generate::run(a),
        Command::Chat(a) => chat::run(a),
        Command::Classify(a) => classify::run(a),
        Command::EmbedImage(a) => embed_image::run(a),
        Command::ZeroShot(a) => zero_shot::run(a),
        Command::Detect(a) => detect::run(a),
        Command::Inspect(a) => inspect::run(a),
        Command::Serve(a) => serve::run(a),
        Command::Tune(a) => tune::run(a),
    }
}

/// An error as the CLI prints it: the library's message, plus which command runs a folder of
/// another model family.
pub fn describe(e: &Error) -> String {
    match e {
        Error::WrongModel { found, .. } => {
            let hint = match ModelKind::from_name(found) {
                Some(ModelKind::Bert) => " (`wgpu-infer embed` / `rerank` run it)",
                Some(ModelKind::Gpt2) => " (`wgpu-infer generate` runs GPT-2)",
                Some(ModelKind::Vit) => " (`wgpu-infer classify` / `embed-image` run it)",
                Some(ModelKind::Yolo) => " (`wgpu-infer detect` runs YOLOv8)",
                Some(ModelKind::Clip) => {
                    " (`wgpu-infer zero-shot`, `embed` and `embed-image` run CLIP)"
                }
                Some(ModelKind::Llama) => " (`wgpu-infer generate` runs it)",
                None => "",
            };
            format!("{e}{hint}")
        }
        Error::NoAdapter { .. } => format!("{e} (`wgpu-infer info` shows them)"),
        e => e.to_string(),
    }
}
