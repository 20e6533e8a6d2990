//! BERT vs transformers / sentence-transformers on the committed fixtures (GPU and CPU).

mod common;
use common::compare_masked;
use common::{compare, copy_dir, device, record};
use std::path::{Path, PathBuf};
use wgpu_infer::models::bert::{pool, Bert, BertInput, Pooling};
use wgpu_infer::weights::Weights;
use wgpu_infer::{Backend, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bert")
        .join(name)
}

fn backends() -> Vec<Backend> {
    common::model_backends()
}

fn input(r: &Weights, key: &str) -> BertInput {
    let ids = r.get_u32(&format!("{key}.input_ids")).unwrap();
    let (batch, seq) = (ids.shape()[0], ids.shape()[1]);
    BertInput {
        batch,
        seq,
        input_ids: ids.as_u32().unwrap().to_vec(),
        token_type_ids: r
            .get_u32(&format!("{key}.token_type_ids"))
            .unwrap()
            .as_u32()
            .unwrap()
            .to_vec(),
        attention_mask: r
            .get_u32(&format!("{key}.attention_mask"))
            .unwrap()
            .as_u32()
            .unwrap()
            .to_vec(),
    }
}

fn meta(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name).join("reference.json")).unwrap())
        .unwrap()
}

fn strs(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn check_model(name: &str) {
    let r = Weights::open(fixture(name).join("reference.safetensors")).unwrap();
    let m = meta(name);
    let layers = m["layers"].as_u64().unwrap() as usize;
    for backend in backends() {
        let model = Bert::load(backend.clone(), fixture(name)).unwrap();
        assert!(model.warnings().is_empty(), "{:?}", model.warnings());
        let label = format!("bert {name} {}", common::label(&backend));
        // Tokenisation matches the tokenizers library the fixture used.
        let texts = strs(&m["batch"]);
        let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
        let tok = model.tokenize(&refs).unwrap();
        let want = input(&r, "batch");
        assert_eq!(tok.input_ids, want.input_ids, "{label}: token ids");
        assert_eq!(tok.attention_mask, want.attention_mask);
        let pairs: Vec<Vec<String>> = m["pair"].as_array().unwrap().iter().map(strs).collect();
        let pr: Vec<(&str, &str)> = pairs
            .iter()
            .map(|p| (p[0].as_str(), p[1].as_str()))
            .collect();
        let ptok = model.tokenize_pairs(&pr).unwrap();
        let pwant = input(&r, "pair");
        assert_eq!(ptok.input_ids, pwant.input_ids, "{label}: pair ids");
        assert_eq!(
            ptok.token_type_ids, pwant.token_type_ids,
            "{label}: pair token types"
        );
        let long = strs(&m["trunc"]);
        let lt = model
            .tokenize(&[long[0].as_str(), long[1].as_str()])
            .unwrap();
        assert_eq!(
            lt.seq,
            m["max_length"].as_u64().unwrap() as usize,
            "{label}: truncation"
        );
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
            let pooled = out
                .pooler_output
                .as_ref()
                .expect("fixture models have a pooler");
            worst = worst.max(
                compare(
                    &format!("{label} {key} pooler"),
                    pooled,
                    &r.get(&format!("{key}.pooler_output")).unwrap(),
                    1e-4,
                    0.0,
                )
                .0,
            );
            let mean = pool(&out.last_hidden_state, &inp, Pooling::Mean, false);
            let mean = Tensor::from_f32(&[inp.batch, model.dim()], mean.concat()).unwrap();
            worst = worst.max(
                compare(
                    &format!("{label} {key} mean"),
                    &mean,
                    &r.get(&format!("{key}.mean_pooled")).unwrap(),
                    1e-4,
                    0.0,
                )
                .0,
            );
            record("bert fixtures", &format!("{label} {key}"), worst, 0.0);
        }
        if !m["st"].is_null() {
            let st = strs(&m["st"]);
            let refs: Vec<&str> = st.iter().map(|s| s.as_str()).collect();
            let emb = model.embed(&refs).unwrap();
            let got = Tensor::from_f32(&[emb.len(), model.dim()], emb.concat()).unwrap();
            let (a, _) = compare(
                &format!("{label} sentence-transformers"),
                &got,
                &r.get("st.embeddings").unwrap(),
                2e-5,
                0.0,
            );
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
    let dir = common::minilm_dir();
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm");
    let r = Weights::open(fx.join("reference.safetensors")).unwrap();
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("reference.json")).unwrap()).unwrap();
    let sentences = strs(&m["sentences"]);
    let refs: Vec<&str> = sentences.iter().map(|s| s.as_str()).collect();
    let want = r.get("embeddings").unwrap();
    for backend in backends() {
        let model = Bert::load(backend.clone(), &dir).unwrap();
        assert_eq!(model.max_len(), 256);
        assert!(model.normalize());
        let emb = model.embed(&refs).unwrap();
        let got = Tensor::from_f32(&[emb.len(), 384], emb.concat()).unwrap();
        let (a, _) = compare(
            &format!("minilm {}", common::label(&backend)),
            &got,
            &want,
            2e-5,
            0.0,
        );
        record("minilm", common::label(&backend), a, 0.0);
    }
    common::print_table_for("minilm");
}

/// Over-long texts (300 and 3000 words, 3000 CJK characters without whitespace, irregular
/// whitespace) are cut on characters before tokenizing; the kept token ids must equal
/// sentence-transformers' truncation of the whole text, and the embeddings its embeddings
/// (tools/fixtures/gen_minilm_truncation.py).
#[test]
fn real_minilm_truncates_like_sentence_transformers() {
    let dir = common::minilm_dir();
    let fx = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm");
    let r = Weights::open(fx.join("truncation.safetensors")).unwrap();
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fx.join("truncation.json")).unwrap())
            .unwrap();
    let texts = strs(&m["texts"]);
    let names = strs(&m["names"]);
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    let want = r.get("embeddings").unwrap();
    for backend in backends() {
        let model = Bert::load(backend.clone(), &dir).unwrap();
        for (i, t) in refs.iter().enumerate() {
            let batch = model.tokenize(&[t]).unwrap();
            let ids: Vec<u64> = batch.input_ids.iter().map(|&v| v as u64).collect();
            let want_ids: Vec<u64> = m["input_ids"][i]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert_eq!(
                ids,
                want_ids,
                "{}: token ids of {}",
                common::label(&backend),
                names[i]
            );
        }
        let emb = model.embed(&refs).unwrap();
        let got = Tensor::from_f32(&[emb.len(), 384], emb.concat()).unwrap();
        let (a, _) = compare(
            &format!("minilm truncation {}", common::label(&backend)),
            &got,
            &want,
            2e-5,
            0.0,
        );
        record("minilm truncation", common::label(&backend), a, 0.0);
    }
    common::print_table_for("minilm truncation");
}

/// A scratch copy of a fixture folder that the test may break.
fn scratch_copy(name: &str, tag: &str) -> PathBuf {
    let dst = std::env::temp_dir().join(format!("wgpu-infer-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    copy_dir(&fixture(name), &dst);
    dst
}

fn load_err(dir: &Path) -> String {
    match Bert::load(Backend::Cpu, dir) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_folders_give_clear_errors() {
    let d = scratch_copy("tiny_a", "notok");
    std::fs::remove_file(d.join("tokenizer.json")).unwrap();
    let e = load_err(&d);
    assert!(e.contains("tokenizer.json") && e.contains("missing"), "{e}");

    let d = scratch_copy("tiny_a", "trunc");
    let w = d.join("model.safetensors");
    let bytes = std::fs::read(&w).unwrap();
    std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_err(&d);
    assert!(
        e.contains("model.safetensors") && e.contains("truncated"),
        "{e}"
    );

    let d = scratch_copy("tiny_a", "shape");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
    cfg["intermediate_size"] = serde_json::json!(128);
    std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
    let e = load_err(&d);
    assert!(
        e.contains("encoder.layer.0.intermediate.dense.weight")
            && e.contains("[200, 96]")
            && e.contains("[128, 96]"),
        "{e}"
    );

    let d = scratch_copy("tiny_a", "nojson");
    std::fs::write(d.join("config.json"), "{ not json").unwrap();
    let e = load_err(&d);
    assert!(
        e.contains("config.json") && e.contains("invalid JSON"),
        "{e}"
    );

    let d = scratch_copy("tiny_a", "field");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("config.json")).unwrap()).unwrap();
    cfg.as_object_mut().unwrap().remove("hidden_size");
    std::fs::write(d.join("config.json"), cfg.to_string()).unwrap();
    let e = load_err(&d);
    assert!(e.contains("hidden_size"), "{e}");

    let e = load_err(Path::new("/definitely/not/here"));
    assert!(e.contains("does not exist"), "{e}");

    // Through the CLI: non-zero exit, the message on stderr, nothing on stdout.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-infer"))
        .args(["embed", "--backend", "cpu", "--model"])
        .arg(&d)
        .arg("hello")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error:") && err.contains("hidden_size"),
        "{err}"
    );
}

#[test]
fn empty_and_oversized_inputs() {
    let m = Bert::load(Backend::Cpu, fixture("tiny_c")).unwrap();
    let e = m.embed(&[]).unwrap_err().to_string();
    assert!(e.contains("no texts"), "{e}");
    let e = m.embed(&["fine", "  "]).unwrap_err().to_string();
    assert!(e.contains("text 1 is empty"), "{e}");
    // Long texts are truncated to max_len, never rejected.
    let long = "word ".repeat(500);
    let t = m.tokenize(&[&long]).unwrap();
    assert_eq!(t.seq, m.max_len());
    // Hand-made ids are validated.
    let mut inp = m.tokenize(&["hello"]).unwrap();
    inp.input_ids[1] = 100_000;
    let e = m.forward(&inp, false).unwrap_err().to_string();
    assert!(e.contains("out of range"), "{e}");
}

#[test]
fn embeddings_do_not_depend_on_batch_composition() {
    let m = Bert::load(Backend::Gpu(device()), fixture("tiny_a")).unwrap();
    let texts = [
        "a short one",
        "a considerably longer sentence with quite a few more words in it",
        "mid length text here",
    ];
    let all = m.embed(&texts).unwrap();
    for (i, t) in texts.iter().enumerate() {
        let one = m.embed(&[t]).unwrap();
        let a = Tensor::from_f32(&[one[0].len()], one[0].clone()).unwrap();
        let b = Tensor::from_f32(&[all[i].len()], all[i].clone()).unwrap();
        compare(&format!("text {i} alone vs batched"), &a, &b, 1e-6, 0.0);
    }
}

/// A cross-encoder (`BertForSequenceClassification`, one label, `save_pretrained` layout with
/// the `bert.` prefix and an unprefixed `classifier`) vs transformers: the logits of (query,
/// doc) pairs from the reference token ids and through `rerank` from the texts
/// (tools/fixtures/gen_reranker.py); the CLI prints sigmoid scores best first.
#[test]
fn cross_encoder_logits_match_transformers() {
    let dir = fixture("rerank_a");
    let r = Weights::open(dir.join("reference.safetensors")).unwrap();
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let query = m["query"].as_str().unwrap();
    let docs = strs(&m["docs"]);
    let docs: Vec<&str> = docs.iter().map(|s| s.as_str()).collect();
    let want = r.get("pairs.logits").unwrap();
    for backend in backends() {
        let label = format!("rerank_a {}", common::label(&backend));
        let model = Bert::load(backend.clone(), &dir).unwrap();
        assert!(model.warnings().is_empty(), "{:?}", model.warnings());
        assert_eq!(model.num_labels(), Some(1));
        let pairs: Vec<(&str, &str)> = docs.iter().map(|d| (query, *d)).collect();
        let tok = model.tokenize_pairs(&pairs).unwrap();
        assert_eq!(
            tok.input_ids,
            input(&r, "pairs").input_ids,
            "{label}: token ids"
        );
        let out = model.forward(&input(&r, "pairs"), false).unwrap();
        let (a, _) = compare(&label, out.logits.as_ref().unwrap(), &want, 1e-4, 0.0);
        let scores = model.rerank(query, &docs, false).unwrap();
        let got = Tensor::from_f32(&[docs.len(), 1], scores).unwrap();
        let (b, _) = compare(&format!("{label} rerank"), &got, &want, 1e-4, 0.0);
        record(
            "cross-encoder logits",
            common::label(&backend),
            a.max(b),
            0.0,
        );
    }
    common::print_table_for("cross-encoder logits");
    // The CLI: sigmoid scores, best first, the reference's order.
    let mut args = vec![
        "rerank".to_string(),
        "--model".into(),
        dir.display().to_string(),
        "--query".into(),
        query.into(),
    ];
    args.extend(docs.iter().map(|d| d.to_string()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-infer"))
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ranked: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ranked = ranked.as_array().unwrap();
    let order: Vec<u64> = ranked
        .iter()
        .map(|x| x["index"].as_u64().unwrap())
        .collect();
    let want_order: Vec<u64> = m["order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    assert_eq!(order, want_order);
    for x in ranked {
        let i = x["index"].as_u64().unwrap() as usize;
        let s = x["score"].as_f64().unwrap();
        assert!((s - m["sigmoid"][i].as_f64().unwrap()).abs() <= 1e-4);
    }
    // A model without a one-label head is refused; empty inputs and over-long pairs too.
    let plain = Bert::load(Backend::Cpu, fixture("tiny_a")).unwrap();
    let e = plain.rerank("q", &["d"], false).unwrap_err().to_string();
    assert!(e.contains("not a cross-encoder"), "{e}");
    let model = Bert::load(Backend::Cpu, &dir).unwrap();
    assert!(model.rerank("q", &[], false).is_err());
    assert!(model.rerank(" ", &["d"], false).is_err());
    let long = "paris france capital ".repeat(40);
    let e = model
        .rerank(query, &[long.as_str()], false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("longer than"), "{e}");
    assert_eq!(
        model.rerank(query, &[long.as_str()], true).unwrap().len(),
        1
    );
}
