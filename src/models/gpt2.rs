//! GPT-2 (HF `GPT2LMHeadModel`): logits and text generation with a KV cache kept on the device.
//!
//! ```text
//! ids ─ wte ─┐
//! pos ─ wpe ─┴─ add ─ [× L] ─ ln_f ─ lm_head (= wteᵀ when tied) ─ logits
//!   block: x ─ ln_1 ─ c_attn ─┬─ write K, V into the cache at `past`
//!                             └─ causal attention over cache[0 .. past+s] ─ c_proj (+x) ─ h
//!          h ─ ln_2 ─ c_fc + GELU(tanh) ─ c_proj (+h)
//! ```
//! A prompt is one forward over all its tokens (prefill); each new token is one decode step of
//! the same graph with s = 1. Both write into preallocated per-layer K/V buffers, so decoding
//! never re-runs the prompt and never reallocates.

use super::sampling::{sample, Rng, Sampling};
use super::{check_dir, load_tokenizer, require, shared, LoadOptions, Loaded, WeightsKey};
use crate::error::{Error, Result};
use crate::graph::{Backend, Constant, Graph, PlanCache, State, ValueId};
use crate::ops::attention::Attention;
use crate::ops::Act;
use crate::tensor::{DType, Tensor, ValueInfo};
use crate::weights::Weights;
use crate::Device;
use serde::Deserialize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The fields of HF `GPT2Config` this implementation reads.
#[derive(Clone, Debug, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_act")]
    pub activation_function: String,
    #[serde(default)]
    pub eos_token_id: Option<u32>,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_act() -> String {
    "gelu_new".into()
}
fn default_true() -> bool {
    true
}

impl Gpt2Config {
    /// GPT-2 small: 12 layers, 768 wide, 12 heads, vocabulary 50257, 1024 positions.
    pub fn small() -> Gpt2Config {
        Gpt2Config {
            vocab_size: 50257,
            n_positions: 1024,
            n_embd: 768,
            n_layer: 12,
            n_head: 12,
            n_inner: None,
            layer_norm_epsilon: 1e-5,
            activation_function: "gelu_new".into(),
            eos_token_id: Some(50256),
            tie_word_embeddings: true,
        }
    }
    fn inner(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }
}

struct Block {
    ln1: (Arc<Constant>, Arc<Constant>),
    attn_w: Arc<Constant>,
    attn_b: Arc<Constant>,
    proj_w: Arc<Constant>,
    proj_b: Arc<Constant>,
    ln2: (Arc<Constant>, Arc<Constant>),
    fc_w: Arc<Constant>,
    fc_b: Arc<Constant>,
    fc2_w: Arc<Constant>,
    fc2_b: Arc<Constant>,
}

struct Gpt2Weights {
    wte: Arc<Constant>,
    wpe: Arc<Constant>,
    blocks: Vec<Block>,
    ln_f: (Arc<Constant>, Arc<Constant>),
    /// Untied output projection [vocab, n_embd]; `None` means wte is used.
    lm_head: Option<Arc<Constant>>,
}

/// Options of [`Gpt2::generate`].
#[derive(Clone, Debug)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Stop when the model emits `eos_token_id` (the EOS token is returned, as transformers does).
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

/// Output of [`Gpt2::forward`].
#[derive(Clone, Debug)]
pub struct Gpt2Output {
    /// [batch, seq, vocab]
    pub logits: Tensor,
    /// Embedding output, each block's output, and the final one after ln_f (as transformers).
    pub hidden_states: Vec<Tensor>,
}

struct Session {
    states: Vec<State>,
    steps: PlanCache<usize>,
}

/// A loaded GPT-2. `Send + Sync`; generations on one model run one at a time.
pub struct Gpt2 {
    name: String,
    config: Gpt2Config,
    act: Act,
    backend: Backend,
    tokenizer: Option<tokenizers::Tokenizer>,
    w: Arc<Loaded<Gpt2Weights>>,
    forward_plans: Mutex<PlanCache<(usize, usize, bool)>>,
    session: Mutex<Option<Session>>,
    warnings: Vec<String>,
}

/// Where weights come from: a name and the shape the config implies → a tensor.
pub type TensorSource<'a> = &'a dyn Fn(&str, &[usize]) -> Result<Tensor>;

impl Gpt2 {
    pub fn from_pretrained(device: &Device, dir: impl AsRef<Path>) -> Result<Gpt2> {
        Self::load(Backend::Gpu(device.clone()), dir)
    }

    /// Loads a HuggingFace GPT-2 folder (config.json, model.safetensors, tokenizer.json).
    pub fn load(backend: Backend, dir: impl AsRef<Path>) -> Result<Gpt2> {
        Self::load_with(backend, dir, &LoadOptions::default())
    }

    /// [`Gpt2::load`] with options (for example f16 weight storage).
    pub fn load_with(backend: Backend, dir: impl AsRef<Path>, opts: &LoadOptions) -> Result<Gpt2> {
        opts.check()?;
        let dir = dir.as_ref();
        check_dir(dir)?;
        let cfg_path = require(dir, "config.json", "model config (config.json)")?;
        let config: Gpt2Config =
            super::config::load(&cfg_path, super::ModelKind::Gpt2, super::config::check_gpt2)?;
        let tokenizer = load_tokenizer(dir)?;
        let wpath = require(dir, "model.safetensors", "weights (model.safetensors)")?;
        let mut w = Weights::open(&wpath)?;
        if !w.contains("wte.weight") && w.names().iter().any(|n| n == "transformer.wte.weight") {
            w.set_prefix("transformer.");
        }
        let key = WeightsKey::new("gpt2", &wpath, &cfg_path, opts)?;
        let weights = shared(key, || {
            let bar = opts.bar(&w);
            let get = |name: &str, shape: &[usize]| {
                bar.inc(1);
                w.get_shaped(name, shape)
            };
            let weights = Self::build_weights(&config, &get, opts)
                .map_err(|e| LoadOptions::in_file(&wpath, e))?;
            let warnings = w
                .unread()
                .into_iter()
                .filter(|n| !n.ends_with(".attn.bias") && !n.ends_with(".attn.masked_bias"))
                .map(|n| format!("{}: unexpected tensor '{n}' ignored", wpath.display()))
                .collect();
            bar.finish_and_clear();
            Ok(Loaded { weights, warnings })
        })
        .map_err(|e| match e {
            Error::InvalidArgument(msg) => Error::Config {
                path: cfg_path.clone(),
                msg,
            },
            other => other,
        })?;
        let mut model = Self::from_parts(backend, config, weights, Some(tokenizer))?;
        model.name = super::name_of(dir);
        Ok(model)
    }

    /// Builds a model from a config and a weight source (HF names without `transformer.`).
    pub fn from_source(
        backend: Backend,
        config: Gpt2Config,
        w: TensorSource,
        tokenizer: Option<tokenizers::Tokenizer>,
        opts: &LoadOptions,
    ) -> Result<Gpt2> {
        opts.check()?;
        super::config::check_gpt2(&config).map_err(Error::InvalidArgument)?;
        let weights = Self::build_weights(&config, w, opts)?;
        let loaded = Loaded {
            weights,
            warnings: Vec::new(),
        };
        Self::from_parts(backend, config, Arc::new(loaded), tokenizer)
    }

    /// The constants of a model of `config`, read from `w`.
    fn build_weights(
        config: &Gpt2Config,
        w: TensorSource,
        opts: &LoadOptions,
    ) -> Result<Gpt2Weights> {
        let k = |name: &str, shape: &[usize]| -> Result<Arc<Constant>> {
            Ok(Constant::new(name, w(name, shape)?))
        };
        // Matmul weights and embedding tables, in the storage dtype.
        let kw = |name: &str, shape: &[usize]| opts.weight(name, w(name, shape)?);
        let (e, v, p, inner) = (
            config.n_embd,
            config.vocab_size,
            config.n_positions,
            config.inner(),
        );
        let mut blocks = Vec::with_capacity(config.n_layer);
        for l in 0..config.n_layer {
            let b = format!("h.{l}");
            blocks.push(Block {
                ln1: (
                    k(&format!("{b}.ln_1.weight"), &[e])?,
                    k(&format!("{b}.ln_1.bias"), &[e])?,
                ),
                attn_w: kw(&format!("{b}.attn.c_attn.weight"), &[e, 3 * e])?,
                attn_b: k(&format!("{b}.attn.c_attn.bias"), &[3 * e])?,
                proj_w: kw(&format!("{b}.attn.c_proj.weight"), &[e, e])?,
                proj_b: k(&format!("{b}.attn.c_proj.bias"), &[e])?,
                ln2: (
                    k(&format!("{b}.ln_2.weight"), &[e])?,
                    k(&format!("{b}.ln_2.bias"), &[e])?,
                ),
                fc_w: kw(&format!("{b}.mlp.c_fc.weight"), &[e, inner])?,
                fc_b: k(&format!("{b}.mlp.c_fc.bias"), &[inner])?,
                fc2_w: kw(&format!("{b}.mlp.c_proj.weight"), &[inner, e])?,
                fc2_b: k(&format!("{b}.mlp.c_proj.bias"), &[e])?,
            });
        }
        let lm_head = if config.tie_word_embeddings {
            None
        } else {
            // `lm_head.weight` never carries the `transformer.` prefix.
            Some(kw("lm_head.weight", &[v, e])?)
        };
        let weights = Gpt2Weights {
            wte: kw("wte.weight", &[v, e])?,
            wpe: kw("wpe.weight", &[p, e])?,
            blocks,
            ln_f: (k("ln_f.weight", &[e])?, k("ln_f.bias", &[e])?),
            lm_head,
        };
        Ok(weights)
    }

    fn from_parts(
        backend: Backend,
        config: Gpt2Config,
        weights: Arc<Loaded<Gpt2Weights>>,
        tokenizer: Option<tokenizers::Tokenizer>,
    ) -> Result<Gpt2> {
        let act = Act::from_hf(&config.activation_function)?;
        Ok(Gpt2 {
            name: String::new(),
            config,
            act,
            backend,
            tokenizer,
            warnings: weights.warnings.clone(),
            w: weights,
            forward_plans: Mutex::new(PlanCache::new(8)),
            session: Mutex::new(None),
        })
    }

    /// Device memory of the generation session (weights + activations + I/O of the largest step
    /// plan, plus the KV cache), and the dispatch count of the last step.
    pub fn memory_and_dispatches(&self) -> (u64, usize) {
        let s = self.session.lock().unwrap();
        match s.as_ref() {
            Some(s) => (
                s.steps.peak_bytes() + s.states.iter().map(|st| st.bytes()).sum::<u64>(),
                s.steps.last_stats().map_or(0, |st| st.dispatches),
            ),
            None => (0, 0),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn config(&self) -> &Gpt2Config {
        &self.config
    }
    pub fn backend(&self) -> &Backend {
        &self.backend
    }
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    pub fn tokenizer(&self) -> Option<&tokenizers::Tokenizer> {
        self.tokenizer.as_ref()
    }

    /// Bytes the KV cache takes on the backend once allocated: 2 · layers · n_positions · n_embd · 4.
    pub fn kv_cache_bytes(&self) -> u64 {
        let c = &self.config;
        2 * (c.n_layer * c.n_positions * c.n_embd * 4) as u64
    }

    /// The transformer blocks over `x` [b, s, E]. With a cache, K/V are written at `past` and
    /// attention reads the cache; without, attention reads the fused QKV directly.
    fn blocks(
        &self,
        g: &mut Graph,
        mut x: ValueId,
        mask: Option<ValueId>,
        cache: Option<(&[ValueId], ValueId)>,
        hidden: &mut Vec<ValueId>,
    ) -> Result<ValueId> {
        let c = &self.config;
        let e = c.n_embd;
        let eps = c.layer_norm_epsilon as f32;
        let hd = e / c.n_head;
        for (l, b) in self.w.blocks.iter().enumerate() {
            let (g1, b1) = (g.constant(&b.ln1.0)?, g.constant(&b.ln1.1)?);
            let h = g.layernorm(x, g1, b1, eps)?;
            let (aw, ab) = (g.constant(&b.attn_w)?, g.constant(&b.attn_b)?);
            let qkv = g.linear(h, aw, false, Some(ab), Act::None, None)?;
            let op = Attention {
                heads: c.n_head,
                head_dim: hd,
                scale: 1.0 / (hd as f32).sqrt(),
                causal: true,
                q_col: 0,
                k_col: e,
                v_col: 2 * e,
                mask: false,
                past: false,
            };
            let a = match cache {
                Some((states, past)) => {
                    let (kc, vc) = (states[2 * l], states[2 * l + 1]);
                    g.kv_write(kc, qkv, e, past)?;
                    g.kv_write(vc, qkv, 2 * e, past)?;
                    let op = Attention {
                        k_col: 0,
                        v_col: 0,
                        ..op
                    };
                    g.attention(op, qkv, kc, vc, mask, Some(past))?
                }
                None => g.attention(op, qkv, qkv, qkv, mask, None)?,
            };
            let (pw, pb) = (g.constant(&b.proj_w)?, g.constant(&b.proj_b)?);
            let x1 = g.linear(a, pw, false, Some(pb), Act::None, Some(x))?;
            let (g2, b2) = (g.constant(&b.ln2.0)?, g.constant(&b.ln2.1)?);
            let h2 = g.layernorm(x1, g2, b2, eps)?;
            let (fw, fb) = (g.constant(&b.fc_w)?, g.constant(&b.fc_b)?);
            let f = g.linear(h2, fw, false, Some(fb), self.act, None)?;
            let (f2w, f2b) = (g.constant(&b.fc2_w)?, g.constant(&b.fc2_b)?);
            x = g.linear(f, f2w, false, Some(f2b), Act::None, Some(x1))?;
            hidden.push(x);
        }
        Ok(x)
    }

    fn embed(&self, g: &mut Graph, b: usize, s: usize) -> Result<(ValueId, ValueId, ValueId)> {
        let ids = g.input("input_ids", &[b, s], DType::U32)?;
        let pos = g.input("position_ids", &[b, s], DType::U32)?;
        let wte = g.constant(&self.w.wte)?;
        let wpe = g.constant(&self.w.wpe)?;
        let te = g.embedding(wte, ids)?;
        let pe = g.embedding(wpe, pos)?;
        Ok((g.add(te, pe)?, ids, pos))
    }

    /// ln_f then the vocabulary projection of `x` [.., E].
    fn head(&self, g: &mut Graph, x: ValueId) -> Result<(ValueId, ValueId)> {
        let eps = self.config.layer_norm_epsilon as f32;
        let (fg, fb) = (g.constant(&self.w.ln_f.0)?, g.constant(&self.w.ln_f.1)?);
        let y = g.layernorm(x, fg, fb, eps)?;
        let head = g.constant(self.w.lm_head.as_ref().unwrap_or(&self.w.wte))?;
        Ok((y, g.matmul(y, head, true)?))
    }

    /// Full forward without a cache: logits for every position (for checks and scoring).
    fn build_forward(&self, b: usize, s: usize, hidden_out: bool) -> Result<Graph> {
        let mut g = Graph::new();
        let (x, _, _) = self.embed(&mut g, b, s)?;
        let mask = g.input("attention_bias", &[b, s], DType::F32)?;
        let mut hidden = vec![x];
        let x = self.blocks(&mut g, x, Some(mask), None, &mut hidden)?;
        let (y, logits) = self.head(&mut g, x)?;
        g.output("logits", logits);
        if hidden_out {
            hidden.pop();
            hidden.push(y);
            for (i, h) in hidden.iter().enumerate() {
                g.output(&format!("hidden_states.{i}"), *h);
            }
        }
        Ok(g)
    }

    /// The graph of one cached generation step over `s` new tokens (for inspection and
    /// profiling): inputs input_ids, position_ids, past; states k.{l}, v.{l}.
    pub fn step_graph(&self, s: usize) -> Result<Graph> {
        self.build_step(s)
    }

    /// One cached step over `s` new tokens at run-time offset `past`: logits of the last one.
    fn build_step(&self, s: usize) -> Result<Graph> {
        let c = &self.config;
        let mut g = Graph::new();
        let (x, _, _) = self.embed(&mut g, 1, s)?;
        let past = g.input("past", &[1], DType::U32)?;
        let mut states = Vec::with_capacity(2 * c.n_layer);
        for l in 0..c.n_layer {
            states.push(g.state(&format!("k.{l}"), &[1, c.n_positions, c.n_embd], DType::F32)?);
            states.push(g.state(&format!("v.{l}"), &[1, c.n_positions, c.n_embd], DType::F32)?);
        }
        let mut hidden = Vec::new();
        let x = self.blocks(&mut g, x, None, Some((&states, past)), &mut hidden)?;
        let last = if s > 1 { g.slice(x, 1, s - 1, s)? } else { x };
        let last = g.reshape(last, &[1, c.n_embd])?;
        let (_, logits) = self.head(&mut g, last)?;
        g.output("logits", logits);
        Ok(g)
    }

    /// Logits for every position of a batch. `mask` (1 = token, 0 = padding), if given, hides
    /// padded keys; positions are 0..seq in every row.
    pub fn forward(
        &self,
        ids: &[u32],
        batch: usize,
        seq: usize,
        mask: Option<&[u32]>,
        hidden_states: bool,
    ) -> Result<Gpt2Output> {
        let c = &self.config;
        if ids.len() != batch * seq || batch == 0 || seq == 0 {
            return Err(Error::InvalidArgument(format!(
                "expected batch*seq = {} ids, got {}",
                batch * seq,
                ids.len()
            )));
        }
        if seq > c.n_positions {
            return Err(Error::InvalidArgument(format!(
                "sequence of {seq} tokens exceeds n_positions {}",
                c.n_positions
            )));
        }
        self.check_ids(ids)?;
        let bias: Vec<f32> = match mask {
            Some(m) if m.len() == ids.len() => m
                .iter()
                .map(|&v| if v != 0 { 0.0 } else { f32::MIN })
                .collect(),
            Some(m) => {
                return Err(Error::InvalidArgument(format!(
                    "mask has {} values, expected {}",
                    m.len(),
                    ids.len()
                )))
            }
            None => vec![0.0; ids.len()],
        };
        let pos: Vec<u32> = (0..batch * seq).map(|i| (i % seq) as u32).collect();
        let feeds = [
            Tensor::from_u32(&[batch, seq], ids.to_vec())?,
            Tensor::from_u32(&[batch, seq], pos)?,
            Tensor::from_f32(&[batch, seq], bias)?,
        ];
        let refs: Vec<&Tensor> = feeds.iter().collect();
        let mut plans = self.forward_plans.lock().unwrap();
        let plan = plans.get_or_build((batch, seq, hidden_states), || {
            self.backend.compile(
                Arc::new(self.build_forward(batch, seq, hidden_states)?),
                &[],
            )
        })?;
        let mut outs = plan.run(&refs)?.into_iter();
        let logits = outs.next().expect("logits output");
        Ok(Gpt2Output {
            logits,
            hidden_states: outs.collect(),
        })
    }

    fn check_ids(&self, ids: &[u32]) -> Result<()> {
        if let Some(&id) = ids.iter().find(|&&i| i as usize >= self.config.vocab_size) {
            return Err(Error::InvalidArgument(format!(
                "token id {id} out of range for vocab_size {}",
                self.config.vocab_size
            )));
        }
        Ok(())
    }

    /// Tokenises `prompt` and generates; see [`Gpt2::generate_ids`].
    pub fn generate(
        &self,
        prompt: &str,
        opts: &GenerateOptions,
        on_token: impl FnMut(&TokenEvent) -> bool,
    ) -> Result<Generation> {
        let tok = self
            .tokenizer
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("this model has no tokenizer".into()))?;
        let ids = tok
            .encode(prompt, false)
            .map_err(|e| Error::Tokenizer(e.to_string()))?
            .get_ids()
            .to_vec();
        self.generate_ids(&ids, opts, on_token)
    }

    /// Generates up to `max_new_tokens` after `prompt`, calling `on_token` for each new token as
    /// it is produced (return `false` to stop early). The prompt is one forward; each new token
    /// is one decode step reading the device-resident KV cache.
    pub fn generate_ids(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        mut on_token: impl FnMut(&TokenEvent) -> bool,
    ) -> Result<Generation> {
        let c = &self.config;
        opts.sampling.validate()?;
        if prompt.is_empty() {
            return Err(Error::InvalidArgument(
                "the prompt is empty (no tokens)".into(),
            ));
        }
        self.check_ids(prompt)?;
        if prompt.len() + opts.max_new_tokens > c.n_positions {
            return Err(Error::InvalidArgument(format!(
                "prompt ({} tokens) + max_new_tokens ({}) exceeds the context of {} positions (n_positions)",
                prompt.len(),
                opts.max_new_tokens,
                c.n_positions
            )));
        }
        let mut guard = self.session.lock().unwrap();
        if guard.is_none() {
            let info = ValueInfo::new(&[1, c.n_positions, c.n_embd], DType::F32);
            let states = (0..2 * c.n_layer)
                .map(|_| self.backend.new_state(&info))
                .collect::<Result<Vec<_>>>()?;
            *guard = Some(Session {
                states,
                steps: PlanCache::new(8),
            });
        }
        let session = guard.as_mut().expect("session exists");
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
            let feeds = [
                Tensor::from_u32(&[1, s], fed.clone())?,
                Tensor::from_u32(&[1, s], (past..past + s).map(|p| p as u32).collect())?,
                Tensor::from_u32(&[1], vec![past as u32])?,
            ];
            let refs: Vec<&Tensor> = feeds.iter().collect();
            let states: Vec<&State> = session.states.iter().collect();
            let plan = session.steps.get_or_build(s, || {
                self.backend.compile(Arc::new(self.build_step(s)?), &states)
            })?;
            let logits = plan.run(&refs)?.remove(0);
            let next = sample(logits.as_f32()?, &opts.sampling, &mut rng) as u32;
            if past == 0 {
                out.prefill_secs += t0.elapsed().as_secs_f64();
            } else {
                out.decode_secs += t0.elapsed().as_secs_f64();
            }
            past += s;
            out.tokens.push(next);
            fed = vec![next];
            if let Some(tok) = &self.tokenizer {
                out.text = tok
                    .decode(&out.tokens, true)
                    .map_err(|e| Error::Tokenizer(e.to_string()))?;
            }
            let eos = opts.stop_at_eos && c.eos_token_id == Some(next);
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
}
