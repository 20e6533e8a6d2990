use super::{backend, resolve_model, BackendKind};
use clap::Args;
use std::path::PathBuf;
use wgpu_infer::models::yolo::{annotate, DetectOptions, Yolo};
use wgpu_infer::{Error, Result};

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// Folder with model.safetensors (ultralytics YOLOv8 state_dict) and config.json
    /// (`tools/yolo_to_safetensors.py` writes both).
    #[arg(long)]
    model: String,
    #[arg(long, default_value_t = 0.25)]
    conf: f32,
    #[arg(long, default_value_t = 0.7)]
    iou: f32,
    #[arg(long, default_value_t = 640)]
    imgsz: usize,
    #[arg(long, default_value_t = 300)]
    max_det: usize,
    #[arg(long, value_enum, default_value = "gpu")]
    backend: BackendKind,
    /// No progress bars or warnings on stderr.
    #[arg(long)]
    quiet: bool,
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
    if let Some(out) = &args.out {
        image::ImageFormat::from_path(out).map_err(|e| Error::Image {
            path: out.clone(),
            msg: format!("unsupported output format: {e}"),
        })?;
    }
    let dir = resolve_model(&args.model, args.quiet)?;
    let model = Yolo::load(backend(args.backend)?, dir)?;
    if !args.quiet {
        for w in model.warnings() {
            eprintln!("warning: {w}");
        }
    }
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
