//! Mean over one axis (the axis is removed).

use super::{axis, expect_f32, expect_inputs, groups_for};
use crate::error::Result;
use crate::graph::{Arg, Graph, Lower, Op, Params, ValueId};
use crate::tensor::{Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct Mean {
    pub axis: isize,
}

impl Mean {
    /// (outer, n, inner, output shape)
    fn geometry(&self, shape: &[usize]) -> Result<(usize, usize, usize, Vec<usize>)> {
        let a = axis("mean", self.axis, shape.len(), shape)?;
        let outer = shape[..a].iter().product();
        let inner = shape[a + 1..].iter().product();
        let mut out = shape.to_vec();
        out.remove(a);
        if out.is_empty() {
            out.push(1);
        }
        Ok((outer, shape[a], inner, out))
    }
}

impl Op for Mean {
    fn name(&self) -> &'static str {
        "mean"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        expect_inputs("mean", inputs, 1)?;
        expect_f32("mean", inputs)?;
        let (_, _, _, out) = self.geometry(&inputs[0].shape)?;
        Ok(vec![ValueInfo::f32(&out)])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0].as_f32()?;
        let (outer, n, inner, out) = self.geometry(inputs[0].shape())?;
        let mut y = vec![0.0f32; outer * inner];
        for a in 0..outer {
            for c in 0..inner {
                let s: f64 = (0..n).map(|k| x[(a * n + k) * inner + c] as f64).sum();
                y[a * inner + c] = (s / n as f64) as f32;
            }
        }
        Ok(vec![Tensor::from_f32(&out, y)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let (outer, n, inner, _) = self.geometry(&cx.info(inputs[0]).shape.clone())?;
        let groups = groups_for(cx, outer * inner, 64);
        cx.dispatch(
            "reduce_mean.wgsl",
            &[],
            vec![
                Arg::Read(inputs[0]),
                Arg::Write(outputs[0]),
                Params::new()
                    .u32(outer as u32)
                    .u32(n as u32)
                    .u32(inner as u32)
                    .arg(),
            ],
            groups,
        )
    }
}

impl Graph {
    pub fn mean(&mut self, x: ValueId, axis: isize) -> Result<ValueId> {
        self.node1(Mean { axis }, &[x])
    }
}
