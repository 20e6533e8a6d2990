//! q8 weight storage (`LoadOptions::with_dtype(DType::Q8)`, `--dtype q8`): symmetric int8 with
//! one f32 scale per 32 weights, dequantized inside the kernels.
//!
//! Two kinds of check. Exactness: on GPU and CPU every model matches PyTorch running the *same*
//! dequantized weights (tools/fixtures/gen_q8.py writes `reference_q8.safetensors`) within the
//! f32 tolerances, so the kernels add no error of their own. Quality: against the f32 PyTorch
//! model, what the issue asks of int8 weights: MiniLM normalized embeddings within 1e-2 and
//! cosine ≥ 0.999, ViT's top-5 unchanged on the bus image, GPT-2's greedy tokens identical. The
//! error against f32 logits is printed (the random-init fixtures amplify it; see the README).

mod common;
use common::{compare, record};
use std::path::{Path, PathBuf};
use wgpu_infer::models::bert::{Bert, BertInput as TokenBatch};
use wgpu_infer::models::gpt2::{GenerateOptions, Gpt2};
use wgpu_infer::models::vit::Vit;
use wgpu_infer::weights::Weights;
use wgpu_infer::{Backend, DType, LoadOptions, Tensor};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn q8() -> LoadOptions {
    LoadOptions::with_dtype(DType::Q8)
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    a.to_f32_vec()
        .iter()
        .zip(b.to_f32_vec())
        .map(|(x, y)| (*x as f64 - y as f64).abs())
        .fold(0.0, f64::max)
}

fn ids(r: &Weights, key: &str) -> Vec<u32> {
    r.get_u32(key).unwrap().as_u32().unwrap().to_vec()
}

#[test]
fn gpt2_q8_matches_transformers_on_the_same_weights_and_keeps_greedy_tokens() {
    let dir = fixtures().join("gpt2/tiny_a");
    let r = Weights::open(dir.join("reference.safetensors")).unwrap();
    let rq = Weights::open(dir.join("reference_q8.safetensors")).unwrap();
    let input = ids(&r, "full.input_ids");
    let prompt = ids(&r, "generate.prompt_ids");
    let f32_tokens = ids(&r, "generate.new_ids");
    assert_eq!(
        ids(&rq, "generate.new_ids"),
        f32_tokens,
        "the fixture: PyTorch's q8 greedy tokens equal its f32 ones"
    );
    for backend in common::model_backends() {
        let label = format!("gpt2 tiny_a q8 {}", common::label(&backend));
        let m = Gpt2::load_with(backend.clone(), &dir, &q8()).unwrap();
        let out = m.forward(&input, 1, input.len(), None, false).unwrap();
        let (a, _) = compare(
            &label,
            &out.logits,
            &rq.get("full.logits").unwrap(),
            1e-4,
            0.0,
        );
        record("q8 gpt2 vs torch (same q8 weights)", &label, a, 0.0);
        let vs_f32 = max_abs(&out.logits, &r.get("full.logits").unwrap());
        println!("{label}: logits vs f32 PyTorch max abs {vs_f32:.3e}");
        let opts = GenerateOptions {
            max_new_tokens: f32_tokens.len(),
            stop_at_eos: false,
            ..Default::default()
        };
        let g = m.generate_ids(&prompt, &opts, |_| true).unwrap();
        assert_eq!(g.tokens, f32_tokens, "{label}: greedy tokens");
    }
    common::print_table_for("q8 gpt2 vs torch (same q8 weights)");
}

#[test]
fn vit_q8_matches_transformers_on_the_same_weights_and_keeps_the_top5() {
    let dir = fixtures().join("vit/tiny_cls");
    let r = Weights::open(dir.join("reference.safetensors")).unwrap();
    let rq = Weights::open(dir.join("reference_q8.safetensors")).unwrap();
    let top5 = |t: &Tensor| {
        let v = t.to_f32_vec();
        let mut idx: Vec<usize> = (0..v.len()).collect();
        idx.sort_by(|&a, &b| v[b].total_cmp(&v[a]));
        idx.truncate(5);
        idx
    };
    for backend in common::model_backends() {
        let m = Vit::load_with(backend.clone(), &dir, &q8()).unwrap();
        for key in ["bus", "random"] {
            let label = format!("vit tiny_cls {key} q8 {}", common::label(&backend));
            let out = m
                .forward(&r.get(&format!("{key}.pixel_values")).unwrap())
                .unwrap();
            let logits = out.logits.unwrap();
            let want = rq.get(&format!("{key}.logits")).unwrap();
            let (a, _) = compare(&label, &logits, &want, 1e-4, 0.0);
            record("q8 vit vs torch (same q8 weights)", &label, a, 0.0);
            let f32_logits = r.get(&format!("{key}.logits")).unwrap();
            println!(
                "{label}: logits vs f32 PyTorch max abs {:.3e}",
                max_abs(&logits, &f32_logits)
            );
            if key == "bus" {
                assert_eq!(top5(&logits), top5(&f32_logits), "{label}: top-5");
            }
        }
    }
    common::print_table_for("q8 vit vs torch (same q8 weights)");
}

#[test]
fn bert_q8_matches_transformers_on_the_same_weights() {
    let dir = fixtures().join("bert/tiny_a");
    let r = Weights::open(dir.join("reference.safetensors")).unwrap();
    let rq = Weights::open(dir.join("reference_q8.safetensors")).unwrap();
    for backend in common::model_backends() {
        let m = Bert::load_with(backend.clone(), &dir, &q8()).unwrap();
        for key in ["batch", "pair"] {
            let label = format!("bert tiny_a {key} q8 {}", common::label(&backend));
            let inp = TokenBatch {
                input_ids: ids(&r, &format!("{key}.input_ids")),
                token_type_ids: ids(&r, &format!("{key}.token_type_ids")),
                attention_mask: ids(&r, &format!("{key}.attention_mask")),
                batch: r.shape(&format!("{key}.input_ids")).unwrap()[0],
                seq: r.shape(&format!("{key}.input_ids")).unwrap()[1],
            };
            let out = m.forward(&inp, false).unwrap();
            // Real (unpadded) positions only: padding rows are not part of the result.
            let h = 96;
            let got = out.last_hidden_state.to_f32_vec();
            let want = rq
                .get(&format!("{key}.last_hidden_state"))
                .unwrap()
                .to_f32_vec();
            let mut worst = 0.0f64;
            for b in 0..inp.batch {
                let n = inp.attention_mask[b * inp.seq..(b + 1) * inp.seq]
                    .iter()
                    .filter(|&&x| x == 1)
                    .count();
                let s = b * inp.seq * h;
                let g = Tensor::from_f32(&[n, h], got[s..s + n * h].to_vec()).unwrap();
                let w = Tensor::from_f32(&[n, h], want[s..s + n * h].to_vec()).unwrap();
                worst = worst.max(compare(&format!("{label} row {b}"), &g, &w, 1e-4, 0.0).0);
            }
            record("q8 bert vs torch (same q8 weights)", &label, worst, 0.0);
            let (a, _) = compare(
                &format!("{label} pooler"),
                &out.pooler_output.unwrap(),
                &rq.get(&format!("{key}.pooler_output")).unwrap(),
                1e-4,
                0.0,
            );
            record("q8 bert vs torch (same q8 weights)", &label, a, 0.0);
        }
    }
    common::print_table_for("q8 bert vs torch (same q8 weights)");
}

/// The real all-MiniLM-L6-v2 with q8 weights: within 1e-2 (cosine ≥ 0.999) of
/// sentence-transformers in f32, equal to it on the same q8 weights, and about a quarter of the
/// f32 model's device memory.
#[test]
fn minilm_q8_embeddings_match_sentence_transformers() {
    let dir = common::minilm_dir();
    let fx = fixtures().join("minilm");
    let r = Weights::open(fx.join("reference.safetensors")).unwrap();
    let rq = Weights::open(fx.join("reference_q8.safetensors")).unwrap();
    let sentences = common::minilm_sentences();
    let refs: Vec<&str> = sentences.iter().map(|s| s.as_str()).collect();
    let want = r.get("embeddings").unwrap();
    for backend in common::model_backends() {
        let label = format!("minilm q8 {}", common::label(&backend));
        let m = Bert::load_with(backend.clone(), &dir, &q8()).unwrap();
        let emb = m.embed(&refs).unwrap();
        let got = Tensor::from_f32(&[emb.len(), 384], emb.concat()).unwrap();
        let (a, _) = compare(&label, &got, &want, 1e-2, 0.0);
        record("q8 minilm vs f32 sentence-transformers", &label, a, 0.0);
        let wv = want.to_f32_vec();
        for (i, e) in emb.iter().enumerate() {
            let w = &wv[i * 384..(i + 1) * 384];
            let dot: f32 = e.iter().zip(w).map(|(x, y)| x * y).sum();
            let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
            let cos = dot / (norm(e) * norm(w));
            assert!(cos >= 0.999, "{label}: sentence {i}: cosine {cos} < 0.999");
        }
        let (b, _) = compare(
            &format!("{label} (same q8 weights)"),
            &got,
            &rq.get("embeddings").unwrap(),
            2e-5,
            0.0,
        );
        record("q8 minilm vs torch (same q8 weights)", &label, b, 0.0);
    }
    common::print_table_for("q8 minilm vs f32 sentence-transformers");
    common::print_table_for("q8 minilm vs torch (same q8 weights)");

    // Device memory of the embedding plan (weights + activations) for one short sentence.
    let dev = Backend::Gpu(common::device());
    let mem = |opts: &LoadOptions| {
        let m = Bert::load_with(dev.clone(), &dir, opts).unwrap();
        m.embed(&["a short sentence"]).unwrap();
        m.memory_and_dispatches().0
    };
    let (f, q) = (mem(&LoadOptions::default()), mem(&q8()));
    let ratio = q as f64 / f as f64;
    println!(
        "minilm device memory: f32 {:.1} MiB, q8 {:.1} MiB ({:.1} %)",
        f as f64 / 1048576.0,
        q as f64 / 1048576.0,
        100.0 * ratio
    );
    assert!(ratio < 0.35, "q8 memory is {:.1} % of f32", 100.0 * ratio);
}

/// Llama / Qwen2 with q8 weights: logits equal transformers' on the same dequantized weights,
/// and the greedy tokens are the ones transformers generates with them.
#[test]
fn llama_q8_matches_transformers_on_the_same_weights() {
    use wgpu_infer::models::llama::Llama;
    for name in ["tiny_llama", "tiny_qwen2"] {
        let dir = fixtures().join("llama").join(name);
        let r = Weights::open(dir.join("reference.safetensors")).unwrap();
        let rq = Weights::open(dir.join("reference_q8.safetensors")).unwrap();
        let input = r.get_u32("batch.input_ids").unwrap();
        let (b, s) = (input.shape()[0], input.shape()[1]);
        let input = input.as_u32().unwrap().to_vec();
        let mask = ids(&r, "batch.attention_mask");
        let prompt = ids(&r, "greedy.prompt");
        let want_tokens = ids(&rq, "greedy.tokens");
        for backend in common::model_backends() {
            let label = format!("{name} q8 {}", common::label(&backend));
            let m = Llama::load_with(backend.clone(), &dir, &q8()).unwrap();
            let got = m.forward(&input, b, s, Some(&mask)).unwrap();
            let want = rq.get("batch.logits").unwrap();
            let a = common::compare_rows(&label, &got, &want, &mask, 1e-4);
            record("q8 llama vs torch (same q8 weights)", &label, a, 0.0);
            let vs_f32 = max_abs(&got, &r.get("batch.logits").unwrap());
            println!("{label}: logits vs f32 PyTorch max abs {vs_f32:.3e} (padded rows included)");
            let opts = GenerateOptions {
                max_new_tokens: want_tokens.len(),
                stop_at_eos: false,
                ..Default::default()
            };
            let g = m.generate_ids(&prompt, &opts, |_| true).unwrap();
            let g2 = wgpu_infer::models::CausalLm::from(m)
                .generate_ids(&prompt, &opts, |_| true)
                .unwrap();
            assert_eq!(g.tokens, want_tokens, "{label}: greedy tokens");
            assert_eq!(g2.tokens, want_tokens, "{label}: greedy tokens");
        }
    }
    common::print_table_for("q8 llama vs torch (same q8 weights)");
}
