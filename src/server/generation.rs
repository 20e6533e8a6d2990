//! The generation machinery both OpenAI endpoints (`/v1/completions`, `/v1/chat/completions`)
//! share: checks of the sampling fields, stop sequences, the worker, the answer (JSON or SSE).
//!
//! Each request waits for one of `max_concurrent_generations` slots, then generates on a
//! blocking thread with its own KV cache (generations in different slots run side by side).
//! Text is cut before the first `stop` sequence and never streamed past a point where one
//! could still begin. A client that goes away (its stream or response dropped) stops its
//! generation at the next token.

use super::error::{ApiError, ApiResult};
use super::metrics::Queued;
use super::text::Texts;
use super::App;
use crate::models::generate::GenerateOptions;
use crate::models::sampling::Sampling;
use crate::models::CausalLm;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// OpenAI's most stop sequences.
const MAX_STOPS: usize = 4;

/// What the generating thread sends the handler.
enum Update {
    Text {
        index: usize,
        text: String,
    },
    Done {
        index: usize,
        finish: &'static str,
        tokens: usize,
    },
    Failed(ApiError),
}

/// A checked request.
pub(super) struct Job {
    pub prompts: Vec<Vec<u32>>,
    pub opts: GenerateOptions,
    pub stops: Vec<String>,
}

/// The sampling fields both endpoints share.
pub(super) struct Sampled {
    pub max_tokens: Option<usize>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<usize>,
    pub seed: Option<u64>,
    pub stop: Option<Texts>,
}

/// Checked generation options and stop sequences.
pub(super) fn options(r: Sampled, default_max: usize) -> ApiResult<(GenerateOptions, Vec<String>)> {
    let max_new = r.max_tokens.unwrap_or(default_max);
    if max_new == 0 {
        return Err(ApiError::bad_request("max_tokens must be at least 1"));
    }
    let stops = match r.stop {
        None => Vec::new(),
        Some(Texts::One(s)) => vec![s],
        Some(Texts::Many(v)) => v,
    };
    if stops.len() > MAX_STOPS || stops.iter().any(String::is_empty) {
        return Err(ApiError::bad_request(format!(
            "stop takes at most {MAX_STOPS} non-empty strings"
        )));
    }
    let seed = r.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let sampling = Sampling {
        temperature: r.temperature.unwrap_or(1.0),
        top_k: r.top_k.filter(|&k| k > 0),
        top_p: r.top_p.filter(|&p| p != 1.0),
        seed,
    };
    sampling.validate()?;
    let opts = GenerateOptions {
        max_new_tokens: max_new,
        sampling,
        stop_at_eos: true,
    };
    Ok((opts, stops))
}

/// `ids` checked against the model: inside the vocabulary, prompt + new tokens within the
/// context.
pub(super) fn check_prompt(model: &CausalLm, ids: &[u32], opts: &GenerateOptions) -> ApiResult<()> {
    let (vocab, context) = (model.vocab_size(), model.context());
    crate::models::generate::check_request(ids, opts, vocab, context)?;
    Ok(())
}

/// Text released as it is generated, held back where a stop sequence could still begin.
struct StopScan<'a> {
    stops: &'a [String],
    hold: usize,
    text: String,
    sent: usize,
}

impl<'a> StopScan<'a> {
    fn new(stops: &'a [String]) -> Self {
        let hold = stops.iter().map(|s| s.len()).max().unwrap_or(1) - 1;
        StopScan {
            stops,
            hold,
            text: String::new(),
            sent: 0,
        }
    }
    /// Adds a piece: the text now safe to send, and whether a stop sequence was found.
    fn push(&mut self, piece: &str) -> (String, bool) {
        self.text.push_str(piece);
        if let Some(at) = self
            .stops
            .iter()
            .filter_map(|s| self.text.find(s.as_str()))
            .min()
        {
            let out = self.text[self.sent..at.max(self.sent)].to_string();
            self.sent = at.max(self.sent);
            self.text.truncate(self.sent);
            return (out, true);
        }
        let mut safe = self.text.len().saturating_sub(self.hold).max(self.sent);
        while !self.text.is_char_boundary(safe) {
            safe -= 1;
        }
        let out = self.text[self.sent..safe].to_string();
        self.sent = safe;
        (out, false)
    }
    /// The rest, at the end of the generation.
    fn finish(&mut self) -> String {
        let out = self.text[self.sent..].to_string();
        self.sent = self.text.len();
        out
    }
}

/// Runs a job's generations on this (blocking) thread, sending updates until the receiver
/// goes away.
fn generate(
    app: &App,
    route: &str,
    model: &CausalLm,
    job: &Job,
    deadline: Instant,
    tx: &mpsc::UnboundedSender<Update>,
) {
    for (index, ids) in job.prompts.iter().enumerate() {
        let mut scan = StopScan::new(&job.stops);
        let (mut stopped, mut timed_out) = (false, false);
        let t0 = Instant::now();
        let out = crate::edge::block_on(model.generate_ids_stream(ids, &job.opts, |ev| {
            let (text, hit) = scan.push(ev.text);
            if !text.is_empty() {
                let _ = tx.send(Update::Text { index, text });
            }
            stopped = hit;
            timed_out = Instant::now() > deadline;
            !(hit || timed_out || tx.is_closed())
        }));
        app.metrics.inferred(route, t0.elapsed());
        let gen = match out {
            Ok(g) => g,
            Err(e) => {
                let _ = tx.send(Update::Failed(e.into()));
                return;
            }
        };
        app.metrics.generated(gen.tokens.len());
        if tx.is_closed() {
            app.metrics.cancelled();
            return;
        }
        if timed_out && !stopped {
            let secs = app.config.request_timeout.as_secs_f64();
            let _ = tx.send(Update::Failed(ApiError::timeout(secs)));
            return;
        }
        let rest = scan.finish();
        if !rest.is_empty() && !stopped {
            let _ = tx.send(Update::Text { index, text: rest });
        }
        let finish = if stopped || gen.stopped_at_eos {
            "stop"
        } else {
            "length"
        };
        let tokens = gen.tokens.len();
        let _ = tx.send(Update::Done {
            index,
            finish,
            tokens,
        });
    }
}

fn completion_id(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut rng = crate::rng::Rng::new(nanos as u64);
    format!("{prefix}-{:016x}{:08x}", rng.next_u64(), nanos as u32)
}

/// Which OpenAI API a generation answers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Api {
    Completions,
    Chat,
}

impl Api {
    fn route(self) -> &'static str {
        match self {
            Api::Completions => "/v1/completions",
            Api::Chat => "/v1/chat/completions",
        }
    }
    /// One choice of a response (`text`, or a chat `message`).
    fn choice(self, index: usize, text: &str, finish: &str) -> serde_json::Value {
        match self {
            Api::Completions => serde_json::json!(
                {"index": index, "text": text, "logprobs": null, "finish_reason": finish}),
            Api::Chat => {
                serde_json::json!({"index": index, "logprobs": null, "finish_reason": finish,
                "message": {"role": "assistant", "content": text}})
            }
        }
    }
    /// One choice of a streamed chunk: new text, or the end with its reason.
    fn delta(self, index: usize, text: &str, finish: Option<&str>) -> serde_json::Value {
        match self {
            Api::Completions => serde_json::json!(
                {"index": index, "text": text, "logprobs": null, "finish_reason": finish}),
            Api::Chat => {
                let delta = match finish {
                    Some(_) => serde_json::json!({}),
                    None => serde_json::json!({"content": text}),
                };
                serde_json::json!({"index": index, "delta": delta, "logprobs": null, "finish_reason": finish})
            }
        }
    }
    fn object(self, stream: bool) -> &'static str {
        match (self, stream) {
            (Api::Completions, _) => "text_completion",
            (Api::Chat, false) => "chat.completion",
            (Api::Chat, true) => "chat.completion.chunk",
        }
    }
}

/// The server's generation model, or 404.
pub(super) fn generation_model(app: &App) -> ApiResult<std::sync::Arc<CausalLm>> {
    app.ready()?.models.generate.clone().ok_or_else(|| {
        ApiError::not_found("this server has no generation model (start it with --generate-model)")
    })
}

/// Runs a checked job in a generation slot and answers as `api`: one JSON response, or
/// Server-Sent Events ending in `[DONE]`.
pub(super) async fn respond(
    app: std::sync::Arc<App>,
    model: std::sync::Arc<CausalLm>,
    job: Job,
    stream: bool,
    api: Api,
    t_arrival: Instant,
    admitted: tokio::sync::OwnedSemaphorePermit,
) -> ApiResult<Response> {
    let model_name = model.name().to_string();
    let prompt_tokens: usize = job.prompts.iter().map(Vec::len).sum();
    let deadline = t_arrival + app.config.request_timeout;
    let slots = app.ready()?.generations.clone();
    let slot = {
        let _q = Queued::new(&app.metrics);
        app.timed(async {
            slots
                .acquire_owned()
                .await
                .map_err(|_| ApiError::unhealthy("the server is shutting down"))
        })
        .await?
    };
    app.metrics.queued(api.route(), t_arrival.elapsed());
    let (tx, mut rx) = mpsc::unbounded_channel();
    let worker = app.clone();
    tokio::task::spawn_blocking(move || {
        let _held = (admitted, slot);
        let run = || generate(&worker, api.route(), &model, &job, deadline, &tx);
        if let Err(panic) = crate::contain::contain(run) {
            let _ = tx.send(Update::Failed(ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "backend",
                format!("the generation failed: {panic}"),
            )));
        }
    });
    let id = completion_id(if api == Api::Chat { "chatcmpl" } else { "cmpl" });
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = model_name.clone();
    if stream {
        let id = id.clone();
        let object = api.object(true);
        let chunk = move |choice: serde_json::Value| {
            serde_json::json!({
                "id": id, "object": object, "created": created, "model": name, "choices": [choice],
            })
            .to_string()
        };
        // A chat stream opens with the assistant's role, as OpenAI's does.
        let opening = (api == Api::Chat).then(|| {
            let role = serde_json::json!({"index": 0, "delta": {"role": "assistant", "content": ""},
                "logprobs": null, "finish_reason": null});
            chunk(role)
        });
        let events = futures_util::stream::unfold(
            (rx, false, opening),
            move |(mut rx, done, opening)| {
                let chunk = chunk.clone();
                async move {
                    if let Some(data) = opening {
                        let event = Ok::<_, std::convert::Infallible>(Event::default().data(data));
                        return Some((event, (rx, done, None)));
                    }
                    if done {
                        return None;
                    }
                    let (data, done) = match rx.recv().await {
                    Some(Update::Text { index, text }) => (chunk(api.delta(index, &text, None)), false),
                    Some(Update::Done { index, finish, .. }) => {
                        (chunk(api.delta(index, "", Some(finish))), false)
                    }
                    Some(Update::Failed(e)) => (
                        serde_json::json!({"error": {"message": e.message, "type": e.error_type}})
                            .to_string(),
                        false,
                    ),
                    None => ("[DONE]".to_string(), true),
                };
                    Some((
                        Ok::<_, std::convert::Infallible>(Event::default().data(data)),
                        (rx, done, None),
                    ))
                }
            },
        );
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let mut texts: Vec<String> = Vec::new();
    let mut finishes: Vec<&str> = Vec::new();
    let mut completion_tokens = 0usize;
    while let Some(u) = rx.recv().await {
        match u {
            Update::Text { index, text } => {
                if texts.len() <= index {
                    texts.resize(index + 1, String::new());
                }
                texts[index].push_str(&text);
            }
            Update::Done {
                index,
                finish,
                tokens,
            } => {
                if finishes.len() <= index {
                    finishes.resize(index + 1, "length");
                }
                finishes[index] = finish;
                completion_tokens += tokens;
            }
            Update::Failed(e) => return Err(e),
        }
    }
    let choices: Vec<serde_json::Value> = finishes
        .iter()
        .enumerate()
        .map(|(i, f)| api.choice(i, texts.get(i).map_or("", String::as_str), f))
        .collect();
    Ok(Json(serde_json::json!({
        "id": id,
        "object": api.object(false),
        "created": created,
        "model": model_name,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }))
    .into_response())
}
