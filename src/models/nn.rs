//! Shared layers: a prefix-scoped weight source ([`Vars`]), [`Linear`], [`LayerNorm`],
//! [`Embedding`] and one [`TransformerLayer`] (pre- or post-norm, fused QKV attention,
//! optional KV cache). Weight names follow the HF module tree: a model scopes [`Vars`] the way
//! its modules nest, so every name is written once.

use crate::error::{Error, Result};
use crate::graph::{Constant, Graph, ValueId};
use crate::ops::{Act, Attention, Epilogue, Layout};
use crate::tensor::{DType, Tensor};
use crate::weights::Weights;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::LoadOptions;

/// Where weights come from: a full tensor name and the shape the config implies → a tensor.
pub trait TensorSource: Sync {
    /// The tensor `name` (converted to f32), refused unless its stored shape is `shape`.
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor>;
    /// Whether `name` exists (for optional parts such as a pooler).
    fn contains(&self, name: &str) -> bool;
    /// The stored shape of `name`, for layers sized by their weights.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// What errors about these weights name (a file).
    fn label(&self) -> std::path::PathBuf {
        "(weights)".into()
    }
}

impl TensorSource for Weights {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.get_shaped(name, shape)
    }
    fn contains(&self, name: &str) -> bool {
        Weights::contains(self, name)
    }
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        Weights::shape(self, name)
    }
    fn label(&self) -> std::path::PathBuf {
        self.path().to_path_buf()
    }
}

/// Any `Fn(name, shape) -> Tensor` is a source (random weights of a real model's size for
/// benchmarks, synthetic weights in tests); it claims to hold every name.
impl<F> TensorSource for F
where
    F: Fn(&str, &[usize]) -> Result<Tensor> + Sync,
{
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self(name, shape)
    }
    fn contains(&self, _name: &str) -> bool {
        true
    }
    fn shape(&self, _name: &str) -> Option<Vec<usize>> {
        None
    }
}

/// A weight source scoped to a module prefix, in the spirit of candle's `vb.pp("encoder")`.
#[derive(Clone)]
pub struct Vars<'a> {
    src: &'a dyn TensorSource,
    prefix: String,
    opts: &'a LoadOptions,
    progress: &'a Ticker,
}

/// Counts tensors read for the load options' progress callback.
#[derive(Default)]
pub(crate) struct Ticker {
    done: AtomicUsize,
    total: usize,
}

impl Ticker {
    pub(crate) fn new(total: usize) -> Ticker {
        Ticker {
            done: AtomicUsize::new(0),
            total,
        }
    }
    fn tick(&self, opts: &LoadOptions) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(p) = &opts.progress {
            p(done, self.total);
        }
    }
}

impl<'a> Vars<'a> {
    pub(crate) fn new(
        src: &'a dyn TensorSource,
        opts: &'a LoadOptions,
        progress: &'a Ticker,
    ) -> Self {
        Vars {
            src,
            prefix: String::new(),
            opts,
            progress,
        }
    }

    /// The scope `prefix.part`.
    pub fn pp(&self, part: impl std::fmt::Display) -> Vars<'a> {
        let prefix = if self.prefix.is_empty() {
            part.to_string()
        } else {
            format!("{}.{part}", self.prefix)
        };
        Vars {
            prefix,
            ..self.clone()
        }
    }

    /// The full name of `name` in this scope.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub fn opts(&self) -> &LoadOptions {
        self.opts
    }

    /// A tensor of this scope, as f32.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.progress.tick(self.opts);
        self.src.tensor(&self.key(name), shape)
    }

    /// A small parameter (bias, norm weight) as an f32 constant.
    pub fn param(&self, name: &str, shape: &[usize]) -> Result<Arc<Constant>> {
        Ok(Constant::new(self.key(name), self.tensor(name, shape)?))
    }

    /// A large weight (matmul B, embedding table) in the storage dtype of the load options.
    pub fn weight(&self, name: &str, shape: &[usize]) -> Result<Arc<Constant>> {
        self.opts.weight(self.key(name), self.tensor(name, shape)?)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.src.contains(&self.key(name))
    }

    /// The stored shape of `name`, when the source knows it.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.src.shape(&self.key(name))
    }

    /// A tensor of this scope with whatever shape it is stored with.
    pub fn tensor_as_stored(&self, name: &str) -> Result<Tensor> {
        // A scalar loads as [1]; a missing tensor is reported by the lookup.
        let shape = match self.shape(name) {
            Some(s) if s.is_empty() => vec![1],
            s => s.unwrap_or_default(),
        };
        self.tensor(name, &shape)
    }

    /// An error about these weights (the file they come from).
    pub fn error(&self, msg: impl Into<String>) -> Error {
        Error::Weights {
            path: self.src.label(),
            msg: msg.into(),
        }
    }
}

/// A linear layer: `x · W (+ b)`, with the fused epilogue of the matmul kernels.
#[derive(Clone, Debug)]
pub struct Linear {
    pub w: Arc<Constant>,
    pub b: Option<Arc<Constant>>,
    pub layout: Layout,
}

impl Linear {
    /// `nn.Linear(d_in, d_out)` at `vb`: `weight` [d_out, d_in], `bias` [d_out].
    pub fn load(vb: &Vars, d_in: usize, d_out: usize) -> Result<Linear> {
        Ok(Linear {
            w: vb.weight("weight", &[d_out, d_in])?,
            b: Some(vb.param("bias", &[d_out])?),
            layout: Layout::NxK,
        })
    }

    /// GPT-2's `Conv1D(d_out, d_in)` at `vb`: `weight` [d_in, d_out], `bias` [d_out].
    pub fn load_conv1d(vb: &Vars, d_in: usize, d_out: usize) -> Result<Linear> {
        Ok(Linear {
            w: vb.weight("weight", &[d_in, d_out])?,
            b: Some(vb.param("bias", &[d_out])?),
            layout: Layout::KxN,
        })
    }

    /// Several `nn.Linear(d_in, d_out)` fused into one projection of `parts.len()·d_out`
    /// outputs (Q, K and V in one matmul). The fused weight is named `fused.weight` in `vb`.
    pub fn load_fused(vb: &Vars, parts: &[Vars], d_in: usize, d_out: usize) -> Result<Linear> {
        let mut w = Vec::with_capacity(parts.len() * d_out * d_in);
        let mut b = Vec::with_capacity(parts.len() * d_out);
        for p in parts {
            w.extend(p.tensor("weight", &[d_out, d_in])?.as_f32()?);
            b.extend(p.tensor("bias", &[d_out])?.as_f32()?);
        }
        let n = parts.len() * d_out;
        Ok(Linear {
            w: vb
                .opts()
                .weight(vb.key("weight"), Tensor::from_f32(&[n, d_in], w)?)?,
            b: Some(Constant::new(vb.key("bias"), Tensor::from_f32(&[n], b)?)),
            layout: Layout::NxK,
        })
    }

    /// `x · W + b`.
    pub fn forward(&self, g: &mut Graph, x: ValueId) -> Result<ValueId> {
        self.forward_fused(g, x, Act::None, None)
    }

    /// `act(x · W + b) + residual`, one kernel.
    pub fn forward_fused(
        &self,
        g: &mut Graph,
        x: ValueId,
        act: Act,
        residual: Option<ValueId>,
    ) -> Result<ValueId> {
        let w = g.constant(&self.w)?;
        let bias = match &self.b {
            Some(b) => Some(g.constant(b)?),
            None => None,
        };
        g.matmul_fused(
            x,
            w,
            self.layout,
            Epilogue {
                bias,
                act,
                residual,
            },
        )
    }
}

/// LayerNorm over the last axis.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    pub gamma: Arc<Constant>,
    pub beta: Arc<Constant>,
    pub eps: f32,
}

impl LayerNorm {
    /// `nn.LayerNorm(dim)` at `vb`: `weight` and `bias` [dim] (legacy `gamma` / `beta` names
    /// resolve too).
    pub fn load(vb: &Vars, dim: usize, eps: f64) -> Result<LayerNorm> {
        Ok(LayerNorm {
            gamma: vb.param("weight", &[dim])?,
            beta: vb.param("bias", &[dim])?,
            eps: eps as f32,
        })
    }

    pub fn forward(&self, g: &mut Graph, x: ValueId) -> Result<ValueId> {
        let (w, b) = (g.constant(&self.gamma)?, g.constant(&self.beta)?);
        g.layernorm(x, w, b, self.eps)
    }
}

/// A lookup table [rows, dim].
#[derive(Clone, Debug)]
pub struct Embedding {
    pub table: Arc<Constant>,
}

impl Embedding {
    /// `nn.Embedding(rows, dim)` at `vb` (`weight`), in the storage dtype.
    pub fn load(vb: &Vars, rows: usize, dim: usize) -> Result<Embedding> {
        Ok(Embedding {
            table: vb.weight("weight", &[rows, dim])?,
        })
    }

    /// Rows of the table for u32 `ids`.
    pub fn forward(&self, g: &mut Graph, ids: ValueId) -> Result<ValueId> {
        let t = g.constant(&self.table)?;
        g.embedding(t, ids)
    }
}

/// Whether queries see later keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Masking {
    /// Every query sees every key (encoders).
    Bidirectional,
    /// A query sees only keys at or before its position (decoders).
    Causal,
}

/// Multi-head self-attention over a fused QKV projection [.., 3·width].
pub fn self_attention(heads: usize, width: usize, masking: Masking) -> Attention {
    let a = Attention::fused_qkv(heads, width);
    match masking {
        Masking::Causal => a.causal(),
        Masking::Bidirectional => a,
    }
}

/// Where a transformer layer normalizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    /// `h = LN(x + attn(x)); LN(h + mlp(h))` (BERT).
    Post,
    /// `h = x + attn(LN(x)); h + mlp(LN(h))` (ViT, GPT-2).
    Pre,
}

/// How a layer's Q, K and V projections are stored.
#[derive(Clone, Copy, Debug)]
pub enum Qkv {
    /// Three `nn.Linear` modules (BERT's `query`/`key`/`value`), fused at load.
    Separate([&'static str; 3]),
    /// One GPT-2 `Conv1D` producing Q, K and V.
    Conv1d(&'static str),
}

/// The HF module names of one transformer layer, relative to the layer's scope.
#[derive(Clone, Copy, Debug)]
pub struct LayerNames {
    pub qkv: Qkv,
    /// Output projection of the attention.
    pub attn_out: &'static str,
    /// The norm around the attention block.
    pub attn_norm: &'static str,
    /// MLP up and down projections.
    pub mlp_in: &'static str,
    pub mlp_out: &'static str,
    /// The norm around the MLP block.
    pub mlp_norm: &'static str,
}

/// The sizes and choices of one transformer layer.
#[derive(Clone, Copy, Debug)]
pub struct LayerShape {
    pub width: usize,
    pub inner: usize,
    pub heads: usize,
    pub eps: f64,
    pub act: Act,
    pub norm: Norm,
    pub masking: Masking,
}

/// A KV cache (two graph states [1, positions, width]) and the run-time offset `past` (u32
/// [1]) where this step's keys and values are written.
#[derive(Clone, Copy, Debug)]
pub struct KvCache {
    pub k: ValueId,
    pub v: ValueId,
    pub past: ValueId,
}

/// One encoder or decoder layer.
#[derive(Clone, Debug)]
pub struct TransformerLayer {
    qkv: Linear,
    attn_out: Linear,
    attn_norm: LayerNorm,
    mlp_in: Linear,
    mlp_out: Linear,
    mlp_norm: LayerNorm,
    attention: Attention,
    shape: LayerShape,
}

impl TransformerLayer {
    /// The layer at `vb` with the module names `n`.
    pub fn load(vb: &Vars, n: &LayerNames, s: LayerShape) -> Result<TransformerLayer> {
        let (w, i) = (s.width, s.inner);
        if s.heads == 0 || !w.is_multiple_of(s.heads) {
            return Err(Error::InvalidArgument(format!(
                "width {w} is not divisible by {} heads",
                s.heads
            )));
        }
        let (qkv, linear): (Linear, fn(&Vars, usize, usize) -> Result<Linear>) = match n.qkv {
            Qkv::Separate(names) => {
                let parts = names.map(|p| vb.pp(p));
                (
                    Linear::load_fused(&vb.pp("qkv"), &parts, w, w)?,
                    Linear::load,
                )
            }
            Qkv::Conv1d(name) => (
                Linear::load_conv1d(&vb.pp(name), w, 3 * w)?,
                Linear::load_conv1d,
            ),
        };
        Ok(TransformerLayer {
            qkv,
            attn_out: linear(&vb.pp(n.attn_out), w, w)?,
            attn_norm: LayerNorm::load(&vb.pp(n.attn_norm), w, s.eps)?,
            mlp_in: linear(&vb.pp(n.mlp_in), w, i)?,
            mlp_out: linear(&vb.pp(n.mlp_out), i, w)?,
            mlp_norm: LayerNorm::load(&vb.pp(n.mlp_norm), w, s.eps)?,
            attention: self_attention(s.heads, w, s.masking),
            shape: s,
        })
    }

    /// The layer over `x` [b, s, width], with an optional additive key mask [b, keys]. With a
    /// cache, this step's K and V are written at `past` and attention reads the cache.
    pub fn forward(
        &self,
        g: &mut Graph,
        x: ValueId,
        mask: Option<ValueId>,
        cache: Option<KvCache>,
    ) -> Result<ValueId> {
        match self.shape.norm {
            Norm::Post => {
                let a = self.attend(g, x, mask, cache)?;
                let y = self.attn_out.forward_fused(g, a, Act::None, Some(x))?;
                let h = self.attn_norm.forward(g, y)?;
                let f = self.mlp_in.forward_fused(g, h, self.shape.act, None)?;
                let z = self.mlp_out.forward_fused(g, f, Act::None, Some(h))?;
                self.mlp_norm.forward(g, z)
            }
            Norm::Pre => {
                let y = self.attn_norm.forward(g, x)?;
                let a = self.attend(g, y, mask, cache)?;
                let h = self.attn_out.forward_fused(g, a, Act::None, Some(x))?;
                let y = self.mlp_norm.forward(g, h)?;
                let f = self.mlp_in.forward_fused(g, y, self.shape.act, None)?;
                self.mlp_out.forward_fused(g, f, Act::None, Some(h))
            }
        }
    }

    /// Attention of the fused QKV projection of `x`, over itself or over the cache.
    fn attend(
        &self,
        g: &mut Graph,
        x: ValueId,
        mask: Option<ValueId>,
        cache: Option<KvCache>,
    ) -> Result<ValueId> {
        let qkv = self.qkv.forward(g, x)?;
        let w = self.shape.width;
        match cache {
            Some(c) => {
                g.kv_write(c.k, qkv, w, c.past)?;
                g.kv_write(c.v, qkv, 2 * w, c.past)?;
                let op = self.attention.clone().columns(0, 0, 0);
                g.attention(op, qkv, c.k, c.v, mask, Some(c.past))
            }
            None => g.attention(self.attention.clone(), qkv, qkv, qkv, mask, None),
        }
    }
}

/// A [`DType::U32`] input of `shape`.
pub(crate) fn ids_input(g: &mut Graph, name: &str, shape: &[usize]) -> Result<ValueId> {
    g.input(name, shape, DType::U32)
}
