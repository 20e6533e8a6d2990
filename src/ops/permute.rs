//! Permute (transpose) axes: out.shape[i] = in.shape[perm[i]].

use super::{copy_words, expect_32bit, expect_inputs, strided_copy, strided_copy_cpu};
use crate::error::{Error, Result};
use crate::graph::{Graph, Lower, Op, ValueId};
use crate::tensor::{strides, Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct Permute {
    pub perm: Vec<usize>,
}

impl Permute {
    fn src_strides(&self, in_shape: &[usize]) -> Vec<usize> {
        let s = strides(in_shape);
        self.perm.iter().map(|&p| s[p]).collect()
    }
}

impl Op for Permute {
    fn name(&self) -> &'static str {
        "permute"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        expect_inputs("permute", inputs, 1)?;
        expect_32bit("permute", inputs)?;
        let shape = &inputs[0].shape;
        let mut seen = vec![false; shape.len()];
        let valid = self.perm.len() == shape.len()
            && self
                .perm
                .iter()
                .all(|&p| p < shape.len() && !std::mem::replace(&mut seen[p], true));
        if !valid || shape.len() > 8 {
            return Err(Error::shape(
                "permute",
                format!(
                    "{:?} is not a permutation of rank {} (max 8)",
                    self.perm,
                    shape.len()
                ),
                &[shape],
            ));
        }
        let out: Vec<usize> = self.perm.iter().map(|&p| shape[p]).collect();
        Ok(vec![ValueInfo::new(&out, inputs[0].dtype)])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let out: Vec<usize> = self.perm.iter().map(|&p| x.shape()[p]).collect();
        let mut y = Tensor::zeros(&out, x.dtype());
        let ss = self.src_strides(x.shape());
        let ds = strides(&out);
        copy_words("permute", x, &mut y, |s, d| {
            strided_copy_cpu(s, d, &out, &ss, 0, &ds, 0)
        })?;
        Ok(vec![y])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let in_shape = cx.info(inputs[0]).shape.clone();
        let out = cx.info(outputs[0]).shape.clone();
        let ss = self.src_strides(&in_shape);
        strided_copy(cx, inputs[0], outputs[0], &out, &ss, 0, &strides(&out), 0)
    }
}

impl Graph {
    pub fn permute(&mut self, x: ValueId, perm: &[usize]) -> Result<ValueId> {
        self.node1(
            Permute {
                perm: perm.to_vec(),
            },
            &[x],
        )
    }

    /// Swaps the last two axes.
    pub fn transpose(&mut self, x: ValueId) -> Result<ValueId> {
        let r = self.shape(x).len();
        if r < 2 {
            return Err(Error::shape(
                "transpose",
                "needs rank >= 2",
                &[self.shape(x)],
            ));
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 1, r - 2);
        self.permute(x, &perm)
    }
}
