//! Classifies images with a ViT folder and prints the top 5 labels of each.
//!
//! ```sh
//! bash tools/fetch_assets.sh
//! cargo run --release --example vit -- tests/fixtures/vit/tiny_cls ~/.cache/wgpu-infer/models/assets/bus.jpg
//! ```

use wgpu_infer::models::Vit;
use wgpu_infer::Device;

fn main() -> wgpu_infer::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().expect("usage: vit <model folder> <image>...");
    let images: Vec<String> = args.collect();

    // Weights, labels (config.json id2label) and preprocessing (preprocessor_config.json).
    let model = Vit::from_pretrained(&Device::new()?, &dir)?;

    // All images are decoded, resized, normalized and classified in one forward pass.
    for (path, top) in images.iter().zip(model.classify(&images, 5)?) {
        println!("{path}");
        for p in top {
            println!("  {:>6.2}%  {} ({})", 100.0 * p.score, p.label, p.index);
        }
    }
    Ok(())
}
