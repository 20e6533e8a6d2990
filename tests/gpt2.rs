//! GPT-2 vs transformers on the committed fixtures (GPU and CPU), plus generation checks.

mod common;
use common::{compare, device, record};
use std::path::{Path, PathBuf};
use wgpu_infer::models::gpt2::{GenerateOptions, Gpt2, Gpt2Config};
use wgpu_infer::models::sampling::Sampling;
use wgpu_infer::weights::Weights;
use wgpu_infer::{Backend, LoadOptions, Tensor};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gpt2")
        .join(name)
}

fn meta(name: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(name).join("reference.json")).unwrap())
        .unwrap()
}

fn ids(r: &Weights, name: &str) -> Vec<u32> {
    r.get_u32(name).unwrap().as_u32().unwrap().to_vec()
}

fn check(name: &str) {
    let r = Weights::open(fixture(name).join("reference.safetensors")).unwrap();
    let m = meta(name);
    for backend in common::model_backends() {
        let model = Gpt2::load(backend.clone(), fixture(name)).unwrap();
        assert!(model.warnings().is_empty(), "{:?}", model.warnings());
        let label = format!("gpt2 {name} {}", common::label(&backend));
        let n_layer = model.config().n_layer;

        // Every position of the context window, and per-layer hidden states.
        let full = ids(&r, "full.input_ids");
        let out = model.forward(&full, 1, full.len(), None, true).unwrap();
        let (mut worst, _) = compare(
            &format!("{label} full logits"),
            &out.logits,
            &r.get("full.logits").unwrap(),
            1e-4,
            0.0,
        );
        assert_eq!(out.hidden_states.len(), n_layer + 1);
        for (i, h) in out.hidden_states.iter().enumerate() {
            let (a, _) = compare(
                &format!("{label} hidden {i}"),
                h,
                &r.get(&format!("full.hidden_states.{i}")).unwrap(),
                1e-4,
                0.0,
            );
            worst = worst.max(a);
        }

        // Right-padded batch with a mask: compare real positions only.
        let bids = r.get_u32("batch.input_ids").unwrap();
        let (b, s) = (bids.shape()[0], bids.shape()[1]);
        let mask = ids(&r, "batch.attention_mask");
        let out = model
            .forward(bids.as_u32().unwrap(), b, s, Some(&mask), false)
            .unwrap();
        let want = r.get("batch.logits").unwrap();
        let v = *want.shape().last().unwrap();
        let (g, w) = (out.logits.as_f32().unwrap(), want.as_f32().unwrap());
        for row in 0..b {
            let n = mask[row * s..(row + 1) * s]
                .iter()
                .filter(|&&x| x != 0)
                .count();
            let o = row * s * v;
            let gt = Tensor::from_f32(&[n, v], g[o..o + n * v].to_vec()).unwrap();
            let wt = Tensor::from_f32(&[n, v], w[o..o + n * v].to_vec()).unwrap();
            worst = worst.max(compare(&format!("{label} batch row {row}"), &gt, &wt, 1e-4, 0.0).0);
        }
        record("gpt2 logits", &label, worst, 0.0);

        // Greedy generation reproduces transformers token for token (including an EOS stop).
        let prompt = ids(&r, "generate.prompt_ids");
        let tok = model.tokenizer().unwrap();
        let enc = tok.encode(m["prompt"].as_str().unwrap(), false).unwrap();
        assert_eq!(
            enc.get_ids(),
            prompt.as_slice(),
            "{label}: prompt tokenisation"
        );
        let want = ids(&r, "generate.new_ids");
        let mut streamed = Vec::new();
        let mut text = String::new();
        let opts = GenerateOptions {
            max_new_tokens: 32,
            ..Default::default()
        };
        let gen = model
            .generate(m["prompt"].as_str().unwrap(), &opts, |t| {
                streamed.push(t.id);
                text.push_str(t.text);
                true
            })
            .unwrap();
        assert_eq!(gen.tokens, want, "{label}: greedy tokens");
        assert_eq!(streamed, want, "{label}: streamed tokens");
        assert_eq!(gen.stopped_at_eos, want.len() < 32);
        assert_eq!(text, gen.text, "{label}: streamed text adds up");
        assert_eq!(gen.text, m["generated_text"].as_str().unwrap());
    }
}

#[test]
fn tiny_a_tied_with_prefix() {
    check("tiny_a");
    common::print_table_for("gpt2 logits");
}

#[test]
fn tiny_b_untied_no_prefix_stops_at_eos() {
    check("tiny_b");
}

#[test]
fn bad_generation_requests_are_typed_errors() {
    let model = Gpt2::load(Backend::Cpu, fixture("tiny_b")).unwrap();
    let n = model.config().n_positions;
    let long: Vec<u32> = vec![5; n - 3];
    let e = model
        .generate_ids(
            &long,
            &GenerateOptions {
                max_new_tokens: 4,
                ..Default::default()
            },
            |_| true,
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("n_positions") && e.contains(&format!("{}", n - 3)),
        "{e}"
    );
    let bad_p = GenerateOptions {
        sampling: Sampling {
            temperature: 1.0,
            top_p: Some(1.5),
            ..Default::default()
        },
        ..Default::default()
    };
    let e = model
        .generate_ids(&[1, 2], &bad_p, |_| true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("top-p"), "{e}");
    let e = model
        .generate_ids(&[], &GenerateOptions::default(), |_| true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
    let e = model
        .generate_ids(&[100_000], &GenerateOptions::default(), |_| true)
        .unwrap_err()
        .to_string();
    assert!(e.contains("out of range"), "{e}");
}

#[test]
fn sampling_is_seeded_and_matches_across_backends() {
    let opts = GenerateOptions {
        max_new_tokens: 12,
        sampling: Sampling {
            temperature: 0.8,
            top_k: Some(20),
            top_p: Some(0.9),
            seed: 42,
        },
        stop_at_eos: false,
    };
    let run = |b: Backend| {
        Gpt2::load(b, fixture("tiny_a"))
            .unwrap()
            .generate("Tokens flow", &opts, |_| true)
            .unwrap()
            .tokens
    };
    let gpu = run(Backend::Gpu(device()));
    assert_eq!(gpu, run(Backend::Gpu(device())), "same seed, same tokens");
    assert_eq!(
        gpu,
        run(Backend::Cpu),
        "GPU and CPU logits agree closely enough to sample alike"
    );
    let other = Gpt2::load(Backend::Cpu, fixture("tiny_a")).unwrap();
    let mut o2 = opts.clone();
    o2.sampling.seed = 7;
    assert_ne!(
        other.generate("Tokens flow", &o2, |_| true).unwrap().tokens,
        gpu,
        "another seed, another sample"
    );
}

/// A GPT-2-small-sized random model (12 layers, 768 wide, vocabulary 50257, whose tied
/// embedding exceeds one storage binding) generates 32 tokens on the GPU without error, and its
/// first logits match the CPU reference.
#[test]
fn gpt2_small_sized_generation_completes() {
    let cfg = Gpt2Config::small();
    let source = |name: &str, shape: &[usize]| -> wgpu_infer::Result<Tensor> {
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
    };
    let gpu = Gpt2::from_source(
        Backend::Gpu(device()),
        cfg.clone(),
        &source,
        None,
        &LoadOptions::default(),
    )
    .unwrap();
    let prompt: Vec<u32> = (0..16).map(|i| (i * 3001) % 50257).collect();
    let opts = GenerateOptions {
        max_new_tokens: 32,
        stop_at_eos: false,
        ..Default::default()
    };
    let g = gpu.generate_ids(&prompt, &opts, |_| true).unwrap();
    assert_eq!(g.tokens.len(), 32);
    println!(
        "GPT-2-small-sized: prefill 16 tokens {:.2}s, decode {:.1} tokens/s, KV cache {} MiB",
        g.prefill_secs,
        31.0 / g.decode_secs,
        gpu.kv_cache_bytes(gpu.kv_cache_positions(16 + 32)) >> 20
    );
    let cpu = Gpt2::from_source(Backend::Cpu, cfg, &source, None, &LoadOptions::default()).unwrap();
    let a = gpu.forward(&prompt[..4], 1, 4, None, false).unwrap();
    let b = cpu.forward(&prompt[..4], 1, 4, None, false).unwrap();
    compare(
        "gpt2-small logits gpu vs cpu",
        &a.logits,
        &b.logits,
        1e-4,
        1e-5,
    );
}
