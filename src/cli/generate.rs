use super::ModelArgs;
use clap::Args;
use std::io::{IsTerminal, Write};
use wgpu_infer::models::generate::{GenerateOptions, Generation, TokenEvent};
use wgpu_infer::models::sampling::Sampling;
use wgpu_infer::models::CausalLm;
use wgpu_infer::{Error, Result};

/// `--model`: a GPT-2 or Llama-architecture (Llama, Qwen2, SmolLM) folder (config.json,
/// model.safetensors, tokenizer.json).
#[derive(Args, Debug)]
pub struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long)]
    prompt: String,
    #[command(flatten)]
    sampling: SamplingArgs,
    /// Print one JSON object at the end instead of streaming text.
    #[arg(long)]
    json: bool,
}

/// How many tokens and how they are chosen (`generate` and `chat`).
#[derive(Args, Debug)]
pub struct SamplingArgs {
    /// New tokens at most [default: 64 for generate, 256 for chat].
    #[arg(long)]
    pub max_new_tokens: Option<usize>,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    #[arg(long)]
    pub top_k: Option<usize>,
    #[arg(long)]
    pub top_p: Option<f32>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SamplingArgs {
    /// Checked options, stopping at EOS; `max_new_tokens` when not given.
    pub fn options(&self, max_new_tokens: usize) -> Result<GenerateOptions> {
        let sampling = Sampling {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            seed: self.seed,
        };
        sampling.validate()?;
        Ok(GenerateOptions {
            max_new_tokens: self.max_new_tokens.unwrap_or(max_new_tokens),
            sampling,
            stop_at_eos: true,
        })
    }
}

/// Loads `--model` as GPT-2 or a Llama-architecture decoder, by its config.json.
pub fn load_decoder(args: &ModelArgs) -> Result<CausalLm> {
    super::load(
        args,
        |b, d, o| CausalLm::load_with(b, d, o),
        CausalLm::warnings,
    )
}

/// A progress bar over `n` new tokens, hidden when `hidden`.
pub fn token_bar(n: usize, hidden: bool) -> indicatif::ProgressBar {
    if hidden {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(n as u64);
    b.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} tokens {per_sec} {msg}")
            .expect("valid template"),
    );
    b
}

/// The one-line timing summary on stderr.
pub fn report(gen: &Generation) {
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

pub fn run(args: GenerateArgs) -> Result<()> {
    let opts = args.sampling.options(64)?;
    let m = load_decoder(&args.model)?;
    let prompt = m.tokenize(&args.prompt)?;
    let gen = stream_generation(&m, &prompt, &opts, !args.json, args.model.quiet)?;
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
            std::io::stdout(),
            "{}",
            serde_json::to_string(&out).expect("plain data")
        )
        .map_err(|e| Error::io("<stdout>", e))?;
    }
    Ok(())
}

/// Generates after `ids`, streaming the text to stdout when `stream` (then a newline), with a
/// token bar on stderr when the text is not shown on a terminal, and the timing line unless
/// `quiet`. Shared by `generate` and `chat`.
pub fn stream_generation(
    model: &CausalLm,
    ids: &[u32],
    opts: &GenerateOptions,
    stream: bool,
    quiet: bool,
) -> Result<Generation> {
    let bar = token_bar(
        opts.max_new_tokens,
        quiet || (stream && std::io::stdout().is_terminal()),
    );
    let mut stdout = std::io::stdout().lock();
    let mut io_err: Option<std::io::Error> = None;
    let on_token = |t: &TokenEvent| {
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
    let gen = model.generate_ids(ids, opts, on_token)?;
    bar.finish_and_clear();
    if let Some(e) = io_err {
        return Err(Error::io("<stdout>", e));
    }
    if stream {
        writeln!(stdout).map_err(|e| Error::io("<stdout>", e))?;
    }
    drop(stdout);
    if !quiet {
        report(&gen);
    }
    Ok(gen)
}
