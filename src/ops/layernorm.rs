//! LayerNorm over the last axis with affine weight and bias.

use super::{expect_f32, expect_inputs, groups_for, row_reduce, shapes, Op, Params};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, ValueId};
use crate::tensor::{Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub eps: f32,
}

impl Op for LayerNorm {
    fn name(&self) -> &'static str {
        "layernorm"
    }

    /// Inputs: x [..., n], gamma [n], beta [n].
    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        expect_inputs("layernorm", inputs, 3)?;
        expect_f32("layernorm", inputs)?;
        let n = *inputs[0].shape.last().unwrap();
        if inputs[1].shape != [n] || inputs[2].shape != [n] {
            return Err(Error::shape(
                "layernorm",
                format!("gamma and beta must have shape [{n}]"),
                &shapes(inputs),
            ));
        }
        Ok(vec![inputs[0].clone()])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let (g, b) = (inputs[1].as_f32()?, inputs[2].as_f32()?);
        let n = g.len();
        let xv = x.as_f32()?;
        let mut y = vec![0.0; xv.len()];
        for (xr, yr) in xv.chunks(n).zip(y.chunks_mut(n)) {
            let mean = xr.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let var = xr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            let rstd = 1.0 / (var + self.eps as f64).sqrt();
            for i in 0..n {
                yr[i] = ((xr[i] as f64 - mean) * rstd * g[i] as f64 + b[i] as f64) as f32;
            }
        }
        Ok(vec![Tensor::from_f32(x.shape(), y)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let info = cx.info(inputs[0]).clone();
        let n = *info.shape.last().unwrap();
        let rows = info.numel() / n;
        let defs = row_reduce(cx);
        let groups = groups_for(cx, rows, 1);
        cx.dispatch(
            "layernorm.wgsl",
            &defs,
            vec![
                Arg::Read(inputs[0]),
                Arg::Read(inputs[1]),
                Arg::Read(inputs[2]),
                Arg::Write(outputs[0]),
                Params::new()
                    .u32(rows as u32)
                    .u32(n as u32)
                    .f32(self.eps)
                    .arg(),
            ],
            groups,
        )
    }
}

impl Graph {
    pub fn layernorm(
        &mut self,
        x: ValueId,
        gamma: ValueId,
        beta: ValueId,
        eps: f32,
    ) -> Result<ValueId> {
        self.node1(LayerNorm { eps }, &[x, gamma, beta])
    }
}
