//! Arbitrary bytes as config.json text: `parse_config` must return a config or an error
//! message, never panic; an accepted config must pass its family's checks again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_infer::models::family::MAX_DIM;
use wgpu_infer::models::{parse_config, FamilyConfig, ModelConfig};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_config(&text) {
        Ok(c) => {
            let _ = c.kind().name();
            let _ = format!("{c:?}");
            match &c {
                ModelConfig::Bert(b) => {
                    b.check().unwrap();
                    assert!(b.hidden_size <= MAX_DIM && b.vocab_size <= MAX_DIM);
                }
                ModelConfig::Gpt2(g) => {
                    g.check().unwrap();
                    assert!(g.n_embd <= MAX_DIM && g.vocab_size <= MAX_DIM);
                }
                ModelConfig::Vit(v) => {
                    v.check().unwrap();
                    assert!(v.image_size % v.patch_size == 0);
                }
                ModelConfig::Yolo(y) => y.check().unwrap(),
            }
        }
        Err(msg) => assert!(!msg.is_empty()),
    }
});
