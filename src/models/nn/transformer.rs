//! One transformer layer for every family: pre- or post-norm, self-attention over a fused QKV
//! projection, a GELU-style MLP, and an optional KV cache for decoding.

use super::{LayerNorm, Linear, Vars};
use crate::error::{Error, Result};
use crate::graph::{Graph, ValueId};
use crate::ops::{Act, Attention};

/// Loads a linear layer of (d_in, d_out) from a scope.
type LinearLoader = fn(&Vars, usize, usize) -> Result<Linear>;

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
    /// Per-channel scales of the attention and MLP outputs before their residual adds
    /// (DINOv2's `layer_scale1` / `layer_scale2`, each a `lambda1` vector), folded into
    /// `attn_out` and `mlp_out` at load.
    pub layer_scale: Option<[&'static str; 2]>,
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
    /// `count` layers at `vb.0`, `vb.1`, ... (HF's `ModuleList` numbering).
    pub fn stack(
        vb: &Vars,
        count: usize,
        n: &LayerNames,
        s: LayerShape,
    ) -> Result<Vec<TransformerLayer>> {
        (0..count).map(|l| Self::load(&vb.pp(l), n, s)).collect()
    }

    /// The layer at `vb` with the module names `n`.
    pub fn load(vb: &Vars, n: &LayerNames, s: LayerShape) -> Result<TransformerLayer> {
        let (w, i) = (s.width, s.inner);
        if s.heads == 0 || !w.is_multiple_of(s.heads) {
            return Err(Error::InvalidArgument(format!(
                "width {w} is not divisible by {} heads",
                s.heads
            )));
        }
        let (qkv, linear): (Linear, LinearLoader) = match n.qkv {
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
        // Layer scales first (small); then the projections in module order, so the first
        // tensor that disagrees with the config is the one reported.
        let scales = match n.layer_scale {
            Some(_) if !matches!(n.qkv, Qkv::Separate(_)) => {
                return Err(Error::InvalidArgument(
                    "layer scale needs nn.Linear projections".into(),
                ))
            }
            Some([a, m]) => Some((
                vb.pp(a).tensor("lambda1", &[w])?,
                vb.pp(m).tensor("lambda1", &[w])?,
            )),
            None => None,
        };
        let attn_out = match &scales {
            Some((la, _)) => Linear::load_scaled(&vb.pp(n.attn_out), w, w, la.as_f32()?)?,
            None => linear(&vb.pp(n.attn_out), w, w)?,
        };
        let mlp_in = linear(&vb.pp(n.mlp_in), w, i)?;
        let mlp_out = match &scales {
            Some((_, lm)) => Linear::load_scaled(&vb.pp(n.mlp_out), i, w, lm.as_f32()?)?,
            None => linear(&vb.pp(n.mlp_out), i, w)?,
        };
        Ok(TransformerLayer {
            qkv,
            attn_out,
            attn_norm: LayerNorm::load(&vb.pp(n.attn_norm), w, s.eps)?,
            mlp_in,
            mlp_out,
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
        self.forward_full(g, x, mask, None, cache)
    }

    /// [`TransformerLayer::forward`] without a cache, adding `bias` [heads, s, s] to every
    /// head's attention scores (MPNet's relative position bias).
    pub fn forward_biased(
        &self,
        g: &mut Graph,
        x: ValueId,
        mask: Option<ValueId>,
        bias: Option<ValueId>,
    ) -> Result<ValueId> {
        self.forward_full(g, x, mask, bias, None)
    }

    fn forward_full(
        &self,
        g: &mut Graph,
        x: ValueId,
        mask: Option<ValueId>,
        bias: Option<ValueId>,
        cache: Option<KvCache>,
    ) -> Result<ValueId> {
        match self.shape.norm {
            Norm::Post => {
                let a = self.attend(g, x, mask, bias, cache)?;
                let y = self.attn_out.forward_fused(g, a, Act::None, Some(x))?;
                let h = self.attn_norm.forward(g, y)?;
                let f = self.mlp_in.forward_fused(g, h, self.shape.act, None)?;
                let z = self.mlp_out.forward_fused(g, f, Act::None, Some(h))?;
                self.mlp_norm.forward(g, z)
            }
            Norm::Pre => {
                let y = self.attn_norm.forward(g, x)?;
                let a = self.attend(g, y, mask, bias, cache)?;
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
        bias: Option<ValueId>,
        cache: Option<KvCache>,
    ) -> Result<ValueId> {
        let qkv = self.qkv.forward(g, x)?;
        let w = self.shape.width;
        match cache {
            Some(c) => {
                g.kv_write(c.k, qkv, w, c.past)?;
                g.kv_write(c.v, qkv, 2 * w, c.past)?;
                let op = self.attention.clone().columns(0, 0, 0);
                g.attention_biased(op, [qkv, c.k, c.v], mask, bias, Some(c.past))
            }
            None => g.attention_biased(self.attention.clone(), [qkv; 3], mask, bias, None),
        }
    }
}
