//! The basic layers: [`Linear`] (with the matmul kernels' fused epilogue), [`LayerNorm`],
//! [`RmsNorm`] and [`Embedding`].

use super::Vars;
use crate::error::Result;
use crate::graph::{Constant, Graph, ValueId};
use crate::ops::{Act, Epilogue, Layout};
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

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

    /// `nn.Linear(d_in, d_out, bias=False)` at `vb`: `weight` [d_out, d_in] only.
    pub fn load_no_bias(vb: &Vars, d_in: usize, d_out: usize) -> Result<Linear> {
        Ok(Linear {
            w: vb.weight("weight", &[d_out, d_in])?,
            b: None,
            layout: Layout::NxK,
        })
    }

    /// `nn.Linear(d_in, d_out)` at `vb` followed by a per-output scale (DINOv2's layer scale:
    /// `x·Wᵀ·diag(s) + b·s`), folded into the weight and bias before they are stored.
    pub fn load_scaled(vb: &Vars, d_in: usize, d_out: usize, scale: &[f32]) -> Result<Linear> {
        let w = vb.tensor("weight", &[d_out, d_in])?;
        let b = vb.tensor("bias", &[d_out])?;
        let mut wv = w.as_f32()?.to_vec();
        for (row, s) in wv.chunks_mut(d_in).zip(scale) {
            row.iter_mut().for_each(|v| *v *= s);
        }
        let bv: Vec<f32> = b.as_f32()?.iter().zip(scale).map(|(v, s)| v * s).collect();
        Ok(Linear {
            w: vb
                .opts()
                .weight(vb.key("weight"), Tensor::from_f32(&[d_out, d_in], wv)?)?,
            b: Some(Constant::new(
                vb.key("bias"),
                Tensor::from_f32(&[d_out], bv)?,
            )),
            layout: Layout::NxK,
        })
    }

    /// GPT-2's `Conv1D(d_out, d_in)` at `vb`: `weight` [d_in, d_out], `bias` [d_out]. Stored
    /// as q8, the weight is transposed to [d_out, d_in] first (q8 blocks run along the
    /// reduction dimension).
    pub fn load_conv1d(vb: &Vars, d_in: usize, d_out: usize) -> Result<Linear> {
        if vb.opts().dtype == DType::Q8 {
            let w = vb.tensor("weight", &[d_in, d_out])?;
            let v = w.as_f32()?;
            let mut t = vec![0.0f32; v.len()];
            for i in 0..d_in {
                for o in 0..d_out {
                    t[o * d_in + i] = v[i * d_out + o];
                }
            }
            return Ok(Linear {
                w: vb
                    .opts()
                    .weight(vb.key("weight"), Tensor::from_f32(&[d_out, d_in], t)?)?,
                b: Some(vb.param("bias", &[d_out])?),
                layout: Layout::NxK,
            });
        }
        Ok(Linear {
            w: vb.weight("weight", &[d_in, d_out])?,
            b: Some(vb.param("bias", &[d_out])?),
            layout: Layout::KxN,
        })
    }

    /// Several `nn.Linear(d_in, d_out)` fused into one projection of `parts.len()·d_out`
    /// outputs (Q, K and V in one matmul), named `weight` / `bias` in `vb`. Every part is read
    /// (and its shape checked against the file) before the fused buffer is allocated, so a
    /// config that claims huge sizes fails on the first tensor instead of reserving them.
    pub fn load_fused(vb: &Vars, parts: &[Vars], d_in: usize, d_out: usize) -> Result<Linear> {
        let parts: Vec<(Vars, usize)> = parts.iter().map(|p| (p.clone(), d_out)).collect();
        Self::load_concat(vb, &parts, d_in, true)
    }

    /// `nn.Linear(d_in, n_i)` parts of different widths concatenated along the outputs (a
    /// grouped-query QKV, Llama's gate and up), with or without biases; as [`Linear::load_fused`].
    pub fn load_concat(
        vb: &Vars,
        parts: &[(Vars, usize)],
        d_in: usize,
        bias: bool,
    ) -> Result<Linear> {
        let mut ws = Vec::with_capacity(parts.len());
        let mut bs = Vec::with_capacity(parts.len());
        for (p, n) in parts {
            ws.push(p.tensor("weight", &[*n, d_in])?);
            if bias {
                bs.push(p.tensor("bias", &[*n])?);
            }
        }
        let concat = |ts: &[Tensor]| -> Result<Vec<f32>> {
            let mut v = Vec::with_capacity(ts.iter().map(Tensor::numel).sum());
            for t in ts {
                v.extend_from_slice(t.as_f32()?);
            }
            Ok(v)
        };
        let n: usize = parts.iter().map(|(_, n)| n).sum();
        let w = concat(&ws)?;
        Ok(Linear {
            w: vb
                .opts()
                .weight(vb.key("weight"), Tensor::from_f32(&[n, d_in], w)?)?,
            b: bias
                .then(|| -> Result<_> {
                    Ok(Constant::new(
                        vb.key("bias"),
                        Tensor::from_f32(&[n], concat(&bs)?)?,
                    ))
                })
                .transpose()?,
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

/// RMSNorm over the last axis (Llama's `LlamaRMSNorm`): `weight` only.
#[derive(Clone, Debug)]
pub struct RmsNorm {
    pub gamma: Arc<Constant>,
    pub eps: f32,
}

impl RmsNorm {
    /// `RMSNorm(dim)` at `vb`: `weight` [dim].
    pub fn load(vb: &Vars, dim: usize, eps: f64) -> Result<RmsNorm> {
        Ok(RmsNorm {
            gamma: vb.param("weight", &[dim])?,
            eps: eps as f32,
        })
    }

    pub fn forward(&self, g: &mut Graph, x: ValueId) -> Result<ValueId> {
        let w = g.constant(&self.gamma)?;
        g.rmsnorm(x, w, self.eps)
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
