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
    let errors = err.lines().filter(|l| l.starts_with("error:")).count();
    assert_eq!(errors, 1, "[{case}] expected one 'error:' line: {err}");
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

/// A tensor nothing reads is a warning, not an error (`unknown_head.weight`); a
/// `classifier.weight` is read as a sequence-classification head, and a half one (no bias) is an
/// error naming the missing tensor.
#[test]
fn c09_unexpected_extra_tensor_warns_and_runs() {
    let half = bert_with("half_head", |e| {
        e.push(Entry {
            name: "classifier.weight".into(),
            dtype: "F32".into(),
            shape: vec![2, 96],
            data: vec![0; 2 * 96 * 4],
        })
    });
    for b in backends() {
        let e = Bert::load(b, &half)
            .err()
            .expect("a head without its bias fails")
            .to_string();
        assert!(e.contains("classifier.bias"), "{e}");
    }
    let d = bert_with("extra", |e| {
        e.push(Entry {
            name: "unknown_head.weight".into(),
            dtype: "F32".into(),
            shape: vec![2, 96],
            data: vec![0; 2 * 96 * 4],
        })
    });
    for b in backends() {
        let m = Bert::load(b, &d).unwrap();
        assert!(
            m.warnings()
                .iter()
                .any(|w| w.contains("unknown_head.weight")),
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
            err.contains("warning:") && err.contains("unknown_head.weight"),
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
    assert_no_partial_files(case, out.parent().unwrap());
}

/// No temporary output file is left in `dir`.
fn assert_no_partial_files(case: &str, dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        assert!(
            !name.ends_with(".partial"),
            "[{case}] temporary file {name} left in {}",
            dir.display()
        );
    }
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

// ---------------------------------------------------------------- hardening (issue 13)

/// Runs `f` on its own thread; a hang (a deadlock, a read that blocks) fails the case after
/// `secs` seconds instead of stalling the suite.
fn within<T: Send + 'static>(case: &str, secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("[{case}] still running after {secs} s: it hangs")
        }
        Err(_) => panic!("[{case}] the case panicked (see above)"),
    }
}

/// Runs the CLI with stdin from `stdin`, stdout and stderr to files, polling the child's peak
/// resident memory (VmHWM) while it runs: (output, peak RSS in bytes).
fn cli_peak_rss(args: &[OsString], stdin: &Path, envs: &[(&str, &OsStr)]) -> (Output, u64) {
    let dir = stdin.parent().unwrap();
    let (o, e) = (dir.join("stdout.txt"), dir.join("stderr.txt"));
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-infer"));
    c.args(args)
        .stdin(std::fs::File::open(stdin).unwrap())
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap());
    for (k, v) in envs {
        c.env(k, v);
    }
    let mut child = c.spawn().unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            for l in text.lines().filter(|l| l.starts_with("VmHWM:")) {
                let kib: u64 = l.split_whitespace().nth(1).unwrap().parse().unwrap();
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let out = Output {
        status,
        stdout: std::fs::read(&o).unwrap(),
        stderr: std::fs::read(&e).unwrap(),
    };
    (out, peak_kib * 1024)
}

fn is_limit(e: &Error) -> bool {
    matches!(e, Error::Limit { .. })
}
fn is_non_finite(e: &Error) -> bool {
    matches!(e, Error::NonFinite { .. })
}
fn is_io(e: &Error) -> bool {
    matches!(e, Error::Io { .. })
}

/// A copy of fixture `rel` whose weights went through `edit`.
fn weights_with(rel: &str, tag: &str, edit: impl FnOnce(&mut Vec<Entry>)) -> PathBuf {
    let d = copy_fixture(rel, tag);
    let w = d.join("model.safetensors");
    let mut e = read_entries(&w);
    edit(&mut e);
    write_entries(&w, &e);
    d
}

/// Rewrites the JSON file `name` of folder `d` through `edit`.
fn edit_json(d: &Path, name: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let p = d.join(name);
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&p, v.to_string()).unwrap();
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn cli_ok(case: &str, args: &[OsString]) -> Output {
    let out = cli(args, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "[{case}] failed: {err}");
    assert!(
        !err.contains("error:"),
        "[{case}] printed an error line: {err}"
    );
    out
}

/// Row 1: sizes in config.json far beyond the weights fail on the first tensor's shape, before
/// any buffer of those sizes is reserved (this used to abort the process).
#[test]
fn c36_config_sizes_far_beyond_the_weights() {
    for h in [65536usize, 1_048_576] {
        let d = bert_config(&format!("hugeh{h}"), |c| {
            c["hidden_size"] = h.into();
            c["num_attention_heads"] = 1.into();
        });
        bert_load_fails(
            &format!("bert hidden_size {h}"),
            &d,
            is_weights,
            &["model.safetensors", "but the config implies"],
        );
        let v = copy_fixture("vit/tiny_cls", &format!("vit-hugeh{h}"));
        edit_json(&v, "config.json", |c| {
            c["hidden_size"] = h.into();
            c["num_attention_heads"] = 1.into();
        });
        lib_fails(
            "vit hidden_size",
            is_weights,
            &["but the config implies"],
            |b| Vit::load(b, &v),
        );
        let img = fixture("vit/bus_crop.png");
        cli_fails(
            "vit hidden_size",
            "classify",
            &[os("--model"), os(&v), os(&img)],
            &["but the config implies"],
        );
        let g = copy_fixture("gpt2/tiny_b", &format!("gpt-hugeh{h}"));
        edit_json(&g, "config.json", |c| {
            c["n_embd"] = h.into();
            c["n_head"] = 1.into();
        });
        // n_inner defaults to 4·n_embd, over the supported size: refused from the config.
        lib_fails(
            "gpt2 n_embd",
            |e| is_weights(e) || is_config(e),
            &[],
            |b| Gpt2::load(b, &g),
        );
    }
}

/// Row 2: a YOLO conv weight stored with the wrong rank is a typed error (it used to panic).
#[test]
fn c37_yolo_conv_weight_of_the_wrong_rank() {
    let img = fixture("vit/bus_crop.png");
    for (tag, rank) in [("2d", 2usize), ("1d", 1)] {
        let d = weights_with("yolo/yolov8n", &format!("yolo-rank{tag}"), |e| {
            let t = entry(e, "model.22.cv2.0.2.weight");
            let n: usize = t.shape.iter().product();
            t.shape = if rank == 2 {
                vec![t.shape[0], n / t.shape[0]]
            } else {
                vec![n]
            };
        });
        lib_fails(
            "yolo conv rank",
            is_weights,
            &["model.22.cv2.0.2.weight", "must be 4-D"],
            |b| Yolo::load(b, &d),
        );
        cli_fails(
            "yolo conv rank",
            "detect",
            &[os("--model"), os(&d), os(&img)],
            &["must be 4-D"],
        );
    }
}

/// Row 3: a panic inside a caller's token callback unwinds through the library without
/// poisoning anything: the same model generates the same tokens afterwards.
#[test]
fn c38_a_panicking_callback_leaves_the_model_usable() {
    let d = fixture("gpt2/tiny_b");
    let opts = GenerateOptions {
        max_new_tokens: 6,
        stop_at_eos: false,
        ..Default::default()
    };
    for b in backends() {
        let m = Gpt2::load(b, &d).unwrap();
        let want = m.generate_ids(&[5, 6, 7], &opts, |_| true).unwrap().tokens;
        for _ in 0..2 {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                m.generate_ids(&[5, 6, 7], &opts, |e| {
                    if e.index == 2 {
                        panic!("a caller's callback panics");
                    }
                    true
                })
            }));
            assert!(r.is_err(), "the callback's panic must reach the caller");
        }
        let again = m.generate_ids(&[5, 6, 7], &opts, |_| true).unwrap().tokens;
        assert_eq!(
            again,
            want,
            "{}: the model changed after a panic",
            m.backend().name()
        );
        assert!(m.forward(&[1, 2, 3], 1, 3, None, false).is_ok());
    }
}

/// Row 4: a token count that would overflow the length check is refused.
#[test]
fn c39_max_new_tokens_that_would_overflow() {
    let d = fixture("gpt2/tiny_b");
    let opts = GenerateOptions {
        max_new_tokens: usize::MAX,
        ..Default::default()
    };
    lib_fails("max_new_tokens overflow", is_arg, &["n_positions"], |b| {
        Gpt2::load(b, &d)?.generate("hello", &opts, |_| true)
    });
    cli_fails(
        "max-new-tokens overflow",
        "generate",
        &[
            os("--model"),
            os(&d),
            os("--prompt"),
            os("hello"),
            os("--max-new-tokens"),
            os("18446744073709551615"),
        ],
        &["n_positions"],
    );
}

/// Row 5: `detect --out` writes through a fresh O_EXCL temporary file renamed into place: a
/// planted symlink is never followed, concurrent runs never collide, nothing is left behind,
/// the output format is checked before anything runs, and the input is never the output.
#[test]
#[cfg(unix)]
fn c40_output_files_are_written_safely() {
    let yolo = fixture("yolo/yolov8n");
    let dir = scratch("out-safe");
    let img = dir.join("in.png");
    std::fs::copy(fixture("vit/bus_crop.png"), &img).unwrap();
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let detect = |out: &Path| {
        vec![
            os("detect"),
            os("--backend"),
            os("cpu"),
            os("--imgsz"),
            os("320"),
            os("--model"),
            os(&yolo),
            os("--out"),
            os(out),
            os(&img),
        ]
    };
    // The old fixed temporary name, planted as a symlink to the victim.
    let out = dir.join("annotated.png");
    std::os::unix::fs::symlink(&victim, dir.join(".annotated.png.partial")).unwrap();
    cli_ok("planted temp symlink", &detect(&out));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let written = image::open(&out).unwrap().to_rgb8();
    assert_eq!(
        written.dimensions(),
        image::open(&img).unwrap().to_rgb8().dimensions()
    );
    std::fs::remove_file(dir.join(".annotated.png.partial")).unwrap();
    // --out itself a symlink to the victim: the link is replaced, the victim untouched.
    let link = dir.join("link.png");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    cli_ok("--out is a symlink", &detect(&link));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    // Six concurrent runs to one --out all succeed, and the result is a whole image.
    let shared = dir.join("shared.png");
    let runs: Vec<_> = (0..6)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-infer"))
                .args(detect(&shared))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in runs {
        let o = r.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    assert_eq!(image::open(&shared).unwrap().to_rgb8(), written);
    assert_no_partial_files("concurrent --out", &dir);
    // An unsupported format is refused before the model is even opened.
    let e = cli(
        &[
            os("detect"),
            os("--model"),
            os(dir.join("no-such-model")),
            os("--out"),
            os(dir.join("boxes.xyz")),
            os(&img),
        ],
        &[],
    );
    assert_failed(
        "format before inference",
        &e,
        &["boxes.xyz", "unsupported output format"],
    );
    // --out naming the input, directly, through `..`, or through a symlink: refused, input
    // unchanged.
    let before = std::fs::read(&img).unwrap();
    let via_link = dir.join("in-link.png");
    std::os::unix::fs::symlink(&img, &via_link).unwrap();
    let sub = dir.join("sub.png");
    std::fs::create_dir_all(&sub).unwrap();
    for same in [img.clone(), sub.join("../in.png"), via_link] {
        for b in ["gpu", "cpu"] {
            let mut args = detect(&same);
            args[2] = os(b);
            let o = cli(&args, &[]);
            assert_failed(
                "--out is the input",
                &o,
                &["is the input", "choose another path"],
            );
        }
    }
    assert_eq!(
        std::fs::read(&img).unwrap(),
        before,
        "the input was modified"
    );
    // A directory as --out, and a missing directory.
    for (bad, why) in [
        (sub.clone(), "is a directory"),
        (dir.join("absent/x.png"), "does not exist"),
    ] {
        let o = cli(&detect(&bad), &[]);
        assert_failed("bad --out", &o, &[why]);
    }
    assert_no_partial_files("after errors", &dir);
}

/// Row 6: a token callback may call back into the same model (generate again, forward):
/// no lock is held while it runs.
#[test]
fn c41_callback_reentering_the_model() {
    let d = fixture("gpt2/tiny_b");
    within("re-entrant callback", 300, move || {
        let opts = GenerateOptions {
            max_new_tokens: 4,
            stop_at_eos: false,
            ..Default::default()
        };
        for b in backends() {
            let m = Gpt2::load(b, &d).unwrap();
            let alone = m.generate_ids(&[9, 8], &opts, |_| true).unwrap().tokens;
            let mut inner = Vec::new();
            let outer = m
                .generate_ids(&[1, 2, 3], &opts, |e| {
                    if e.index == 1 {
                        inner = m.generate_ids(&[9, 8], &opts, |_| true).unwrap().tokens;
                        m.forward(&[4, 5], 1, 2, None, false).unwrap();
                    }
                    true
                })
                .unwrap();
            assert_eq!(outer.tokens.len(), 4);
            assert_eq!(inner, alone, "a nested generation differs from one alone");
        }
    });
}

/// Row 7: an over-long text is cut on characters before tokenizing, so a 20 MB line costs
/// kilobytes of tokenization (it used to take 4.6 GB), with the same result as truncating
/// the full token sequence.
#[test]
fn c42_over_long_text_is_cut_before_tokenizing() {
    let d = fixture("bert/tiny_a");
    let words: Vec<String> = (0..4_200_000).map(|i| format!("w{}", i % 977)).collect();
    let huge = words.join(" ");
    assert!(huge.len() > 15 << 20);
    let head = words[..200].join(" "); // more than max_len (48) tokens
    for b in backends() {
        let m = Bert::load(b, &d).unwrap();
        let got = m.embed(&[&huge]).unwrap();
        let want = m.embed(&[&head]).unwrap();
        assert_eq!(
            got,
            want,
            "{}: 20 MB text vs its first 200 words",
            m.backend().name()
        );
        // The length check still sees that it is too long.
        assert!(m.check_lengths(&[&huge]).is_err());
    }
    let dir = scratch("huge-text");
    let input = dir.join("line.txt");
    std::fs::write(&input, format!("{huge}\n")).unwrap();
    for b in ["gpu", "cpu"] {
        let args = [
            os("embed"),
            os("--backend"),
            os(b),
            os("--truncate"),
            os("--model"),
            os(&d),
        ];
        let (out, peak) = cli_peak_rss(&args, &input, &[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["embeddings"].as_array().unwrap().len(), 1);
        eprintln!(
            "[20 MB line] embed --truncate --backend {b}: peak RSS {} MiB",
            peak >> 20
        );
        assert!(
            peak < 1 << 30,
            "peak RSS {} MiB for a 20 MB line",
            peak >> 20
        );
    }
}

/// Row 8: the KV cache is sized to the request (prompt + new tokens), not to n_positions,
/// and every allocation is checked against the memory budget first.
#[test]
fn c43_kv_cache_sized_to_the_request_within_a_budget() {
    let positions = 1usize << 17;
    let d = weights_with("gpt2/tiny_a", "npos", |e| {
        let t = entry(e, "transformer.wpe.weight");
        let row = t.data[..72 * 4].to_vec();
        t.shape = vec![positions, 72];
        t.data = row.repeat(positions);
    });
    edit_json(&d, "config.json", |c| c["n_positions"] = positions.into());
    let opts = GenerateOptions {
        max_new_tokens: 8,
        stop_at_eos: false,
        ..Default::default()
    };
    for b in backends() {
        let m = Gpt2::load(b.clone(), &d).unwrap();
        assert_eq!(m.kv_cache_positions(3 + 8), 64);
        let g = m.generate_ids(&[1, 2, 3], &opts, |_| true).unwrap();
        assert_eq!(g.tokens.len(), 8);
        if b.device().is_some() {
            let (bytes, _) = m.memory_and_dispatches();
            let full = m.kv_cache_bytes(positions);
            eprintln!(
                "[n_positions 2^17] session {} MiB; a full-context cache would be {} MiB",
                bytes >> 20,
                full >> 20
            );
            assert!(
                bytes < full / 2,
                "{bytes} bytes: the cache is not sized to the request"
            );
        }
    }
    // Over the budget: a typed error naming the bytes, before allocating.
    let small = wgpu_infer::DeviceOptions {
        memory_budget: 1 << 20,
        ..Default::default()
    };
    let dev = Device::with_options(&small).unwrap();
    let e = Gpt2::load(Backend::Gpu(dev), &d)
        .and_then(|m| m.generate_ids(&[1, 2, 3], &opts, |_| true))
        .unwrap_err();
    assert!(is_limit(&e), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("memory budget") && msg.contains("bytes"),
        "{msg}"
    );
    let out = cli(
        &[
            os("generate"),
            os("--model"),
            os(&d),
            os("--prompt"),
            os("hi"),
        ],
        &[("WGPU_INFER_MEMORY_BUDGET", OsStr::new("1MiB"))],
    );
    assert_failed(
        "memory budget cli",
        &out,
        &["memory budget", "WGPU_INFER_MEMORY_BUDGET"],
    );
    let out = cli(
        &[
            os("generate"),
            os("--model"),
            os(&d),
            os("--prompt"),
            os("hi"),
        ],
        &[("WGPU_INFER_MEMORY_BUDGET", OsStr::new("lots"))],
    );
    assert_failed(
        "memory budget value",
        &out,
        &["WGPU_INFER_MEMORY_BUDGET='lots'"],
    );
}

/// Row 9: non-finite results are typed errors naming the stage; inputs and files that would
/// produce them are refused when loading.
#[test]
fn c44_non_finite_results_are_errors() {
    // Word embeddings of 3e38 are valid: the first LayerNorm's mean must not overflow (as in
    // PyTorch), every row normalises to its beta, and the result is finite and the same on
    // both backends.
    let d = bert_with("huge-emb", |e| {
        let t = entry(e, "embeddings.word_embeddings.weight");
        t.data = f32s(&vec![3e38; t.data.len() / 4]);
    });
    let per: Vec<Vec<f32>> = backends()
        .into_iter()
        .map(|b| {
            Bert::load(b, &d)
                .unwrap()
                .embed(&["hello world"])
                .unwrap()
                .remove(0)
        })
        .collect();
    assert!(per[0].iter().all(|v| v.is_finite()), "{:?}", per[0]);
    let worst = per[0]
        .iter()
        .zip(&per[1])
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(worst < 1e-4, "GPU vs CPU on 3e38 embeddings: {worst}");
    // An intermediate weight of 3e38 overflows to inf and then NaN (in PyTorch too): a typed
    // error naming the stage, not NaN embeddings.
    let d = bert_with("huge-ffn", |e| {
        let t = entry(e, "encoder.layer.0.intermediate.dense.weight");
        t.data = f32s(&vec![3e38; t.data.len() / 4]);
    });
    lib_fails(
        "overflowing FFN",
        is_non_finite,
        &["encoder output", "non-finite"],
        |b| Bert::load(b, &d)?.embed(&["hello world"]),
    );
    cli_fails(
        "overflowing FFN",
        "embed",
        &[os("--model"), os(&d), os("hello world")],
        &["non-finite"],
    );
    let g = weights_with("gpt2/tiny_b", "huge-fc", |e| {
        let t = entry(e, "h.0.mlp.c_fc.weight");
        t.data = f32s(&vec![3e38; t.data.len() / 4]);
    });
    let few = GenerateOptions {
        max_new_tokens: 4,
        ..Default::default()
    };
    lib_fails(
        "overflowing GPT-2 MLP",
        is_non_finite,
        &["logits", "non-finite"],
        |b| Gpt2::load(b, &g)?.generate("hello", &few, |_| true),
    );
    cli_fails(
        "overflowing GPT-2 MLP",
        "generate",
        &[
            os("--model"),
            os(&g),
            os("--prompt"),
            os("hello"),
            os("--max-new-tokens"),
            os("4"),
        ],
        &["logits", "non-finite"],
    );
    // A tokenizer whose normalizer deletes every character.
    let t = copy_fixture("bert/tiny_a", "eraser");
    edit_json(&t, "tokenizer.json", |v| {
        v["normalizer"] = serde_json::json!({
            "type": "Replace", "pattern": {"Regex": "[\\s\\S]"}, "content": ""
        });
    });
    lib_fails("tokenizer deletes text", is_arg, &["no tokens"], |b| {
        Bert::load(b, &t)?.embed(&["hello world"])
    });
    cli_fails(
        "tokenizer deletes text",
        "embed",
        &[os("--model"), os(&t), os("hello world")],
        &["no tokens"],
    );
    // image_std of zero divides by zero.
    let v = copy_fixture("vit/tiny_cls", "std0");
    edit_json(&v, "preprocessor_config.json", |c| {
        c["image_std"] = serde_json::json!([0.0, 0.0, 0.0])
    });
    lib_fails(
        "image_std 0",
        is_config,
        &["preprocessor_config.json", "image_std", "> 0"],
        |b| Vit::load(b, &v),
    );
    cli_fails(
        "image_std 0",
        "classify",
        &[os("--model"), os(&v), os(fixture("vit/bus_crop.png"))],
        &["image_std"],
    );
    // A negative BatchNorm variance (the fixture stores f16: -0.5 is 0xB800).
    let y = weights_with("yolo/yolov8n", "negvar", |e| {
        let t = entry(e, "model.4.cv1.bn.running_var");
        assert_eq!(t.dtype, "F16");
        t.data[2..4].copy_from_slice(&0xB800u16.to_le_bytes());
    });
    lib_fails(
        "negative BN variance",
        is_weights,
        &["model.4.cv1.bn.running_var", "channel 1", "variance"],
        |b| Yolo::load(b, &y),
    );
    cli_fails(
        "negative BN variance",
        "detect",
        &[os("--model"), os(&y), os(fixture("vit/bus_crop.png"))],
        &["running_var", "variance"],
    );
    // Conv weights that overflow inside the network: no detections list, an error.
    let big = weights_with("yolo/yolov8n", "yolo-huge", |e| {
        let t = entry(e, "model.0.conv.weight");
        let n: usize = t.shape.iter().product();
        t.dtype = "F32".into();
        t.data = f32s(&vec![3e37; n]);
    });
    lib_fails(
        "yolo overflow",
        is_non_finite,
        &["YOLO", "non-finite"],
        |b| Yolo::load(b, &big)?.detect(&fixture("vit/bus_crop.png"), &DetectOptions::default()),
    );
}

/// Row 10: `max_seq_length: 0` in sentence_bert_config.json is refused at load time.
#[test]
fn c45_max_seq_length_zero() {
    let d = copy_fixture("bert/tiny_a", "msl0");
    edit_json(&d, "sentence_bert_config.json", |c| {
        c["max_seq_length"] = 0.into()
    });
    bert_load_fails(
        "max_seq_length 0",
        &d,
        is_config,
        &["sentence_bert_config.json", "max_seq_length is 0"],
    );
}

/// A JPEG with an EXIF APP1 segment holding only `orientation`.
fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes()); // IFD0 offset
    tiff.extend(1u16.to_le_bytes()); // one entry: Orientation, SHORT, count 1
    tiff.extend(0x0112u16.to_le_bytes());
    tiff.extend(3u16.to_le_bytes());
    tiff.extend(1u32.to_le_bytes());
    tiff.extend(orientation.to_le_bytes());
    tiff.extend([0, 0]);
    tiff.extend(0u32.to_le_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend(tiff);
    let mut out = jpeg[..2].to_vec(); // SOI
    out.extend([0xFF, 0xE1]);
    out.extend(((app1.len() + 2) as u16).to_be_bytes());
    out.extend(app1);
    out.extend(&jpeg[2..]);
    out
}

/// Row 11: EXIF orientation is applied when decoding, as PIL's `exif_transpose` (transformers)
/// and `cv2.imread` (ultralytics) do: orientation 6 is a 90° clockwise turn.
#[test]
fn c46_exif_orientation() {
    // 96x64, a red block in the top-left corner.
    let src = image::RgbImage::from_fn(96, 64, |x, y| {
        if x < 24 && y < 24 {
            image::Rgb([230, 20, 20])
        } else {
            image::Rgb([(x * 2) as u8, (y * 3) as u8, 128])
        }
    });
    let mut plain = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut plain, 92)
        .write_image(src.as_raw(), 96, 64, image::ExtendedColorType::Rgb8)
        .unwrap();
    let dir = scratch("exif");
    let (p_plain, p_exif, p_rot) = (
        dir.join("plain.jpg"),
        dir.join("exif6.jpg"),
        dir.join("rot.png"),
    );
    std::fs::write(&p_plain, &plain).unwrap();
    std::fs::write(&p_exif, with_exif_orientation(&plain, 6)).unwrap();
    let decoded = wgpu_infer::imageio::load_rgb(&p_plain).unwrap();
    let oriented = wgpu_infer::imageio::load_rgb(&p_exif).unwrap();
    assert_eq!(oriented.dimensions(), (64, 96));
    let turned = image::imageops::rotate90(&decoded);
    assert_eq!(
        oriented, turned,
        "orientation 6 must equal a 90° clockwise turn"
    );
    // The red corner moved to the top right.
    let px = oriented.get_pixel(64 - 8, 8);
    assert!(px[0] > 180 && px[1] < 80, "{px:?}");
    turned.save(&p_rot).unwrap();
    // Every path-based API and the CLI see the turned pixels.
    for b in backends() {
        let vit = Vit::load(b.clone(), fixture("vit/tiny_cls")).unwrap();
        let a = vit.classify(&[&p_exif], 3).unwrap();
        let r = vit.classify(&[&p_rot], 3).unwrap();
        let scores = |p: &Vec<Vec<wgpu_infer::models::vision::Prediction>>| {
            p[0].iter().map(|c| (c.index, c.score)).collect::<Vec<_>>()
        };
        assert_eq!(scores(&a), scores(&r));
        let y = Yolo::load(b, fixture("yolo/yolov8n")).unwrap();
        let o = DetectOptions {
            conf: 0.01,
            ..Default::default()
        };
        let da = y.detect(&p_exif, &o).unwrap();
        let dr = y.detect(&p_rot, &o).unwrap();
        assert_eq!(
            da.iter().map(|d| d.bbox).collect::<Vec<_>>(),
            dr.iter().map(|d| d.bbox).collect::<Vec<_>>()
        );
    }
    let classify = |p: &Path| {
        cli_ok(
            "exif classify",
            &[
                os("classify"),
                os("--backend"),
                os("cpu"),
                os("--model"),
                os(fixture("vit/tiny_cls")),
                os(p),
            ],
        )
        .stdout
    };
    let (a, r): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&classify(&p_exif)).unwrap(),
        serde_json::from_slice(&classify(&p_rot)).unwrap(),
    );
    assert_eq!(a[0]["top"], r[0]["top"]);
}

/// Row 12: `max_det` 0 is refused; otherwise at most `max_det` detections come back.
#[test]
fn c47_max_det() {
    let yolo = fixture("yolo/yolov8n");
    let img = fixture("vit/bus_crop.png");
    let zero = DetectOptions {
        max_det: 0,
        ..Default::default()
    };
    lib_fails("max_det 0", is_arg, &["max_det must be at least 1"], |b| {
        Yolo::load(b, &yolo)?.detect(&img, &zero)
    });
    cli_fails(
        "max-det 0",
        "detect",
        &[os("--model"), os(&yolo), os("--max-det"), os("0"), os(&img)],
        &["max_det must be at least 1"],
    );
    for b in backends() {
        let m = Yolo::load(b, &yolo).unwrap();
        let many = DetectOptions {
            conf: 0.01,
            ..Default::default()
        };
        let all = m.detect(&img, &many).unwrap();
        assert!(all.len() > 3, "{} detections", all.len());
        for k in [1usize, 3] {
            let o = DetectOptions {
                max_det: k,
                ..many.clone()
            };
            let top = m.detect(&img, &o).unwrap();
            assert_eq!(top.len(), k);
            assert_eq!(top[..], all[..k], "max_det keeps the best {k}");
        }
    }
}

/// Row 13: paths named by config files and hub refs stay inside their folder.
#[test]
#[cfg(unix)]
fn c48_paths_stay_inside_their_folder() {
    // modules.json naming a Pooling folder outside the model folder.
    let root = scratch("escape");
    let d = root.join("model");
    copy_dir(&fixture("bert/tiny_a"), &d);
    copy_dir(&fixture("bert/tiny_a/1_Pooling"), &root.join("elsewhere"));
    edit_json(&d, "modules.json", |m| m[1]["path"] = "../elsewhere".into());
    bert_load_fails(
        "modules.json ../elsewhere",
        &d,
        is_config,
        &["must stay inside the folder"],
    );
    // A Pooling folder that is a symlink to elsewhere.
    edit_json(&d, "modules.json", |m| m[1]["path"] = "1_Pooling".into());
    std::fs::remove_dir_all(d.join("1_Pooling")).unwrap();
    std::os::unix::fs::symlink(root.join("elsewhere"), d.join("1_Pooling")).unwrap();
    bert_load_fails(
        "1_Pooling symlinked outside",
        &d,
        is_config,
        &["outside the model folder"],
    );
    // A hub cache whose refs/main climbs out of the cache.
    let spec = "wgpu-infer-test/escape";
    let home = hub_home("hub-escape", spec, &fixture("bert/tiny_a"));
    let repo = home.join(format!("hub/models--{}", spec.replace('/', "--")));
    std::fs::write(repo.join("refs/main"), "../../../x").unwrap();
    copy_dir(&fixture("bert/tiny_a"), &home.join("x"));
    let out = hub_cli(
        &[
            os("embed"),
            os("--backend"),
            os("cpu"),
            os("--model"),
            os(spec),
            os("hello"),
        ],
        &home,
    );
    assert_failed("hub refs escape", &out, &[spec, "outside"]);
}

/// Row 14: inputs that are not regular files are refused without blocking; image files are
/// read up to a size limit.
#[test]
#[cfg(unix)]
fn c49_non_regular_and_oversized_inputs() {
    let dir = scratch("fifo");
    let fifo = dir.join("pipe.png");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(ok.success(), "mkfifo failed");
    let f = fifo.clone();
    within("FIFO image", 300, move || {
        image_fails("FIFO image", &f, is_io, &["pipe.png", "not a regular file"]);
    });
    // A FIFO as a model file.
    let d = copy_fixture("bert/tiny_a", "fifo-model");
    std::fs::remove_file(d.join("config.json")).unwrap();
    let ok = std::process::Command::new("mkfifo")
        .arg(d.join("config.json"))
        .status()
        .unwrap();
    assert!(ok.success());
    within("FIFO config", 300, move || {
        bert_load_fails(
            "FIFO config.json",
            &d,
            is_io,
            &["config.json", "not a regular file"],
        );
    });
    // /dev/zero is endless.
    within("/dev/zero image", 300, || {
        lib_fails("/dev/zero", is_io, &["not a regular file"], |_| {
            wgpu_infer::imageio::load_rgb(Path::new("/dev/zero"))
        });
    });
    // A 300 MB (sparse) file with a PNG signature: refused from its size.
    let big = dir.join("big.png");
    let mut bytes = png_declaring(64, 64);
    bytes.truncate(64);
    std::fs::write(&big, &bytes).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&big)
        .unwrap()
        .set_len(300 << 20)
        .unwrap();
    image_fails("300 MB image file", &big, is_io, &["big.png", "limit"]);
}

/// Row 15: extreme aspect ratios letterbox to valid sizes and give an answer; an imgsz beyond
/// what the adapter can bind is refused up front with the size that fits.
#[test]
fn c50_thin_images_and_imgsz_beyond_the_adapter() {
    let yolo = fixture("yolo/yolov8n");
    let dir = scratch("thin");
    for (w, h) in [(1u32, 2000u32), (2000, 1), (1, 1), (3, 5000)] {
        let p = dir.join(format!("{w}x{h}.png"));
        image::RgbImage::from_pixel(w, h, image::Rgb([120, 40, 200]))
            .save(&p)
            .unwrap();
        let (lb, info) = Yolo::letterbox(&image::open(&p).unwrap().to_rgb8(), 640, true).unwrap();
        assert!(
            info.w % 32 == 0 && info.h % 32 == 0,
            "{w}x{h} -> {:?}",
            lb.dimensions()
        );
        for b in backends() {
            let dets = Yolo::load(b, &yolo)
                .unwrap()
                .detect(&p, &DetectOptions::default())
                .unwrap();
            for d in &dets {
                let [x1, y1, x2, y2] = d.bbox;
                assert!(
                    x1 >= 0.0 && y1 >= 0.0 && x2 <= w as f32 && y2 <= h as f32,
                    "{d:?}"
                );
            }
        }
        for b in ["gpu", "cpu"] {
            let out = cli_ok(
                "thin image",
                &[
                    os("detect"),
                    os("--backend"),
                    os(b),
                    os("--model"),
                    os(&yolo),
                    os(&p),
                ],
            );
            let _: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        }
    }
    // 4096 on a 128 MiB binding: the first activation is 256 MiB. The message names imgsz,
    // the limit and the largest size that fits.
    let img = fixture("vit/bus_crop.png");
    let big = DetectOptions {
        imgsz: 4096,
        ..Default::default()
    };
    let e = Yolo::load(Backend::Gpu(device()), &yolo)
        .unwrap()
        .detect(&img, &big)
        .unwrap_err();
    let msg = e.to_string();
    assert!(is_arg(&e), "{e:?}");
    for n in ["imgsz 4096", "max_storage_buffer_binding_size", "use imgsz"] {
        assert!(msg.contains(n), "'{n}' not in {msg}");
    }
    assert!(!msg.contains("wgsl"), "internal kernel names in: {msg}");
    let out = cli(
        &[
            os("detect"),
            os("--model"),
            os(&yolo),
            os("--imgsz"),
            os("4096"),
            os(&img),
        ],
        &[],
    );
    assert_failed("imgsz 4096", &out, &["imgsz 4096", "use imgsz"]);
    for bad in ["4097", "8192", "0"] {
        cli_fails(
            "imgsz out of range",
            "detect",
            &[os("--model"), os(&yolo), os("--imgsz"), os(bad), os(&img)],
            &["imgsz must be a positive multiple of 32 up to 4096"],
        );
    }
}

/// Row 16: threads sharing one model run their forwards side by side (each on its own copy of
/// the plan) and get exactly what they get alone. Throughput is measured by
/// `wgpu-infer bench` (see the README), not here.
#[test]
fn c51_threads_sharing_one_model() {
    within("threads sharing a model", 600, || {
        for b in backends() {
            let bert = std::sync::Arc::new(Bert::load(b.clone(), fixture("bert/tiny_a")).unwrap());
            let gpt = std::sync::Arc::new(Gpt2::load(b.clone(), fixture("gpt2/tiny_b")).unwrap());
            let vit = std::sync::Arc::new(Vit::load(b.clone(), fixture("vit/tiny_cls")).unwrap());
            let texts: Vec<String> = (0..4).map(|i| format!("thread {i} says hello")).collect();
            let alone: Vec<_> = texts.iter().map(|t| bert.embed(&[t]).unwrap()).collect();
            let opts = GenerateOptions {
                max_new_tokens: 5,
                stop_at_eos: false,
                ..Default::default()
            };
            let gen_alone: Vec<_> = (0..4u32)
                .map(|i| {
                    gpt.generate_ids(&[i + 1, 7], &opts, |_| true)
                        .unwrap()
                        .tokens
                })
                .collect();
            let img = fixture("vit/bus_crop.png");
            let cls_alone = vit.classify(&[&img], 3).unwrap();
            std::thread::scope(|s| {
                for i in 0..4 {
                    let (bert, gpt, vit) = (bert.clone(), gpt.clone(), vit.clone());
                    let (texts, alone, gen_alone, opts, img) =
                        (&texts, &alone, &gen_alone, &opts, &img);
                    let cls_alone = &cls_alone;
                    s.spawn(move || {
                        for _ in 0..3 {
                            assert_eq!(bert.embed(&[&texts[i]]).unwrap(), alone[i]);
                            let t = gpt.generate_ids(&[i as u32 + 1, 7], opts, |_| true);
                            assert_eq!(t.unwrap().tokens, gen_alone[i]);
                            let c = vit.classify(&[img], 3).unwrap();
                            assert_eq!(c[0][0].index, cls_alone[0][0].index);
                            assert_eq!(c[0][0].score, cls_alone[0][0].score);
                        }
                    });
                }
            });
        }
    });
}

/// A first command on a headless box prints no spurious "error:" lines (Mesa's Wayland probe
/// complained about XDG_RUNTIME_DIR three times), and a failing one prints exactly one.
#[test]
fn c52_no_spurious_error_lines() {
    for xdg in [None, Some("/nonexistent-runtime-dir")] {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-infer"));
        c.arg("info");
        match xdg {
            None => c.env_remove("XDG_RUNTIME_DIR"),
            Some(v) => c.env("XDG_RUNTIME_DIR", v),
        };
        let out = c.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(!err.to_lowercase().contains("error"), "info printed: {err}");
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-infer"));
        c.args(["embed", "--model", "/no/such/model", "hi"]);
        if xdg.is_none() {
            c.env_remove("XDG_RUNTIME_DIR");
        }
        let out = c.output().unwrap();
        assert_failed("missing model, headless", &out, &["/no/such/model"]);
    }
}

/// Found by cargo-fuzz (text_model_files): a tokenizer.json whose decoder is malformed made the
/// tokenizers crate panic (`expect("Helper")`) instead of returning an error. Now a typed
/// error naming the file, and no panic message on stderr.
#[test]
fn c53_malformed_tokenizer_decoder() {
    for (tag, decoder) in [
        (
            "syntax",
            r#"{"type": "WordPiece", "prefix": max_input_chars_per_word": 100}"#,
        ),
        ("shape", "5"),
        (
            "fields",
            r##"{"type": "WordPiece", "prefix": ["#"], "cleanup": 3}"##,
        ),
    ] {
        let d = copy_fixture("bert/tiny_a", &format!("decoder-{tag}"));
        let p = d.join("tokenizer.json");
        let text = std::fs::read_to_string(&p).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let old = serde_json::to_string(&v["decoder"]).unwrap();
        let compact = serde_json::to_string(&v).unwrap();
        assert!(compact.contains(&old));
        std::fs::write(&p, compact.replacen(&old, decoder, 1)).unwrap();
        bert_load_fails(
            &format!("tokenizer decoder {tag}"),
            &d,
            is_config,
            &["tokenizer.json", "cannot load tokenizer"],
        );
    }
}

/// Found by cargo-fuzz (image_preprocess): a GIF whose logical screen is 40x0 decoded to an
/// image with no pixels, which preprocessing then divided by. Empty images, from files or built
/// by the caller, are typed errors everywhere.
#[test]
fn c54_images_without_pixels() {
    const GIF_40X0: &[u8] = &[
        0x47, 0x49, 0x46, 0x38, 0x37, 0x61, 0x28, 0x00, 0x00, 0x00, 0x81, 0x18, 0x00, 0x0a, 0xc8,
        0x5a, 0x00, 0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
        0x04, 0x00, 0x02, 0x00, 0x40, 0x08, 0x34, 0x00, 0x01, 0x08, 0x1c, 0x48, 0xb0, 0xa0, 0x2c,
        0x00, 0xc1, 0x00, 0x00, 0x00, 0x08, 0x13, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
        0x00, 0x00, 0x13, 0x2a, 0x7f, 0x5c, 0x3b,
    ];
    let p = scratch("gif40x0").join("empty.gif");
    std::fs::write(&p, GIF_40X0).unwrap();
    image_fails("40x0 GIF", &p, is_image, &["empty.gif", "no pixels"]);
    for (w, h) in [(0u32, 0u32), (5, 0), (0, 7)] {
        let img = image::RgbImage::new(w, h);
        lib_fails("empty image", is_arg, &["no pixels"], |b| {
            Yolo::load(b, fixture("yolo/yolov8n"))?.detect_image(&img, &DetectOptions::default())
        });
        lib_fails("empty image", is_arg, &["no pixels"], |b| {
            Vit::load(b, fixture("vit/tiny_cls"))?.classify_images(std::slice::from_ref(&img), 3)
        });
        assert!(Yolo::letterbox(&img, 640, true).is_err());
    }
}

/// Row 14, text inputs: JSON files of a model folder and text on stdin are read up to a limit
/// (256 MiB); larger ones are refused before being copied into memory.
#[test]
fn c55_oversized_text_inputs() {
    for name in ["config.json", "tokenizer.json"] {
        let d = copy_fixture("bert/tiny_a", &format!("big-{name}"));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(d.join(name))
            .unwrap();
        f.set_len(300 << 20).unwrap(); // sparse: no disk or memory used
        bert_load_fails(
            &format!("300 MB {name}"),
            &d,
            is_config,
            &[name, "limit for a text file"],
        );
    }
    let dir = scratch("big-stdin");
    let input = dir.join("stdin.txt");
    let f = std::fs::File::create(&input).unwrap();
    f.set_len((256 << 20) + 10).unwrap();
    let args = [
        os("embed"),
        os("--backend"),
        os("cpu"),
        os("--model"),
        os(fixture("bert/tiny_a")),
    ];
    let (out, _) = cli_peak_rss(&args, &input, &[]);
    assert_failed("257 MB on stdin", &out, &["stdin holds more than 256 MiB"]);
}
