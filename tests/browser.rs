//! The browser package (web/pkg, built by `bash tools/build_web.sh`) in headless Chromium with
//! WebGPU (SwiftShader here), driven by web/tests/browser.mjs (playwright-core). Each family's
//! browser results are compared with the native library's on lavapipe, on the same fixtures,
//! and with the PyTorch references; then caching, the demo page, and bad inputs.
//!
//! Needs: web/pkg (`bash tools/build_web.sh`), `npm ci` in web/, Chromium (`apt-get install -y
//! chromium`; `CHROMIUM=/path` overrides). A missing piece fails the test saying how to get it.

mod common;

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use wgpu_infer::models::bert::Bert;
use wgpu_infer::models::detect::{DetectOptions, Detection};
use wgpu_infer::models::generate::GenerateOptions;
use wgpu_infer::models::{Gpt2, Vit, Yolo};
use wgpu_infer::weights::Weights;
use wgpu_infer::Backend;

/// One Chromium at a time: SwiftShader and lavapipe share the machine's two cores.
static BROWSER: Mutex<()> = Mutex::new(());

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> PathBuf {
    repo().join("tests/fixtures")
}

/// A fresh scratch directory served to the browser under /scratch/.
fn scratch(tag: &str) -> PathBuf {
    let d = repo().join("target/test-output/browser").join(tag);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Fails (never skips) when something the browser tests need is missing.
fn check_setup() {
    let pkg = repo().join("web/pkg/wgpu_infer.js");
    assert!(
        pkg.is_file(),
        "{} is missing: build the browser package with `bash tools/build_web.sh`",
        pkg.display()
    );
    let pw = repo().join("web/node_modules/playwright-core");
    assert!(
        pw.is_dir(),
        "playwright-core is missing: run `npm ci` in web/ (or `bash tools/test.sh`)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).is_file(),
        "no Chromium at {chromium}: `apt-get install -y chromium chromium-driver` (or set CHROMIUM)"
    );
}

/// Runs `job` (see web/tests/browser.mjs) with the fixtures at /fixtures/, `scratch` at
/// /scratch/ and the model cache (MiniLM, sample images) at /models/.
fn run(job: Value, scratch: &Path) -> Value {
    check_setup();
    let _one = BROWSER.lock().unwrap_or_else(|p| p.into_inner());
    let mut job = job;
    let models = common::minilm_dir().parent().unwrap().to_path_buf();
    // The demo's default folders (tools/build_web.sh serve links the same ones).
    job["mounts"] = json!({
        "/fixtures/": fixtures(),
        "/scratch/": scratch,
        "/models/": models,
        "/models/gpt2-tiny/": fixtures().join("gpt2/tiny_a"),
        "/models/vit-tiny/": fixtures().join("vit/tiny_cls"),
        "/models/yolov8n/": fixtures().join("yolo/yolov8n"),
    });
    let file = scratch.join("job.json");
    std::fs::write(&file, serde_json::to_vec(&job).unwrap()).unwrap();
    let out = Command::new("node")
        .arg(repo().join("web/tests/browser.mjs"))
        .arg(&file)
        .output()
        .expect("node is needed for the browser tests (apt-get install -y nodejs npm)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser run failed:\n{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("browser output is not JSON ({e}):\n{stderr}"));
    v
}

/// The value of a step that must succeed.
fn ok<'a>(r: &'a Value, what: &str) -> &'a Value {
    assert_eq!(
        r["ok"],
        json!(true),
        "{what} failed in the browser: {}",
        r["error"]
    );
    &r["value"]
}

/// The message of a step that must fail.
fn err(r: &Value, what: &str) -> String {
    assert_eq!(
        r["ok"],
        json!(false),
        "{what} should have failed: {}",
        r["value"]
    );
    r["error"].as_str().unwrap().to_string()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn gpu() -> Backend {
    Backend::Gpu(common::device())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Writes RGBA bytes of `img` to `dir/name` and returns the harness' image spec for it.
fn raw_image(img: &image::RgbImage, dir: &Path, name: &str) -> Value {
    let rgba: Vec<u8> = img.pixels().flat_map(|p| [p[0], p[1], p[2], 255]).collect();
    std::fs::write(dir.join(name), rgba).unwrap();
    json!({ "raw": format!("/scratch/{name}"), "width": img.width(), "height": img.height() })
}

#[test]
fn bert_embeddings_match_native_and_sentence_transformers() {
    let dir = scratch("bert");
    // The tiny sentence-transformers fixture (mean pooling + normalize; one text truncated).
    let tiny = fixtures().join("bert/tiny_a");
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(tiny.join("reference.json")).unwrap())
            .unwrap();
    let st_texts = strings(&meta["st"]);
    let st_want = Weights::open(tiny.join("reference.safetensors"))
        .unwrap()
        .get("st.embeddings")
        .unwrap();
    // The real all-MiniLM-L6-v2.
    let minilm = common::minilm_dir();
    let sentences = common::minilm_sentences();
    let mini_want = Weights::open(fixtures().join("minilm/reference.safetensors"))
        .unwrap()
        .get("embeddings")
        .unwrap();

    let b = run(
        json!({ "steps": [
            { "op": "embed", "family": "bert", "model": "/fixtures/bert/tiny_a/",
              "texts": st_texts, "options": { "truncate": true } },
            { "op": "embed", "family": "bert", "model": "/models/all-MiniLM-L6-v2/",
              "texts": sentences, "options": { "truncate": true } },
            { "op": "embed", "family": "bert", "model": "/fixtures/bert/tiny_a/",
              "texts": ["hello", "Café naïve 東京"], "load": { "dtype": "f16" },
              "options": { "pooling": "cls", "normalize": false } },
            // The same folder as a file map (files dropped on a page).
            { "op": "embed", "family": "bert", "model": "/fixtures/bert/tiny_a/",
              "files": ["config.json", "model.safetensors", "tokenizer.json", "modules.json",
                        "sentence_bert_config.json", "1_Pooling/config.json"],
              "texts": st_texts, "options": { "truncate": true } },
        ]}),
        &dir,
    );
    let r = b["results"].as_array().unwrap();

    let native_tiny = Bert::load(gpu(), &tiny).unwrap();
    let web: Vec<Vec<f32>> = ok(&r[0], "tiny_a embed")
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let nat = native_tiny.embed(&refs(&st_texts)).unwrap();
    let d_nat = max_diff(&web.concat(), &nat.concat());
    let d_st = max_diff(&web.concat(), st_want.as_f32().unwrap());
    println!("BROWSER bert tiny_a: vs native {d_nat:.2e}, vs sentence-transformers {d_st:.2e}");
    assert!(
        d_nat <= 1e-4 && d_st <= 1e-4,
        "tiny_a: {d_nat} / {d_st} over 1e-4"
    );

    let native_mini = Bert::load(gpu(), &minilm).unwrap();
    let web: Vec<Vec<f32>> = ok(&r[1], "MiniLM embed")
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let nat = native_mini.embed(&refs(&sentences)).unwrap();
    let d_nat = max_diff(&web.concat(), &nat.concat());
    let d_st = max_diff(&web.concat(), mini_want.as_f32().unwrap());
    println!(
        "BROWSER all-MiniLM-L6-v2 ({} sentences, {:.0} ms in the page): vs native {d_nat:.2e}, vs sentence-transformers {d_st:.2e}",
        sentences.len(),
        r[1]["ms"].as_f64().unwrap()
    );
    assert!(d_nat <= 1e-4, "MiniLM browser vs native {d_nat} over 1e-4");
    assert!(
        d_st <= 2e-5,
        "MiniLM browser vs sentence-transformers {d_st} over 2e-5"
    );

    // f16 weights and per-call options, against native with the same settings.
    let mut opts = wgpu_infer::LoadOptions::with_dtype(wgpu_infer::DType::F16);
    opts.progress = None;
    let mut native_f16 = Bert::load_with(gpu(), &tiny, &opts).unwrap();
    native_f16.set_pooling(wgpu_infer::models::sentence::Pooling::Cls);
    native_f16.set_normalize(false);
    let nat = native_f16.embed(&["hello", "Café naïve 東京"]).unwrap();
    let web: Vec<Vec<f32>> = ok(&r[2], "f16 cls embed")
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let d = max_diff(&web.concat(), &nat.concat());
    println!("BROWSER bert tiny_a f16, cls pooling: vs native {d:.2e}");
    assert!(d <= 1e-4, "f16 cls: {d} over 1e-4");

    let from_url: Vec<Vec<f32>> = ok(&r[0], "url")
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    let from_map: Vec<Vec<f32>> = ok(&r[3], "file map")
        .as_array()
        .unwrap()
        .iter()
        .map(floats)
        .collect();
    assert_eq!(
        from_map, from_url,
        "a file map loads the same model as its URL"
    );
}

#[test]
fn gpt2_greedy_tokens_match_native_and_transformers() {
    let dir = scratch("gpt2");
    let tiny = fixtures().join("gpt2/tiny_a");
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(tiny.join("reference.json")).unwrap())
            .unwrap();
    let prompt = meta["prompt"].as_str().unwrap();
    let n = meta["new_tokens"].as_u64().unwrap() as usize;
    let want: Vec<u32> = Weights::open(tiny.join("reference.safetensors"))
        .unwrap()
        .get_u32("generate.new_ids")
        .unwrap()
        .as_u32()
        .unwrap()
        .to_vec();
    let b = run(
        json!({ "steps": [
            { "op": "generate", "family": "gpt2", "model": "/fixtures/gpt2/tiny_a/",
              "prompt": prompt, "options": { "maxNewTokens": n, "temperature": 0, "stopAtEos": false } },
        ]}),
        &dir,
    );
    let g = ok(&b["results"][0], "generate");
    let web: Vec<u32> = g["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    let m = Gpt2::load(gpu(), &tiny).unwrap();
    let opts = GenerateOptions {
        max_new_tokens: n,
        stop_at_eos: false,
        ..Default::default()
    };
    let nat = m.generate(prompt, &opts, |_| true).unwrap();
    assert_eq!(web, nat.tokens, "browser vs native greedy tokens");
    assert_eq!(web, want, "browser vs transformers greedy tokens");
    assert_eq!(g["text"].as_str().unwrap(), nat.text, "decoded text");
    // onToken saw every token, in order, and its texts make up the text.
    let streamed = g["streamed"].as_array().unwrap();
    let ids: Vec<u32> = streamed
        .iter()
        .map(|s| s[1].as_u64().unwrap() as u32)
        .collect();
    let text: String = streamed.iter().map(|s| s[0].as_str().unwrap()).collect();
    assert_eq!(ids, web);
    assert_eq!(text, nat.text);
    println!(
        "BROWSER gpt2 tiny_a: {n} greedy tokens identical to native and transformers ({:.0} ms)",
        b["results"][0]["ms"].as_f64().unwrap()
    );
}

#[test]
fn vit_logits_match_native_and_transformers() {
    let dir = scratch("vit");
    let folder = fixtures().join("vit/tiny_cls");
    let bus = wgpu_infer::imageio::load_rgb(&common::assets().join("bus.jpg")).unwrap();
    let img = raw_image(&bus, &dir, "bus.rgba");
    let b = run(
        json!({ "steps": [
            { "op": "logits", "family": "vit", "model": "/fixtures/vit/tiny_cls/", "image": img },
            { "op": "classify", "family": "vit", "model": "/fixtures/vit/tiny_cls/", "image": img,
              "options": { "topK": 5 } },
        ]}),
        &dir,
    );
    let r = b["results"].as_array().unwrap();
    let web = floats(ok(&r[0], "logits"));
    let want = Weights::open(folder.join("reference.safetensors"))
        .unwrap()
        .get("bus.logits")
        .unwrap();
    let m = Vit::load(gpu(), &folder).unwrap();
    let pv = m
        .preprocess_rgb(&bus)
        .unwrap()
        .reshape(&[1, 3, 48, 48])
        .unwrap();
    let nat = m.forward(&pv).unwrap();
    let nat = nat.logits.unwrap();
    let d_nat = max_diff(&web, nat.as_f32().unwrap());
    let d_pt = max_diff(&web, want.as_f32().unwrap());
    println!(
        "BROWSER vit tiny_cls bus.jpg logits: vs native {d_nat:.2e}, vs transformers {d_pt:.2e}"
    );
    assert!(d_nat <= 1e-4 && d_pt <= 1e-4, "{d_nat} / {d_pt} over 1e-4");
    let top = ok(&r[1], "classify").as_array().unwrap();
    let nat_top = &m.classify_images(std::slice::from_ref(&bus), 5).unwrap()[0];
    assert_eq!(top.len(), 5);
    for (t, n) in top.iter().zip(nat_top) {
        assert_eq!(t["index"].as_u64().unwrap() as usize, n.index);
        assert_eq!(t["label"].as_str().unwrap(), n.label);
        assert!((t["score"].as_f64().unwrap() as f32 - n.score).abs() <= 1e-4);
    }
}

fn detections(v: &Value) -> Vec<Detection> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| Detection {
            class_id: d["class_id"].as_u64().unwrap() as usize,
            label: d["label"].as_str().unwrap().to_string(),
            score: d["score"].as_f64().unwrap() as f32,
            bbox: {
                let b = floats(&d["box"]);
                [b[0], b[1], b[2], b[3]]
            },
            mask: None,
        })
        .collect()
}

#[test]
fn yolo_boxes_match_native() {
    let dir = scratch("yolo");
    let folder = fixtures().join("yolo/yolov8n");
    // bus.jpg as OpenCV decodes it (what ultralytics saw), stored losslessly.
    let bus = wgpu_infer::imageio::load_rgb(&fixtures().join("yolo/bus_decoded.png")).unwrap();
    let img = raw_image(&bus, &dir, "bus.rgba");
    let b = run(
        json!({ "steps": [
            { "op": "detect", "family": "yolo", "model": "/fixtures/yolo/yolov8n/", "image": img },
        ]}),
        &dir,
    );
    let web = detections(ok(&b["results"][0], "detect"));
    let m = Yolo::load(gpu(), &folder).unwrap();
    let nat = m.detect_image(&bus, &DetectOptions::default()).unwrap();
    assert_eq!(web.len(), nat.len(), "detection count");
    let (mut wb, mut ws) = (0.0f32, 0.0f32);
    for (w, n) in web.iter().zip(&nat) {
        assert_eq!(w.class_id, n.class_id);
        assert_eq!(w.label, n.label);
        wb = wb.max(max_diff(&w.bbox, &n.bbox));
        ws = ws.max((w.score - n.score).abs());
    }
    // And against ultralytics' own detections.
    let r = Weights::open(folder.join("reference.safetensors")).unwrap();
    let want = r.get("bus640.boxes").unwrap();
    let want: Vec<&[f32]> = want.as_f32().unwrap().chunks(4).collect();
    let mut wu = 0.0f32;
    for w in &web {
        let best = want
            .iter()
            .map(|b| max_diff(&w.bbox, b))
            .fold(f32::INFINITY, f32::min);
        wu = wu.max(best);
    }
    println!(
        "BROWSER yolov8n bus.jpg: {} boxes; vs native: boxes {wb:.2e} px, scores {ws:.2e}; vs ultralytics boxes {wu:.2e} px ({:.0} ms)",
        web.len(),
        b["results"][0]["ms"].as_f64().unwrap()
    );
    assert!(wb <= 0.1, "boxes {wb} px from native (limit 0.1)");
    assert!(ws <= 1e-4, "scores {ws} from native");
    assert!(wu <= 0.1, "boxes {wu} px from ultralytics (limit 0.1)");
}

#[test]
fn weights_download_once_then_come_from_the_cache() {
    let dir = scratch("cache");
    let steps = json!([
        { "op": "clearCache" },
        { "op": "load", "family": "bert", "model": "/fixtures/bert/tiny_b/" },
        { "op": "reload" },
        { "op": "load", "family": "bert", "model": "/fixtures/bert/tiny_b/" },
        { "op": "load", "family": "bert", "model": "/fixtures/bert/tiny_b/", "load": { "cache": false } },
    ]);
    let b = run(json!({ "steps": steps }), &dir);
    let r = b["results"].as_array().unwrap();
    let first = &r[1]["events"];
    ok(&r[1], "first load");
    ok(&r[3], "load after reload");
    ok(&r[4], "uncached load");
    let weights = first
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["file"] == "model.safetensors")
        .collect::<Vec<_>>();
    let size = std::fs::metadata(fixtures().join("bert/tiny_b/model.safetensors"))
        .unwrap()
        .len() as f64;
    let last = weights.last().expect("progress events for the weights");
    assert_eq!(last["loaded"].as_f64().unwrap(), size);
    assert_eq!(last["total"].as_f64().unwrap(), size);
    assert_eq!(last["cached"], json!(false));
    let again = r[3]["events"].as_array().unwrap();
    assert!(!again.is_empty() && again.iter().all(|e| e["cached"] == json!(true)));
    // Served twice: the first load and the `cache: false` one; never after the reload.
    let served = b["served"]["/fixtures/bert/tiny_b/model.safetensors"].as_u64();
    assert_eq!(
        served,
        Some(2),
        "model.safetensors downloads: {}",
        b["served"]
    );
}

/// The native message of loading `dir` as `what`, with the folder named as the browser names it.
fn native_err(what: &str, dir: &Path, label: &str) -> String {
    let e = match what {
        "bert" => Bert::load(Backend::Cpu, dir).err(),
        "vit" => Vit::load(Backend::Cpu, dir).err(),
        _ => unreachable!(),
    };
    e.expect("native load should fail")
        .to_string()
        .replace(&dir.display().to_string(), label)
}

#[test]
fn bad_folders_reject_with_the_native_messages() {
    let dir = scratch("bad_folders");
    // Truncated weights: a copy of tiny_a with its safetensors cut.
    let trunc = dir.join("truncated");
    common::copy_dir(&fixtures().join("bert/tiny_a"), &trunc);
    let w = std::fs::read(trunc.join("model.safetensors")).unwrap();
    std::fs::write(trunc.join("model.safetensors"), &w[..w.len() / 2]).unwrap();
    // No weights at all.
    let noweights = dir.join("noweights");
    std::fs::create_dir_all(&noweights).unwrap();
    std::fs::copy(
        fixtures().join("bert/tiny_a/config.json"),
        noweights.join("config.json"),
    )
    .unwrap();
    let missing = dir.join("missing");
    std::fs::create_dir_all(&missing).unwrap();
    let b = run(
        json!({ "steps": [
            { "op": "load", "family": "bert", "model": "/scratch/missing/" },
            { "op": "load", "family": "bert", "model": "/scratch/truncated/" },
            { "op": "load", "family": "bert", "model": "/scratch/noweights/" },
            { "op": "load", "family": "bert", "model": "/fixtures/gpt2/tiny_a/" },
            { "op": "load", "family": "vit", "model": "/fixtures/bert/tiny_a/" },
            { "op": "load", "family": "bert", "model": "/fixtures/bert/tiny_a/", "load": { "dtype": "f64" } },
            { "op": "load", "family": "bert", "model": "/fixtures/bert/tiny_a/", "load": { "dtpye": "f16" } },
            { "op": "load", "family": "bert", "model": "/fixtures/gpt2/tiny_a/",
              "files": ["config.json", "model.safetensors"], "load": { "name": "dropped" } },
            // Behind a single-page-app fallback (HTML with 200 for missing files): optional
            // files are absent, a missing config is reported as missing.
            { "op": "load", "family": "bert", "model": "/fixtures/bert/rerank_a/" },
            { "op": "load", "family": "bert", "model": "/fixtures/nothing-here/" },
        ], "spaFallback": "/fixtures/" }),
        &dir,
    );
    let r = b["results"].as_array().unwrap();
    let cases = [
        (
            "404 folder",
            native_err("bert", &missing, "/scratch/missing"),
        ),
        (
            "truncated weights",
            native_err("bert", &trunc, "/scratch/truncated"),
        ),
        (
            "no weights",
            native_err("bert", &noweights, "/scratch/noweights"),
        ),
        (
            "GPT-2 folder as BERT",
            native_err(
                "bert",
                &fixtures().join("gpt2/tiny_a"),
                "/fixtures/gpt2/tiny_a",
            ),
        ),
        (
            "BERT folder as ViT",
            native_err(
                "vit",
                &fixtures().join("bert/tiny_a"),
                "/fixtures/bert/tiny_a",
            ),
        ),
    ];
    for (i, (what, want)) in cases.iter().enumerate() {
        let got = err(&r[i], what);
        println!("BROWSER bad input, {what}: {got}");
        // A missing directory natively is refused before config.json is read; in the browser
        // there is no directory to stat, so the missing config.json is what is reported.
        if *what == "404 folder" {
            assert_eq!(
                got,
                "/scratch/missing/config.json: missing model config (config.json)"
            );
            assert!(want.contains("/scratch/missing"), "{want}");
        } else {
            assert_eq!(&got, want, "{what}");
        }
    }
    let e = err(&r[5], "dtype f64");
    assert!(e.contains("unknown dtype 'f64'"), "{e}");
    let e = err(&r[6], "misspelt option");
    assert!(e.contains("unknown field `dtpye`"), "{e}");
    let e = err(&r[7], "file map of the wrong family");
    assert!(e.starts_with("dropped/config.json:"), "{e}");
    assert_eq!(
        e,
        native_err(
            "bert",
            &fixtures().join("gpt2/tiny_a"),
            "/fixtures/gpt2/tiny_a"
        )
        .replace("/fixtures/gpt2/tiny_a", "dropped")
    );
    let info = ok(&r[8], "a folder behind an HTML fallback");
    assert_eq!(
        info["labels"],
        json!(1),
        "rerank_a loads with its optional files absent"
    );
    let e = err(&r[9], "a missing folder behind an HTML fallback");
    assert_eq!(
        e,
        "/fixtures/nothing-here/config.json: missing model config (config.json)"
    );
}

#[test]
fn bad_calls_reject_with_clear_messages() {
    let dir = scratch("bad_calls");
    let bert = json!({ "family": "bert", "model": "/fixtures/bert/tiny_a/" });
    let vit = json!({ "family": "vit", "model": "/fixtures/vit/tiny_cls/" });
    let step = |base: &Value, method: &str, args: Value| {
        let mut s = base.clone();
        s["op"] = json!("call");
        s["method"] = json!(method);
        s["args"] = args;
        s
    };
    let long = "word ".repeat(400);
    let b = run(
        json!({ "steps": [
            step(&vit, "classify", json!([{ "image": { "value": { "width": 2, "height": 2, "data": [1, 2, 3] } } }])),
            step(&vit, "classify", json!([{ "image": { "value": { "width": 2, "height": 2, "data": [1, 2, 3] }, "clamped": true } }])),
            step(&vit, "classify", json!(["not an image"])),
            step(&vit, "classify", json!([{ "image": { "value": { "width": 0, "height": 2, "data": [] } } }])),
            step(&vit, "classify", json!([{ "image": { "raw": "/scratch/px.rgba", "width": 2, "height": 1 } }, { "topK": 0 }])),
            step(&bert, "embed", json!([42])),
            step(&bert, "embed", json!([[long]])),
            step(&bert, "embed", json!([["a"], { "pooling": "median" }])),
            step(&bert, "rerank", json!(["q", ["a"]])),
            { "op": "generate", "family": "gpt2", "model": "/fixtures/gpt2/tiny_a/", "prompt": "x",
              "options": { "maxNewTokens": -1 } },
            { "op": "generate", "family": "gpt2", "model": "/fixtures/gpt2/tiny_a/", "prompt": "",
              "options": { "maxNewTokens": 2 } },
        ]}),
        &{
            std::fs::write(dir.join("px.rgba"), [0u8; 8]).unwrap();
            dir.clone()
        },
    );
    let r = b["results"].as_array().unwrap();
    let expect = [
        (
            "pixels in a plain array",
            "bad image: data must be a Uint8ClampedArray or Uint8Array",
        ),
        (
            "short pixel data",
            "bad image: data has 3 bytes; 2x2 RGBA needs 16",
        ),
        ("a string as image", "bad image: expected an ImageData"),
        (
            "zero width",
            "bad image: width 0 is not a whole number of pixels",
        ),
        ("top-k 0", "top-k must be at least 1"),
        (
            "texts not strings",
            "Bert.embed: expected an array of strings",
        ),
        ("text too long", "tokens"),
        ("unknown pooling", "unknown pooling 'median'"),
        ("rerank without a head", "is not a cross-encoder"),
        ("negative maxNewTokens", "Gpt2.generate: invalid options"),
        ("empty prompt", "prompt"),
    ];
    for (i, (what, part)) in expect.iter().enumerate() {
        let got = err(&r[i], what);
        println!("BROWSER bad call, {what}: {got}");
        assert!(
            got.contains(part),
            "{what}: '{got}' does not mention '{part}'"
        );
    }
}

#[test]
fn no_webgpu_rejects_device_create() {
    let dir = scratch("no_webgpu");
    let hidden = run(
        json!({ "hideGpu": true, "steps": [{ "op": "device" }] }),
        &dir,
    );
    let e = err(&hidden["results"][0], "Device.create without navigator.gpu");
    println!("BROWSER no navigator.gpu: {e}");
    assert!(
        e.starts_with("no GPU adapter found: navigator.gpu is missing"),
        "{e}"
    );
    let off = run(
        json!({ "webgpu": false, "steps": [{ "op": "device" }] }),
        &dir,
    );
    let r = &off["results"][0];
    // Chromium without --enable-unsafe-webgpu on Linux: no navigator.gpu, or no adapter.
    let e = err(r, "Device.create without WebGPU enabled");
    println!("BROWSER WebGPU disabled: {e}");
    assert!(e.starts_with("no GPU adapter found"), "{e}");
}

/// Is this screenshot pixel the demo's box colour (#ff00ff)?
fn magenta(p: &image::Rgba<u8>) -> bool {
    p[0] > 200 && p[1] < 90 && p[2] > 200
}

#[test]
fn demo_page_draws_the_yolo_boxes() {
    let dir = scratch("demo");
    let shot = dir.join("canvas.png");
    let b = run(
        json!({
            "page": "/index.html?image=/fixtures/yolo/bus_decoded.png",
            "steps": [{ "op": "demo", "fn": "runYolo" }, { "op": "demo", "fn": "runVit" }],
            "screenshot": { "path": shot, "selector": "#canvas" },
        }),
        &dir,
    );
    let dets = detections(ok(&b["results"][0], "demo YOLO"));
    ok(&b["results"][1], "demo ViT");
    // The page's detections are the library's (lossless PNG: the same pixels as native).
    let bus = wgpu_infer::imageio::load_rgb(&fixtures().join("yolo/bus_decoded.png")).unwrap();
    let m = Yolo::load(gpu(), fixtures().join("yolo/yolov8n")).unwrap();
    let nat = m.detect_image(&bus, &DetectOptions::default()).unwrap();
    assert_eq!(dets.len(), nat.len());
    for (w, n) in dets.iter().zip(&nat) {
        assert!(
            max_diff(&w.bbox, &n.bbox) <= 0.1,
            "{:?} vs {:?}",
            w.bbox,
            n.bbox
        );
    }
    // The boxes are in the pixels: sample each box's left, right and bottom edges (the top one
    // carries the label) just inside the 3-px stroke.
    let img = image::open(&shot).unwrap().to_rgba8();
    // Shown at its own size (an element at a fractional offset may gain one row or column).
    let (dw, dh) = (
        img.width().abs_diff(bus.width()),
        img.height().abs_diff(bus.height()),
    );
    assert!(
        dw <= 1 && dh <= 1,
        "canvas screenshot {:?} vs picture {:?}",
        img.dimensions(),
        bus.dimensions()
    );
    let (mut on, mut total) = (0usize, 0usize);
    let mut probe = |x: f32, y: f32| {
        let (x, y) = (x.round() as i64, y.round() as i64);
        if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
            total += 1;
            on += magenta(img.get_pixel(x as u32, y as u32)) as usize;
        }
    };
    for d in &dets {
        let [x1, y1, x2, y2] = d.bbox;
        for k in 1..10 {
            let t = k as f32 / 10.0;
            probe(x1, y1 + t * (y2 - y1));
            probe(x2, y1 + t * (y2 - y1));
            probe(x1 + t * (x2 - x1), y2);
        }
    }
    let frac = on as f32 / total as f32;
    // The picture itself has (almost) no such pixels, so this could fail.
    let before = bus
        .pixels()
        .filter(|p| magenta(&image::Rgba([p[0], p[1], p[2], 255])))
        .count();
    println!(
        "BROWSER demo page: {} boxes drawn; {on} of {total} edge samples in the box colour ({:.1} %); the picture alone has {before} such pixels",
        dets.len(),
        frac * 100.0
    );
    assert!(
        before < 50,
        "the test picture already has {before} box-coloured pixels"
    );
    assert!(
        frac >= 0.9,
        "only {:.1} % of box edges are drawn",
        frac * 100.0
    );
}
