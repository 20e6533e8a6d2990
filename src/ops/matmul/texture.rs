//! The texture-tiled matmul kernels for CPU-backed adapters (lavapipe): B packing, generated
//! unrolled loop bodies, and lowering (`matmul_pack_a` + `matmul_cw`, or `matmul_gemv` for one
//! row). See shaders/matmul_cw.wgsl for the design and why it is fast there.

use crate::device::{Device, TexFormat};
use crate::error::{Error, Result};
use crate::graph::{Arg, Lower, Packed, PackedChunk, Params, ValueId};
use crate::ops::{groups_for, Act};
use crate::tensor::{DType, Data, Tensor, Q8_BLOCK};
use half::f16;
use std::fmt::Write;
use std::sync::Arc;

/// Columns covered by one workgroup (8 lanes x 2 vec4).
const BLOCK_COLS: usize = 64;

/// Geometry of a packed B texture.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BLayout {
    /// Rows of k per texture row block (a power of two).
    pub kt: usize,
    /// Texture rows per column block (Kpad / kt).
    pub kb: usize,
    /// Column blocks of 64.
    pub nb: usize,
}

impl BLayout {
    pub fn new(k: usize, n: usize, max_dim: usize) -> Option<BLayout> {
        let nb = n.div_ceil(BLOCK_COLS);
        let mut kt = 64;
        while nb * k.div_ceil(kt) > max_dim {
            kt *= 2;
        }
        if kt * 16 > max_dim {
            return None;
        }
        Some(BLayout {
            kt,
            kb: k.div_ceil(kt),
            nb,
        })
    }
    pub fn width(&self) -> usize {
        self.kt * 16
    }
    pub fn height(&self) -> usize {
        self.nb * self.kb
    }
}

/// Whether the texture kernels can run this problem on this device (they need 8-lane
/// subgroups, so never under the portable policy).
pub(crate) fn supported(device: &Device, m: usize, k: usize, n: usize) -> bool {
    let max = device.limits().max_texture_dimension_2d as usize;
    device.has_subgroups_of(8)
        && 8 * k.div_ceil(4) <= max
        && m.div_ceil(8) <= max
        && BLayout::new(k, n, max).is_some()
}

/// Packs B ([K, N], or [N, K] when `trans`) into the tiled texture: rgba32float (4 columns
/// per texel) for f32 B; for f16 B, rgba32uint holding 8 columns as f16 pairs (half the bytes).
pub(crate) fn pack_b(dev: &Device, name: &str, t: &Tensor, trans: bool) -> Result<Packed> {
    let s = t.shape();
    let (k, n) = if trans { (s[1], s[0]) } else { (s[0], s[1]) };
    let max = dev.limits().max_texture_dimension_2d as usize;
    let l = BLayout::new(k, n, max).ok_or_else(|| Error::Limit {
        what: format!("texture layout of weight '{name}' ({k}x{n})"),
        needed: (k * n) as u64,
        limit: max as u64,
        limit_name: "max_texture_dimension_2d",
        unit: "texels",
    })?;
    if t.dtype() == DType::Q8 {
        return pack_b_q8(dev, name, t, k, n, l);
    }
    let half = t.dtype() == DType::F16;
    let w = t.f32_cow();
    let at = |kk: usize, col: usize| {
        if col >= n {
            0.0
        } else if trans {
            w[col * k + kk]
        } else {
            w[kk * n + col]
        }
    };
    let height = l.height();
    let (width, format, bytes): (usize, TexFormat, Vec<u8>) = if half {
        // Lane `lane` of column block `blk` owns columns blk*64 + lane*8 .. +8: one texel.
        let width = l.kt * 8;
        let mut buf = vec![0u32; width * height * 4];
        for kk in 0..k {
            for blk in 0..l.nb {
                for lane in 0..8 {
                    let c0 = blk * BLOCK_COLS + lane * 8;
                    if c0 >= n {
                        break;
                    }
                    let x = (kk % l.kt) * 8 + lane;
                    let y = blk * l.kb + kk / l.kt;
                    for i in 0..4 {
                        let lo = f16::from_f32(at(kk, c0 + 2 * i)).to_bits() as u32;
                        let hi = f16::from_f32(at(kk, c0 + 2 * i + 1)).to_bits() as u32;
                        buf[(y * width + x) * 4 + i] = lo | (hi << 16);
                    }
                }
            }
        }
        (
            width,
            TexFormat::Rgba32Uint,
            bytemuck::cast_slice(&buf).to_vec(),
        )
    } else {
        let width = l.width();
        let mut buf = vec![0.0f32; width * height * 4];
        for kk in 0..k {
            for col in 0..n {
                let g = col / 4;
                let (blk, c, lane) = (g / 16, (g % 16) / 8, g % 8);
                let x = (kk % l.kt) * 16 + c * 8 + lane;
                let y = blk * l.kb + kk / l.kt;
                buf[(y * width + x) * 4 + col % 4] = at(kk, col);
            }
        }
        (
            width,
            TexFormat::Rgba32Float,
            bytemuck::cast_slice(&buf).to_vec(),
        )
    };
    let meta = [l.kt as u32, l.kb as u32, l.nb as u32, half as u32];
    Ok(Packed {
        chunks: vec![PackedChunk::texture(
            dev,
            name,
            (width, height),
            format,
            &bytes,
            meta,
        )?],
    })
}

/// Packs a q8 B [N, K] into two textures of the same height: the int8 values (rgba32uint; lane
/// `lane` of column block `blk` owns columns c0 = blk*64 + lane*8 .. +7, and texel
/// ((k % KT)/2 * 8 + lane, blk*KB + k/KT) holds them for rows k (x, y) and k + 1 (z, w), k
/// even, 4 int8 per u32), and their scales (rgba32float; texel ((k % KT)/32 * 16 + lane*2 + h,
/// same row) holds the scales of columns c0 + 4h .. +3 for the block of 32 rows holding k).
fn pack_b_q8(
    dev: &Device,
    name: &str,
    t: &Tensor,
    k: usize,
    n: usize,
    l: BLayout,
) -> Result<Packed> {
    let Data::Q8(d) = t.data() else {
        return Err(Error::Graph(format!("weight '{name}' is not q8")));
    };
    let per_row = k.div_ceil(Q8_BLOCK);
    let height = l.height();
    let (qw, sw) = (l.kt * 4, l.kt / 2);
    let mut q = vec![0u32; qw * height * 4];
    let mut sc = vec![0.0f32; sw * height * 4];
    for col in 0..n {
        let (blk, lane, j) = (col / BLOCK_COLS, (col % BLOCK_COLS) / 8, col % 8);
        for kk in 0..k {
            let y = blk * l.kb + kk / l.kt;
            let x = ((kk % l.kt) / 2) * 8 + lane;
            let word = (kk % 2) * 2 + j / 4;
            let v = d.q[col * k + kk] as u8 as u32;
            q[(y * qw + x) * 4 + word] |= v << (8 * (j % 4));
        }
        for b in 0..per_row {
            let kk = b * Q8_BLOCK;
            let y = blk * l.kb + kk / l.kt;
            let x = ((kk % l.kt) / Q8_BLOCK) * 16 + lane * 2 + j / 4;
            sc[(y * sw + x) * 4 + j % 4] = d.scales[col * per_row + b];
        }
    }
    let meta = [l.kt as u32, l.kb as u32, l.nb as u32, 2];
    let q = bytemuck::cast_slice(&q);
    let sc = bytemuck::cast_slice(&sc);
    Ok(Packed {
        chunks: vec![
            PackedChunk::texture(dev, name, (qw, height), TexFormat::Rgba32Uint, q, meta)?,
            PackedChunk::texture(dev, name, (sw, height), TexFormat::Rgba32Float, sc, meta)?,
        ],
    })
}

/// WGSL that loads the two B vec4s of step `kk` into `b{tag}{kk}_0`, `b{tag}{kk}_1` (texture
/// `bt`, x offset `bx`, row `by{tag}`); `mode` selects the texel format; q8 values are scaled by
/// `scales`.
fn b_loads(kk: usize, mode: BMode, indent: &str, scales: (&str, &str)) -> String {
    b_loads_tagged(kk, mode, indent, scales, "")
}

fn b_loads_tagged(kk: usize, mode: BMode, indent: &str, scales: (&str, &str), tag: &str) -> String {
    match mode {
        BMode::Q8 => {
            // Texel kk/2 holds steps kk (x, y) and kk + 1 (z, w).
            let (t, hi) = (kk & !1, kk % 2 == 1);
            let mut s = String::new();
            if !hi {
                let _ = writeln!(
                    s,
                    "{indent}let t{tag}{t} = textureLoad(bt, vec2<i32>(bx + {}, by{tag}));",
                    t / 2 * 8
                );
            }
            let (c0, c1) = if hi { ("z", "w") } else { ("x", "y") };
            let _ = writeln!(s, "{indent}let b{tag}{kk}_0 = dq8(t{tag}{t}.{c0}, {});", scales.0);
            let _ = writeln!(s, "{indent}let b{tag}{kk}_1 = dq8(t{tag}{t}.{c1}, {});", scales.1);
            s
        }
        BMode::F16 => format!(
            "{indent}let t{tag}{kk} = textureLoad(bt, vec2<i32>(bx + {}, by{tag}));\n\
             {indent}let b{tag}{kk}_0 = vec4<f32>(unpack2x16float(t{tag}{kk}.x), unpack2x16float(t{tag}{kk}.y));\n\
             {indent}let b{tag}{kk}_1 = vec4<f32>(unpack2x16float(t{tag}{kk}.z), unpack2x16float(t{tag}{kk}.w));\n",
            kk * 8
        ),
        BMode::F32 => format!(
            "{indent}let b{tag}{kk}_0 = textureLoad(bt, vec2<i32>(bx + {}, by{tag}));\n\
             {indent}let b{tag}{kk}_1 = textureLoad(bt, vec2<i32>(bx + {}, by{tag}));\n",
            kk * 16,
            kk * 16 + 8
        ),
    }
}

/// How B is stored in its texture (the shaders' `BH`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BMode {
    F32 = 0,
    F16 = 1,
    Q8 = 2,
}

impl BMode {
    fn from_meta(m: u32) -> BMode {
        match m {
            1 => BMode::F16,
            2 => BMode::Q8,
            _ => BMode::F32,
        }
    }
}

/// Defines shared by matmul_cw.wgsl and matmul_gemv.wgsl for f32 or f16 B: the texture type,
/// texels per k row, and which column groups (of 4) a lane owns.
fn b_defines(mode: BMode) -> Vec<(&'static str, String)> {
    let half = mode != BMode::F32;
    vec![
        ("BH", (mode as u32).to_string()),
        (
            "KX",
            match mode {
                BMode::F32 => "16",
                BMode::F16 => "8",
                BMode::Q8 => "4",
            }
            .to_string(),
        ),
        // Lane l owns groups g0 and g1: f32 {16*blk + l, +8}; f16 {16*blk + 2l, +1}.
        ("GL", if half { "2" } else { "1" }.to_string()),
        ("GD", if half { "1" } else { "8" }.to_string()),
    ]
}

const LANES: [&str; 4] = ["x", "y", "z", "w"];

/// Generated parts of matmul_cw.wgsl for `r` rows per workgroup (a multiple of 8).
pub(crate) fn cw_defines(r: usize, mode: BMode) -> Vec<(&'static str, String)> {
    let groups = r / 8;
    let mut setup = String::new();
    for g in 0..groups {
        let _ = writeln!(setup, "    let ay{g} = min(i32(m0 / 8u) + {g}, ymax);");
    }
    let mut accs = String::new();
    for row in 0..r {
        let _ = writeln!(
            accs,
            "    var acc{row}_0 = vec4<f32>(0.0);\n    var acc{row}_1 = vec4<f32>(0.0);"
        );
    }
    let mut body = String::new();
    if mode == BMode::Q8 {
        for line in [
            "let sx = i32(((k & ktm) >> 5u) * 16u + 2u * lid);",
            "let s0 = textureLoad(st, vec2<i32>(sx, by));",
            "let s1 = textureLoad(st, vec2<i32>(sx + 1, by));",
        ] {
            let _ = writeln!(body, "        {line}");
        }
    }
    for kk in 0..4 {
        body.push_str(&b_loads(kk, mode, "        ", ("s0", "s1")));
    }
    for g in 0..groups {
        let _ = writeln!(
            body,
            "        let av{g} = textureLoad(at, vec2<i32>(ax, ay{g}));"
        );
    }
    for row in 0..r {
        let (g, l) = (row / 8, row % 8);
        for (kk, lane) in LANES.iter().enumerate() {
            let _ = writeln!(
                body,
                "        {{ let a = vec4<f32>(subgroupBroadcast(av{g}.{lane}, {l}u)); acc{row}_0 = fma(a, b{kk}_0, acc{row}_0); acc{row}_1 = fma(a, b{kk}_1, acc{row}_1); }}"
            );
        }
    }
    let mut stores = String::new();
    for row in 0..r {
        let _ = writeln!(
            stores,
            "            case {row}u: {{ v0 = acc{row}_0; v1 = acc{row}_1; }}"
        );
    }
    let mut d = vec![
        ("R", r.to_string()),
        ("SETUP", setup),
        ("ACCS", accs),
        ("BODY", body),
        ("STORES", stores),
    ];
    d.extend(b_defines(mode));
    d
}

/// Generated parts of matmul_gemv.wgsl for `nb` column blocks of 64 per workgroup: the blocks
/// share the loop, A's loads and broadcasts (fewer, longer workgroups: lavapipe pays per
/// workgroup). The body is 8 chunks of 4 k (one q8 scale block); for q8 a block's products with
/// the raw int8 values are summed in `blk{b}_0/1` and scaled once per 32 weights.
pub(crate) fn gemv_defines(mode: BMode, nb: usize) -> Vec<(&'static str, String)> {
    let q8 = mode == BMode::Q8;
    let mut setup = String::new();
    for b in 0..nb {
        let _ = writeln!(
            setup,
            "    let by0_{b} = min(blk0 + {b}u, nbt - 1u) * p.kb;"
        );
        let _ = writeln!(setup, "    var acc{b}_0 = vec4<f32>(0.0);");
        let _ = writeln!(setup, "    var acc{b}_1 = vec4<f32>(0.0);");
    }
    let mut body = String::new();
    if q8 {
        let _ = writeln!(body, "        let one = vec4<f32>(1.0);");
        let _ = writeln!(
            body,
            "        let sx = i32((((q0 * 4u) & ((1u << p.kt_shift) - 1u)) >> 5u) * 16u + 2u * lid);"
        );
        for b in 0..nb {
            let _ = writeln!(
                body,
                "        let sy{b} = i32(by0_{b} + ((q0 * 4u) >> p.kt_shift));"
            );
            let _ = writeln!(
                body,
                "        let s{b}_0 = textureLoad(st, vec2<i32>(sx, sy{b}));"
            );
            let _ = writeln!(
                body,
                "        let s{b}_1 = textureLoad(st, vec2<i32>(sx + 1, sy{b}));"
            );
            let _ = writeln!(body, "        var blk{b}_0 = vec4<f32>(0.0);");
            let _ = writeln!(body, "        var blk{b}_1 = vec4<f32>(0.0);");
        }
    }
    let kx = match mode {
        BMode::F32 => 16,
        BMode::F16 => 8,
        BMode::Q8 => 4,
    };
    for j in 0..8 {
        let _ = writeln!(body, "        if (q0 + {j}u < kq) {{");
        let _ = writeln!(body, "            let k = (q0 + {j}u) * 4u;");
        let _ = writeln!(
            body,
            "            let bx = i32((k & ((1u << p.kt_shift) - 1u)) * {kx}u + lid);"
        );
        for b in 0..nb {
            let _ = writeln!(
                body,
                "            let by{b} = i32(by0_{b} + (k >> p.kt_shift));"
            );
        }
        for (kk, lane) in LANES.iter().enumerate() {
            for b in 0..nb {
                body.push_str(&b_loads_tagged(
                    kk,
                    mode,
                    "            ",
                    ("one", "one"),
                    &b.to_string(),
                ));
            }
            let _ = write!(
                body,
                "            {{ let a = vec4<f32>(subgroupBroadcast(al.{lane}, {j}u));"
            );
            for b in 0..nb {
                let acc = if q8 { "blk" } else { "acc" };
                let _ = write!(
                    body,
                    " {acc}{b}_0 = fma(a, b{b}{kk}_0, {acc}{b}_0); {acc}{b}_1 = fma(a, b{b}{kk}_1, {acc}{b}_1);"
                );
            }
            let _ = writeln!(body, " }}");
        }
        let _ = writeln!(body, "        }}");
    }
    if q8 {
        for b in 0..nb {
            let _ = writeln!(body, "        acc{b}_0 = fma(blk{b}_0, s{b}_0, acc{b}_0);");
            let _ = writeln!(body, "        acc{b}_1 = fma(blk{b}_1, s{b}_1, acc{b}_1);");
        }
    }
    // Lane l owns column groups g and g + gd of each block (see `b_defines`).
    let (gl, gd) = if mode == BMode::F32 { (1, 8) } else { (2, 1) };
    let mut stores = String::new();
    for b in 0..nb {
        let _ = writeln!(stores, "    if (blk0 + {b}u < nbt) {{");
        let _ = writeln!(
            stores,
            "        let g{b} = (blk0 + {b}u) * 16u + {gl}u * lid;"
        );
        let _ = writeln!(stores, "        store(row, g{b}, acc{b}_0);");
        let _ = writeln!(stores, "        store(row, g{b} + {gd}u, acc{b}_1);");
        let _ = writeln!(stores, "    }}");
    }
    let mut d = vec![
        ("NB", nb.to_string()),
        ("SETUP", setup),
        ("BODY", body),
        ("STORES", stores),
    ];
    d.extend(b_defines(mode));
    d
}

/// Rows per workgroup for `m` rows.
fn rows_for(m: usize) -> usize {
    if m >= 32 {
        32
    } else if m > 8 {
        16
    } else {
        8
    }
}

/// Emits the dispatches for C[m, n] = epilogue(A[m, k] · B) with B packed by [`pack_b`]; one
/// row runs the GEMV kernel with `gemv_blocks` column blocks of 64 per workgroup.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lower(
    cx: &mut Lower<'_>,
    a: ValueId,
    packed: Arc<Packed>,
    bias: Option<ValueId>,
    res: Option<ValueId>,
    out: ValueId,
    act: Act,
    (m, k, n): (usize, usize, usize),
    gemv_blocks: usize,
) -> Result<()> {
    let meta = packed.chunks[0].meta;
    let (kt, kb, nb, mode) = (meta[0], meta[1], meta[2], BMode::from_meta(meta[3]));
    let params = Params::new()
        .u32(m as u32)
        .u32(n as u32)
        .u32(k as u32)
        .u32(kt.trailing_zeros())
        .u32(kb)
        .u32(act.code())
        .u32(bias.is_some() as u32)
        .u32(res.is_some() as u32);
    let bias_v = bias.unwrap_or(a);
    let res_v = res.unwrap_or(a);
    // q8: the scale texture is binding 6.
    let scales = (mode == BMode::Q8).then(|| Arg::Packed(packed.clone(), 1));
    if m == 1 {
        let mut args = vec![
            Arg::Read(a),
            Arg::Packed(packed, 0),
            Arg::Read(bias_v),
            Arg::Read(res_v),
            Arg::Write(out),
            params.arg(),
        ];
        args.extend(scales);
        let per = gemv_blocks.clamp(1, nb.max(1) as usize);
        return cx.dispatch(
            "matmul_gemv.wgsl",
            &gemv_defines(mode, per),
            args,
            [m as u32, (nb as usize).div_ceil(per) as u32, 1],
        );
    }
    let kq = k.div_ceil(4);
    let rows8 = m.div_ceil(8) * 8;
    let tex = cx.scratch_texture(
        (8 * kq) as u32,
        (rows8 / 8) as u32,
        TexFormat::Rgba32Float,
        0,
    )?;
    let groups = groups_for(cx, kq * rows8, 64);
    cx.dispatch(
        "matmul_pack_a.wgsl",
        &[("VEC", u32::from(k.is_multiple_of(4)).to_string())],
        vec![
            Arg::Read(a),
            Arg::ScratchTexture {
                id: tex,
                write: true,
            },
            Params::new()
                .u32(m as u32)
                .u32(k as u32)
                .u32(kq as u32)
                .u32(rows8 as u32)
                .arg(),
        ],
        groups,
    )?;
    let r = rows_for(m);
    let mut defines = cw_defines(r, mode);
    defines.push(("VEC", u32::from(n.is_multiple_of(4)).to_string()));
    defines.push(("ACT", act.code().to_string()));
    cx.dispatch(
        "matmul_cw.wgsl",
        &defines,
        vec![
            Arg::ScratchTexture {
                id: tex,
                write: false,
            },
            Arg::Packed(packed, 0),
            Arg::Read(bias_v),
            Arg::Read(res_v),
            Arg::Write(out),
            params.arg(),
        ]
        .into_iter()
        .chain(scales)
        .collect(),
        [m.div_ceil(r) as u32, nb, 1],
    )
}
