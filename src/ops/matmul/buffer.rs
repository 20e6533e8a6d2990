//! The buffer matmul kernels: `Tiled` (workgroup-memory tiles, the right choice on real GPUs)
//! and `Reg` (register blocking, any B). Neither needs subgroups; both fit WebGPU's default
//! limits, so they are the portable variants. Constant B (weights) is packed once into the
//! kernel's layout, split by columns when it exceeds one binding.

use super::{Dims, Layout, Matmul, MatmulVariant};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::{Arg, Constant, Lower, Packed, PackedChunk, Params, ValueId};
use crate::tensor::{DType, Data, Tensor, Q8_BLOCK};
use half::f16;
use std::sync::Arc;

/// Emits the dispatches of `variant` (Tiled or Reg) for `op` on `inputs`.
pub(super) fn lower(
    op: &Matmul,
    variant: MatmulVariant,
    d: Dims,
    constant: Option<&Arc<Constant>>,
    cx: &mut Lower<'_>,
    inputs: &[ValueId],
    outputs: &[ValueId],
) -> Result<()> {
    let mut defines: Vec<(&str, String)> = vec![
        ("ACT", op.act.code().to_string()),
        ("HAS_BIAS", (op.bias as u32).to_string()),
        ("HAS_RES", (op.residual as u32).to_string()),
    ];
    let shader = match variant {
        MatmulVariant::Tiled => "matmul_tiled.wgsl",
        MatmulVariant::Reg => {
            defines.push(("R", reg_rows(d.m).to_string()));
            "matmul_reg.wgsl"
        }
        MatmulVariant::Texture | MatmulVariant::TextureWide => {
            return Err(Error::Graph(
                "the texture matmul is not a buffer kernel".into(),
            ))
        }
    };
    let bias_v = if op.bias { inputs[2] } else { inputs[0] };
    let res_v = if op.residual {
        inputs[2 + op.bias as usize]
    } else {
        inputs[0]
    };
    // (B argument, column offset, column count) per dispatch.
    let mut pieces: Vec<(Arg, usize, usize)> = Vec::new();
    match constant {
        Some(c) => {
            let trans = op.layout == Layout::NxK;
            let key = format!("matmul/{}/{}", variant.name(), trans as u8);
            let dev = cx.device().clone();
            let packed = c.packed(cx.device(), &key, |t| {
                pack_weight(&dev, c.name(), t, trans, variant)
            })?;
            for (i, ch) in packed.chunks.iter().enumerate() {
                pieces.push((
                    Arg::Packed(packed.clone(), i),
                    ch.meta[0] as usize,
                    ch.meta[1] as usize,
                ));
            }
            match variant {
                MatmulVariant::Tiled => defines.push(("TRANS_B", "0".into())),
                _ => defines.push(("BMODE", "0".into())),
            }
            let bh = match c.tensor().dtype() {
                DType::F16 => 1,
                DType::Q8 => 2,
                _ => 0,
            };
            defines.push(("BH", bh.to_string()));
        }
        None => {
            pieces.push((Arg::Read(inputs[1]), 0, d.n));
            match variant {
                MatmulVariant::Tiled => {
                    defines.push(("TRANS_B", u32::from(op.layout == Layout::NxK).to_string()))
                }
                _ => defines.push((
                    "BMODE",
                    if op.layout == Layout::NxK { "2" } else { "1" }.into(),
                )),
            }
        }
    }
    for (b_arg, n_off, nc) in pieces {
        let params = Params::new()
            .u32(d.m as u32)
            .u32(nc as u32)
            .u32(d.k as u32)
            .u32(d.n as u32)
            .u32(n_off as u32)
            .u32((d.m * d.k) as u32)
            .u32(if d.b_batched { (d.k * d.n) as u32 } else { 0 })
            .u32((d.m * d.n) as u32);
        let groups = match variant {
            MatmulVariant::Tiled => [
                nc.div_ceil(64) as u32,
                d.m.div_ceil(64) as u32,
                d.batch as u32,
            ],
            _ => [
                nc.div_ceil(32) as u32,
                d.m.div_ceil(reg_rows(d.m)) as u32,
                d.batch as u32,
            ],
        };
        cx.dispatch(
            shader,
            &defines,
            vec![
                Arg::Read(inputs[0]),
                b_arg,
                Arg::Read(bias_v),
                Arg::Read(res_v),
                Arg::Write(outputs[0]),
                params.arg(),
            ],
            groups,
        )?;
    }
    Ok(())
}

/// Rows per workgroup of the register-blocked kernel.
fn reg_rows(m: usize) -> usize {
    if m >= 8 {
        8
    } else {
        m.max(1)
    }
}

/// Packs a q8 weight [N, K] for both buffer kernels: per column chunk of W (a multiple of 4)
/// columns, the int8 values as [K][W/4] u32 (4 adjacent columns of one k per word), then the
/// scales as [ceil(K/32)][W] f32. Chunk meta: [first column, column count].
fn pack_q8(dev: &Device, name: &str, t: &Tensor, k: usize, n: usize) -> Result<Packed> {
    let Data::Q8(d) = t.data() else {
        return Err(Error::Graph(format!("weight '{name}' is not q8")));
    };
    let per_row = k.div_ceil(Q8_BLOCK);
    let max_cols = (dev.max_binding() / (k + 4 * per_row) as u64) as usize;
    let cols = (max_cols / 64 * 64).max(64).min(n.div_ceil(64) * 64);
    let mut chunks = Vec::new();
    let mut n0 = 0;
    while n0 < n {
        let nc = cols.min(n - n0);
        let w = nc.div_ceil(4) * 4;
        let mut words = vec![0u32; k * w / 4 + per_row * w];
        for j in 0..nc {
            let col = n0 + j;
            for kk in 0..k {
                let q = d.q[col * k + kk] as u8 as u32;
                words[kk * (w / 4) + j / 4] |= q << (8 * (j % 4));
            }
            for b in 0..per_row {
                words[k * w / 4 + b * w + j] = d.scales[col * per_row + b].to_bits();
            }
        }
        let bytes: &[u8] = bytemuck::cast_slice(&words);
        chunks.push(PackedChunk::upload(
            dev,
            name,
            bytes,
            [n0 as u32, nc as u32, 0, 0],
        ));
        n0 += nc;
    }
    Ok(Packed { chunks })
}

/// Packs a weight ([K, N], or [N, K] when `trans`) into column chunks for `variant`.
/// Chunk meta: [first column, column count].
fn pack_weight(
    dev: &Device,
    name: &str,
    t: &Tensor,
    trans: bool,
    variant: MatmulVariant,
) -> Result<Packed> {
    let s = t.shape();
    if s.len() != 2 {
        return Err(Error::shape("matmul", "weights must be 2-D", &[s]));
    }
    let (k, n) = if trans { (s[1], s[0]) } else { (s[0], s[1]) };
    if t.dtype() == DType::Q8 {
        return pack_q8(dev, name, t, k, n);
    }
    let half = t.dtype() == DType::F16;
    let esize = if half { 2 } else { 4 };
    let w = t.f32_cow();
    let at = |kk: usize, nn: usize| {
        if trans {
            w[nn * k + kk]
        } else {
            w[kk * n + nn]
        }
    };
    // Columns per chunk: as many as fit one binding, a multiple of the kernels' column tile.
    let max_cols = (dev.max_binding() / (k as u64 * esize)) as usize;
    let cols = (max_cols / 64 * 64).max(64).min(n.div_ceil(64) * 64);
    let mut chunks = Vec::new();
    let mut n0 = 0;
    while n0 < n {
        let nc = cols.min(n - n0);
        let width = match variant {
            MatmulVariant::Tiled => nc,
            _ => nc.div_ceil(4) * 4,
        };
        let mut buf = vec![0.0f32; k * width];
        for kk in 0..k {
            for j in 0..nc {
                buf[kk * width + j] = at(kk, n0 + j);
            }
        }
        let bytes: Vec<u8> = if half {
            // Pairs of f16 per u32 (the kernels unpack with unpack2x16float); padded to 4 bytes.
            let mut h: Vec<f16> = buf.iter().map(|&v| f16::from_f32(v)).collect();
            if h.len() % 2 == 1 {
                h.push(f16::ZERO);
            }
            bytemuck::cast_slice(&h).to_vec()
        } else {
            bytemuck::cast_slice(&buf).to_vec()
        };
        chunks.push(PackedChunk::upload(
            dev,
            name,
            &bytes,
            [n0 as u32, nc as u32, 0, 0],
        ));
        n0 += nc;
    }
    Ok(Packed { chunks })
}
