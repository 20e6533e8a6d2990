//! Decoder rows of `wgpu-infer bench`: a 16-token prompt (prefill) and 32 greedy tokens over
//! the KV cache (decode), per backend and weight dtype, each round of ours followed by one of
//! PyTorch's (f32) on the same workload. GPT-2 small and a SmolLM2-135M-sized Llama (random
//! weights of the real configs).

use super::bench_core::{random_source, ModelResult, Run, Torch};
use std::time::Instant;
use wgpu_infer::models::generate::GenerateOptions;
use wgpu_infer::models::llama::LlamaConfig;
use wgpu_infer::models::CausalLm;
use wgpu_infer::{Backend, DType, Result};

/// HuggingFaceTB/SmolLM2-135M's config.json (Llama: 30 layers of 576, 9 query / 3 KV heads of
/// 64, SwiGLU 1536, tied embeddings of 49152 tokens).
pub(super) fn smollm2_135m() -> LlamaConfig {
    serde_json::from_value(serde_json::json!({
        "model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
        "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
        "head_dim": 64, "max_position_embeddings": 8192, "rms_norm_eps": 1e-5,
        "rope_theta": 100000.0, "hidden_act": "silu", "tie_word_embeddings": true,
        "eos_token_id": 0,
    }))
    .expect("a valid LlamaConfig")
}

/// Prefill and decode rows of the decoder `build(backend, dtype)` builds (`name`, its
/// vocabulary size), for each (backend, dtype); PyTorch is sampled alongside the GPU runs.
pub(super) fn decoder_rows(
    (name, vocab): (&'static str, u32),
    runs: &[(Backend, DType)],
    quick: bool,
    build: &dyn Fn(Backend, DType) -> Result<CausalLm>,
    out: &mut Vec<ModelResult>,
    torch: &mut Torch<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    for (backend, dtype) in runs {
        let label = match dtype {
            DType::F32 => backend.name().to_string(),
            d => format!("{} {d}", backend.name()),
        };
        progress(&format!("{name} ({label})"));
        let t0 = Instant::now();
        let model = build(backend.clone(), *dtype)?;
        let prompt: Vec<u32> = (0..16).map(|i| (i * 3001) % (vocab - 100)).collect();
        let gpu = !matches!(backend, Backend::Cpu);
        let opts = GenerateOptions {
            max_new_tokens: if quick && !gpu { 8 } else { 32 },
            stop_at_eos: false,
            ..Default::default()
        };
        let first = model.generate_ids(&prompt, &opts, |_| true)?;
        let cold = t0.elapsed().as_secs_f64() - first.decode_secs;
        let decode = format!("decode {} tokens (KV cache)", opts.max_new_tokens);
        if gpu {
            torch.sample(name, "prefill 16 tokens", "tokens/s", 0)?;
            torch.sample(name, &decode, "tokens/s", 0)?;
        }
        // Rounds of one generation of ours, then one of PyTorch's (prefill and decode).
        let rounds = if quick || !gpu { 2 } else { 3 };
        let (mut pre, mut per) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            let g = model.generate_ids(&prompt, &opts, |_| true)?;
            pre.push(g.prefill_secs);
            per.push(g.decode_secs / g.tokens.len().saturating_sub(1).max(1) as f64);
            if gpu {
                torch.sample(name, "prefill 16 tokens", "tokens/s", 1)?;
                torch.sample(name, &decode, "tokens/s", 1)?;
            }
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let run = Run {
            model: name,
            backend: label,
            cold_start_s: cold,
            memory: model.memory_and_dispatches(),
            kernels: model.kernels(),
        };
        out.push(run.row("prefill 16 tokens".into(), median(pre), 16.0, "tokens/s"));
        out.push(run.row(decode, median(per), 1.0, "tokens/s"));
    }
    Ok(())
}

/// The SmolLM2-135M-sized rows: GPU with f32, f16 and q8 weights.
pub(super) fn smollm2_rows(
    gpu: &Backend,
    quick: bool,
    out: &mut Vec<ModelResult>,
    torch: &mut Torch<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    use wgpu_infer::models::llama::Llama;
    use wgpu_infer::LoadOptions;
    let build = |b: Backend, d: DType| -> Result<CausalLm> {
        let o = LoadOptions::with_dtype(d);
        Ok(Llama::from_source(b, smollm2_135m(), &random_source, None, &o)?.into())
    };
    let runs = [DType::F32, DType::F16, DType::Q8].map(|d| (gpu.clone(), d));
    let name = "SmolLM2-135M (random weights)";
    decoder_rows((name, 49152), &runs, quick, &build, out, torch, progress)
}
