//! Rotary position embeddings (RoPE) as transformers' Llama applies them
//! (`q·cos + rotate_half(q)·sin`, rotate_half pairing column i with i + d/2 of each head), on
//! the first `rotate` columns of a [batch, seq, width] tensor (a fused QKV projection's Q and K
//! heads); the other columns (V) pass through. cos and sin come from a table [positions, d]
//! (cos in the first d/2 columns, sin in the rest; see [`rope_table`]); token `t` of each row
//! sits at position `past + t`, `past` an optional run-time u32 [1] (KV-cache decoding).

use super::{expect_inputs, groups_for, shapes};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, Op, Params, ValueId};
use crate::tensor::{DType, Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct Rope {
    pub head_dim: usize,
    /// Columns rotated, from 0 (a multiple of `head_dim`).
    pub rotate: usize,
    /// A u32 [1] `past` input follows the table.
    pub past: bool,
}

impl Rope {
    /// (batch, seq, width, table rows)
    fn check(&self, inputs: &[&ValueInfo]) -> Result<(usize, usize, usize, usize)> {
        expect_inputs("rope", inputs, 2 + self.past as usize)?;
        let bad = |m: String| Err(Error::shape("rope", m, &shapes(inputs)));
        let (x, t) = (inputs[0], inputs[1]);
        if x.rank() != 3 || x.dtype != DType::F32 || t.rank() != 2 || t.dtype != DType::F32 {
            return bad(
                "x must be f32 [batch, seq, width] and the table f32 [positions, d]".into(),
            );
        }
        let d = self.head_dim;
        if d == 0 || !d.is_multiple_of(2) || t.shape[1] != d {
            return bad(format!("head_dim {d} must be even and the table's width"));
        }
        if !self.rotate.is_multiple_of(d) || self.rotate > x.shape[2] {
            return bad(format!(
                "{} rotated columns must be whole heads of {d} within the width {}",
                self.rotate, x.shape[2]
            ));
        }
        if self.past && (inputs[2].shape != [1] || inputs[2].dtype != DType::U32) {
            return bad("past must be u32 [1]".into());
        }
        if !self.past && x.shape[1] > t.shape[0] {
            return bad(format!(
                "{} positions exceed the table's {}",
                x.shape[1], t.shape[0]
            ));
        }
        Ok((x.shape[0], x.shape[1], x.shape[2], t.shape[0]))
    }
}

impl Op for Rope {
    fn name(&self) -> &'static str {
        "rope"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        self.check(inputs)?;
        Ok(vec![inputs[0].clone()])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let infos: Vec<ValueInfo> = inputs.iter().map(|t| t.info()).collect();
        let refs: Vec<&ValueInfo> = infos.iter().collect();
        let (b, s, w, rows) = self.check(&refs)?;
        let (x, t) = (inputs[0].as_f32()?, inputs[1].as_f32()?);
        let past = if self.past {
            inputs[2].as_u32()?[0] as usize
        } else {
            0
        };
        let (d, half) = (self.head_dim, self.head_dim / 2);
        let mut y = x.to_vec();
        for r in 0..b * s {
            // Positions past the table clamp to its last row, as the kernel does.
            let pos = (past + r % s).min(rows - 1);
            let (cos, sin) = (&t[pos * d..pos * d + half], &t[pos * d + half..pos * d + d]);
            for h in 0..self.rotate / d {
                let o = r * w + h * d;
                for i in 0..half {
                    let (a, c) = (x[o + i], x[o + i + half]);
                    y[o + i] = a * cos[i] - c * sin[i];
                    y[o + i + half] = c * cos[i] + a * sin[i];
                }
            }
        }
        Ok(vec![Tensor::from_f32(inputs[0].shape(), y)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let infos: Vec<ValueInfo> = inputs.iter().map(|&i| cx.info(i).clone()).collect();
        let refs: Vec<&ValueInfo> = infos.iter().collect();
        let (b, s, w, rows) = self.check(&refs)?;
        let n = b * s * w;
        let groups = groups_for(cx, n, 256);
        let past = if self.past { inputs[2] } else { inputs[1] };
        cx.dispatch(
            "rope.wgsl",
            &[("HAS_PAST", (self.past as u32).to_string())],
            vec![
                Arg::Read(inputs[0]),
                Arg::Read(inputs[1]),
                Arg::Read(past),
                Arg::Write(outputs[0]),
                Params::new()
                    .u32(n as u32)
                    .u32(s as u32)
                    .u32(w as u32)
                    .u32(self.head_dim as u32)
                    .u32(self.rotate as u32)
                    .u32(rows as u32)
                    .arg(),
            ],
            groups,
        )
    }
}

/// The cos / sin table of positions `0..positions` for rotary frequencies `inv_freq` (d/2 of
/// them), times `scale` (transformers' `attention_scaling`, 1 for most types): row p holds
/// cos(p·f) then sin(p·f), the product p·f rounded to f32 as torch computes it.
pub fn rope_table(inv_freq: &[f32], positions: usize, scale: f32) -> Result<Tensor> {
    let half = inv_freq.len();
    let mut t = Vec::with_capacity(positions * 2 * half);
    for p in 0..positions {
        let angles: Vec<f64> = inv_freq.iter().map(|&f| (p as f32 * f) as f64).collect();
        t.extend(angles.iter().map(|a| (a.cos() as f32) * scale));
        t.extend(angles.iter().map(|a| (a.sin() as f32) * scale));
    }
    Tensor::from_f32(&[positions, 2 * half], t)
}

impl Graph {
    /// RoPE on the first `rotate` columns of `x` [b, s, w] (whole heads of `head_dim`), cos /
    /// sin from `table` [positions, head_dim], positions offset by `past` (u32 [1]) if given.
    pub fn rope(
        &mut self,
        x: ValueId,
        table: ValueId,
        head_dim: usize,
        rotate: usize,
        past: Option<ValueId>,
    ) -> Result<ValueId> {
        let mut inputs = vec![x, table];
        inputs.extend(past);
        let op = Rope {
            head_dim,
            rotate,
            past: past.is_some(),
        };
        self.node1(op, &inputs)
    }
}
