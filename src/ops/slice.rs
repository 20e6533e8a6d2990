//! Slice along one axis: `start..end` with a step, and `split` into pieces.

use super::{axis, copy_words, expect_32bit, expect_inputs, strided_copy, strided_copy_cpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Lower, Op, ValueId};
use crate::tensor::{strides, Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct Slice {
    pub axis: isize,
    pub start: usize,
    pub end: usize,
    pub step: usize,
}

impl Slice {
    fn geometry(&self, shape: &[usize]) -> Result<(usize, Vec<usize>, Vec<usize>, usize)> {
        let a = axis("slice", self.axis, shape.len(), shape)?;
        if self.step == 0 || self.start >= self.end || self.end > shape[a] {
            return Err(Error::shape(
                "slice",
                format!(
                    "range {}..{} step {} is empty or outside axis {a} of size {}",
                    self.start, self.end, self.step, shape[a]
                ),
                &[shape],
            ));
        }
        let mut out = shape.to_vec();
        out[a] = (self.end - self.start).div_ceil(self.step);
        let mut ss = strides(shape);
        let base = self.start * ss[a];
        ss[a] *= self.step;
        Ok((a, out, ss, base))
    }
}

impl Op for Slice {
    fn name(&self) -> &'static str {
        "slice"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        expect_inputs("slice", inputs, 1)?;
        expect_32bit("slice", inputs)?;
        let (_, out, _, _) = self.geometry(&inputs[0].shape)?;
        Ok(vec![ValueInfo::new(&out, inputs[0].dtype)])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let (_, out, ss, base) = self.geometry(x.shape())?;
        let mut y = Tensor::zeros(&out, x.dtype());
        let ds = strides(&out);
        copy_words("slice", x, &mut y, |s, d| {
            strided_copy_cpu(s, d, &out, &ss, base, &ds, 0)
        })?;
        Ok(vec![y])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let (_, out, ss, base) = self.geometry(&cx.info(inputs[0]).shape.clone())?;
        strided_copy(
            cx,
            inputs[0],
            outputs[0],
            &out,
            &ss,
            base,
            &strides(&out),
            0,
        )
    }
}

impl Graph {
    /// `x[..., start..end, ...]` along `axis` (negative counts from the end).
    pub fn slice(&mut self, x: ValueId, axis: isize, start: usize, end: usize) -> Result<ValueId> {
        self.slice_step(x, axis, start, end, 1)
    }

    pub fn slice_step(
        &mut self,
        x: ValueId,
        axis: isize,
        start: usize,
        end: usize,
        step: usize,
    ) -> Result<ValueId> {
        self.node1(
            Slice {
                axis,
                start,
                end,
                step,
            },
            &[x],
        )
    }

    /// Splits `x` along `axis` into pieces of the given sizes (which must add up to the axis).
    pub fn split(&mut self, x: ValueId, axis_: isize, sizes: &[usize]) -> Result<Vec<ValueId>> {
        let shape = self.shape(x).to_vec();
        let a = axis("split", axis_, shape.len(), &shape)?;
        if sizes.iter().sum::<usize>() != shape[a] || sizes.contains(&0) {
            return Err(Error::shape(
                "split",
                format!(
                    "sizes {sizes:?} do not add up to axis {a} of size {}",
                    shape[a]
                ),
                &[&shape],
            ));
        }
        let mut start = 0;
        let mut out = Vec::with_capacity(sizes.len());
        for &s in sizes {
            out.push(self.slice(x, axis_, start, start + s)?);
            start += s;
        }
        Ok(out)
    }
}
