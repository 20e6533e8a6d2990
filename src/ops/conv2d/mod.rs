//! 2-D convolution, NCHW: stride, padding, dilation, groups, bias, fused activation and an
//! optional residual added after the activation.
//!
//! GPU variants: `Direct` (`direct.rs`: storage buffers, any geometry, the portable variant),
//! `Texture` (`texture.rs`: padded NHWC4 input texture and subgroup broadcasts, groups 1 and
//! square strides; 10-30x faster on CPU-backed adapters) and `Depthwise` (`depthwise.rs`:
//! groups = channels = outputs, storage buffers; every lane busy where `Direct` keeps one in
//! eight).

mod depthwise;
mod direct;
pub(crate) mod texture;

use super::{check_epilogue, epilogue_data, expect_f32, Act};
use crate::error::{Error, Result};
use crate::graph::{Graph, Lower, Op, TexLayout, ValueId};
use crate::tensor::{Tensor, ValueInfo};

/// A conv2d kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConvVariant {
    Direct,
    Texture,
    Depthwise,
}

impl ConvVariant {
    pub const ALL: [ConvVariant; 3] = [
        ConvVariant::Direct,
        ConvVariant::Texture,
        ConvVariant::Depthwise,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ConvVariant::Direct => "direct",
            ConvVariant::Texture => "texture",
            ConvVariant::Depthwise => "depthwise",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// The conv2d op. Inputs: x, weight, then a bias [O] if `bias`, then a residual if
/// `residual`.
#[derive(Debug, Clone)]
pub struct Conv2d {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    pub act: Act,
    pub bias: bool,
    pub residual: bool,
    /// Forces a kernel; `None` lets the policy or the adapter decide.
    pub variant: Option<ConvVariant>,
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
            variant: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Geo {
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

impl Conv2d {
    /// (bias, residual) inputs when present.
    fn optional_inputs(&self, inputs: &[ValueId]) -> (Option<ValueId>, Option<ValueId>) {
        let bias = self.bias.then(|| inputs[2]);
        let res = self.residual.then(|| inputs[2 + self.bias as usize]);
        (bias, res)
    }

    /// The texture kernel's geometry, when the op's shape class allows it at all.
    fn tex_geometry(&self, g: Geo) -> Option<texture::TexConv> {
        (self.groups == 1 && self.dilation == [1, 1] && self.stride[0] == self.stride[1]).then_some(
            texture::TexConv {
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
            },
        )
    }

    /// The texture kernel's geometry when this node runs it (a constant weight, a shape it
    /// can run, and chosen); `None` on any doubt (lowering then reports errors itself).
    fn runs_texture(&self, cx: &Lower<'_>, inputs: &[ValueId]) -> Option<texture::TexConv> {
        cx.constant(*inputs.get(1)?)?;
        let g = self
            .geo(&cx.info(inputs[0]).shape, &cx.info(inputs[1]).shape)
            .ok()?;
        let tg = self.tex_geometry(g)?;
        let v = self.choose(cx, &g, Some(&tg)).ok()?;
        (v == ConvVariant::Texture && tg.supported(cx.device())).then_some(tg)
    }

    /// Forced by the op, else by the policy (when it can run the problem), else the
    /// depthwise kernel for depthwise problems, the texture kernel on CPU-backed adapters when
    /// it fits, else the direct kernel.
    fn choose(
        &self,
        cx: &Lower<'_>,
        g: &Geo,
        tex: Option<&texture::TexConv>,
    ) -> Result<ConvVariant> {
        if let Some(v) = self.variant {
            return Ok(v);
        }
        let dev = cx.device();
        let tex_ok = tex.is_some_and(|t| t.supported(dev));
        let dw_ok = depthwise::fits(self, g);
        if let Some(name) = dev.policy().forced("conv2d") {
            let v = ConvVariant::parse(name).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown conv2d variant '{name}' (WGPU_INFER_CONV: direct, texture, depthwise)"
                ))
            })?;
            let runs = match v {
                ConvVariant::Direct => true,
                ConvVariant::Texture => tex_ok,
                ConvVariant::Depthwise => dw_ok,
            };
            if runs {
                return Ok(v);
            }
        }
        Ok(if dw_ok {
            ConvVariant::Depthwise
        } else if dev.is_cpu() && tex_ok {
            ConvVariant::Texture
        } else {
            ConvVariant::Direct
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
        check_epilogue("conv2d", inputs, (self.bias, self.residual), g.o, &out)?;
        Ok(vec![ValueInfo::f32(&out)])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let g = self.geo(inputs[0].shape(), inputs[1].shape())?;
        let x = inputs[0].as_f32()?;
        let wt = inputs[1].f32_cow();
        let (bias, res) = epilogue_data(inputs, (self.bias, self.residual))?;
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
        let Some(c) = cx.constant(inputs[1]).cloned() else {
            return Err(Error::shape(
                "conv2d",
                "the GPU kernels need the weight as a constant",
                &[&cx.info(inputs[1]).shape],
            ));
        };
        let tex = self.tex_geometry(g);
        let v = self.choose(cx, &g, tex.as_ref())?;
        match (v, tex) {
            (ConvVariant::Texture, Some(tg)) if tg.supported(cx.device()) => {
                let dev = cx.device().clone();
                let packed = c.packed(cx.device(), "conv2d/tex", |t| {
                    texture::pack_weights(&dev, c.name(), t, &tg)
                })?;
                let (bias, res) = self.optional_inputs(inputs);
                // A convolution producer may have written the input as our texture, and we
                // may write our output as the next convolution's (see Lower::texture_edge).
                let input = match cx.texture_edge(inputs[0]) {
                    Some(l) => texture::Input::Texture(cx.edge_texture(inputs[0], &l)?),
                    None => texture::Input::Buffer(inputs[0]),
                };
                let out = match cx.texture_edge(outputs[0]) {
                    Some(l) => texture::Output::Texture(cx.edge_texture(outputs[0], &l)?, l),
                    None => texture::Output::Buffer(outputs[0]),
                };
                texture::lower(cx, &tg, input, packed, bias, res, out, self.act)
            }
            (ConvVariant::Texture, _) => Err(Error::shape(
                "conv2d",
                "the texture kernel cannot run this problem on this adapter",
                &[&cx.info(inputs[0]).shape, &cx.info(inputs[1]).shape],
            )),
            (ConvVariant::Depthwise, _) if depthwise::fits(self, &g) => {
                depthwise::lower(self, g, &c, cx, inputs, outputs)
            }
            (ConvVariant::Depthwise, _) => Err(Error::shape(
                "conv2d",
                "the depthwise kernel cannot run this problem (it needs groups = channels = outputs)",
                &[&cx.info(inputs[0]).shape, &cx.info(inputs[1]).shape],
            )),
            (ConvVariant::Direct, _) => direct::lower(self, g, &c, cx, inputs, outputs),
        }
    }

    /// The texture kernel reads its input as a padded NHWC4 texture.
    fn texture_input(&self, cx: &Lower<'_>, inputs: &[ValueId]) -> Option<TexLayout> {
        Some(self.runs_texture(cx, inputs)?.input_layout())
    }

    /// The texture kernel can write its output as the next texture convolution's input.
    fn writes_texture(&self, cx: &Lower<'_>, inputs: &[ValueId], layout: &TexLayout) -> bool {
        self.runs_texture(cx, inputs)
            .is_some_and(|tg| tg.writes(layout))
    }

    fn flops(&self, inputs: &[&ValueInfo]) -> u64 {
        match self.geo(&inputs[0].shape, &inputs[1].shape) {
            Ok(g) => 2 * (g.n * g.o * g.ho * g.wo * (g.c / self.groups) * g.kh * g.kw) as u64,
            Err(_) => 0,
        }
    }
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
