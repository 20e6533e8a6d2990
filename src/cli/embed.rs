use super::{backend, load_options, resolve_model, BackendKind, WeightDtype};
use clap::Args;
use std::io::BufRead;
use wgpu_infer::models::bert::{Bert, Pooling};
use wgpu_infer::{Error, Result};

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// HuggingFace BERT / sentence-transformers folder, or a hub id (org/name).
    #[arg(long)]
    model: String,
    #[arg(long, value_enum, default_value = "gpu")]
    backend: BackendKind,
    /// No progress bars or warnings on stderr.
    #[arg(long)]
    quiet: bool,
    /// Storage type of the weights (f16 halves their memory; arithmetic stays f32).
    #[arg(long, value_enum, default_value = "f32")]
    dtype: WeightDtype,
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

pub fn run(args: EmbedArgs) -> Result<()> {
    let texts: Vec<String> = if args.texts.is_empty() {
        std::io::stdin()
            .lock()
            .lines()
            .collect::<std::io::Result<Vec<String>>>()
            .map_err(|e| Error::io("<stdin>", e))?
            .into_iter()
            .filter(|l| !l.trim().is_empty())
            .collect()
    } else {
        args.texts
    };
    if texts.is_empty() {
        return Err(Error::InvalidArgument(
            "no texts: pass them as arguments or one per line on stdin".into(),
        ));
    }
    let dir = resolve_model(&args.model, args.quiet)?;
    let mut model = Bert::load_with(
        backend(args.backend)?,
        &dir,
        &load_options(args.dtype, args.quiet),
    )?;
    if !args.quiet {
        for w in model.warnings() {
            eprintln!("warning: {w}");
        }
    }
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
    #[derive(serde::Serialize)]
    struct Out<'a> {
        model: &'a str,
        dim: usize,
        embeddings: Vec<Vec<f32>>,
    }
    let out = Out {
        model: model.name(),
        dim: model.dim(),
        embeddings: emb,
    };
    println!(
        "{}",
        serde_json::to_string(&out).expect("plain data serialises")
    );
    Ok(())
}
