use super::{output, ModelArgs, WeightDtype};
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
    // The output is checked before anything runs: its format has an encoder, its directory
    // exists, and it is not the input.
    let out = match &args.out {
        Some(path) => {
            let fmt = image::ImageFormat::from_path(path)
                .ok()
                .filter(|f| f.can_write() && f.writing_enabled())
                .ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "--out {}: unsupported output format (use .png, .jpg, .webp, .bmp or .gif)",
                        path.display()
                    ))
                })?;
            Some((
                output::OutputPath::check("--out", path, &[&args.image])?,
                fmt,
            ))
        }
        None => None,
    };
    let model = super::load(&args.model, |b, dir, _| Yolo::load(b, dir), Yolo::warnings)?;
    // As ultralytics reads it (cv2.imread).
    let img =
        wgpu_infer::imageio::load_rgb_as(&args.image, wgpu_infer::imageio::Convention::OpenCv)?;
    let dets = model.detect_image(&img, &opts)?;
    if let Some((out, fmt)) = &out {
        let annotated = annotate(&img, &dets);
        out.write(|w| {
            annotated.write_to(w, *fmt).map_err(|e| Error::Image {
                path: out.path().to_path_buf(),
                msg: format!("cannot write: {e}"),
            })
        })?;
    }
    println!("{}", serde_json::to_string(&dets).expect("plain data"));
    Ok(())
}
