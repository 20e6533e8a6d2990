//! Concatenation along one axis.

use super::{axis, copy_words, expect_32bit, shapes, strided_copy, strided_copy_cpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Lower, Op, ValueId};
use crate::tensor::{strides, Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct Concat {
    pub axis: isize,
}

impl Op for Concat {
    fn name(&self) -> &'static str {
        "concat"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        if inputs.is_empty() {
            return Err(Error::shape("concat", "needs at least one input", &[]));
        }
        expect_32bit("concat", inputs)?;
        let first = &inputs[0].shape;
        let a = axis("concat", self.axis, first.len(), first)?;
        let mut out = first.clone();
        out[a] = 0;
        for i in inputs {
            let ok = i.dtype == inputs[0].dtype
                && i.shape.len() == first.len()
                && (0..first.len()).all(|d| d == a || i.shape[d] == first[d]);
            if !ok {
                return Err(Error::shape(
                    "concat",
                    format!("inputs must match except on axis {a}"),
                    &shapes(inputs),
                ));
            }
            out[a] += i.shape[a];
        }
        Ok(vec![ValueInfo::new(&out, inputs[0].dtype)])
    }

    fn input_slots(&self, inputs: &[&ValueInfo]) -> Option<Vec<usize>> {
        let out = self.infer(inputs).ok()?.remove(0);
        let a = axis("concat", self.axis, out.rank(), &out.shape).ok()?;
        if out.shape[..a].iter().any(|&d| d != 1) {
            return None;
        }
        let mut off = 0;
        Some(
            inputs
                .iter()
                .map(|i| {
                    let o = off;
                    off += i.numel();
                    o
                })
                .collect(),
        )
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let infos: Vec<ValueInfo> = inputs.iter().map(|t| t.info()).collect();
        let refs: Vec<&ValueInfo> = infos.iter().collect();
        let out = self.infer(&refs)?.remove(0);
        let a = axis("concat", self.axis, out.rank(), &out.shape)?;
        let ds = strides(&out.shape);
        let mut y = Tensor::zeros(&out.shape, out.dtype);
        let mut offset = 0;
        for x in inputs {
            let base = offset * ds[a];
            copy_words("concat", x, &mut y, |s, d| {
                strided_copy_cpu(s, d, x.shape(), &strides(x.shape()), 0, &ds, base)
            })?;
            offset += x.shape()[a];
        }
        Ok(vec![y])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let out = cx.info(outputs[0]).shape.clone();
        let a = axis("concat", self.axis, out.len(), &out)?;
        let ds = strides(&out);
        let mut offset = 0;
        for &x in inputs {
            let shape = cx.info(x).shape.clone();
            strided_copy(
                cx,
                x,
                outputs[0],
                &shape,
                &strides(&shape),
                0,
                &ds,
                offset * ds[a],
            )?;
            offset += shape[a];
        }
        Ok(())
    }
}

impl Graph {
    pub fn concat(&mut self, xs: &[ValueId], axis: isize) -> Result<ValueId> {
        self.node1(Concat { axis }, xs)
    }
}
