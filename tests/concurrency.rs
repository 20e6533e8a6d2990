//! Models are `Send + Sync`: threads sharing one loaded model get the same results as one
//! thread; long runs keep GPU and host memory flat; a folder opened twice uploads its weights
//! once.

mod common;
use common::device;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wgpu_infer::models::{Bert, Gpt2, Vit, Yolo};
use wgpu_infer::{Backend, Device};

/// The GPU-object tests take turns: wgpu's internal counters move when another test's device
/// frees objects (seen as a flaky failure of the flat-memory test), so no other test of this
/// file runs while one of them measures.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

#[test]
fn models_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Bert>();
    check::<Gpt2>();
    check::<Vit>();
    check::<Yolo>();
    check::<Device>();
    check::<Backend>();
}

const TEXTS: [&str; 8] = [
    "The quick brown fox jumps over the lazy dog.",
    "GPUs run many small programs at once.",
    "a",
    "Parity is the product.",
    "Sentence embeddings map text to vectors.",
    "Short.",
    "Threads share one model and must agree with a single thread.",
    "Zebras!",
];

/// 8 threads embedding different texts (so their batch shapes differ) through one shared model,
/// many times each, match the single-threaded results bit for bit.
#[test]
fn eight_threads_share_one_model() {
    let _turn = serial();
    for backend in [Backend::Gpu(device()), Backend::Cpu] {
        let model = Arc::new(Bert::load(backend.clone(), fixture("bert/tiny_a")).unwrap());
        let want: Vec<Vec<Vec<f32>>> = (0..8)
            .map(|t| model.embed(&TEXTS[..t + 1]).unwrap())
            .collect();
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let m = model.clone();
                std::thread::spawn(move || {
                    (0..6)
                        .map(|_| m.embed(&TEXTS[..t + 1]).unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for (t, h) in handles.into_iter().enumerate() {
            for got in h.join().expect("thread panicked") {
                assert_eq!(
                    got,
                    want[t],
                    "{}: thread {t} differs from one thread",
                    backend.name()
                );
            }
        }
        // Generation shares a KV cache per model: concurrent calls must serialize, not mix.
        let gpt = Arc::new(Gpt2::load(backend.clone(), fixture("gpt2/tiny_a")).unwrap());
        let opts = wgpu_infer::models::gpt2::GenerateOptions {
            max_new_tokens: 6,
            ..Default::default()
        };
        let solo = gpt.generate("Hello there", &opts, |_| true).unwrap().tokens;
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let (g, o) = (gpt.clone(), opts.clone());
                std::thread::spawn(move || g.generate("Hello there", &o, |_| true).unwrap().tokens)
            })
            .collect();
        for h in hs {
            assert_eq!(h.join().unwrap(), solo, "{}: generation", backend.name());
        }
    }
}

fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// 1,000 consecutive forwards (alternating two batch shapes) keep the GPU objects and memory
/// exactly flat after warm-up, and host memory within a small bound.
#[test]
fn thousand_forwards_keep_memory_flat() {
    let _turn = serial();
    // Its own device: wgpu's counters are per device, and other tests run concurrently.
    let dev = Device::new().unwrap();
    let model = Bert::load(Backend::Gpu(dev.clone()), fixture("bert/tiny_a")).unwrap();
    let run = |i: usize| {
        let texts = if i.is_multiple_of(2) {
            &TEXTS[..3]
        } else {
            &TEXTS[..8]
        };
        model.embed(texts).unwrap();
    };
    for i in 0..20 {
        run(i);
    }
    let (gpu0, rss0) = (dev.memory(), rss_bytes());
    for i in 0..1000 {
        run(i);
    }
    let (gpu1, rss1) = (dev.memory(), rss_bytes());
    println!("after warm-up: {gpu0:?}, rss {} MiB", rss0 >> 20);
    println!("after 1000 forwards: {gpu1:?}, rss {} MiB", rss1 >> 20);
    assert_eq!(
        gpu0, gpu1,
        "GPU objects or memory changed over 1000 forwards"
    );
    let growth = rss1.saturating_sub(rss0);
    assert!(
        growth < 16 << 20,
        "host memory grew by {} KiB over 1000 forwards",
        growth >> 10
    );
}

/// Opening the same folder twice shares the loaded weights: the second model uploads nothing.
#[test]
fn same_folder_twice_uploads_weights_once() {
    let _turn = serial();
    // A fresh device, so other tests' uploads do not interfere.
    let dev = Device::new().unwrap();
    let a = Vit::load(Backend::Gpu(dev.clone()), fixture("vit/tiny_cls")).unwrap();
    let size = a.config().image_size;
    let x = wgpu_infer::Tensor::from_f32(&[1, 3, size, size], vec![0.25; 3 * size * size]).unwrap();
    let ya = a.forward(&x).unwrap().logits.unwrap();
    let once = dev.weight_bytes_uploaded();
    assert!(once > 0);
    let b = Vit::load(Backend::Gpu(dev.clone()), fixture("vit/tiny_cls")).unwrap();
    let yb = b.forward(&x).unwrap().logits.unwrap();
    assert_eq!(ya, yb);
    assert_eq!(
        dev.weight_bytes_uploaded(),
        once,
        "the second model must reuse the first one's device weights"
    );
    // Different options are a different model: f16 weights upload again.
    let opts = wgpu_infer::LoadOptions::with_dtype(wgpu_infer::DType::F16);
    let c = Vit::load_with(Backend::Gpu(dev.clone()), fixture("vit/tiny_cls"), &opts).unwrap();
    c.forward(&x).unwrap();
    assert!(dev.weight_bytes_uploaded() > once);
    // Once every model is gone, the weights are freed and a new load reads them again.
    drop((a, b, c));
    let d = Vit::load(Backend::Gpu(dev.clone()), fixture("vit/tiny_cls")).unwrap();
    let before = dev.weight_bytes_uploaded();
    d.forward(&x).unwrap();
    assert!(dev.weight_bytes_uploaded() > before);
}
