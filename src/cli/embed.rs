use super::ModelArgs;
use clap::Args;
use std::io::Read;
use wgpu_infer::models::bert::Bert;
use wgpu_infer::models::clip::Clip;
use wgpu_infer::models::sentence::Pooling;
use wgpu_infer::models::ModelKind;
use wgpu_infer::{Error, Result};

/// `--model`: a BERT-family / sentence-transformers folder, or a CLIP folder (its normalized
/// text embeddings).
#[derive(Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Overrides the folder's pooling config.
    #[arg(long)]
    pooling: Option<String>,
    /// Cut texts longer than the model's maximum length (as sentence-transformers does)
    /// instead of refusing them.
    #[arg(long)]
    truncate: bool,
    /// Do not L2-normalise the embeddings.
    #[arg(long)]
    no_normalize: bool,
    /// Texts to embed; read one per line from stdin when none are given.
    texts: Vec<String>,
}

/// Most bytes of text read from stdin.
const MAX_STDIN: u64 = 256 << 20;

pub fn run(mut args: EmbedArgs) -> Result<()> {
    let texts: Vec<String> = if args.texts.is_empty() {
        // Read up to a limit: one byte past it says the input is too large.
        let mut all = String::new();
        std::io::stdin()
            .lock()
            .take(MAX_STDIN + 1)
            .read_to_string(&mut all)
            .map_err(|e| Error::io("<stdin>", e))?;
        if all.len() as u64 > MAX_STDIN {
            return Err(Error::InvalidArgument(format!(
                "stdin holds more than {} MiB of text; embed it in parts",
                MAX_STDIN >> 20
            )));
        }
        all.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    } else {
        std::mem::take(&mut args.texts)
    };
    if texts.is_empty() {
        return Err(Error::InvalidArgument(
            "no texts: pass them as arguments or one per line on stdin".into(),
        ));
    }
    if super::folder_kind(&args.model)? == Some(ModelKind::Clip) {
        return embed_clip(&args, &texts);
    }
    let mut model = super::load(
        &args.model,
        |b, d, o| Bert::load_with(b, d, o),
        Bert::warnings,
    )?;
    if let Some(p) = &args.pooling {
        model.set_pooling(p.parse::<Pooling>()?);
    }
    if args.no_normalize {
        model.set_normalize(false);
    }
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    if !args.truncate {
        model.check_lengths(&refs).map_err(|e| match e {
            Error::InvalidArgument(m) => {
                Error::InvalidArgument(format!("{m}; pass --truncate to cut it"))
            }
            e => e,
        })?;
    }
    let emb = model.embed(&refs)?;
    print_embeddings(model.name(), model.dim(), emb);
    Ok(())
}

/// `{"model", "dim", "embeddings"}` on stdout.
fn print_embeddings(model: &str, dim: usize, embeddings: Vec<Vec<f32>>) {
    #[derive(serde::Serialize)]
    struct Out<'a> {
        model: &'a str,
        dim: usize,
        embeddings: Vec<Vec<f32>>,
    }
    let out = Out {
        model,
        dim,
        embeddings,
    };
    println!(
        "{}",
        serde_json::to_string(&out).expect("plain data serialises")
    );
}

/// A CLIP folder: normalized text-tower embeddings (`--pooling` does not apply).
fn embed_clip(args: &EmbedArgs, texts: &[String]) -> Result<()> {
    if args.pooling.is_some() || args.no_normalize {
        return Err(Error::InvalidArgument(
            "--pooling and --no-normalize do not apply to CLIP (its embedding is the projected EOS state, normalized)".into(),
        ));
    }
    let model = super::load(
        &args.model,
        |b, d, o| Clip::load_with(b, d, o),
        Clip::warnings,
    )?;
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    if !args.truncate {
        model.check_lengths(&refs).map_err(|e| match e {
            Error::InvalidArgument(m) => {
                Error::InvalidArgument(format!("{m}; pass --truncate to cut it"))
            }
            e => e,
        })?;
    }
    print_embeddings(model.name(), model.dim(), model.embed_texts(&refs)?);
    Ok(())
}
