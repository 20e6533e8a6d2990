//! f16 weight storage (`LoadOptions::with_dtype(DType::F16)`): every model family stays within
//! 1e-2 of the f32 PyTorch reference on GPU and CPU, and the GPU and CPU agree on the f16 model
//! as tightly as in f32 (both upcast the same half-precision values).

mod common;
use common::{compare, device, record};
use std::path::{Path, PathBuf};
use wgpu_infer::models::bert::Bert;
use wgpu_infer::models::gpt2::{GenerateOptions, Gpt2, Gpt2Config};
use wgpu_infer::models::vit::Vit;
use wgpu_infer::weights::Weights;
use wgpu_infer::{Backend, DType, LoadOptions, Tensor};

/// The tolerance the f16 path promises against f32 results.
const F16_TOL: f64 = 1e-2;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn f16() -> LoadOptions {
    LoadOptions::with_dtype(DType::F16)
}

fn backends() -> [Backend; 2] {
    [Backend::Gpu(device()), Backend::Cpu]
}

#[test]
fn gpt2_f16_logits_match_transformers() {
    let dir = fixtures().join("gpt2/tiny_a");
    let r = Weights::open(dir.join("reference.safetensors")).unwrap();
    let ids = r
        .get_u32("full.input_ids")
        .unwrap()
        .as_u32()
        .unwrap()
        .to_vec();
    let want = r.get("full.logits").unwrap();
    let mut outs = Vec::new();
    for backend in backends() {
        let m = Gpt2::load_with(backend.clone(), &dir, &f16()).unwrap();
        let out = m.forward(&ids, 1, ids.len(), None, false).unwrap();
        let label = format!("gpt2 tiny_a f16 {}", backend.name());
        let (a, _) = compare(&label, &out.logits, &want, F16_TOL, 0.0);
        record("f16 gpt2 vs torch", &label, a, 0.0);
        outs.push(out.logits);
    }
    compare("gpt2 f16 gpu vs cpu", &outs[0], &outs[1], 1e-4, 1e-5);
    common::print_table_for("f16 gpt2 vs torch");
}

#[test]
fn vit_f16_logits_match_transformers() {
    let dir = fixtures().join("vit/tiny_cls");
    let r = Weights::open(dir.join("reference.safetensors")).unwrap();
    let mut outs = Vec::new();
    for backend in backends() {
        let m = Vit::load_with(backend.clone(), &dir, &f16()).unwrap();
        let out = m.forward(&r.get("bus.pixel_values").unwrap()).unwrap();
        let logits = out.logits.unwrap();
        let label = format!("vit tiny_cls f16 {}", backend.name());
        let (a, _) = compare(&label, &logits, &r.get("bus.logits").unwrap(), F16_TOL, 0.0);
        record("f16 vit vs torch", &label, a, 0.0);
        outs.push(logits);
    }
    compare("vit f16 gpu vs cpu", &outs[0], &outs[1], 1e-4, 1e-5);
    common::print_table_for("f16 vit vs torch");
}

/// The real all-MiniLM-L6-v2 with f16 weights against sentence-transformers in f32.
#[test]
fn minilm_f16_embeddings_match_sentence_transformers() {
    let dir = common::minilm_dir();
    let fx = fixtures().join("minilm");
    let r = Weights::open(fx.join("reference.safetensors")).unwrap();
    let sentences = common::minilm_sentences();
    let refs: Vec<&str> = sentences.iter().map(|s| s.as_str()).collect();
    let want = r.get("embeddings").unwrap();
    let wv = want.as_f32().unwrap();
    for backend in backends() {
        let m = Bert::load_with(backend.clone(), &dir, &f16()).unwrap();
        let emb = m.embed(&refs).unwrap();
        let got = Tensor::from_f32(&[emb.len(), 384], emb.concat()).unwrap();
        let label = format!("minilm f16 {}", backend.name());
        let (a, _) = compare(&label, &got, &want, F16_TOL, 0.0);
        record("f16 minilm vs torch", &label, a, 0.0);
        // Normalized embeddings: the cosine similarity is the dot product.
        for (i, e) in emb.iter().enumerate() {
            let cos: f32 = e
                .iter()
                .zip(&wv[i * 384..(i + 1) * 384])
                .map(|(x, y)| x * y)
                .sum();
            assert!(cos > 0.9999, "{label}: sentence {i} cosine {cos}");
        }
    }
    common::print_table_for("f16 minilm vs torch");
}

fn small_source(name: &str, shape: &[usize]) -> wgpu_infer::Result<Tensor> {
    let n: usize = shape.iter().product();
    let mut rng = common::Rng::new(
        name.bytes()
            .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64)),
    );
    let v: Vec<f32> = if name.contains("ln_") && name.ends_with("weight") {
        vec![1.0; n]
    } else {
        (0..n).map(|_| rng.uniform(-0.1, 0.1)).collect()
    };
    Tensor::from_f32(shape, v)
}

/// GPT-2-small-sized: f16 weights take about half the device memory of f32 ones, decode runs,
/// and the logits stay within the f16 tolerance of the f32 model.
#[test]
fn gpt2_small_f16_halves_weight_memory() {
    let cfg = Gpt2Config::small();
    let prompt: Vec<u32> = (0..16).map(|i| (i * 3001) % 50257).collect();
    let opts = GenerateOptions {
        max_new_tokens: 4,
        stop_at_eos: false,
        ..Default::default()
    };
    let mut mem = Vec::new();
    let mut logits = Vec::new();
    for o in [LoadOptions::default(), f16()] {
        let m = Gpt2::from_source(Backend::Gpu(device()), cfg.clone(), &small_source, None, &o)
            .unwrap();
        let g = m.generate_ids(&prompt, &opts, |_| true).unwrap();
        assert_eq!(g.tokens.len(), 4);
        let (total, _) = m.memory_and_dispatches();
        mem.push(total - m.kv_cache_bytes(m.kv_cache_positions(16 + 4)));
        logits.push(m.forward(&prompt, 1, 16, None, false).unwrap().logits);
    }
    let (a, _) = compare(
        "gpt2-small f16 vs f32",
        &logits[1],
        &logits[0],
        F16_TOL,
        0.0,
    );
    record("f16 vs f32", "gpt2-small logits", a, 0.0);
    let ratio = mem[1] as f64 / mem[0] as f64;
    println!(
        "GPT-2-small memory without KV cache: f32 {} MiB, f16 {} MiB ({ratio:.2}x)",
        mem[0] >> 20,
        mem[1] >> 20
    );
    common::print_table_for("f16 vs f32");
    assert!(
        ratio < 0.6,
        "f16 weights should about halve memory: {ratio:.2}x"
    );
}

/// Llama / Qwen2 with f16 weights: logits at every real position equal transformers' with the
/// same f16-rounded weights (tools/fixtures/gen_q8.py, reference_f16.safetensors) within the
/// f32 tolerance, the GPU and the CPU agreeing. Against the f32 model the difference is
/// printed: these fixtures (init range 0.2, logits up to 7) move by 2.7e-2 / 1.4e-2 in
/// transformers itself when its weights are rounded to f16, so the 1e-2 of the other
/// families is not a property of f16 storage here (see the README).
#[test]
fn llama_f16_logits_match_transformers() {
    use wgpu_infer::models::llama::Llama;
    for name in ["tiny_llama", "tiny_qwen2"] {
        let dir = fixtures().join("llama").join(name);
        let r = Weights::open(dir.join("reference.safetensors")).unwrap();
        let rf = Weights::open(dir.join("reference_f16.safetensors")).unwrap();
        let ids = r.get_u32("batch.input_ids").unwrap();
        let (b, s) = (ids.shape()[0], ids.shape()[1]);
        let ids = ids.as_u32().unwrap().to_vec();
        let mask = r.get_u32("batch.attention_mask").unwrap();
        let mask = mask.as_u32().unwrap().to_vec();
        let (want, want_f32) = (
            rf.get("batch.logits").unwrap(),
            r.get("batch.logits").unwrap(),
        );
        let mut outs = Vec::new();
        for backend in backends() {
            let m = Llama::load_with(backend.clone(), &dir, &f16()).unwrap();
            let got = m.forward(&ids, b, s, Some(&mask)).unwrap();
            let label = format!("{name} f16 {}", backend.name());
            let a = common::compare_rows(&label, &got, &want, &mask, 1e-4);
            record("f16 llama vs torch (same f16 weights)", &label, a, 0.0);
            let f = common::compare_rows(&label, &got, &want_f32, &mask, f64::INFINITY);
            println!("{label}: vs f32 transformers {f:.3e}");
            outs.push(got);
        }
        common::compare_rows("llama f16 gpu vs cpu", &outs[0], &outs[1], &mask, 1e-4);
    }
    common::print_table_for("f16 llama vs torch (same f16 weights)");
}
