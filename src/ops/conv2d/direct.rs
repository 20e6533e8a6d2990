//! The direct conv2d kernel (`conv2d.wgsl`): any stride, padding, dilation and groups, storage
//! buffers only (the portable variant). Weights are packed once as
//! [groups][C/g·kh·kw][O/g rounded to 4] vec4.

use super::{Conv2d, Geo};
use crate::device::Device;
use crate::error::Result;
use crate::graph::{Arg, Constant, Lower, Packed, PackedChunk, Params, Resource, ValueId};
use crate::tensor::Tensor;
use std::sync::Arc;

/// Emits the direct kernel for `op` with the constant weight `c`.
pub(super) fn lower(
    op: &Conv2d,
    g: Geo,
    c: &Arc<Constant>,
    cx: &mut Lower<'_>,
    inputs: &[ValueId],
    outputs: &[ValueId],
) -> Result<()> {
    let groups = op.groups;
    let (cg, og) = (g.c / groups, g.o / groups);
    let og4 = og.div_ceil(4);
    let dev = cx.device().clone();
    let packed = c.packed(cx.device(), &format!("conv2d/g{groups}"), |t| {
        pack_conv(&dev, c.name(), t, groups)
    })?;
    // Absent bias / residual bind the input as an unused stand-in.
    let (bias, res) = op.optional_inputs(inputs);
    let (bias, res) = (bias.unwrap_or(inputs[0]), res.unwrap_or(inputs[0]));
    let pixels = g.ho * g.wo;
    let r = if pixels >= 8 { 8 } else { pixels };
    let u = |v: usize| v as u32;
    let params = Params::new()
        .u32(u(g.c))
        .u32(u(g.h))
        .u32(u(g.w))
        .u32(u(g.o))
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
        .u32(u(groups))
        .u32(u(cg))
        .u32(u(og))
        .u32(u(og4))
        .u32(0)
        .u32(0);
    let logical = [
        og4.div_ceil(8) as u32,
        pixels.div_ceil(r) as u32,
        (g.n * groups) as u32,
    ];
    let params = params
        .u32(logical[0])
        .u32(logical[1])
        .u32(logical[2])
        .u32(0);
    let dispatch = crate::graph::grid3(cx.device(), logical)?;
    cx.dispatch(
        "conv2d.wgsl",
        &[
            ("R", r.to_string()),
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

/// Packs [O, C/g, kh, kw] into [g][C/g*kh*kw][og4] vec4 (output channels padded to 4).
fn pack_conv(dev: &Device, name: &str, t: &Tensor, groups: usize) -> Result<Packed> {
    let s = t.shape();
    let (o, cg, kh, kw) = (s[0], s[1], s[2], s[3]);
    let og = o / groups;
    let og4 = og.div_ceil(4);
    let kdim = cg * kh * kw;
    let w = t.f32_cow();
    let mut buf = vec![0.0f32; groups * kdim * og4 * 4];
    for gi in 0..groups {
        for oc in 0..og {
            let o_idx = gi * og + oc;
            for kk in 0..kdim {
                buf[((gi * kdim + kk) * og4) * 4 + oc] = w[o_idx * kdim + kk];
            }
        }
    }
    let bytes: &[u8] = bytemuck::cast_slice(&buf);
    let buffer = dev.upload(name, bytes, wgpu::BufferUsages::empty());
    Ok(Packed {
        chunks: vec![PackedChunk {
            resource: Resource::Buffer {
                buffer,
                size: bytes.len() as u64,
            },
            meta: [0; 4],
        }],
    })
}
