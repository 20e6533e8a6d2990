//! The bad-input catalogue. Every case is checked twice: through the library on the GPU and
//! CPU backends (a typed `Error` whose message says what is wrong and where), and through the
//! CLI with `--backend gpu` and `--backend cpu` (non-zero exit, the message on stderr, no
//! panic, nothing on stdout, no output file). A few inputs are valid on purpose (an extra
//! tensor warns, a 1x1 image classifies); those cases assert the warning or the result.
//! Hub-id resolution from an on-disk cache and `inspect` are covered at the end.
mod common;
use common::{copy_dir, device, png_declaring};
use image::ImageEncoder;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Output;
use wgpu_infer::models::gpt2::{GenerateOptions, Gpt2};
use wgpu_infer::models::sampling::Sampling;
use wgpu_infer::models::vit::Vit;
use wgpu_infer::models::yolo::{DetectOptions, Yolo};
use wgpu_infer::models::Bert;
use wgpu_infer::{Backend, DType, Device, Error, Graph, Result};

// ---------------------------------------------------------------- harness

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

fn backends() -> [Backend; 2] {
    [Backend::Gpu(device()), Backend::Cpu]
}

fn os(s: impl AsRef<OsStr>) -> OsString {
    s.as_ref().to_os_string()
}

/// A fresh scratch folder for one case.
fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wgpu-infer-bad-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A scratch copy of a fixture folder that the case may break.
fn copy_fixture(rel: &str, tag: &str) -> PathBuf {
    let dst = scratch(tag);
    copy_dir(&fixture(rel), &dst);
    for f in ["reference.json", "reference.safetensors"] {
        let _ = std::fs::remove_file(dst.join(f));
    }
    dst
}

/// `f` must fail on both backends with an error of the expected kind whose message contains
/// every needle.
fn lib_fails<T>(
    case: &str,
    kind: fn(&Error) -> bool,
    needles: &[&str],
    f: impl Fn(Backend) -> Result<T>,
) {
    for b in backends() {
        let name = b.name().to_string();
        let e = match f(b) {
            Ok(_) => panic!("[{case}] {name}: succeeded but must fail"),
            Err(e) => e,
        };
        let msg = e.to_string();
        assert!(kind(&e), "[{case}] {name}: unexpected error kind {e:?}");
        for n in needles {
            assert!(msg.contains(n), "[{case}] {name}: '{n}' not in: {msg}");
        }
        eprintln!("[{case}] {name}: {msg}");
    }
}

fn cli(args: &[OsString], envs: &[(&str, &OsStr)]) -> Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-infer"));
    c.args(args).stdin(std::process::Stdio::null());
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// A failed CLI run: non-zero exit, no panic, nothing on stdout, the needles on stderr.
fn assert_failed(case: &str, out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "[{case}] exited 0; stderr: {err}");
    assert!(
        out.status.code().is_some(),
        "[{case}] killed by a signal; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "[{case}] panicked: {err}");
    assert!(
        out.stdout.is_empty(),
        "[{case}] wrote to stdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    for n in needles {
        assert!(err.contains(n), "[{case}] '{n}' not on stderr: {err}");
    }
}

/// Runs `wgpu-infer <sub> --backend {gpu,cpu} <args>`; both must fail with the needles.
fn cli_fails(case: &str, sub: &str, args: &[OsString], needles: &[&str]) {
    for b in ["gpu", "cpu"] {
        let mut all = vec![os(sub), os("--backend"), os(b)];
        all.extend_from_slice(args);
        let out = cli(&all, &[]);
        assert_failed(&format!("{case} cli {b}"), &out, needles);
        assert_eq!(out.status.code(), Some(1), "[{case}] exit code");
    }
}

fn is_weights(e: &Error) -> bool {
    matches!(e, Error::Weights { .. })
}
fn is_config(e: &Error) -> bool {
    matches!(e, Error::Config { .. })
}
fn is_wrong_model(e: &Error) -> bool {
    matches!(e, Error::WrongModel { .. })
}
fn is_arg(e: &Error) -> bool {
    matches!(e, Error::InvalidArgument(_))
}
fn is_image(e: &Error) -> bool {
    matches!(e, Error::Image { .. })
}

// ---------------------------------------------------------------- safetensors surgery

struct Entry {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    data: Vec<u8>,
}

fn header_of(bytes: &[u8]) -> (serde_json::Map<String, serde_json::Value>, usize) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let h: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (h.as_object().unwrap().clone(), 8 + n)
}

fn read_entries(path: &Path) -> Vec<Entry> {
    let bytes = std::fs::read(path).unwrap();
    let (h, start) = header_of(&bytes);
    let mut v: Vec<Entry> = h
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .map(|(k, t)| {
            let off: Vec<usize> = serde_json::from_value(t["data_offsets"].clone()).unwrap();
            Entry {
                name: k.clone(),
                dtype: t["dtype"].as_str().unwrap().to_string(),
                shape: serde_json::from_value(t["shape"].clone()).unwrap(),
                data: bytes[start + off[0]..start + off[1]].to_vec(),
            }
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

fn pack_header(h: &serde_json::Map<String, serde_json::Value>, data: &[u8]) -> Vec<u8> {
    let mut json = serde_json::to_vec(h).unwrap();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(data);
    out
}

fn write_entries(path: &Path, entries: &[Entry]) {
    let mut h = serde_json::Map::new();
    let mut data = Vec::new();
    for e in entries {
        let start = data.len();
        data.extend_from_slice(&e.data);
        h.insert(
            e.name.clone(),
            serde_json::json!({"dtype": e.dtype, "shape": e.shape, "data_offsets": [start, data.len()]}),
        );
    }
    std::fs::write(path, pack_header(&h, &data)).unwrap();
}

/// A copy of the tiny BERT folder whose weights went through `edit`.
fn bert_with(tag: &str, edit: impl FnOnce(&mut Vec<Entry>)) -> PathBuf {
    let d = copy_fixture("bert/tiny_a", tag);
    let w = d.join("model.safetensors");
    let mut e = read_entries(&w);
    edit(&mut e);
    write_entries(&w, &e);
    d
}

fn entry<'a>(e: &'a mut [Entry], name: &str) -> &'a mut Entry {
    e.iter_mut().find(|t| t.name == name).unwrap()
}

/// A copy of the tiny BERT folder with config.json rewritten by `edit`.
fn bert_config(tag: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let d = copy_fixture("bert/tiny_a", tag);
    let p = d.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    edit(&mut cfg);
    std::fs::write(&p, cfg.to_string()).unwrap();
    d
}

/// Both layers for a BERT folder that must not load.
fn bert_load_fails(case: &str, dir: &Path, kind: fn(&Error) -> bool, needles: &[&str]) {
    lib_fails(case, kind, needles, |b| Bert::load(b, dir));
    cli_fails(
        case,
        "embed",
        &[os("--model"), os(dir), os("hello world")],
        needles,
    );
}

// ---------------------------------------------------------------- weights files

#[test]
fn c01_truncated_safetensors() {
    let d = copy_fixture("bert/tiny_a", "trunc");
    let w = d.join("model.safetensors");
    let b = std::fs::read(&w).unwrap();
    std::fs::write(&w, &b[..b.len() - 1000]).unwrap();
    bert_load_fails(
        "truncated",
        &d,
        is_weights,
        &["model.safetensors", "truncated"],
    );
}

#[test]
fn c02_header_length_larger_than_file() {
    let d = copy_fixture("bert/tiny_a", "hdrlen");
    let w = d.join("model.safetensors");
    let mut b = std::fs::read(&w).unwrap();
    let n = b.len() as u64 + 10;
    b[..8].copy_from_slice(&n.to_le_bytes());
    std::fs::write(&w, &b).unwrap();
    bert_load_fails(
        "header length",
        &d,
        is_weights,
        &["model.safetensors", "header length"],
    );
}

#[test]
fn c03_overlapping_offsets() {
    let d = copy_fixture("bert/tiny_a", "overlap");
    let w = d.join("model.safetensors");
    let b = std::fs::read(&w).unwrap();
    let (mut h, start) = header_of(&b);
    // Two same-sized tensors pointing at the same bytes.
    let src = h["embeddings.LayerNorm.bias"]["data_offsets"].clone();
    h["embeddings.LayerNorm.weight"]["data_offsets"] = src;
    std::fs::write(&w, pack_header(&h, &b[start..])).unwrap();
    bert_load_fails(
        "overlapping offsets",
        &d,
        is_weights,
        &["model.safetensors", "overlapping"],
    );
}

#[test]
fn c04_out_of_bounds_offsets() {
    let d = copy_fixture("bert/tiny_a", "oob");
    let w = d.join("model.safetensors");
    let b = std::fs::read(&w).unwrap();
    let (mut h, start) = header_of(&b);
    let data_len = b.len() - start;
    // The last tensor (by offset) claims 4 KiB past the end of the file.
    let (last, _) = h
        .iter()
        .filter(|(k, _)| k.as_str() != "__metadata__")
        .max_by_key(|(_, t)| t["data_offsets"][1].as_u64().unwrap())
        .map(|(k, t)| (k.clone(), t.clone()))
        .unwrap();
    let s = h[&last]["data_offsets"][0].as_u64().unwrap();
    h[&last]["data_offsets"] = serde_json::json!([s, data_len + 4096]);
    std::fs::write(&w, pack_header(&h, &b[start..])).unwrap();
    bert_load_fails(
        "out-of-bounds offsets",
        &d,
        is_weights,
        &["model.safetensors"],
    );
}

#[test]
fn c05_not_a_safetensors_file() {
    let d = copy_fixture("bert/tiny_a", "notst");
    std::fs::write(
        d.join("model.safetensors"),
        "{\"this is\": \"json, not weights\"}",
    )
    .unwrap();
    bert_load_fails(
        "not safetensors",
        &d,
        is_weights,
        &["model.safetensors", "not a valid safetensors file"],
    );
}

#[test]
fn c06_wrong_dtype() {
    let d = bert_with("dtype", |e| {
        let t = entry(e, "encoder.layer.1.output.dense.bias");
        t.dtype = "I64".into();
        t.data = t.data.iter().flat_map(|&b| [b, 0]).collect(); // 8 bytes per element
    });
    bert_load_fails(
        "wrong dtype",
        &d,
        is_weights,
        &[
            "encoder.layer.1.output.dense.bias",
            "I64",
            "not a float type",
        ],
    );
}

#[test]
fn c07_wrong_shape_for_a_named_tensor() {
    let d = bert_with("shape", |e| {
        entry(e, "encoder.layer.0.attention.self.query.weight").shape = vec![48, 192];
    });
    bert_load_fails(
        "wrong shape",
        &d,
        is_weights,
        &[
            "encoder.layer.0.attention.self.query.weight",
            "[48, 192]",
            "[96, 96]",
        ],
    );
}

#[test]
fn c08_missing_tensor() {
    let d = bert_with("missing", |e| {
        e.retain(|t| t.name != "encoder.layer.2.output.dense.bias")
    });
    bert_load_fails(
        "missing tensor",
        &d,
        is_weights,
        &["missing tensor", "encoder.layer.2.output.dense.bias"],
    );
}

#[test]
fn c09_unexpected_extra_tensor_warns_and_runs() {
    let d = bert_with("extra", |e| {
        e.push(Entry {
            name: "classifier.weight".into(),
            dtype: "F32".into(),
            shape: vec![2, 96],
            data: vec![0; 2 * 96 * 4],
        })
    });
    for b in backends() {
        let m = Bert::load(b, &d).unwrap();
        assert!(
            m.warnings().iter().any(|w| w.contains("classifier.weight")),
            "{:?}",
            m.warnings()
        );
        assert_eq!(m.embed(&["still fine"]).unwrap()[0].len(), 96);
    }
    for b in ["gpu", "cpu"] {
        let out = cli(
            &[
                os("embed"),
                os("--backend"),
                os(b),
                os("--model"),
                os(&d),
                os("still fine"),
            ],
            &[],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(
            err.contains("warning:") && err.contains("classifier.weight"),
            "{err}"
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["dim"], 96);
    }
}

#[test]
fn c10_non_finite_weight() {
    let d = bert_with("nan", |e| {
        let t = entry(e, "encoder.layer.0.output.dense.weight");
        t.data[40..44].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    bert_load_fails(
        "non-finite weight",
        &d,
        is_weights,
        &[
            "encoder.layer.0.output.dense.weight",
            "element 10 is not finite",
        ],
    );
}

#[test]
fn c11_missing_weights_file() {
    let d = copy_fixture("bert/tiny_a", "noweights");
    std::fs::remove_file(d.join("model.safetensors")).unwrap();
    bert_load_fails("missing weights", &d, |_| true, &["model.safetensors"]);
}

// ---------------------------------------------------------------- config.json

#[test]
fn c12_config_not_json() {
    let d = copy_fixture("bert/tiny_a", "notjson");
    std::fs::write(d.join("config.json"), "hidden_size = 96").unwrap();
    bert_load_fails(
        "config not JSON",
        &d,
        is_config,
        &["config.json", "invalid JSON"],
    );
}

#[test]
fn c13_config_lacks_a_field() {
    let d = bert_config("nofield", |c| {
        c.as_object_mut().unwrap().remove("num_attention_heads");
    });
    bert_load_fails(
        "config lacks a field",
        &d,
        is_config,
        &["config.json", "num_attention_heads"],
    );
}

#[test]
fn c14_config_disagrees_with_the_weights() {
    let d = bert_config("disagree", |c| c["intermediate_size"] = 128.into());
    bert_load_fails(
        "config disagrees with weights",
        &d,
        is_weights,
        &[
            "encoder.layer.0.intermediate.dense.weight",
            "[200, 96]",
            "[128, 96]",
        ],
    );
}

#[test]
fn c15_config_inconsistent_in_itself() {
    let d = bert_config("heads", |c| c["num_attention_heads"] = 7.into());
    bert_load_fails(
        "heads do not divide hidden",
        &d,
        is_config,
        &["config.json", "num_attention_heads", "7"],
    );
}

#[test]
fn c16_folder_of_another_model_family() {
    let d = copy_fixture("gpt2/tiny_a", "family");
    // The library names the family; the CLI also says which command runs it.
    let needles = ["config.json", "model_type is 'gpt2'"];
    lib_fails("wrong family", is_wrong_model, &needles, |b| {
        Bert::load(b, &d)
    });
    cli_fails(
        "wrong family",
        "embed",
        &[os("--model"), os(&d), os("hello world")],
        &["config.json", "model_type is 'gpt2'", "wgpu-infer generate"],
    );
}

#[test]
fn c17_missing_tokenizer() {
    let d = copy_fixture("bert/tiny_a", "notok");
    std::fs::remove_file(d.join("tokenizer.json")).unwrap();
    bert_load_fails(
        "missing tokenizer",
        &d,
        |_| true,
        &["tokenizer.json", "missing"],
    );
}

#[test]
fn c18_directory_that_does_not_exist() {
    let d = std::env::temp_dir().join("wgpu-infer-no-such-model-dir");
    bert_load_fails("no such directory", &d, is_config, &["does not exist"]);
    lib_fails(
        "no such directory (vit)",
        is_config,
        &["does not exist"],
        |b| Vit::load(b, &d),
    );
    lib_fails(
        "no such directory (gpt2)",
        is_config,
        &["does not exist"],
        |b| Gpt2::load(b, &d),
    );
    lib_fails(
        "no such directory (yolo)",
        is_config,
        &["does not exist"],
        |b| Yolo::load(b, &d),
    );
}

// ---------------------------------------------------------------- texts and generation

#[test]
fn c19_empty_text() {
    let d = fixture("bert/tiny_a");
    lib_fails("empty text", is_arg, &["text 1 is empty"], |b| {
        Bert::load(b, &d)?.embed(&["fine", "   "])
    });
    lib_fails("no texts", is_arg, &["no texts"], |b| {
        Bert::load(b, &d)?.embed(&[])
    });
    cli_fails(
        "empty text",
        "embed",
        &[os("--model"), os(&d), os("fine"), os("  ")],
        &["text 1 is empty"],
    );
    // No arguments and an empty stdin.
    cli_fails("no texts", "embed", &[os("--model"), os(&d)], &["no texts"]);
}

#[test]
fn c20_text_over_the_maximum_length() {
    let d = fixture("bert/tiny_a");
    let long = "word ".repeat(200);
    // sentence_bert_config.json's max_seq_length (48) caps max_position_embeddings (64).
    assert_eq!(Bert::load(Backend::Cpu, &d).unwrap().max_len(), 48);
    lib_fails(
        "text too long",
        is_arg,
        &["text 0", "maximum of 48 tokens"],
        |b| Bert::load(b, &d)?.check_lengths(&[&long, "short"]),
    );
    cli_fails(
        "text too long",
        "embed",
        &[os("--model"), os(&d), os(&long)],
        &["maximum of 48 tokens", "--truncate"],
    );
    // Truncation on request, as sentence-transformers does.
    let out = cli(
        &[
            os("embed"),
            os("--backend"),
            os("cpu"),
            os("--truncate"),
            os("--model"),
            os(&d),
            os(&long),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn c21_prompt_longer_than_n_positions() {
    let d = fixture("gpt2/tiny_b");
    let prompt = "the ".repeat(300);
    lib_fails("prompt too long", is_arg, &["n_positions"], |b| {
        Gpt2::load(b, &d)?.generate(&prompt, &GenerateOptions::default(), |_| true)
    });
    cli_fails(
        "prompt too long",
        "generate",
        &[os("--model"), os(&d), os("--prompt"), os(&prompt)],
        &["n_positions"],
    );
}

#[test]
fn c22_top_p_outside_0_1() {
    let d = fixture("gpt2/tiny_b");
    for p in [0.0f32, -0.5, 1.5, f32::NAN] {
        let opts = GenerateOptions {
            sampling: Sampling {
                temperature: 1.0,
                top_p: Some(p),
                ..Default::default()
            },
            ..Default::default()
        };
        lib_fails("top-p", is_arg, &["top-p must be in (0, 1]"], |b| {
            Gpt2::load(b, &d)?.generate("hello", &opts, |_| true)
        });
    }
    for p in ["0", "1.5"] {
        cli_fails(
            "top-p",
            "generate",
            &[
                os("--model"),
                os(&d),
                os("--prompt"),
                os("hello"),
                os("--temperature"),
                os("1"),
                os("--top-p"),
                os(p),
            ],
            &["top-p must be in (0, 1]"],
        );
    }
}

#[test]
fn c23_negative_temperature_and_empty_prompt() {
    let d = fixture("gpt2/tiny_b");
    let opts = GenerateOptions {
        sampling: Sampling {
            temperature: -1.0,
            ..Default::default()
        },
        ..Default::default()
    };
    lib_fails("temperature", is_arg, &["temperature"], |b| {
        Gpt2::load(b, &d)?.generate("hello", &opts, |_| true)
    });
    lib_fails("empty prompt", is_arg, &["empty"], |b| {
        Gpt2::load(b, &d)?.generate("", &GenerateOptions::default(), |_| true)
    });
    cli_fails(
        "empty prompt",
        "generate",
        &[os("--model"), os(&d), os("--prompt"), os("")],
        &["empty"],
    );
}

// ---------------------------------------------------------------- images

/// A small JPEG made here (no asset download needed).
fn jpeg_bytes() -> Vec<u8> {
    let img = image::RgbImage::from_fn(96, 64, |x, y| image::Rgb([x as u8 * 2, y as u8 * 3, 128]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(img.as_raw(), 96, 64, image::ExtendedColorType::Rgb8)
        .unwrap();
    out
}

/// An image that must be refused by `classify` (ViT) and `detect` (YOLO, with `--out`: the
/// output file must not appear).
fn image_fails(case: &str, img: &Path, kind: fn(&Error) -> bool, needles: &[&str]) {
    let vit = fixture("vit/tiny_cls");
    let yolo = fixture("yolo/yolov8n");
    lib_fails(case, kind, needles, |b| {
        Vit::load(b, &vit)?.classify(&[img], 3)
    });
    lib_fails(case, kind, needles, |b| {
        Yolo::load(b, &yolo)?.detect(img, &DetectOptions::default())
    });
    cli_fails(
        case,
        "classify",
        &[os("--model"), os(&vit), os(img)],
        needles,
    );
    let out = img.with_file_name("annotated.png");
    cli_fails(
        case,
        "detect",
        &[os("--model"), os(&yolo), os("--out"), os(&out), os(img)],
        needles,
    );
    assert!(!out.exists(), "[{case}] {} was written", out.display());
    let partial = img.with_file_name(".annotated.png.partial");
    assert!(!partial.exists(), "[{case}] partial file left behind");
}

#[test]
fn c24_non_image_file() {
    let p = scratch("notimg").join("notes.jpg");
    std::fs::write(&p, "these are notes, not pixels").unwrap();
    image_fails(
        "non-image file",
        &p,
        is_image,
        &["notes.jpg", "not a recognised image format"],
    );
}

#[test]
fn c25_truncated_jpeg() {
    let p = scratch("truncjpg").join("cut.jpg");
    let j = jpeg_bytes();
    std::fs::write(&p, &j[..j.len() / 3]).unwrap();
    image_fails(
        "truncated JPEG",
        &p,
        is_image,
        &["cut.jpg", "cannot decode"],
    );
}

#[test]
fn c26_image_declaring_50000_by_50000_pixels() {
    let p = scratch("huge").join("huge.png");
    std::fs::write(&p, png_declaring(50_000, 50_000)).unwrap();
    image_fails(
        "50000x50000 image",
        &p,
        is_image,
        &["huge.png", "too large"],
    );
}

#[test]
fn c27_missing_image_file() {
    let p = scratch("noimg").join("absent.png");
    image_fails(
        "missing image",
        &p,
        |e| matches!(e, Error::Io { .. }),
        &["absent.png", "No such file"],
    );
}

#[test]
fn c28_one_by_one_image_is_valid() {
    // Image processors upscale any size; a 1x1 image gives a well-defined (if meaningless)
    // answer, never garbage: finite, normalised probabilities on both backends and the CLI.
    let p = scratch("onepx").join("one.png");
    image::RgbImage::from_pixel(1, 1, image::Rgb([200, 30, 60]))
        .save(&p)
        .unwrap();
    let mut first: Option<Vec<f32>> = None;
    for b in backends() {
        let top = Vit::load(b, fixture("vit/tiny_cls"))
            .unwrap()
            .classify(&[&p], 3)
            .unwrap();
        let probs: Vec<f32> = top[0].iter().map(|c| c.score).collect();
        assert!(probs.iter().all(|s| s.is_finite() && *s > 0.0 && *s <= 1.0));
        assert!(probs.windows(2).all(|w| w[0] >= w[1]));
        if let Some(f) = &first {
            for (a, b) in f.iter().zip(&probs) {
                assert!((a - b).abs() < 1e-4, "{f:?} vs {probs:?}");
            }
        }
        first = Some(probs);
        let dets = Yolo::load(Backend::Cpu, fixture("yolo/yolov8n"))
            .unwrap()
            .detect(&p, &DetectOptions::default())
            .unwrap();
        assert!(dets.iter().all(|d| d.score.is_finite()));
    }
    let out = cli(
        &[
            os("classify"),
            os("--backend"),
            os("cpu"),
            os("--model"),
            os(fixture("vit/tiny_cls")),
            os(&p),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
}

#[test]
fn c29_detect_options_out_of_range() {
    let yolo = fixture("yolo/yolov8n");
    let img = fixture("vit/bus_crop.png");
    for opts in [
        DetectOptions {
            conf: 1.5,
            ..Default::default()
        },
        DetectOptions {
            imgsz: 100,
            ..Default::default()
        },
    ] {
        lib_fails("detect options", is_arg, &["must be"], |b| {
            Yolo::load(b, &yolo)?.detect(&img, &opts)
        });
    }
    cli_fails(
        "detect conf",
        "detect",
        &[os("--model"), os(&yolo), os("--conf"), os("2"), os(&img)],
        &["conf and iou must be in [0, 1]"],
    );
    let out = scratch("badout").join("boxes.xyz");
    cli_fails(
        "detect output format",
        "detect",
        &[os("--model"), os(&yolo), os("--out"), os(&out), os(&img)],
        &["boxes.xyz", "unsupported output format"],
    );
    assert!(!out.exists());
}

// ---------------------------------------------------------------- adapter and limits

#[test]
fn c30_no_adapter() {
    let e = match Device::with_adapter(Some("no-such-adapter-anywhere")) {
        Ok(_) => panic!("an adapter matched a nonsense name"),
        Err(e) => e,
    };
    assert!(matches!(e, Error::NoAdapter { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("no-such-adapter-anywhere") && msg.contains("mesa-vulkan-drivers"),
        "{msg}"
    );
    let out = cli(
        &[
            os("embed"),
            os("--model"),
            os(fixture("bert/tiny_a")),
            os("hello"),
        ],
        &[("WGPU_INFER_ADAPTER", OsStr::new("no-such-adapter-anywhere"))],
    );
    assert_failed(
        "no adapter cli",
        &out,
        &[
            "no GPU adapter",
            "mesa-vulkan-drivers",
            "WGPU_INFER_ADAPTER",
        ],
    );
}

#[test]
fn c31_tensors_beyond_the_binding_limit() {
    // A weight larger than one storage binding is split across bindings, not refused: a BERT
    // whose word-embedding table is 1000 rows past the limit runs on the GPU and matches the
    // CPU, including for ids in the rows past the limit.
    let dev = device();
    let rows = (dev.max_binding() / (96 * 4)) as usize + 1000;
    let d = bert_config("huge-vocab", |c| c["vocab_size"] = rows.into());
    let w = d.join("model.safetensors");
    let mut e = read_entries(&w);
    let t = entry(&mut e, "embeddings.word_embeddings.weight");
    let row_bytes = 96 * 4;
    let orig = t.data.clone();
    t.shape = vec![rows, 96];
    t.data = (0..rows)
        .flat_map(|r| {
            let o = (r * 7) % 185 * row_bytes;
            orig[o..o + row_bytes].to_vec()
        })
        .collect();
    write_entries(&w, &e);
    drop(e);
    let gpu = Bert::load(Backend::Gpu(dev.clone()), &d).unwrap();
    let cpu = Bert::load(Backend::Cpu, &d).unwrap();
    let mut inp = cpu.tokenize(&["hello world"]).unwrap();
    let n = inp.input_ids.len();
    inp.input_ids[n - 2] = (rows - 3) as u32;
    inp.input_ids[1] = (rows - 999) as u32;
    let g = gpu.forward(&inp, false).unwrap().last_hidden_state;
    let c = cpu.forward(&inp, false).unwrap().last_hidden_state;
    let worst = g
        .to_f32_vec()
        .iter()
        .zip(c.to_f32_vec())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "GPU vs CPU past the binding limit: {worst}");
    drop((gpu, cpu));
    let _ = std::fs::remove_dir_all(&d);

    // Values no buffer can hold are refused with a limit error before anything is allocated.
    for (n, limit) in [
        (
            dev.max_binding() / 4 + 1024,
            "max_storage_buffer_binding_size",
        ),
        (dev.limits().max_buffer_size / 4 + 1024, "max_buffer_size"),
    ] {
        let mut g = Graph::new();
        let x = g.input("big", &[n as usize], DType::F32).unwrap();
        let y = g.gelu(x).unwrap();
        g.output("y", y);
        let err = Backend::Gpu(dev.clone())
            .compile(std::sync::Arc::new(g), &[])
            .err()
            .expect("must fail");
        assert!(matches!(err, Error::Limit { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(limit) && msg.contains("at most"), "{msg}");
        eprintln!("[beyond {limit}] {msg}");
    }
}

#[test]
fn c32_invalid_cli_values() {
    let d = fixture("bert/tiny_a");
    let out = cli(
        &[
            os("embed"),
            os("--dtype"),
            os("f8"),
            os("--model"),
            os(&d),
            os("x"),
        ],
        &[],
    );
    assert_failed("--dtype f8", &out, &["f8", "f16"]);
    assert_eq!(out.status.code(), Some(2));
    let out = cli(
        &[
            os("embed"),
            os("--pooling"),
            os("median"),
            os("--backend"),
            os("cpu"),
            os("--model"),
            os(&d),
            os("x"),
        ],
        &[],
    );
    assert_failed("--pooling median", &out, &["median"]);
}

// ---------------------------------------------------------------- hub ids and inspect

/// An HF_HOME whose hub cache holds `org/name` as huggingface_hub lays it out.
fn hub_home(tag: &str, spec: &str, from: &Path) -> PathBuf {
    let home = scratch(tag);
    let repo = home
        .join("hub")
        .join(format!("models--{}", spec.replace('/', "--")));
    let hash = "0123456789abcdef0123456789abcdef01234567";
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), hash).unwrap();
    copy_dir(from, &repo.join("snapshots").join(hash));
    home
}

fn hub_cli(args: &[OsString], home: &Path) -> Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-infer"));
    c.args(args)
        .env("HF_HOME", home)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_HUB_CACHE");
    c.output().unwrap()
}

#[test]
fn c33_hub_id_from_an_offline_cache() {
    let spec = "wgpu-infer-test/tiny-bert";
    let home = hub_home("hub", spec, &fixture("bert/tiny_a"));
    let args = |model: OsString| {
        vec![
            os("embed"),
            os("--backend"),
            os("cpu"),
            os("--quiet"),
            os("--model"),
            model,
            os("hello hub"),
        ]
    };
    let out = hub_cli(&args(os(spec)), &home);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "--quiet: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let local = hub_cli(&args(os(fixture("bert/tiny_a"))), &home);
    assert!(local.status.success());
    let hub: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let local: serde_json::Value = serde_json::from_slice(&local.stdout).unwrap();
    assert_eq!(hub["model"], spec, "a hub model is named by its id");
    assert_eq!(
        hub["embeddings"], local["embeddings"],
        "hub copy and folder differ"
    );

    // Neither a folder nor in the cache, and offline: says exactly what is missing.
    let empty = scratch("hub-empty");
    let out = hub_cli(&args(os("wgpu-infer-test/absent-model")), &empty);
    assert_failed(
        "hub id not cached",
        &out,
        &[
            "wgpu-infer-test/absent-model",
            "models--wgpu-infer-test--absent-model",
            "lacks config.json, model.safetensors",
            "HF_HUB_OFFLINE",
        ],
    );
    // A cached repo missing one needed file names that file.
    let partial = hub_home("hub-partial", spec, &fixture("bert/tiny_a"));
    let snap = partial.join(format!("hub/models--{}/snapshots", spec.replace('/', "--")));
    let snap = std::fs::read_dir(&snap)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(snap.join("tokenizer.json")).unwrap();
    let out = hub_cli(&args(os(spec)), &partial);
    assert_failed("hub cache partial", &out, &["lacks tokenizer.json"]);
    // Not a folder and not an org/name id.
    let out = hub_cli(&args(os("no-such-folder")), &empty);
    assert_failed(
        "neither folder nor id",
        &out,
        &["does not exist", "org/name"],
    );
}

#[test]
fn c34_inspect_lists_tensors_and_refuses_bad_files() {
    let d = fixture("bert/tiny_a");
    let out = cli(&[os("inspect"), os(&d)], &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("model type: bert"), "{text}");
    assert!(text.contains("embeddings.word_embeddings.weight"), "{text}");
    let out = cli(
        &[os("inspect"), os("--json"), os(d.join("model.safetensors"))],
        &[],
    );
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entries = read_entries(&d.join("model.safetensors"));
    assert_eq!(v["tensors"], entries.len());
    let bytes: usize = entries.iter().map(|e| e.data.len()).sum();
    assert_eq!(v["total_bytes"], bytes);
    assert_eq!(v["model_type"], "bert"); // from the tensor names alone
    assert_eq!(v["detected_from"], "tensor names");
    let row = v["tensor_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "encoder.layer.0.intermediate.dense.weight")
        .unwrap();
    assert_eq!(row["shape"], serde_json::json!([200, 96]));
    assert_eq!(row["dtype"], "F32");

    let bad = copy_fixture("bert/tiny_a", "inspect-trunc");
    let w = bad.join("model.safetensors");
    let b = std::fs::read(&w).unwrap();
    std::fs::write(&w, &b[..b.len() / 2]).unwrap();
    let out = cli(&[os("inspect"), os(&w)], &[]);
    assert_failed(
        "inspect truncated",
        &out,
        &["model.safetensors", "truncated"],
    );
}

#[test]
fn c35_weight_out_of_f16_range() {
    // Found by cargo-fuzz (safetensors_weights): 1e6 stored as f32 became inf when loaded as
    // f16. Now a typed error naming the tensor and element.
    let crash: &[u8] =
        b"8\0\0\0\0\0\0\0{\"big\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}\0$tI";
    let w = wgpu_infer::weights::Weights::from_bytes("crash.safetensors", crash.to_vec()).unwrap();
    assert_eq!(w.get("big").unwrap().to_f32_vec(), vec![1e6]);
    let e = w.get_as("big", DType::F16).unwrap_err();
    assert!(is_weights(&e), "{e:?}");
    assert!(e.to_string().contains("does not fit in f16"), "{e}");

    let d = bert_with("f16range", |e| {
        let t = entry(e, "encoder.layer.1.attention.self.key.weight");
        t.data[8..12].copy_from_slice(&1e6f32.to_le_bytes());
    });
    let f16 = wgpu_infer::LoadOptions::with_dtype(DType::F16);
    // K is fused into the [3H, H] QKV weight: row 0 of key is row H of qkv.
    lib_fails(
        "f16 overflow",
        is_weights,
        &[
            "model.safetensors",
            "layer.1.qkv.weight",
            "element 9218",
            "does not fit in f16",
        ],
        |b| Bert::load_with(b, &d, &f16),
    );
    cli_fails(
        "f16 overflow",
        "embed",
        &[os("--dtype"), os("f16"), os("--model"), os(&d), os("hi")],
        &["does not fit in f16"],
    );
    // The same folder loads in f32.
    assert!(Bert::load(Backend::Cpu, &d).is_ok());
}
