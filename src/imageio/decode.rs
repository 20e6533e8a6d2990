//! Decoding image files to 8-bit RGB (JPEG through zune-jpeg, PNG, WebP, GIF, BMP through the
//! `image` crate), with absurd declared sizes refused from the header alone.

use crate::error::{Error, Result};
use image::RgbImage;
use std::io::Read;
use std::path::Path;

/// Largest accepted side, and decoded bytes, of an input image.
pub const MAX_SIDE: u32 = 16384;
pub const MAX_ALLOC: u64 = 1 << 30;

/// Decodes an image file to 8-bit RGB. Absurd declared sizes are refused from the header alone.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let err = |msg: String| Error::Image {
        path: path.to_path_buf(),
        msg,
    };
    // The format comes from the content alone: a text file named .jpg is "not an image",
    // not "a broken JPEG".
    let mut head = Vec::with_capacity(64);
    std::fs::File::open(path)
        .and_then(|f| std::io::Read::take(f, 64).read_to_end(&mut head))
        .map_err(|e| Error::io(path, e))?;
    let format = image::guess_format(&head).map_err(|_| {
        err("not a recognised image format (JPEG, PNG, WebP, GIF, BMP, ...)".into())
    })?;
    let mut reader = image::ImageReader::open(path).map_err(|e| Error::io(path, e))?;
    reader.set_format(format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits.clone());
    if reader.format() == Some(image::ImageFormat::Jpeg) {
        let (w, h) = reader.into_dimensions().map_err(|e| match e {
            image::ImageError::Limits(l) => err(format!(
                "image too large to decode ({l}); the limit is {MAX_SIDE}x{MAX_SIDE} pixels"
            )),
            other => err(format!("cannot decode: {other}")),
        })?;
        return decode_jpeg(path, w, h);
    }
    let img = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(l) => err(format!(
            "image too large to decode ({l}); the limit is {MAX_SIDE}x{MAX_SIDE} pixels"
        )),
        other => err(format!("cannot decode: {other}")),
    })?;
    Ok(img.to_rgb8())
}

/// JPEG through zune-jpeg in strict mode first, so a truncated file is an error rather than an
/// image padded with grey (the lenient default); other strict-only complaints fall back to the
/// lenient decoder, as browsers and PIL accept such files.
fn decode_jpeg(path: &Path, w: u32, h: u32) -> Result<RgbImage> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let err = |msg: String| Error::Image {
        path: path.to_path_buf(),
        msg,
    };
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let opts = |strict: bool| {
        DecoderOptions::default()
            .set_strict_mode(strict)
            .set_max_width(MAX_SIDE as usize)
            .set_max_height(MAX_SIDE as usize)
            .jpeg_set_out_colorspace(ColorSpace::RGB)
    };
    let pixels =
        match zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(&bytes), opts(true)).decode() {
            Ok(p) => p,
            Err(e) => {
                let msg = e.to_string();
                let lower = msg.to_lowercase();
                if lower.contains("premature end")
                    || lower.contains("exhausted")
                    || lower.contains("no more bytes")
                {
                    return Err(err(format!("cannot decode: truncated JPEG ({msg})")));
                }
                zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(&bytes), opts(false))
                    .decode()
                    .map_err(|e| err(format!("cannot decode: {e}")))?
            }
        };
    RgbImage::from_raw(w, h, pixels)
        .ok_or_else(|| err("cannot decode: unexpected pixel count".into()))
}
