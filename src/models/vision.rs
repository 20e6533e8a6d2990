//! Image input of vision models: HF image-processor configs (resize, rescale, normalize, as
//! transformers' `ViTImageProcessor` computes them) and softmax top-k predictions.

use super::family::yes;
use super::files::ModelFiles;
use crate::error::{Error, Result};
use crate::imageio::{resize_to, to_chw, Resample};
use crate::tensor::Tensor;
use serde::Deserialize;
use std::collections::BTreeMap;

/// `preprocessor_config.json` of a HF image processor.
#[derive(Clone, Debug, Deserialize)]
pub struct ImageProcessorConfig {
    #[serde(default = "yes")]
    pub do_resize: bool,
    #[serde(default)]
    pub size: Option<BTreeMap<String, usize>>,
    #[serde(default = "bilinear")]
    pub resample: u32,
    #[serde(default = "yes")]
    pub do_rescale: bool,
    #[serde(default = "default_rescale")]
    pub rescale_factor: f32,
    #[serde(default = "yes")]
    pub do_normalize: bool,
    #[serde(default = "half3")]
    pub image_mean: Vec<f32>,
    #[serde(default = "half3")]
    pub image_std: Vec<f32>,
    /// Cut the resized image's centre to `crop_size` (DeiT's processor).
    #[serde(default)]
    pub do_center_crop: bool,
    #[serde(default)]
    pub crop_size: Option<BTreeMap<String, usize>>,
}

/// Older processor configs give `size` and `crop_size` as one number. Read as transformers'
/// `get_size_dict` does: a crop is square; a size is the shortest edge for the processors
/// that resize that way (CLIP's, BiT's: `default_to_square = False`), else square.
fn legacy_sizes(v: &mut serde_json::Value) {
    let kind = ["image_processor_type", "feature_extractor_type"]
        .iter()
        .find_map(|k| v.get(*k).and_then(|t| t.as_str()))
        .unwrap_or("")
        .to_string();
    let shortest = kind.starts_with("CLIP") || kind.starts_with("Bit");
    for key in ["size", "crop_size"] {
        let Some(n) = v.get(key).and_then(|n| n.as_u64()) else {
            continue;
        };
        v[key] = if key == "size" && shortest {
            serde_json::json!({ "shortest_edge": n })
        } else {
            serde_json::json!({ "height": n, "width": n })
        };
    }
}

/// `{height, width}` of a processor size map.
fn hw(m: Option<&BTreeMap<String, usize>>) -> (Option<usize>, Option<usize>) {
    (
        m.and_then(|m| m.get("height")).copied(),
        m.and_then(|m| m.get("width")).copied(),
    )
}

/// Image channels when a config does not say (RGB).
pub(crate) fn three() -> usize {
    3
}
fn bilinear() -> u32 {
    2
}
fn default_rescale() -> f32 {
    1.0 / 255.0
}
fn half3() -> Vec<f32> {
    vec![0.5; 3]
}

/// One class with its softmax probability.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Prediction {
    pub index: usize,
    pub label: String,
    pub score: f32,
}

impl ImageProcessorConfig {
    /// transformers' `ViTImageProcessor` defaults for a square input.
    pub fn vit_default(side: usize) -> Self {
        ImageProcessorConfig {
            do_resize: true,
            size: Some(BTreeMap::from([
                ("height".into(), side),
                ("width".into(), side),
            ])),
            resample: 2,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: half3(),
            image_std: half3(),
            do_center_crop: false,
            crop_size: None,
        }
    }

    /// The folder's preprocessor_config.json, or (with a warning) `ViTImageProcessor`'s
    /// defaults for `side`-pixel square inputs when it has none.
    pub fn read(files: &ModelFiles, side: usize) -> Result<(Self, Vec<String>)> {
        let name = "preprocessor_config.json";
        Ok(match files.json::<serde_json::Value>(name)? {
            Some(mut v) => {
                legacy_sizes(&mut v);
                let p = serde_json::from_value(v).map_err(|e| Error::Config {
                    path: files.path(name),
                    msg: format!("invalid image processor config: {e}"),
                })?;
                (p, Vec::new())
            }
            None => {
                let p = files.path(name).display().to_string();
                let warning = format!("{p}: missing; using ViTImageProcessor defaults");
                (Self::vit_default(side), vec![warning])
            }
        })
    }

    /// The processor must produce what a model of `c` channels and `s`-pixel square inputs
    /// takes.
    pub fn check(&self, c: usize, s: usize) -> Result<()> {
        let (ph, pw) = hw(self.size.as_ref());
        if self.do_center_crop {
            let (ch, cw) = hw(self.crop_size.as_ref());
            if ch != Some(s) || cw != Some(s) {
                return Err(Error::InvalidArgument(format!(
                    "preprocessor crop_size {:?} must be {{height: {s}, width: {s}}} (the model's image_size)",
                    self.crop_size
                )));
            }
            let big = |v: Option<usize>| v.is_some_and(|v| (s..=16 * s).contains(&v));
            let short = self
                .size
                .as_ref()
                .and_then(|m| m.get("shortest_edge"))
                .copied();
            if self.do_resize && !(big(ph) && big(pw)) && !big(short) {
                return Err(Error::InvalidArgument(format!(
                    "preprocessor size {:?} must be {{height, width}} or {{shortest_edge}} of at least the crop ({s}) before a centre crop",
                    self.size
                )));
            }
        } else if self.do_resize && (ph != Some(s) || pw != Some(s)) {
            return Err(Error::InvalidArgument(format!(
                "preprocessor size {:?} must be {{height: {s}, width: {s}}} (the model's image_size)",
                self.size
            )));
        }
        if self.image_mean.len() != 3 || self.image_std.len() != 3 || c != 3 {
            return Err(Error::InvalidArgument(
                "only 3-channel RGB models with 3 mean/std values are supported".into(),
            ));
        }
        if self.do_normalize {
            if let Some(v) = self
                .image_std
                .iter()
                .find(|v| !(v.is_finite() && **v > 0.0))
            {
                return Err(Error::InvalidArgument(format!(
                    "image_std {:?}: every value must be finite and > 0 (got {v})",
                    self.image_std
                )));
            }
            if self.image_mean.iter().any(|v| !v.is_finite()) {
                return Err(Error::InvalidArgument(format!(
                    "image_mean {:?}: every value must be finite",
                    self.image_mean
                )));
            }
        }
        if self.do_rescale && !(self.rescale_factor.is_finite() && self.rescale_factor > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "rescale_factor {} must be finite and > 0",
                self.rescale_factor
            )));
        }
        Resample::from_pil(self.resample)?;
        Ok(())
    }

    /// Decoded RGB pixels resized, rescaled and normalized to [3, s, s] pixel values.
    pub fn preprocess(&self, img: &image::RgbImage, s: usize) -> Result<Tensor> {
        super::letterbox::check_not_empty(img)?;
        if self.do_center_crop {
            return self.preprocess_cropped(img, s);
        }
        let s = s as u32;
        let resize = if self.do_resize {
            Some((s, s, Resample::from_pil(self.resample)?))
        } else if img.dimensions() != (s, s) {
            return Err(Error::InvalidArgument(format!(
                "image is {:?} but the model needs {s}x{s} and do_resize is false",
                img.dimensions()
            )));
        } else {
            None
        };
        let rescale = if self.do_rescale {
            self.rescale_factor
        } else {
            1.0
        };
        let (mean, std) = if self.do_normalize {
            (
                [self.image_mean[0], self.image_mean[1], self.image_mean[2]],
                [self.image_std[0], self.image_std[1], self.image_std[2]],
            )
        } else {
            ([0.0; 3], [1.0; 3])
        };
        let v = to_chw(img, resize, rescale, mean, std);
        Tensor::from_f32(&[3, s as usize, s as usize], v)
    }

    /// Resize to `size`, then the centre `s`×`s` (torchvision's `center_crop`: offsets
    /// rounded half to even; an image smaller than the crop is refused).
    fn preprocess_cropped(&self, img: &image::RgbImage, s: usize) -> Result<Tensor> {
        let resized;
        let short = self
            .size
            .as_ref()
            .and_then(|m| m.get("shortest_edge"))
            .copied();
        let target = match (hw(self.size.as_ref()), short) {
            ((Some(h), Some(w)), _) => Some((w as u32, h as u32)),
            // transformers' `get_resize_output_image_size`: the short side to `n`, the long one
            // scaled and truncated.
            (_, Some(n)) => {
                let (w, h) = img.dimensions();
                let scaled = |long: u32, short: u32| (n as f64 * long as f64 / short as f64) as u32;
                Some(if w <= h {
                    (n as u32, scaled(h, w))
                } else {
                    (scaled(w, h), n as u32)
                })
            }
            _ => None,
        };
        let img = match target {
            Some((w, h)) if self.do_resize => {
                resized = resize_to(img, w, h, Resample::from_pil(self.resample)?);
                &resized
            }
            _ => img,
        };
        let (w, h) = img.dimensions();
        let s32 = s as u32;
        if w < s32 || h < s32 {
            return Err(Error::InvalidArgument(format!(
                "image is {w}x{h}, smaller than the {s}x{s} centre crop and do_resize is false"
            )));
        }
        // Python's round(): halves to even (18.5 -> 18), as torchvision computes the offsets.
        let (top, left) = (
            ((h - s32) as f64 / 2.0).round_ties_even() as u32,
            ((w - s32) as f64 / 2.0).round_ties_even() as u32,
        );
        let crop = image::imageops::crop_imm(img, left, top, s32, s32).to_image();
        let mut p = self.clone();
        p.do_center_crop = false;
        p.do_resize = false;
        p.preprocess(&crop, s)
    }
}

/// `torch.nn.functional.interpolate(x, (oh, ow), mode="bicubic", align_corners=False)` of a
/// [c, h, w] tensor (no antialiasing: Keys' cubic with a = -0.75, edge samples clamped), in f32
/// and in PyTorch's order of operations. DINOv2 resizes its position-embedding grid with it.
pub fn interpolate_bicubic(
    src: &[f32],
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
) -> Vec<f32> {
    const A: f32 = -0.75;
    let cc1 = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let cc2 = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    // Per output index: the 4 clamped input indices and their weights.
    let taps = |n_in: usize, n_out: usize| -> Vec<([usize; 4], [f32; 4])> {
        let scale = n_in as f32 / n_out as f32;
        (0..n_out)
            .map(|i| {
                let real = scale * (i as f32 + 0.5) - 0.5;
                let i0 = real.floor();
                let t = real - i0;
                let idx =
                    [-1i64, 0, 1, 2].map(|d| (i0 as i64 + d).clamp(0, n_in as i64 - 1) as usize);
                (idx, [cc2(t + 1.0), cc1(t), cc1(1.0 - t), cc2(2.0 - t)])
            })
            .collect()
    };
    let (ty, tx) = (taps(h, oh), taps(w, ow));
    let mut out = Vec::with_capacity(c * oh * ow);
    for ch in 0..c {
        let plane = &src[ch * h * w..(ch + 1) * h * w];
        for (iy, wy) in &ty {
            for (ix, wx) in &tx {
                let mut acc = 0.0f32;
                for j in 0..4 {
                    let row = &plane[iy[j] * w..];
                    let mut r = 0.0f32;
                    for k in 0..4 {
                        r += row[ix[k]] * wx[k];
                    }
                    acc += r * wy[j];
                }
                out.push(acc);
            }
        }
    }
    out
}

/// A square image of `s` pixels cut into `p`-pixel patches, with RGB channels.
pub(crate) fn check_patches(
    s: usize,
    p: usize,
    channels: usize,
) -> std::result::Result<(), String> {
    if !s.is_multiple_of(p) {
        return Err(format!(
            "'image_size' = {s} is not a multiple of 'patch_size' = {p}"
        ));
    }
    if s > 8192 {
        return Err(format!(
            "'image_size' = {s} is larger than supported (8192)"
        ));
    }
    if channels != 3 {
        return Err(format!(
            "'num_channels' = {channels}: only 3-channel RGB models are supported"
        ));
    }
    Ok(())
}

/// `id2label` keys must be exactly 0..n.
pub(crate) fn check_id2label(
    id2label: &BTreeMap<String, String>,
) -> std::result::Result<(), String> {
    let n = id2label.len();
    match (0..n).find(|i| !id2label.contains_key(&i.to_string())) {
        Some(i) => Err(format!("'id2label' has {n} entries but lacks index {i}")),
        None => Ok(()),
    }
}

/// The first `n` labels of a checked `id2label`.
pub(crate) fn labels(id2label: &BTreeMap<String, String>, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| id2label.get(&i.to_string()).cloned().unwrap_or_default())
        .collect()
}

/// The `top_k` classes of one row of logits, by softmax probability.
pub fn top_k(logits: &[f32], labels: &[String], top_k: usize) -> Vec<Prediction> {
    let probs = softmax(logits);
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    idx.into_iter()
        .take(top_k)
        .map(|i| Prediction {
            index: i,
            label: labels.get(i).cloned().unwrap_or_default(),
            score: probs[i],
        })
        .collect()
}

fn softmax(x: &[f32]) -> Vec<f32> {
    let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let e: Vec<f64> = x.iter().map(|&v| ((v - m) as f64).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|&v| (v / s) as f32).collect()
}
