//! Matmul: C = act(A · B + bias) + residual, batched, B optionally transposed.
//!
//! GPU kernels: `Tiled` (workgroup-memory tiles, the right choice on real GPUs), `Reg`
//! (register blocking, any B) and `Texture` (texture-tiled, constant B only; by far the fastest
//! on CPU-backed adapters such as lavapipe, see shaders/matmul_cw.wgsl). The choice is made per
//! adapter (see [`crate::tune`]) unless forced. Constant B (weights) is packed once into the
//! chosen kernel's layout; buffer layouts are split by columns when they exceed one binding.

use super::{expect_f32, shapes, Act, Op, Params};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, Packed, PackedChunk, Resource, ValueId};
use crate::tensor::{DType, Tensor, ValueInfo};
use half::f16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulVariant {
    /// Shared-memory tiled, 64x64 per workgroup.
    Tiled,
    /// Register-blocked, vec4 B.
    Reg,
    /// Texture-tiled with subgroup broadcasts (constant B); GEMV kernel for one row.
    Texture,
}

impl MatmulVariant {
    pub const ALL: [MatmulVariant; 3] = [
        MatmulVariant::Tiled,
        MatmulVariant::Reg,
        MatmulVariant::Texture,
    ];
    pub fn name(self) -> &'static str {
        match self {
            MatmulVariant::Tiled => "tiled",
            MatmulVariant::Reg => "reg",
            MatmulVariant::Texture => "texture",
        }
    }

    /// Whether this kernel can run an (m, k, n) problem on `device`.
    pub fn supports(
        self,
        device: &crate::Device,
        m: usize,
        k: usize,
        n: usize,
        constant_b: bool,
    ) -> bool {
        match self {
            MatmulVariant::Tiled | MatmulVariant::Reg => true,
            MatmulVariant::Texture => constant_b && super::matmul_cw::supported(device, m, k, n),
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Matmul {
    /// B is [N, K] (like `nn.Linear.weight`) instead of [K, N].
    pub trans_b: bool,
    pub act: Act,
    /// A bias [N] input follows B.
    pub bias: bool,
    /// A residual input (output-shaped) follows, added after the activation.
    pub residual: bool,
    /// Forces a kernel; `None` lets the adapter's tuning decide.
    pub variant: Option<MatmulVariant>,
}

/// Problem geometry after folding batch dimensions.
#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    b_batched: bool,
}

impl Matmul {
    fn dims(&self, a: &[usize], b: &[usize]) -> Result<(Dims, Vec<usize>)> {
        let bad = |msg: &str| Err(Error::shape("matmul", msg.to_string(), &[a, b]));
        if a.len() < 2 || b.len() < 2 {
            return bad("A and B need rank >= 2");
        }
        let (m, k) = (a[a.len() - 2], a[a.len() - 1]);
        let (kb, n) = if self.trans_b {
            (b[b.len() - 1], b[b.len() - 2])
        } else {
            (b[b.len() - 2], b[b.len() - 1])
        };
        if k != kb {
            return bad(&format!(
                "inner dimensions differ: A has K={k}, B has K={kb}"
            ));
        }
        let a_batch = &a[..a.len() - 2];
        let b_batch = &b[..b.len() - 2];
        if !b_batch.is_empty() && b_batch != a_batch {
            return bad("B's batch dimensions must be absent or equal to A's");
        }
        let batch: usize = a_batch.iter().product();
        let mut out = a_batch.to_vec();
        out.extend([m, n]);
        let b_batched = !b_batch.is_empty();
        // Without a batched B, the batch folds into M: one big GEMM instead of many small ones.
        let d = if b_batched {
            Dims {
                batch,
                m,
                k,
                n,
                b_batched,
            }
        } else {
            Dims {
                batch: 1,
                m: batch * m,
                k,
                n,
                b_batched,
            }
        };
        Ok((d, out))
    }
}

impl Op for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        let want = 2 + self.bias as usize + self.residual as usize;
        super::expect_inputs("matmul", inputs, want)?;
        // B may be f16 (weights stored in half precision; arithmetic stays f32).
        let mut f32_inputs: Vec<&ValueInfo> = inputs.to_vec();
        if inputs[1].dtype == DType::F16 {
            f32_inputs.remove(1);
        }
        expect_f32("matmul", &f32_inputs)?;
        let (d, out) = self.dims(&inputs[0].shape, &inputs[1].shape)?;
        let mut i = 2;
        if self.bias {
            if inputs[i].shape != [d.n] {
                return Err(Error::shape(
                    "matmul",
                    format!("bias must have shape [{}]", d.n),
                    &shapes(inputs),
                ));
            }
            i += 1;
        }
        if self.residual && inputs[i].shape != out {
            return Err(Error::shape(
                "matmul",
                format!("residual must have the output shape {out:?}"),
                &shapes(inputs),
            ));
        }
        Ok(vec![ValueInfo::f32(&out)])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let (d, out) = self.dims(inputs[0].shape(), inputs[1].shape())?;
        let a = inputs[0].as_f32()?;
        let b = inputs[1].f32_cow();
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
        let (m, k, n) = (d.m, d.k, d.n);
        let mut c = vec![0.0f32; d.batch * m * n];
        for bi in 0..d.batch {
            let bb = if d.b_batched { bi * k * n } else { 0 };
            let b_b = &b[bb..bb + k * n];
            let a_b = &a[bi * m * k..(bi + 1) * m * k];
            let c_b = &mut c[bi * m * n..(bi + 1) * m * n];
            if self.trans_b {
                gemm_nt(a_b, b_b, c_b, m, k, n);
            } else {
                gemm_nn(a_b, b_b, c_b, m, k, n);
            }
        }
        for (idx, v) in c.iter_mut().enumerate() {
            let nn = idx % n;
            let mut x = *v;
            if let Some(bias) = bias {
                x += bias[nn];
            }
            x = self.act.apply(x);
            if let Some(r) = res {
                x += r[idx];
            }
            *v = x;
        }
        Ok(vec![Tensor::from_f32(&out, c)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let (d, _) = self.dims(&cx.info(inputs[0]).shape, &cx.info(inputs[1]).shape)?;
        let constant = cx.constant(inputs[1]).cloned();
        if constant.is_none() && cx.info(inputs[1]).dtype == DType::F16 {
            return Err(Error::shape(
                "matmul",
                "an f16 B must be a constant (weights); cast activations to f32",
                &[&cx.info(inputs[0]).shape, &cx.info(inputs[1]).shape],
            ));
        }
        let variant = match self.variant {
            Some(v) => v,
            None => crate::tune::matmul_variant(cx.device(), d.m, d.k, d.n, constant.is_some()),
        };
        if !variant.supports(
            cx.device(),
            d.m,
            d.k,
            d.n,
            constant.is_some() && !d.b_batched,
        ) {
            return Err(Error::shape(
                "matmul",
                format!(
                    "the {} kernel cannot run this problem on this adapter",
                    variant.name()
                ),
                &[&cx.info(inputs[0]).shape, &cx.info(inputs[1]).shape],
            ));
        }
        if variant == MatmulVariant::Texture {
            let c = constant.expect("texture kernel needs a constant B");
            let (trans, dev) = (self.trans_b, cx.device().clone());
            let key = format!("matmul/texture/{}", trans as u8);
            let packed = c.packed(cx.device(), &key, |t| {
                super::matmul_cw::pack_b(&dev, c.name(), t, trans)
            })?;
            let bias = self.bias.then(|| inputs[2]);
            let res = self.residual.then(|| inputs[2 + self.bias as usize]);
            return super::matmul_cw::lower(
                cx,
                inputs[0],
                packed,
                bias,
                res,
                outputs[0],
                self.act,
                (d.m, d.k, d.n),
            );
        }
        let mut defines: Vec<(&str, String)> = vec![
            ("ACT", self.act.code().to_string()),
            ("HAS_BIAS", (self.bias as u32).to_string()),
            ("HAS_RES", (self.residual as u32).to_string()),
        ];
        let shader = match variant {
            MatmulVariant::Tiled => "matmul_tiled.wgsl",
            MatmulVariant::Reg => {
                defines.push(("R", reg_rows(d.m).to_string()));
                "matmul_reg.wgsl"
            }
            MatmulVariant::Texture => unreachable!("lowered above"),
        };
        let bias_v = if self.bias { inputs[2] } else { inputs[0] };
        let res_v = if self.residual {
            inputs[2 + self.bias as usize]
        } else {
            inputs[0]
        };
        // (B argument, column offset, column count) per dispatch.
        let mut pieces: Vec<(Arg, usize, usize)> = Vec::new();
        match &constant {
            Some(c) => {
                let key = format!("matmul/{}/{}", variant.name(), self.trans_b as u8);
                let (trans, dev) = (self.trans_b, cx.device().clone());
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
                let half = c.tensor().dtype() == DType::F16;
                defines.push(("BH", u32::from(half).to_string()));
            }
            None => {
                pieces.push((Arg::Read(inputs[1]), 0, d.n));
                match variant {
                    MatmulVariant::Tiled => {
                        defines.push(("TRANS_B", (self.trans_b as u32).to_string()))
                    }
                    _ => {
                        defines.push(("BMODE", if self.trans_b { "2" } else { "1" }.into()));
                    }
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

    fn flops(&self, inputs: &[&ValueInfo]) -> u64 {
        match self.dims(&inputs[0].shape, &inputs[1].shape) {
            Ok((d, _)) => 2 * (d.batch * d.m * d.k * d.n) as u64,
            Err(_) => 0,
        }
    }
}

/// Rows per workgroup of the register-blocked kernel.
fn reg_rows(m: usize) -> usize {
    if m >= 8 {
        8
    } else {
        m.max(1)
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |t| t.get())
}

/// C[m, n] = A[m, k] · B[k, n], rows split across threads. Plain loops in i-k-j order.
fn gemm_nn(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    let rows_per = m.div_ceil(threads().min(m).max(1)).max(1);
    std::thread::scope(|s| {
        for (t, c_chunk) in c.chunks_mut(rows_per * n).enumerate() {
            let a_chunk = &a[t * rows_per * k..];
            s.spawn(move || {
                for (i, c_row) in c_chunk.chunks_mut(n).enumerate() {
                    let a_row = &a_chunk[i * k..(i + 1) * k];
                    for (kk, &av) in a_row.iter().enumerate() {
                        let b_row = &b[kk * n..(kk + 1) * n];
                        for (cv, &bv) in c_row.iter_mut().zip(b_row) {
                            *cv += av * bv;
                        }
                    }
                }
            });
        }
    });
}

/// Dot product with 8 partial sums (lets the compiler use SIMD without reassociating).
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (a, b) in xr.iter().zip(yr) {
        s += a * b;
    }
    s
}

/// C[m, n] = A[m, k] · B[n, k]ᵀ: one dot product per output, columns split across threads
/// (so a single row, as in decoding, still uses every core).
fn gemm_nt(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    let cols_per = n.div_ceil(threads().min(n).max(1)).max(1);
    let mut parts: Vec<Vec<f32>> = Vec::new();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n.div_ceil(cols_per))
            .map(|t| {
                s.spawn(move || {
                    let (n0, n1) = (t * cols_per, ((t + 1) * cols_per).min(n));
                    let mut out = vec![0.0f32; m * (n1 - n0)];
                    for i in 0..m {
                        let a_row = &a[i * k..(i + 1) * k];
                        for nn in n0..n1 {
                            out[i * (n1 - n0) + nn - n0] = dot(a_row, &b[nn * k..(nn + 1) * k]);
                        }
                    }
                    out
                })
            })
            .collect();
        parts = handles.into_iter().map(|h| h.join().unwrap()).collect();
    });
    for (t, part) in parts.iter().enumerate() {
        let (n0, n1) = (t * cols_per, ((t + 1) * cols_per).min(n));
        for i in 0..m {
            c[i * n + n0..i * n + n1].copy_from_slice(&part[i * (n1 - n0)..(i + 1) * (n1 - n0)]);
        }
    }
}

/// Packs a weight ([K, N], or [N, K] when `trans`) into column chunks for `variant`.
/// Chunk meta: [first column, column count].
fn pack_weight(
    dev: &crate::device::Device,
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
        let buffer = dev.upload(name, &bytes, wgpu::BufferUsages::empty());
        chunks.push(PackedChunk {
            resource: Resource::Buffer {
                buffer,
                size: bytes.len() as u64,
            },
            meta: [n0 as u32, nc as u32, 0, 0],
        });
        n0 += nc;
    }
    Ok(Packed { chunks })
}

impl Graph {
    /// `x · w` for w [K, N] (or [N, K] with `trans_b`), no epilogue.
    pub fn matmul(&mut self, a: ValueId, b: ValueId, trans_b: bool) -> Result<ValueId> {
        self.node1(
            Matmul {
                trans_b,
                ..Default::default()
            },
            &[a, b],
        )
    }

    /// `act(x · w + bias) + residual`, every part optional: one kernel.
    pub fn linear(
        &mut self,
        x: ValueId,
        w: ValueId,
        trans_b: bool,
        bias: Option<ValueId>,
        act: Act,
        residual: Option<ValueId>,
    ) -> Result<ValueId> {
        let mut inputs = vec![x, w];
        inputs.extend(bias);
        inputs.extend(residual);
        self.node1(
            Matmul {
                trans_b,
                act,
                bias: bias.is_some(),
                residual: residual.is_some(),
                variant: None,
            },
            &inputs,
        )
    }
}
