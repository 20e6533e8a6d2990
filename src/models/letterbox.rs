//! ultralytics' letterbox (bit-exact with OpenCV's resize) and how a letterboxed image maps
//! back to the original: what detection and segmentation post-processing share.

use crate::error::{Error, Result};
use crate::imageio::resize_bilinear_cv2;
use crate::tensor::Tensor;
use image::RgbImage;

/// An image with no pixels (0 wide or 0 high) is an error, not a division by zero.
pub(crate) fn check_not_empty(img: &RgbImage) -> Result<()> {
    match img.dimensions() {
        (0, _) | (_, 0) => Err(Error::InvalidArgument(format!(
            "the image is {}x{}: it has no pixels",
            img.width(),
            img.height()
        ))),
        _ => Ok(()),
    }
}

/// How a letterboxed image maps back to the original.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Letterbox {
    pub orig_w: u32,
    pub orig_h: u32,
    pub w: u32,
    pub h: u32,
}

/// ultralytics' LetterBox: scale to fit `imgsz` keeping the aspect ratio (OpenCV bilinear),
/// pad with 114 to the square (or, with `rect`, to the next multiple of 32), centred.
/// An empty image, or an `imgsz` that is not a positive multiple of 32, is an error.
pub fn letterbox(img: &RgbImage, imgsz: usize, rect: bool) -> Result<(RgbImage, Letterbox)> {
    check_not_empty(img)?;
    if imgsz == 0 || !imgsz.is_multiple_of(32) {
        return Err(Error::InvalidArgument(format!(
            "imgsz must be a positive multiple of 32, got {imgsz}"
        )));
    }
    let (w0, h0) = img.dimensions();
    let r = (imgsz as f64 / h0 as f64).min(imgsz as f64 / w0 as f64);
    // At least one pixel: a 1x2000 strip scales to 1x640, not 0x640 (where OpenCV would fail),
    // and the padding below is computed from these clamped sides, so with `rect` both sides
    // are multiples of 32.
    let new_w = (round_half_even(w0 as f64 * r) as u32).max(1);
    let new_h = (round_half_even(h0 as f64 * r) as u32).max(1);
    let (mut dw, mut dh) = (imgsz as f64 - new_w as f64, imgsz as f64 - new_h as f64);
    if rect {
        dw %= 32.0;
        dh %= 32.0;
    }
    dw /= 2.0;
    dh /= 2.0;
    let resized = if (new_w, new_h) != (w0, h0) {
        resize_bilinear_cv2(img, new_w, new_h)
    } else {
        img.clone()
    };
    let top = round_half_even(dh - 0.1) as u32;
    let bottom = round_half_even(dh + 0.1) as u32;
    let left = round_half_even(dw - 0.1) as u32;
    let right = round_half_even(dw + 0.1) as u32;
    let (w, h) = (new_w + left + right, new_h + top + bottom);
    let mut out = RgbImage::from_pixel(w, h, image::Rgb([114, 114, 114]));
    image::imageops::replace(&mut out, &resized, left as i64, top as i64);
    Ok((
        out,
        Letterbox {
            orig_w: w0,
            orig_h: h0,
            w,
            h,
        },
    ))
}

/// Letterboxed RGB to a [1, 3, h, w] tensor in [0, 1].
pub fn to_tensor(img: &RgbImage) -> Result<Tensor> {
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let mut v = vec![0.0f32; 3 * plane];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            v[c * plane + i] = px[c] as f32 / 255.0;
        }
    }
    Tensor::from_f32(&[1, 3, h as usize, w as usize], v)
}

/// Python's `round` (halves to even), which ultralytics' letterbox arithmetic uses.
pub(crate) fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}
