//! CLIP vs transformers' `CLIPModel` on tests/fixtures/clip/tiny (tools/fixtures/gen_clip.py):
//! the text tower (causal mask, quick_gelu, EOS pooling, text_projection), the vision tower
//! (class embedding, pre-layernorm, post-layernorm, visual_projection), the legacy CLIP
//! processor config on bus.jpg, normalized embeddings, `logits_per_image` and the zero-shot
//! softmax — on the GPU, the portable GPU kernels and the CPU reference.

mod common;
use common::{assets, compare, compare_masked, record};
use std::path::{Path, PathBuf};
use wgpu_infer::models::bert::BertInput;
use wgpu_infer::models::{detect_model_type, parse_config, Clip, ModelKind};
use wgpu_infer::weights::Weights;
use wgpu_infer::Tensor;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip/tiny")
}

fn meta() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("reference.json")).unwrap()).unwrap()
}

fn strs(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn rows(v: &[Vec<f32>]) -> Tensor {
    Tensor::from_f32(&[v.len(), v[0].len()], v.concat()).unwrap()
}

#[test]
fn clip_matches_transformers() {
    let r = Weights::open(dir().join("reference.safetensors")).unwrap();
    let m_json = meta();
    let (texts, labels) = (strs(&m_json["texts"]), strs(&m_json["labels"]));
    let ids = r.get_u32("text.input_ids").unwrap();
    let (batch, seq) = (ids.shape()[0], ids.shape()[1]);
    let inp = BertInput {
        batch,
        seq,
        input_ids: ids.as_u32().unwrap().to_vec(),
        token_type_ids: vec![0; batch * seq],
        attention_mask: r
            .get_u32("text.attention_mask")
            .unwrap()
            .as_u32()
            .unwrap()
            .to_vec(),
    };
    let bus = wgpu_infer::imageio::load_rgb(&assets().join("bus.jpg")).unwrap();
    for backend in common::model_backends() {
        let label = common::label(&backend);
        let m = Clip::load(backend.clone(), dir()).unwrap();
        assert!(m.warnings().is_empty(), "{:?}", m.warnings());
        assert_eq!(m.max_len(), 32);
        // Our tokenization of the texts is the reference batch (its padding is the EOS id).
        let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let ours = m.tokenize(&text_refs).unwrap();
        for b in 0..batch {
            let n = inp.len(b);
            assert_eq!(
                ours.input_ids[b * ours.seq..b * ours.seq + n],
                inp.input_ids[b * seq..b * seq + n],
                "text {b}"
            );
        }
        let t = m.text_forward(&inp).unwrap();
        let th = compare_masked(
            &format!("clip text {label}"),
            &t.last_hidden_state,
            &r.get("text.last_hidden_state").unwrap(),
            &inp,
        );
        let cmp = |what: &str, got: &Tensor, key: &str, tol: f64| {
            compare(
                &format!("clip {what} {label}"),
                got,
                &r.get(key).unwrap(),
                tol,
                0.0,
            )
            .0
        };
        let tp = cmp("text pooler", &t.pooler_output, "text.pooler_output", 1e-4);
        let te = cmp("text_embeds", &t.text_embeds, "text.text_embeds", 1e-4);
        let v = m
            .vision_forward(&r.get("random.pixel_values").unwrap())
            .unwrap();
        let vh = cmp(
            "vision",
            &v.last_hidden_state,
            "random.last_hidden_state",
            1e-4,
        );
        let vp = cmp(
            "vision pooler",
            &v.pooler_output,
            "random.pooler_output",
            1e-4,
        );
        let ve = cmp("image_embeds", &v.image_embeds, "random.image_embeds", 1e-4);
        // bus.jpg through the legacy processor config, and the labels through our tokenizer.
        let pv = m
            .preprocess_rgb(&bus)
            .unwrap()
            .reshape(&[1, 3, 64, 64])
            .unwrap();
        let pp = cmp("bus pixel_values", &pv, "bus.pixel_values", 1e-5);
        let img = m.embed_images(&[assets().join("bus.jpg")]).unwrap();
        let ie = cmp("bus image_embeds", &rows(&img), "bus.image_embeds", 1e-4);
        let label_refs: Vec<&str> = labels.iter().map(String::as_str).collect();
        let txt = m.embed_texts(&label_refs).unwrap();
        let le = cmp(
            "labels text_embeds",
            &rows(&txt),
            "labels.text_embeds",
            1e-4,
        );
        let logits = m.similarity(&img, &txt);
        let lg = cmp("logits_per_image", &logits, "bus.logits_per_image", 1e-4);
        // Zero-shot: the softmax of those logits, best first.
        let zs = m
            .zero_shot(&[assets().join("bus.jpg")], &label_refs)
            .unwrap();
        let want: Vec<f64> = m_json["bus_probs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let mut best = 0;
        for (i, p) in want.iter().enumerate() {
            if *p > want[best] {
                best = i;
            }
            let got = zs[0].iter().find(|s| s.label == labels[i]).unwrap().score as f64;
            assert!(
                (got - p).abs() < 1e-5,
                "{label}: {}: {got} vs {p}",
                labels[i]
            );
        }
        assert_eq!(zs[0][0].label, labels[best]);
        assert!(zs[0].windows(2).all(|w| w[0].score >= w[1].score));
        println!(
            "PARITY clip {label}: text hidden {th:.3e} pooler {tp:.3e} embeds {te:.3e}; vision hidden {vh:.3e} pooler {vp:.3e} embeds {ve:.3e}; bus pixels {pp:.3e} image {ie:.3e} labels {le:.3e} logits {lg:.3e}"
        );
        record(
            "clip text (hidden, pooler, embeds)",
            label,
            th.max(tp).max(te),
            0.0,
        );
        record(
            "clip vision (hidden, pooler, embeds)",
            label,
            vh.max(vp).max(ve),
            0.0,
        );
        record(
            "clip normalized embeddings, logits",
            label,
            ie.max(le).max(lg),
            0.0,
        );
    }
    for k in [
        "text (hidden, pooler, embeds)",
        "vision (hidden, pooler, embeds)",
        "normalized embeddings, logits",
    ] {
        common::print_table_for(&format!("clip {k}"));
    }
}

#[test]
fn clip_is_detected_and_bad_configs_are_refused() {
    let text = std::fs::read_to_string(dir().join("config.json")).unwrap();
    assert_eq!(parse_config(&text).unwrap().kind(), ModelKind::Clip);
    let w = Weights::open(dir().join("model.safetensors")).unwrap();
    assert_eq!(detect_model_type(&w), Some("clip"));
    let bad = text.replace("\"num_attention_heads\": 3", "\"num_attention_heads\": 5");
    assert_ne!(bad, text);
    let e = parse_config(&bad).unwrap_err();
    assert!(
        e.contains("'vision_config.hidden_size' = 48 is not divisible by 'vision_config.num_attention_heads' = 5"),
        "{e}"
    );
    // A folder of another family is refused by name.
    let e = Clip::load(
        common::model_backends().remove(0),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vit/tiny_cls"),
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("vit"), "{e}");
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-infer"))
        .args(args)
        .output()
        .unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `zero-shot`, `embed` and `embed-image` on a CLIP folder print what the library computes.
#[test]
fn clip_cli_commands_print_the_library_results() {
    let model = dir().display().to_string();
    let bus = assets().join("bus.jpg").display().to_string();
    let labels = ["a photo of a bus", "a photo of a cat", "a diagram"];
    let m = Clip::load(wgpu_infer::Backend::Gpu(common::device()), dir()).unwrap();
    let want = m.zero_shot(&[&bus], &labels).unwrap();
    // The form: the images right after the labels.
    let mut args = vec!["zero-shot", "--quiet", "--model", &model, "--labels"];
    args.extend(labels);
    args.push(&bus);
    let out = cli(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["image"].as_str().unwrap(), bus);
    let got = v[0]["scores"].as_array().unwrap();
    assert_eq!(got.len(), 3);
    for (g, w) in got.iter().zip(&want[0]) {
        assert_eq!(g["label"].as_str().unwrap(), w.label);
        assert!((g["score"].as_f64().unwrap() as f32 - w.score).abs() <= 1e-6);
    }
    let out = cli(&["embed", "--quiet", "--model", &model, labels[0], labels[1]]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dim"], 24);
    let want = m.embed_texts(&labels[..2]).unwrap();
    for (row, w) in v["embeddings"].as_array().unwrap().iter().zip(&want) {
        assert!(max_diff(&floats(row), w) <= 1e-6);
        let norm: f32 = w.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "normalized: {norm}");
    }
    let out = cli(&["embed-image", "--quiet", "--model", &model, &bus]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = m.embed_images(&[&bus]).unwrap();
    assert!(max_diff(&floats(&v[0]["embedding"]), &want[0]) <= 1e-6);
    // Bad uses: no images; --pooling on CLIP; a label past the 32 positions without --truncate.
    let out = cli(&["zero-shot", "--model", &model, "--labels", "a", "b"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no images"));
    let out = cli(&["embed", "--model", &model, "--pooling", "cls", "a"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("do not apply to CLIP"));
    let long = "the quick brown fox jumps over the lazy dog ".repeat(10);
    let out = cli(&["embed", "--model", &model, &long]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--truncate"));
}
