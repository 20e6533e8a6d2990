//! `wgpu-infer serve`: the HTTP server over the models given (see `wgpu_infer::server`).

use super::{BackendKind, WeightDtype};
use clap::Args;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use wgpu_infer::chat::ChatTemplate;
use wgpu_infer::models::{Bert, CausalLm, Vit, Yolo};
use wgpu_infer::server::{serve, Models, ServerConfig};
use wgpu_infer::{Backend, DType, Device, Error, LoadOptions, Result};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// BERT / sentence-transformers folder or hub id for /embed, /tokenize, /v1/embeddings.
    #[arg(long)]
    embed_model: Option<String>,
    /// Cross-encoder folder or hub id (BertForSequenceClassification, one label) for /rerank.
    #[arg(long)]
    rerank_model: Option<String>,
    /// GPT-2 folder or hub id for /v1/completions.
    #[arg(long)]
    generate_model: Option<String>,
    /// ViT folder or hub id for /classify.
    #[arg(long)]
    classify_model: Option<String>,
    /// YOLOv8 folder for /detect (always f32 weights).
    #[arg(long)]
    detect_model: Option<String>,
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// 0 picks a free port (the address is printed on stdout).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    #[arg(long, value_enum, default_value = "gpu")]
    backend: BackendKind,
    /// Storage type of the text and ViT weights.
    #[arg(long, value_enum, default_value = "f32")]
    dtype: WeightDtype,
    /// Most tokens merged into one embedding forward.
    #[arg(long, default_value_t = 16384)]
    max_batch_tokens: usize,
    /// Most requests merged into one embedding forward.
    #[arg(long, default_value_t = 64)]
    max_batch_requests: usize,
    /// Requests queued or running at once; one more is answered 429.
    #[arg(long, default_value_t = 512)]
    max_concurrent_requests: usize,
    /// Most inputs (texts, prompts, images) in one request.
    #[arg(long, default_value_t = 32)]
    max_client_batch_size: usize,
    /// Generations running side by side (each with its own KV cache); more wait.
    #[arg(long, default_value_t = 4)]
    max_concurrent_generations: usize,
    /// Largest request body, in bytes.
    #[arg(long, default_value_t = 8 << 20)]
    payload_limit: usize,
    /// Seconds a request may wait and run before it is answered 504.
    #[arg(long, default_value_t = 120.0)]
    request_timeout: f64,
    /// Seconds a client may take to send its body before it is answered 408.
    #[arg(long, default_value_t = 10.0)]
    body_timeout: f64,
}

fn secs(flag: &str, v: f64) -> Result<Duration> {
    if v.is_finite() && v > 0.0 && v < 1e9 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(Error::InvalidArgument(format!(
            "{flag} must be a positive number of seconds, got {v}"
        )))
    }
}

fn dir(spec: &str) -> Result<std::path::PathBuf> {
    wgpu_infer::hub::resolve(spec, &wgpu_infer::hub::HubOptions::from_env())
}

pub fn run(args: ServeArgs) -> Result<()> {
    let dtype = match args.dtype {
        WeightDtype::F32 => DType::F32,
        WeightDtype::F16 => DType::F16,
        WeightDtype::Q8 => DType::Q8,
    };
    let config = ServerConfig {
        max_batch_tokens: args.max_batch_tokens,
        max_batch_requests: args.max_batch_requests,
        max_concurrent_requests: args.max_concurrent_requests,
        max_client_batch_size: args.max_client_batch_size,
        max_concurrent_generations: args.max_concurrent_generations,
        payload_limit: args.payload_limit,
        request_timeout: secs("--request-timeout", args.request_timeout)?,
        body_timeout: secs("--body-timeout", args.body_timeout)?,
        dtype,
    };
    config.validate()?;
    let specs = [
        &args.embed_model,
        &args.rerank_model,
        &args.generate_model,
        &args.classify_model,
        &args.detect_model,
    ];
    if specs.iter().all(|s| s.is_none()) {
        return Err(Error::InvalidArgument(
            "no model to serve: pass at least one of --embed-model, --rerank-model, \
             --generate-model, --classify-model, --detect-model"
                .into(),
        ));
    }
    // Folders are resolved (and hub ids downloaded) before the socket opens, so a wrong path
    // fails at once.
    let resolve = |s: &Option<String>| s.as_deref().map(dir).transpose();
    let (embed, rerank, generate, classify, detect) = (
        resolve(&args.embed_model)?,
        resolve(&args.rerank_model)?,
        resolve(&args.generate_model)?,
        resolve(&args.classify_model)?,
        resolve(&args.detect_model)?,
    );
    let backend_kind = args.backend;
    let load = move || -> Result<Models> {
        let backend = match backend_kind {
            BackendKind::Gpu => Backend::Gpu(Device::new()?),
            BackendKind::Cpu => Backend::Cpu,
        };
        let opts = LoadOptions::with_dtype(dtype);
        let (b, o) = (&backend, &opts);
        Ok(Models {
            embed: load_one(&embed, |d| Bert::load_with(b.clone(), d, o), Bert::warnings)?,
            rerank: load_one(
                &rerank,
                |d| Bert::load_with(b.clone(), d, o),
                Bert::warnings,
            )?,
            generate: load_one(
                &generate,
                |d| CausalLm::load_with(b.clone(), d, o),
                CausalLm::warnings,
            )?,
            chat: match &generate {
                Some(d) => chat_template(d)?,
                None => None,
            },
            classify: load_one(
                &classify,
                |d| Vit::load_with(b.clone(), d, o),
                Vit::warnings,
            )?,
            detect: load_one(&detect, |d| Yolo::load(b.clone(), d), Yolo::warnings)?,
        })
    };

    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("serve")
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    let addr = format!("{}:{}", args.host, args.port);
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("listening socket", e))?;
        // The one line on stdout: scripts and tests read the port from it.
        println!("listening on http://{local}");
        let _ = std::io::stdout().flush();
        tracing::info!(target: "wgpu_infer::server", "listening on http://{local}; loading models");
        serve(listener, config, load, shutdown_signal()).await
    });
    // Blocking workers of requests cancelled by the shutdown get a moment to notice.
    rt.shutdown_timeout(Duration::from_secs(5));
    result
}

/// The chat template of the generation model's folder, if it has a usable one (one that does
/// not compile is logged and leaves `/v1/chat/completions` answering 404).
fn chat_template(dir: &std::path::Path) -> Result<Option<Arc<ChatTemplate>>> {
    let files = wgpu_infer::models::ModelFiles::open(dir)?;
    match ChatTemplate::find(&files) {
        Ok(t) => Ok(t.map(Arc::new)),
        Err(e @ Error::ChatTemplate { .. }) => {
            tracing::warn!(target: "wgpu_infer::server", "no /v1/chat/completions: {e}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The model in folder `dir`, if given, with its load warnings logged.
fn load_one<M>(
    dir: &Option<std::path::PathBuf>,
    load: impl FnOnce(&std::path::Path) -> Result<M>,
    warnings: impl Fn(&M) -> &[String],
) -> Result<Option<Arc<M>>> {
    let Some(d) = dir else { return Ok(None) };
    let m = load(d)?;
    for w in warnings(&m) {
        tracing::warn!(target: "wgpu_infer::server", "{w}");
    }
    Ok(Some(Arc::new(m)))
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
