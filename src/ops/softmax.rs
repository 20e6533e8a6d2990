//! Softmax over the last axis.

use super::{expect_f32, expect_inputs, groups_for, row_reduce, shapes};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, Op, Params, ValueId};
use crate::tensor::{Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct Softmax;

/// Reference softmax of one row (f64 accumulation).
pub fn softmax_row(x: &[f32], y: &mut [f32]) {
    let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let s: f64 = x.iter().map(|&v| ((v - m) as f64).exp()).sum();
    for (o, &v) in y.iter_mut().zip(x) {
        *o = (((v - m) as f64).exp() / s) as f32;
    }
}

impl Op for Softmax {
    fn name(&self) -> &'static str {
        "softmax"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        expect_inputs("softmax", inputs, 1)?;
        expect_f32("softmax", inputs)?;
        if inputs[0].shape.is_empty() {
            return Err(Error::shape(
                "softmax",
                "x must have at least one axis",
                &shapes(inputs),
            ));
        }
        Ok(vec![inputs[0].clone()])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let n = x.shape().last().copied().unwrap_or(1);
        let xv = x.as_f32()?;
        let mut y = vec![0.0; xv.len()];
        for (xr, yr) in xv.chunks(n).zip(y.chunks_mut(n)) {
            softmax_row(xr, yr);
        }
        Ok(vec![Tensor::from_f32(x.shape(), y)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let info = cx.info(inputs[0]).clone();
        let n = info.shape.last().copied().unwrap_or(1);
        let rows = info.numel() / n;
        let defs = row_reduce(cx);
        let groups = groups_for(cx, rows, 1);
        cx.dispatch(
            "softmax.wgsl",
            &defs,
            vec![
                Arg::Read(inputs[0]),
                Arg::Write(outputs[0]),
                Params::new().u32(rows as u32).u32(n as u32).arg(),
            ],
            groups,
        )
    }
}

impl Graph {
    pub fn softmax(&mut self, x: ValueId) -> Result<ValueId> {
        self.node1(Softmax, &[x])
    }
}
