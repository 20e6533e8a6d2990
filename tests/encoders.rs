//! BERT's relatives through the same loader and encoder: RoBERTa, XLM-RoBERTa (a cross-encoder),
//! DistilBERT and MPNet (a sentence-transformers folder and a cross-encoder), vs transformers and sentence-transformers on tests/fixtures/encoders
//! (tools/fixtures/gen_encoders.py), on the GPU and the CPU reference.

mod common;
use common::compare_masked;
use common::{compare, record};
use std::path::{Path, PathBuf};
use wgpu_infer::models::bert::{Bert, BertInput};
use wgpu_infer::models::bert_arch::mpnet_bucket;
use wgpu_infer::models::{detect_model_type, parse_config, ModelKind};
use wgpu_infer::weights::Weights;
use wgpu_infer::Tensor;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/encoders")
        .join(name)
}

fn refs(name: &str) -> Weights {
    Weights::open(fixture(name).join("reference.safetensors")).unwrap()
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

/// The reference's padded batch (no token types: zeros).
fn input(r: &Weights, key: &str) -> BertInput {
    let ids = r.get_u32(&format!("{key}.input_ids")).unwrap();
    let (batch, seq) = (ids.shape()[0], ids.shape()[1]);
    let mask = r.get_u32(&format!("{key}.attention_mask")).unwrap();
    BertInput {
        batch,
        seq,
        input_ids: ids.as_u32().unwrap().to_vec(),
        token_type_ids: vec![0; batch * seq],
        attention_mask: mask.as_u32().unwrap().to_vec(),
    }
}

fn embeddings(label: &str, m: &Bert, texts: &[String], want: &Tensor) -> f64 {
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let emb = m.embed(&texts).unwrap();
    let got = Tensor::from_f32(&[emb.len(), emb[0].len()], emb.concat()).unwrap();
    compare(label, &got, want, 1e-4, 0.0).0
}

#[test]
fn roberta_matches_transformers_and_sentence_transformers() {
    let r = refs("roberta_st");
    let texts = strs(&meta("roberta_st")["texts"]);
    let inp = input(&r, "batch");
    for backend in common::model_backends() {
        let label = common::label(&backend);
        let m = Bert::load(backend.clone(), fixture("roberta_st")).unwrap();
        assert_eq!(m.max_len(), 64, "66 positions less padding_idx + 1");
        assert!(m.normalize());
        let out = m.forward(&inp, false).unwrap();
        let want = r.get("batch.last_hidden_state").unwrap();
        let a = compare_masked(
            &format!("roberta {label}"),
            &out.last_hidden_state,
            &want,
            &inp,
        );
        let p = compare(
            &format!("roberta pooler {label}"),
            out.pooler_output.as_ref().unwrap(),
            &r.get("batch.pooler_output").unwrap(),
            1e-4,
            0.0,
        )
        .0;
        let st = embeddings(
            &format!("roberta st {label}"),
            &m,
            &texts,
            &r.get("st.embeddings").unwrap(),
        );
        record("roberta last_hidden_state", label, a, 0.0);
        record("roberta pooler_output", label, p, 0.0);
        record("roberta sentence-transformers", label, st, 0.0);
    }
    for k in [
        "last_hidden_state",
        "pooler_output",
        "sentence-transformers",
    ] {
        common::print_table_for(&format!("roberta {k}"));
    }
}

#[test]
fn xlm_roberta_cross_encoder_matches_transformers() {
    let r = refs("xlmr_rerank");
    let m_json = meta("xlmr_rerank");
    let docs = strs(&m_json["docs"]);
    let query = m_json["query"].as_str().unwrap();
    let inp = input(&r, "pairs");
    for backend in common::model_backends() {
        let label = common::label(&backend);
        let m = Bert::load(backend.clone(), fixture("xlmr_rerank")).unwrap();
        assert_eq!(m.num_labels(), Some(1));
        let out = m.forward(&inp, false).unwrap();
        let h = compare_masked(
            &format!("xlmr {label}"),
            &out.last_hidden_state,
            &r.get("pairs.last_hidden_state").unwrap(),
            &inp,
        );
        let want = r.get("pairs.logits").unwrap();
        let l = compare(
            &format!("xlmr logits {label}"),
            out.logits.as_ref().unwrap(),
            &want,
            1e-4,
            0.0,
        )
        .0;
        // Through the tokenizer: the same pairs, the same logits.
        let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let scores = m.rerank(query, &refs, false).unwrap();
        let got = Tensor::from_f32(&[scores.len(), 1], scores).unwrap();
        let s = compare(&format!("xlmr rerank {label}"), &got, &want, 1e-4, 0.0).0;
        record("xlm-roberta last_hidden_state", label, h, 0.0);
        record("xlm-roberta logits", label, l.max(s), 0.0);
    }
    for k in ["last_hidden_state", "logits"] {
        common::print_table_for(&format!("xlm-roberta {k}"));
    }
}

#[test]
fn distilbert_matches_transformers_and_sentence_transformers() {
    let r = refs("distilbert_st");
    let texts = strs(&meta("distilbert_st")["texts"]);
    let inp = input(&r, "batch");
    for backend in common::model_backends() {
        let label = common::label(&backend);
        let m = Bert::load(backend.clone(), fixture("distilbert_st")).unwrap();
        assert_eq!(m.num_labels(), Some(3));
        assert!(!m.normalize());
        let out = m.forward(&inp, false).unwrap();
        assert!(out.pooler_output.is_none(), "DistilBERT has no pooler");
        let h = compare_masked(
            &format!("distilbert {label}"),
            &out.last_hidden_state,
            &r.get("batch.last_hidden_state").unwrap(),
            &inp,
        );
        let l = compare(
            &format!("distilbert logits {label}"),
            out.logits.as_ref().unwrap(),
            &r.get("batch.logits").unwrap(),
            1e-4,
            0.0,
        )
        .0;
        let st = embeddings(
            &format!("distilbert st {label}"),
            &m,
            &texts,
            &r.get("st.embeddings").unwrap(),
        );
        record("distilbert last_hidden_state", label, h, 0.0);
        record("distilbert logits", label, l, 0.0);
        record("distilbert sentence-transformers", label, st, 0.0);
    }
    for k in ["last_hidden_state", "logits", "sentence-transformers"] {
        common::print_table_for(&format!("distilbert {k}"));
    }
}

#[test]
fn mpnet_buckets_match_torch() {
    let r = refs("mpnet_st");
    let want = r.get_u32("buckets.bucket").unwrap();
    let want = want.as_u32().unwrap();
    assert_eq!(want.len(), 1201, "relative positions -600..=600");
    let got: Vec<u32> = (-600..=600).map(mpnet_bucket).collect();
    assert_eq!(got, want);
}

#[test]
fn mpnet_matches_transformers_and_sentence_transformers() {
    let r = refs("mpnet_st");
    let texts = strs(&meta("mpnet_st")["texts"]);
    let inp = input(&r, "batch");
    assert!(
        inp.seq > 128,
        "the fixture reaches past the bias's max distance"
    );
    for backend in common::model_backends() {
        let label = common::label(&backend);
        let m = Bert::load(backend.clone(), fixture("mpnet_st")).unwrap();
        assert_eq!(m.max_len(), 256, "258 positions less padding_idx + 1");
        assert!(m.normalize());
        let out = m.forward(&inp, false).unwrap();
        let a = compare_masked(
            &format!("mpnet {label}"),
            &out.last_hidden_state,
            &r.get("batch.last_hidden_state").unwrap(),
            &inp,
        );
        let p = compare(
            &format!("mpnet pooler {label}"),
            out.pooler_output.as_ref().unwrap(),
            &r.get("batch.pooler_output").unwrap(),
            1e-4,
            0.0,
        )
        .0;
        let st = embeddings(
            &format!("mpnet st {label}"),
            &m,
            &texts,
            &r.get("st.embeddings").unwrap(),
        );
        record("mpnet last_hidden_state", label, a, 0.0);
        record("mpnet pooler_output", label, p, 0.0);
        record("mpnet sentence-transformers", label, st, 0.0);
    }
    for k in [
        "last_hidden_state",
        "pooler_output",
        "sentence-transformers",
    ] {
        common::print_table_for(&format!("mpnet {k}"));
    }
}

#[test]
fn mpnet_cross_encoder_matches_transformers() {
    let r = refs("mpnet_rerank");
    let m_json = meta("mpnet_rerank");
    let docs = strs(&m_json["docs"]);
    let query = m_json["query"].as_str().unwrap();
    let inp = input(&r, "pairs");
    for backend in common::model_backends() {
        let label = common::label(&backend);
        let m = Bert::load(backend.clone(), fixture("mpnet_rerank")).unwrap();
        assert_eq!(m.num_labels(), Some(1));
        let out = m.forward(&inp, false).unwrap();
        let h = compare_masked(
            &format!("mpnet rerank {label}"),
            &out.last_hidden_state,
            &r.get("pairs.last_hidden_state").unwrap(),
            &inp,
        );
        let want = r.get("pairs.logits").unwrap();
        let l = compare(
            &format!("mpnet logits {label}"),
            out.logits.as_ref().unwrap(),
            &want,
            1e-4,
            0.0,
        )
        .0;
        let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let scores = m.rerank(query, &refs, false).unwrap();
        let got = Tensor::from_f32(&[scores.len(), 1], scores).unwrap();
        let s = compare(&format!("mpnet rerank {label}"), &got, &want, 1e-4, 0.0).0;
        record("mpnet cross-encoder last_hidden_state", label, h, 0.0);
        record("mpnet cross-encoder logits", label, l.max(s), 0.0);
    }
    for k in ["last_hidden_state", "logits"] {
        common::print_table_for(&format!("mpnet cross-encoder {k}"));
    }
}

#[test]
fn configs_are_detected_by_model_type() {
    for (name, mt) in [
        ("roberta_st", "roberta"),
        ("xlmr_rerank", "xlm-roberta"),
        ("distilbert_st", "distilbert"),
        ("mpnet_st", "mpnet"),
        ("mpnet_rerank", "mpnet"),
    ] {
        let text = std::fs::read_to_string(fixture(name).join("config.json")).unwrap();
        assert!(
            text.contains(&format!("\"model_type\": \"{mt}\"")),
            "{name}"
        );
        let c = parse_config(&text).unwrap();
        assert_eq!(c.kind(), ModelKind::Bert, "{name}");
    }
    // From the tensor names alone (what `inspect` says of a bare .safetensors file).
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (file, want) in [
        ("encoders/distilbert_st", "distilbert"),
        ("encoders/mpnet_st", "mpnet"),
        ("encoders/roberta_st", "bert"), // RoBERTa's names are BERT's
        ("deit/tiny_teacher", "deit"),
        ("dinov2/tiny_cls", "dinov2"),
        ("dinov2/tiny_registers", "dinov2_with_registers"),
        ("vit/tiny_cls", "vit"),
    ] {
        let w = Weights::open(root.join(file).join("model.safetensors")).unwrap();
        assert_eq!(detect_model_type(&w), Some(want), "{file}");
    }
    // MPNet's attention reads 32 buckets whatever the config says: a smaller table is refused.
    let text = std::fs::read_to_string(fixture("mpnet_st").join("config.json")).unwrap();
    let small = text.replace(
        "\"relative_attention_num_buckets\": 32",
        "\"relative_attention_num_buckets\": 16",
    );
    assert_ne!(small, text);
    let e = parse_config(&small).unwrap_err();
    assert!(
        e.contains("relative_attention_num_buckets 16 is below the 32"),
        "{e}"
    );
    let e = parse_config(r#"{"model_type": "t5"}"#).unwrap_err();
    assert!(
        e.contains(
            "bert, roberta, xlm-roberta, distilbert, mpnet, gpt2, vit, deit, dinov2, dinov2_with_registers, yolov8"
        ),
        "{e}"
    );
}
