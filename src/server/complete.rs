//! `POST /v1/completions` (OpenAI): text completion, whole or streamed as Server-Sent Events,
//! on the shared generation machinery (`generation.rs`).

use super::error::{ApiError, ApiResult};
use super::generation::{check_prompt, generation_model, options, respond, Api, Job, Sampled};
use super::text::Texts;
use super::{parse_json, Shared};
use crate::models::CausalLm;
use axum::extract::{Request, State};
use axum::response::Response;
use serde::Deserialize;
use std::time::Instant;

#[derive(Deserialize)]
struct CompletionRequest {
    prompt: Texts,
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    top_k: Option<usize>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    stop: Option<Texts>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    n: Option<usize>,
    #[serde(default)]
    echo: Option<bool>,
    #[serde(default)]
    logprobs: Option<serde_json::Value>,
}

/// OpenAI's default `max_tokens`.
const DEFAULT_MAX_TOKENS: usize = 16;
fn check(r: CompletionRequest, model: &CausalLm, max_inputs: usize) -> ApiResult<Job> {
    if r.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_request("only n = 1 is supported"));
    }
    if r.echo == Some(true) {
        return Err(ApiError::bad_request("echo is not supported"));
    }
    if r.logprobs.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request("logprobs are not supported"));
    }
    let prompts = match r.prompt {
        Texts::One(s) => vec![s],
        Texts::Many(v) => v,
    };
    if prompts.is_empty() {
        return Err(ApiError::empty("`prompt` is empty"));
    }
    if prompts.len() > max_inputs {
        return Err(ApiError::too_large(format!(
            "{} prompts in one request; at most {max_inputs} are accepted (--max-client-batch-size)",
            prompts.len()
        )));
    }
    let (opts, stops) = options(
        Sampled {
            max_tokens: r.max_tokens,
            temperature: r.temperature,
            top_p: r.top_p,
            top_k: r.top_k,
            seed: r.seed,
            stop: r.stop,
        },
        DEFAULT_MAX_TOKENS,
    )?;
    if model.tokenizer().is_none() {
        return Err(ApiError::not_found("the generation model has no tokenizer"));
    }
    let prompts = prompts
        .iter()
        .map(|p| {
            if p.is_empty() {
                return Err(ApiError::empty("a prompt is empty"));
            }
            let ids = model.tokenize(p)?;
            check_prompt(model, &ids, &opts)?;
            Ok(ids)
        })
        .collect::<ApiResult<_>>()?;
    Ok(Job {
        prompts,
        opts,
        stops,
    })
}

/// `POST /v1/completions`.
pub(super) async fn completions(State(app): Shared, req: Request) -> ApiResult<Response> {
    let t_arrival = Instant::now();
    let (_, body) = app.body(req).await?;
    let r: CompletionRequest = parse_json(&body)?;
    let model = generation_model(&app)?;
    let stream = r.stream;
    let admitted = app.admit()?;
    let max_inputs = app.config.max_client_batch_size;
    let m = model.clone();
    let job = super::blocking(move || check(r, &m, max_inputs)).await?;
    respond(
        app,
        model,
        job,
        stream,
        Api::Completions,
        t_arrival,
        admitted,
    )
    .await
}
