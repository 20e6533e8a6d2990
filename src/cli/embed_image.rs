use super::ModelArgs;
use clap::Args;
use std::path::PathBuf;
use wgpu_infer::models::clip::Clip;
use wgpu_infer::models::vit::Vit;
use wgpu_infer::models::ModelKind;
use wgpu_infer::Result;

/// `--model`: a ViT, DeiT or DINOv2 folder (config.json, model.safetensors,
/// preprocessor_config.json), or a CLIP folder (normalized image embeddings).
#[derive(Args, Debug)]
pub struct EmbedImageArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Image files (JPEG, PNG, WebP, ...), embedded in one batch.
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

pub fn run(args: EmbedImageArgs) -> Result<()> {
    let vecs = if super::folder_kind(&args.model)? == Some(ModelKind::Clip) {
        let model = super::load(
            &args.model,
            |b, d, o| Clip::load_with(b, d, o),
            Clip::warnings,
        )?;
        model.embed_images(&args.images)?
    } else {
        let model = super::load(
            &args.model,
            |b, d, o| Vit::load_with(b, d, o),
            Vit::warnings,
        )?;
        model.embed(&args.images)?
    };
    #[derive(serde::Serialize)]
    struct Out<'a> {
        image: String,
        embedding: &'a [f32],
    }
    let out: Vec<Out> = args
        .images
        .iter()
        .zip(&vecs)
        .map(|(p, v)| Out {
            image: p.display().to_string(),
            embedding: v,
        })
        .collect();
    println!("{}", serde_json::to_string(&out).expect("plain data"));
    Ok(())
}
