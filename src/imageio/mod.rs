//! Images: the resize / rescale / normalize steps of HuggingFace image processors and
//! ultralytics' letterbox resize, bit-exact with Pillow and OpenCV on 8-bit RGB (core), and
//! decoding files with size limits checked before any pixel buffer is allocated (`images`
//! feature).

#[cfg(feature = "images")]
mod decode;

#[cfg(feature = "images")]
pub use decode::{
    decode_rgb_bytes, decode_rgb_bytes_as, load_rgb, load_rgb_as, Convention, MAX_ALLOC,
    MAX_FILE_BYTES,
};

/// Largest accepted side of an input image (a decoded file, or pixels a browser handed over).
pub const MAX_SIDE: u32 = 16384;

use crate::error::{Error, Result};
use image::imageops::FilterType;
use image::RgbImage;

/// PIL resampling codes (as stored in `preprocessor_config.json`) to `image` filters.
pub fn filter_from_pil(code: u32) -> Result<FilterType> {
    Ok(match code {
        0 => FilterType::Nearest,
        1 => FilterType::Lanczos3,
        2 => FilterType::Triangle,
        3 => FilterType::CatmullRom,
        other => {
            return Err(Error::InvalidArgument(format!(
                "unsupported resample code {other} (0 nearest, 1 lanczos, 2 bilinear, 3 bicubic)"
            )))
        }
    })
}

/// How to resize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resample {
    /// Antialiased bilinear exactly as torchvision computes it on 8-bit images (what
    /// transformers 5's image processors run): see [`resize_bilinear_aa_torchvision`].
    Bilinear,
    /// Antialiased bicubic (Keys, a = -0.5), likewise: [`resize_bicubic_aa_torchvision`].
    Bicubic,
    /// Any other filter, through the `image` crate.
    Other(FilterType),
}

impl Resample {
    /// From PIL resampling codes, as stored in `preprocessor_config.json`.
    pub fn from_pil(code: u32) -> Result<Resample> {
        Ok(match code {
            2 => Resample::Bilinear,
            3 => Resample::Bicubic,
            c => Resample::Other(filter_from_pil(c)?),
        })
    }
}

/// Fixed-point precision of the resampling weights (Pillow's PRECISION_BITS).
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// How the normalized weights become fixed point.
#[derive(Clone, Copy)]
enum Precision {
    /// Pillow's `ImagingResample`: always [`PRECISION_BITS`] bits.
    Pillow,
    /// PyTorch's uint8 antialiased kernel (what torchvision's `resize` runs on uint8 images):
    /// int16 weights, with the most bits (at most [`PRECISION_BITS`]) that keep the largest
    /// weight of the dimension under 2^15.
    Int16,
}

/// The normalized filter weights of one output index.
type Taps = (usize, Vec<f64>);

/// The resampling filters Pillow and PyTorch's antialiased kernels share.
#[derive(Clone, Copy)]
enum Filter {
    /// Bilinear: support 1.
    Triangle,
    /// Bicubic convolution with a = -0.5 (Pillow's and PyTorch's antialiased bicubic): support 2.
    Cubic,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Triangle => 1.0,
            Filter::Cubic => 2.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Triangle if x < 1.0 => 1.0 - x,
            Filter::Cubic if x < 1.0 => ((-0.5 + 2.0) * x - (-0.5 + 3.0)) * x * x + 1.0,
            Filter::Cubic if x < 2.0 => (((x - 5.0) * x + 8.0) * x - 4.0) * -0.5,
            _ => 0.0,
        }
    }
}

/// Per output index: first input index and normalized weights of the triangle filter, whose
/// support widens by the downscale factor (antialiasing), as Pillow's `precompute_coeffs`
/// (PyTorch's `_compute_index_ranges_weights` computes the same in double).
fn taps(in_size: usize, out_size: usize, f: Filter) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = f.support() * filterscale;
    (0..out_size)
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let mut w: Vec<f64> = (xmin..xmax)
                .map(|x| f.weight((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = w.iter().sum();
            if total != 0.0 {
                w.iter_mut().for_each(|v| *v /= total);
            }
            (xmin, w)
        })
        .collect()
}

/// The taps of `in_size -> out_size` in fixed point, and their number of fraction bits.
fn coeffs(
    in_size: usize,
    out_size: usize,
    f: Filter,
    p: Precision,
) -> (Vec<(usize, Vec<i64>)>, u32) {
    let t = taps(in_size, out_size, f);
    let bits = match p {
        Precision::Pillow => PRECISION_BITS,
        Precision::Int16 => {
            let max = t.iter().flat_map(|(_, w)| w).fold(0.0f64, |a, &b| a.max(b));
            let mut bits = 0;
            while bits < PRECISION_BITS
                && ((0.5 + max * (1u64 << (bits + 1)) as f64) as i64) < (1 << 15)
            {
                bits += 1;
            }
            bits
        }
    };
    let fixed = t
        .into_iter()
        .map(|(xmin, w)| {
            let k = w
                .iter()
                .map(|&v| {
                    let f = v * (1u64 << bits) as f64;
                    (if f < 0.0 { f - 0.5 } else { f + 0.5 }) as i64
                })
                .collect();
            (xmin, k)
        })
        .collect();
    (fixed, bits)
}

/// Antialiased bilinear resize with Pillow's algorithm (`ImagingResample`), bit for bit:
/// separable triangle filter scaled by the downscale factor, horizontal pass then vertical,
/// fixed-point weights and 8-bit rounding between the passes. What `PIL.Image.resize(size,
/// BILINEAR)` gives; the `image` crate's Triangle filter differs by up to 2 levels.
pub fn resize_bilinear_aa(img: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    resample(img, out_w, out_h, Filter::Triangle, Precision::Pillow)
}

/// Antialiased bilinear resize as torchvision's `resize(..., antialias=True)` computes it on
/// uint8 images (PyTorch's uint8 kernel, a port of Pillow-SIMD), bit for bit: Pillow's filter
/// and passes with int16 weights of per-dimension precision. transformers 5's image processors
/// resize with it; it is at most one level from Pillow's.
pub fn resize_bilinear_aa_torchvision(img: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    resample(img, out_w, out_h, Filter::Triangle, Precision::Int16)
}

/// Antialiased bicubic resize as torchvision's `resize(..., BICUBIC, antialias=True)` computes
/// it on uint8 images: the same kernel as [`resize_bilinear_aa_torchvision`] with Keys' cubic
/// (a = -0.5, support 2 scaled by the downscale factor); what DeiT's and DINOv2's processors run.
pub fn resize_bicubic_aa_torchvision(img: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    resample(img, out_w, out_h, Filter::Cubic, Precision::Int16)
}

/// `torch.nn.functional.interpolate(x, (oh, ow), mode="bicubic", align_corners=False,
/// antialias=True)` of a [c, h, w] f32 tensor: the taps of [`resize_bicubic_aa_torchvision`]
/// (Keys a = -0.5, support widened by the downscale factor, normalized) applied in f32, width
/// first, as PyTorch's separable antialiased kernel. DINOv2 with registers resizes its
/// position grid with it.
pub fn interpolate_bicubic_aa(
    src: &[f32],
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
) -> Vec<f32> {
    let f32_taps = |n_in, n_out| -> Vec<(usize, Vec<f32>)> {
        taps(n_in, n_out, Filter::Cubic)
            .into_iter()
            .map(|(x0, k)| (x0, k.into_iter().map(|v| v as f32).collect()))
            .collect()
    };
    // Width: [c·h, w] → [c·h, ow].
    let tmp: Vec<f32> = if ow != w {
        let tx = f32_taps(w, ow);
        src.chunks(w)
            .flat_map(|row| {
                tx.iter()
                    .map(|(x0, k)| k.iter().enumerate().map(|(i, &v)| row[x0 + i] * v).sum())
                    .collect::<Vec<f32>>()
            })
            .collect()
    } else {
        src.to_vec()
    };
    if oh == h {
        return tmp;
    }
    // Height: [c, h, ow] → [c, oh, ow].
    let ty = f32_taps(h, oh);
    let mut out = Vec::with_capacity(c * oh * ow);
    for plane in tmp.chunks(h * ow) {
        for (y0, k) in &ty {
            for x in 0..ow {
                out.push(
                    k.iter()
                        .enumerate()
                        .map(|(i, &v)| plane[(y0 + i) * ow + x] * v)
                        .sum(),
                );
            }
        }
    }
    out
}

fn resample(img: &RgbImage, out_w: u32, out_h: u32, f: Filter, p: Precision) -> RgbImage {
    let (in_w, in_h) = img.dimensions();
    let src = img.as_raw();
    let clip8 = |acc: i64, bits: u32| (acc >> bits).clamp(0, 255) as u8;
    // Horizontal pass.
    let tmp = if out_w != in_w {
        let (cx, bits) = coeffs(in_w as usize, out_w as usize, f, p);
        let half = 1i64 << bits >> 1;
        let mut t = vec![0u8; (out_w * in_h * 3) as usize];
        for y in 0..in_h as usize {
            for (xx, (xmin, k)) in cx.iter().enumerate() {
                for c in 0..3 {
                    let mut acc = half;
                    for (i, &w) in k.iter().enumerate() {
                        acc += src[(y * in_w as usize + xmin + i) * 3 + c] as i64 * w;
                    }
                    t[(y * out_w as usize + xx) * 3 + c] = clip8(acc, bits);
                }
            }
        }
        t
    } else {
        src.clone()
    };
    // Vertical pass.
    let out = if out_h != in_h {
        let (cy, bits) = coeffs(in_h as usize, out_h as usize, f, p);
        let half = 1i64 << bits >> 1;
        let mut o = vec![0u8; (out_w * out_h * 3) as usize];
        for (yy, (ymin, k)) in cy.iter().enumerate() {
            for x in 0..(out_w * 3) as usize {
                let mut acc = half;
                for (i, &w) in k.iter().enumerate() {
                    acc += tmp[(ymin + i) * (out_w * 3) as usize + x] as i64 * w;
                }
                o[yy * (out_w * 3) as usize + x] = clip8(acc, bits);
            }
        }
        o
    } else {
        tmp
    };
    RgbImage::from_raw(out_w, out_h, out).expect("buffer size matches")
}

/// `img` resized to `w`×`h` with `f` (a copy when the size is already right).
pub fn resize_to(img: &RgbImage, w: u32, h: u32, f: Resample) -> RgbImage {
    if (w, h) == img.dimensions() {
        return img.clone();
    }
    match f {
        Resample::Bilinear => resize_bilinear_aa_torchvision(img, w, h),
        Resample::Bicubic => resize_bicubic_aa_torchvision(img, w, h),
        Resample::Other(f) => image::imageops::resize(img, w, h, f),
    }
}

/// Resizes (if asked), then `(x * rescale - mean) / std` per channel, as CHW f32.
pub fn to_chw(
    img: &RgbImage,
    resize: Option<(u32, u32, Resample)>,
    rescale: f32,
    mean: [f32; 3],
    std: [f32; 3],
) -> Vec<f32> {
    let resized;
    let img = match resize {
        Some((w, h, f)) if (w, h) != img.dimensions() => {
            resized = resize_to(img, w, h, f);
            &resized
        }
        _ => img,
    };
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let mut out = vec![0.0f32; 3 * plane];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (px[c] as f32 * rescale - mean[c]) / std[c];
        }
    }
    out
}

/// OpenCV's `cv2.resize(..., interpolation=INTER_LINEAR)` on 8-bit images, as ultralytics'
/// letterbox uses it: bilinear with half-pixel centres and no antialiasing, 11-bit fixed-point
/// weights (`INTER_RESIZE_COEF_BITS`), a horizontal pass into 32-bit sums and the vectorised
/// vertical pass' rounding (`((b0*(S0>>4))>>16 + (b1*(S1>>4))>>16 + 2) >> 2`).
pub fn resize_bilinear_cv2(img: &RgbImage, out_w: u32, out_h: u32) -> RgbImage {
    const BITS: u32 = 11;
    const SCALE: f32 = (1 << BITS) as f32;
    let (in_w, in_h) = img.dimensions();
    let src = img.as_raw();
    // Per output index: source index and the two 11-bit weights (the second source index is
    // clamped at the border, where its weight is 0).
    let table = |in_size: u32, out_size: u32| -> Vec<(usize, i32, i32)> {
        let scale = in_size as f64 / out_size as f64;
        (0..out_size)
            .map(|d| {
                let mut f = ((d as f64 + 0.5) * scale - 0.5) as f32;
                let mut s = f.floor() as i64;
                f -= s as f32;
                if s < 0 {
                    f = 0.0;
                    s = 0;
                }
                if s >= in_size as i64 - 1 {
                    f = 0.0;
                    s = in_size as i64 - 1;
                }
                let w0 = ((1.0 - f) * SCALE).round() as i32;
                let w1 = (f * SCALE).round() as i32;
                (s as usize, w0, w1)
            })
            .collect()
    };
    let tx = table(in_w, out_w);
    let ty = table(in_h, out_h);
    let row_h = |y: usize| -> Vec<i32> {
        let mut h = vec![0i32; out_w as usize * 3];
        for (dx, &(sx, w0, w1)) in tx.iter().enumerate() {
            let sx1 = (sx + 1).min(in_w as usize - 1);
            for c in 0..3 {
                let a = src[(y * in_w as usize + sx) * 3 + c] as i32;
                let b = src[(y * in_w as usize + sx1) * 3 + c] as i32;
                h[dx * 3 + c] = a * w0 + b * w1;
            }
        }
        h
    };
    let mut out = vec![0u8; (out_w * out_h * 3) as usize];
    for (dy, &(sy, b0, b1)) in ty.iter().enumerate() {
        let sy1 = (sy + 1).min(in_h as usize - 1);
        let (h0, h1) = (row_h(sy), row_h(sy1));
        for x in 0..h0.len() {
            let t0 = (b0 * (h0[x] >> 4)) >> 16;
            let t1 = (b1 * (h1[x] >> 4)) >> 16;
            out[dy * h0.len() + x] = ((t0 + t1 + 2) >> 2).clamp(0, 255) as u8;
        }
    }
    RgbImage::from_raw(out_w, out_h, out).expect("buffer size matches")
}
