//! Instance masks of segmentation detectors, as ultralytics' `process_mask` computes them:
//! each kept detection's mask coefficients times the prototypes, bilinearly upsampled to the
//! letterboxed input (torch's `interpolate`, align_corners=False), positive logits kept,
//! cropped to the box; then its outer contours (see [`super::contours`]) scaled to the
//! original image as `masks.xy` scales them.

use super::contours::external_contours;
use super::letterbox::Letterbox;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// One detection's mask.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Mask {
    /// Outer contours in the original image's pixels, each `[x0, y0, x1, y1, ...]` (OpenCV's
    /// `RETR_EXTERNAL`, `CHAIN_APPROX_SIMPLE` points, in its order).
    pub polygons: Vec<Vec<f32>>,
    /// The mask's pixels counted at the original image's scale (letterbox pixels / gain²).
    pub area: u64,
    /// The binary mask at the letterboxed input's resolution (row-major, 0 or 1).
    #[serde(skip)]
    pub bitmap: Vec<u8>,
    /// How the bitmap maps to the original image.
    #[serde(skip)]
    pub letterbox: Letterbox,
}

impl Mask {
    /// Whether original-image pixel (x, y) is inside the mask (its letterbox pixel is).
    pub fn covers(&self, x: u32, y: u32) -> bool {
        let lb = &self.letterbox;
        let (gain, padx, pady) = geometry(lb);
        let lx = ((x as f32 + 0.5) * gain + padx) as i64;
        let ly = ((y as f32 + 0.5) * gain + pady) as i64;
        (0..lb.w as i64).contains(&lx)
            && (0..lb.h as i64).contains(&ly)
            && self.bitmap[ly as usize * lb.w as usize + lx as usize] != 0
    }
}

/// ultralytics' `scale_coords` geometry: gain and (unrounded) padding, in f32.
fn geometry(lb: &Letterbox) -> (f32, f32, f32) {
    let gain = (lb.h as f32 / lb.orig_h as f32).min(lb.w as f32 / lb.orig_w as f32);
    let padx = (lb.w as f32 - lb.orig_w as f32 * gain) / 2.0;
    let pady = (lb.h as f32 - lb.orig_h as f32 * gain) / 2.0;
    (gain, padx, pady)
}

/// Per output index of `torch.nn.functional.interpolate(mode="bilinear")` from `n_in` to
/// `n_out`: the two source indices and their weights (f32, as torch's CPU kernel).
fn taps(n_in: usize, n_out: usize) -> Vec<(usize, usize, f32, f32)> {
    let scale = n_in as f32 / n_out as f32;
    (0..n_out)
        .map(|i| {
            let src = (scale * (i as f32 + 0.5) - 0.5).max(0.0);
            let i0 = src.floor() as usize;
            let l1 = (src - i0 as f32).clamp(0.0, 1.0);
            let i1 = i0 + (i0 < n_in - 1) as usize;
            (i0.min(n_in - 1), i1.min(n_in - 1), 1.0 - l1, l1)
        })
        .collect()
}

/// The masks of kept detections, each given as (its anchor, its letterboxed [x1, y1, x2, y2]),
/// `None` where the mask is empty (ultralytics' segment predictor drops those detections).
/// `pred` is [4 + nc + nm, anchors]; `protos` [nm, mh, mw].
pub(crate) fn masks(
    pred: &[f32],
    anchors: usize,
    nc: usize,
    protos: &Tensor,
    kept: &[(usize, [f32; 4])],
    lb: &Letterbox,
) -> Result<Vec<Option<Mask>>> {
    let s = protos.shape();
    if s.len() != 3 || s[1] == 0 || s[2] == 0 {
        return Err(Error::InvalidArgument(format!(
            "mask prototypes must be [nm, h, w], got {s:?}"
        )));
    }
    let (nm, mh, mw) = (s[0], s[1], s[2]);
    if pred.len() != (4 + nc + nm) * anchors {
        return Err(Error::InvalidArgument(format!(
            "a prediction with {nm} mask coefficients per anchor needs {} values, got {}",
            (4 + nc + nm) * anchors,
            pred.len()
        )));
    }
    let (w, h) = (lb.w as usize, lb.h as usize);
    if lb.orig_w == 0 || lb.orig_h == 0 || w == 0 || h == 0 {
        return Err(Error::InvalidArgument(format!("empty letterbox {lb:?}")));
    }
    let p = protos.as_f32()?;
    let (ty, tx) = (taps(mh, h), taps(mw, w));
    let (gain, padx, pady) = geometry(lb);
    let mut out = Vec::with_capacity(kept.len());
    for &(anchor, lb_box) in kept {
        // Logits at prototype resolution: coefficients · prototypes.
        let c: Vec<f32> = (0..nm)
            .map(|j| pred[(4 + nc + j) * anchors + anchor])
            .collect();
        let mut logits = vec![0.0f32; mh * mw];
        for (j, cj) in c.iter().enumerate() {
            for (l, pv) in logits.iter_mut().zip(&p[j * mh * mw..(j + 1) * mh * mw]) {
                *l += cj * pv;
            }
        }
        // Upsampled and thresholded inside the box only: crop_mask keeps columns r with
        // x1 <= r < x2 (and rows likewise), i.e. r in [ceil(x1), ceil(x2)).
        let span = |lo: f32, hi: f32, n: usize| {
            let a = (lo.ceil().max(0.0) as usize).min(n);
            let b = (hi.ceil().max(0.0) as usize).min(n);
            a..b.max(a)
        };
        let [x1, y1, x2, y2] = lb_box;
        let (cols, rows) = (span(x1, x2, w), span(y1, y2, h));
        let mut bitmap = vec![0u8; w * h];
        let mut count = 0u64;
        for y in rows {
            let (a0, a1, wy0, wy1) = ty[y];
            for x in cols.clone() {
                let (b0, b1, wx0, wx1) = tx[x];
                let top = logits[a0 * mw + b0] * wx0 + logits[a0 * mw + b1] * wx1;
                let bottom = logits[a1 * mw + b0] * wx0 + logits[a1 * mw + b1] * wx1;
                if top * wy0 + bottom * wy1 > 0.0 {
                    bitmap[y * w + x] = 1;
                    count += 1;
                }
            }
        }
        if count == 0 {
            out.push(None);
            continue;
        }
        let polygons = external_contours(&bitmap, w, h)
            .into_iter()
            .map(|c| {
                c.into_iter()
                    .flat_map(|(x, y)| {
                        [
                            ((x as f32 - padx) / gain).clamp(0.0, lb.orig_w as f32),
                            ((y as f32 - pady) / gain).clamp(0.0, lb.orig_h as f32),
                        ]
                    })
                    .collect()
            })
            .collect();
        out.push(Some(Mask {
            polygons,
            area: (count as f64 / (gain as f64 * gain as f64)).round() as u64,
            bitmap,
            letterbox: *lb,
        }));
    }
    Ok(out)
}
