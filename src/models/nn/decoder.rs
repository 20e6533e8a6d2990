//! The decoder layer of Llama-architecture models (Llama, Qwen2, SmolLM): pre-RMSNorm,
//! grouped-query self-attention over a fused QKV projection with rotary embeddings on Q and K,
//! and a SiLU-gated MLP whose gate and up projections are one matmul.
//!
//! ```text
//! x ─ RMSNorm ─ QKV (q_proj|k_proj|v_proj) ─ RoPE(Q, K) ─ causal GQA attention ─ o_proj ─ + x ─┐
//! ┌───────────────────────────────────────────────────────────────────────────────────────────┘
//! h ─ RMSNorm ─ gate|up ─ silu(gate) · up ─ down_proj ─ + h
//! ```

use super::{KvCache, Linear, RmsNorm, Rotary, Vars};
use crate::error::{Error, Result};
use crate::graph::{Graph, ValueId};
use crate::ops::{Act, Attention};

/// The sizes of one decoder layer.
#[derive(Clone, Copy, Debug)]
pub struct DecoderShape {
    pub hidden: usize,
    pub inner: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub eps: f64,
    /// q/k/v projections carry biases (Qwen2).
    pub qkv_bias: bool,
}

/// One Llama-style decoder layer, loaded from `model.layers.N`.
#[derive(Clone, Debug)]
pub struct DecoderLayer {
    input_norm: RmsNorm,
    qkv: Linear,
    o_proj: Linear,
    post_norm: RmsNorm,
    gate_up: Linear,
    down: Linear,
    attention: Attention,
    shape: DecoderShape,
}

impl DecoderLayer {
    /// `count` layers at `vb.0`, `vb.1`, ...
    pub fn stack(vb: &Vars, count: usize, s: DecoderShape) -> Result<Vec<DecoderLayer>> {
        (0..count).map(|l| Self::load(&vb.pp(l), s)).collect()
    }

    pub fn load(vb: &Vars, s: DecoderShape) -> Result<DecoderLayer> {
        if s.heads == 0 || s.kv_heads == 0 || !s.heads.is_multiple_of(s.kv_heads) {
            return Err(Error::InvalidArgument(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                s.heads, s.kv_heads
            )));
        }
        let (h, d) = (s.hidden, s.head_dim);
        let (q, kv) = (s.heads * d, s.kv_heads * d);
        let a = vb.pp("self_attn");
        let m = vb.pp("mlp");
        let parts = [
            (a.pp("q_proj"), q),
            (a.pp("k_proj"), kv),
            (a.pp("v_proj"), kv),
        ];
        let attention = Attention::new(s.heads, d)
            .grouped(s.kv_heads)
            .columns(0, q, q + kv)
            .causal();
        Ok(DecoderLayer {
            input_norm: RmsNorm::load(&vb.pp("input_layernorm"), h, s.eps)?,
            qkv: Linear::load_concat(&a.pp("qkv"), &parts, h, s.qkv_bias)?,
            o_proj: Linear::load_no_bias(&a.pp("o_proj"), q, h)?,
            post_norm: RmsNorm::load(&vb.pp("post_attention_layernorm"), h, s.eps)?,
            gate_up: Linear::load_concat(
                &m.pp("gate_up"),
                &[(m.pp("gate_proj"), s.inner), (m.pp("up_proj"), s.inner)],
                h,
                false,
            )?,
            down: Linear::load_no_bias(&m.pp("down_proj"), s.inner, h)?,
            attention,
            shape: s,
        })
    }

    /// The layer over `x` [b, s, hidden] with an additive key mask [b, s], tokens at positions
    /// 0..s. With a cache (batch 1, caches [1, positions, kv_heads·head_dim]), tokens sit at
    /// `past`.., this step's K and V are written there and attention reads the cache.
    pub fn forward(
        &self,
        g: &mut Graph,
        x: ValueId,
        rope: &Rotary,
        mask: Option<ValueId>,
        cache: Option<KvCache>,
    ) -> Result<ValueId> {
        let s = self.shape;
        let y = self.input_norm.forward(g, x)?;
        let qkv = self.qkv.forward(g, y)?;
        let qkv = rope.forward(g, qkv, s.heads + s.kv_heads, cache.map(|c| c.past))?;
        let a = match cache {
            Some(c) => {
                let (q, kv) = (s.heads * s.head_dim, s.kv_heads * s.head_dim);
                g.kv_write(c.k, qkv, q, c.past)?;
                g.kv_write(c.v, qkv, q + kv, c.past)?;
                let op = self.attention.clone().columns(0, 0, 0);
                g.attention(op, qkv, c.k, c.v, mask, Some(c.past))?
            }
            None => g.attention(self.attention.clone(), qkv, qkv, qkv, mask, None)?,
        };
        let h = self.o_proj.forward_fused(g, a, Act::None, Some(x))?;
        let y = self.post_norm.forward(g, h)?;
        let f = self.gate_up.forward(g, y)?;
        let f = g.glu(f, Act::Silu)?;
        self.down.forward_fused(g, f, Act::None, Some(h))
    }
}
