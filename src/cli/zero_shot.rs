use super::ModelArgs;
use clap::Args;
use std::path::PathBuf;
use wgpu_infer::models::clip::{Clip, LabelScore};
use wgpu_infer::{Error, Result};

/// `--model`: a CLIP folder (config.json, model.safetensors, tokenizer.json,
/// preprocessor_config.json).
#[derive(Args, Debug)]
pub struct ZeroShotArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Candidate labels, e.g. "a photo of a bus" "a photo of a cat". Image files may follow
    /// them directly (trailing values that name existing files are the images).
    #[arg(long, num_args = 1.., required = true)]
    labels: Vec<String>,
    /// Image files (JPEG, PNG, WebP, ...).
    images: Vec<PathBuf>,
}

pub fn run(mut args: ZeroShotArgs) -> Result<()> {
    if args.images.is_empty() {
        // `--labels a b img.jpg`: clap gives every value to --labels.
        let split = args
            .labels
            .iter()
            .rposition(|l| !std::path::Path::new(l).is_file())
            .map_or(0, |i| i + 1);
        args.images = args
            .labels
            .split_off(split)
            .into_iter()
            .map(PathBuf::from)
            .collect();
    }
    if args.images.is_empty() {
        return Err(Error::InvalidArgument(
            "no images: give image files after the labels (or before --labels)".into(),
        ));
    }
    if args.labels.is_empty() {
        return Err(Error::InvalidArgument("no labels given".into()));
    }
    let model = super::load(
        &args.model,
        |b, d, o| Clip::load_with(b, d, o),
        Clip::warnings,
    )?;
    let labels: Vec<&str> = args.labels.iter().map(String::as_str).collect();
    model.check_lengths(&labels)?;
    let scores = model.zero_shot(&args.images, &labels)?;
    #[derive(serde::Serialize)]
    struct Out<'a> {
        image: String,
        scores: &'a [LabelScore],
    }
    let out: Vec<Out> = args
        .images
        .iter()
        .zip(&scores)
        .map(|(p, s)| Out {
            image: p.display().to_string(),
            scores: s,
        })
        .collect();
    println!("{}", serde_json::to_string(&out).expect("plain data"));
    Ok(())
}
