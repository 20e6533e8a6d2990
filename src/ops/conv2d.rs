//! 2-D convolution, NCHW: stride, padding, dilation, groups, bias, fused activation and an
//! optional residual added after the activation.

use super::{expect_f32, shapes, Act, Op, Params};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, Packed, PackedChunk, Resource, ValueId};
use crate::tensor::{Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct Conv2d {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub act: Act,
    pub bias: bool,
    pub residual: bool,
}

impl Default for Conv2d {
    fn default() -> Self {
        Conv2d {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            act: Act::None,
            bias: false,
            residual: false,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Geo {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
}

impl Conv2d {
    fn geo(&self, x: &[usize], wt: &[usize]) -> Result<Geo> {
        let bad = |m: String| Err(Error::shape("conv2d", m, &[x, wt]));
        if x.len() != 4 || wt.len() != 4 {
            return bad("input must be [N, C, H, W] and weight [O, C/groups, kh, kw]".into());
        }
        let (n, c, h, w) = (x[0], x[1], x[2], x[3]);
        let (o, cg, kh, kw) = (wt[0], wt[1], wt[2], wt[3]);
        let g = self.groups;
        if g == 0 || c % g != 0 || o % g != 0 || cg != c / g {
            return bad(format!(
                "channels {c} / out {o} / weight in-channels {cg} do not fit groups {g}"
            ));
        }
        if self.stride.contains(&0) || self.dilation.contains(&0) {
            return bad("stride and dilation must be positive".into());
        }
        let span_h = self.dilation[0] * (kh - 1) + 1;
        let span_w = self.dilation[1] * (kw - 1) + 1;
        if h + 2 * self.padding[0] < span_h || w + 2 * self.padding[1] < span_w {
            return bad("kernel larger than the padded input".into());
        }
        let ho = (h + 2 * self.padding[0] - span_h) / self.stride[0] + 1;
        let wo = (w + 2 * self.padding[1] - span_w) / self.stride[1] + 1;
        Ok(Geo {
            n,
            c,
            h,
            w,
            o,
            kh,
            kw,
            ho,
            wo,
        })
    }
}

impl Op for Conv2d {
    fn name(&self) -> &'static str {
        "conv2d"
    }

    /// Inputs: x, weight, [bias [O]], [residual (output-shaped)].
    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        super::expect_inputs(
            "conv2d",
            inputs,
            2 + self.bias as usize + self.residual as usize,
        )?;
        expect_f32("conv2d", inputs)?;
        let g = self.geo(&inputs[0].shape, &inputs[1].shape)?;
        let out = vec![g.n, g.o, g.ho, g.wo];
        let mut i = 2;
        if self.bias {
            if inputs[i].shape != [g.o] {
                return Err(Error::shape(
                    "conv2d",
                    format!("bias must be [{}]", g.o),
                    &shapes(inputs),
                ));
            }
            i += 1;
        }
        if self.residual && inputs[i].shape != out {
            return Err(Error::shape(
                "conv2d",
                format!("residual must be {out:?}"),
                &shapes(inputs),
            ));
        }
        Ok(vec![ValueInfo::f32(&out)])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let g = self.geo(inputs[0].shape(), inputs[1].shape())?;
        let x = inputs[0].as_f32()?;
        let wt = inputs[1].f32_cow();
        let mut i = 2;
        let bias = if self.bias {
            i += 1;
            Some(inputs[i - 1].as_f32()?)
        } else {
            None
        };
        let res = if self.residual {
            Some(inputs[i].as_f32()?)
        } else {
            None
        };
        let (cg, og) = (g.c / self.groups, g.o / self.groups);
        let mut y = vec![0.0f32; g.n * g.o * g.ho * g.wo];
        for b in 0..g.n {
            for o in 0..g.o {
                let gi = o / og;
                for oy in 0..g.ho {
                    for ox in 0..g.wo {
                        let mut acc = 0.0f64;
                        for ci in 0..cg {
                            let c = gi * cg + ci;
                            for ky in 0..g.kh {
                                let iy = (oy * self.stride[0] + ky * self.dilation[0]) as isize
                                    - self.padding[0] as isize;
                                if iy < 0 || iy >= g.h as isize {
                                    continue;
                                }
                                for kx in 0..g.kw {
                                    let ix = (ox * self.stride[1] + kx * self.dilation[1]) as isize
                                        - self.padding[1] as isize;
                                    if ix < 0 || ix >= g.w as isize {
                                        continue;
                                    }
                                    let xv =
                                        x[((b * g.c + c) * g.h + iy as usize) * g.w + ix as usize];
                                    let wv = wt[((o * cg + ci) * g.kh + ky) * g.kw + kx];
                                    acc += xv as f64 * wv as f64;
                                }
                            }
                        }
                        let yi = ((b * g.o + o) * g.ho + oy) * g.wo + ox;
                        let mut acc = acc as f32;
                        if let Some(bias) = bias {
                            acc += bias[o];
                        }
                        acc = self.act.apply(acc);
                        if let Some(r) = res {
                            acc += r[yi];
                        }
                        y[yi] = acc;
                    }
                }
            }
        }
        Ok(vec![Tensor::from_f32(&[g.n, g.o, g.ho, g.wo], y)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let g = self.geo(&cx.info(inputs[0]).shape, &cx.info(inputs[1]).shape)?;
        let groups = self.groups;
        // CPU-backed adapters: the texture kernel (see shaders/conv2d_tex.wgsl).
        if cx.device().is_cpu()
            && groups == 1
            && self.dilation == [1, 1]
            && self.stride[0] == self.stride[1]
            && std::env::var("WGPU_INFER_CONV").map_or(true, |v| v != "direct")
        {
            let tg = super::conv2d_tex::TexConv {
                n: g.n,
                c: g.c,
                h: g.h,
                w: g.w,
                o: g.o,
                kh: g.kh,
                kw: g.kw,
                stride: self.stride[0],
                ph: self.padding[0],
                pw: self.padding[1],
                ho: g.ho,
                wo: g.wo,
            };
            if let Some(c) = cx.constant(inputs[1]).cloned() {
                if tg.supported(cx.device()) {
                    let dev = cx.device().clone();
                    let packed = c.packed(cx.device(), "conv2d/tex", |t| {
                        super::conv2d_tex::pack_weights(&dev, c.name(), t, &tg)
                    })?;
                    let mut i = 2;
                    let bias = self.bias.then(|| {
                        i += 1;
                        inputs[i - 1]
                    });
                    let res = self.residual.then(|| inputs[i]);
                    return super::conv2d_tex::lower(
                        cx, &tg, inputs[0], packed, bias, res, outputs[0], self.act,
                    );
                }
            }
        }
        let (cg, og) = (g.c / groups, g.o / groups);
        let og4 = og.div_ceil(4);
        let dev = cx.device().clone();
        let packed = match cx.constant(inputs[1]).cloned() {
            Some(c) => c.packed(cx.device(), &format!("conv2d/g{groups}"), |t| {
                pack_conv(&dev, c.name(), t, groups)
            })?,
            None => {
                return Err(Error::shape(
                    "conv2d",
                    "the GPU kernel needs the weight as a constant",
                    &[&cx.info(inputs[1]).shape],
                ))
            }
        };
        let mut i = 2;
        let bias = if self.bias {
            i += 1;
            inputs[i - 1]
        } else {
            inputs[0]
        };
        let res = if self.residual { inputs[i] } else { inputs[0] };
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
            .u32(u(self.stride[0]))
            .u32(u(self.stride[1]))
            .u32(u(self.padding[0]))
            .u32(u(self.padding[1]))
            .u32(u(self.dilation[0]))
            .u32(u(self.dilation[1]))
            .u32(u(groups))
            .u32(u(cg))
            .u32(u(og))
            .u32(u(og4))
            .u32(0)
            .u32(0);
        cx.dispatch(
            "conv2d.wgsl",
            &[
                ("R", r.to_string()),
                ("ACT", self.act.code().to_string()),
                ("HAS_BIAS", (self.bias as u32).to_string()),
                ("HAS_RES", (self.residual as u32).to_string()),
            ],
            vec![
                Arg::Read(inputs[0]),
                Arg::Packed(packed, 0),
                Arg::Read(bias),
                Arg::Read(res),
                Arg::Write(outputs[0]),
                params.arg(),
            ],
            [
                og4.div_ceil(8) as u32,
                pixels.div_ceil(r) as u32,
                (g.n * groups) as u32,
            ],
        )
    }

    fn flops(&self, inputs: &[&ValueInfo]) -> u64 {
        match self.geo(&inputs[0].shape, &inputs[1].shape) {
            Ok(g) => 2 * (g.n * g.o * g.ho * g.wo * (g.c / self.groups) * g.kh * g.kw) as u64,
            Err(_) => 0,
        }
    }
}

/// Packs [O, C/g, kh, kw] into [g][C/g*kh*kw][og4] vec4 (output channels padded to 4).
fn pack_conv(dev: &crate::device::Device, name: &str, t: &Tensor, groups: usize) -> Result<Packed> {
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

impl Graph {
    /// Convolution with optional bias, fused activation and residual.
    pub fn conv2d(
        &mut self,
        op: Conv2d,
        x: ValueId,
        weight: ValueId,
        bias: Option<ValueId>,
        residual: Option<ValueId>,
    ) -> Result<ValueId> {
        let mut inputs = vec![x, weight];
        inputs.extend(bias);
        inputs.extend(residual);
        let op = Conv2d {
            bias: bias.is_some(),
            residual: residual.is_some(),
            ..op
        };
        self.node1(op, &inputs)
    }
}
