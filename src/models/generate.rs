//! Autoregressive generation shared by decoder models: options, streamed token events, the
//! device-resident KV cache session, and the decode loop (prefill once, then one cached step
//! per token; sampling; stop at EOS; text streamed without splitting UTF-8 characters).

use super::sampling::{sample, Rng, Sampling};
use crate::error::{check_finite, Error, Result};
use crate::graph::{Backend, Graph, PlanCache, State};
use crate::tensor::{DType, Tensor, ValueInfo};
use std::sync::Arc;
use web_time::Instant;

/// Options of a generation.
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Stop when the model emits its EOS token (the EOS token is returned, as transformers
    /// does).
    pub stop_at_eos: bool,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_new_tokens: 64,
            sampling: Sampling::default(),
            stop_at_eos: true,
        }
    }
}

/// One streamed token.
#[derive(Clone, Debug)]
pub struct TokenEvent<'a> {
    pub id: u32,
    /// Text that became complete with this token (may be empty mid-way through a UTF-8 char).
    pub text: &'a str,
    /// Index among the new tokens.
    pub index: usize,
    /// The next-token logits this token was chosen from ([vocab]).
    pub logits: &'a [f32],
}

/// Result of a generation.
#[derive(Clone, Debug)]
pub struct Generation {
    pub prompt_tokens: Vec<u32>,
    pub tokens: Vec<u32>,
    pub text: String,
    pub stopped_at_eos: bool,
    /// Seconds spent on the prompt forward (including first-use plan compiles).
    pub prefill_secs: f64,
    /// Seconds spent on decode steps.
    pub decode_secs: f64,
}

/// A decoder's KV cache on one backend (two states [1, positions, width] per layer, sized to
/// the generations it serves, not to the model's whole context) and the compiled step plans,
/// by the number of tokens a step feeds.
pub(crate) struct KvSession {
    positions: usize,
    states: Vec<State>,
    steps: PlanCache<usize>,
}

impl KvSession {
    /// A cache of `positions` positions; its bytes are checked against the memory budget
    /// before anything is allocated.
    pub fn new(backend: &Backend, layers: usize, positions: usize, width: usize) -> Result<Self> {
        let info = ValueInfo::new(&[1, positions, width], DType::F32);
        let states = (0..2 * layers)
            .map(|_| backend.new_state(&info))
            .collect::<Result<Vec<_>>>()?;
        Ok(KvSession {
            positions,
            states,
            steps: PlanCache::new(8),
        })
    }

    /// Bytes of the cache plus the largest step plan, and the last step's dispatches.
    /// Kernels of the last step plan built (a decode step once decoding ran).
    pub fn kernels(&self) -> Vec<String> {
        self.steps.last_stats().map_or_else(Vec::new, |s| s.kernels)
    }

    pub fn memory_and_dispatches(&self) -> (u64, usize) {
        let cache: u64 = self.states.iter().map(|s| s.bytes()).sum();
        let last = self.steps.last_stats().map_or(0, |s| s.dispatches);
        (self.steps.peak_bytes() + cache, last)
    }

    /// Runs one step over `ids` at offset `past` with the plan built by
    /// `build(ids.len(), positions)`: the logits of the last token.
    pub async fn step(
        &mut self,
        backend: &Backend,
        ids: &[u32],
        past: usize,
        build: impl FnOnce(usize, usize) -> Result<Graph>,
    ) -> Result<Tensor> {
        let (s, positions) = (ids.len(), self.positions);
        let feeds = [
            Tensor::from_u32(&[1, s], ids.to_vec())?,
            Tensor::from_u32(&[1, s], (past..past + s).map(|p| p as u32).collect())?,
            Tensor::from_u32(&[1], vec![past as u32])?,
        ];
        let refs: Vec<&Tensor> = feeds.iter().collect();
        let states: Vec<&State> = self.states.iter().collect();
        let plan = self
            .steps
            .get_or_build_async(s, || async move {
                backend
                    .compile_async(Arc::new(build(s, positions)?), &states)
                    .await
            })
            .await?;
        plan.run_async(&refs).await?.take("logits")
    }
}

/// Idle KV sessions of one model. A generation takes one big enough (or makes one sized to
/// prompt + new tokens, rounded up to a power of two, at most the context) and gives it back,
/// so no lock is held while it runs: concurrent generations run side by side, and a token
/// callback may call back into the same model.
pub(crate) struct KvPool {
    idle: std::sync::Mutex<Vec<KvSession>>,
}

/// The positions of a new cache for a generation of `need` tokens: `need` rounded up to a
/// power of two, at least 64, at most the model's `context`.
pub(crate) fn cache_positions(need: usize, context: usize) -> usize {
    need.next_power_of_two().max(64).min(context).max(need)
}

/// Sessions kept idle per model (more concurrent generations allocate and then drop theirs).
const IDLE_SESSIONS: usize = 2;

impl KvPool {
    pub fn new() -> Self {
        KvPool {
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<KvSession>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session of at least `need` positions: the smallest idle one that fits, else a new one
    /// of `need` rounded up to a power of two (at least 64, at most `context`).
    pub fn take(
        &self,
        backend: &Backend,
        (layers, width, context): (usize, usize, usize),
        need: usize,
    ) -> Result<KvSession> {
        let found = {
            let mut idle = self.idle();
            let best = (0..idle.len())
                .filter(|&i| idle[i].positions >= need)
                .min_by_key(|&i| idle[i].positions);
            best.map(|i| idle.swap_remove(i))
        };
        match found {
            Some(s) => Ok(s),
            None => KvSession::new(backend, layers, cache_positions(need, context), width),
        }
    }

    /// Returns a session for reuse (the largest ones are kept).
    pub fn give_back(&self, session: KvSession) {
        let mut idle = self.idle();
        idle.push(session);
        idle.sort_by_key(|s| std::cmp::Reverse(s.positions));
        idle.truncate(IDLE_SESSIONS);
    }

    /// Memory and dispatches of the largest idle session (zeros when none is idle).
    pub fn memory_and_dispatches(&self) -> (u64, usize) {
        self.idle()
            .iter()
            .map(KvSession::memory_and_dispatches)
            .max()
            .unwrap_or((0, 0))
    }

    /// Kernels of the largest idle session's last step plan.
    pub fn kernels(&self) -> Vec<String> {
        self.idle()
            .first()
            .map_or_else(Vec::new, KvSession::kernels)
    }
}

/// The ids of a text prompt. A prompt longer than the context is refused after tokenizing a
/// bounded prefix of it, not the whole text.
pub(crate) fn tokenize_prompt(
    tok: &tokenizers::Tokenizer,
    prompt: &str,
    n_positions: usize,
) -> Result<Vec<u32>> {
    let head = super::text::bounded_prefix(tok, prompt, n_positions)?;
    if head.len() < prompt.len() {
        return Err(Error::InvalidArgument(format!(
            "prompt of {} bytes is longer than the context of {n_positions} tokens (n_positions)",
            prompt.len()
        )));
    }
    let enc = super::text::tokenizing(|| tok.encode(prompt, false))?;
    Ok(enc.get_ids().to_vec())
}

/// Checks a request before anything runs: sampling parameters, a non-empty prompt inside the
/// vocabulary, and prompt + new tokens within the context.
pub(crate) fn check_request(
    prompt: &[u32],
    opts: &GenerateOptions,
    vocab: usize,
    context: usize,
) -> Result<()> {
    opts.sampling.validate()?;
    if prompt.is_empty() {
        return Err(Error::InvalidArgument(
            "the prompt is empty (no tokens)".into(),
        ));
    }
    check_ids(prompt, vocab)?;
    if prompt
        .len()
        .checked_add(opts.max_new_tokens)
        .is_none_or(|n| n > context)
    {
        return Err(Error::InvalidArgument(format!(
            "prompt ({} tokens) + max_new_tokens ({}) exceeds the context of {context} positions (n_positions)",
            prompt.len(),
            opts.max_new_tokens,
        )));
    }
    Ok(())
}

/// Every id inside the vocabulary.
pub(crate) fn check_ids(ids: &[u32], vocab: usize) -> Result<()> {
    match ids.iter().find(|&&i| i as usize >= vocab) {
        Some(&id) => Err(Error::InvalidArgument(format!(
            "token id {id} out of range for vocab_size {vocab}"
        ))),
        None => Ok(()),
    }
}

/// Checks a padded batch of decoder ids ([batch, seq], at most `context` long, inside the
/// vocabulary) and returns its additive key mask (`mask`: 1 = token, 0 = padding; none = all
/// tokens).
pub(crate) fn padded_bias(
    ids: &[u32],
    (batch, seq): (usize, usize),
    mask: Option<&[u32]>,
    (vocab, context): (usize, usize),
) -> Result<Vec<f32>> {
    if batch.checked_mul(seq) != Some(ids.len()) || ids.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "expected batch*seq = {batch}*{seq} ids, got {}",
            ids.len()
        )));
    }
    if seq > context {
        return Err(Error::InvalidArgument(format!(
            "sequence of {seq} tokens exceeds the model's {context} positions"
        )));
    }
    check_ids(ids, vocab)?;
    match mask {
        Some(m) if m.len() != ids.len() => Err(Error::InvalidArgument(format!(
            "mask has {} values, expected {}",
            m.len(),
            ids.len()
        ))),
        Some(m) => Ok(m
            .iter()
            .map(|&v| if v != 0 { 0.0 } else { f32::MIN })
            .collect()),
        None => Ok(vec![0.0; ids.len()]),
    }
}

/// A decoder's whole generation: checks the request, takes a KV session of `pool` big enough
/// for prompt + new tokens (`dims` = layers, cache width, context), runs [`decode`] with steps
/// of the plans `build(s, positions)` makes, and gives the session back.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn generate_cached(
    pool: &KvPool,
    backend: &Backend,
    (dims, vocab): ((usize, usize, usize), usize),
    prompt: &[u32],
    opts: &GenerateOptions,
    eos: &[u32],
    tokenizer: Option<&tokenizers::Tokenizer>,
    build: impl Fn(usize, usize) -> Result<Graph>,
    on_token: impl FnMut(&TokenEvent) -> bool,
) -> Result<Generation> {
    check_request(prompt, opts, vocab, dims.2)?;
    let need = prompt.len() + opts.max_new_tokens; // checked against the context above
    let mut session = pool.take(backend, dims, need)?;
    let step = async |ids: Vec<u32>, past: usize| session.step(backend, &ids, past, &build).await;
    let out = decode(prompt, opts, eos, tokenizer, step, on_token).await;
    pool.give_back(session);
    out
}

/// The decode loop (stopping at any of the `eos` ids when `opts.stop_at_eos`): `step(ids, past)` returns the next-token logits after feeding `ids` at
/// offset `past` (the whole prompt first, then one token at a time); `on_token` gets each new
/// token as it is produced (return `false` to stop early).
pub(crate) async fn decode(
    prompt: &[u32],
    opts: &GenerateOptions,
    eos: &[u32],
    tokenizer: Option<&tokenizers::Tokenizer>,
    mut step: impl AsyncFnMut(Vec<u32>, usize) -> Result<Tensor>,
    mut on_token: impl FnMut(&TokenEvent) -> bool,
) -> Result<Generation> {
    let mut rng = Rng::new(opts.sampling.seed);
    let mut out = Generation {
        prompt_tokens: prompt.to_vec(),
        tokens: Vec::new(),
        text: String::new(),
        stopped_at_eos: false,
        prefill_secs: 0.0,
        decode_secs: 0.0,
    };
    let mut fed: Vec<u32> = prompt.to_vec();
    let mut past = 0usize;
    let mut emitted = 0usize; // bytes of `out.text` already streamed
    while out.tokens.len() < opts.max_new_tokens {
        let t0 = Instant::now();
        let s = fed.len();
        let logits = step(std::mem::take(&mut fed), past).await?;
        let logits = logits.as_f32()?;
        let n = out.tokens.len();
        check_finite(|| format!("logits of generated token {n}"), logits)?;
        let next = sample(logits, &opts.sampling, &mut rng) as u32;
        let secs = t0.elapsed().as_secs_f64();
        if past == 0 {
            out.prefill_secs += secs;
        } else {
            out.decode_secs += secs;
        }
        past += s;
        out.tokens.push(next);
        fed = vec![next];
        if let Some(tok) = tokenizer {
            out.text = super::text::tokenizing(|| tok.decode(&out.tokens, true))?;
        }
        let eos = opts.stop_at_eos && eos.contains(&next);
        let last = eos || out.tokens.len() == opts.max_new_tokens;
        // Hold back an incomplete UTF-8 character (decoded as U+FFFD) until it completes,
        // unless this is the last token.
        let ready = if out.text.ends_with('\u{FFFD}') && !last {
            out.text.trim_end_matches('\u{FFFD}').len().max(emitted)
        } else {
            out.text.len()
        };
        let piece = out.text.get(emitted..ready).unwrap_or("").to_string();
        emitted = ready.max(emitted);
        let go_on = on_token(&TokenEvent {
            id: next,
            text: &piece,
            index: out.tokens.len() - 1,
            logits,
        });
        if eos {
            out.stopped_at_eos = true;
            break;
        }
        if !go_on {
            break;
        }
    }
    Ok(out)
}
