//! The depthwise conv2d kernel (`conv2d_dw.wgsl`): groups = channels = outputs (YOLO11's
//! C2PSA / C3k2 positional and downsampling convs, MobileNet-style blocks), any stride,
//! padding and dilation (compile-time constants of the shader). One invocation per 4 adjacent
//! outputs of a channel row, each input of their span loaded once per kernel row; storage
//! buffers only (portable). Weights stay [C][kh·kw] as in the checkpoint.

use super::{Conv2d, Geo};
use crate::error::Result;
use crate::graph::{Arg, Constant, Lower, Packed, PackedChunk, Params, Resource, ValueId};
use std::sync::Arc;

/// Whether `g` is a depthwise problem this kernel runs (channel multiplier 1).
pub(super) fn fits(op: &Conv2d, g: &Geo) -> bool {
    op.groups > 1 && op.groups == g.c && g.o == g.c
}

/// Emits the depthwise kernel for `op` with the constant weight `c` ([C, 1, kh, kw]).
pub(super) fn lower(
    op: &Conv2d,
    g: Geo,
    c: &Arc<Constant>,
    cx: &mut Lower<'_>,
    inputs: &[ValueId],
    outputs: &[ValueId],
) -> Result<()> {
    let dev = cx.device().clone();
    let packed = c.packed(cx.device(), "conv2d/dw", |t| {
        let w = t.f32_cow();
        let bytes: &[u8] = bytemuck::cast_slice(&w);
        let buffer = dev.upload(c.name(), bytes, wgpu::BufferUsages::empty());
        Ok(Packed {
            chunks: vec![PackedChunk {
                resource: Resource::Buffer {
                    buffer,
                    size: bytes.len() as u64,
                },
                meta: [0; 4],
            }],
        })
    })?;
    let (bias, res) = op.optional_inputs(inputs);
    let (bias, res) = (bias.unwrap_or(inputs[0]), res.unwrap_or(inputs[0]));
    let planes = g.n * g.c;
    let strips = g.wo.div_ceil(4);
    let total = planes * g.ho * strips;
    if total > u32::MAX as usize {
        return Err(crate::error::Error::Limit {
            what: "a depthwise conv2d's output strips".into(),
            needed: total as u64,
            limit: u32::MAX as u64,
            limit_name: "u32 invocation index",
            unit: "invocations",
        });
    }
    let u = |v: usize| v as u32;
    let logical = [total.div_ceil(64) as u32, 1, 1];
    let params = Params::new()
        .u32(u(g.c))
        .u32(u(g.h))
        .u32(u(g.w))
        .u32(u(planes))
        .u32(u(g.ho))
        .u32(u(g.wo))
        .u32(u(g.kh))
        .u32(u(g.kw))
        .u32(u(op.stride[0]))
        .u32(u(op.stride[1]))
        .u32(u(op.padding[0]))
        .u32(u(op.padding[1]))
        .u32(u(op.dilation[0]))
        .u32(u(op.dilation[1]))
        .u32(u(strips))
        .u32(u(total))
        .u32(logical[0])
        .u32(logical[1])
        .u32(logical[2])
        .u32(0);
    let dispatch = crate::graph::grid3(cx.device(), logical)?;
    cx.dispatch(
        "conv2d_dw.wgsl",
        &[
            ("KH", g.kh.to_string()),
            ("KW", g.kw.to_string()),
            ("SW", op.stride[1].to_string()),
            ("DH", op.dilation[0].to_string()),
            ("DW", op.dilation[1].to_string()),
            ("ACT", op.act.code().to_string()),
            ("HAS_BIAS", (op.bias as u32).to_string()),
            ("HAS_RES", (op.residual as u32).to_string()),
        ],
        vec![
            Arg::Read(inputs[0]),
            Arg::Packed(packed, 0),
            Arg::Read(bias),
            Arg::Read(res),
            Arg::Write(outputs[0]),
            params.arg(),
        ],
        dispatch,
    )
}
