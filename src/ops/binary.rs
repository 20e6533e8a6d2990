//! Elementwise add / sub / mul / div with numpy broadcasting.

use super::{expect_f32, expect_inputs, groups_for, shapes};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, Op, Params, ValueId};
use crate::tensor::{strides, Tensor, ValueInfo};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone)]
pub struct Binary {
    pub op: BinaryOp,
}

const MAX_RANK: usize = 8;

/// Broadcast result shape of two shapes (right-aligned).
pub fn broadcast_shape(op: &str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::shape(
                    op,
                    format!("cannot broadcast dimension {da} against {db}"),
                    &[a, b],
                ))
            }
        };
    }
    Ok(out)
}

/// Strides of `shape` seen through the broadcast `out` shape (0 on broadcast dimensions).
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let s = strides(shape);
    let off = out.len() - shape.len();
    (0..out.len())
        .map(|i| {
            if i < off || shape[i - off] == 1 {
                0
            } else {
                s[i - off]
            }
        })
        .collect()
}

impl BinaryOp {
    fn apply(self, x: f32, y: f32) -> f32 {
        match self {
            BinaryOp::Add => x + y,
            BinaryOp::Sub => x - y,
            BinaryOp::Mul => x * y,
            BinaryOp::Div => x / y,
        }
    }
    fn code(self) -> u32 {
        match self {
            BinaryOp::Add => 0,
            BinaryOp::Sub => 1,
            BinaryOp::Mul => 2,
            BinaryOp::Div => 3,
        }
    }
}

impl Op for Binary {
    fn name(&self) -> &'static str {
        match self.op {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
        }
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        expect_inputs(self.name(), inputs, 2)?;
        expect_f32(self.name(), inputs)?;
        let out = broadcast_shape(self.name(), &inputs[0].shape, &inputs[1].shape)?;
        if out.len() > MAX_RANK {
            return Err(Error::shape(
                self.name(),
                format!("rank above {MAX_RANK}"),
                &shapes(inputs),
            ));
        }
        Ok(vec![ValueInfo::f32(&out)])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let (a, b) = (inputs[0], inputs[1]);
        let out = broadcast_shape(self.name(), a.shape(), b.shape())?;
        let (sa, sb) = (
            broadcast_strides(a.shape(), &out),
            broadcast_strides(b.shape(), &out),
        );
        let (av, bv) = (a.as_f32()?, b.as_f32()?);
        let n: usize = out.iter().product();
        let mut y = Vec::with_capacity(n);
        let mut idx = vec![0usize; out.len()];
        for _ in 0..n {
            let ia: usize = idx.iter().zip(&sa).map(|(i, s)| i * s).sum();
            let ib: usize = idx.iter().zip(&sb).map(|(i, s)| i * s).sum();
            y.push(self.op.apply(av[ia], bv[ib]));
            // Increment the multi-index (last dimension fastest).
            for d in (0..out.len()).rev() {
                idx[d] += 1;
                if idx[d] < out[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        Ok(vec![Tensor::from_f32(&out, y)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let (a, b) = (cx.info(inputs[0]).clone(), cx.info(inputs[1]).clone());
        let out = cx.info(outputs[0]).shape.clone();
        let n = out.iter().product::<usize>();
        let same = a.shape == out && b.shape == out;
        let u = |v: Vec<usize>| v.into_iter().map(|x| x as u32).collect::<Vec<u32>>();
        let params = Params::new()
            .u32(n as u32)
            .u32(out.len() as u32)
            .u32(0)
            .u32(0)
            .u32s(&u(out.clone()), 2)?
            .u32s(&u(broadcast_strides(&a.shape, &out)), 2)?
            .u32s(&u(broadcast_strides(&b.shape, &out)), 2)?;
        let groups = groups_for(cx, n, 256);
        cx.dispatch(
            "binary.wgsl",
            &[
                ("OP", self.op.code().to_string()),
                ("SAME", (same as u32).to_string()),
            ],
            vec![
                Arg::Read(inputs[0]),
                Arg::Read(inputs[1]),
                Arg::Write(outputs[0]),
                params.arg(),
            ],
            groups,
        )
    }
}

impl Graph {
    pub fn binary(&mut self, op: BinaryOp, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.node1(Binary { op }, &[a, b])
    }
    pub fn add(&mut self, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.binary(BinaryOp::Add, a, b)
    }
    pub fn sub(&mut self, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.binary(BinaryOp::Sub, a, b)
    }
    pub fn mul(&mut self, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.binary(BinaryOp::Mul, a, b)
    }
    pub fn div(&mut self, a: ValueId, b: ValueId) -> Result<ValueId> {
        self.binary(BinaryOp::Div, a, b)
    }
}
