//! Detects objects in an image and writes a copy with labelled boxes.
//!
//! ```sh
//! cargo run --release --example yolo -- tests/fixtures/yolo/yolov8n tests/fixtures/yolo/bus_decoded.png out.png
//! ```

use wgpu_infer::models::yolo::{annotate, DetectOptions, Yolo};
use wgpu_infer::Device;

fn main() -> wgpu_infer::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .expect("usage: yolo <model folder> <image> [annotated.png]");
    let image = args
        .next()
        .expect("usage: yolo <model folder> <image> [annotated.png]");
    let out = args.next().unwrap_or_else(|| "annotated.png".into());

    let model = Yolo::from_pretrained(&Device::new()?, &dir)?;
    let img = wgpu_infer::imageio::load_rgb(image.as_ref())?;
    // ultralytics' predict defaults: 640 letterbox, conf 0.25, IoU 0.7, at most 300 boxes.
    let dets = model.detect_image(&img, &DetectOptions::default())?;
    for d in dets.iter().take(10) {
        println!(
            "{:<14} {:.2}  {:?}",
            d.label,
            d.score,
            d.bbox.map(|v| v.round())
        );
    }
    println!("{} detections; annotated image: {out}", dets.len());
    annotate(&img, &dets)
        .save(&out)
        .map_err(|e| wgpu_infer::Error::Image {
            path: out.clone().into(),
            msg: e.to_string(),
        })?;
    Ok(())
}
