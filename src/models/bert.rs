//! BERT encoder (HF `BertModel`): token ids → last_hidden_state, pooler output and
//! sentence-transformers style embeddings.
//!
//! ```text
//! ids ─ word_emb ─┐
//! pos ─ pos_emb  ─┼─ add ─ LayerNorm ─┬─ [× L] ─ last_hidden_state ─ pooling ─ (L2 normalize)
//! tt  ─ type_emb ─┘                   │
//!        layer: x ─ QKV linear ─ attention(mask) ─ out linear(+x) ─ LN ─ h
//!               h ─ linear+GELU ─ linear(+h) ─ LN
//! ```

use super::{
    check_dir, load_tokenizer, read_json, require, shared, LoadOptions, Loaded, WeightsKey,
};
use crate::error::{Error, Result};
use crate::graph::{Backend, Constant, Graph, PlanCache, ValueId};
use crate::ops::attention::Attention;
use crate::ops::Act;
use crate::tensor::{DType, Tensor};
use crate::weights::Weights;
use crate::Device;
use serde::Deserialize;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The fields of HF `BertConfig` this implementation reads.
#[derive(Clone, Debug, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn default_act() -> String {
    "gelu".into()
}
fn default_eps() -> f64 {
    1e-12
}
fn default_max_pos() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}

/// How token vectors become one sentence vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over non-padding tokens.
    Mean,
    /// The first ([CLS]) token.
    Cls,
    /// Elementwise max over non-padding tokens.
    Max,
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mean" => Ok(Pooling::Mean),
            "cls" => Ok(Pooling::Cls),
            "max" => Ok(Pooling::Max),
            other => Err(Error::InvalidArgument(format!(
                "unknown pooling '{other}' (mean, cls, max)"
            ))),
        }
    }
}

/// Token ids of a padded batch (row-major [batch, seq]).
#[derive(Clone, Debug)]
pub struct BertInput {
    pub batch: usize,
    pub seq: usize,
    pub input_ids: Vec<u32>,
    pub token_type_ids: Vec<u32>,
    /// 1 for real tokens, 0 for padding.
    pub attention_mask: Vec<u32>,
}

impl BertInput {
    /// Number of real tokens in row `b`.
    pub fn len(&self, b: usize) -> usize {
        self.attention_mask[b * self.seq..(b + 1) * self.seq]
            .iter()
            .filter(|&&m| m != 0)
            .count()
    }
}

/// Outputs of one forward pass, padded like the input.
#[derive(Clone, Debug)]
pub struct BertOutput {
    /// [batch, seq, hidden]
    pub last_hidden_state: Tensor,
    /// [batch, hidden] — tanh(dense([CLS])), when the checkpoint has a pooler.
    pub pooler_output: Option<Tensor>,
    /// Embedding output and every layer's output (when requested), each [batch, seq, hidden].
    pub hidden_states: Vec<Tensor>,
}

struct Layer {
    qkv_w: Arc<Constant>,
    qkv_b: Arc<Constant>,
    o_w: Arc<Constant>,
    o_b: Arc<Constant>,
    ln1: (Arc<Constant>, Arc<Constant>),
    i_w: Arc<Constant>,
    i_b: Arc<Constant>,
    out_w: Arc<Constant>,
    out_b: Arc<Constant>,
    ln2: (Arc<Constant>, Arc<Constant>),
}

struct BertWeights {
    word: Arc<Constant>,
    pos: Arc<Constant>,
    typ: Arc<Constant>,
    emb_ln: (Arc<Constant>, Arc<Constant>),
    layers: Vec<Layer>,
    pooler: Option<(Arc<Constant>, Arc<Constant>)>,
}

/// A loaded BERT model. `Send + Sync`: share it between threads with an `Arc`.
pub struct Bert {
    name: String,
    config: BertConfig,
    act: Act,
    backend: Backend,
    tokenizer: Option<tokenizers::Tokenizer>,
    pooling: Pooling,
    normalize: bool,
    max_len: usize,
    max_batch: usize,
    w: Arc<Loaded<BertWeights>>,
    plans: Mutex<PlanCache<(usize, usize, bool)>>,
    warnings: Vec<String>,
}

#[derive(Deserialize)]
struct StModule {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct StPooling {
    #[serde(default)]
    pooling_mode: Option<String>,
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(Deserialize)]
struct StConfig {
    #[serde(default)]
    max_seq_length: Option<usize>,
}

/// Pooling, normalisation and max length from sentence-transformers files, if present.
fn sentence_transformers_config(dir: &Path) -> Result<(Option<Pooling>, bool, Option<usize>)> {
    let modules_path = dir.join("modules.json");
    let mut pooling_dir = dir.join("1_Pooling");
    let mut normalize = false;
    let mut is_st = false;
    if modules_path.is_file() {
        is_st = true;
        let modules: Vec<StModule> = read_json(&modules_path)?;
        for m in &modules {
            if m.kind.ends_with("Pooling") && !m.path.is_empty() {
                pooling_dir = dir.join(&m.path);
            }
            if m.kind.ends_with("Normalize") {
                normalize = true;
            }
        }
    }
    let pool_path = pooling_dir.join("config.json");
    let pooling = if pool_path.is_file() {
        let p: StPooling = read_json(&pool_path)?;
        let bad = |msg: &str| Error::Config {
            path: pool_path.clone(),
            msg: msg.to_string(),
        };
        if let Some(mode) = &p.pooling_mode {
            Some(
                mode.parse::<Pooling>()
                    .map_err(|_| bad(&format!("unsupported pooling_mode '{mode}'")))?,
            )
        } else {
            let modes = [
                (p.pooling_mode_mean_tokens, Pooling::Mean),
                (p.pooling_mode_cls_token, Pooling::Cls),
                (p.pooling_mode_max_tokens, Pooling::Max),
            ];
            if p.pooling_mode_mean_sqrt_len_tokens {
                return Err(bad("pooling_mode_mean_sqrt_len_tokens is not supported"));
            }
            let on: Vec<Pooling> = modes.iter().filter(|m| m.0).map(|m| m.1).collect();
            match on.as_slice() {
                [] => None,
                [one] => Some(*one),
                _ => {
                    return Err(bad(
                        "several pooling modes at once (concatenation) are not supported",
                    ))
                }
            }
        }
    } else {
        None
    };
    let st_cfg = dir.join("sentence_bert_config.json");
    let max_seq = if st_cfg.is_file() {
        read_json::<StConfig>(&st_cfg)?.max_seq_length
    } else {
        None
    };
    Ok((pooling, is_st && normalize, max_seq))
}

/// Where weights come from: a name (HF names without `bert.`) and the shape the config
/// implies → a tensor.
pub type TensorSource<'a> = &'a dyn Fn(&str, &[usize]) -> Result<Tensor>;

impl Bert {
    /// Loads a HuggingFace BERT folder onto a GPU device.
    pub fn from_pretrained(device: &Device, dir: impl AsRef<Path>) -> Result<Bert> {
        Self::load(Backend::Gpu(device.clone()), dir)
    }

    /// Loads a HuggingFace BERT folder for any backend (GPU, or the CPU reference kernels).
    pub fn load(backend: Backend, dir: impl AsRef<Path>) -> Result<Bert> {
        Self::load_with(backend, dir, &LoadOptions::default())
    }

    /// [`Bert::load`] with options (for example f16 weight storage).
    pub fn load_with(backend: Backend, dir: impl AsRef<Path>, opts: &LoadOptions) -> Result<Bert> {
        opts.check()?;
        let dir = dir.as_ref();
        check_dir(dir)?;
        let cfg_path = require(dir, "config.json", "model config (config.json)")?;
        let config: BertConfig =
            super::config::load(&cfg_path, super::ModelKind::Bert, super::config::check_bert)?;
        let cfg_err = |msg: String| Error::Config {
            path: cfg_path.clone(),
            msg,
        };
        let tokenizer = load_tokenizer(dir)?;
        let (st_pooling, normalize, max_seq) = sentence_transformers_config(dir)?;

        let wpath = require(dir, "model.safetensors", "weights (model.safetensors)")?;
        let mut w = Weights::open(&wpath)?;
        if !w.contains("embeddings.word_embeddings.weight")
            && w.names()
                .iter()
                .any(|n| n == "bert.embeddings.word_embeddings.weight")
        {
            w.set_prefix("bert.");
        }
        let with_pooler = w.contains("pooler.dense.weight");
        let key = WeightsKey::new("bert", &wpath, &cfg_path, opts)?;
        let weights = shared(key, || {
            let bar = opts.bar(&w);
            let get = |name: &str, shape: &[usize]| {
                bar.inc(1);
                w.get_shaped(name, shape)
            };
            let weights = Self::build_weights(&config, &get, with_pooler, opts)
                .map_err(|e| LoadOptions::in_file(&wpath, e))?;
            let warnings = w
                .unread()
                .into_iter()
                .filter(|n| !n.ends_with("position_ids"))
                .map(|n| format!("{}: unexpected tensor '{n}' ignored", wpath.display()))
                .collect();
            bar.finish_and_clear();
            Ok(Loaded { weights, warnings })
        })
        .map_err(|e| match e {
            Error::InvalidArgument(msg) => cfg_err(msg),
            other => other,
        })?;
        let mut model = Self::from_parts(backend, config, weights, Some(tokenizer))?;
        let p = model.config.max_position_embeddings;
        model.max_len = max_seq.map_or(p, |m| m.min(p));
        model.pooling = st_pooling.unwrap_or(Pooling::Mean);
        model.normalize = normalize;
        model.name = super::name_of(dir);
        Ok(model)
    }

    /// Builds a model from a config and a weight source (for example random weights of a real
    /// model's size, for benchmarks). Without a tokenizer, use [`Bert::forward`] with token ids.
    pub fn from_source(
        backend: Backend,
        config: BertConfig,
        w: TensorSource,
        with_pooler: bool,
        tokenizer: Option<tokenizers::Tokenizer>,
        opts: &LoadOptions,
    ) -> Result<Bert> {
        opts.check()?;
        super::config::check_bert(&config).map_err(Error::InvalidArgument)?;
        let weights = Self::build_weights(&config, w, with_pooler, opts)?;
        let loaded = Loaded {
            weights,
            warnings: Vec::new(),
        };
        Self::from_parts(backend, config, Arc::new(loaded), tokenizer)
    }

    /// The constants of a model of `config`, read from `w`.
    fn build_weights(
        config: &BertConfig,
        w: TensorSource,
        with_pooler: bool,
        opts: &LoadOptions,
    ) -> Result<BertWeights> {
        let h = config.hidden_size;
        let c = |name: &str, shape: &[usize]| -> Result<Arc<Constant>> {
            Ok(Constant::new(name, w(name, shape)?))
        };
        // Matmul weights and embedding tables, in the storage dtype.
        let cw = |name: &str, shape: &[usize]| opts.weight(name, w(name, shape)?);
        let (i_sz, v, p, t) = (
            config.intermediate_size,
            config.vocab_size,
            config.max_position_embeddings,
            config.type_vocab_size,
        );
        let e = "embeddings";
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            // Q, K and V fused into one [3H, H] projection.
            let mut qw = Vec::with_capacity(3 * h * h);
            let mut qb = Vec::with_capacity(3 * h);
            for part in ["query", "key", "value"] {
                qw.extend(w(&format!("{p}.attention.self.{part}.weight"), &[h, h])?.as_f32()?);
                qb.extend(w(&format!("{p}.attention.self.{part}.bias"), &[h])?.as_f32()?);
            }
            layers.push(Layer {
                qkv_w: opts.weight(
                    format!("{p}.qkv.weight"),
                    Tensor::from_f32(&[3 * h, h], qw)?,
                )?,
                qkv_b: Constant::new(format!("{p}.qkv.bias"), Tensor::from_f32(&[3 * h], qb)?),
                o_w: cw(&format!("{p}.attention.output.dense.weight"), &[h, h])?,
                o_b: c(&format!("{p}.attention.output.dense.bias"), &[h])?,
                ln1: (
                    c(&format!("{p}.attention.output.LayerNorm.weight"), &[h])?,
                    c(&format!("{p}.attention.output.LayerNorm.bias"), &[h])?,
                ),
                i_w: cw(&format!("{p}.intermediate.dense.weight"), &[i_sz, h])?,
                i_b: c(&format!("{p}.intermediate.dense.bias"), &[i_sz])?,
                out_w: cw(&format!("{p}.output.dense.weight"), &[h, i_sz])?,
                out_b: c(&format!("{p}.output.dense.bias"), &[h])?,
                ln2: (
                    c(&format!("{p}.output.LayerNorm.weight"), &[h])?,
                    c(&format!("{p}.output.LayerNorm.bias"), &[h])?,
                ),
            });
        }
        let pooler = if with_pooler {
            Some((
                cw("pooler.dense.weight", &[h, h])?,
                c("pooler.dense.bias", &[h])?,
            ))
        } else {
            None
        };
        let weights = BertWeights {
            word: cw(&format!("{e}.word_embeddings.weight"), &[v, h])?,
            pos: cw(&format!("{e}.position_embeddings.weight"), &[p, h])?,
            typ: cw(&format!("{e}.token_type_embeddings.weight"), &[t, h])?,
            emb_ln: (
                c(&format!("{e}.LayerNorm.weight"), &[h])?,
                c(&format!("{e}.LayerNorm.bias"), &[h])?,
            ),
            layers,
            pooler,
        };
        Ok(weights)
    }

    fn from_parts(
        backend: Backend,
        config: BertConfig,
        weights: Arc<Loaded<BertWeights>>,
        tokenizer: Option<tokenizers::Tokenizer>,
    ) -> Result<Bert> {
        let act = Act::from_hf(&config.hidden_act)?;
        Ok(Bert {
            name: String::new(),
            act,
            backend,
            tokenizer,
            pooling: Pooling::Mean,
            normalize: false,
            max_len: config.max_position_embeddings,
            max_batch: 64,
            warnings: weights.warnings.clone(),
            w: weights,
            plans: Mutex::new(PlanCache::new(16)),
            config,
        })
    }

    /// Device memory of the largest plan run so far (weights + activations + I/O), and its
    /// dispatch count.
    pub fn memory_and_dispatches(&self) -> (u64, usize) {
        let plans = self.plans.lock().unwrap();
        (
            plans.peak_bytes(),
            plans.last_stats().map_or(0, |s| s.dispatches),
        )
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn config(&self) -> &BertConfig {
        &self.config
    }
    /// Embedding width.
    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }
    pub fn backend(&self) -> &Backend {
        &self.backend
    }
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }
    pub fn set_pooling(&mut self, p: Pooling) {
        self.pooling = p;
    }
    /// Whether `embed` L2-normalises (on for sentence-transformers folders with a Normalize
    /// module, as sentence-transformers does).
    pub fn normalize(&self) -> bool {
        self.normalize
    }
    pub fn set_normalize(&mut self, on: bool) {
        self.normalize = on;
    }
    /// Longest token sequence (special tokens included); longer texts are truncated.
    pub fn max_len(&self) -> usize {
        self.max_len
    }
    /// Texts per forward pass (a larger batch is split).
    pub fn set_max_batch(&mut self, n: usize) {
        self.max_batch = n.max(1);
    }
    /// Problems found while loading that did not stop it (e.g. unexpected tensors).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    fn pad(&self, encs: Vec<tokenizers::Encoding>) -> Result<BertInput> {
        if encs.is_empty() {
            return Err(Error::InvalidArgument("no texts given".into()));
        }
        let seq = encs
            .iter()
            .map(|e| e.get_ids().len())
            .max()
            .unwrap_or(0)
            .max(1);
        let batch = encs.len();
        let mut inp = BertInput {
            batch,
            seq,
            input_ids: vec![0; batch * seq],
            token_type_ids: vec![0; batch * seq],
            attention_mask: vec![0; batch * seq],
        };
        for (b, e) in encs.iter().enumerate() {
            let n = e.get_ids().len();
            inp.input_ids[b * seq..b * seq + n].copy_from_slice(e.get_ids());
            inp.token_type_ids[b * seq..b * seq + n].copy_from_slice(e.get_type_ids());
            inp.attention_mask[b * seq..b * seq + n].fill(1);
        }
        Ok(inp)
    }

    fn tokenizer_for(&self) -> Result<tokenizers::Tokenizer> {
        let mut tok = self
            .tokenizer
            .clone()
            .ok_or_else(|| Error::InvalidArgument("this model has no tokenizer".into()))?;
        tok.with_truncation(Some(tokenizers::TruncationParams {
            max_length: self.max_len,
            ..Default::default()
        }))
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
        Ok(tok)
    }

    fn encodings(&self, texts: &[&str]) -> Result<Vec<tokenizers::Encoding>> {
        if texts.is_empty() {
            return Err(Error::InvalidArgument("no texts given".into()));
        }
        for (i, t) in texts.iter().enumerate() {
            if t.trim().is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "text {i} is empty (nothing to embed)"
                )));
            }
        }
        self.tokenizer_for()?
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| Error::Tokenizer(e.to_string()))
    }

    /// Fails for the first text longer than `max_len` tokens. `embed` and `encode` truncate
    /// such texts silently, as sentence-transformers does; call this first to refuse them.
    pub fn check_lengths(&self, texts: &[&str]) -> Result<()> {
        for (i, e) in self.encodings(texts)?.iter().enumerate() {
            if !e.get_overflowing().is_empty() {
                let chars = texts[i].chars().count();
                return Err(Error::InvalidArgument(format!(
                    "text {i} ({chars} characters) is longer than the model's maximum of {} \
                     tokens; it would be truncated",
                    self.max_len()
                )));
            }
        }
        Ok(())
    }

    /// Tokenises texts (truncated to `max_len`) into a padded batch.
    pub fn tokenize(&self, texts: &[&str]) -> Result<BertInput> {
        self.pad(self.encodings(texts)?)
    }

    /// Runs texts in length-sorted chunks (little padding), calling `each` with every chunk's
    /// input, output and the original index of each of its rows.
    fn run_sorted(
        &self,
        texts: &[&str],
        mut each: impl FnMut(&BertInput, &BertOutput, &[usize]) -> Result<()>,
    ) -> Result<()> {
        let encs = self.encodings(texts)?;
        let mut order: Vec<usize> = (0..encs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encs[i].get_ids().len()));
        let mut start = 0;
        while start < order.len() {
            let longest = encs[order[start]].get_ids().len();
            let mut end = start + 1;
            // Chunks of similar lengths: stop where a text is under half the longest.
            while end < order.len()
                && end - start < self.max_batch
                && encs[order[end]].get_ids().len() * 2 >= longest
            {
                end += 1;
            }
            let idx = &order[start..end];
            let input = self.pad(idx.iter().map(|&i| encs[i].clone()).collect())?;
            let out = self.forward(&input, false)?;
            each(&input, &out, idx)?;
            start = end;
        }
        Ok(())
    }

    /// Tokenises sentence pairs ([CLS] a [SEP] b [SEP], token type 1 for b).
    pub fn tokenize_pairs(&self, pairs: &[(&str, &str)]) -> Result<BertInput> {
        let inputs: Vec<tokenizers::EncodeInput> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()).into())
            .collect();
        let encs = self
            .tokenizer_for()?
            .encode_batch(inputs, true)
            .map_err(|e| Error::Tokenizer(e.to_string()))?;
        self.pad(encs)
    }

    /// The graph a forward of this input shape runs (for inspection and profiling).
    pub fn graph_for(&self, batch: usize, seq: usize) -> Result<Graph> {
        self.build(batch, seq, false)
    }

    fn build(&self, b: usize, s: usize, all_hidden: bool) -> Result<Graph> {
        let cfg = &self.config;
        let h = cfg.hidden_size;
        let eps = cfg.layer_norm_eps as f32;
        let w = &self.w;
        let mut g = Graph::new();
        let ids = g.input("input_ids", &[b, s], DType::U32)?;
        let tt = g.input("token_type_ids", &[b, s], DType::U32)?;
        let pos = g.input("position_ids", &[b, s], DType::U32)?;
        let mask = g.input("attention_bias", &[b, s], DType::F32)?;
        let k = |g: &mut Graph, c: &Arc<Constant>| g.constant(c);

        let we = k(&mut g, &w.word)?;
        let pe = k(&mut g, &w.pos)?;
        let te = k(&mut g, &w.typ)?;
        let x = g.embedding(we, ids)?;
        let p = g.embedding(pe, pos)?;
        let t = g.embedding(te, tt)?;
        let x = g.add(x, p)?;
        let x = g.add(x, t)?;
        let (lg, lb) = (k(&mut g, &w.emb_ln.0)?, k(&mut g, &w.emb_ln.1)?);
        let mut x = g.layernorm(x, lg, lb, eps)?;
        let mut hidden: Vec<ValueId> = vec![x];
        let heads = cfg.num_attention_heads;
        let attn = Attention {
            heads,
            head_dim: h / heads,
            scale: 1.0 / ((h / heads) as f32).sqrt(),
            causal: false,
            q_col: 0,
            k_col: h,
            v_col: 2 * h,
            mask: false,
            past: false,
        };
        for l in &w.layers {
            let qkv_w = k(&mut g, &l.qkv_w)?;
            let qkv_b = k(&mut g, &l.qkv_b)?;
            let qkv = g.linear(x, qkv_w, true, Some(qkv_b), Act::None, None)?;
            let a = g.attention(attn.clone(), qkv, qkv, qkv, Some(mask), None)?;
            let (ow, ob) = (k(&mut g, &l.o_w)?, k(&mut g, &l.o_b)?);
            let y = g.linear(a, ow, true, Some(ob), Act::None, Some(x))?;
            let (g1, b1) = (k(&mut g, &l.ln1.0)?, k(&mut g, &l.ln1.1)?);
            let y = g.layernorm(y, g1, b1, eps)?;
            let (iw, ib) = (k(&mut g, &l.i_w)?, k(&mut g, &l.i_b)?);
            let f = g.linear(y, iw, true, Some(ib), self.act, None)?;
            let (ow2, ob2) = (k(&mut g, &l.out_w)?, k(&mut g, &l.out_b)?);
            let z = g.linear(f, ow2, true, Some(ob2), Act::None, Some(y))?;
            let (g2, b2) = (k(&mut g, &l.ln2.0)?, k(&mut g, &l.ln2.1)?);
            x = g.layernorm(z, g2, b2, eps)?;
            hidden.push(x);
        }
        g.output("last_hidden_state", x);
        if let Some((pw, pb)) = &w.pooler {
            let cls = g.slice(x, 1, 0, 1)?;
            let cls = g.reshape(cls, &[b, h])?;
            let (pw, pb) = (k(&mut g, pw)?, k(&mut g, pb)?);
            let pooled = g.linear(cls, pw, true, Some(pb), Act::Tanh, None)?;
            g.output("pooler_output", pooled);
        }
        if all_hidden {
            for (i, v) in hidden.iter().enumerate() {
                g.output(&format!("hidden_states.{i}"), *v);
            }
        }
        Ok(g)
    }

    /// Rows per forward so that the widest intermediate fits one storage binding.
    fn rows_per_pass(&self, s: usize) -> usize {
        let widest = self
            .config
            .intermediate_size
            .max(3 * self.config.hidden_size) as u64;
        let limit = match &self.backend {
            Backend::Gpu(d) => d.max_binding(),
            Backend::Cpu => u64::MAX,
        };
        let by_limit = (limit / (s as u64 * widest * 4)).max(1) as usize;
        by_limit.min(self.max_batch)
    }

    /// Runs the encoder on a padded batch. `hidden_states` also returns every layer's output.
    pub fn forward(&self, input: &BertInput, hidden_states: bool) -> Result<BertOutput> {
        let cfg = &self.config;
        let (batch, seq) = (input.batch, input.seq);
        let n = batch * seq;
        if input.input_ids.len() != n
            || input.token_type_ids.len() != n
            || input.attention_mask.len() != n
        {
            return Err(Error::InvalidArgument(format!(
                "ids, token types and mask must each hold batch*seq = {n} values"
            )));
        }
        if seq > cfg.max_position_embeddings {
            return Err(Error::InvalidArgument(format!(
                "sequence of {seq} tokens exceeds max_position_embeddings {}",
                cfg.max_position_embeddings
            )));
        }
        if let Some(&id) = input
            .input_ids
            .iter()
            .find(|&&i| i as usize >= cfg.vocab_size)
        {
            return Err(Error::InvalidArgument(format!(
                "token id {id} out of range for vocab_size {}",
                cfg.vocab_size
            )));
        }
        if let Some(&t) = input
            .token_type_ids
            .iter()
            .find(|&&i| i as usize >= cfg.type_vocab_size)
        {
            return Err(Error::InvalidArgument(format!(
                "token type {t} out of range for type_vocab_size {}",
                cfg.type_vocab_size
            )));
        }
        // Exact length: a plan per (rows, seq) shape is cheap once kernels are compiled, and
        // padding to a bucket cost up to 40% extra work on short sentences.
        let s_pad = seq;
        let rows = self.rows_per_pass(s_pad);
        let h = cfg.hidden_size;
        let mut last = Vec::with_capacity(n * h);
        let mut pooled = Vec::new();
        let mut hidden: Vec<Vec<f32>> = vec![
            Vec::new();
            if hidden_states {
                cfg.num_hidden_layers + 1
            } else {
                0
            }
        ];
        let mut start = 0;
        while start < batch {
            let b = rows.min(batch - start);
            let mut ids = vec![0u32; b * s_pad];
            let mut tt = vec![0u32; b * s_pad];
            let mut bias = vec![f32::MIN; b * s_pad];
            let pos: Vec<u32> = (0..b * s_pad).map(|i| (i % s_pad) as u32).collect();
            for r in 0..b {
                let src = (start + r) * seq;
                ids[r * s_pad..r * s_pad + seq].copy_from_slice(&input.input_ids[src..src + seq]);
                tt[r * s_pad..r * s_pad + seq]
                    .copy_from_slice(&input.token_type_ids[src..src + seq]);
                for j in 0..seq {
                    if input.attention_mask[src + j] != 0 {
                        bias[r * s_pad + j] = 0.0;
                    }
                }
            }
            let feeds = [
                Tensor::from_u32(&[b, s_pad], ids)?,
                Tensor::from_u32(&[b, s_pad], tt)?,
                Tensor::from_u32(&[b, s_pad], pos)?,
                Tensor::from_f32(&[b, s_pad], bias)?,
            ];
            let refs: Vec<&Tensor> = feeds.iter().collect();
            let outs = {
                let mut plans = self.plans.lock().unwrap();
                let plan = plans.get_or_build((b, s_pad, hidden_states), || {
                    let g = self.build(b, s_pad, hidden_states)?;
                    self.backend.compile(Arc::new(g), &[])
                })?;
                plan.run(&refs)?
            };
            let unpad = |t: &Tensor, out: &mut Vec<f32>| -> Result<()> {
                let v = t.as_f32()?;
                for r in 0..b {
                    out.extend_from_slice(&v[r * s_pad * h..(r * s_pad + seq) * h]);
                }
                Ok(())
            };
            let mut k = 0;
            unpad(&outs[k], &mut last)?;
            k += 1;
            if self.w.pooler.is_some() {
                pooled.extend_from_slice(outs[k].as_f32()?);
                k += 1;
            }
            for hs in hidden.iter_mut() {
                unpad(&outs[k], hs)?;
                k += 1;
            }
            start += b;
        }
        Ok(BertOutput {
            last_hidden_state: Tensor::from_f32(&[batch, seq, h], last)?,
            pooler_output: if self.w.pooler.is_some() {
                Some(Tensor::from_f32(&[batch, h], pooled)?)
            } else {
                None
            },
            hidden_states: hidden
                .into_iter()
                .map(|v| Tensor::from_f32(&[batch, seq, h], v))
                .collect::<Result<_>>()?,
        })
    }

    /// Token vectors per text: a [tokens, hidden] tensor each (special tokens included).
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Tensor>> {
        let h = self.dim();
        let mut result: Vec<Option<Tensor>> = vec![None; texts.len()];
        self.run_sorted(texts, |input, out, idx| {
            let v = out.last_hidden_state.as_f32()?;
            for (b, &i) in idx.iter().enumerate() {
                let n = input.len(b);
                let row = &v[b * input.seq * h..(b * input.seq + n) * h];
                result[i] = Some(Tensor::from_f32(&[n, h], row.to_vec())?);
            }
            Ok(())
        })?;
        Ok(result
            .into_iter()
            .map(|t| t.expect("every text ran"))
            .collect())
    }

    /// Sentence embeddings: pooled (per the pooling config) and, if enabled, L2-normalised.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut result: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        self.run_sorted(texts, |input, out, idx| {
            let pooled = pool(&out.last_hidden_state, input, self.pooling, self.normalize);
            for (v, &i) in pooled.into_iter().zip(idx) {
                result[i] = v;
            }
            Ok(())
        })?;
        Ok(result)
    }
}

/// Pools [batch, seq, hidden] token vectors into one vector per row (mask-aware).
pub fn pool(
    hidden: &Tensor,
    input: &BertInput,
    pooling: Pooling,
    normalize: bool,
) -> Vec<Vec<f32>> {
    let h = *hidden.shape().last().unwrap();
    let v = hidden.as_f32().expect("f32 hidden states");
    (0..input.batch)
        .map(|b| {
            let rows = (0..input.seq).filter(|&j| input.attention_mask[b * input.seq + j] != 0);
            let tok = |j: usize| &v[(b * input.seq + j) * h..(b * input.seq + j + 1) * h];
            let mut out = match pooling {
                Pooling::Cls => tok(0).to_vec(),
                Pooling::Mean => {
                    let mut acc = vec![0.0f64; h];
                    let mut n = 0usize;
                    for j in rows {
                        for (a, &x) in acc.iter_mut().zip(tok(j)) {
                            *a += x as f64;
                        }
                        n += 1;
                    }
                    acc.iter().map(|&a| (a / n.max(1) as f64) as f32).collect()
                }
                Pooling::Max => {
                    let mut acc = vec![f32::NEG_INFINITY; h];
                    for j in rows {
                        for (a, &x) in acc.iter_mut().zip(tok(j)) {
                            *a = a.max(x);
                        }
                    }
                    acc
                }
            };
            if normalize {
                let norm = out
                    .iter()
                    .map(|&x| (x as f64) * (x as f64))
                    .sum::<f64>()
                    .sqrt();
                let d = norm.max(1e-12);
                for x in out.iter_mut() {
                    *x = (*x as f64 / d) as f32;
                }
            }
            out
        })
        .collect()
}
