//! ViT vs transformers on the committed fixtures (GPU and CPU), preprocessing vs transformers'
//! image processor, and image decoding errors.

mod common;
use common::{assets, compare, record};
use std::path::{Path, PathBuf};
use wgpu_infer::imageio::{load_rgb, resize_bilinear_aa, resize_bilinear_aa_torchvision};
use wgpu_infer::models::vit::Vit;
use wgpu_infer::weights::Weights;
use wgpu_infer::{Backend, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vit")
        .join(name)
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgpu-infer-vit-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn tiny_cls_logits_match_transformers() {
    let r = Weights::open(fixture("tiny_cls/reference.safetensors")).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("tiny_cls/reference.json")).unwrap())
            .unwrap();
    for backend in common::model_backends() {
        let m = Vit::load(backend.clone(), fixture("tiny_cls")).unwrap();
        assert!(m.warnings().is_empty(), "{:?}", m.warnings());
        let label = format!("vit tiny_cls {}", common::label(&backend));
        let mut worst = 0.0f64;
        for key in ["random", "bus"] {
            let out = m
                .forward(&r.get(&format!("{key}.pixel_values")).unwrap())
                .unwrap();
            let (a, _) = compare(
                &format!("{label} {key}"),
                out.logits.as_ref().unwrap(),
                &r.get(&format!("{key}.logits")).unwrap(),
                1e-4,
                0.0,
            );
            worst = worst.max(a);
        }
        record("vit logits", &label, worst, 0.0);
        // End to end from the JPEG (decoded to PIL's pixels): pixel values and logits as
        // transformers computes them from the file.
        let bus = wgpu_infer::imageio::load_rgb(&assets().join("bus.jpg")).unwrap();
        let pv = m.preprocess_rgb(&bus).unwrap();
        let pv = Tensor::from_f32(&[1, 3, 48, 48], pv.to_f32_vec()).unwrap();
        let (dp, _) = compare(
            &format!("{label} bus.jpg pixel_values"),
            &pv,
            &r.get("bus.pixel_values").unwrap(),
            1.0,
            0.0,
        );
        let out = m.forward(&pv).unwrap();
        let (dl, _) = compare(
            &format!("{label} bus.jpg logits"),
            out.logits.as_ref().unwrap(),
            &r.get("bus.logits").unwrap(),
            1.0,
            0.0,
        );
        println!("PARITY {label} from bus.jpg: pixel_values {dp:.3e}, logits {dl:.3e}");
        // The decoded pixels are PIL's exactly (tests/image_decode.rs); what remains is the
        // resize, within one 8-bit level of torchvision's (2/255 in normalized units).
        assert!(
            dp <= 2.0 / 255.0 + 1e-6,
            "{label}: pixel_values from the JPEG off by {dp}"
        );
        // Same top-5 labels in the same order as transformers.
        let top = m.classify(&[assets().join("bus.jpg")], 5).unwrap();
        let want: Vec<usize> = meta["bus_top5"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["index"].as_u64().unwrap() as usize)
            .collect();
        let got: Vec<usize> = top[0].iter().map(|p| p.index).collect();
        assert_eq!(got, want, "{label}: top-5 on bus.jpg");
        for (p, w) in top[0].iter().zip(meta["bus_top5"].as_array().unwrap()) {
            assert_eq!(p.label, w["label"].as_str().unwrap());
            let ds = (p.score as f64 - w["score"].as_f64().unwrap()).abs();
            assert!(ds <= 1e-4, "{label}: score of {} differs by {ds}", p.label);
        }
    }
    common::print_table_for("vit logits");
}

#[test]
fn tiny_bare_embeddings_match_transformers() {
    let r = Weights::open(fixture("tiny_bare/reference.safetensors")).unwrap();
    for backend in common::model_backends() {
        let m = Vit::load(backend.clone(), fixture("tiny_bare")).unwrap();
        let out = m.forward(&r.get("random.pixel_values").unwrap()).unwrap();
        assert!(out.logits.is_none());
        let (a, _) = compare(
            "vit bare hidden",
            &out.last_hidden_state,
            &r.get("random.last_hidden_state").unwrap(),
            1e-4,
            0.0,
        );
        let (b, _) = compare(
            "vit bare pooler",
            out.pooler_output.as_ref().unwrap(),
            &r.get("random.pooler_output").unwrap(),
            1e-4,
            0.0,
        );
        record(
            "vit logits",
            &format!("vit tiny_bare {}", common::label(&backend)),
            a.max(b),
            0.0,
        );
        let e = m
            .classify(&[assets().join("bus.jpg")], 5)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no classifier"), "{e}");
        let emb = m.embed(&[assets().join("bus.jpg")]).unwrap();
        assert_eq!(emb[0].len(), 64);
    }
}

fn levels(img: &image::RgbImage) -> Vec<u8> {
    // CHW order, like the fixture.
    let (w, h) = img.dimensions();
    let mut out = vec![0u8; (3 * w * h) as usize];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            out[c * (w * h) as usize + i] = px[c];
        }
    }
    out
}

fn max_level_diff(a: &[u8], b: &[u8]) -> u8 {
    a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap()
}

/// Resize + rescale + normalize equal transformers' ViTImageProcessor (torchvision's uint8
/// antialiased bilinear) bit for bit, on identical decoded pixels (a PNG) and from the JPEG,
/// which decodes to PIL's pixels exactly. Pillow's own resize is at most one level away.
#[test]
fn preprocessing_matches_the_image_processor() {
    let r = Weights::open(fixture("preprocess_224.safetensors")).unwrap();
    let want_crop = r.get_u32("crop.levels").unwrap();
    let want_crop: Vec<u8> = want_crop
        .as_u32()
        .unwrap()
        .iter()
        .map(|&v| v as u8)
        .collect();
    let crop = load_rgb(&fixture("bus_crop.png")).unwrap();
    let d = max_level_diff(
        &levels(&resize_bilinear_aa_torchvision(&crop, 224, 224)),
        &want_crop,
    );
    println!("PARITY preprocess png: max {d} level(s)");
    assert_eq!(d, 0, "resize differs from torchvision by {d} levels");
    let pillow = max_level_diff(&levels(&resize_bilinear_aa(&crop, 224, 224)), &want_crop);
    println!("PARITY preprocess png, Pillow's resize: max {pillow} level(s)");
    assert!(pillow <= 1);

    let want_jpeg = r.get_u32("jpeg.levels").unwrap();
    let want_jpeg: Vec<u8> = want_jpeg
        .as_u32()
        .unwrap()
        .iter()
        .map(|&v| v as u8)
        .collect();
    let bus = load_rgb(&assets().join("bus.jpg")).unwrap();
    let d = max_level_diff(
        &levels(&resize_bilinear_aa_torchvision(&bus, 224, 224)),
        &want_jpeg,
    );
    println!("PARITY preprocess jpeg: max {d} level(s)");
    assert_eq!(
        d, 0,
        "JPEG + resize differs from PIL + torchvision by {d} levels"
    );

    // The normalized tensor is (level / 255 - 0.5) / 0.5.
    let m = Vit::load(Backend::Cpu, fixture("tiny_cls")).unwrap();
    let pv = m.preprocess_rgb(&crop).unwrap();
    let small = levels(&resize_bilinear_aa_torchvision(&crop, 48, 48));
    let expect: Vec<f32> = small
        .iter()
        .map(|&l| (l as f32 / 255.0 - 0.5) / 0.5)
        .collect();
    compare(
        "normalize",
        &pv,
        &Tensor::from_f32(&[3, 48, 48], expect).unwrap(),
        1e-6,
        0.0,
    );
}

#[test]
fn decodes_png_webp_jpeg_and_rejects_bad_images() {
    let dir = scratch("img");
    let crop = load_rgb(&fixture("bus_crop.png")).unwrap();
    // Lossless WebP round trip gives the same pixels.
    let webp = dir.join("crop.webp");
    crop.save_with_format(&webp, image::ImageFormat::WebP)
        .unwrap();
    assert_eq!(load_rgb(&webp).unwrap(), crop);
    // A grayscale PNG and an RGBA PNG become RGB.
    let gray = image::GrayImage::from_fn(5, 3, |x, y| image::Luma([(x * 40 + y) as u8]));
    let gp = dir.join("gray.png");
    gray.save(&gp).unwrap();
    let g = load_rgb(&gp).unwrap();
    assert_eq!(g.dimensions(), (5, 3));
    assert_eq!(g.get_pixel(2, 1).0, [81, 81, 81]);
    // A 1x1 image is fine.
    let one = dir.join("one.png");
    image::RgbImage::from_pixel(1, 1, image::Rgb([10, 20, 30]))
        .save(&one)
        .unwrap();
    let m = Vit::load(Backend::Cpu, fixture("tiny_cls")).unwrap();
    assert_eq!(m.classify(&[&one], 3).unwrap()[0].len(), 3);

    let not_image = dir.join("notes.txt");
    std::fs::write(&not_image, "this is not an image").unwrap();
    let e = load_rgb(&not_image).unwrap_err().to_string();
    assert!(
        e.contains("notes.txt") && e.contains("not a recognised image format"),
        "{e}"
    );

    let jpeg = std::fs::read(assets().join("bus.jpg")).unwrap();
    let trunc = dir.join("truncated.jpg");
    std::fs::write(&trunc, &jpeg[..jpeg.len() / 3]).unwrap();
    let e = load_rgb(&trunc).unwrap_err().to_string();
    assert!(
        e.contains("truncated.jpg") && e.contains("cannot decode"),
        "{e}"
    );

    // A PNG header declaring 50000 x 50000 pixels: refused from the header, nothing allocated.
    let huge = dir.join("huge.png");
    let png = common::png_declaring(50000, 50000);
    std::fs::write(&huge, &png).unwrap();
    let e = load_rgb(&huge).unwrap_err().to_string();
    assert!(e.contains("too large"), "{e}");

    let e = load_rgb(&dir.join("missing.jpg")).unwrap_err().to_string();
    assert!(e.contains("missing.jpg"), "{e}");
}

/// DeiT with teacher (distillation token, mean of two heads) and its bicubic + centre-crop
/// processor, vs transformers (tools/fixtures/gen_deit.py).
#[test]
fn deit_with_teacher_matches_transformers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/deit/tiny_teacher");
    let r = Weights::open(dir.join("reference.safetensors")).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let bus = wgpu_infer::imageio::load_rgb(&assets().join("bus.jpg")).unwrap();
    for backend in common::model_backends() {
        let label = common::label(&backend);
        let m = Vit::load(backend.clone(), &dir).unwrap();
        assert_eq!(m.labels().len(), 10);
        let out = m.forward(&r.get("random.pixel_values").unwrap()).unwrap();
        let (dh, _) = compare(
            &format!("deit {label} random last_hidden_state"),
            &out.last_hidden_state,
            &r.get("random.last_hidden_state").unwrap(),
            1e-4,
            0.0,
        );
        let (dl, _) = compare(
            &format!("deit {label} random logits"),
            out.logits.as_ref().unwrap(),
            &r.get("random.logits").unwrap(),
            1e-4,
            0.0,
        );
        // The processor: bicubic resize to 56, centre crop to 48, as torchvision on uint8.
        let pv = m
            .preprocess_rgb(&bus)
            .unwrap()
            .reshape(&[1, 3, 48, 48])
            .unwrap();
        let (dp, _) = compare(
            &format!("deit {label} bus.jpg pixel_values"),
            &pv,
            &r.get("bus.pixel_values").unwrap(),
            1e-6,
            0.0,
        );
        let bus_out = m.forward(&pv).unwrap();
        let (db, _) = compare(
            &format!("deit {label} bus.jpg logits"),
            bus_out.logits.as_ref().unwrap(),
            &r.get("bus.logits").unwrap(),
            1e-4,
            0.0,
        );
        let top = m.classify_images(std::slice::from_ref(&bus), 5).unwrap();
        let want: Vec<usize> = meta["bus_top5"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["index"].as_u64().unwrap() as usize)
            .collect();
        let got: Vec<usize> = top[0].iter().map(|p| p.index).collect();
        assert_eq!(got, want, "{label}: DeiT top-5 on bus.jpg");
        println!(
            "PARITY deit {label}: hidden {dh:.3e}, logits {dl:.3e}, bus.jpg pixel_values {dp:.3e}, logits {db:.3e}"
        );
        record("deit", label, dh.max(dl).max(db), 0.0);
    }
}

/// `wgpu-infer embed-image`: one `{image, embedding}` per file, the library's vectors (the pooler
/// output of a bare ViTModel, checked against transformers above).
#[test]
fn embed_image_cli_prints_the_library_vectors() {
    let bus = assets().join("bus.jpg");
    let crop = fixture("bus_crop.png");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-infer"))
        .args(["embed-image", "--quiet", "--model"])
        .arg(fixture("tiny_bare"))
        .arg(&bus)
        .arg(&crop)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let m = Vit::load(Backend::Gpu(common::device()), fixture("tiny_bare")).unwrap();
    let want = m.embed(&[&bus, &crop]).unwrap();
    for (row, (w, path)) in rows.iter().zip(want.iter().zip([&bus, &crop])) {
        assert_eq!(row["image"].as_str().unwrap(), path.display().to_string());
        let got: Vec<f32> = row["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got.len(), 64);
        let d = got
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(d <= 1e-6, "{}: CLI vs library {d}", path.display());
    }
    // No images: a usage error, not an empty list.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-infer"))
        .args(["embed-image", "--model"])
        .arg(fixture("tiny_bare"))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// DINOv2 (layer scale, the position grid resized to the processor's 48-px crop, classifier on
/// [CLS, mean of patches]) and its shortest-edge bicubic resize + crop, vs transformers
/// (tools/fixtures/gen_dinov2.py).
#[test]
fn dinov2_matches_transformers() {
    dinov2_case("tiny_cls", "dinov2");
}

/// DINOv2 with 3 register tokens, its 14x14 position grid shrunk (antialiased bicubic) to 6x6.
#[test]
fn dinov2_with_registers_matches_transformers() {
    dinov2_case("tiny_registers", "dinov2_with_registers");
}

fn dinov2_case(fixture: &str, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/dinov2")
        .join(fixture);
    let r = Weights::open(dir.join("reference.safetensors")).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let bus = wgpu_infer::imageio::load_rgb(&assets().join("bus.jpg")).unwrap();
    for backend in common::model_backends() {
        let label = common::label(&backend);
        let m = Vit::load(backend.clone(), &dir).unwrap();
        let out = m.forward(&r.get("random.pixel_values").unwrap()).unwrap();
        let (dh, _) = compare(
            &format!("{name} {label} last_hidden_state"),
            &out.last_hidden_state,
            &r.get("random.last_hidden_state").unwrap(),
            1e-4,
            0.0,
        );
        let (dl, _) = compare(
            &format!("{name} {label} logits"),
            out.logits.as_ref().unwrap(),
            &r.get("random.logits").unwrap(),
            1e-4,
            0.0,
        );
        let pv = m
            .preprocess_rgb(&bus)
            .unwrap()
            .reshape(&[1, 3, 48, 48])
            .unwrap();
        let (dp, _) = compare(
            &format!("{name} {label} bus.jpg pixel_values"),
            &pv,
            &r.get("bus.pixel_values").unwrap(),
            1e-5,
            0.0,
        );
        let (db, _) = compare(
            &format!("{name} {label} bus.jpg logits"),
            m.forward(&pv).unwrap().logits.as_ref().unwrap(),
            &r.get("bus.logits").unwrap(),
            1e-4,
            0.0,
        );
        // The embedding is DINOv2's pooler output: the layer-normed CLS token.
        let emb = m.embed(&[assets().join("bus.jpg")]).unwrap();
        let (de, _) = compare(
            &format!("{name} {label} bus.jpg embedding"),
            &Tensor::from_f32(&[1, 64], emb[0].clone()).unwrap(),
            &r.get("bus.pooler_output").unwrap(),
            1e-4,
            0.0,
        );
        let top = m.classify_images(std::slice::from_ref(&bus), 5).unwrap();
        let want: Vec<usize> = meta["bus_top5"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["index"].as_u64().unwrap() as usize)
            .collect();
        let got: Vec<usize> = top[0].iter().map(|p| p.index).collect();
        assert_eq!(got, want, "{name} {label}: top-5 on bus.jpg");
        println!(
            "PARITY {name} {label}: hidden {dh:.3e}, logits {dl:.3e}, bus.jpg pixel_values {dp:.3e}, logits {db:.3e}, embedding {de:.3e}"
        );
        record(name, label, dh.max(dl).max(db).max(de), 0.0);
    }
}
