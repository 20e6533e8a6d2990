//! Nearest-neighbour upsampling of NCHW by integer factors.

use super::{expect_f32, expect_inputs, groups_for};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, Op, Params, ValueId};
use crate::tensor::{Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct Upsample {
    pub scale: [usize; 2],
}

impl Op for Upsample {
    fn name(&self) -> &'static str {
        "upsample_nearest"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        expect_inputs(self.name(), inputs, 1)?;
        expect_f32(self.name(), inputs)?;
        let s = &inputs[0].shape;
        if s.len() != 4 || self.scale.contains(&0) {
            return Err(Error::shape(
                self.name(),
                "needs [N, C, H, W] and positive scale factors",
                &[s],
            ));
        }
        Ok(vec![ValueInfo::f32(&[
            s[0],
            s[1],
            s[2] * self.scale[0],
            s[3] * self.scale[1],
        ])])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let s = inputs[0].shape();
        let x = inputs[0].as_f32()?;
        let (h, w) = (s[2], s[3]);
        let (ho, wo) = (h * self.scale[0], w * self.scale[1]);
        let mut y = Vec::with_capacity(s[0] * s[1] * ho * wo);
        for plane in 0..s[0] * s[1] {
            for oy in 0..ho {
                for ox in 0..wo {
                    y.push(x[(plane * h + oy / self.scale[0]) * w + ox / self.scale[1]]);
                }
            }
        }
        Ok(vec![Tensor::from_f32(&[s[0], s[1], ho, wo], y)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let s = cx.info(inputs[0]).shape.clone();
        let n = cx.info(outputs[0]).numel();
        let params = Params::new()
            .u32((s[0] * s[1]) as u32)
            .u32(s[2] as u32)
            .u32(s[3] as u32)
            .u32(self.scale[0] as u32)
            .u32(self.scale[1] as u32);
        let w2 = self.scale[1] == 2 && s[3].is_multiple_of(2);
        let groups = groups_for(cx, if w2 { n / 4 } else { n }, 64);
        cx.dispatch(
            "upsample.wgsl",
            &[("W2", (w2 as u32).to_string())],
            vec![Arg::Read(inputs[0]), Arg::Write(outputs[0]), params.arg()],
            groups,
        )
    }
}

impl Graph {
    pub fn upsample_nearest(&mut self, x: ValueId, scale: usize) -> Result<ValueId> {
        self.node1(
            Upsample {
                scale: [scale, scale],
            },
            &[x],
        )
    }
}
