//! The texture attention kernel for CPU-backed adapters (`attention_tex.wgsl`): Q, K and V are
//! packed into textures, each lane owns query rows, and K and P reach every lane through
//! subgroup broadcasts. Needs 8-lane subgroups.

use super::{Attention, Geometry};
use crate::device::{Device, TexFormat};
use crate::error::Result;
use crate::graph::{Arg, Lower, Params, ValueId};
use crate::ops::groups_for;

/// Whether the texture kernel can run this problem on `device`.
pub(super) fn supported(device: &Device, geo: &Geometry) -> bool {
    let max_dim = device.limits().max_texture_dimension_2d as usize;
    device.has_subgroups_of(8)
        && geo.w == 4
        && geo.b * geo.sq.max(geo.skv) <= max_dim
        && geo.widths.iter().all(|&x| x / 4 <= max_dim)
}

/// Packs Q, K, V into textures and runs attention_tex.wgsl.
pub(super) fn lower(
    op: &Attention,
    cx: &mut Lower<'_>,
    inputs: &[ValueId],
    outputs: &[ValueId],
    geo: &Geometry,
) -> Result<()> {
    let (b, sq, skv) = (geo.b, geo.sq, geo.skv);
    // One texture per distinct source (a fused QKV tensor is packed once). The role is the
    // layout tag, so two sources of equal size never share a scratch texture.
    let mut tex: Vec<(ValueId, usize)> = Vec::new();
    for (role, &v) in inputs[..3].iter().enumerate() {
        if tex.iter().any(|(x, _)| *x == v) {
            continue;
        }
        let (rows, w4) = (geo.rows[role], geo.widths[role] / 4);
        let id = cx.scratch_texture(
            w4 as u32,
            rows as u32,
            TexFormat::Rgba32Float,
            100 + role as u64,
        )?;
        let groups = groups_for(cx, rows * w4, 64);
        cx.dispatch(
            "attention_pack.wgsl",
            &[],
            vec![
                Arg::Read(v),
                Arg::ScratchTexture { id, write: true },
                Params::new().u32(rows as u32).u32(w4 as u32).arg(),
            ],
            groups,
        )?;
        tex.push((v, id));
    }
    let tex_of = |v: ValueId| tex.iter().find(|(x, _)| *x == v).expect("packed").1;
    let (mask, bias, past) = op.optional_inputs(inputs);
    let rl = sq.div_ceil(8).clamp(1, 4);
    let mut defines = tex_body(op.head_dim / 4, rl, op.mask, op.bias, op.causal, op.group());
    defines.extend([
        ("R", (8 * rl).to_string()),
        ("CAUSAL", (op.causal as u32).to_string()),
        ("HAS_MASK", (op.mask as u32).to_string()),
        ("HAS_LEN", (op.past as u32).to_string()),
    ]);
    let params = Params::new()
        .u32(b as u32)
        .u32(op.heads as u32)
        .u32(sq as u32)
        .u32(skv as u32)
        .u32((op.q_col / 4) as u32)
        .u32((op.k_col / 4) as u32)
        .u32((op.v_col / 4) as u32)
        .u32((op.heads * op.head_dim / 4) as u32)
        .f32(op.scale)
        .u32(0)
        .u32(0)
        .u32(0);
    cx.dispatch(
        "attention_tex.wgsl",
        &defines,
        vec![
            Arg::ScratchTexture {
                id: tex_of(inputs[0]),
                write: false,
            },
            Arg::ScratchTexture {
                id: tex_of(inputs[1]),
                write: false,
            },
            Arg::ScratchTexture {
                id: tex_of(inputs[2]),
                write: false,
            },
            Arg::Read(mask),
            Arg::Read(past),
            Arg::Write(outputs[0]),
            params.arg(),
            Arg::Read(bias),
        ],
        [sq.div_ceil(8 * rl) as u32, op.heads as u32, b as u32],
    )
}

/// Generated parts of attention_tex.wgsl: `d4` texels per head, `rl` query rows per lane.
pub(crate) fn tex_body(
    d4: usize,
    rl: usize,
    mask: bool,
    bias: bool,
    causal: bool,
    group: usize,
) -> Vec<(&'static str, String)> {
    use std::fmt::Write;
    let r = 8 * rl;
    let e_n = d4.div_ceil(8);
    let mut setup = String::new();
    let _ = writeln!(setup, "    let qx = i32(p.qx0 + h * {d4}u);");
    // Grouped-query attention: K/V head h / group.
    let _ = writeln!(setup, "    let kvh = h / {group}u;");
    let _ = writeln!(setup, "    let kx = i32(p.kx0 + kvh * {d4}u);");
    let _ = writeln!(setup, "    let vx = i32(p.vx0 + kvh * {d4}u);");
    for t in 0..rl {
        let _ = writeln!(setup, "    let qi{t} = min(i0 + L + {}u, sq - 1u);", 8 * t);
        let _ = writeln!(setup, "    let qr{t} = i32(b * sq + qi{t});");
        if causal {
            let _ = writeln!(setup, "    let lim{t} = min(kv_len, past + qi{t} + 1u);");
        } else {
            let _ = writeln!(setup, "    let lim{t} = kv_len;");
        }
        for d in 0..d4 {
            let _ = writeln!(
                setup,
                "    let q{t}_{d} = textureLoad(qt, vec2<i32>(qx + {d}, qr{t})) * p.scale;"
            );
        }
        let _ = writeln!(setup, "    var m{t} = NEG;\n    var l{t} = 0.0;");
    }
    for ri in 0..r {
        for e in 0..e_n {
            let _ = writeln!(setup, "    var o{ri}_{e} = vec4<f32>(0.0);");
        }
    }
    for e in 0..e_n {
        let _ = writeln!(
            setup,
            "    let vc{e} = vx + i32(min(L + {}u, {}u));",
            8 * e,
            d4 - 1
        );
    }
    let mut body = String::new();
    let _ = writeln!(body, "        let kr = i32(kv0 + min(j0 + L, skv - 1u));");
    for d in 0..d4 {
        let _ = writeln!(
            body,
            "        let k{d} = textureLoad(kt, vec2<i32>(kx + {d}, kr));"
        );
    }
    if mask {
        let _ = writeln!(
            body,
            "        let mk = mask[b * skv + min(j0 + L, skv - 1u)];"
        );
    }
    for k in 0..8 {
        for t in 0..rl {
            let _ = writeln!(body, "        var a{t}_{k} = vec4<f32>(0.0);");
        }
        for d in 0..d4 {
            let _ = writeln!(
                body,
                "        {{ let kk = vec4<f32>(subgroupBroadcast(k{d}.x, {k}u), subgroupBroadcast(k{d}.y, {k}u), subgroupBroadcast(k{d}.z, {k}u), subgroupBroadcast(k{d}.w, {k}u));"
            );
            for t in 0..rl {
                let _ = writeln!(body, "          a{t}_{k} = fma(q{t}_{d}, kk, a{t}_{k});");
            }
            let _ = writeln!(body, "        }}");
        }
    }
    for t in 0..rl {
        let _ = writeln!(body, "        var mb{t} = NEG;");
        for k in 0..8 {
            let mut mk = if mask {
                format!(" + subgroupBroadcast(mk, {k}u)")
            } else {
                String::new()
            };
            if bias {
                mk += &format!(" + bias[(h * sq + qi{t}) * skv + min(j0 + {k}u, skv - 1u)]");
            }
            let _ = writeln!(
                body,
                "        let ok{t}_{k} = j0 + {k}u < lim{t};\n        let s{t}_{k} = select(NEG, (a{t}_{k}.x + a{t}_{k}.y) + (a{t}_{k}.z + a{t}_{k}.w){mk}, ok{t}_{k});\n        mb{t} = max(mb{t}, s{t}_{k});"
            );
        }
        let _ = writeln!(
            body,
            "        let mn{t} = max(m{t}, mb{t});\n        let corr{t} = exp(m{t} - mn{t});\n        m{t} = mn{t};"
        );
        let mut sum = String::new();
        for k in 0..8 {
            let _ = writeln!(
                body,
                "        let p{t}_{k} = select(0.0, exp(s{t}_{k} - mn{t}), ok{t}_{k});"
            );
            sum += &format!(" + p{t}_{k}");
        }
        let _ = writeln!(body, "        l{t} = l{t} * corr{t}{sum};");
    }
    for k in 0..8 {
        let _ = writeln!(
            body,
            "        let vr{k} = i32(kv0 + min(j0 + {k}u, skv - 1u));"
        );
        for e in 0..e_n {
            let _ = writeln!(
                body,
                "        let v{k}_{e} = textureLoad(vt, vec2<i32>(vc{e}, vr{k}));"
            );
        }
    }
    for ri in 0..r {
        let (t, l) = (ri / 8, ri % 8);
        let _ = writeln!(
            body,
            "        {{ let cr = subgroupBroadcast(corr{t}, {l}u);"
        );
        for e in 0..e_n {
            let _ = writeln!(body, "          var oo{e} = o{ri}_{e} * cr;");
        }
        for k in 0..8 {
            let _ = writeln!(
                body,
                "          {{ let pb = vec4<f32>(subgroupBroadcast(p{t}_{k}, {l}u));"
            );
            for e in 0..e_n {
                let _ = writeln!(body, "            oo{e} = fma(pb, v{k}_{e}, oo{e});");
            }
            let _ = writeln!(body, "          }}");
        }
        for e in 0..e_n {
            let _ = writeln!(body, "          o{ri}_{e} = oo{e};");
        }
        let _ = writeln!(body, "        }}");
    }
    let mut store = String::new();
    for t in 0..rl {
        let _ = writeln!(store, "    let inv{t} = 1.0 / l{t};");
    }
    for ri in 0..r {
        let (t, l) = (ri / 8, ri % 8);
        let _ = writeln!(store, "    {{ let inv = subgroupBroadcast(inv{t}, {l}u);");
        let _ = writeln!(store, "      let i = i0 + {ri}u;");
        let _ = writeln!(store, "      if (i < sq) {{");
        let _ = writeln!(
            store,
            "        let ob = (b * sq + i) * p.ostride4 + h * {d4}u;"
        );
        for e in 0..e_n {
            if (e + 1) * 8 <= d4 {
                let _ = writeln!(store, "        out[ob + L + {}u] = o{ri}_{e} * inv;", 8 * e);
            } else {
                let _ = writeln!(
                    store,
                    "        if (L + {}u < {d4}u) {{ out[ob + L + {}u] = o{ri}_{e} * inv; }}",
                    8 * e,
                    8 * e
                );
            }
        }
        let _ = writeln!(store, "      }}\n    }}");
    }
    vec![("SETUP", setup), ("BODY", body), ("STORE", store)]
}
