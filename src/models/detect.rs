//! Object detection around a detector network: options with ultralytics' `predict` defaults,
//! confidence filter + class-aware NMS + scaling back to the original image, and (with the
//! `draw` feature) annotated images. The letterbox is in [`super::letterbox`].

use super::letterbox::round_half_even;
pub use super::letterbox::{letterbox, to_tensor, Letterbox};
pub use super::masks::Mask;
use crate::error::{Error, Result};
#[cfg(feature = "draw")]
use image::RgbImage;

/// Offset per class used to make NMS class-aware (ultralytics' `max_wh`).
const MAX_WH: f32 = 7680.0;

/// One detection, in the original image's pixels.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Detection {
    pub class_id: usize,
    pub label: String,
    pub score: f32,
    /// [x1, y1, x2, y2]
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// The instance mask (segmentation models).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<Mask>,
}

/// A detection kept by NMS, in letterboxed coordinates.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kept {
    /// Its column of the prediction.
    pub anchor: usize,
    /// [x1, y1, x2, y2] in the letterboxed input.
    pub lb_box: [f32; 4],
    pub score: f32,
    pub class_id: usize,
}

/// `predict` options, with ultralytics' defaults.
#[derive(Clone, Debug)]
pub struct DetectOptions {
    pub conf: f32,
    pub iou: f32,
    /// Letterbox size (a multiple of 32).
    pub imgsz: usize,
    pub max_det: usize,
    /// Minimal rectangle padding (to a multiple of 32) instead of a full square, as ultralytics
    /// does when predicting with a PyTorch checkpoint.
    pub rect: bool,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            conf: 0.25,
            iou: 0.7,
            imgsz: 640,
            max_det: 300,
            rect: true,
        }
    }
}

impl DetectOptions {
    pub fn validate(&self) -> Result<()> {
        if !((0.0..=1.0).contains(&self.conf) && (0.0..=1.0).contains(&self.iou)) {
            return Err(Error::InvalidArgument(format!(
                "conf and iou must be in [0, 1], got {} and {}",
                self.conf, self.iou
            )));
        }
        if self.max_det == 0 {
            return Err(Error::InvalidArgument(
                "max_det must be at least 1 (the most detections to keep)".into(),
            ));
        }
        if self.imgsz == 0 || !self.imgsz.is_multiple_of(32) || self.imgsz > 4096 {
            return Err(Error::InvalidArgument(format!(
                "imgsz must be a positive multiple of 32 up to 4096, got {}",
                self.imgsz
            )));
        }
        Ok(())
    }
}

/// Detections for one decoded prediction [4 + nc, anchors] in letterboxed coordinates:
/// confidence filter, class-aware NMS, `max_det`, then boxes scaled to the original image.
/// `pred` must hold (4 + classes) · anchors values and the options must validate.
pub fn postprocess(
    pred: &[f32],
    anchors: usize,
    names: &[String],
    lb: &Letterbox,
    opts: &DetectOptions,
) -> Result<Vec<Detection>> {
    nms(pred, anchors, names.len(), 0, opts)?
        .iter()
        .map(|k| detection(k, names, lb, None))
        .collect()
}

/// Confidence filter, class-aware NMS and `max_det` over a prediction of (4 + nc + extra)
/// rows × anchors (the `extra` rows, mask coefficients, ride along), best first.
pub(crate) fn nms(
    pred: &[f32],
    anchors: usize,
    nc: usize,
    extra: usize,
    opts: &DetectOptions,
) -> Result<Vec<Kept>> {
    opts.validate()?;
    let rows = 4 + nc + extra;
    if rows.checked_mul(anchors) != Some(pred.len()) || nc == 0 {
        return Err(Error::InvalidArgument(format!(
            "a prediction of {nc} classes, {extra} mask coefficients and {anchors} anchors holds {} values, got {}",
            rows.saturating_mul(anchors),
            pred.len()
        )));
    }
    // (x1, y1, x2, y2, score, class, anchor) of candidates above the threshold.
    let mut cand: Vec<([f32; 4], f32, usize, usize)> = Vec::new();
    for a in 0..anchors {
        let mut best = (0usize, f32::NEG_INFINITY);
        for c in 0..nc {
            let s = pred[(4 + c) * anchors + a];
            if s > best.1 {
                best = (c, s);
            }
        }
        if best.1 > opts.conf {
            let (cx, cy, w, h) = (
                pred[a],
                pred[anchors + a],
                pred[2 * anchors + a],
                pred[3 * anchors + a],
            );
            cand.push((
                [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
                best.1,
                best.0,
                a,
            ));
        }
    }
    cand.sort_by(|x, y| y.1.total_cmp(&x.1));
    cand.truncate(30000);
    let offset = |c: usize, b: &[f32; 4]| {
        let o = c as f32 * MAX_WH;
        [b[0] + o, b[1] + o, b[2] + o, b[3] + o]
    };
    let mut keep: Vec<Kept> = Vec::new();
    let mut suppressed = vec![false; cand.len()];
    for i in 0..cand.len() {
        if keep.len() >= opts.max_det {
            break;
        }
        if suppressed[i] {
            continue;
        }
        let (lb_box, score, class_id, anchor) = cand[i];
        keep.push(Kept {
            anchor,
            lb_box,
            score,
            class_id,
        });
        let bi = offset(class_id, &lb_box);
        for j in i + 1..cand.len() {
            if !suppressed[j] && iou(&bi, &offset(cand[j].2, &cand[j].0)) > opts.iou {
                suppressed[j] = true;
            }
        }
    }
    Ok(keep)
}

/// A kept detection back in the original image (ultralytics' scale_boxes + clip_boxes).
pub(crate) fn detection(
    k: &Kept,
    names: &[String],
    lb: &Letterbox,
    mask: Option<Mask>,
) -> Result<Detection> {
    if lb.orig_w == 0 || lb.orig_h == 0 || lb.w == 0 || lb.h == 0 {
        return Err(Error::InvalidArgument(format!("empty letterbox {lb:?}")));
    }
    let gain = (lb.h as f64 / lb.orig_h as f64).min(lb.w as f64 / lb.orig_w as f64);
    let padx = round_half_even((lb.w as f64 - lb.orig_w as f64 * gain) / 2.0 - 0.1);
    let pady = round_half_even((lb.h as f64 - lb.orig_h as f64 * gain) / 2.0 - 0.1);
    let sx = |v: f32| (((v as f64 - padx) / gain).clamp(0.0, lb.orig_w as f64)) as f32;
    let sy = |v: f32| (((v as f64 - pady) / gain).clamp(0.0, lb.orig_h as f64)) as f32;
    let b = k.lb_box;
    Ok(Detection {
        class_id: k.class_id,
        label: names[k.class_id].clone(),
        score: k.score,
        bbox: [sx(b[0]), sy(b[1]), sx(b[2]), sy(b[3])],
        mask,
    })
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}

#[cfg(feature = "draw")]
/// A copy of `img` with each detection drawn as a box in a per-class colour and a
/// "label score" tag (DejaVu Sans), its mask (segmentation models) tinted in that colour.
pub fn annotate(img: &RgbImage, dets: &[Detection]) -> RgbImage {
    use ab_glyph::{FontRef, PxScale};
    use imageproc::drawing::{
        draw_filled_rect_mut, draw_hollow_rect_mut, draw_text_mut, text_size,
    };
    use imageproc::rect::Rect;
    let mut out = img.clone();
    let font = FontRef::try_from_slice(dejavu::sans::regular()).expect("bundled font parses");
    let (w, h) = out.dimensions();
    let side = w.min(h) as f32;
    let scale = PxScale::from((side / 40.0).clamp(11.0, 28.0));
    let thick = ((side / 300.0).round() as i32).max(1);
    for d in dets {
        // Distinct, stable colours per class.
        let hue = (d.class_id as u32).wrapping_mul(2654435761);
        let color = image::Rgb([
            (hue >> 24) as u8 | 0x40,
            (hue >> 16) as u8 | 0x40,
            (hue >> 8) as u8 | 0x40,
        ]);
        let [x1, y1, x2, y2] = d.bbox;
        if let Some(m) = &d.mask {
            // Half-transparent fill over the box's pixels the mask covers.
            let (xa, ya) = (x1.max(0.0) as u32, y1.max(0.0) as u32);
            let (xb, yb) = ((x2.ceil() as u32).min(w), (y2.ceil() as u32).min(h));
            for y in ya..yb {
                for x in xa..xb {
                    if m.covers(x, y) {
                        let p = out.get_pixel_mut(x, y);
                        for c in 0..3 {
                            p[c] = ((p[c] as u16 + color[c] as u16) / 2) as u8;
                        }
                    }
                }
            }
        }
        for t in 0..thick {
            let (x, y) = (x1 as i32 - t, y1 as i32 - t);
            let (bw, bh) = ((x2 - x1) as i32 + 2 * t, (y2 - y1) as i32 + 2 * t);
            if bw > 0 && bh > 0 {
                draw_hollow_rect_mut(
                    &mut out,
                    Rect::at(x, y).of_size(bw as u32, bh as u32),
                    color,
                );
            }
        }
        let text = format!("{} {:.2}", d.label, d.score);
        let (tw, th) = text_size(scale, &font, &text);
        let ty = (y1 as i32 - th as i32 - 4).max(0);
        draw_filled_rect_mut(
            &mut out,
            Rect::at(x1 as i32, ty).of_size(tw + 4, th + 4),
            color,
        );
        draw_text_mut(
            &mut out,
            image::Rgb([255, 255, 255]),
            x1 as i32 + 2,
            ty + 1,
            scale,
            &font,
            &text,
        );
    }
    out
}
