//! `POST /v1/chat/completions` (OpenAI): the conversation rendered with the generation
//! model's chat template, then generated as `/v1/completions` generates (same slots, stop
//! sequences, SSE; chunks of `chat.completion.chunk` opening with the assistant's role).

use super::error::{ApiError, ApiResult};
use super::generation::{check_prompt, generation_model, options, respond, Api, Job, Sampled};
use super::text::Texts;
use super::{parse_json, Shared};
use crate::chat::{ChatMessage, ChatTemplate};
use crate::models::CausalLm;
use axum::extract::{Request, State};
use axum::response::Response;
use serde::Deserialize;
use std::time::Instant;

#[derive(Deserialize)]
struct ChatRequest {
    messages: Vec<RequestMessage>,
    /// Informational: the server has one generation model.
    #[serde(default)]
    #[allow(dead_code)]
    model: Option<String>,
    #[serde(default)]
    max_tokens: Option<usize>,
    /// The newer name of `max_tokens`.
    #[serde(default)]
    max_completion_tokens: Option<usize>,
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
    logprobs: Option<bool>,
    #[serde(default)]
    tools: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    response_format: Option<serde_json::Value>,
    #[serde(default)]
    frequency_penalty: Option<f32>,
    #[serde(default)]
    presence_penalty: Option<f32>,
}

#[derive(Deserialize)]
struct RequestMessage {
    role: String,
    #[serde(default)]
    content: Content,
}

/// A message's content: a string, or a list of parts of which only `text` ones are accepted.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Content {
    #[default]
    Null,
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

/// Replies are at most this long unless the request says (and never past the context).
const DEFAULT_MAX_TOKENS: usize = 512;

fn check(r: ChatRequest, model: &CausalLm, template: &ChatTemplate) -> ApiResult<Job> {
    if r.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad_request("only n = 1 is supported"));
    }
    if r.logprobs == Some(true) {
        return Err(ApiError::bad_request("logprobs are not supported"));
    }
    if r.tools.as_ref().is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::bad_request("tools are not supported"));
    }
    if let Some(f) = r.response_format.as_ref().filter(|f| !f.is_null()) {
        if f.get("type").and_then(|t| t.as_str()) != Some("text") {
            return Err(ApiError::bad_request(
                "response_format: only {\"type\": \"text\"} is supported",
            ));
        }
    }
    for (name, p) in [
        ("frequency_penalty", r.frequency_penalty),
        ("presence_penalty", r.presence_penalty),
    ] {
        if p.is_some_and(|p| p != 0.0) {
            return Err(ApiError::bad_request(format!(
                "{name} is not supported (only 0)"
            )));
        }
    }
    if r.max_tokens.is_some() && r.max_completion_tokens.is_some() {
        return Err(ApiError::bad_request(
            "give max_tokens or max_completion_tokens, not both",
        ));
    }
    if r.messages.is_empty() {
        return Err(ApiError::empty("`messages` is empty"));
    }
    let messages = r
        .messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<ApiResult<Vec<_>>>()?;
    let prompt = template.render(&messages, true)?;
    let ids = model.tokenize(&prompt)?;
    let asked = r.max_tokens.or(r.max_completion_tokens);
    let room = model.context().saturating_sub(ids.len()).max(1);
    let (opts, stops) = options(
        Sampled {
            max_tokens: asked,
            temperature: r.temperature,
            top_p: r.top_p,
            top_k: r.top_k,
            seed: r.seed,
            stop: r.stop,
        },
        DEFAULT_MAX_TOKENS.min(room),
    )?;
    check_prompt(model, &ids, &opts)?;
    Ok(Job {
        prompts: vec![ids],
        opts,
        stops,
    })
}

/// Message `i` as the template takes it: roles system (or developer), user, assistant; text
/// content.
fn message(i: usize, m: RequestMessage) -> ApiResult<ChatMessage> {
    let role = match m.role.as_str() {
        "system" | "developer" => "system",
        "user" | "assistant" => m.role.as_str(),
        other => {
            return Err(ApiError::bad_request(format!(
                "messages[{i}].role '{other}' is not supported (system, developer, user, assistant)"
            )))
        }
    };
    let content = match m.content {
        Content::Text(s) => s,
        Content::Null => String::new(),
        Content::Parts(parts) => {
            let mut text = String::new();
            for (j, p) in parts.into_iter().enumerate() {
                match (p.kind.as_str(), p.text) {
                    ("text", Some(t)) => text.push_str(&t),
                    (kind, _) => {
                        return Err(ApiError::bad_request(format!(
                        "messages[{i}].content[{j}]: only text parts are supported, not '{kind}'"
                    )))
                    }
                }
            }
            text
        }
    };
    Ok(ChatMessage::new(role, content))
}

/// `POST /v1/chat/completions`.
pub(super) async fn chat_completions(State(app): Shared, req: Request) -> ApiResult<Response> {
    let t_arrival = Instant::now();
    let (_, body) = app.body(req).await?;
    let r: ChatRequest = parse_json(&body)?;
    let model = generation_model(&app)?;
    let template = app.ready()?.models.chat.clone().ok_or_else(|| {
        ApiError::not_found(
            "the generation model has no chat template (it is not a chat model); use \
             /v1/completions",
        )
    })?;
    let stream = r.stream;
    let admitted = app.admit()?;
    let m = model.clone();
    let job = super::blocking(move || check(r, &m, &template)).await?;
    respond(app, model, job, stream, Api::Chat, t_arrival, admitted).await
}
