//! The buffer attention kernels: `attention.wgsl` (one invocation per query row, online
//! softmax; the portable variant) and `attention_keys.wgsl` (few query rows, as in decoding:
//! the keys spread over an 8-lane subgroup).

use super::{Attention, Geometry};
use crate::error::Result;
use crate::graph::{Arg, Lower, Params, ValueId};
use crate::ops::groups_for;

/// Emits `attention_keys.wgsl` when `by_keys`, else `attention.wgsl`.
pub(super) fn lower(
    op: &Attention,
    by_keys: bool,
    cx: &mut Lower<'_>,
    inputs: &[ValueId],
    outputs: &[ValueId],
    geo: &Geometry,
) -> Result<()> {
    let (b, sq, skv) = (geo.b, geo.sq, geo.skv);
    let (w, widths) = (geo.w, geo.widths);
    let wg = if cx.device().is_cpu() { 8 } else { 64 };
    let qblocks = if by_keys { sq } else { sq.div_ceil(wg) };
    let (mask, bias, past) = op.optional_inputs(inputs);
    let params = Params::new()
        .u32(b as u32)
        .u32(op.heads as u32)
        .u32(sq as u32)
        .u32(skv as u32)
        .u32((widths[0] / w) as u32)
        .u32((widths[1] / w) as u32)
        .u32((widths[2] / w) as u32)
        .u32(qblocks as u32)
        .u32((op.q_col / w) as u32)
        .u32((op.k_col / w) as u32)
        .u32((op.v_col / w) as u32)
        .f32(op.scale);
    let mut defines = body(op.head_dim / w, w, by_keys, op.mask, op.bias);
    defines.extend([
        ("GROUP", op.group().to_string()),
        ("CAUSAL", (op.causal as u32).to_string()),
        ("HAS_MASK", (op.mask as u32).to_string()),
        ("HAS_LEN", (op.past as u32).to_string()),
    ]);
    let args = vec![
        Arg::Read(inputs[0]),
        Arg::Read(inputs[1]),
        Arg::Read(inputs[2]),
        Arg::Read(mask),
        Arg::Read(past),
        Arg::Write(outputs[0]),
        params.arg(),
        Arg::Read(bias),
    ];
    if by_keys {
        cx.dispatch(
            "attention_keys.wgsl",
            &defines,
            args,
            [sq as u32, op.heads as u32, b as u32],
        )
    } else {
        defines.push(("WG", wg.to_string()));
        let groups = groups_for(cx, b * op.heads * qblocks, 1);
        cx.dispatch("attention.wgsl", &defines, args, groups)
    }
}

/// Generated parts of attention.wgsl / attention_keys.wgsl: the head dimension unrolled over
/// `n` registers of `w` floats (vec4 or f32); `mask` and `bias` add those inputs to the scores.
pub(crate) fn body(
    n: usize,
    w: usize,
    by_keys: bool,
    mask: bool,
    bias: bool,
) -> Vec<(&'static str, String)> {
    use std::fmt::Write;
    let t = if w == 4 { "vec4<f32>" } else { "f32" };
    let hsum = |a: &str| {
        if w == 4 {
            format!("({a}.x + {a}.y) + ({a}.z + {a}.w)")
        } else {
            a.to_string()
        }
    };
    let mut setup = String::new();
    for d in 0..n {
        let _ = writeln!(setup, "    let Q{d} = q[qoff + {d}u] * p.scale;");
        let _ = writeln!(setup, "    var O{d} = {t}(0.0);");
    }
    let mut body = String::new();
    let mut store = String::new();
    if by_keys {
        let _ = writeln!(body, "        var a = {t}(0.0);");
        for d in 0..n {
            let _ = writeln!(body, "        a = fma(Q{d}, k[koff + {d}u], a);");
        }
        let _ = writeln!(body, "        var sc = {};", hsum("a"));
        if mask {
            let _ = writeln!(body, "        sc = sc + mask[b * p.skv + jr];");
        }
        if bias {
            let _ = writeln!(body, "        sc = sc + bias[(h * p.sq + i) * p.skv + jr];");
        }
        let _ = writeln!(body, "        sc = select(NEG, sc, ok);");
        let _ = writeln!(body, "        let mn = max(m, sc);");
        let _ = writeln!(body, "        let corr = exp(m - mn);");
        let _ = writeln!(body, "        let pj = select(0.0, exp(sc - mn), ok);");
        let _ = writeln!(body, "        l = l * corr + pj;");
        let _ = writeln!(body, "        m = mn;");
        for d in 0..n {
            let _ = writeln!(
                body,
                "        O{d} = fma({t}(pj), v[voff + {d}u], O{d} * corr);"
            );
        }
        for d in 0..n {
            let _ = writeln!(
                store,
                "    {{ let od = subgroupAdd(O{d} * c); if (li == 0u) {{ out[ooff + {d}u] = od * inv; }} }}"
            );
        }
    } else {
        let _ = writeln!(body, "        var bm = NEG;");
        for kk in 0..8 {
            let _ = writeln!(body, "        let j{kk} = j0 + {kk}u;");
            let _ = writeln!(body, "        let jr{kk} = min(j{kk}, p.skv - 1u);");
            let _ = writeln!(
                body,
                "        let ko{kk} = (b * p.skv + jr{kk}) * p.k_stride + p.k_col + kvh * {n}u;"
            );
            let _ = writeln!(body, "        var a{kk} = {t}(0.0);");
            for d in 0..n {
                let _ = writeln!(body, "        a{kk} = fma(Q{d}, k[ko{kk} + {d}u], a{kk});");
            }
            let _ = writeln!(body, "        var s{kk} = {};", hsum(&format!("a{kk}")));
            if mask {
                let _ = writeln!(body, "        s{kk} = s{kk} + mask[b * p.skv + jr{kk}];");
            }
            if bias {
                let _ = writeln!(
                    body,
                    "        s{kk} = s{kk} + bias[(h * p.sq + iq) * p.skv + jr{kk}];"
                );
            }
            let _ = writeln!(body, "        let ok{kk} = j{kk} < lim;");
            let _ = writeln!(body, "        bm = select(bm, max(bm, s{kk}), ok{kk});");
        }
        let _ = writeln!(body, "        let mn = max(m, bm);");
        let _ = writeln!(body, "        let corr = exp(m - mn);");
        let _ = writeln!(body, "        m = mn;");
        let _ = writeln!(body, "        l = l * corr;");
        for d in 0..n {
            let _ = writeln!(body, "        O{d} = O{d} * corr;");
        }
        for kk in 0..8 {
            let _ = writeln!(
                body,
                "        let p{kk} = select(0.0, exp(s{kk} - mn), ok{kk});"
            );
            let _ = writeln!(body, "        l = l + p{kk};");
            let _ = writeln!(
                body,
                "        let vo{kk} = (b * p.skv + jr{kk}) * p.v_stride + p.v_col + kvh * {n}u;"
            );
            for d in 0..n {
                let _ = writeln!(
                    body,
                    "        O{d} = fma({t}(p{kk}), v[vo{kk} + {d}u], O{d});"
                );
            }
        }
        for d in 0..n {
            let _ = writeln!(store, "        out[ooff + {d}u] = O{d} * inv;");
        }
    }
    vec![
        ("T", t.to_string()),
        ("DW", n.to_string()),
        ("SETUP", setup),
        ("BODY", body),
        ("STORE", store),
    ]
}
