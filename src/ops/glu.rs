//! Gated linear unit over a fused projection: `y = act(x[.., :n]) · x[.., n:]` for x
//! [.., 2n] (Llama's SiLU-gated MLP with its gate and up projections fused into one matmul:
//! `down(silu(gate(x)) · up(x))`).

use super::{expect_f32, expect_inputs, groups_for, shapes, Act};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, Op, Params, ValueId};
use crate::tensor::{Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct Glu {
    pub act: Act,
}

impl Op for Glu {
    fn name(&self) -> &'static str {
        "glu"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        expect_inputs("glu", inputs, 1)?;
        expect_f32("glu", inputs)?;
        let mut shape = inputs[0].shape.clone();
        match shape.last_mut() {
            Some(w) if *w > 0 && w.is_multiple_of(2) => *w /= 2,
            _ => {
                return Err(Error::shape(
                    "glu",
                    "the last axis must hold the gate and up halves (an even, positive width)",
                    &shapes(inputs),
                ))
            }
        }
        Ok(vec![ValueInfo::f32(&shape)])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let info = self.infer(&[&x.info()])?.remove(0);
        let n = *info.shape.last().expect("rank >= 1");
        let y = x
            .as_f32()?
            .chunks(2 * n)
            .flat_map(|r| {
                (0..n).map(move |i| (self.act.apply(r[i]) as f64 * r[n + i] as f64) as f32)
            })
            .collect();
        Ok(vec![Tensor::from_f32(&info.shape, y)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let out = cx.info(outputs[0]).clone();
        let n = *out.shape.last().unwrap_or(&1);
        let total = out.numel();
        cx.dispatch(
            "glu.wgsl",
            &[("ACT", self.act.code().to_string())],
            vec![
                Arg::Read(inputs[0]),
                Arg::Write(outputs[0]),
                Params::new().u32(total as u32).u32(n as u32).arg(),
            ],
            groups_for(cx, total, 256),
        )
    }
}

impl Graph {
    /// `act(x[.., :n]) · x[.., n:]` of x [.., 2n].
    pub fn glu(&mut self, x: ValueId, act: Act) -> Result<ValueId> {
        self.node1(Glu { act }, &[x])
    }
}
