use super::ModelArgs;
use clap::Args;
use wgpu_infer::models::bert::Bert;
use wgpu_infer::models::rerank::rank;
use wgpu_infer::Result;

/// `--model`: a cross-encoder folder (`BertForSequenceClassification` with one label).
#[derive(Args, Debug)]
pub struct RerankArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long)]
    query: String,
    /// Print the logits instead of sigmoid(logit) (TEI's `raw_scores`).
    #[arg(long)]
    raw_scores: bool,
    /// Cut query + document pairs longer than the model's maximum instead of refusing them.
    #[arg(long)]
    truncate: bool,
    /// The documents to rank.
    #[arg(required = true)]
    docs: Vec<String>,
}

pub fn run(args: RerankArgs) -> Result<()> {
    let model = super::load(
        &args.model,
        |b, d, o| Bert::load_with(b, d, o),
        Bert::warnings,
    )?;
    let docs: Vec<&str> = args.docs.iter().map(String::as_str).collect();
    let logits = model.rerank(&args.query, &docs, args.truncate)?;
    let out = rank(&logits, args.raw_scores);
    println!("{}", serde_json::to_string(&out).expect("plain data"));
    Ok(())
}
