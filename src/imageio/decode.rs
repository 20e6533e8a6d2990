//! Decoding image files to 8-bit RGB (JPEG through libjpeg-turbo with the `jpeg-turbo` feature,
//! the same library, algorithm and settings as PIL and OpenCV, so the pixels are PIL's exactly;
//! else through the pure-Rust zune-jpeg, up to a few levels apart; PNG, WebP, GIF, BMP through
//! the `image` crate), with the EXIF orientation applied as transformers (`PIL.ImageOps.exif_transpose`)
//! and ultralytics (`cv2.imread`) apply it, and absurd sizes refused before anything is
//! allocated: files over [`MAX_FILE_BYTES`], declared sides over [`MAX_SIDE`], decoded buffers
//! over [`MAX_ALLOC`].

use crate::error::{Error, Result};
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, RgbImage};
use std::io::{Cursor, Read};
use std::path::Path;

pub use super::MAX_SIDE;
/// Largest accepted decoded bytes of an input image.
pub const MAX_ALLOC: u64 = 1 << 30;
/// Largest accepted image file.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Whose conversion to 8-bit RGB to reproduce where the references differ. Both drop alpha
/// (no compositing) and apply the EXIF orientation; JPEGs decode to the same pixels in both
/// (libjpeg-turbo with its defaults) except CMYK ones, which each converts with its own
/// rounding; 16-bit images keep their high byte in both, except 16-bit grayscale, which PIL
/// clips to 255.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Convention {
    /// `PIL.Image.open(f).convert("RGB")` after `exif_transpose`, as transformers'
    /// `load_image` (ViT, BERT-family image towers).
    #[default]
    Pil,
    /// `cv2.imread(f)` (`IMREAD_COLOR`) as ultralytics reads images (YOLO), in RGB order.
    OpenCv,
}

/// Decodes an image file to 8-bit RGB as PIL does, EXIF orientation applied. A path that is not
/// a regular file (a directory, a FIFO, a device) is refused before it is opened, so this never
/// blocks; the file is read up to [`MAX_FILE_BYTES`].
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    load_rgb_as(path, Convention::Pil)
}

/// [`load_rgb`] with the conversion of `convention`.
pub fn load_rgb_as(path: &Path, convention: Convention) -> Result<RgbImage> {
    let bytes = read_limited(path, MAX_FILE_BYTES)?;
    decode_rgb(&bytes, convention).map_err(|msg| Error::Image {
        path: path.to_path_buf(),
        msg,
    })
}

/// Decodes an image held in memory (the bytes of a file) to 8-bit RGB as PIL does, EXIF
/// orientation applied, with the limits of [`load_rgb`].
pub fn decode_rgb_bytes(bytes: &[u8]) -> Result<RgbImage> {
    decode_rgb_bytes_as(bytes, Convention::Pil)
}

/// [`decode_rgb_bytes`] with the conversion of `convention`.
pub fn decode_rgb_bytes_as(bytes: &[u8], convention: Convention) -> Result<RgbImage> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(Error::Image {
            path: "<bytes>".into(),
            msg: format!(
                "{} bytes is over the {MAX_FILE_BYTES}-byte limit for an image file",
                bytes.len()
            ),
        });
    }
    decode_rgb(bytes, convention).map_err(|msg| Error::Image {
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
fn decode_rgb(bytes: &[u8], convention: Convention) -> std::result::Result<RgbImage, String> {
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
        DynamicImage::ImageRgb8(decode_jpeg(bytes, w, h, convention)?)
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
    Ok(to_rgb8(img, convention))
}

/// 8-bit RGB as the references convert: alpha dropped, gray replicated, 16-bit samples to their
/// high byte (16-bit gray clipped to 255 under PIL, whose `I;16` to RGB conversion clips).
fn to_rgb8(img: DynamicImage, convention: Convention) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    let gray = |v: u16| match convention {
        Convention::Pil => v.min(255) as u8,
        Convention::OpenCv => (v >> 8) as u8,
    };
    let pixels: Vec<u8> = match &img {
        DynamicImage::ImageLuma16(g) => g.as_raw().iter().flat_map(|&v| [gray(v); 3]).collect(),
        DynamicImage::ImageLumaA16(g) => g
            .as_raw()
            .chunks_exact(2)
            .flat_map(|p| [gray(p[0]); 3])
            .collect(),
        DynamicImage::ImageRgb16(c) => c.as_raw().iter().map(|&v| (v >> 8) as u8).collect(),
        DynamicImage::ImageRgba16(c) => c
            .as_raw()
            .chunks_exact(4)
            .flat_map(|p| [(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8])
            .collect(),
        _ => return img.into_rgb8(),
    };
    RgbImage::from_raw(w, h, pixels).expect("3 samples per pixel")
}

/// JPEG through libjpeg-turbo (TurboJPEG) with its defaults, which are PIL's and OpenCV's:
/// the accurate integer IDCT and fancy (triangle-filter) chroma upsampling. Gray is replicated
/// into R, G and B as PIL's `convert("RGB")` does; CMYK and YCCK are converted as PIL does
/// (Adobe files store inverted CMYK). libjpeg's warnings (extraneous bytes, a bad Huffman
/// code) are accepted as PIL accepts them, except a premature end of data: a truncated file is
/// an error, as in PIL.
#[cfg(feature = "jpeg-turbo")]
fn decode_jpeg(
    bytes: &[u8],
    w: u32,
    h: u32,
    convention: Convention,
) -> std::result::Result<RgbImage, String> {
    use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat};
    let mut d = Decompressor::new().map_err(|e| format!("cannot decode: {e}"))?;
    let header = d
        .read_header(bytes)
        .map_err(|e| format!("cannot decode: {}", tj_message(&e)))?;
    if header.width != w as usize || header.height != h as usize {
        return Err(format!(
            "cannot decode: the JPEG header says {}x{}, its frame {w}x{h}",
            header.width, header.height
        ));
    }
    let cmyk = matches!(header.colorspace, Colorspace::CMYK | Colorspace::YCCK);
    let (format, channels) = if cmyk {
        (PixelFormat::CMYK, 4)
    } else {
        (PixelFormat::RGB, 3)
    };
    let (w, h) = (w as usize, h as usize);
    let bytes_out = w * h * channels; // sides checked against MAX_SIDE by the caller
    if bytes_out as u64 > MAX_ALLOC {
        return Err(limits_message(format!("{bytes_out} bytes of pixels")));
    }
    let mut image = Image {
        pixels: vec![0u8; bytes_out],
        width: w,
        pitch: w * channels,
        height: h,
        format,
    };
    if let Err(e) = d.decompress(bytes, image.as_deref_mut()) {
        let msg = tj_message(&e);
        if msg.contains("Premature end") || !is_libjpeg_warning(&msg) {
            let what = if msg.contains("Premature end") {
                "truncated JPEG"
            } else {
                "corrupt JPEG"
            };
            return Err(format!("cannot decode: {what} ({msg})"));
        }
    }
    let rgb = if cmyk {
        let inverted = has_adobe_marker(bytes);
        image
            .pixels
            .chunks_exact(4)
            .flat_map(|p| match convention {
                Convention::Pil => cmyk_to_rgb(p, inverted),
                Convention::OpenCv => cmyk_to_rgb_opencv(p),
            })
            .collect()
    } else {
        image.pixels
    };
    RgbImage::from_raw(w as u32, h as u32, rgb)
        .ok_or_else(|| "cannot decode: unexpected pixel count".into())
}

#[cfg(feature = "jpeg-turbo")]
fn tj_message(e: &turbojpeg::Error) -> String {
    match e {
        turbojpeg::Error::TurboJpegError(m) => m.clone(),
        e => e.to_string(),
    }
}

/// libjpeg's non-fatal messages (its JWRN_* codes), after which the decoded image is complete.
#[cfg(feature = "jpeg-turbo")]
fn is_libjpeg_warning(msg: &str) -> bool {
    msg.starts_with("Corrupt JPEG data")
        || msg.starts_with("Warning:")
        || msg.starts_with("Invalid SOS parameters")
        || msg.starts_with("Inconsistent progression")
        || msg.starts_with("Unknown Adobe color transform")
}

/// Whether the file has an Adobe APP14 segment (before the first scan): such files store CMYK
/// inverted, and PIL reads them as `CMYK;I`.
#[cfg(feature = "jpeg-turbo")]
fn has_adobe_marker(bytes: &[u8]) -> bool {
    let mut i = 2; // after SOI
    while i + 4 <= bytes.len() && bytes[i] == 0xFF {
        let marker = bytes[i + 1];
        if marker == 0xDA {
            return false; // start of scan
        }
        let len = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        if marker == 0xEE && bytes.get(i + 4..i + 9) == Some(b"Adobe".as_slice()) {
            return true;
        }
        i += 2 + len;
    }
    false
}

/// One CMYK pixel as libjpeg returns it to RGB, as PIL's `convert("RGB")` does it (Convert.c
/// cmyk2rgb on the true CMYK: `255 - k - c * (255 - k) / 255`, rounded as PIL's MULDIV255).
#[cfg(feature = "jpeg-turbo")]
fn cmyk_to_rgb(p: &[u8], inverted: bool) -> [u8; 3] {
    let v = |x: u8| if inverted { 255 - x as i32 } else { x as i32 };
    let nk = 255 - v(p[3]);
    let muldiv255 = |a: i32, b: i32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let ch = |c: u8| (nk - muldiv255(v(c), nk)).clamp(0, 255) as u8;
    [ch(p[0]), ch(p[1]), ch(p[2])]
}

/// One CMYK pixel as libjpeg returns it to RGB, as OpenCV's JPEG decoder does it
/// (`icvCvt_CMYK2BGR_8u_C4C3R` on the stored values: `k - (255 - c) * k / 256`).
#[cfg(feature = "jpeg-turbo")]
fn cmyk_to_rgb_opencv(p: &[u8]) -> [u8; 3] {
    let k = p[3] as i32;
    let ch = |c: u8| (k - (((255 - c as i32) * k) >> 8)) as u8;
    [ch(p[0]), ch(p[1]), ch(p[2])]
}

/// JPEG through zune-jpeg in strict mode first, so a truncated file is an error rather than an
/// image padded with grey (the lenient default); other strict-only complaints fall back to the
/// lenient decoder, as browsers and PIL accept such files.
#[cfg(not(feature = "jpeg-turbo"))]
fn decode_jpeg(
    bytes: &[u8],
    w: u32,
    h: u32,
    _convention: Convention,
) -> std::result::Result<RgbImage, String> {
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
