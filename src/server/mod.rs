//! `wgpu-infer serve`: an HTTP server for the loaded models, on tokio + axum.
//!
//! Endpoints follow Hugging Face text-embeddings-inference (`/embed`, `/rerank`, `/tokenize`,
//! `/info`, `/health`) and the OpenAI API (`/v1/embeddings`, `/v1/completions` with Server-Sent Events,
//! `/v1/models`); `/classify` and `/detect` take an image body; `/metrics` is Prometheus text.
//! Embedding requests are merged into shared forwards by a batcher ([`batcher`]); generations
//! run side by side in a bounded number of slots, each with its own KV cache; every request
//! holds one of `max_concurrent_requests` admission permits from arrival to answer, and a
//! request that finds none gets 429. Models load after the socket is bound: `/health` answers
//! 503 until they are ready.
//!
//! ```no_run
//! # async fn f() -> wgpu_infer::Result<()> {
//! use wgpu_infer::server::{serve, Models, ServerConfig};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! let load = || -> wgpu_infer::Result<Models> {
//!     let device = wgpu_infer::Device::new()?;
//!     let bert = wgpu_infer::models::Bert::from_pretrained(&device, "all-MiniLM-L6-v2")?;
//!     Ok(Models { embed: Some(bert.into()), ..Models::default() })
//! };
//! serve(listener, ServerConfig::default(), load, std::future::pending()).await
//! # }
//! ```

mod batcher;
mod chat;
mod complete;
mod error;
mod generation;
mod metrics;
mod text;
mod vision;

pub use error::ApiError;

use crate::chat::ChatTemplate;
use crate::models::{Bert, CausalLm, Vit, Yolo};
use crate::{DType, Error, Result};
use axum::body::Bytes;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, request::Parts, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use batcher::{BatchLimits, Batcher};
use error::ApiResult;
use metrics::Metrics;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The server's limits (defaults follow TEI where it has the same knob).
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Most tokens in one merged embedding forward (a request larger than this runs alone).
    pub max_batch_tokens: usize,
    /// Most requests merged into one embedding forward.
    pub max_batch_requests: usize,
    /// Requests admitted at once (queued or running); one more gets 429.
    pub max_concurrent_requests: usize,
    /// Most inputs (texts, prompts, images) in one request; more gets 413.
    pub max_client_batch_size: usize,
    /// Generations running at once; more wait in the queue.
    pub max_concurrent_generations: usize,
    /// Largest request body in bytes; larger gets 413.
    pub payload_limit: usize,
    /// Longest a request may wait and run; longer gets 504.
    pub request_timeout: Duration,
    /// Longest a client may take to send its body; longer gets 408.
    pub body_timeout: Duration,
    /// The weights' storage type (reported by `/info`).
    pub dtype: DType,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_batch_tokens: 16384,
            max_batch_requests: 64,
            max_concurrent_requests: 512,
            max_client_batch_size: 32,
            max_concurrent_generations: 4,
            payload_limit: 8 << 20,
            request_timeout: Duration::from_secs(120),
            body_timeout: Duration::from_secs(10),
            dtype: DType::F32,
        }
    }
}

impl ServerConfig {
    pub fn validate(&self) -> Result<()> {
        let ones = [
            ("max_batch_tokens", self.max_batch_tokens),
            ("max_batch_requests", self.max_batch_requests),
            ("max_concurrent_requests", self.max_concurrent_requests),
            ("max_client_batch_size", self.max_client_batch_size),
            (
                "max_concurrent_generations",
                self.max_concurrent_generations,
            ),
            ("payload_limit", self.payload_limit),
        ];
        for (name, v) in ones {
            if v == 0 {
                return Err(Error::InvalidArgument(format!("{name} must be at least 1")));
            }
        }
        if self.max_concurrent_requests > Semaphore::MAX_PERMITS {
            return Err(Error::InvalidArgument(format!(
                "max_concurrent_requests {} is over the most this server supports ({})",
                self.max_concurrent_requests,
                Semaphore::MAX_PERMITS
            )));
        }
        if self.request_timeout.is_zero() || self.body_timeout.is_zero() {
            return Err(Error::InvalidArgument(
                "request and body timeouts must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// The models a server answers with; a missing one makes its endpoints answer 404.
#[derive(Default)]
pub struct Models {
    pub embed: Option<Arc<Bert>>,
    /// A cross-encoder (`BertForSequenceClassification`, one label) for `/rerank`.
    pub rerank: Option<Arc<Bert>>,
    /// A GPT-2 or Llama-architecture decoder for `/v1/completions`.
    pub generate: Option<Arc<CausalLm>>,
    /// The generation model's chat template, for `/v1/chat/completions` (404 without one).
    pub chat: Option<Arc<ChatTemplate>>,
    pub classify: Option<Arc<Vit>>,
    pub detect: Option<Arc<Yolo>>,
}

/// Loaded models and their workers.
struct Ready {
    models: Models,
    batcher: Option<Batcher>,
    /// The embedding model's tokenizer without truncation (for `/tokenize`).
    untruncated: Option<Arc<tokenizers::Tokenizer>>,
    generations: Arc<Semaphore>,
}

/// What every handler shares.
struct App {
    config: ServerConfig,
    metrics: Arc<Metrics>,
    admission: Arc<Semaphore>,
    ready: OnceLock<Ready>,
}

type Shared = State<Arc<App>>;

impl App {
    /// The loaded models, or 503 while they load.
    fn ready(&self) -> ApiResult<&Ready> {
        self.ready
            .get()
            .ok_or_else(|| ApiError::unhealthy("the models are still loading; retry shortly"))
    }

    /// One admission permit for the request's whole life, or 429.
    fn admit(&self) -> ApiResult<OwnedSemaphorePermit> {
        self.admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::overloaded(self.config.max_concurrent_requests))
    }

    /// The request body, bounded in size (413) and in the time the client takes to send it
    /// (408). An oversized body is still read (and dropped) up to four times the limit, so
    /// the client reads the 413 instead of a reset connection.
    async fn body(&self, req: Request) -> ApiResult<(Parts, Bytes)> {
        use futures_util::StreamExt;
        let (parts, body) = req.into_parts();
        let limit = self.config.payload_limit;
        let drain = limit.saturating_mul(4);
        let read = async move {
            let mut stream = body.into_data_stream();
            let mut buf: Vec<u8> = Vec::new();
            let mut total = 0usize;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::bad_request(format!("could not read the request body: {e}"))
                })?;
                total = total.saturating_add(chunk.len());
                if total > drain {
                    break;
                }
                if total <= limit {
                    buf.extend_from_slice(&chunk);
                }
            }
            if total > limit {
                return Err(too_large_body(limit));
            }
            Ok(Bytes::from(buf))
        };
        match tokio::time::timeout(self.config.body_timeout, read).await {
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "validation",
                format!(
                    "the request body did not arrive within {} s",
                    self.config.body_timeout.as_secs_f64()
                ),
            )),
            Ok(r) => Ok((parts, r?)),
        }
    }

    /// `f` within the request timeout, or 504.
    async fn timed<T>(&self, f: impl Future<Output = ApiResult<T>>) -> ApiResult<T> {
        let limit = self.config.request_timeout;
        tokio::time::timeout(limit, f)
            .await
            .unwrap_or_else(|_| Err(ApiError::timeout(limit.as_secs_f64())))
    }
}

fn too_large_body(limit: usize) -> ApiError {
    ApiError::too_large(format!(
        "the request body is larger than the server's limit of {limit} bytes (--payload-limit)"
    ))
}

/// A JSON body into `T`: 400 for malformed JSON or a value of the wrong type.
fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
    T::deserialize(value).map_err(|e| ApiError::bad_request(format!("invalid request: {e}")))
}

/// Runs blocking work (tokenizing, decoding images, GPU forwards) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    tokio::task::spawn_blocking(move || {
        crate::contain::contain(f).unwrap_or_else(|panic| {
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "backend",
                format!("the worker failed: {panic}"),
            ))
        })
    })
    .await
    .unwrap_or_else(|e| {
        Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "backend",
            format!("the worker stopped: {e}"),
        ))
    })
}

/// Counts, times and logs every request.
async fn track(State(app): Shared, req: Request, next: Next) -> Response {
    let t0 = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_string();
    let (method, uri) = (req.method().clone(), req.uri().path().to_string());
    let resp = next.run(req).await;
    let took = t0.elapsed();
    let status = resp.status().as_u16();
    app.metrics.request(&route, status, took);
    tracing::info!(
        target: "wgpu_infer::server",
        %method,
        path = %uri,
        status,
        ms = format_args!("{:.1}", took.as_secs_f64() * 1e3),
        "request"
    );
    resp
}

async fn health(State(app): Shared) -> Response {
    match app.ready() {
        Ok(_) => (StatusCode::OK, Json(serde_json::json!({"status": "ok"}))).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn prometheus(State(app): Shared) -> Response {
    let ct = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, ct)], app.metrics.render()).into_response()
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F16 => "float16",
        DType::Q8 => "int8",
        _ => "float32",
    }
}

async fn info(State(app): Shared) -> ApiResult<Json<serde_json::Value>> {
    let r = app.ready()?;
    let c = &app.config;
    let m = &r.models;
    let dtype = dtype_name(c.dtype);
    Ok(Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "model_id": m.embed.as_ref().map(|b| b.name().to_string()),
        "model_dtype": dtype,
        "model_type": m.embed.as_ref().map(|b| serde_json::json!({
            "embedding": {"pooling": format!("{:?}", b.pooling()).to_lowercase()}
        })),
        "max_input_length": m.embed.as_ref().map(|b| b.max_len()),
        "max_concurrent_requests": c.max_concurrent_requests,
        "max_batch_tokens": c.max_batch_tokens,
        "max_batch_requests": c.max_batch_requests,
        "max_client_batch_size": c.max_client_batch_size,
        "max_concurrent_generations": c.max_concurrent_generations,
        "payload_limit": c.payload_limit,
        "models": {
            "embed": m.embed.as_ref().map(|b| serde_json::json!({
                "id": b.name(), "dim": b.dim(), "max_input_length": b.max_len(),
                "pooling": format!("{:?}", b.pooling()).to_lowercase(), "normalize": b.normalize(),
            })),
            "rerank": m.rerank.as_ref().map(|b| serde_json::json!({
                "id": b.name(), "max_input_length": b.max_len(),
            })),
            "generate": m.generate.as_ref().map(|g| serde_json::json!({
                "id": g.name(), "context": g.context(), "chat": m.chat.is_some(),
            })),
            "classify": m.classify.as_ref().map(|v| serde_json::json!({
                "id": v.name(), "labels": v.labels().len(),
            })),
            "detect": m.detect.as_ref().map(|y| serde_json::json!({
                "id": y.name(), "classes": y.names().len(),
            })),
        },
    })))
}

async fn models(State(app): Shared) -> ApiResult<Json<serde_json::Value>> {
    let m = &app.ready()?.models;
    let names = [
        m.embed.as_ref().map(|b| b.name().to_string()),
        m.rerank.as_ref().map(|b| b.name().to_string()),
        m.generate.as_ref().map(|g| g.name().to_string()),
        m.classify.as_ref().map(|v| v.name().to_string()),
        m.detect.as_ref().map(|y| y.name().to_string()),
    ];
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let data: Vec<_> = names
        .into_iter()
        .flatten()
        .map(|id| serde_json::json!({"id": id, "object": "model", "created": created, "owned_by": "wgpu-infer"}))
        .collect();
    Ok(Json(serde_json::json!({"object": "list", "data": data})))
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/info", get(info))
        .route("/metrics", get(prometheus))
        .route("/v1/models", get(models))
        .route("/embed", post(text::embed))
        .route("/tokenize", post(text::tokenize))
        .route("/rerank", post(text::rerank))
        .route("/v1/embeddings", post(text::openai_embeddings))
        .route("/v1/completions", post(complete::completions))
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/classify", post(vision::classify))
        .route("/detect", post(vision::detect))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "validation",
                "method not allowed on this route",
            )
        })
        // The multipart parser's own bound (the body was already read within the same limit).
        .layer(axum::extract::DefaultBodyLimit::max(
            app.config.payload_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(app.clone(), track))
        .with_state(app)
}

/// Serves on `listener` until `shutdown` completes, then stops accepting, lets the requests in
/// flight finish and returns. `load` runs on its own thread once the socket is serving
/// (`/health` answers 503 until it returns); if it fails, the server stops and its error is
/// returned.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: ServerConfig,
    load: impl FnOnce() -> Result<Models> + Send + 'static,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    config.validate()?;
    let metrics = Arc::new(Metrics::new());
    let app = Arc::new(App {
        admission: Arc::new(Semaphore::new(config.max_concurrent_requests)),
        config,
        metrics,
        ready: OnceLock::new(),
    });
    let (failed_tx, failed_rx) = tokio::sync::oneshot::channel::<Error>();
    let loading = app.clone();
    std::thread::Builder::new()
        .name("model-loader".into())
        .spawn(move || {
            let t0 = Instant::now();
            let ready = crate::contain::contain(load)
                .unwrap_or_else(|p| Err(Error::InvalidArgument(format!("loading failed: {p}"))))
                .and_then(|models| start_workers(&loading, models));
            match ready {
                Ok(r) => {
                    let _ = loading.ready.set(r);
                    tracing::info!(
                        target: "wgpu_infer::server",
                        secs = format_args!("{:.2}", t0.elapsed().as_secs_f64()),
                        "models loaded; ready"
                    );
                }
                Err(e) => {
                    let _ = failed_tx.send(e);
                }
            }
        })
        .map_err(|e| Error::io("model-loader thread", e))?;
    let failure = Arc::new(std::sync::Mutex::new(None));
    let seen = failure.clone();
    let stop = async move {
        // The loader drops its sender without sending when it succeeds.
        let failed = async {
            match failed_rx.await {
                Ok(e) => e,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown => {}
            e = failed => {
                tracing::error!(target: "wgpu_infer::server", "loading the models failed: {e}");
                *seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            }
        }
        tracing::info!(target: "wgpu_infer::server", "shutting down: finishing the requests in flight");
    };
    axum::serve(listener, router(app))
        .with_graceful_shutdown(stop)
        .await
        .map_err(|e| Error::io("server socket", e))?;
    let failed = failure.lock().unwrap_or_else(|p| p.into_inner()).take();
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Checks the limits against the models and starts the embedding batcher.
fn start_workers(app: &App, models: Models) -> Result<Ready> {
    let c = &app.config;
    if let Some(r) = &models.rerank {
        crate::models::rerank::check_head(r.name(), r.num_labels())?;
    }
    let batcher = match &models.embed {
        Some(bert) => {
            if c.max_batch_tokens < bert.max_len() {
                return Err(Error::InvalidArgument(format!(
                    "max_batch_tokens ({}) must be at least the model's max input length ({})",
                    c.max_batch_tokens,
                    bert.max_len()
                )));
            }
            let limits = BatchLimits {
                max_tokens: c.max_batch_tokens,
                max_requests: c.max_batch_requests,
            };
            let (b, _thread) = Batcher::start(bert.clone(), limits, app.metrics.clone())
                .map_err(|e| Error::io("embed-batcher thread", e))?;
            Some(b)
        }
        None => None,
    };
    Ok(Ready {
        untruncated: models.embed.as_deref().and_then(text::untruncated),
        models,
        batcher,
        generations: Arc::new(Semaphore::new(c.max_concurrent_generations)),
    })
}
