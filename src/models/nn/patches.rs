//! The image front end of vision transformers: [`PatchEmbedding`] (a convolution with kernel =
//! stride = patch size, run as a matmul over non-overlapping patches) and
//! [`prepend_tokens`] (CLS, distillation or register tokens before the patch tokens).

use super::{Linear, Vars};
use crate::error::Result;
use crate::graph::{Constant, Graph, ValueId};
use crate::ops::Layout;
use std::sync::Arc;

/// `nn.Conv2d(channels, hidden, patch, stride=patch)` as `[b, tokens, c·p·p] · Wᵀ`.
#[derive(Clone, Debug)]
pub struct PatchEmbedding {
    linear: Linear,
    channels: usize,
    patch: usize,
}

impl PatchEmbedding {
    /// The conv at `vb` (`weight` [hidden, channels, p, p], `bias` [hidden] when `bias`).
    pub fn load(
        vb: &Vars,
        hidden: usize,
        channels: usize,
        patch: usize,
        bias: bool,
    ) -> Result<PatchEmbedding> {
        let k = channels * patch * patch;
        let w = vb
            .tensor("weight", &[hidden, channels, patch, patch])?
            .reshape(&[hidden, k])?;
        Ok(PatchEmbedding {
            linear: Linear {
                w: vb.opts().weight(vb.key("weight"), w)?,
                b: bias.then(|| vb.param("bias", &[hidden])).transpose()?,
                layout: Layout::NxK,
            },
            channels,
            patch,
        })
    }

    /// Pixels [b, c, side, side] → patch tokens [b, (side / p)², hidden], row-major over the
    /// patch grid (as `conv(x).flatten(2).transpose(1, 2)`).
    pub fn forward(
        &self,
        g: &mut Graph,
        pixels: ValueId,
        b: usize,
        side: usize,
    ) -> Result<ValueId> {
        let (c, p) = (self.channels, self.patch);
        let gs = side / p;
        let x = g.reshape(pixels, &[b, c, gs, p, gs, p])?;
        let x = g.permute(x, &[0, 2, 4, 1, 3, 5])?;
        let x = g.reshape(x, &[b, gs * gs, c * p * p])?;
        self.linear.forward(g, x)
    }
}

/// `[tokens₀ … tokensₙ, x]` along the sequence: each constant [1, t, h] is broadcast over the
/// batch of `x` [b, s, h] and put before it, in order.
pub fn prepend_tokens(g: &mut Graph, tokens: &[&Arc<Constant>], x: ValueId) -> Result<ValueId> {
    let shape = g.shape(x).to_vec();
    let (b, h) = (shape[0], shape[2]);
    let mut parts = Vec::with_capacity(tokens.len() + 1);
    for t in tokens {
        let rows = t.tensor().shape()[1];
        let v = g.constant(t)?;
        parts.push(g.expand(v, &[b, rows, h])?);
    }
    parts.push(x);
    g.concat(&parts, 1)
}
