use super::ModelArgs;
use clap::Args;
use std::path::PathBuf;
use wgpu_infer::models::vision::Prediction;
use wgpu_infer::models::vit::Vit;
use wgpu_infer::Result;

/// `--model`: a ViT folder (config.json, model.safetensors, preprocessor_config.json).
#[derive(Args, Debug)]
pub struct ClassifyArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long, default_value_t = 5)]
    top_k: usize,
    /// Image files (JPEG, PNG, WebP, ...), classified in one batch.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub fn run(args: ClassifyArgs) -> Result<()> {
    let model = super::load(
        &args.model,
        |b, d, o| Vit::load_with(b, d, o),
        Vit::warnings,
    )?;
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
