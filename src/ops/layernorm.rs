//! LayerNorm over the last axis with affine weight and bias.

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
        let (shader, defs) = if v4 {
            ("layernorm_v4.wgsl", v4_defines(n / 4))
        } else {
            ("layernorm.wgsl", row_reduce(cx))
        };
        cx.dispatch(
            shader,
            &defs,
            vec![
                Arg::Read(inputs[0]),
                Arg::Read(inputs[1]),
                Arg::Read(inputs[2]),
                Arg::Write(outputs[0]),
                Params::new()
                    .u32(rows as u32)
                    .u32(n as u32)
                    .f32(self.eps)
                    .arg(),
            ],
            groups,
        )
    }
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
}
