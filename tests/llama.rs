//! Llama-architecture decoders vs transformers on tests/fixtures/llama
//! (tools/fixtures/gen_llama.py): `LlamaForCausalLM` (grouped-query attention, llama3 RoPE,
//! untied head) and `Qwen2ForCausalLM` (multi-query attention, q/k/v biases, tied head),
//! logits at every real position of a padded batch, on the GPU, the portable GPU kernels and
//! the CPU reference.

mod common;
use common::{compare, record};
use std::path::{Path, PathBuf};
use wgpu_infer::models::llama::Llama;
use wgpu_infer::models::{detect_model_type, parse_config};
use wgpu_infer::weights::Weights;
use wgpu_infer::Tensor;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/llama")
        .join(name)
}

fn logits_case(name: &str) {
    let r = Weights::open(fixture(name).join("reference.safetensors")).unwrap();
    let ids = r.get_u32("batch.input_ids").unwrap();
    let (b, s) = (ids.shape()[0], ids.shape()[1]);
    let ids = ids.as_u32().unwrap().to_vec();
    let mask = r
        .get_u32("batch.attention_mask")
        .unwrap()
        .as_u32()
        .unwrap()
        .to_vec();
    let want = r.get("batch.logits").unwrap();
    for backend in common::model_backends() {
        let label = common::label(&backend);
        let m = Llama::load(backend.clone(), fixture(name)).unwrap();
        assert!(m.warnings().is_empty(), "{:?}", m.warnings());
        let got = m.forward(&ids, b, s, Some(&mask)).unwrap();
        // Real positions only (padded rows' queries are garbage in transformers too).
        let worst =
            common::compare_rows(&format!("{name} logits {label}"), &got, &want, &mask, 1e-4);
        record(&format!("{name} logits"), label, worst, 0.0);
    }
    common::print_table_for(&format!("{name} logits"));
}

#[test]
fn llama_logits_match_transformers() {
    logits_case("tiny_llama");
}

#[test]
fn qwen2_logits_match_transformers() {
    logits_case("tiny_qwen2");
}

#[test]
fn llama_configs_are_detected_and_checked() {
    for (name, mt) in [("tiny_llama", "llama"), ("tiny_qwen2", "qwen2")] {
        let text = std::fs::read_to_string(fixture(name).join("config.json")).unwrap();
        assert_eq!(parse_config(&text).unwrap().model_type(), mt);
        let w = Weights::open(fixture(name).join("model.safetensors")).unwrap();
        assert_eq!(detect_model_type(&w), Some(mt), "{name}");
    }
    let text = std::fs::read_to_string(fixture("tiny_llama").join("config.json")).unwrap();
    let bad = text.replace("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3");
    assert_ne!(bad, text);
    let e = parse_config(&bad).unwrap_err();
    assert!(
        e.contains("num_attention_heads 4 is not divisible by num_key_value_heads 3"),
        "{e}"
    );
    let bad = text.replace("\"rope_type\": \"llama3\"", "\"rope_type\": \"yarn\"");
    let e = parse_config(&bad).unwrap_err();
    assert!(e.contains("'yarn' is not supported"), "{e}");
}

/// Greedy generation over the KV cache: the 24 tokens transformers' `generate` produces, and
/// the logits of the whole generated sequence (one forward) as transformers computes them.
fn greedy_case(name: &str) {
    use wgpu_infer::models::llama::GenerateOptions;
    let r = Weights::open(fixture(name).join("reference.safetensors")).unwrap();
    let prompt = r
        .get_u32("greedy.prompt")
        .unwrap()
        .as_u32()
        .unwrap()
        .to_vec();
    let want = r
        .get_u32("greedy.tokens")
        .unwrap()
        .as_u32()
        .unwrap()
        .to_vec();
    let full = r.get("greedy.logits").unwrap();
    for backend in common::model_backends() {
        let label = common::label(&backend);
        let m = Llama::load(backend.clone(), fixture(name)).unwrap();
        let opts = GenerateOptions {
            max_new_tokens: 24,
            stop_at_eos: false,
            ..Default::default()
        };
        let mut steps: Vec<Vec<f32>> = Vec::new();
        let g = m
            .generate_ids(&prompt, &opts, |t| {
                steps.push(t.logits.to_vec());
                true
            })
            .unwrap();
        assert_eq!(g.tokens, want, "{name} {label}: greedy tokens");
        let seq: Vec<u32> = prompt.iter().chain(&g.tokens).copied().collect();
        let got = m.forward(&seq, 1, seq.len(), None).unwrap();
        // KV-cache decode = full recompute: each step's logits are the full forward's at the
        // step's position.
        let v = *got.shape().last().unwrap();
        let all = got.as_f32().unwrap();
        let mut worst = 0.0f64;
        for (i, step) in steps.iter().enumerate() {
            let row = (prompt.len() - 1 + i) * v;
            let full = Tensor::from_f32(&[v], all[row..row + v].to_vec()).unwrap();
            let cached = Tensor::from_f32(&[v], step.clone()).unwrap();
            worst = worst.max(
                compare(
                    &format!("{name} step {i} {label}"),
                    &cached,
                    &full,
                    1e-4,
                    0.0,
                )
                .0,
            );
        }
        record(
            &format!("{name} KV-cache steps vs full recompute"),
            label,
            worst,
            0.0,
        );
        let d = compare(
            &format!("{name} generated logits {label}"),
            &got,
            &full,
            1e-4,
            0.0,
        )
        .0;
        record(&format!("{name} generated-sequence logits"), label, d, 0.0);
        // A second generation reuses the idle cache and gives the same tokens.
        let again = m.generate_ids(&prompt, &opts, |_| true).unwrap();
        assert_eq!(again.tokens, want, "{name} {label}: reused cache");
    }
    common::print_table_for(&format!("{name} generated-sequence logits"));
    common::print_table_for(&format!("{name} KV-cache steps vs full recompute"));
}

/// Seeded sampling (temperature, top-k, top-p) is reproducible and the same on every backend.
#[test]
fn llama_sampling_is_seeded_and_matches_across_backends() {
    use wgpu_infer::models::llama::GenerateOptions;
    use wgpu_infer::models::sampling::Sampling;
    let opts = GenerateOptions {
        max_new_tokens: 16,
        stop_at_eos: false,
        sampling: Sampling {
            temperature: 0.9,
            top_k: Some(40),
            top_p: Some(0.95),
            seed: 7,
        },
    };
    let prompt = [5u32, 17, 42, 99, 3];
    let mut runs = Vec::new();
    for backend in common::model_backends() {
        let m = Llama::load(backend, fixture("tiny_llama")).unwrap();
        let a = m.generate_ids(&prompt, &opts, |_| true).unwrap().tokens;
        let b = m.generate_ids(&prompt, &opts, |_| true).unwrap().tokens;
        assert_eq!(a, b, "same seed, same tokens");
        runs.push(a);
    }
    assert!(runs.windows(2).all(|w| w[0] == w[1]), "{runs:?}");
    let greedy = Llama::load(common::model_backends()[0].clone(), fixture("tiny_llama"))
        .unwrap()
        .generate_ids(
            &prompt,
            &GenerateOptions {
                sampling: Sampling::default(),
                ..opts.clone()
            },
            |_| true,
        )
        .unwrap()
        .tokens;
    assert_ne!(runs[0], greedy, "sampling at 0.9 differs from greedy");
}

#[test]
fn llama_greedy_generation_matches_transformers() {
    greedy_case("tiny_llama");
}

#[test]
fn qwen2_greedy_generation_matches_transformers() {
    greedy_case("tiny_qwen2");
}

/// `wgpu-infer generate` runs a Qwen2 folder: its greedy tokens are transformers'.
#[test]
fn generate_cli_runs_llama_folders() {
    let r = Weights::open(fixture("tiny_qwen2").join("reference.safetensors")).unwrap();
    let want = r
        .get_u32("greedy.tokens")
        .unwrap()
        .as_u32()
        .unwrap()
        .to_vec();
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("tiny_qwen2").join("reference.json")).unwrap(),
    )
    .unwrap();
    let prompt = meta["prompts"][0].as_str().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgpu-infer"))
        .args([
            "generate",
            "--quiet",
            "--json",
            "--max-new-tokens",
            "12",
            "--model",
        ])
        .arg(fixture("tiny_qwen2"))
        .args(["--prompt", prompt])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let got: Vec<u32> = v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_u64().unwrap() as u32)
        .collect();
    // The fixture's EOS (0) is not among these 12, so generation does not stop early.
    assert!(!want[..12].contains(&0));
    assert_eq!(got, want[..12]);
}
