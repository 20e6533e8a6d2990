use super::ModelArgs;
use clap::Args;
use std::io::{IsTerminal, Write};
use wgpu_infer::models::generate::GenerateOptions;
use wgpu_infer::models::generate::TokenEvent;
use wgpu_infer::models::gpt2::Gpt2;
use wgpu_infer::models::llama::Llama;
use wgpu_infer::models::sampling::Sampling;
use wgpu_infer::models::ModelKind;
use wgpu_infer::{Error, Result};

/// `--model`: a GPT-2 or Llama-architecture (Llama, Qwen2, SmolLM) folder (config.json,
/// model.safetensors, tokenizer.json).
#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long)]
    prompt: String,
    #[arg(long, default_value_t = 64)]
    max_new_tokens: usize,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long)]
    top_k: Option<usize>,
    #[arg(long)]
    top_p: Option<f32>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object at the end instead of streaming text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let sampling = Sampling {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
    };
    sampling.validate()?;
    let llama = super::folder_kind(&args.model)? == Some(ModelKind::Llama);
    let quiet = args.model.quiet;
    let opts = GenerateOptions {
        max_new_tokens: args.max_new_tokens,
        sampling,
        stop_at_eos: true,
    };
    // Streamed text shows progress on a terminal; otherwise a bar on stderr does.
    let stream = !args.json;
    let bar = if quiet || (stream && std::io::stdout().is_terminal()) {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(args.max_new_tokens as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} tokens {per_sec} {msg}")
                .expect("valid template"),
        );
        b
    };
    let mut stdout = std::io::stdout().lock();
    let mut io_err: Option<std::io::Error> = None;
    let mut on_token = |t: &TokenEvent| {
        bar.inc(1);
        if stream {
            if let Err(e) = stdout
                .write_all(t.text.as_bytes())
                .and_then(|_| stdout.flush())
            {
                io_err = Some(e);
                return false;
            }
        }
        true
    };
    let gen = if llama {
        let m = super::load(
            &args.model,
            |b, d, o| Llama::load_with(b, d, o),
            Llama::warnings,
        )?;
        m.generate(&args.prompt, &opts, &mut on_token)?
    } else {
        let m = super::load(
            &args.model,
            |b, d, o| Gpt2::load_with(b, d, o),
            Gpt2::warnings,
        )?;
        m.generate(&args.prompt, &opts, &mut on_token)?
    };
    bar.finish_and_clear();
    if let Some(e) = io_err {
        return Err(Error::io("<stdout>", e));
    }
    if args.json {
        #[derive(serde::Serialize)]
        struct Out<'a> {
            prompt_tokens: &'a [u32],
            tokens: &'a [u32],
            text: &'a str,
        }
        let out = Out {
            prompt_tokens: &gen.prompt_tokens,
            tokens: &gen.tokens,
            text: &gen.text,
        };
        writeln!(
            stdout,
            "{}",
            serde_json::to_string(&out).expect("plain data")
        )
        .map_err(|e| Error::io("<stdout>", e))?;
    } else {
        writeln!(stdout).map_err(|e| Error::io("<stdout>", e))?;
    }
    if !quiet {
        let decode_tokens = gen.tokens.len().saturating_sub(1);
        eprintln!(
            "{} prompt tokens in {:.2}s, {} new tokens; decode {:.1} tokens/s{}",
            gen.prompt_tokens.len(),
            gen.prefill_secs,
            gen.tokens.len(),
            if gen.decode_secs > 0.0 {
                decode_tokens as f64 / gen.decode_secs
            } else {
                0.0
            },
            if gen.stopped_at_eos {
                " (stopped at EOS)"
            } else {
                ""
            }
        );
    }
    Ok(())
}
