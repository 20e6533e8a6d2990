//! The async API, driven by a plain executor that is not the library's blocking edge (so
//! readbacks go through the device's poller thread, as under an async runtime), on model
//! folders held in memory (`ModelFiles`, as a browser fetches them): every family gives the
//! same results, bit for bit, as the blocking path-based API.

mod common;
use common::{assets, device};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};
use wgpu_infer::models::gpt2::GenerateOptions;
use wgpu_infer::models::yolo::DetectOptions;
use wgpu_infer::models::{Bert, Gpt2, Vit, Yolo};
use wgpu_infer::{Backend, Device, DeviceOptions, LoadOptions, ModelFiles};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Polls `f` on this thread, parking between wake-ups; fails if it does not finish in time
/// (a readback nobody drives would hang here).
fn run<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        assert!(Instant::now() < deadline, "the future never completed");
        std::thread::park_timeout(Duration::from_millis(500));
    }
}

/// Every file of a fixture folder (and its subfolders), read into memory.
fn in_memory(dir: &Path) -> ModelFiles {
    fn add(files: &mut ModelFiles, root: &Path, dir: &Path) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                add(files, root, &p);
            } else {
                let name = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                files.insert(name, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut files = ModelFiles::new(dir.file_name().unwrap());
    add(&mut files, dir, dir);
    files
}

#[test]
fn a_device_opens_asynchronously() {
    let d: Device = run(Device::request(&DeviceOptions::from_env().unwrap())).unwrap();
    assert!(run(d.fma_peak_gflops(1)).unwrap() > 0.0);
}

#[test]
fn bert_from_memory_embeds_like_the_path_api() {
    let texts = ["The quick brown fox.", "a", "Parity is the product."];
    let dir = fixture("bert/tiny_a");
    for backend in [Backend::Gpu(device()), Backend::Cpu] {
        let want = Bert::load(backend.clone(), &dir)
            .unwrap()
            .embed(&texts)
            .unwrap();
        let m = Bert::from_files(backend, &in_memory(&dir), &LoadOptions::default()).unwrap();
        assert_eq!(m.name(), "tiny_a");
        assert_eq!(run(m.embed_async(&texts)).unwrap(), want);
    }
}

#[test]
fn gpt2_streams_asynchronously_like_the_blocking_api() {
    let dir = fixture("gpt2/tiny_a");
    let opts = GenerateOptions {
        max_new_tokens: 8,
        ..Default::default()
    };
    let backend = Backend::Gpu(device());
    let want = Gpt2::load(backend.clone(), &dir)
        .unwrap()
        .generate("Hello there", &opts, |_| true)
        .unwrap();
    let m = Gpt2::from_files(backend, &in_memory(&dir), &LoadOptions::default()).unwrap();
    let mut streamed = String::new();
    let got = run(m.generate_stream("Hello there", &opts, |t| {
        streamed.push_str(t.text);
        true
    }))
    .unwrap();
    assert_eq!(got.tokens, want.tokens);
    assert_eq!(streamed, got.text);
}

#[test]
fn vit_and_yolo_run_asynchronously_on_decoded_images() {
    let bus = wgpu_infer::imageio::load_rgb(&assets().join("bus.jpg")).unwrap();
    let backend = Backend::Gpu(device());
    let dir = fixture("vit/tiny_cls");
    let want = Vit::load(backend.clone(), &dir)
        .unwrap()
        .classify(&[assets().join("bus.jpg")], 5)
        .unwrap();
    let vit = Vit::from_files(backend.clone(), &in_memory(&dir), &LoadOptions::default()).unwrap();
    let got = run(vit.classify_async(std::slice::from_ref(&bus), 5)).unwrap();
    let ids =
        |p: &[wgpu_infer::models::vit::Prediction]| p.iter().map(|x| x.index).collect::<Vec<_>>();
    assert_eq!(ids(&got[0]), ids(&want[0]));
    assert_eq!(got[0][0].score, want[0][0].score);

    let dir = fixture("yolo/yolov8n");
    let opts = DetectOptions::default();
    let want = Yolo::load(backend.clone(), &dir)
        .unwrap()
        .detect_image(&bus, &opts)
        .unwrap();
    let yolo = Yolo::from_files(backend, &in_memory(&dir)).unwrap();
    let got = run(yolo.detect_async(&bus, &opts)).unwrap();
    assert!(!want.is_empty());
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((g.class_id, g.bbox, g.score), (w.class_id, w.bbox, w.score));
    }
}

#[test]
fn in_memory_folders_fail_like_folders_on_disk() {
    // A missing file names the folder label and the file.
    let e = Bert::from_files(
        Backend::Cpu,
        &ModelFiles::new("models/x").with("config.json", b"{}".to_vec()),
        &LoadOptions::default(),
    )
    .err()
    .expect("an incomplete folder must fail");
    assert!(e.to_string().contains("models/x/config.json"), "{e}");
    // A config naming a file outside the folder is refused.
    let mut files = in_memory(&fixture("bert/tiny_a"));
    files.insert(
        "modules.json",
        br#"[{"idx": 1, "name": "1", "path": "../../etc", "type": "sentence_transformers.models.Pooling"}]"#.to_vec(),
    );
    let e = Bert::from_files(Backend::Cpu, &files, &LoadOptions::default())
        .err()
        .expect("a path outside the folder must fail");
    assert!(e.to_string().contains("inside the folder"), "{e}");
}
