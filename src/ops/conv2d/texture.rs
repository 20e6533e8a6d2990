//! The texture conv2d kernel for CPU-backed adapters (lavapipe): weight packing, generated
//! unrolled inner block, and lowering (`conv2d_pack` + `conv2d_tex`). See
//! shaders/conv2d_tex.wgsl for the design.

use crate::device::{Device, TexFormat};
use crate::error::{Error, Result};
use crate::graph::{Arg, Lower, Packed, PackedChunk, Params, TexLayout, ValueId};
use crate::ops::{groups_for, Act};
use crate::tensor::Tensor;
use std::fmt::Write;
use std::sync::Arc;

/// Geometry of one convolution (groups = 1).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TexConv {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub ph: usize,
    pub pw: usize,
    pub ho: usize,
    pub wo: usize,
}

impl TexConv {
    fn c4(&self) -> usize {
        self.c.div_ceil(4)
    }
    fn hp(&self) -> usize {
        self.h + 2 * self.ph
    }
    fn blocks(&self) -> usize {
        self.o.div_ceil(32)
    }
    fn kq(&self) -> usize {
        self.kh * self.kw * self.c4()
    }
    /// Column blocks folded side by side in the weight texture.
    fn fold(&self, max: usize) -> usize {
        (self.blocks() * self.kq()).div_ceil(max).max(1)
    }
    /// The padded NHWC4 input texture this convolution reads (from `conv2d_pack`, or written
    /// by a producing convolution). meta = [ph, pw, hp, c4].
    pub fn input_layout(&self) -> TexLayout {
        let (c4, hp) = (self.c4(), self.hp());
        TexLayout {
            kind: NHWC4,
            width: (self.w + 2 * self.pw) as u32,
            height: (self.n * c4 * hp) as u32,
            format: TexFormat::Rgba32Float,
            tag: ((self.pw as u64) << 48) | ((self.ph as u64) << 32) | hp as u64,
            meta: [self.ph as u32, self.pw as u32, hp as u32, c4 as u32],
        }
    }

    /// Whether this convolution can write its output as `layout` (the next convolution's
    /// input texture).
    pub fn writes(&self, layout: &TexLayout) -> bool {
        let [ph, pw, hp, c4] = layout.meta.map(|m| m as usize);
        layout.kind == NHWC4
            && c4 == self.o.div_ceil(4)
            && hp == self.ho + 2 * ph
            && layout.width as usize == self.wo + 2 * pw
            && layout.height as usize == self.n * c4 * hp
    }

    /// Whether the textures fit this device.
    pub fn supported(&self, device: &Device) -> bool {
        let max = device.limits().max_texture_dimension_2d as usize;
        let f = self.fold(max);
        device.has_subgroups_of(8)
            && self.w + 2 * self.pw <= max
            && self.n * self.c4() * self.hp() <= max
            && f * 32 <= max
            && self.blocks().div_ceil(f) * self.kq() <= max
    }
}

/// Packs weights [O, C, KH, KW] into the texture layout of conv2d_tex.wgsl.
pub(crate) fn pack_weights(dev: &Device, name: &str, t: &Tensor, g: &TexConv) -> Result<Packed> {
    let max = dev.limits().max_texture_dimension_2d as usize;
    let (c4, kq, nb, f) = (g.c4(), g.kq(), g.blocks(), g.fold(max));
    let width = f * 32;
    let height = nb.div_ceil(f) * kq;
    let w = t.f32_cow();
    let mut buf = vec![0.0f32; width * height * 4];
    for blk in 0..nb {
        for lane in 0..8 {
            let quad = blk * 8 + lane;
            for comp in 0..4 {
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        for cq in 0..c4 {
                            let ci = 4 * cq + comp;
                            let q = (ky * g.kw + kx) * c4 + cq;
                            let x = (blk % f) * 32 + comp * 8 + lane;
                            let y = (blk / f) * kq + q;
                            for j in 0..4 {
                                let oc = quad * 4 + j;
                                if oc < g.o && ci < g.c {
                                    buf[(y * width + x) * 4 + j] =
                                        w[((oc * g.c + ci) * g.kh + ky) * g.kw + kx];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(Packed {
        chunks: vec![PackedChunk::texture(
            dev,
            name,
            (width, height),
            TexFormat::Rgba32Float,
            bytemuck::cast_slice(&buf),
            [f as u32, 0, 0, 0],
        )?],
    })
}

/// The layout name of the padded NHWC4 texture.
const NHWC4: &str = "conv2d/nhwc4-padded";

/// Where the texture kernel reads its input from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Input {
    /// An NCHW buffer, packed first.
    Buffer(ValueId),
    /// The padded NHWC4 texture a producing convolution wrote (a scratch texture id).
    Texture(usize),
}

/// Where the texture kernel writes its output.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Output {
    /// An NCHW buffer.
    Buffer(ValueId),
    /// The next convolution's input texture (scratch texture id, its layout).
    Texture(usize, TexLayout),
}

const LANES: [&str; 4] = ["x", "y", "z", "w"];

/// Generated parts of conv2d_tex.wgsl for `r` output pixels per workgroup (a multiple of 8).
pub(crate) fn defines(r: usize) -> Vec<(&'static str, String)> {
    let mut setup = String::new();
    for t in 0..r / 8 {
        let _ = writeln!(
            setup,
            "    let px{t} = min(m0 + {}u + lid, npix - 1u);",
            8 * t
        );
        let _ = writeln!(setup, "    let bx{t} = i32((px{t} % wo) * S);");
        let _ = writeln!(
            setup,
            "    let by{t} = i32(b * c4 * hp + (px{t} / wo) * S);"
        );
    }
    let mut accs = String::new();
    for row in 0..r {
        let _ = writeln!(accs, "    var acc{row} = vec4<f32>(0.0);");
    }
    let mut body = String::new();
    for comp in 0..4 {
        let _ = writeln!(
            body,
            "                let b{comp} = textureLoad(wt, vec2<i32>(wx0 + {}, wy));",
            comp * 8
        );
    }
    for t in 0..r / 8 {
        let _ = writeln!(
            body,
            "                let av{t} = textureLoad(xt, vec2<i32>(bx{t} + xo, by{t} + yo));"
        );
    }
    for row in 0..r {
        for (comp, lane) in LANES.iter().enumerate() {
            let _ = writeln!(
                body,
                "                acc{row} = fma(vec4<f32>(subgroupBroadcast(av{}.{lane}, {}u)), b{comp}, acc{row});",
                row / 8,
                row % 8
            );
        }
    }
    let mut pick = String::new();
    for r4 in 0..r / 4 {
        let a = 4 * r4;
        let _ = writeln!(
            pick,
            "            case {r4}u: {{ v0 = acc{a}; v1 = acc{}; v2 = acc{}; v3 = acc{}; }}",
            a + 1,
            a + 2,
            a + 3
        );
    }
    vec![
        ("R", r.to_string()),
        ("SETUP", setup),
        ("ACCS", accs),
        ("BODY", body),
        ("PICK", pick),
    ]
}

/// Emits pack + convolution for `x` [N, C, H, W] → `out` [N, O, Ho, Wo].
#[allow(clippy::too_many_arguments)]
pub(crate) fn lower(
    cx: &mut Lower<'_>,
    g: &TexConv,
    input: Input,
    packed: Arc<Packed>,
    bias: Option<ValueId>,
    res: Option<ValueId>,
    out: Output,
    act: Act,
) -> Result<()> {
    if g.stride == 0 {
        return Err(Error::Graph("conv2d: stride 0".into()));
    }
    let (c4, hp) = (g.c4(), g.hp());
    let tex = match input {
        Input::Texture(id) => id,
        Input::Buffer(x) => pack(cx, g, x)?,
    };
    let npix = g.ho * g.wo;
    let r = if npix >= 32 { 32 } else { 8 };
    let mut defs = defines(r);
    let (out_arg, [oph, opw, ohp, _]) = match out {
        Output::Buffer(y) => (Arg::Write(y), [0; 4]),
        Output::Texture(id, l) => (Arg::ScratchTexture { id, write: true }, l.meta),
    };
    let out_tex = matches!(out, Output::Texture(..));
    defs.extend([
        ("KH", g.kh.to_string()),
        ("KW", g.kw.to_string()),
        ("S", g.stride.to_string()),
        ("ACT", act.code().to_string()),
        (
            "VEC",
            u32::from(!out_tex && npix.is_multiple_of(4)).to_string(),
        ),
        ("OUT_TEX", u32::from(out_tex).to_string()),
    ]);
    let f = packed.chunks[0].meta[0];
    let logical = [npix.div_ceil(r) as u32, g.blocks() as u32, g.n as u32];
    let groups = crate::graph::grid3(cx.device(), logical)?;
    // An absent bias / residual binds some storage buffer of the right kind (never read): the
    // input's buffer, else a 4-byte scratch (not the output's: a buffer bound for reading
    // and for writing in one dispatch is invalid).
    let filler = match input {
        Input::Buffer(x) => Some(x),
        Input::Texture(_) => None,
    };
    let scratch = if bias.or(res).or(filler).is_none() {
        Some(cx.scratch(4))
    } else {
        None
    };
    let unused = || match bias.or(res).or(filler) {
        Some(v) => Arg::Read(v),
        None => Arg::Scratch {
            id: scratch.unwrap_or(0),
            write: false,
        },
    };
    let bias_arg = bias.map_or_else(unused, Arg::Read);
    let res_arg = res.map_or_else(unused, Arg::Read);
    cx.dispatch(
        "conv2d_tex.wgsl",
        &defs,
        vec![
            Arg::ScratchTexture {
                id: tex,
                write: false,
            },
            Arg::Packed(packed, 0),
            bias_arg,
            res_arg,
            out_arg,
            Params::new()
                .u32(c4 as u32)
                .u32(hp as u32)
                .u32(g.wo as u32)
                .u32(npix as u32)
                .u32(g.o as u32)
                .u32(f)
                .u32(bias.is_some() as u32)
                .u32(res.is_some() as u32)
                .u32(logical[0])
                .u32(logical[1])
                .u32(logical[2])
                .u32(0)
                .u32(oph)
                .u32(opw)
                .u32(ohp)
                .u32(0)
                .arg(),
        ],
        groups,
    )
}

/// Packs `x` [N, C, H, W] into the padded NHWC4 scratch texture the kernel reads.
fn pack(cx: &mut Lower<'_>, g: &TexConv, x: ValueId) -> Result<usize> {
    let (c4, hp) = (g.c4(), g.hp());
    let l = g.input_layout();
    let tex = cx.scratch_texture(l.width, l.height, l.format, l.tag)?;
    let v4 = g.w.is_multiple_of(4);
    let groups = groups_for(cx, g.n * c4 * g.h * g.w / if v4 { 4 } else { 1 }, 64);
    cx.dispatch(
        "conv2d_pack.wgsl",
        &[("V4", (v4 as u32).to_string())],
        vec![
            Arg::Read(x),
            Arg::ScratchTexture {
                id: tex,
                write: true,
            },
            Params::new()
                .u32(g.n as u32)
                .u32(g.c as u32)
                .u32(g.h as u32)
                .u32(g.w as u32)
                .u32(c4 as u32)
                .u32(hp as u32)
                .u32(g.ph as u32)
                .u32(g.pw as u32)
                .arg(),
        ],
        groups,
    )?;
    Ok(tex)
}
