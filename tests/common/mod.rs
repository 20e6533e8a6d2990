//! Shared test support: the GPU devices, a seeded RNG, and GPU-vs-CPU comparison.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
#[allow(unused_imports)]
pub use wgpu_infer::ops::cases::Rng;
use wgpu_infer::{Backend, Device, DeviceOptions, Graph, KernelPolicy, Tensor};

/// The GPU device shared by all tests of a binary (kernel policy from the environment). A
/// missing adapter fails the test with a message saying how to get one.
pub fn device() -> Device {
    static DEV: OnceLock<Device> = OnceLock::new();
    DEV.get_or_init(|| match Device::new() {
        Ok(d) => d,
        Err(e) => panic!("these tests need a GPU adapter: {e}"),
    })
    .clone()
}

/// The same adapter under the portable kernel policy: no subgroups and WebGPU's default
/// compute limits, so only the kernels the browser build uses can run.
pub fn portable_device() -> Device {
    static DEV: OnceLock<Device> = OnceLock::new();
    DEV.get_or_init(|| {
        let opts = DeviceOptions {
            policy: KernelPolicy::portable(),
            ..DeviceOptions::from_env().expect("valid WGPU_INFER_* variables")
        };
        match Device::with_options(&opts) {
            Ok(d) => d,
            Err(e) => panic!("these tests need a GPU adapter: {e}"),
        }
    })
    .clone()
}

/// The backends model tests compare against PyTorch: the GPU with the adapter's kernels, the
/// GPU with the portable (browser) kernel set, and the CPU reference.
pub fn model_backends() -> Vec<Backend> {
    vec![
        Backend::Gpu(device()),
        Backend::Gpu(portable_device()),
        Backend::Cpu,
    ]
}

/// A backend's name in test labels: `gpu`, `gpu-portable` or `cpu`.
pub fn label(b: &Backend) -> &'static str {
    match b.device() {
        Some(d) if d.policy().portable => "gpu-portable",
        _ => b.name(),
    }
}

/// Worst error seen for one op across its cases.
#[derive(Clone, Debug, Default)]
pub struct Worst {
    pub abs: f64,
    pub rel: f64,
    pub case: String,
    pub cases: usize,
}

fn table() -> &'static Mutex<BTreeMap<String, Worst>> {
    static T: OnceLock<Mutex<BTreeMap<String, Worst>>> = OnceLock::new();
    T.get_or_init(Mutex::default)
}

/// Compares `got` with `want` elementwise. An element passes when its error is within `abs_tol`
/// or within `rel_tol` of the reference's magnitude. Returns (worst abs, worst rel).
pub fn compare(label: &str, got: &Tensor, want: &Tensor, abs_tol: f64, rel_tol: f64) -> (f64, f64) {
    assert_eq!(got.shape(), want.shape(), "{label}: shapes differ");
    let (g, w) = (got.to_f32_vec(), want.to_f32_vec());
    let (mut worst_abs, mut worst_rel) = (0.0f64, 0.0f64);
    for (i, (&a, &b)) in g.iter().zip(&w).enumerate() {
        let (a, b) = (a as f64, b as f64);
        let err = (a - b).abs();
        let rel = err / b.abs().max(1e-30);
        assert!(
            a.is_finite() == b.is_finite(),
            "{label}: element {i}: got {a}, want {b}"
        );
        if !b.is_finite() {
            continue;
        }
        assert!(
            err <= abs_tol || err <= rel_tol * b.abs(),
            "{label}: element {i} of {:?}: got {a}, want {b} (abs err {err:.3e} > {abs_tol:e}, rel err {rel:.3e} > {rel_tol:e})",
            want.shape()
        );
        worst_abs = worst_abs.max(err);
        if b.abs() > 1e-3 {
            worst_rel = worst_rel.max(rel);
        }
    }
    (worst_abs, worst_rel)
}

/// Records a case's worst error under `op`.
pub fn record(op: &str, case: &str, abs: f64, rel: f64) {
    let mut t = table().lock().unwrap();
    let w = t.entry(op.to_string()).or_default();
    w.cases += 1;
    if abs >= w.abs {
        w.abs = abs;
        w.case = case.to_string();
    }
    w.rel = w.rel.max(rel);
}

/// Prints the table of worst errors per op.
pub fn print_table() {
    let t = table().lock().unwrap();
    println!(
        "\n{:<22} {:>6} {:>12} {:>12}  worst case",
        "op", "cases", "max abs", "max rel"
    );
    for (op, w) in t.iter() {
        println!(
            "{:<22} {:>6} {:>12.3e} {:>12.3e}  {}",
            op, w.cases, w.abs, w.rel, w.case
        );
    }
}

/// Runs `graph` on the GPU and on the CPU reference and compares every output with the default
/// parity tolerance (1e-4 abs, or 1e-5 relative for large magnitudes).
pub fn parity(op: &str, case: &str, graph: Graph, feeds: &[Tensor]) {
    parity_on(&device(), op, case, Arc::new(graph), feeds, 1e-4, 1e-5)
}

/// Runs `graph` on `dev` and on the CPU reference, compares every output by name within
/// (abs, rel), and records the worst error under `op`.
pub fn parity_on(
    dev: &Device,
    op: &str,
    case: &str,
    g: Arc<Graph>,
    feeds: &[Tensor],
    abs: f64,
    rel: f64,
) {
    let refs: Vec<&Tensor> = feeds.iter().collect();
    let mut cpu = Backend::Cpu.compile(g.clone(), &[]).unwrap();
    let want = cpu
        .run(&refs)
        .unwrap_or_else(|e| panic!("{op} {case}: cpu: {e}"));
    let mut gpu = Backend::Gpu(dev.clone())
        .compile(g.clone(), &[])
        .unwrap_or_else(|e| panic!("{op} {case}: compile: {e}"));
    let got = gpu
        .run(&refs)
        .unwrap_or_else(|e| panic!("{op} {case}: gpu: {e}"));
    assert_eq!(got.len(), want.len(), "{op} {case}: output count");
    let (mut wa, mut wr) = (0.0f64, 0.0f64);
    for (name, b) in want.iter() {
        let a = got
            .get(name)
            .unwrap_or_else(|| panic!("{op} {case}: GPU output '{name}' missing"));
        let (ea, er) = compare(&format!("{op} {case} output {name}"), a, b, abs, rel);
        wa = wa.max(ea);
        wr = wr.max(er);
    }
    record(op, case, wa, wr);
}

/// Prints the worst-error line of one op.
pub fn print_table_for(op: &str) {
    let t = table().lock().unwrap();
    if let Some(w) = t.get(op) {
        println!(
            "PARITY {:<22} cases {:>3}  max abs {:>10.3e}  max rel {:>10.3e}  worst: {}",
            op, w.cases, w.abs, w.rel, w.case
        );
    }
}

/// The downloaded sample images (`tools/fetch_assets.sh`), or a failure saying how to get them.
pub fn assets() -> std::path::PathBuf {
    use std::path::PathBuf;
    let base = std::env::var_os("WGPU_INFER_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/wgpu-infer/models")
        });
    let a = base.join("assets");
    assert!(
        a.join("bus.jpg").is_file(),
        "sample images not found in {}: run `bash tools/fetch_assets.sh`",
        a.display()
    );
    a
}

/// Recursive copy of a fixture folder.
pub fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).unwrap();
    for e in std::fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            std::fs::copy(e.path(), to).unwrap();
        }
    }
}

/// A PNG whose header declares `w` x `h` pixels (with a valid IHDR checksum) and whose data
/// is one pixel.
pub fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    use image::ImageEncoder;
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&[0u8; 3], 1, 1, image::ExtendedColorType::Rgb8)
        .unwrap();
    png[16..20].copy_from_slice(&w.to_be_bytes());
    png[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32(&png[12..29]); // IHDR chunk type + data
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// CRC-32 (IEEE) as PNG chunks use it.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// The real all-MiniLM-L6-v2 folder (`WGPU_INFER_MINILM`, else `$WGPU_INFER_MODELS` or
/// ~/.cache/wgpu-infer/models, + all-MiniLM-L6-v2); a missing one fails with how to get it.
#[allow(dead_code)]
pub fn minilm_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("WGPU_INFER_MINILM")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let base = std::env::var_os("WGPU_INFER_MODELS")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                        .join(".cache/wgpu-infer/models")
                });
            base.join("all-MiniLM-L6-v2")
        });
    assert!(
        dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 not found at {}: run `bash tools/fetch_minilm.sh` (or set WGPU_INFER_MINILM)",
        dir.display()
    );
    dir
}

/// The sentences of the MiniLM fixture (tests/fixtures/minilm/reference.json).
#[allow(dead_code)]
pub fn minilm_sentences() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/minilm/reference.json");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    meta["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Compares only the real (unpadded) token rows of [batch, seq, hidden] tensors.
#[allow(dead_code)]
pub fn compare_masked(
    label: &str,
    got: &Tensor,
    want: &Tensor,
    inp: &wgpu_infer::models::bert::BertInput,
) -> f64 {
    let h = *want.shape().last().unwrap();
    let (g, w) = (got.as_f32().unwrap(), want.as_f32().unwrap());
    let mut worst = 0.0f64;
    for b in 0..inp.batch {
        let n = inp.len(b);
        let s = b * inp.seq * h;
        let gt = Tensor::from_f32(&[n, h], g[s..s + n * h].to_vec()).unwrap();
        let wt = Tensor::from_f32(&[n, h], w[s..s + n * h].to_vec()).unwrap();
        worst = worst.max(compare(&format!("{label} row {b}"), &gt, &wt, 1e-4, 0.0).0);
    }
    worst
}

/// Compares only the real positions of right-padded [batch, seq, width] tensors (`mask`: 1 =
/// token, [batch, seq]) within `tol`; the worst abs difference.
#[allow(dead_code)]
pub fn compare_rows(label: &str, got: &Tensor, want: &Tensor, mask: &[u32], tol: f64) -> f64 {
    let (b, s, w) = (want.shape()[0], want.shape()[1], want.shape()[2]);
    assert_eq!(mask.len(), b * s, "{label}: mask shape");
    let (g, wv) = (got.as_f32().unwrap(), want.as_f32().unwrap());
    let mut worst = 0.0f64;
    for row in 0..b {
        let n = mask[row * s..(row + 1) * s]
            .iter()
            .filter(|&&x| x != 0)
            .count();
        let o = row * s * w;
        let gt = Tensor::from_f32(&[n, w], g[o..o + n * w].to_vec()).unwrap();
        let wt = Tensor::from_f32(&[n, w], wv[o..o + n * w].to_vec()).unwrap();
        worst = worst.max(compare(&format!("{label} row {row}"), &gt, &wt, tol, 0.0).0);
    }
    worst
}
