//! LayerNorm over the last axis with affine weight and bias, and RMSNorm ([`RmsNorm`]: Llama's,
//! no mean and no bias), on the same kernels.

use super::{expect_f32, expect_inputs, groups_for, row_reduce, shapes};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, Op, Params, ValueId};
use crate::tensor::{Tensor, ValueInfo};
use std::fmt::Write;

#[derive(Debug, Clone)]
pub struct LayerNorm {
    pub eps: f32,
}

impl Op for LayerNorm {
    fn name(&self) -> &'static str {
        "layernorm"
    }

    /// Inputs: x [..., n], gamma [n], beta [n].
    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        expect_inputs("layernorm", inputs, 3)?;
        expect_f32("layernorm", inputs)?;
        let Some(&n) = inputs[0].shape.last() else {
            return Err(Error::shape(
                "layernorm",
                "x must have at least one axis",
                &shapes(inputs),
            ));
        };
        if inputs[1].shape != [n] || inputs[2].shape != [n] {
            return Err(Error::shape(
                "layernorm",
                format!("gamma and beta must have shape [{n}]"),
                &shapes(inputs),
            ));
        }
        Ok(vec![inputs[0].clone()])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let (g, b) = (inputs[1].as_f32()?, inputs[2].as_f32()?);
        let n = g.len();
        let xv = x.as_f32()?;
        let mut y = vec![0.0; xv.len()];
        for (xr, yr) in xv.chunks(n).zip(y.chunks_mut(n)) {
            let mean = xr.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let var = xr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            let rstd = 1.0 / (var + self.eps as f64).sqrt();
            for i in 0..n {
                yr[i] = ((xr[i] as f64 - mean) * rstd * g[i] as f64 + b[i] as f64) as f32;
            }
        }
        Ok(vec![Tensor::from_f32(x.shape(), y)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        lower_norm(cx, inputs, outputs, self.eps, false)
    }
}

/// RMSNorm over the last axis (Llama / Qwen2): `x · rsqrt(mean(x²) + eps) · gamma`, the mean
/// of squares in f32 as transformers' `LlamaRMSNorm` computes it.
#[derive(Debug, Clone)]
pub struct RmsNorm {
    pub eps: f32,
}

impl Op for RmsNorm {
    fn name(&self) -> &'static str {
        "rmsnorm"
    }

    /// Inputs: x [..., n], gamma [n].
    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        expect_inputs("rmsnorm", inputs, 2)?;
        expect_f32("rmsnorm", inputs)?;
        let Some(&n) = inputs[0].shape.last() else {
            return Err(Error::shape(
                "rmsnorm",
                "x must have at least one axis",
                &shapes(inputs),
            ));
        };
        if inputs[1].shape != [n] {
            return Err(Error::shape(
                "rmsnorm",
                format!("gamma must have shape [{n}]"),
                &shapes(inputs),
            ));
        }
        Ok(vec![inputs[0].clone()])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0];
        let g = inputs[1].as_f32()?;
        let n = g.len();
        let xv = x.as_f32()?;
        let mut y = vec![0.0; xv.len()];
        for (xr, yr) in xv.chunks(n).zip(y.chunks_mut(n)) {
            let ms = xr.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / n as f64;
            let r = 1.0 / (ms + self.eps as f64).sqrt();
            for i in 0..n {
                yr[i] = (xr[i] as f64 * r * g[i] as f64) as f32;
            }
        }
        Ok(vec![Tensor::from_f32(x.shape(), y)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        // gamma stands in for the unused beta binding.
        lower_norm(
            cx,
            &[inputs[0], inputs[1], inputs[1]],
            outputs,
            self.eps,
            true,
        )
    }
}

/// Dispatches layernorm_v4.wgsl (CPU-backed adapters, vec4 rows up to [`V4_MAX_N`]) or
/// layernorm.wgsl over inputs x, gamma, beta; `rms` selects RMSNorm.
fn lower_norm(
    cx: &mut Lower<'_>,
    inputs: &[ValueId],
    outputs: &[ValueId],
    eps: f32,
    rms: bool,
) -> Result<()> {
    let info = cx.info(inputs[0]).clone();
    let n = info.shape.last().copied().unwrap_or(1);
    let rows = info.numel() / n;
    let groups = groups_for(cx, rows, 1);
    let dev = cx.device();
    // The register-resident vec4 kernel for CPU-backed adapters with 8-lane subgroups.
    let v4 = dev.is_cpu()
        && dev.has_subgroups()
        && dev.adapter_info().subgroup_min_size == 8
        && dev.adapter_info().subgroup_max_size == 8
        && n.is_multiple_of(4)
        && n <= V4_MAX_N;
    let (shader, mut defs) = if v4 {
        ("layernorm_v4.wgsl", v4_defines(n / 4))
    } else {
        ("layernorm.wgsl", row_reduce(cx))
    };
    defs.push(("RMS", (rms as u32).to_string()));
    cx.dispatch(
        shader,
        &defs,
        vec![
            Arg::Read(inputs[0]),
            Arg::Read(inputs[1]),
            Arg::Read(inputs[2]),
            Arg::Write(outputs[0]),
            Params::new().u32(rows as u32).u32(n as u32).f32(eps).arg(),
        ],
        groups,
    )
}

/// Widest row for layernorm_v4.wgsl (48 vec4 registers per lane).
const V4_MAX_N: usize = 1536;

/// Generated parts of layernorm_v4.wgsl for rows of `nv` vec4.
pub(crate) fn v4_defines(nv: usize) -> Vec<(&'static str, String)> {
    let per_lane = nv.div_ceil(8);
    let (mut loads, mut sums, mut vars, mut stores) =
        (String::new(), String::new(), String::new(), String::new());
    for j in 0..per_lane {
        let c = format!("c{j}");
        let _ = writeln!(loads, "    let {c} = {}u + li;", 8 * j);
        if 8 * (j + 1) <= nv {
            let _ = writeln!(loads, "    let x{j} = x[base + {c}];");
        } else {
            // The last vec4s of the row: clamp the address, zero the value.
            let _ = writeln!(
                loads,
                "    let x{j} = select(vec4<f32>(0.0), x[base + min({c}, NV - 1u)], {c} < NV);"
            );
        }
        let _ = writeln!(sums, "    s = s + dot(x{j}, vec4<f32>(inv_n));");
        if 8 * (j + 1) <= nv {
            let _ = writeln!(vars, "    let d{j} = x{j} - mean;");
        } else {
            let _ = writeln!(
                vars,
                "    let d{j} = select(vec4<f32>(0.0), x{j} - mean, {c} < NV);"
            );
        }
        let _ = writeln!(vars, "    v = v + dot(d{j}, d{j});");
        let _ = writeln!(stores, "    put(base, {c}, d{j}, rstd);");
    }
    vec![
        ("NV", nv.to_string()),
        ("LOADS", loads),
        ("SUMS", sums),
        ("VARS", vars),
        ("STORES", stores),
    ]
}

impl Graph {
    pub fn layernorm(
        &mut self,
        x: ValueId,
        gamma: ValueId,
        beta: ValueId,
        eps: f32,
    ) -> Result<ValueId> {
        self.node1(LayerNorm { eps }, &[x, gamma, beta])
    }

    /// RMSNorm of `x` over its last axis with weight `gamma`.
    pub fn rmsnorm(&mut self, x: ValueId, gamma: ValueId, eps: f32) -> Result<ValueId> {
        self.node1(RmsNorm { eps }, &[x, gamma])
    }
}
