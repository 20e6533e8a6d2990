//! Decoding image files to 8-bit RGB (JPEG through zune-jpeg, PNG, WebP, GIF, BMP through the
//! `image` crate), with the EXIF orientation applied as transformers (`PIL.ImageOps.exif_transpose`)
//! and ultralytics (`cv2.imread`) apply it, and absurd sizes refused before anything is
//! allocated: files over [`MAX_FILE_BYTES`], declared sides over [`MAX_SIDE`], decoded buffers
//! over [`MAX_ALLOC`].

use crate::error::{Error, Result};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, RgbImage};
use std::io::{Cursor, Read};
use std::path::Path;

/// Largest accepted side, and decoded bytes, of an input image.
pub const MAX_SIDE: u32 = 16384;
pub const MAX_ALLOC: u64 = 1 << 30;
/// Largest accepted image file.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Decodes an image file to 8-bit RGB, EXIF orientation applied. A path that is not a regular
/// file (a directory, a FIFO, a device) is refused before it is opened, so this never blocks;
/// the file is read up to [`MAX_FILE_BYTES`].
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let bytes = read_limited(path, MAX_FILE_BYTES)?;
    decode_rgb(&bytes).map_err(|msg| Error::Image {
        path: path.to_path_buf(),
        msg,
    })
}

/// Decodes an image held in memory (the bytes of a file) to 8-bit RGB, EXIF orientation
/// applied, with the limits of [`load_rgb`].
pub fn decode_rgb_bytes(bytes: &[u8]) -> Result<RgbImage> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::Image {
            path: "<bytes>".into(),
            msg: format!(
                "{} bytes is over the {MAX_FILE_BYTES}-byte limit for an image file",
                bytes.len()
            ),
        });
    }
    decode_rgb(bytes).map_err(|msg| Error::Image {
        path: "<bytes>".into(),
        msg,
    })
}

/// The bytes of a regular file of at most `limit` bytes.
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>> {
    let invalid = |msg: String| {
        Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, msg),
        )
    };
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    if meta.len() > limit {
        return Err(invalid(format!(
            "{} bytes is over the {limit}-byte limit for an image file",
            meta.len()
        )));
    }
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte past the limit tells a file that grew since the check.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(invalid(format!(
            "over the {limit}-byte limit for an image file"
        )));
    }
    Ok(bytes)
}

fn limits_message(l: impl std::fmt::Display) -> String {
    format!("image too large to decode ({l}); the limit is {MAX_SIDE}x{MAX_SIDE} pixels")
}

/// The decoding itself; errors are messages the callers attach a path to.
fn decode_rgb(bytes: &[u8]) -> std::result::Result<RgbImage, String> {
    // The format comes from the content alone: a text file named .jpg is "not an image",
    // not "a broken JPEG".
    let format = image::guess_format(bytes).map_err(|_| {
        "not a recognised image format (JPEG, PNG, WebP, GIF, BMP, ...)".to_string()
    })?;
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| match e {
        image::ImageError::Limits(l) => limits_message(l),
        other => format!("cannot decode: {other}"),
    })?;
    // A broken EXIF block is ignored (no transform), as PIL and OpenCV ignore it.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut img = if format == image::ImageFormat::Jpeg {
        let (w, h) = decoder.dimensions();
        drop(decoder);
        DynamicImage::ImageRgb8(decode_jpeg(bytes, w, h)?)
    } else {
        DynamicImage::from_decoder(decoder).map_err(|e| match e {
            image::ImageError::Limits(l) => limits_message(l),
            other => format!("cannot decode: {other}"),
        })?
    };
    if img.width() == 0 || img.height() == 0 {
        return Err(format!(
            "cannot decode: the image is {}x{} (no pixels)",
            img.width(),
            img.height()
        ));
    }
    img.apply_orientation(orientation);
    Ok(img.into_rgb8())
}

/// JPEG through zune-jpeg in strict mode first, so a truncated file is an error rather than an
/// image padded with grey (the lenient default); other strict-only complaints fall back to the
/// lenient decoder, as browsers and PIL accept such files.
fn decode_jpeg(bytes: &[u8], w: u32, h: u32) -> std::result::Result<RgbImage, String> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let opts = |strict: bool| {
        DecoderOptions::default()
            .set_strict_mode(strict)
            .set_max_width(MAX_SIDE as usize)
            .set_max_height(MAX_SIDE as usize)
            .jpeg_set_out_colorspace(ColorSpace::RGB)
    };
    let pixels =
        match zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), opts(true)).decode() {
            Ok(p) => p,
            Err(e) => {
                let msg = e.to_string();
                let lower = msg.to_lowercase();
                if lower.contains("premature end")
                    || lower.contains("exhausted")
                    || lower.contains("no more bytes")
                {
                    return Err(format!("cannot decode: truncated JPEG ({msg})"));
                }
                zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), opts(false))
                    .decode()
                    .map_err(|e| format!("cannot decode: {e}"))?
            }
        };
    RgbImage::from_raw(w, h, pixels).ok_or_else(|| "cannot decode: unexpected pixel count".into())
}
