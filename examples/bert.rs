//! Sentence embeddings with a BERT / sentence-transformers model, and their cosine similarities.
//!
//! ```sh
//! bash tools/fetch_minilm.sh      # all-MiniLM-L6-v2 into ~/.cache/wgpu-infer/models
//! cargo run --release --example bert -- ~/.cache/wgpu-infer/models/all-MiniLM-L6-v2
//! ```

use wgpu_infer::models::Bert;
use wgpu_infer::Device;

fn main() -> wgpu_infer::Result<()> {
    let dir = std::env::args().nth(1).expect("usage: bert <model folder>");

    // Pick a GPU adapter and load the model folder (config, weights, tokenizer, pooling).
    let device = Device::new()?;
    let model = Bert::from_pretrained(&device, &dir)?;

    let sentences = [
        "A man is playing a guitar.",
        "Someone is strumming an acoustic guitar.",
        "The stock market fell sharply today.",
    ];
    // One forward pass for the whole batch; vectors are L2-normalised for this model.
    let emb = model.embed(&sentences)?;

    println!(
        "{} dimensions on {}",
        model.dim(),
        device.adapter_info().name
    );
    for i in 0..sentences.len() {
        for j in i + 1..sentences.len() {
            let cos: f32 = emb[i].iter().zip(&emb[j]).map(|(a, b)| a * b).sum();
            println!("{cos:+.3}  {:?} ~ {:?}", sentences[i], sentences[j]);
        }
    }
    Ok(())
}
