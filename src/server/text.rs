//! Text endpoints: TEI's `POST /embed`, `POST /rerank` and `POST /tokenize`, OpenAI's
//! `POST /v1/embeddings`.

use super::batcher::EmbedJob;
use super::error::{ApiError, ApiResult};
use super::metrics::Queued;
use super::{blocking, parse_json, App, Shared};
use crate::models::sentence::l2_normalize;
use crate::models::Bert;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Instant;
use tokenizers::Encoding;

/// A string or a list of strings.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Texts {
    One(String),
    Many(Vec<String>),
}

impl Texts {
    fn into_vec(self) -> Vec<String> {
        match self {
            Texts::One(s) => vec![s],
            Texts::Many(v) => v,
        }
    }
}

/// Accepts a string or a list of strings, with a message naming the field otherwise.
fn texts<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Texts, D::Error> {
    Texts::deserialize(d)
        .map_err(|_| serde::de::Error::custom("expected a string or an array of strings"))
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct EmbedRequest {
    #[serde(deserialize_with = "texts")]
    inputs: Texts,
    #[serde(default = "yes")]
    normalize: bool,
    #[serde(default)]
    truncate: bool,
}

#[derive(Deserialize)]
struct TokenizeRequest {
    #[serde(deserialize_with = "texts")]
    inputs: Texts,
    #[serde(default = "yes")]
    add_special_tokens: bool,
}

#[derive(Deserialize)]
struct OpenAiEmbeddingRequest {
    #[serde(deserialize_with = "texts")]
    input: Texts,
    #[serde(default)]
    encoding_format: Option<String>,
    #[serde(default)]
    dimensions: Option<usize>,
}

/// The embedding model, or 404.
fn embedder(app: &App) -> ApiResult<Arc<Bert>> {
    app.ready()?.models.embed.clone().ok_or_else(|| {
        ApiError::not_found("this server has no embedding model (start it with --embed-model)")
    })
}

/// Checks the number of inputs: at least one, at most `max_client_batch_size`.
fn check_count(app: &App, n: usize, what: &str) -> ApiResult<()> {
    if n == 0 {
        return Err(ApiError::empty(format!(
            "`{what}` is empty: nothing to embed"
        )));
    }
    let max = app.config.max_client_batch_size;
    if n > max {
        return Err(ApiError::too_large(format!(
            "{n} inputs in one request; at most {max} are accepted (--max-client-batch-size)"
        )));
    }
    Ok(())
}

/// Embeds `texts` through the batcher: the vectors and the tokens they used.
async fn embed_texts(
    app: &Arc<App>,
    route: &'static str,
    texts: Vec<String>,
    normalize: bool,
    truncate: bool,
) -> ApiResult<(Vec<Vec<f32>>, usize)> {
    let bert = embedder(app)?;
    check_count(
        app,
        texts.len(),
        if route == "/embed" { "inputs" } else { "input" },
    )?;
    let _permit = app.admit()?;
    app.timed(async {
        let max = bert.max_len();
        let model = bert.clone();
        let encs: Vec<Encoding> = blocking(move || {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let encs = model.encode_texts(&refs)?;
            if !truncate {
                if let Some(i) = encs.iter().position(|e| !e.get_overflowing().is_empty()) {
                    return Err(ApiError::too_long(format!(
                        "input {i} is longer than the model's maximum of {max} tokens; \
                         send `truncate: true` to cut it"
                    )));
                }
            }
            Ok(encs)
        })
        .await?;
        let tokens = encs.iter().map(|e| e.len()).sum();
        let (reply, answer) = tokio::sync::oneshot::channel();
        let batcher = app
            .ready()?
            .batcher
            .as_ref()
            .expect("a batcher with the model");
        batcher.submit(EmbedJob {
            route,
            encs,
            normalize,
            enqueued: Instant::now(),
            queued: Some(Queued::new(&app.metrics)),
            reply,
        })?;
        let vecs = answer
            .await
            .map_err(|_| ApiError::unhealthy("the embedding worker stopped"))??;
        Ok((vecs, tokens))
    })
    .await
}

/// `POST /embed` (TEI): `{inputs, normalize = true, truncate = false}` → `[[f32]]`.
pub(super) async fn embed(State(app): Shared, req: Request) -> ApiResult<Json<Vec<Vec<f32>>>> {
    let (_, body) = app.body(req).await?;
    let r: EmbedRequest = parse_json(&body)?;
    let (vecs, _) =
        embed_texts(&app, "/embed", r.inputs.into_vec(), r.normalize, r.truncate).await?;
    Ok(Json(vecs))
}

/// `POST /v1/embeddings` (OpenAI): normalized embeddings, as floats or base64 little-endian
/// f32, optionally cut to their first `dimensions` (and normalized again).
pub(super) async fn openai_embeddings(State(app): Shared, req: Request) -> ApiResult<Response> {
    let (_, body) = app.body(req).await?;
    let r: OpenAiEmbeddingRequest = parse_json(&body)?;
    let base64 = match r.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "encoding_format '{f}' is not one of \"float\", \"base64\""
            )))
        }
    };
    let bert = embedder(&app)?;
    if let Some(d) = r.dimensions {
        if d == 0 || d > bert.dim() {
            return Err(ApiError::bad_request(format!(
                "dimensions must be in 1..={} (the model's width), got {d}",
                bert.dim()
            )));
        }
    }
    let (vecs, tokens) =
        embed_texts(&app, "/v1/embeddings", r.input.into_vec(), true, false).await?;
    let data: Vec<serde_json::Value> = vecs
        .into_iter()
        .enumerate()
        .map(|(index, mut v)| {
            if let Some(d) = r.dimensions {
                v.truncate(d);
                l2_normalize(&mut v);
            }
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                serde_json::json!(v)
            };
            serde_json::json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(Json(serde_json::json!({
        "object": "list",
        "data": data,
        "model": bert.name(),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response())
}

#[derive(serde::Serialize)]
pub(super) struct SimpleToken {
    id: u32,
    text: String,
    special: bool,
    start: Option<usize>,
    stop: Option<usize>,
}

/// `POST /tokenize` (TEI): `{inputs, add_special_tokens = true}` → per input, its tokens with
/// their text and byte offsets (special tokens have none). Texts are not truncated.
pub(super) async fn tokenize(
    State(app): Shared,
    req: Request,
) -> ApiResult<Json<Vec<Vec<SimpleToken>>>> {
    let (_, body) = app.body(req).await?;
    let r: TokenizeRequest = parse_json(&body)?;
    let bert = embedder(&app)?;
    let texts = r.inputs.into_vec();
    check_count(&app, texts.len(), "inputs")?;
    let _permit = app.admit()?;
    let tok = app.ready()?.untruncated.clone().ok_or_else(|| {
        ApiError::not_found(format!("the model {} has no tokenizer", bert.name()))
    })?;
    let special = r.add_special_tokens;
    let out = app
        .timed(blocking(move || {
            texts
                .iter()
                .map(|t| {
                    let enc = tok
                        .encode(t.as_str(), special)
                        .map_err(|e| ApiError::from(crate::Error::Tokenizer(e.to_string())))?;
                    Ok(simple_tokens(t, &enc))
                })
                .collect()
        }))
        .await?;
    Ok(Json(out))
}

fn simple_tokens(text: &str, enc: &Encoding) -> Vec<SimpleToken> {
    let special = enc.get_special_tokens_mask();
    enc.get_ids()
        .iter()
        .zip(enc.get_tokens())
        .zip(enc.get_offsets())
        .zip(special)
        .map(
            |(((&id, tok), &(a, b)), &s)| match (s != 0, text.get(a..b)) {
                (false, Some(piece)) => SimpleToken {
                    id,
                    text: piece.to_string(),
                    special: false,
                    start: Some(a),
                    stop: Some(b),
                },
                _ => SimpleToken {
                    id,
                    text: tok.clone(),
                    special: s != 0,
                    start: None,
                    stop: None,
                },
            },
        )
        .collect()
}

pub(super) fn untruncated(bert: &Bert) -> Option<Arc<tokenizers::Tokenizer>> {
    let mut tok = bert.tokenizer()?.clone();
    tok.with_truncation(None).ok()?;
    Some(Arc::new(tok))
}

#[derive(Deserialize)]
struct RerankRequest {
    query: String,
    texts: Vec<String>,
    #[serde(default)]
    raw_scores: bool,
    #[serde(default)]
    return_text: bool,
    #[serde(default)]
    truncate: bool,
}

/// `POST /rerank` (TEI): `{query, texts, raw_scores = false, return_text = false, truncate =
/// false}` → `[{index, score, text?}]`, best first; score = sigmoid(logit) unless `raw_scores`.
pub(super) async fn rerank(
    State(app): Shared,
    req: Request,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    let (_, body) = app.body(req).await?;
    let r: RerankRequest = parse_json(&body)?;
    let model = app.ready()?.models.rerank.clone().ok_or_else(|| {
        ApiError::not_found("this server has no reranker (start it with --rerank-model)")
    })?;
    if r.query.trim().is_empty() {
        return Err(ApiError::empty("`query` is empty"));
    }
    check_count(&app, r.texts.len(), "texts")?;
    let _permit = app.admit()?;
    let t0 = Instant::now();
    let (query, texts, truncate) = (r.query, r.texts, r.truncate);
    let (logits, texts) = app
        .timed(blocking(move || {
            let docs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let logits = model.rerank(&query, &docs, truncate)?;
            Ok((logits, texts))
        }))
        .await?;
    app.metrics.inferred("/rerank", t0.elapsed());
    Ok(Json(
        crate::models::rerank::rank(&logits, r.raw_scores)
            .into_iter()
            .map(|x| {
                let mut v = serde_json::json!({"index": x.index, "score": x.score});
                if r.return_text {
                    v["text"] = serde_json::Value::String(texts[x.index].clone());
                }
                v
            })
            .collect(),
    ))
}
