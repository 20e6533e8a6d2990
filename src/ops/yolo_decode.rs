//! YOLOv8 Detect head decoding: three levels of raw outputs [B, 4*reg + nc, h, w] →
//! [B, 4 + nc, anchors] with DFL boxes (cx, cy, w, h in input pixels) and sigmoid class scores,
//! exactly as ultralytics' `Detect` in eval mode (anchors at cell centres, strides per level).

use super::{expect_f32, groups_for, shapes};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, Op, Params, ValueId};
use crate::tensor::{Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct YoloDecode {
    pub nc: usize,
    /// DFL bins per box side (16 in YOLOv8).
    pub reg: usize,
    pub strides: [f32; 3],
}

impl YoloDecode {
    fn check(&self, inputs: &[&ValueInfo]) -> Result<(usize, usize)> {
        super::expect_inputs("yolo_decode", inputs, 3)?;
        expect_f32("yolo_decode", inputs)?;
        let ch = 4 * self.reg + self.nc;
        let b = inputs[0].shape.first().copied().unwrap_or(0);
        for i in inputs {
            if i.rank() != 4 || i.shape[0] != b || i.shape[1] != ch {
                return Err(Error::shape(
                    "yolo_decode",
                    format!("levels must be [batch, {ch}, h, w]"),
                    &shapes(inputs),
                ));
            }
        }
        Ok((b, inputs.iter().map(|i| i.shape[2] * i.shape[3]).sum()))
    }
}

impl Op for YoloDecode {
    fn name(&self) -> &'static str {
        "yolo_decode"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        let (b, a) = self.check(inputs)?;
        Ok(vec![ValueInfo::f32(&[b, 4 + self.nc, a])])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let infos: Vec<ValueInfo> = inputs.iter().map(|t| t.info()).collect();
        let refs: Vec<&ValueInfo> = infos.iter().collect();
        let (b, anchors) = self.check(&refs)?;
        let (nc, reg) = (self.nc, self.reg);
        let ch = 4 * reg + nc;
        let mut out = vec![0.0f32; b * (4 + nc) * anchors];
        for bi in 0..b {
            let mut a = 0;
            for (l, x) in inputs.iter().enumerate() {
                let (h, w) = (x.shape()[2], x.shape()[3]);
                let v = x.as_f32()?;
                let at = |c: usize, cell: usize| v[(bi * ch + c) * h * w + cell] as f64;
                for cell in 0..h * w {
                    let (ax, ay) = ((cell % w) as f64 + 0.5, (cell / w) as f64 + 0.5);
                    let mut d = [0.0f64; 4];
                    for (side, ds) in d.iter_mut().enumerate() {
                        let m = (0..reg)
                            .map(|j| at(side * reg + j, cell))
                            .fold(f64::MIN, f64::max);
                        let e: Vec<f64> = (0..reg)
                            .map(|j| (at(side * reg + j, cell) - m).exp())
                            .collect();
                        let s: f64 = e.iter().sum();
                        *ds = e.iter().enumerate().map(|(j, q)| q * j as f64).sum::<f64>() / s;
                    }
                    let s = self.strides[l] as f64;
                    let (x1, y1, x2, y2) = (ax - d[0], ay - d[1], ax + d[2], ay + d[3]);
                    let base = bi * (4 + nc) * anchors + a;
                    out[base] = ((x1 + x2) / 2.0 * s) as f32;
                    out[base + anchors] = ((y1 + y2) / 2.0 * s) as f32;
                    out[base + 2 * anchors] = ((x2 - x1) * s) as f32;
                    out[base + 3 * anchors] = ((y2 - y1) * s) as f32;
                    for c in 0..nc {
                        out[base + (4 + c) * anchors] =
                            (1.0 / (1.0 + (-at(4 * reg + c, cell)).exp())) as f32;
                    }
                    a += 1;
                }
            }
        }
        Ok(vec![Tensor::from_f32(&[b, 4 + nc, anchors], out)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let infos: Vec<ValueInfo> = inputs.iter().map(|&i| cx.info(i).clone()).collect();
        let refs: Vec<&ValueInfo> = infos.iter().collect();
        let (b, anchors) = self.check(&refs)?;
        let mut params = Params::new()
            .u32(b as u32)
            .u32(self.nc as u32)
            .u32(anchors as u32)
            .u32(self.reg as u32);
        for i in &infos {
            params = params.u32(i.shape[3] as u32).u32(i.shape[2] as u32);
        }
        let params = params
            .f32(self.strides[0])
            .f32(self.strides[1])
            .f32(self.strides[2])
            .u32(0)
            .u32(0)
            .u32(0);
        let groups = groups_for(cx, b * anchors, 64);
        cx.dispatch(
            "yolo_decode.wgsl",
            &[],
            vec![
                Arg::Read(inputs[0]),
                Arg::Read(inputs[1]),
                Arg::Read(inputs[2]),
                Arg::Write(outputs[0]),
                params.arg(),
            ],
            groups,
        )
    }
}

impl Graph {
    pub fn yolo_decode(&mut self, op: YoloDecode, levels: [ValueId; 3]) -> Result<ValueId> {
        self.node1(op, &levels)
    }
}
