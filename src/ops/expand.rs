//! Broadcast a tensor to a larger shape (numpy rules: size-1 or missing leading dimensions
//! repeat). A strided copy with zero strides on the repeated dimensions.

use super::binary::{broadcast_shape, broadcast_strides};
use super::{copy_words, expect_32bit, expect_inputs, strided_copy, strided_copy_cpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Lower, Op, ValueId};
use crate::tensor::{strides, Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct Expand {
    pub shape: Vec<usize>,
}

impl Op for Expand {
    fn name(&self) -> &'static str {
        "expand"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        expect_inputs("expand", inputs, 1)?;
        expect_32bit("expand", inputs)?;
        let out = broadcast_shape("expand", &inputs[0].shape, &self.shape)?;
        if out != self.shape || self.shape.len() > 8 {
            return Err(Error::shape(
                "expand",
                format!("cannot expand to {:?}", self.shape),
                &[&inputs[0].shape],
            ));
        }
        Ok(vec![ValueInfo::new(&self.shape, inputs[0].dtype)])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let ss = broadcast_strides(x.shape(), &self.shape);
        let mut y = Tensor::zeros(&self.shape, x.dtype());
        let ds = strides(&self.shape);
        copy_words("expand", x, &mut y, |s, d| {
            strided_copy_cpu(s, d, &self.shape, &ss, 0, &ds, 0)
        })?;
        Ok(vec![y])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let ss = broadcast_strides(&cx.info(inputs[0]).shape.clone(), &self.shape);
        strided_copy(
            cx,
            inputs[0],
            outputs[0],
            &self.shape,
            &ss,
            0,
            &strides(&self.shape),
            0,
        )
    }
}

impl Graph {
    /// Repeats size-1 (or missing leading) dimensions of `x` up to `shape`.
    pub fn expand(&mut self, x: ValueId, shape: &[usize]) -> Result<ValueId> {
        if self.shape(x) == shape {
            return Ok(x);
        }
        self.node1(
            Expand {
                shape: shape.to_vec(),
            },
            &[x],
        )
    }
}
