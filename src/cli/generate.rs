use super::{backend, load_options, resolve_model, BackendKind, WeightDtype};
use clap::Args;
use std::io::{IsTerminal, Write};
use wgpu_infer::models::gpt2::{GenerateOptions, Gpt2};
use wgpu_infer::models::sampling::Sampling;
use wgpu_infer::{Error, Result};

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// HuggingFace GPT-2 folder (config.json, model.safetensors, tokenizer.json), or a hub id (org/name).
    #[arg(long)]
    model: String,
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
    #[arg(long, value_enum, default_value = "gpu")]
    backend: BackendKind,
    /// Storage type of the weights (f16 halves their memory; arithmetic stays f32).
    #[arg(long, value_enum, default_value = "f32")]
    dtype: WeightDtype,
    /// Print one JSON object at the end instead of streaming text.
    #[arg(long)]
    json: bool,
    /// No progress bar or timing on stderr.
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: GenerateArgs) -> Result<()> {
    let sampling = Sampling {
        temperature: args.temperature,
        top_k: args.top_k,
        top_p: args.top_p,
        seed: args.seed,
    };
    sampling.validate()?;
    let dir = resolve_model(&args.model, args.quiet)?;
    let model = Gpt2::load_with(
        backend(args.backend)?,
        &dir,
        &load_options(args.dtype, args.quiet),
    )?;
    if !args.quiet {
        for w in model.warnings() {
            eprintln!("warning: {w}");
        }
    }
    let opts = GenerateOptions {
        max_new_tokens: args.max_new_tokens,
        sampling,
        stop_at_eos: true,
    };
    // Streamed text shows progress on a terminal; otherwise a bar on stderr does.
    let stream = !args.json;
    let bar = if args.quiet || (stream && std::io::stdout().is_terminal()) {
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
    let gen = model.generate(&args.prompt, &opts, |t| {
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
    })?;
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
    if !args.quiet {
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
