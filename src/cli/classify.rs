use super::{backend, load_options, resolve_model, BackendKind, WeightDtype};
use clap::Args;
use std::path::PathBuf;
use wgpu_infer::models::vit::{Prediction, Vit};
use wgpu_infer::Result;

#[derive(Args, Debug)]
pub struct ClassifyArgs {
    /// HuggingFace ViT folder (config.json, model.safetensors, preprocessor_config.json), or a hub id (org/name).
    #[arg(long)]
    model: String,
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    #[arg(long, value_enum, default_value = "gpu")]
    backend: BackendKind,
    /// No progress bars or warnings on stderr.
    #[arg(long)]
    quiet: bool,
    /// Storage type of the weights (f16 halves their memory; arithmetic stays f32).
    #[arg(long, value_enum, default_value = "f32")]
    dtype: WeightDtype,
    /// Image files (JPEG, PNG, WebP, ...), classified in one batch.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub fn run(args: ClassifyArgs) -> Result<()> {
    let dir = resolve_model(&args.model, args.quiet)?;
    let model = Vit::load_with(
        backend(args.backend)?,
        &dir,
        &load_options(args.dtype, args.quiet),
    )?;
    if !args.quiet {
        for w in model.warnings() {
            eprintln!("warning: {w}");
        }
    }
    let top = model.classify(&args.images, args.top_k.min(model.labels().len().max(1)))?;
    #[derive(serde::Serialize)]
    struct Out<'a> {
        image: String,
        top: &'a [Prediction],
    }
    let out: Vec<Out> = args
        .images
        .iter()
        .zip(&top)
        .map(|(p, t)| Out {
            image: p.display().to_string(),
            top: t,
        })
        .collect();
    println!("{}", serde_json::to_string(&out).expect("plain data"));
    Ok(())
}
