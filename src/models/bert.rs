//! BERT encoder (HF `BertModel`): token ids → last_hidden_state, pooler output and
//! sentence-transformers style embeddings.
//!
//! ```text
//! ids ─ word_emb ─┐
//! pos ─ pos_emb  ─┼─ add ─ LayerNorm ─ [× L post-norm TransformerLayer] ─ last_hidden_state
//! tt  ─ type_emb ─┘                                                   ├─ pooling ─ (L2 normalize)
//!                                                                     └─ [CLS] ─ dense+tanh ─ pooler
//!                                                                          (─ classifier ─ logits)
//! ```
//!
//! A `BertForSequenceClassification` checkpoint (a `classifier` after the pooler) also gives
//! logits; with one label it is a cross-encoder reranker ([`Bert::rerank_async`]).
//!
//! The same encoder runs RoBERTa, XLM-RoBERTa, DistilBERT and MPNet (`model_type` roberta,
//! xlm-roberta, distilbert, mpnet): their names, position ids, heads and MPNet's relative
//! position bias are in [`super::bert_arch`].

use super::bert_arch::{Head, RelativeBias, PREFIXES};
use super::family::FamilyConfig;
use super::files::ModelFiles;
use super::loader::{self, Folder, Loaded};
use super::nn::*;
use super::options::LoadOptions;
use super::runner::Runner;
use super::sentence::{self, SentenceConfig};
pub use super::sentence::{pool, Pooling};
use super::text::{TextEncoder, TokenBatch};
use crate::error::{check_finite, Error, Result};
use crate::graph::{Backend, Graph};
use crate::ops::Act;
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

pub use super::bert_arch::BertConfig;

/// Token ids of a padded batch (row-major [batch, seq]).
pub type BertInput = TokenBatch;

/// Outputs of one forward pass, padded like the input.
#[derive(Clone, Debug)]
pub struct BertOutput {
    /// [batch, seq, hidden]
    pub last_hidden_state: Tensor,
    /// [batch, hidden] — tanh(dense([CLS])), when the checkpoint has a pooler.
    pub pooler_output: Option<Tensor>,
    /// Embedding output and every layer's output (when requested), each [batch, seq, hidden].
    pub hidden_states: Vec<Tensor>,
    /// [batch, num_labels] — classifier(pooler_output), for `BertForSequenceClassification`.
    pub logits: Option<Tensor>,
}

struct BertWeights {
    word: Embedding,
    pos: Embedding,
    /// Absent in DistilBERT and MPNet.
    typ: Option<Embedding>,
    /// MPNet's relative position bias.
    rel_bias: Option<RelativeBias>,
    emb_norm: LayerNorm,
    layers: Vec<TransformerLayer>,
    pooler: Option<Linear>,
    /// The sequence-classification head, if the checkpoint has one.
    head: Option<Head>,
}

impl BertWeights {
    fn load(
        c: &BertConfig,
        vb: &Vars,
        with_pooler: bool,
        labels: Option<usize>,
    ) -> Result<BertWeights> {
        let (h, e) = (c.hidden_size, vb.pp("embeddings"));
        let shape = LayerShape {
            width: h,
            inner: c.intermediate_size,
            heads: c.num_attention_heads,
            eps: c.layer_norm_eps,
            act: Act::from_hf(&c.hidden_act)?,
            norm: Norm::Post,
            masking: Masking::Bidirectional,
        };
        let arch = c.arch();
        let (scope, names) = arch.layers();
        Ok(BertWeights {
            layers: TransformerLayer::stack(&vb.pp(scope), c.num_hidden_layers, names, shape)?,
            pooler: (with_pooler)
                .then(|| Linear::load(&vb.pp("pooler.dense"), h, h))
                .transpose()?,
            head: labels.map(|n| arch.load_head(vb, h, n)).transpose()?,
            word: Embedding::load(&e.pp("word_embeddings"), c.vocab_size, h)?,
            pos: Embedding::load(&e.pp("position_embeddings"), c.max_position_embeddings, h)?,
            typ: (arch.token_types())
                .then(|| Embedding::load(&e.pp("token_type_embeddings"), c.type_vocab_size, h))
                .transpose()?,
            emb_norm: LayerNorm::load(&e.pp("LayerNorm"), h, c.layer_norm_eps)?,
            rel_bias: (arch.relative_bias())
                .then(|| RelativeBias::load(vb, c))
                .transpose()?,
        })
    }
}

/// A loaded BERT model. `Send + Sync`: share it between threads with an `Arc`.
pub struct Bert {
    name: String,
    config: BertConfig,
    text: Option<TextEncoder>,
    pooling: Pooling,
    normalize: bool,
    max_batch: usize,
    w: Arc<Loaded<BertWeights>>,
    runner: Runner<(usize, usize, bool)>,
    warnings: Vec<String>,
}

impl Bert {
    /// Loads a model folder (in memory or on disk): config.json, model.safetensors,
    /// tokenizer.json and the sentence-transformers files when present.
    pub fn from_files(backend: Backend, files: &ModelFiles, opts: &LoadOptions) -> Result<Bert> {
        let f: Folder<BertConfig> =
            Folder::open(files, &PREFIXES, "embeddings.word_embeddings.weight")?;
        let tokenizer = f.tokenizer()?;
        let st = SentenceConfig::read(files)?;
        let with_pooler = f.weights().contains("pooler.dense.weight");
        // `*ForSequenceClassification`: the head's output is [num_labels, hidden].
        let labels = (f.config.arch())
            .head_labels(f.weights(), with_pooler)
            .map_err(|m| f.config_error(m))?;
        let w = f.load(opts, &["position_ids"], |vb| {
            BertWeights::load(&f.config, vb, with_pooler, labels)
        })?;
        let p = f.config.max_tokens();
        let max_len = st.max_seq_length.map_or(p, |m| m.min(p));
        let mut model = Self::from_parts(backend, f.config, w, Some(tokenizer), max_len)?;
        model.pooling = st.pooling.unwrap_or(Pooling::Mean);
        model.normalize = st.normalize;
        model.name = files.name();
        Ok(model)
    }

    /// Builds a model from a config and a weight source (for example random weights of a real
    /// model's size, for benchmarks). Without a tokenizer, use [`Bert::forward`] with token ids.
    pub fn from_source(
        backend: Backend,
        config: BertConfig,
        w: &dyn TensorSource,
        with_pooler: bool,
        tokenizer: Option<tokenizers::Tokenizer>,
        opts: &LoadOptions,
    ) -> Result<Bert> {
        config.check().map_err(Error::InvalidArgument)?;
        let loaded = loader::from_source(w, opts, |vb| {
            BertWeights::load(&config, vb, with_pooler, None)
        })?;
        let max_len = config.max_tokens();
        Self::from_parts(backend, config, loaded, tokenizer, max_len)
    }

    fn from_parts(
        backend: Backend,
        config: BertConfig,
        w: Arc<Loaded<BertWeights>>,
        tokenizer: Option<tokenizers::Tokenizer>,
        max_len: usize,
    ) -> Result<Bert> {
        Ok(Bert {
            name: String::new(),
            text: tokenizer
                .map(|t| TextEncoder::new(t, max_len))
                .transpose()?,
            pooling: Pooling::Mean,
            normalize: false,
            max_batch: 64,
            warnings: w.warnings.clone(),
            w,
            runner: Runner::new(backend, 16),
            config,
        })
    }

    /// Device memory of the largest plan run so far (weights + activations + I/O), and its
    /// dispatch count.
    pub fn memory_and_dispatches(&self) -> (u64, usize) {
        self.runner.memory_and_dispatches()
    }
    /// Kernels the last forward ran.
    pub fn kernels(&self) -> Vec<String> {
        self.runner.kernels()
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
        self.runner.backend()
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
        let p = self.config.max_position_embeddings;
        self.text.as_ref().map_or(p, TextEncoder::max_len)
    }
    /// Texts per forward pass (a larger batch is split).
    pub fn set_max_batch(&mut self, n: usize) {
        self.max_batch = n.max(1);
    }
    /// Problems found while loading that did not stop it (e.g. unexpected tensors).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The tokenizer (set to truncate to `max_len`), if the folder has one.
    pub fn tokenizer(&self) -> Option<&tokenizers::Tokenizer> {
        self.text.as_ref().map(TextEncoder::tokenizer)
    }

    fn text(&self) -> Result<&TextEncoder> {
        self.text
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("this model has no tokenizer".into()))
    }

    /// Fails for the first text longer than `max_len` tokens. `embed` and `encode` truncate
    /// such texts silently, as sentence-transformers does; call this first to refuse them.
    pub fn check_lengths(&self, texts: &[&str]) -> Result<()> {
        self.text()?.check_lengths(texts)
    }

    /// Tokenises texts (truncated to `max_len`) into a padded batch.
    pub fn tokenize(&self, texts: &[&str]) -> Result<TokenBatch> {
        TokenBatch::pad(&self.text()?.encode(texts)?)
    }

    /// Tokenises sentence pairs ([CLS] a [SEP] b [SEP], token type 1 for b).
    pub fn tokenize_pairs(&self, pairs: &[(&str, &str)]) -> Result<TokenBatch> {
        TokenBatch::pad(&self.text()?.encode_pairs(pairs)?)
    }

    /// The graph a forward of this input shape runs (for inspection and profiling).
    pub fn graph_for(&self, batch: usize, seq: usize) -> Result<Graph> {
        self.graph(batch, seq, false)
    }

    fn graph(&self, b: usize, s: usize, all_hidden: bool) -> Result<Graph> {
        let w = &self.w;
        let mut g = Graph::new();
        let ids = ids_input(&mut g, "input_ids", &[b, s])?;
        let tt = ids_input(&mut g, "token_type_ids", &[b, s])?;
        let pos = ids_input(&mut g, "position_ids", &[b, s])?;
        let mask = g.input("attention_bias", &[b, s], DType::F32)?;
        let x = w.word.forward(&mut g, ids)?;
        let p = w.pos.forward(&mut g, pos)?;
        let mut x = g.add(x, p)?;
        if let Some(typ) = &w.typ {
            let t = typ.forward(&mut g, tt)?;
            x = g.add(x, t)?;
        }
        let mut x = w.emb_norm.forward(&mut g, x)?;
        // MPNet: the per-head bias of every (query, key) pair, from its bucket's table row.
        let bias = w
            .rel_bias
            .as_ref()
            .map(|r| r.forward(&mut g, s))
            .transpose()?;
        let mut hidden = vec![x];
        for layer in &w.layers {
            x = layer.forward_biased(&mut g, x, Some(mask), bias)?;
            hidden.push(x);
        }
        g.output("last_hidden_state", x);
        let cls = g.slice(x, 1, 0, 1)?;
        let cls = g.reshape(cls, &[b, self.config.hidden_size])?;
        let mut pooled = None;
        if let Some(pooler) = &w.pooler {
            let p = pooler.forward_fused(&mut g, cls, Act::Tanh, None)?;
            g.output("pooler_output", p);
            pooled = Some(p);
        }
        if let Some(head) = &w.head {
            let x = match (&head.pre, pooled) {
                (Some((dense, act)), _) => dense.forward_fused(&mut g, cls, *act, None)?,
                (None, Some(p)) => p,
                (None, None) => return Err(Error::Graph("the head needs the pooler".into())),
            };
            let logits = head.out.forward(&mut g, x)?;
            g.output("logits", logits);
        }
        if all_hidden {
            for (i, v) in hidden.iter().enumerate() {
                g.output(&format!("hidden_states.{i}"), *v);
            }
        }
        Ok(g)
    }

    /// Runs the encoder on a padded batch (split into passes that fit the adapter);
    /// `hidden_states` also returns every layer's output.
    pub async fn forward_async(
        &self,
        input: &TokenBatch,
        hidden_states: bool,
    ) -> Result<BertOutput> {
        let c = &self.config;
        input.check(c.vocab_size, c.type_vocab_size, c.max_tokens())?;
        let (batch, seq, h) = (input.batch, input.seq, c.hidden_size);
        let layers = hidden_states as usize * (c.num_hidden_layers + 1);
        let (mut last, mut pooled, mut hidden) = (Vec::new(), Vec::new(), vec![Vec::new(); layers]);
        let mut logits = Vec::new();
        let widest = c.intermediate_size.max(3 * h);
        let rows = self.runner.rows_per_pass(seq * widest, self.max_batch);
        // Exact length: a plan per (rows, seq) shape is cheap once kernels are compiled, and
        // padding to a bucket cost up to 40% extra work on short sentences.
        for start in (0..batch).step_by(rows) {
            let b = rows.min(batch - start);
            let span = start * seq..(start + b) * seq;
            let bias = input.attention_mask[span.clone()]
                .iter()
                .map(|&m| if m != 0 { 0.0 } else { f32::MIN })
                .collect();
            let mut feeds = vec![
                Tensor::from_u32(&[b, seq], input.input_ids[span.clone()].to_vec())?,
                Tensor::from_u32(&[b, seq], input.token_type_ids[span.clone()].to_vec())?,
                Tensor::from_u32(
                    &[b, seq],
                    self.positions(&input.attention_mask[span.clone()], seq),
                )?,
                Tensor::from_f32(&[b, seq], bias)?,
            ];
            if self.w.rel_bias.is_some() {
                feeds.push(RelativeBias::buckets(seq)?);
            }
            let refs: Vec<&Tensor> = feeds.iter().collect();
            let key = (b, seq, hidden_states);
            let mut out = (self.runner)
                .run(key, || self.graph(b, seq, hidden_states), &refs)
                .await?;
            let hs = out.take("last_hidden_state")?;
            check_finite(|| "encoder output (last_hidden_state)".into(), hs.as_f32()?)?;
            last.extend_from_slice(hs.as_f32()?);
            if self.w.pooler.is_some() {
                pooled.extend_from_slice(out.take("pooler_output")?.as_f32()?);
            }
            if self.w.head.is_some() {
                let l = out.take("logits")?;
                check_finite(|| "classifier logits".into(), l.as_f32()?)?;
                logits.extend_from_slice(l.as_f32()?);
            }
            for (i, hs) in hidden.iter_mut().enumerate() {
                hs.extend_from_slice(out.take(&format!("hidden_states.{i}"))?.as_f32()?);
            }
        }
        Ok(BertOutput {
            last_hidden_state: Tensor::from_f32(&[batch, seq, h], last)?,
            pooler_output: (self.w.pooler.as_ref())
                .map(|_| Tensor::from_f32(&[batch, h], pooled))
                .transpose()?,
            hidden_states: hidden
                .into_iter()
                .map(|v| Tensor::from_f32(&[batch, seq, h], v))
                .collect::<Result<_>>()?,
            logits: self
                .num_labels()
                .map(|n| Tensor::from_f32(&[batch, n], logits))
                .transpose()?,
        })
    }

    /// Position ids of padded rows of length `seq` (see [`Arch::positions`]).
    fn positions(&self, mask: &[u32], seq: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(mask.len());
        for row in mask.chunks(seq) {
            self.config
                .arch()
                .positions(row, self.config.pad_token_id, &mut out);
        }
        out
    }

    /// The last hidden state of one padded chunk (what sentence pooling reads).
    async fn last_hidden(&self, input: TokenBatch) -> Result<Tensor> {
        Ok(self.forward_async(&input, false).await?.last_hidden_state)
    }

    /// Token vectors per text: a [tokens, hidden] tensor each (special tokens included).
    pub async fn encode_async(&self, texts: &[&str]) -> Result<Vec<Tensor>> {
        let f = |b| self.last_hidden(b);
        sentence::encode(self.text()?, texts, self.max_batch, f).await
    }

    /// Sentence embeddings: pooled (per the pooling config) and, if enabled, L2-normalised.
    pub async fn embed_async(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encs = self.encode_texts(texts)?;
        self.embed_encodings_async(&encs, self.normalize).await
    }

    /// Labels of the sequence-classification head (`BertForSequenceClassification`), if any; a
    /// cross-encoder reranker has one.
    pub fn num_labels(&self) -> Option<usize> {
        self.w.head.as_ref().map(|h| h.labels)
    }

    /// Cross-encoder scores: the logit of each `(query, doc)` pair ([CLS] query [SEP] doc
    /// [SEP]), in `docs` order, as `CrossEncoder.predict` without an activation (apply a
    /// sigmoid for TEI's default scores). Pairs longer than `max_len` are cut (longest first,
    /// as the tokenizer truncates) when `truncate`, else refused.
    pub async fn rerank_async(
        &self,
        query: &str,
        docs: &[&str],
        truncate: bool,
    ) -> Result<Vec<f32>> {
        super::rerank::check_head(&self.name, self.num_labels())?;
        let f = |b| self.logits(b);
        super::rerank::scores(self.text()?, query, docs, truncate, self.max_batch, f).await
    }

    /// The classifier logits of one padded chunk (what reranking reads).
    async fn logits(&self, input: TokenBatch) -> Result<Tensor> {
        (self.forward_async(&input, false).await?.logits)
            .ok_or_else(|| Error::InvalidArgument("this model has no classification head".into()))
    }

    /// The encodings `embed` runs on: each text tokenized with special tokens and truncated to
    /// `max_len` (a truncated one has overflowing tokens). A blank text, or one the tokenizer
    /// empties, is an error. With [`Bert::embed_encodings_async`], a caller (the server's
    /// batcher) can count tokens and refuse long texts before anything runs.
    pub fn encode_texts(&self, texts: &[&str]) -> Result<Vec<tokenizers::Encoding>> {
        self.text()?.encode(texts)
    }

    /// Sentence embeddings of encodings from [`Bert::encode_texts`], pooled per the pooling
    /// config, L2-normalised if `normalize`.
    pub async fn embed_encodings_async(
        &self,
        encs: &[tokenizers::Encoding],
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>> {
        self.embed_pooled_async(encs, self.pooling, normalize).await
    }

    /// [`Bert::embed_encodings_async`] with the pooling given per call (not the folder's).
    pub async fn embed_pooled_async(
        &self,
        encs: &[tokenizers::Encoding],
        pooling: Pooling,
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>> {
        let f = |b| self.last_hidden(b);
        sentence::embed(encs, self.max_batch, pooling, normalize, f).await
    }
}
