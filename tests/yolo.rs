//! YOLOv8 and YOLO11 vs ultralytics on the committed fixtures (GPU and CPU): the decoded head
//! output, the `predict` detections on bus.jpg, letterboxing, and bad inputs.

mod common;
use common::{assets, compare, record};
use std::path::{Path, PathBuf};
use wgpu_infer::models::yolo::{to_tensor, DetectOptions, Detection, Letterbox, Yolo};
use wgpu_infer::weights::Weights;
use wgpu_infer::Tensor;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/yolo")
        .join(name)
}

fn levels_image(t: &Tensor) -> image::RgbImage {
    let (h, w) = (t.shape()[1], t.shape()[2]);
    let v = t.as_u32().unwrap();
    image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        image::Rgb([v[i] as u8, v[h * w + i] as u8, v[2 * h * w + i] as u8])
    })
}

struct Want {
    boxes: Vec<[f32; 4]>,
    scores: Vec<f32>,
    classes: Vec<usize>,
}

fn want(r: &Weights) -> Want {
    let b = r.get("bus640.boxes").unwrap();
    Want {
        boxes: b
            .as_f32()
            .unwrap()
            .chunks(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect(),
        scores: r.get("bus640.scores").unwrap().as_f32().unwrap().to_vec(),
        classes: r
            .get_u32("bus640.classes")
            .unwrap()
            .as_u32()
            .unwrap()
            .iter()
            .map(|&c| c as usize)
            .collect(),
    }
}

/// Matches detections to the reference (same order: both sorted by score) and returns the worst
/// box (px) and score differences.
fn match_detections(label: &str, got: &[Detection], w: &Want) -> (f32, f32) {
    assert_eq!(got.len(), w.scores.len(), "{label}: detection count");
    let (mut wb, mut ws) = (0.0f32, 0.0f32);
    for (i, d) in got.iter().enumerate() {
        // Near-equal scores may swap places; find the reference with the same class and box.
        let j = (0..w.scores.len())
            .filter(|&j| w.classes[j] == d.class_id)
            .min_by(|&a, &b| {
                let da: f32 = (0..4).map(|k| (w.boxes[a][k] - d.bbox[k]).abs()).sum();
                let db: f32 = (0..4).map(|k| (w.boxes[b][k] - d.bbox[k]).abs()).sum();
                da.total_cmp(&db)
            })
            .unwrap_or_else(|| {
                panic!(
                    "{label}: detection {i} has class {} absent from the reference",
                    d.class_id
                )
            });
        for k in 0..4 {
            wb = wb.max((w.boxes[j][k] - d.bbox[k]).abs());
        }
        ws = ws.max((w.scores[j] - d.score).abs());
    }
    (wb, ws)
}

#[test]
fn head_output_matches_ultralytics() {
    head_output_matches_ultralytics_for("yolov8n");
}

fn head_output_matches_ultralytics_for(name: &str) {
    let r = Weights::open(fixture(name).join("reference.safetensors")).unwrap();
    let img = levels_image(&r.get_u32("head320.input_levels").unwrap());
    let input = to_tensor(&img).unwrap();
    let want = r.get("head320.decoded").unwrap();
    for backend in common::model_backends() {
        let m = Yolo::load(backend.clone(), fixture(name)).unwrap();
        assert!(m.warnings().is_empty(), "{:?}", m.warnings());
        let got = m.forward(&input).unwrap();
        assert_eq!(got.shape(), &[1, 84, 2100]);
        let (a, _) = compare(
            &format!("{name} head {}", common::label(&backend)),
            &got,
            &want,
            1e-3,
            0.0,
        );
        record(&format!("{name} head"), common::label(&backend), a, 0.0);
    }
    common::print_table_for(&format!("{name} head"));
}

/// ultralytics' exact letterboxed input → our network + NMS + box scaling: the same
/// detections as `predict` (count, classes, boxes within 1 px, scores within 1e-3).
#[test]
fn predict_on_ultralytics_letterboxed_input() {
    predict_on_ultralytics_letterboxed_input_for("yolov8n");
}

fn predict_on_ultralytics_letterboxed_input_for(name: &str) {
    let r = Weights::open(fixture(name).join("reference.safetensors")).unwrap();
    let lb_img = levels_image(&r.get_u32("bus640.input_levels").unwrap());
    assert_eq!(lb_img.dimensions(), (480, 640));
    let w = want(&r);
    let lb = Letterbox {
        orig_w: 810,
        orig_h: 1080,
        w: 480,
        h: 640,
    };
    for backend in common::model_backends() {
        let m = Yolo::load(backend.clone(), fixture(name)).unwrap();
        let pred = m.forward(&to_tensor(&lb_img).unwrap()).unwrap();
        let dets = m
            .postprocess(
                pred.as_f32().unwrap(),
                pred.shape()[2],
                &lb,
                &DetectOptions::default(),
                None,
            )
            .unwrap();
        let label = format!("{name} predict {}", common::label(&backend));
        let (b, s) = match_detections(&label, &dets, &w);
        println!(
            "PARITY {label}: {} detections, max box diff {b:.2e} px, max score diff {s:.2e}",
            dets.len()
        );
        assert!(
            b <= 1.0 && s <= 1e-3,
            "{label}: box diff {b}, score diff {s}"
        );
        assert!(
            dets.windows(2).all(|p| p[0].score >= p[1].score),
            "sorted by score"
        );
    }
}

/// The whole pipeline from an image file (decode, letterbox, network, NMS, box scaling) on
/// bus.jpg as OpenCV decodes it, stored losslessly: the same detections as ultralytics'
/// `predict` (count, classes, boxes within 1 px, scores within 1e-3).
#[test]
fn predict_from_an_image_file() {
    predict_from_an_image_file_for("yolov8n");
}

fn predict_from_an_image_file_for(name: &str) {
    let r = Weights::open(fixture(name).join("reference.safetensors")).unwrap();
    let w = want(&r);
    let png = fixture("bus_decoded.png");
    for backend in common::model_backends() {
        let m = Yolo::load(backend.clone(), fixture(name)).unwrap();
        let dets = m.detect(&png, &DetectOptions::default()).unwrap();
        let label = format!("{name} file {}", common::label(&backend));
        let (b, s) = match_detections(&label, &dets, &w);
        println!(
            "PARITY {label}: {} detections, max box diff {b:.2e} px, max score diff {s:.2e}",
            dets.len()
        );
        assert!(
            b <= 1.0 && s <= 1e-3,
            "{label}: box diff {b}, score diff {s}"
        );
        if common::label(&backend) == "gpu" && name == "yolov8n" {
            // The annotated image, written where the closing note points.
            let out =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-output/bus_annotated.png");
            std::fs::create_dir_all(out.parent().unwrap()).unwrap();
            let img = wgpu_infer::imageio::load_rgb(&png).unwrap();
            wgpu_infer::models::yolo::annotate(&img, &dets)
                .save(&out)
                .unwrap();
            println!("annotated image: {}", out.display());
        }
    }
}

/// From the JPEG itself, as ultralytics reads it (`cv2.imread`, libjpeg-turbo): the decoded
/// pixels, hence the letterbox, are bit-exact, and the detections are ultralytics' `predict` on
/// bus.jpg (boxes within 0.1 px, scores within 1e-4).
#[test]
fn predict_from_the_jpeg() {
    predict_from_the_jpeg_for("yolov8n");
}

fn predict_from_the_jpeg_for(name: &str) {
    let r = Weights::open(fixture(name).join("reference.safetensors")).unwrap();
    let w = want(&r);
    let bus = assets().join("bus.jpg");
    let img =
        wgpu_infer::imageio::load_rgb_as(&bus, wgpu_infer::imageio::Convention::OpenCv).unwrap();
    let png = wgpu_infer::imageio::load_rgb(&fixture("bus_decoded.png")).unwrap();
    assert_eq!(img, png, "bus.jpg decodes to OpenCV's pixels");
    let (lb_img, lb) = Yolo::letterbox(&img, 640, true).unwrap();
    assert_eq!((lb.w, lb.h), (480, 640));
    let ref_lb = levels_image(&r.get_u32("bus640.input_levels").unwrap());
    assert_eq!(
        lb_img.as_raw(),
        ref_lb.as_raw(),
        "the letterbox of the JPEG is bit-exact with ultralytics'"
    );
    for backend in common::model_backends() {
        let m = Yolo::load(backend.clone(), fixture(name)).unwrap();
        let dets = m.detect(&bus, &DetectOptions::default()).unwrap();
        let label = format!("{name} jpeg {}", common::label(&backend));
        let (b, s) = match_detections(&label, &dets, &w);
        println!(
            "PARITY {label}: {} detections, max box diff {b:.2e} px, max score diff {s:.2e}",
            dets.len()
        );
        assert!(
            b <= 0.1 && s <= 1e-4,
            "{label}: box diff {b}, score diff {s}"
        );
        assert!(
            dets.windows(2).all(|p| p[0].score >= p[1].score),
            "sorted by score"
        );
    }
}

/// YOLO11n (C3k2, C2PSA attention, depthwise convs in the head): the head output within 1e-3
/// of ultralytics' float64 oracle, and `predict`'s detections on bus.jpg.
#[test]
fn yolo11_head_output_matches_ultralytics() {
    head_output_matches_ultralytics_for("yolo11n");
}

#[test]
fn yolo11_predict_on_ultralytics_letterboxed_input() {
    predict_on_ultralytics_letterboxed_input_for("yolo11n");
}

#[test]
fn yolo11_predict_from_the_jpeg() {
    predict_from_the_jpeg_for("yolo11n");
}

#[test]
fn yolo11_is_detected() {
    let text = std::fs::read_to_string(fixture("yolo11n").join("config.json")).unwrap();
    let c = wgpu_infer::models::parse_config(&text).unwrap();
    assert_eq!(c.model_type(), "yolo11");
    let w = Weights::open(fixture("yolo11n").join("model.safetensors")).unwrap();
    assert_eq!(wgpu_infer::models::detect_model_type(&w), Some("yolo11"));
    let w = Weights::open(fixture("yolov8n").join("model.safetensors")).unwrap();
    assert_eq!(wgpu_infer::models::detect_model_type(&w), Some("yolov8"));
}
