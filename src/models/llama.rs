//! Llama-architecture decoders (HF `LlamaForCausalLM`, `Qwen2ForCausalLM`; SmolLM2, TinyLlama,
//! Qwen2.5): token ids → logits at every position.
//!
//! ```text
//! ids ─ embed_tokens ─ [× L DecoderLayer: RMSNorm, GQA attention with RoPE, SiLU-gated MLP]
//!     ─ norm (RMSNorm) ─ lm_head (= embed_tokensᵀ when tied) ─ logits
//! ```
//! The layer is [`super::nn::DecoderLayer`]; rotary frequencies follow the config's
//! `rope_parameters` / `rope_scaling` ([`RopeScaling`]). Generation runs the prompt as one
//! forward and each new token as one step over a device-resident grouped-query KV cache
//! ([1, positions, kv_heads·head_dim] per layer), stopping at any EOS id of config.json or
//! generation_config.json. Chat templates are a layer above (`crate::chat`, feature `chat`).

use super::family::FamilyConfig;
use super::files::ModelFiles;
use super::generate::{self, KvPool};
pub use super::generate::{GenerateOptions, Generation, TokenEvent};
pub use super::llama_config::LlamaConfig;
use super::llama_config::{eos_ids, MAX_ROPE_POSITIONS};
use super::loader::{self, Folder, Loaded};
use super::nn::*;
use super::options::LoadOptions;
use super::runner::Runner;
use crate::error::{check_finite, Error, Result};
use crate::graph::{Backend, Constant, Graph, ValueId};
use crate::ops::Layout;
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

struct LlamaWeights {
    embed: Embedding,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    /// Untied output projection [vocab, hidden]; `None` means embed_tokens is used.
    lm_head: Option<Arc<Constant>>,
    rope: Rotary,
}

impl LlamaWeights {
    fn load(c: &LlamaConfig, vb: &Vars) -> Result<LlamaWeights> {
        let (theta, scaling) = c.rope().map_err(Error::InvalidArgument)?;
        let shape = DecoderShape {
            hidden: c.hidden_size,
            inner: c.intermediate_size,
            heads: c.num_attention_heads,
            kv_heads: c.kv_heads(),
            head_dim: c.head_dim(),
            eps: c.rms_norm_eps,
            qkv_bias: c.qkv_bias(),
        };
        let h = c.hidden_size;
        Ok(LlamaWeights {
            embed: Embedding::load(&vb.pp("embed_tokens"), c.vocab_size, h)?,
            layers: DecoderLayer::stack(&vb.pp("layers"), c.num_hidden_layers, shape)?,
            norm: RmsNorm::load(&vb.pp("norm"), h, c.rms_norm_eps)?,
            // `lm_head.weight` never carries the `model.` prefix.
            lm_head: (!c.tie_word_embeddings)
                .then(|| vb.weight("lm_head.weight", &[c.vocab_size, h]))
                .transpose()?,
            rope: Rotary::new(
                c.head_dim(),
                theta,
                &scaling,
                c.max_position_embeddings.min(MAX_ROPE_POSITIONS),
            )?,
        })
    }
}

/// A loaded Llama-architecture decoder. `Send + Sync`.
pub struct Llama {
    name: String,
    config: LlamaConfig,
    tokenizer: Option<tokenizers::Tokenizer>,
    w: Arc<Loaded<LlamaWeights>>,
    forward: Runner<(usize, usize)>,
    sessions: KvPool,
    /// Generation stops at any of these (config.json's and generation_config.json's).
    eos: Vec<u32>,
    warnings: Vec<String>,
}

impl Llama {
    /// Loads a `LlamaForCausalLM` / `Qwen2ForCausalLM` folder (config.json, model.safetensors,
    /// tokenizer.json), in memory or on disk.
    pub fn from_files(backend: Backend, files: &ModelFiles, opts: &LoadOptions) -> Result<Llama> {
        let f: Folder<LlamaConfig> = Folder::open(files, &["model."], "embed_tokens.weight")?;
        let tokenizer = f.tokenizer()?;
        let ignore = ["rotary_emb.inv_freq"];
        let w = f.load(opts, &ignore, |vb| LlamaWeights::load(&f.config, vb))?;
        let mut eos = eos_ids(f.config.eos_token_id.as_ref()).map_err(|m| f.config_error(m))?;
        let gen = "generation_config.json";
        if let Some(g) = files.json::<serde_json::Value>(gen)? {
            let more = eos_ids(g.get("eos_token_id")).map_err(|msg| Error::Config {
                path: files.path(gen),
                msg,
            })?;
            if let Some(e) = more.iter().find(|&&e| e as usize >= f.config.vocab_size) {
                return Err(Error::Config {
                    path: files.path(gen),
                    msg: format!("eos_token_id {e} is outside the vocabulary"),
                });
            }
            eos.extend(
                more.into_iter()
                    .filter(|e| !eos.contains(e))
                    .collect::<Vec<_>>(),
            );
        }
        let mut m = Self::from_parts(backend, f.config, w, Some(tokenizer));
        m.name = files.name();
        m.eos = eos;
        Ok(m)
    }

    /// Builds a model from a config and a weight source (HF names without `model.`; the
    /// untied head as `lm_head.weight`), e.g. random weights of a real size for benchmarks.
    /// Generation stops at the config's EOS ids.
    pub fn from_source(
        backend: Backend,
        config: LlamaConfig,
        w: &dyn TensorSource,
        tokenizer: Option<tokenizers::Tokenizer>,
        opts: &LoadOptions,
    ) -> Result<Llama> {
        config.check().map_err(Error::InvalidArgument)?;
        let eos = eos_ids(config.eos_token_id.as_ref()).map_err(Error::InvalidArgument)?;
        let loaded = loader::from_source(w, opts, |vb| LlamaWeights::load(&config, vb))?;
        let mut m = Self::from_parts(backend, config, loaded, tokenizer);
        m.eos = eos;
        Ok(m)
    }

    fn from_parts(
        backend: Backend,
        config: LlamaConfig,
        w: Arc<Loaded<LlamaWeights>>,
        tokenizer: Option<tokenizers::Tokenizer>,
    ) -> Llama {
        Llama {
            name: String::new(),
            warnings: w.warnings.clone(),
            config,
            tokenizer,
            w,
            forward: Runner::new(backend, 8),
            sessions: KvPool::new(),
            eos: Vec::new(),
        }
    }

    /// The ids generation stops at.
    pub fn eos_ids(&self) -> &[u32] {
        &self.eos
    }

    /// Positions the model runs at (`max_position_embeddings`, at most the RoPE table's).
    pub fn context(&self) -> usize {
        self.config.max_position_embeddings.min(MAX_ROPE_POSITIONS)
    }

    /// ids [1, s] → the last token's logits over the cache (see [`DecoderLayer::forward`]);
    /// inputs input_ids, position_ids (unused: RoPE reads `past`), past; states k.{l}, v.{l}.
    pub fn step_graph(&self, s: usize, positions: usize) -> Result<Graph> {
        let (c, w) = (&self.config, &self.w);
        let mut g = Graph::new();
        let ids = ids_input(&mut g, "input_ids", &[1, s])?;
        let _positions = ids_input(&mut g, "position_ids", &[1, s])?;
        let past = ids_input(&mut g, "past", &[1])?;
        let mut x = w.embed.forward(&mut g, ids)?;
        let shape = [1, positions, c.kv_heads() * c.head_dim()];
        for (l, layer) in w.layers.iter().enumerate() {
            let k = g.state(&format!("k.{l}"), &shape, DType::F32)?;
            let v = g.state(&format!("v.{l}"), &shape, DType::F32)?;
            x = layer.forward(&mut g, x, &w.rope, None, Some(KvCache { k, v, past }))?;
        }
        let last = if s > 1 { g.slice(x, 1, s - 1, s)? } else { x };
        let last = g.reshape(last, &[1, c.hidden_size])?;
        let logits = self.head(&mut g, last)?;
        g.output("logits", logits);
        Ok(g)
    }

    /// The final norm and the vocabulary projection.
    fn head(&self, g: &mut Graph, x: ValueId) -> Result<ValueId> {
        let y = self.w.norm.forward(g, x)?;
        let head = g.constant(self.w.lm_head.as_ref().unwrap_or(&self.w.embed.table))?;
        g.matmul(y, head, Layout::NxK)
    }

    /// Tokenises `prompt` (the tokenizer's own special tokens added) and generates; see
    /// [`Llama::generate_ids_stream`].
    pub async fn generate_stream(
        &self,
        prompt: &str,
        opts: &GenerateOptions,
        on_token: impl FnMut(&TokenEvent) -> bool,
    ) -> Result<Generation> {
        let tok = self.tokenizer.as_ref().ok_or_else(|| {
            Error::InvalidArgument("this model was built without a tokenizer".into())
        })?;
        let ids = generate::tokenize_prompt(tok, prompt, self.context())?;
        self.generate_ids_stream(&ids, opts, on_token).await
    }

    /// Generates up to `max_new_tokens` after `prompt`, calling `on_token` for each new token
    /// (return `false` to stop early): the prompt is one step, each new token another, over a
    /// KV cache sized to prompt + new tokens.
    pub async fn generate_ids_stream(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        on_token: impl FnMut(&TokenEvent) -> bool,
    ) -> Result<Generation> {
        let c = &self.config;
        let dims = (
            c.num_hidden_layers,
            c.kv_heads() * c.head_dim(),
            self.context(),
        );
        generate::generate_cached(
            &self.sessions,
            self.backend(),
            (dims, c.vocab_size),
            prompt,
            opts,
            &self.eos,
            self.tokenizer.as_ref(),
            |s, p| self.step_graph(s, p),
            on_token,
        )
        .await
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn config(&self) -> &LlamaConfig {
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
    /// Device memory of the largest idle generation session (its largest step plan and its
    /// KV cache), and the dispatch count of its last step.
    pub fn memory_and_dispatches(&self) -> (u64, usize) {
        self.sessions.memory_and_dispatches()
    }
    /// Kernels of the last decode step.
    pub fn kernels(&self) -> Vec<String> {
        self.sessions.kernels()
    }

    fn forward_graph(&self, b: usize, s: usize) -> Result<Graph> {
        let w = &self.w;
        let mut g = Graph::new();
        let ids = ids_input(&mut g, "input_ids", &[b, s])?;
        let mask = g.input("attention_bias", &[b, s], DType::F32)?;
        let mut x = w.embed.forward(&mut g, ids)?;
        for layer in &w.layers {
            x = layer.forward(&mut g, x, &w.rope, Some(mask), None)?;
        }
        let logits = self.head(&mut g, x)?;
        g.output("logits", logits);
        Ok(g)
    }

    /// Logits [batch, seq, vocab] for every position of a right-padded batch (`mask`: 1 =
    /// token, 0 = padding; positions 0..seq in every row).
    pub async fn forward_async(
        &self,
        ids: &[u32],
        batch: usize,
        seq: usize,
        mask: Option<&[u32]>,
    ) -> Result<Tensor> {
        let c = &self.config;
        let bias = generate::padded_bias(ids, (batch, seq), mask, (c.vocab_size, self.context()))?;
        let feeds = [
            Tensor::from_u32(&[batch, seq], ids.to_vec())?,
            Tensor::from_f32(&[batch, seq], bias)?,
        ];
        let refs: Vec<&Tensor> = feeds.iter().collect();
        let mut out = (self.forward)
            .run((batch, seq), || self.forward_graph(batch, seq), &refs)
            .await?;
        let logits = out.take("logits")?;
        check_finite(|| "Llama logits".into(), logits.as_f32()?)?;
        Ok(logits)
    }
}
