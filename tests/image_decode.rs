//! Decoded pixels equal the references' pixel for pixel: PIL's `Image.open(f).convert("RGB")`
//! (transformers' `load_image`) under `Convention::Pil`, `cv2.imread(f)` (ultralytics) under
//! `Convention::OpenCv`. Committed variants (tools/fixtures/gen_image_variants.py): JPEGs in
//! 4:2:0 / 4:2:2 / 4:4:4 at odd sizes, progressive, restart markers, optimized tables,
//! grayscale, Adobe CMYK, one pixel; PNGs with a palette (with and without transparency), L,
//! LA, RGBA, 16-bit RGB / RGBA / gray. And the downloaded bus.jpg and zidane.jpg
//! (`bash tools/fetch_assets.sh`).

mod common;
use std::path::{Path, PathBuf};
use wgpu_infer::imageio::{decode_rgb_bytes, load_rgb, load_rgb_as, Convention};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/images")
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("reference.json")).unwrap()).unwrap()
}

fn max_diff(a: &image::RgbImage, b: &image::RgbImage) -> u8 {
    assert_eq!(a.dimensions(), b.dimensions());
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

#[test]
fn variants_decode_to_the_references_pixels() {
    let r = reference();
    let variants = r["variants"].as_object().unwrap();
    assert!(variants.len() >= 19);
    let mut worst = 0;
    for (name, meta) in variants {
        let file = dir().join(meta["file"].as_str().unwrap());
        let pil = image::open(dir().join(format!("{name}.pil.png")))
            .unwrap()
            .to_rgb8();
        let cv2 = if meta["opencv_same"].as_bool().unwrap() {
            pil.clone()
        } else {
            image::open(dir().join(format!("{name}.cv2.png")))
                .unwrap()
                .to_rgb8()
        };
        let size = (
            meta["size"][0].as_u64().unwrap() as u32,
            meta["size"][1].as_u64().unwrap() as u32,
        );
        let ours = load_rgb(&file).unwrap();
        assert_eq!(ours.dimensions(), size, "{name}");
        let d_pil = max_diff(&ours, &pil);
        let d_cv2 = max_diff(&load_rgb_as(&file, Convention::OpenCv).unwrap(), &cv2);
        println!(
            "{name:>18} ({:>6}): max difference from PIL {d_pil}, from OpenCV {d_cv2}",
            meta["mode"].as_str().unwrap()
        );
        worst = worst.max(d_pil).max(d_cv2);
    }
    assert_eq!(worst, 0, "decoded pixels differ from the references'");
}

#[test]
fn bus_and_zidane_decode_to_pils_pixels() {
    let r = reference();
    let assets = common::assets();
    for name in ["bus.jpg", "zidane.jpg"] {
        let ours = load_rgb(&assets.join(name)).unwrap();
        // OpenCV decodes these two exactly as PIL (tools/fixtures/gen_image_variants.py checks).
        assert_eq!(
            ours,
            load_rgb_as(&assets.join(name), Convention::OpenCv).unwrap()
        );
        let want = &r[name];
        assert_eq!(
            ours.width() as u64,
            want["size"][0].as_u64().unwrap(),
            "{name}"
        );
        assert_eq!(
            ours.height() as u64,
            want["size"][1].as_u64().unwrap(),
            "{name}"
        );
        let crc = common::crc32(ours.as_raw()) as u64;
        assert_eq!(
            crc,
            want["crc32"].as_u64().unwrap(),
            "{name}: pixels differ from PIL's"
        );
    }
}

/// libjpeg's warnings do not stop decoding (PIL accepts such files); a truncated file does.
#[test]
fn warnings_are_accepted_and_truncation_is_refused() {
    let jpg = std::fs::read(dir().join("s420_97x61.jpg")).unwrap();
    let pil = image::open(dir().join("s420_97x61.pil.png"))
        .unwrap()
        .to_rgb8();
    // Two stray bytes before EOI: "Corrupt JPEG data: 2 extraneous bytes before marker 0xd9".
    let mut stray = jpg[..jpg.len() - 2].to_vec();
    stray.extend_from_slice(&[0x12, 0x34, 0xFF, 0xD9]);
    let got = decode_rgb_bytes(&stray).unwrap();
    assert_eq!(max_diff(&got, &pil), 0);
    let cut = &jpg[..jpg.len() * 2 / 3];
    let e = decode_rgb_bytes(cut).unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");
}
