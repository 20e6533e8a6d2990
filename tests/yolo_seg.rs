//! YOLOv8-seg and YOLO11-seg vs ultralytics on tests/fixtures/yolo/{yolov8n,yolo11n}-seg
//! (tools/fixtures/gen_yolo.py): the head outputs (boxes, scores, mask coefficients, prototypes)
//! against a float64 oracle, `predict`'s detections and per-instance masks on bus.jpg, and the
//! contour tracer against OpenCV's on ultralytics' own masks.

mod common;
use common::{compare, record};
use std::path::{Path, PathBuf};
use wgpu_infer::models::contours::external_contours;
use wgpu_infer::models::yolo::{to_tensor, DetectOptions, Letterbox, Yolo};
use wgpu_infer::weights::Weights;
use wgpu_infer::Tensor;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/yolo")
        .join(name)
}

fn ints(r: &Weights, key: &str) -> Vec<usize> {
    r.get_u32(key)
        .unwrap()
        .as_u32()
        .unwrap()
        .iter()
        .map(|&v| v as usize)
        .collect()
}

/// ultralytics' masks (`masks.data`, letterbox resolution) from their run lengths.
fn reference_masks(r: &Weights) -> (Vec<Vec<u8>>, usize, usize) {
    let shape = ints(r, "bus640.mask_shape");
    let (n, h, w) = (shape[0], shape[1], shape[2]);
    let (runs, off) = (
        ints(r, "bus640.mask_runs"),
        ints(r, "bus640.mask_run_offsets"),
    );
    let masks = (0..n)
        .map(|i| {
            let mut m = Vec::with_capacity(h * w);
            for (k, &len) in runs[off[i]..off[i + 1]].iter().enumerate() {
                m.extend(std::iter::repeat_n((k % 2) as u8, len));
            }
            assert_eq!(m.len(), h * w);
            m
        })
        .collect();
    (masks, h, w)
}

/// OpenCV's external contours of each reference mask.
fn reference_contours(r: &Weights) -> Vec<Vec<Vec<(i32, i32)>>> {
    let (pts, p_off, m_off) = (
        ints(r, "bus640.contour_points"),
        ints(r, "bus640.contour_offsets"),
        ints(r, "bus640.mask_contours"),
    );
    (0..m_off.len() - 1)
        .map(|i| {
            (m_off[i]..m_off[i + 1])
                .map(|c| {
                    pts[p_off[c]..p_off[c + 1]]
                        .chunks(2)
                        .map(|p| (p[0] as i32, p[1] as i32))
                        .collect()
                })
                .collect()
        })
        .collect()
}

#[test]
fn contours_match_opencv_on_ultralytics_masks() {
    for name in ["yolov8n-seg", "yolo11n-seg"] {
        let r = Weights::open(fixture(name).join("reference.safetensors")).unwrap();
        let (masks, h, w) = reference_masks(&r);
        let want = reference_contours(&r);
        let mut n = 0;
        for (i, (m, c)) in masks.iter().zip(&want).enumerate() {
            let got = external_contours(m, w, h);
            assert_eq!(got.len(), c.len(), "{name} mask {i}: contour count");
            for (j, (g, c)) in got.iter().zip(c).enumerate() {
                assert_eq!(g, c, "{name} mask {i} contour {j}");
            }
            n += c.len();
        }
        println!(
            "{name}: {n} contours of {} masks identical to OpenCV's",
            masks.len()
        );
    }
}

fn levels_image(t: &Tensor) -> image::RgbImage {
    let (h, w) = (t.shape()[1], t.shape()[2]);
    let v = t.as_u32().unwrap();
    image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = y as usize * w + x as usize;
        image::Rgb([v[i] as u8, v[h * w + i] as u8, v[2 * h * w + i] as u8])
    })
}

/// Decoded boxes, scores and mask coefficients within 1e-3 of the float64 oracle, and the
/// prototypes too.
fn head_case(name: &str) {
    let r = Weights::open(fixture(name).join("reference.safetensors")).unwrap();
    let input = to_tensor(&levels_image(&r.get_u32("head320.input_levels").unwrap())).unwrap();
    for backend in common::model_backends() {
        let label = common::label(&backend);
        let m = Yolo::load(backend.clone(), fixture(name)).unwrap();
        assert!(m.warnings().is_empty(), "{:?}", m.warnings());
        assert_eq!(m.masks(), Some(32));
        let (pred, protos) = m.forward_all(&input).unwrap();
        assert_eq!(pred.shape(), &[1, 84 + 32, 2100]);
        let want = r.get("head320.decoded").unwrap();
        let (a, _) = compare(&format!("{name} head {label}"), &pred, &want, 1e-3, 0.0);
        let protos = protos.expect("a segmentation model has prototypes");
        let want = r.get("head320.protos").unwrap();
        let (p, _) = compare(&format!("{name} protos {label}"), &protos, &want, 1e-3, 0.0);
        record(&format!("{name} head"), label, a, 0.0);
        record(&format!("{name} protos"), label, p, 0.0);
    }
    common::print_table_for(&format!("{name} head"));
    common::print_table_for(&format!("{name} protos"));
}

fn iou(a: &[u8], b: &[u8]) -> f64 {
    let (mut inter, mut uni) = (0u64, 0u64);
    for (&x, &y) in a.iter().zip(b) {
        inter += (x != 0 && y != 0) as u64;
        uni += (x != 0 || y != 0) as u64;
    }
    inter as f64 / uni.max(1) as f64
}

/// ultralytics' letterboxed bus.jpg → our network, NMS and masks: the same detections (count,
/// classes, boxes within 1 px, scores within 1e-3), each mask's IoU with ultralytics' >= 0.99,
/// and where the masks agree exactly, the polygons are `masks.xy`'s.
fn predict_case(name: &str) {
    let r = Weights::open(fixture(name).join("reference.safetensors")).unwrap();
    let lb_img = levels_image(&r.get_u32("bus640.input_levels").unwrap());
    let (masks, mh, mw) = reference_masks(&r);
    assert_eq!((mw, mh), (480, 640));
    let boxes = r.get("bus640.boxes").unwrap();
    let boxes: Vec<&[f32]> = boxes.as_f32().unwrap().chunks(4).collect();
    let scores = r.get("bus640.scores").unwrap();
    let scores = scores.as_f32().unwrap();
    let classes = ints(&r, "bus640.classes");
    let contours = reference_contours(&r);
    let (xy, xy_off) = (r.get("bus640.xy").unwrap(), ints(&r, "bus640.xy_offsets"));
    let xy = xy.as_f32().unwrap();
    let lb = Letterbox {
        orig_w: 810,
        orig_h: 1080,
        w: 480,
        h: 640,
    };
    for backend in common::model_backends() {
        let label = format!("{name} {}", common::label(&backend));
        let m = Yolo::load(backend.clone(), fixture(name)).unwrap();
        let (pred, protos) = m.forward_all(&to_tensor(&lb_img).unwrap()).unwrap();
        let protos = protos.unwrap();
        let shape = protos.shape()[1..].to_vec();
        let protos = protos.reshape(&shape).unwrap();
        let dets = m
            .postprocess(
                pred.as_f32().unwrap(),
                pred.shape()[2],
                &lb,
                &DetectOptions::default(),
                Some(&protos),
            )
            .unwrap();
        assert_eq!(dets.len(), scores.len(), "{label}: detection count");
        let (mut worst_box, mut worst_score, mut worst_iou, mut same, mut polys) =
            (0.0f32, 0.0f32, 1.0f64, 0, 0);
        for (i, d) in dets.iter().enumerate() {
            let j = (0..scores.len())
                .filter(|&j| classes[j] == d.class_id)
                .min_by(|&a, &b| {
                    let da: f32 = (0..4).map(|k| (boxes[a][k] - d.bbox[k]).abs()).sum();
                    let db: f32 = (0..4).map(|k| (boxes[b][k] - d.bbox[k]).abs()).sum();
                    da.total_cmp(&db)
                })
                .unwrap_or_else(|| panic!("{label}: detection {i}: class {}", d.class_id));
            for (a, b) in boxes[j].iter().zip(d.bbox) {
                worst_box = worst_box.max((a - b).abs());
            }
            worst_score = worst_score.max((scores[j] - d.score).abs());
            let mask = d.mask.as_ref().expect("every detection has a mask");
            let u = iou(&mask.bitmap, &masks[j]);
            worst_iou = worst_iou.min(u);
            let px = masks[j].iter().filter(|&&v| v != 0).count() as f64;
            let gain = 640.0f64 / 1080.0;
            assert!(
                (mask.area as f64 - px / (gain * gain)).abs() <= 1.0 + 0.02 * px / (gain * gain),
                "{label}: detection {i}: area {} for {px} letterbox pixels",
                mask.area
            );
            if mask.bitmap == masks[j] {
                same += 1;
                assert_eq!(
                    mask.polygons.len(),
                    contours[j].len(),
                    "{label}: detection {i}"
                );
                // Every polygon is OpenCV's contour scaled as ultralytics' scale_coords (f32).
                let gain = (640.0f32 / 1080.0).min(480.0 / 810.0);
                let (px, py) = ((480.0 - 810.0 * gain) / 2.0, (640.0 - 1080.0 * gain) / 2.0);
                for (poly, c) in mask.polygons.iter().zip(&contours[j]) {
                    let want: Vec<f32> = c
                        .iter()
                        .flat_map(|&(x, y)| {
                            [
                                ((x as f32 - px) / gain).clamp(0.0, 810.0),
                                ((y as f32 - py) / gain).clamp(0.0, 1080.0),
                            ]
                        })
                        .collect();
                    assert_eq!(poly, &want, "{label}: detection {i}");
                }
                if contours[j].len() == 1 {
                    // masks.xy: the one contour, scaled to the original image.
                    let want = &xy[xy_off[j]..xy_off[j + 1]];
                    let got = &mask.polygons[0];
                    assert_eq!(got.len(), want.len(), "{label}: detection {i} polygon");
                    let d = got
                        .iter()
                        .zip(want)
                        .map(|(a, b)| (a - b).abs())
                        .fold(0.0f32, f32::max);
                    assert!(d <= 1e-3, "{label}: detection {i}: polygon off by {d}");
                    polys += 1;
                }
            }
        }
        println!(
            "PARITY {label}: {} detections, max box diff {worst_box:.2e} px, score {worst_score:.2e}, worst mask IoU {worst_iou:.5}, {same} masks identical, {polys} polygons = masks.xy",
            dets.len()
        );
        assert!(worst_box <= 1.0 && worst_score <= 1e-3, "{label}");
        assert!(worst_iou >= 0.99, "{label}: mask IoU {worst_iou}");
        assert!(same > 0, "{label}: some masks agree exactly");
    }
}

#[test]
fn yolov8_seg_head_matches_ultralytics() {
    head_case("yolov8n-seg");
}

#[test]
fn yolo11_seg_head_matches_ultralytics() {
    head_case("yolo11n-seg");
}

#[test]
fn yolov8_seg_predict_matches_ultralytics() {
    predict_case("yolov8n-seg");
}

#[test]
fn yolo11_seg_predict_matches_ultralytics() {
    predict_case("yolo11n-seg");
}
