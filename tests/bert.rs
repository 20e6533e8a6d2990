//! BERT vs transformers / sentence-transformers on the committed fixtures (GPU and CPU).

mod common;
use common::{compare, device, record};
use std::path::{Path, PathBuf};
use wgpu_infer::models::bert::{pool, Bert, BertInput, Pooling};
use wgpu_infer::weights::Weights;
use wgpu_infer::{Backend, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bert").join(name)
}

fn backends() -> Vec<Backend> {
    vec![Backend::Gpu(device()), Backend::Cpu]
}

fn input(r: &Weights, key: &str) -> BertInput {
    let ids = r.get_u32(&format!("{key}.input_ids")).unwrap();
    let (batch, seq) = (ids.shape()[0], ids.shape()[1]);
    BertInput {
        batch,
        seq,
        input_ids: ids.as_u32().unwrap().to_vec(),
        token_type_ids: r.get_u32(&format!("{key}.token_type_ids")).unwrap().as_u32().unwrap().to_vec(),
        attention_mask: r.get_u32(&format!("{key}.attention_mask")).unwrap().as_u32().unwrap().to_vec(),
    }
}

fn meta(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name).join("reference.json")).unwrap()).unwrap()
}

fn strs(v: &serde_json::Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

/// Compares only the real (unpadded) token rows of [batch, seq, hidden] tensors.
fn compare_masked(label: &str, got: &Tensor, want: &Tensor, inp: &BertInput) -> f64 {
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

fn check_model(name: &str) {
    let r = Weights::open(fixture(name).join("reference.safetensors")).unwrap();
    let m = meta(name);
    let layers = m["layers"].as_u64().unwrap() as usize;
    for backend in backends() {
        let model = Bert::load(backend.clone(), fixture(name)).unwrap();
        assert!(model.warnings().is_empty(), "{:?}", model.warnings());
        let label = format!("bert {name} {}", backend.name());
        // Tokenisation matches the tokenizers library the fixture used.
        let texts = strs(&m["batch"]);
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let tok = model.tokenize(&refs).unwrap();
        let want = input(&r, "batch");
        assert_eq!(tok.input_ids, want.input_ids, "{label}: token ids");
        assert_eq!(tok.attention_mask, want.attention_mask);
        let pairs: Vec<Vec<String>> = m["pair"].as_array().unwrap().iter().map(strs).collect();
        let pr: Vec<(&str, &str)> = pairs.iter().map(|p| (p[0].as_str(), p[1].as_str())).collect();
        let ptok = model.tokenize_pairs(&pr).unwrap();
        let pwant = input(&r, "pair");
        assert_eq!(ptok.input_ids, pwant.input_ids, "{label}: pair ids");
        assert_eq!(ptok.token_type_ids, pwant.token_type_ids, "{label}: pair token types");
        let long = strs(&m["trunc"]);
        let lt = model.tokenize(&[long[0].as_str(), long[1].as_str()]).unwrap();
        assert_eq!(lt.seq, m["max_length"].as_u64().unwrap() as usize, "{label}: truncation");
        assert_eq!(lt.input_ids, input(&r, "trunc").input_ids);

        for key in ["batch", "pair", "trunc"] {
            let inp = input(&r, key);
            let out = model.forward(&inp, true).unwrap();
            let mut worst = compare_masked(
                &format!("{label} {key} last_hidden_state"),
                &out.last_hidden_state,
                &r.get(&format!("{key}.last_hidden_state")).unwrap(),
                &inp,
            );
            assert_eq!(out.hidden_states.len(), layers + 1);
            for (i, hs) in out.hidden_states.iter().enumerate() {
                worst = worst.max(compare_masked(
                    &format!("{label} {key} hidden_states.{i}"),
                    hs,
                    &r.get(&format!("{key}.hidden_states.{i}")).unwrap(),
                    &inp,
                ));
            }
            let pooled = out.pooler_output.as_ref().expect("fixture models have a pooler");
            worst = worst.max(compare(&format!("{label} {key} pooler"), pooled, &r.get(&format!("{key}.pooler_output")).unwrap(), 1e-4, 0.0).0);
            let mean = pool(&out.last_hidden_state, &inp, Pooling::Mean, false);
            let mean = Tensor::from_f32(&[inp.batch, model.dim()], mean.concat()).unwrap();
            worst = worst.max(compare(&format!("{label} {key} mean"), &mean, &r.get(&format!("{key}.mean_pooled")).unwrap(), 1e-4, 0.0).0);
            record("bert fixtures", &format!("{label} {key}"), worst, 0.0);
        }
        if !m["st"].is_null() {
            let st = strs(&m["st"]);
            let refs: Vec<&str> = st.iter().map(|s| s.as_str()).collect();
            let emb = model.embed(&refs).unwrap();
            let got = Tensor::from_f32(&[emb.len(), model.dim()], emb.concat()).unwrap();
            let (a, _) = compare(&format!("{label} sentence-transformers"), &got, &r.get("st.embeddings").unwrap(), 2e-5, 0.0);
            record("bert st embed", &label, a, 0.0);
        }
    }
}

#[test]
fn tiny_a_sentence_transformers_folder() {
    check_model("tiny_a");
    common::print_table_for("bert fixtures");
    common::print_table_for("bert st embed");
}

#[test]
fn tiny_b_f16_weights_with_bert_prefix() {
    check_model("tiny_b");
}

#[test]
fn tiny_c_legacy_layernorm_names() {
    check_model("tiny_c");
}

/// The real all-MiniLM-L6-v2 vs sentence-transformers. Fetch it with tools/fetch_minilm.sh.
#[test]
fn real_minilm_matches_sentence_transformers() {
    let dir = std::env::var_os("WGPU_INFER_MINILM").map(PathBuf::from).unwrap_or_else(|| {
        let base = std::env::var_os("WGPU_INFER_MODELS").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/wgpu-infer/models")
        });
        base.join("all-MiniLM-L6-v2")
    });
    assert!(
        dir.join("model.safetensors").is_file(),
        "all-MiniLM-L6-v2 not found at {}: run `bash tools/fetch_minilm.sh` (or set WGPU_INFER_MINILM)",
        dir.display()
    );
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm");
    let r = Weights::open(fx.join("reference.safetensors")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fx.join("reference.json")).unwrap()).unwrap();
    let sentences = strs(&m["sentences"]);
    let refs: Vec<&str> = sentences.iter().map(|s| s.as_str()).collect();
    let want = r.get("embeddings").unwrap();
    for backend in backends() {
        let model = Bert::load(backend.clone(), &dir).unwrap();
        assert_eq!(model.max_len(), 256);
        assert!(model.normalize());
        let emb = model.embed(&refs).unwrap();
        let got = Tensor::from_f32(&[emb.len(), 384], emb.concat()).unwrap();
        let (a, _) = compare(&format!("minilm {}", backend.name()), &got, &want, 2e-5, 0.0);
        record("minilm", backend.name(), a, 0.0);
    }
    common::print_table_for("minilm");
}
