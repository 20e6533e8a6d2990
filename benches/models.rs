//! End-to-end model benchmarks (criterion), GPU vs the CPU reference path.
//! PyTorch on the same machine: `python tools/bench_torch.py <workload> ...`.
//!
//! MiniLM needs `bash tools/fetch_minilm.sh` first.

use criterion::{BenchmarkId, Criterion, Throughput};
use std::path::PathBuf;
use std::time::Duration;
use wgpu_infer::models::Bert;
use wgpu_infer::{Backend, Device};

fn models_dir() -> PathBuf {
    std::env::var_os("WGPU_INFER_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/wgpu-infer/models")
        })
}

fn sentences() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/data/sentences.txt");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

fn minilm(c: &mut Criterion, dev: &Device) {
    let dir = models_dir().join("all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} missing: run `bash tools/fetch_minilm.sh`",
        dir.display()
    );
    let sents = sentences();
    let mut group = c.benchmark_group("minilm");
    for backend in [Backend::Gpu(dev.clone()), Backend::Cpu] {
        let model = Bert::load(backend.clone(), &dir).unwrap();
        for batch in [1usize, 32, 64] {
            let texts: Vec<&str> = sents[..batch].iter().map(|s| s.as_str()).collect();
            model.embed(&texts).unwrap();
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(
                BenchmarkId::new(format!("embed/{}", backend.name()), batch),
                |b| b.iter(|| model.embed(&texts).unwrap()),
            );
        }
    }
    group.finish();
}

fn main() {
    let dev =
        Device::new().unwrap_or_else(|e| panic!("the model benchmarks need a GPU adapter: {e}"));
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    minilm(&mut c, &dev);
    c.final_summary();
}
