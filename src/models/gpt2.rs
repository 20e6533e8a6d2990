//! GPT-2 (HF `GPT2LMHeadModel`): logits and text generation with a KV cache kept on the device.
//!
//! ```text
//! ids ─ wte ─┐
//! pos ─ wpe ─┴─ add ─ [× L pre-norm TransformerLayer, causal] ─ ln_f ─ lm_head (= wteᵀ when tied)
//!   with a cache, each layer writes this step's K, V at `past` and attends over cache[0 .. past+s]
//! ```
//! A prompt is one forward over all its tokens (prefill); each new token is one decode step of
//! the same graph with s = 1. Both write into preallocated per-layer K/V buffers, so decoding
//! never re-runs the prompt and never reallocates.

use super::family::{self, act_ok, eps_ok, heads_ok, positive, FamilyConfig, ModelKind, MAX_DIM};
use super::files::ModelFiles;
use super::generate::{self, KvPool};
pub use super::generate::{GenerateOptions, Generation, TokenEvent};
use super::loader::{self, Folder, Loaded};
use super::nn::*;
use super::options::LoadOptions;
use super::runner::Runner;
use crate::error::{check_finite, Error, Result};
use crate::graph::{Backend, Constant, Graph, ValueId};
use crate::ops::{Act, Layout};
use crate::tensor::{DType, Tensor};
use serde::Deserialize;
use std::sync::Arc;

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
    #[serde(default = "family::yes")]
    pub tie_word_embeddings: bool,
}

fn default_eps() -> f64 {
    1e-5
}
fn default_act() -> String {
    "gelu_new".into()
}

impl FamilyConfig for Gpt2Config {
    const KIND: ModelKind = ModelKind::Gpt2;
    fn check(&self) -> std::result::Result<(), String> {
        positive(&[
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_embd", self.n_embd),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            (
                "n_inner",
                self.n_inner.unwrap_or(4 * self.n_embd.min(MAX_DIM)),
            ),
        ])?;
        heads_ok(("n_embd", self.n_embd), ("n_head", self.n_head))?;
        eps_ok("layer_norm_epsilon", self.layer_norm_epsilon)?;
        act_ok("activation_function", &self.activation_function)?;
        match self.eos_token_id {
            Some(e) if e as usize >= self.vocab_size => Err(format!(
                "eos_token_id {e} is outside the vocabulary ({})",
                self.vocab_size
            )),
            _ => Ok(()),
        }
    }
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

/// A GPT-2 block's HF module names.
const BLOCK: LayerNames = LayerNames {
    qkv: Qkv::Conv1d("attn.c_attn"),
    attn_out: "attn.c_proj",
    attn_norm: "ln_1",
    mlp_in: "mlp.c_fc",
    mlp_out: "mlp.c_proj",
    mlp_norm: "ln_2",
    layer_scale: None,
};

struct Gpt2Weights {
    wte: Embedding,
    wpe: Embedding,
    blocks: Vec<TransformerLayer>,
    ln_f: LayerNorm,
    /// Untied output projection [vocab, n_embd]; `None` means wte is used.
    lm_head: Option<Arc<Constant>>,
}

impl Gpt2Weights {
    fn load(c: &Gpt2Config, vb: &Vars) -> Result<Gpt2Weights> {
        let e = c.n_embd;
        let shape = LayerShape {
            width: e,
            inner: c.inner(),
            heads: c.n_head,
            eps: c.layer_norm_epsilon,
            act: Act::from_hf(&c.activation_function)?,
            norm: Norm::Pre,
            masking: Masking::Causal,
        };
        let h = vb.pp("h");
        Ok(Gpt2Weights {
            blocks: TransformerLayer::stack(&h, c.n_layer, &BLOCK, shape)?,
            // `lm_head.weight` never carries the `transformer.` prefix.
            lm_head: (!c.tie_word_embeddings)
                .then(|| vb.weight("lm_head.weight", &[c.vocab_size, e]))
                .transpose()?,
            wte: Embedding::load(&vb.pp("wte"), c.vocab_size, e)?,
            wpe: Embedding::load(&vb.pp("wpe"), c.n_positions, e)?,
            ln_f: LayerNorm::load(&vb.pp("ln_f"), e, c.layer_norm_epsilon)?,
        })
    }
}

/// Output of [`Gpt2::forward_async`].
#[derive(Clone, Debug)]
pub struct Gpt2Output {
    /// [batch, seq, vocab]
    pub logits: Tensor,
    /// Embedding output, each block's output, and the final one after ln_f (as transformers).
    pub hidden_states: Vec<Tensor>,
}

/// A loaded GPT-2. `Send + Sync`; concurrent generations on one model each take their own KV
/// cache.
pub struct Gpt2 {
    name: String,
    config: Gpt2Config,
    tokenizer: Option<tokenizers::Tokenizer>,
    w: Arc<Loaded<Gpt2Weights>>,
    forward: Runner<(usize, usize, bool)>,
    sessions: KvPool,
    warnings: Vec<String>,
}

impl Gpt2 {
    /// Loads a model folder (config.json, model.safetensors, tokenizer.json), in memory or on
    /// disk.
    pub fn from_files(backend: Backend, files: &ModelFiles, opts: &LoadOptions) -> Result<Gpt2> {
        let f: Folder<Gpt2Config> = Folder::open(files, &["transformer."], "wte.weight")?;
        let tokenizer = f.tokenizer()?;
        let ignore = [".attn.bias", ".attn.masked_bias"];
        let w = f.load(opts, &ignore, |vb| Gpt2Weights::load(&f.config, vb))?;
        let mut model = Self::from_parts(backend, f.config, w, Some(tokenizer));
        model.name = files.name();
        Ok(model)
    }

    /// Builds a model from a config and a weight source (HF names without `transformer.`).
    pub fn from_source(
        backend: Backend,
        config: Gpt2Config,
        w: &dyn TensorSource,
        tokenizer: Option<tokenizers::Tokenizer>,
        opts: &LoadOptions,
    ) -> Result<Gpt2> {
        config.check().map_err(Error::InvalidArgument)?;
        let loaded = loader::from_source(w, opts, |vb| Gpt2Weights::load(&config, vb))?;
        Ok(Self::from_parts(backend, config, loaded, tokenizer))
    }

    fn from_parts(
        backend: Backend,
        config: Gpt2Config,
        w: Arc<Loaded<Gpt2Weights>>,
        tokenizer: Option<tokenizers::Tokenizer>,
    ) -> Gpt2 {
        Gpt2 {
            name: String::new(),
            config,
            tokenizer,
            warnings: w.warnings.clone(),
            w,
            forward: Runner::new(backend, 8),
            sessions: KvPool::new(),
        }
    }

    /// Device memory of the largest idle generation session (weights + activations + I/O of
    /// its largest step plan, plus its KV cache), and the dispatch count of its last step.
    pub fn memory_and_dispatches(&self) -> (u64, usize) {
        self.sessions.memory_and_dispatches()
    }
    /// Kernels of the last decode step (of the largest idle generation session).
    pub fn kernels(&self) -> Vec<String> {
        self.sessions.kernels()
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn config(&self) -> &Gpt2Config {
        &self.config
    }
    pub fn backend(&self) -> &Backend {
        self.forward.backend()
    }
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    pub fn tokenizer(&self) -> Option<&tokenizers::Tokenizer> {
        self.tokenizer.as_ref()
    }

    /// The positions of the KV cache a generation of `tokens` tokens (prompt + new) allocates
    /// when no idle cache fits: `tokens` rounded up to a power of two, at least 64, at most
    /// n_positions.
    pub fn kv_cache_positions(&self, tokens: usize) -> usize {
        generate::cache_positions(tokens, self.config.n_positions)
    }

    /// Bytes of a KV cache for `positions` positions: 2 · layers · positions · n_embd · 4
    /// (a generation's cache holds prompt + new tokens, rounded up to a power of two).
    pub fn kv_cache_bytes(&self, positions: usize) -> u64 {
        let c = &self.config;
        2 * (c.n_layer as u64) * (positions as u64) * (c.n_embd as u64) * 4
    }

    /// Token + position embeddings of [b, s] ids.
    fn embed(&self, g: &mut Graph, b: usize, s: usize) -> Result<ValueId> {
        let ids = ids_input(g, "input_ids", &[b, s])?;
        let pos = ids_input(g, "position_ids", &[b, s])?;
        let (te, pe) = (self.w.wte.forward(g, ids)?, self.w.wpe.forward(g, pos)?);
        g.add(te, pe)
    }

    /// ln_f then the vocabulary projection of `x` [.., E].
    fn head(&self, g: &mut Graph, x: ValueId) -> Result<(ValueId, ValueId)> {
        let y = self.w.ln_f.forward(g, x)?;
        let head = g.constant(self.w.lm_head.as_ref().unwrap_or(&self.w.wte.table))?;
        Ok((y, g.matmul(y, head, Layout::NxK)?))
    }

    /// Full forward without a cache: logits for every position (for checks and scoring).
    fn forward_graph(&self, b: usize, s: usize, hidden_out: bool) -> Result<Graph> {
        let mut g = Graph::new();
        let mut x = self.embed(&mut g, b, s)?;
        let mask = g.input("attention_bias", &[b, s], DType::F32)?;
        let mut hidden = vec![x];
        for block in &self.w.blocks {
            x = block.forward(&mut g, x, Some(mask), None)?;
            hidden.push(x);
        }
        let (y, logits) = self.head(&mut g, x)?;
        g.output("logits", logits);
        if hidden_out {
            *hidden.last_mut().expect("at least the embeddings") = y;
            for (i, h) in hidden.iter().enumerate() {
                g.output(&format!("hidden_states.{i}"), *h);
            }
        }
        Ok(g)
    }

    /// The graph of one cached generation step over `s` new tokens at run-time offset `past`
    /// with a cache of `positions` positions (inputs input_ids, position_ids, past; states
    /// k.{l}, v.{l}): logits of the last token.
    pub fn step_graph(&self, s: usize, positions: usize) -> Result<Graph> {
        let c = &self.config;
        let mut g = Graph::new();
        let mut x = self.embed(&mut g, 1, s)?;
        let past = ids_input(&mut g, "past", &[1])?;
        let cache_shape = [1, positions, c.n_embd];
        for (l, block) in self.w.blocks.iter().enumerate() {
            let k = g.state(&format!("k.{l}"), &cache_shape, DType::F32)?;
            let v = g.state(&format!("v.{l}"), &cache_shape, DType::F32)?;
            x = block.forward(&mut g, x, None, Some(KvCache { k, v, past }))?;
        }
        let last = if s > 1 { g.slice(x, 1, s - 1, s)? } else { x };
        let last = g.reshape(last, &[1, c.n_embd])?;
        let (_, logits) = self.head(&mut g, last)?;
        g.output("logits", logits);
        Ok(g)
    }

    /// Logits for every position of a batch. `mask` (1 = token, 0 = padding), if given, hides
    /// padded keys; positions are 0..seq in every row.
    pub async fn forward_async(
        &self,
        ids: &[u32],
        batch: usize,
        seq: usize,
        mask: Option<&[u32]>,
        hidden_states: bool,
    ) -> Result<Gpt2Output> {
        let c = &self.config;
        let bias = generate::padded_bias(ids, (batch, seq), mask, (c.vocab_size, c.n_positions))?;
        let pos: Vec<u32> = (0..batch * seq).map(|i| (i % seq) as u32).collect();
        let feeds = [
            Tensor::from_u32(&[batch, seq], ids.to_vec())?,
            Tensor::from_u32(&[batch, seq], pos)?,
            Tensor::from_f32(&[batch, seq], bias)?,
        ];
        let refs: Vec<&Tensor> = feeds.iter().collect();
        let build = || self.forward_graph(batch, seq, hidden_states);
        let key = (batch, seq, hidden_states);
        let mut out = self.forward.run(key, build, &refs).await?;
        let logits = out.take("logits")?;
        check_finite(|| "GPT-2 logits".into(), logits.as_f32()?)?;
        Ok(Gpt2Output {
            logits,
            hidden_states: out.into_tensors(),
        })
    }

    /// Tokenises `prompt` and generates; see [`Gpt2::generate_ids_stream`].
    pub async fn generate_stream(
        &self,
        prompt: &str,
        opts: &GenerateOptions,
        on_token: impl FnMut(&TokenEvent) -> bool,
    ) -> Result<Generation> {
        let tok = self
            .tokenizer
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("this model has no tokenizer".into()))?;
        let ids = generate::tokenize_prompt(tok, prompt, self.config.n_positions)?;
        self.generate_ids_stream(&ids, opts, on_token).await
    }

    /// Generates up to `max_new_tokens` after `prompt`, calling `on_token` for each new token as
    /// it is produced (return `false` to stop early). The prompt is one forward; each new token
    /// is one decode step reading the device-resident KV cache.
    pub async fn generate_ids_stream(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        on_token: impl FnMut(&TokenEvent) -> bool,
    ) -> Result<Generation> {
        let c = &self.config;
        let eos: Vec<u32> = c.eos_token_id.into_iter().collect();
        generate::generate_cached(
            &self.sessions,
            self.backend(),
            ((c.n_layer, c.n_embd, c.n_positions), c.vocab_size),
            prompt,
            opts,
            &eos,
            self.tokenizer.as_ref(),
            |s, p| self.step_graph(s, p),
            on_token,
        )
        .await
    }
}
