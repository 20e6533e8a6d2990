//! Arbitrary bytes as a BERT folder's model.safetensors: the weights are resolved and shape
//! checked by `Bert::from_source` on the CPU backend exactly as `Bert::load_with` does (prefix
//! detection, pooler detection, f32 and f16 storage). Every failure must be a typed error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_infer::models::bert::{Bert, BertConfig};
use wgpu_infer::weights::Weights;
use wgpu_infer::{Backend, DType, Error, LoadOptions};

/// The configs of the BERT fixtures; the one whose width matches the file's word embeddings
/// is used (tiny_c otherwise), so every fixture seeds a model that builds.
const CONFIGS: [&str; 3] = [
    include_str!("../../tests/fixtures/bert/tiny_c/config.json"),
    include_str!("../../tests/fixtures/bert/tiny_b/config.json"),
    include_str!("../../tests/fixtures/bert/tiny_a/config.json"),
];

fn configs() -> &'static [BertConfig] {
    static C: std::sync::OnceLock<Vec<BertConfig>> = std::sync::OnceLock::new();
    C.get_or_init(|| {
        CONFIGS
            .iter()
            .map(|t| serde_json::from_str(t).expect("fixture config parses"))
            .collect()
    })
}

fn check_err(e: &Error) {
    assert!(
        matches!(
            e,
            Error::Weights { .. }
                | Error::Storage { .. }
                | Error::Config { .. }
                | Error::InvalidArgument(_)
                | Error::Shape { .. }
        ),
        "unexpected error kind: {e:?}"
    );
    assert!(!e.to_string().is_empty());
}

fuzz_target!(|data: &[u8]| {
    let mut w = match Weights::from_bytes("model.safetensors", data.to_vec()) {
        Ok(w) => w,
        Err(e) => return check_err(&e),
    };
    // What Bert::load_with does before building.
    if !w.contains("embeddings.word_embeddings.weight")
        && w.names()
            .iter()
            .any(|n| n == "bert.embeddings.word_embeddings.weight")
    {
        w.set_prefix("bert.");
    }
    let with_pooler = w.contains("pooler.dense.weight");
    let width = w
        .shape("embeddings.word_embeddings.weight")
        .and_then(|s| s.get(1).copied());
    let config = configs()
        .iter()
        .find(|c| Some(c.hidden_size) == width)
        .unwrap_or(&configs()[0])
        .clone();
    let get = |name: &str, shape: &[usize]| w.get_shaped(name, shape);
    for dtype in [DType::F32, DType::F16] {
        let opts = LoadOptions::with_dtype(dtype);
        match Bert::from_source(Backend::Cpu, config.clone(), &get, with_pooler, None, &opts) {
            Ok(m) => {
                assert_eq!(m.dim(), config.hidden_size);
                let _ = m.memory_and_dispatches();
            }
            Err(e) => {
                check_err(&e);
                return;
            }
        }
    }
    let _ = w.unread();
});
