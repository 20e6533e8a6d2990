//! Streams a GPT-2 completion token by token.
//!
//! ```sh
//! cargo run --release --example gpt2 -- tests/fixtures/gpt2/tiny_a "Once upon a time"
//! ```

use std::io::Write;
use wgpu_infer::models::gpt2::{GenerateOptions, Gpt2};
use wgpu_infer::Device;

fn main() -> wgpu_infer::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: gpt2 <model folder> [prompt]");
    let prompt = args
        .next()
        .unwrap_or_else(|| "Once upon a time".to_string());

    let model = Gpt2::from_pretrained(&Device::new()?, &dir)?;
    let opts = GenerateOptions {
        max_new_tokens: 40,
        ..Default::default() // greedy; see `Sampling` for temperature / top-k / top-p
    };
    print!("{prompt}");
    // The prompt runs once; each new token is one step over the cached keys and values.
    let gen = model.generate(&prompt, &opts, |token| {
        print!("{}", token.text);
        std::io::stdout().flush().is_ok()
    })?;
    println!(
        "\n[{} tokens, {:.1} tokens/s]",
        gen.tokens.len(),
        gen.tokens.len().saturating_sub(1) as f64 / gen.decode_secs.max(1e-9)
    );
    Ok(())
}
