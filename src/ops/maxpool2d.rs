//! 2-D max pooling (NCHW), square kernel; padding behaves as -infinity.

use super::{expect_f32, expect_inputs, groups_for};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, Op, Params, ValueId};
use crate::tensor::{Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct MaxPool2d {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl MaxPool2d {
    fn out_shape(&self, s: &[usize]) -> Result<Vec<usize>> {
        if s.len() != 4
            || self.kernel == 0
            || self.stride == 0
            || self.padding * 2 > self.kernel
            || s[2] + 2 * self.padding < self.kernel
            || s[3] + 2 * self.padding < self.kernel
        {
            return Err(Error::shape(
                "maxpool2d",
                format!(
                    "needs [N, C, H, W] and kernel {} >= 2*padding {} and <= padded size",
                    self.kernel, self.padding
                ),
                &[s],
            ));
        }
        let o = |d: usize| (d + 2 * self.padding - self.kernel) / self.stride + 1;
        Ok(vec![s[0], s[1], o(s[2]), o(s[3])])
    }
}

impl Op for MaxPool2d {
    fn name(&self) -> &'static str {
        "maxpool2d"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        expect_inputs("maxpool2d", inputs, 1)?;
        expect_f32("maxpool2d", inputs)?;
        Ok(vec![ValueInfo::f32(&self.out_shape(&inputs[0].shape)?)])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let s = inputs[0].shape();
        let out = self.out_shape(s)?;
        let x = inputs[0].as_f32()?;
        let (h, w, ho, wo) = (s[2], s[3], out[2], out[3]);
        let mut y = Vec::with_capacity(out.iter().product());
        for plane in 0..s[0] * s[1] {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut m = f32::NEG_INFINITY;
                    for ky in 0..self.kernel {
                        for kx in 0..self.kernel {
                            let iy = (oy * self.stride + ky) as isize - self.padding as isize;
                            let ix = (ox * self.stride + kx) as isize - self.padding as isize;
                            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                m = m.max(x[(plane * h + iy as usize) * w + ix as usize]);
                            }
                        }
                    }
                    y.push(m);
                }
            }
        }
        Ok(vec![Tensor::from_f32(&out, y)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let s = cx.info(inputs[0]).shape.clone();
        let out = cx.info(outputs[0]).shape.clone();
        let n = out.iter().product();
        let params = Params::new()
            .u32((s[0] * s[1]) as u32)
            .u32(s[2] as u32)
            .u32(s[3] as u32)
            .u32(out[2] as u32)
            .u32(out[3] as u32)
            .u32(self.kernel as u32)
            .u32(self.stride as u32)
            .u32(self.padding as u32);
        let groups = groups_for(cx, n, 64);
        cx.dispatch(
            "maxpool2d.wgsl",
            &[],
            vec![Arg::Read(inputs[0]), Arg::Write(outputs[0]), params.arg()],
            groups,
        )
    }
}

impl Graph {
    pub fn maxpool2d(
        &mut self,
        x: ValueId,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<ValueId> {
        self.node1(
            MaxPool2d {
                kernel,
                stride,
                padding,
            },
            &[x],
        )
    }
}
