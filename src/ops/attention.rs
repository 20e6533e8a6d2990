//! Fused multi-head scaled dot-product attention with an optional additive key mask, a causal
//! option, and an optional run-time `past` length for KV-cache decoding.
//!
//! Q, K and V are read in place from wider tensors: head `h` of Q is columns
//! `q_col + h*D .. q_col + (h+1)*D` of a [batch, sq, width] tensor (so a fused QKV projection
//! needs no split). Output: [batch, sq, heads*D].

use super::{expect_inputs, groups_for, shapes, Op, Params};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, ValueId};
use crate::tensor::{DType, Tensor, ValueInfo};

#[derive(Debug, Clone)]
pub struct Attention {
    pub heads: usize,
    pub head_dim: usize,
    /// Multiplies q·k (usually 1/sqrt(head_dim)).
    pub scale: f32,
    pub causal: bool,
    /// Column offsets of Q, K, V in their source tensors.
    pub q_col: usize,
    pub k_col: usize,
    pub v_col: usize,
    /// An additive mask [batch, skv] (f32) input follows q, k, v.
    pub mask: bool,
    /// A u32 [1] `past` input follows: keys [0, past + sq) are valid, queries start at `past`.
    pub past: bool,
}

impl Attention {
    fn check(&self, inputs: &[&ValueInfo]) -> Result<(usize, usize, usize)> {
        let want = 3 + self.mask as usize + self.past as usize;
        expect_inputs("attention", inputs, want)?;
        let bad = |msg: String| Err(Error::shape("attention", msg, &shapes(inputs)));
        let (q, k, v) = (inputs[0], inputs[1], inputs[2]);
        if [q, k, v]
            .iter()
            .any(|t| t.rank() != 3 || t.dtype != DType::F32)
        {
            return bad("q, k, v must be f32 [batch, seq, width]".into());
        }
        let (b, sq, skv) = (q.shape[0], q.shape[1], k.shape[1]);
        if k.shape[0] != b || v.shape[0] != b || v.shape[1] != skv {
            return bad("batch or key length of q, k, v disagree".into());
        }
        let hd = self.heads * self.head_dim;
        if self.heads == 0 || self.head_dim == 0 {
            return bad("heads and head_dim must be positive".into());
        }
        for (t, col, name) in [
            (q, self.q_col, "q"),
            (k, self.k_col, "k"),
            (v, self.v_col, "v"),
        ] {
            if col + hd > t.shape[2] {
                return bad(format!(
                    "{name} columns {col}..{} exceed its width {}",
                    col + hd,
                    t.shape[2]
                ));
            }
        }
        let mut i = 3;
        if self.mask {
            let m = inputs[i];
            if m.shape != [b, skv] || m.dtype != DType::F32 {
                return bad(format!("mask must be f32 [{b}, {skv}]"));
            }
            i += 1;
        }
        if self.past {
            let p = inputs[i];
            if p.shape != [1] || p.dtype != DType::U32 {
                return bad("past must be u32 [1]".into());
            }
        }
        if self.head_dim > 256 {
            return bad("head_dim above 256 is not supported".into());
        }
        Ok((b, sq, skv))
    }
}

impl Attention {
    /// Packs Q, K, V into textures and runs attention_tex.wgsl (CPU-backed adapters).
    fn lower_tex(
        &self,
        cx: &mut Lower<'_>,
        inputs: &[ValueId],
        outputs: &[ValueId],
        infos: &[ValueInfo],
        (b, sq, skv): (usize, usize, usize),
    ) -> Result<()> {
        use crate::device::TexFormat;
        // One texture per distinct source (a fused QKV tensor is packed once). The role is the
        // layout tag, so two sources of equal size never share a scratch texture.
        let mut tex: Vec<(ValueId, usize)> = Vec::new();
        for (role, &v) in inputs[..3].iter().enumerate() {
            if tex.iter().any(|(x, _)| *x == v) {
                continue;
            }
            let info = &infos[role];
            let (rows, w4) = (info.shape[0] * info.shape[1], info.shape[2] / 4);
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
        let mut i = 3;
        let mask = if self.mask {
            i += 1;
            inputs[i - 1]
        } else {
            inputs[0]
        };
        let past = if self.past { inputs[i] } else { inputs[0] };
        let rl = sq.div_ceil(8).clamp(1, 4);
        let mut defines = tex_body(self.head_dim / 4, rl, self.mask, self.causal);
        defines.extend([
            ("R", (8 * rl).to_string()),
            ("CAUSAL", (self.causal as u32).to_string()),
            ("HAS_MASK", (self.mask as u32).to_string()),
            ("HAS_LEN", (self.past as u32).to_string()),
        ]);
        let params = Params::new()
            .u32(b as u32)
            .u32(self.heads as u32)
            .u32(sq as u32)
            .u32(skv as u32)
            .u32((self.q_col / 4) as u32)
            .u32((self.k_col / 4) as u32)
            .u32((self.v_col / 4) as u32)
            .u32((self.heads * self.head_dim / 4) as u32)
            .f32(self.scale)
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
            ],
            [sq.div_ceil(8 * rl) as u32, self.heads as u32, b as u32],
        )
    }
}

impl Op for Attention {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        let (b, sq, _) = self.check(inputs)?;
        Ok(vec![ValueInfo::f32(&[b, sq, self.heads * self.head_dim])])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let infos: Vec<ValueInfo> = inputs.iter().map(|t| t.info()).collect();
        let refs: Vec<&ValueInfo> = infos.iter().collect();
        let (b, sq, skv) = self.check(&refs)?;
        let (q, k, v) = (
            inputs[0].as_f32()?,
            inputs[1].as_f32()?,
            inputs[2].as_f32()?,
        );
        let (qw, kw, vw) = (infos[0].shape[2], infos[1].shape[2], infos[2].shape[2]);
        let mut i = 3;
        let mask = if self.mask {
            i += 1;
            Some(inputs[i - 1].as_f32()?)
        } else {
            None
        };
        let past = if self.past {
            inputs[i].as_u32()?[0] as usize
        } else {
            0
        };
        let kv_len = if self.past { (past + sq).min(skv) } else { skv };
        let (h_n, d_n) = (self.heads, self.head_dim);
        let mut out = vec![0.0f32; b * sq * h_n * d_n];
        let mut scores = vec![0.0f32; kv_len];
        for bi in 0..b {
            for h in 0..h_n {
                for qi in 0..sq {
                    let qo = (bi * sq + qi) * qw + self.q_col + h * d_n;
                    let lim = if self.causal {
                        kv_len.min(past + qi + 1)
                    } else {
                        kv_len
                    };
                    for (j, s) in scores.iter_mut().enumerate().take(lim) {
                        let ko = (bi * skv + j) * kw + self.k_col + h * d_n;
                        let mut dot = 0.0f64;
                        for d in 0..d_n {
                            dot += q[qo + d] as f64 * self.scale as f64 * k[ko + d] as f64;
                        }
                        let mut x = dot as f32;
                        if let Some(m) = mask {
                            x += m[bi * skv + j];
                        }
                        *s = x;
                    }
                    let mx = scores[..lim]
                        .iter()
                        .fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                    let mut denom = 0.0f64;
                    let oo = ((bi * sq + qi) * h_n + h) * d_n;
                    let mut acc = vec![0.0f64; d_n];
                    for (j, &s) in scores.iter().enumerate().take(lim) {
                        let p = ((s - mx) as f64).exp();
                        denom += p;
                        let vo = (bi * skv + j) * vw + self.v_col + h * d_n;
                        for d in 0..d_n {
                            acc[d] += p * v[vo + d] as f64;
                        }
                    }
                    for d in 0..d_n {
                        out[oo + d] = (acc[d] / denom) as f32;
                    }
                }
            }
        }
        Ok(vec![Tensor::from_f32(&[b, sq, h_n * d_n], out)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let infos: Vec<ValueInfo> = inputs.iter().map(|&i| cx.info(i).clone()).collect();
        let refs: Vec<&ValueInfo> = infos.iter().collect();
        let (b, sq, skv) = self.check(&refs)?;
        let widths = [infos[0].shape[2], infos[1].shape[2], infos[2].shape[2]];
        // vec4 accesses when every offset and stride allows them.
        let w = if [self.head_dim, self.q_col, self.k_col, self.v_col]
            .iter()
            .chain(widths.iter())
            .all(|x| x % 4 == 0)
        {
            4
        } else {
            1
        };
        let dev = cx.device();
        let info = dev.adapter_info();
        // Few query rows: spread the keys across a subgroup of 8 instead.
        let by_keys = sq <= 4 && dev.has_subgroups() && info.subgroup_min_size >= 8;
        let wg = if dev.is_cpu() { 8 } else { 64 };
        let qblocks = if by_keys { sq } else { sq.div_ceil(wg) };
        let mut i = 3;
        let mask = if self.mask {
            i += 1;
            inputs[i - 1]
        } else {
            inputs[0]
        };
        let past = if self.past { inputs[i] } else { inputs[0] };
        let params = Params::new()
            .u32(b as u32)
            .u32(self.heads as u32)
            .u32(sq as u32)
            .u32(skv as u32)
            .u32((widths[0] / w) as u32)
            .u32((widths[1] / w) as u32)
            .u32((widths[2] / w) as u32)
            .u32(qblocks as u32)
            .u32((self.q_col / w) as u32)
            .u32((self.k_col / w) as u32)
            .u32((self.v_col / w) as u32)
            .f32(self.scale);
        let mut defines = body(self.head_dim / w, w, by_keys, self.mask);
        defines.extend([
            ("CAUSAL", (self.causal as u32).to_string()),
            ("HAS_MASK", (self.mask as u32).to_string()),
            ("HAS_LEN", (self.past as u32).to_string()),
        ]);
        let args = vec![
            Arg::Read(inputs[0]),
            Arg::Read(inputs[1]),
            Arg::Read(inputs[2]),
            Arg::Read(mask),
            Arg::Read(past),
            Arg::Write(outputs[0]),
            params.arg(),
        ];
        let max_dim = dev.limits().max_texture_dimension_2d as usize;
        let use_tex = dev.is_cpu()
            && !by_keys
            && w == 4
            && dev.has_subgroups()
            && info.subgroup_min_size >= 8
            && b * sq.max(skv) <= max_dim
            && widths.iter().all(|&x| x / 4 <= max_dim)
            && std::env::var("WGPU_INFER_ATTENTION").map_or(true, |v| v != "buffer");
        if use_tex {
            return self.lower_tex(cx, inputs, outputs, &infos, (b, sq, skv));
        }
        if by_keys {
            cx.dispatch(
                "attention_keys.wgsl",
                &defines,
                args,
                [sq as u32, self.heads as u32, b as u32],
            )
        } else {
            defines.push(("WG", wg.to_string()));
            let groups = groups_for(cx, b * self.heads * qblocks, 1);
            cx.dispatch("attention.wgsl", &defines, args, groups)
        }
    }

    fn flops(&self, inputs: &[&ValueInfo]) -> u64 {
        let (b, sq, skv) = (inputs[0].shape[0], inputs[0].shape[1], inputs[1].shape[1]);
        4 * (b * self.heads * sq * skv * self.head_dim) as u64
    }
}

impl Graph {
    /// Attention over q, k, v (optionally the same fused tensor with column offsets), with an
    /// optional additive mask [batch, skv] and optional run-time past length (u32 [1]).
    pub fn attention(
        &mut self,
        op: Attention,
        q: ValueId,
        k: ValueId,
        v: ValueId,
        mask: Option<ValueId>,
        past: Option<ValueId>,
    ) -> Result<ValueId> {
        let mut inputs = vec![q, k, v];
        inputs.extend(mask);
        inputs.extend(past);
        let op = Attention {
            mask: mask.is_some(),
            past: past.is_some(),
            ..op
        };
        self.node1(op, &inputs)
    }
}

/// Generated parts of attention.wgsl / attention_keys.wgsl: the head dimension unrolled over
/// `n` registers of `w` floats (vec4 or f32).
pub fn body(n: usize, w: usize, by_keys: bool, mask: bool) -> Vec<(&'static str, String)> {
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
                "        let ko{kk} = (b * p.skv + jr{kk}) * p.k_stride + p.k_col + h * {n}u;"
            );
            let _ = writeln!(body, "        var a{kk} = {t}(0.0);");
            for d in 0..n {
                let _ = writeln!(body, "        a{kk} = fma(Q{d}, k[ko{kk} + {d}u], a{kk});");
            }
            let _ = writeln!(body, "        var s{kk} = {};", hsum(&format!("a{kk}")));
            if mask {
                let _ = writeln!(body, "        s{kk} = s{kk} + mask[b * p.skv + jr{kk}];");
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
                "        let vo{kk} = (b * p.skv + jr{kk}) * p.v_stride + p.v_col + h * {n}u;"
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

/// Generated parts of attention_tex.wgsl: `d4` texels per head, `rl` query rows per lane.
pub fn tex_body(d4: usize, rl: usize, mask: bool, causal: bool) -> Vec<(&'static str, String)> {
    use std::fmt::Write;
    let r = 8 * rl;
    let e_n = d4.div_ceil(8);
    let mut setup = String::new();
    let _ = writeln!(setup, "    let qx = i32(p.qx0 + h * {d4}u);");
    let _ = writeln!(setup, "    let kx = i32(p.kx0 + h * {d4}u);");
    let _ = writeln!(setup, "    let vx = i32(p.vx0 + h * {d4}u);");
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
            let mk = if mask {
                format!(" + subgroupBroadcast(mk, {k}u)")
            } else {
                String::new()
            };
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
