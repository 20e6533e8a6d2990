//! Arbitrary bytes as one file of a sentence-transformers BERT folder: the first byte picks
//! the file (tokenizer.json, config.json, sentence_bert_config.json, modules.json,
//! 1_Pooling/config.json), the rest is its content; the other files are the tiny_a fixture's.
//! Loading on the CPU backend must give a model or a typed error (never a panic); a loaded
//! model must embed ordinary, empty-after-normalising and over-long texts into finite vectors
//! of its width or refuse them with a typed error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_infer::models::{Bert, ModelFiles};
use wgpu_infer::{Backend, Error};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/bert/tiny_a/");

const FILES: [(&str, &[u8]); 5] = [
    (
        "tokenizer.json",
        include_bytes!("../../tests/fixtures/bert/tiny_a/tokenizer.json"),
    ),
    (
        "config.json",
        include_bytes!("../../tests/fixtures/bert/tiny_a/config.json"),
    ),
    (
        "sentence_bert_config.json",
        include_bytes!("../../tests/fixtures/bert/tiny_a/sentence_bert_config.json"),
    ),
    (
        "modules.json",
        include_bytes!("../../tests/fixtures/bert/tiny_a/modules.json"),
    ),
    (
        "1_Pooling/config.json",
        include_bytes!("../../tests/fixtures/bert/tiny_a/1_Pooling/config.json"),
    ),
];

const WEIGHTS: &[u8] = include_bytes!("../../tests/fixtures/bert/tiny_a/model.safetensors");

fuzz_target!(|data: &[u8]| {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let pick = pick as usize % FILES.len();
    let mut files = ModelFiles::new(DIR).with("model.safetensors", WEIGHTS.to_vec());
    for (i, (name, bytes)) in FILES.iter().enumerate() {
        let b = if i == pick { content.to_vec() } else { bytes.to_vec() };
        files.insert(*name, b);
    }
    let model = match Bert::from_files(Backend::Cpu, &files, &Default::default()) {
        Ok(m) => m,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let long = "tokens ".repeat(2000);
    for text in ["hello world", "Ünïcödé 日本語 🚀", long.as_str(), "?!"] {
        match model.embed(&[text]) {
            Ok(v) => {
                assert_eq!(v.len(), 1);
                assert_eq!(v[0].len(), model.dim());
                assert!(v[0].iter().all(|x| x.is_finite()), "{v:?}");
            }
            Err(e) => assert!(
                matches!(
                    e,
                    Error::InvalidArgument(_) | Error::Tokenizer(_) | Error::NonFinite { .. }
                ),
                "{e:?}"
            ),
        }
    }
});
