use super::{ModelArgs, WeightDtype};
use clap::Args;
use std::path::PathBuf;
use wgpu_infer::models::yolo::{annotate, DetectOptions, Yolo};
use wgpu_infer::{Error, Result};

/// `--model`: a folder with model.safetensors (ultralytics YOLOv8 state_dict) and config.json
/// (`tools/yolo_to_safetensors.py` writes both).
#[derive(Args, Debug)]
pub struct DetectArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long, default_value_t = 0.25)]
    conf: f32,
    #[arg(long, default_value_t = 0.7)]
    iou: f32,
    #[arg(long, default_value_t = 640)]
    imgsz: usize,
    #[arg(long, default_value_t = 300)]
    max_det: usize,
    /// Also write the image with labelled boxes (PNG, JPEG, ... by extension).
    #[arg(long)]
    out: Option<PathBuf>,
    image: PathBuf,
}

pub fn run(args: DetectArgs) -> Result<()> {
    let opts = DetectOptions {
        conf: args.conf,
        iou: args.iou,
        imgsz: args.imgsz,
        max_det: args.max_det,
        rect: true,
    };
    opts.validate()?;
    if args.model.dtype != WeightDtype::F32 {
        return Err(Error::InvalidArgument(
            "YOLO weights load as f32 only (--dtype f32)".into(),
        ));
    }
    if let Some(out) = &args.out {
        image::ImageFormat::from_path(out).map_err(|e| Error::Image {
            path: out.clone(),
            msg: format!("unsupported output format: {e}"),
        })?;
    }
    let model = super::load(&args.model, |b, dir, _| Yolo::load(b, dir), Yolo::warnings)?;
    let img = wgpu_infer::imageio::load_rgb(&args.image)?;
    let dets = model.detect_image(&img, &opts)?;
    if let Some(out) = &args.out {
        // Written to a temporary name first: never a half-written file at `out`.
        let tmp = out.with_file_name(format!(
            ".{}.partial",
            out.file_name()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
        ));
        let fmt = image::ImageFormat::from_path(out).expect("checked above");
        annotate(&img, &dets)
            .save_with_format(&tmp, fmt)
            .map_err(|e| Error::Image {
                path: out.clone(),
                msg: format!("cannot write: {e}"),
            })?;
        std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
    }
    println!("{}", serde_json::to_string(&dets).expect("plain data"));
    Ok(())
}
