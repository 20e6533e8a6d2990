//! Matmul: C = act(A · B + bias) + residual, batched, B in either layout.
//!
//! GPU variants: `Tiled` and `Reg` (`buffer.rs`: storage buffers only, the portable set) and
//! `Texture` (`texture.rs`: texture-tiled with subgroup broadcasts, constant B only; by far the
//! fastest on CPU-backed adapters such as lavapipe), and `TextureWide`, its one-row (GEMV)
//! kernel with 4 column blocks per workgroup (faster for f16 and q8 weights there, slower for
//! f32: chosen by measurement). The variant is forced by the op or the
//! device's kernel policy, else taken from the tuning cache (measured by `tune.rs`), else a
//! per-adapter default.

mod buffer;
mod cpu;
pub(crate) mod texture;
mod tune;

use super::{check_epilogue, epilogue_data, expect_f32, expect_inputs, Act};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::graph::{Graph, Lower, Op, Tunable, ValueId};
use crate::tensor::{DType, Tensor, ValueInfo};

/// A matmul kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatmulVariant {
    /// Shared-memory tiled, 64x64 per workgroup.
    Tiled,
    /// Register-blocked, vec4 B.
    Reg,
    /// Texture-tiled with subgroup broadcasts (constant B); GEMV kernel for one row.
    Texture,
    /// The texture GEMV (one row only) with 4 column blocks of 64 per workgroup.
    TextureWide,
}

impl MatmulVariant {
    pub const ALL: [MatmulVariant; 4] = [
        MatmulVariant::Tiled,
        MatmulVariant::Reg,
        MatmulVariant::Texture,
        MatmulVariant::TextureWide,
    ];
    pub fn name(self) -> &'static str {
        match self {
            MatmulVariant::Tiled => "tiled",
            MatmulVariant::Reg => "reg",
            MatmulVariant::Texture => "texture",
            MatmulVariant::TextureWide => "texture-wide",
        }
    }

    /// Whether this kernel can run an (m, k, n) problem on `device` (`constant_b`: B is a
    /// weight, not a computed value).
    pub fn supports(self, device: &Device, m: usize, k: usize, n: usize, constant_b: bool) -> bool {
        match self {
            MatmulVariant::Tiled | MatmulVariant::Reg => true,
            MatmulVariant::Texture => constant_b && texture::supported(device, m, k, n),
            MatmulVariant::TextureWide => {
                m == 1 && constant_b && texture::supported(device, m, k, n)
            }
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }

    /// The choice when nothing was measured: the texture kernel on CPU-backed adapters (when
    /// it can run the problem), else the register kernel there; the tiled kernel on GPUs.
    fn default_for(device: &Device, m: usize, k: usize, n: usize, constant_b: bool) -> Self {
        if !device.is_cpu() {
            MatmulVariant::Tiled
        } else if MatmulVariant::Texture.supports(device, m, k, n, constant_b) {
            MatmulVariant::Texture
        } else {
            MatmulVariant::Reg
        }
    }
}

/// How B is laid out in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Layout {
    /// [K, N]: `x · B` (GPT-2's Conv1D weights, a plain matmul).
    #[default]
    KxN,
    /// [N, K]: `x · Bᵀ` (`nn.Linear.weight`).
    NxK,
}

/// The fused epilogue of a matmul: `act(x · w + bias) + residual`, every part optional.
#[derive(Clone, Copy, Debug, Default)]
pub struct Epilogue {
    pub bias: Option<ValueId>,
    pub act: Act,
    /// Added after the activation (output-shaped).
    pub residual: Option<ValueId>,
}

impl Epilogue {
    /// `+ bias`.
    pub fn bias(bias: ValueId) -> Self {
        Epilogue {
            bias: Some(bias),
            ..Default::default()
        }
    }
    /// Then `act(..)`.
    pub fn then_act(self, act: Act) -> Self {
        Epilogue { act, ..self }
    }
    /// Then `+ residual`.
    pub fn plus(self, residual: ValueId) -> Self {
        Epilogue {
            residual: Some(residual),
            ..self
        }
    }
}

/// The matmul op. Inputs: A, B, then a bias [N] if `bias`, then a residual if `residual`.
#[derive(Debug, Clone, Default)]
pub struct Matmul {
    pub layout: Layout,
    pub act: Act,
    /// A bias [N] input follows B.
    pub bias: bool,
    /// A residual input (output-shaped) follows, added after the activation.
    pub residual: bool,
    /// Forces a kernel; `None` lets the policy, the tuning cache or the default decide.
    pub variant: Option<MatmulVariant>,
}

/// Problem geometry after folding batch dimensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub(crate) batch: usize,
    pub(crate) m: usize,
    pub(crate) k: usize,
    pub(crate) n: usize,
    pub(crate) b_batched: bool,
}

impl Matmul {
    pub(crate) fn dims(&self, a: &[usize], b: &[usize]) -> Result<(Dims, Vec<usize>)> {
        let bad = |msg: &str| Err(Error::shape("matmul", msg.to_string(), &[a, b]));
        if a.len() < 2 || b.len() < 2 {
            return bad("A and B need rank >= 2");
        }
        let (m, k) = (a[a.len() - 2], a[a.len() - 1]);
        let (kb, n) = match self.layout {
            Layout::NxK => (b[b.len() - 1], b[b.len() - 2]),
            Layout::KxN => (b[b.len() - 2], b[b.len() - 1]),
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

    /// The kernel for this problem on `cx`'s device: forced by the op, else forced by the
    /// policy (when it can run the problem), else the tuned choice, else the default.
    fn choose(&self, cx: &Lower<'_>, d: Dims, b: (bool, DType)) -> Result<MatmulVariant> {
        let (constant_b, b_dtype) = b;
        let dev = cx.device();
        if let Some(v) = self.variant {
            return Ok(v);
        }
        if let Some(name) = dev.policy().forced("matmul") {
            let v = MatmulVariant::parse(name).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown matmul variant '{name}' (WGPU_INFER_MATMUL: tiled, reg, texture, texture-wide)"
                ))
            })?;
            if v.supports(dev, d.m, d.k, d.n, constant_b) {
                return Ok(v);
            }
        }
        if let Some(v) = dev
            .tuning()
            .variant(&tune::key(dev, d, constant_b, b_dtype))
            .and_then(MatmulVariant::parse)
            .filter(|v| v.supports(dev, d.m, d.k, d.n, constant_b))
        {
            return Ok(v);
        }
        Ok(MatmulVariant::default_for(dev, d.m, d.k, d.n, constant_b))
    }
}

impl Op for Matmul {
    fn name(&self) -> &'static str {
        "matmul"
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        let want = 2 + self.bias as usize + self.residual as usize;
        expect_inputs("matmul", inputs, want)?;
        // B may be f16 or q8 (weights stored in less precision; arithmetic stays f32).
        let mut f32_inputs: Vec<&ValueInfo> = inputs.to_vec();
        if matches!(inputs[1].dtype, DType::F16 | DType::Q8) {
            f32_inputs.remove(1);
        }
        expect_f32("matmul", &f32_inputs)?;
        let (d, out) = self.dims(&inputs[0].shape, &inputs[1].shape)?;
        check_epilogue("matmul", inputs, (self.bias, self.residual), d.n, &out)?;
        Ok(vec![ValueInfo::f32(&out)])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let (d, out) = self.dims(inputs[0].shape(), inputs[1].shape())?;
        let a = inputs[0].as_f32()?;
        let b = inputs[1].f32_cow();
        let (bias, res) = epilogue_data(inputs, (self.bias, self.residual))?;
        let (m, k, n) = (d.m, d.k, d.n);
        let mut c = vec![0.0f32; d.batch * m * n];
        for bi in 0..d.batch {
            let bb = if d.b_batched { bi * k * n } else { 0 };
            let b_b = &b[bb..bb + k * n];
            let a_b = &a[bi * m * k..(bi + 1) * m * k];
            let c_b = &mut c[bi * m * n..(bi + 1) * m * n];
            match self.layout {
                Layout::NxK => cpu::gemm_nt(a_b, b_b, c_b, m, k, n),
                Layout::KxN => cpu::gemm_nn(a_b, b_b, c_b, m, k, n),
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
        let shapes2 = [&cx.info(inputs[0]).shape, &cx.info(inputs[1]).shape];
        let (d, _) = self.dims(shapes2[0], shapes2[1])?;
        let constant = cx.constant(inputs[1]).cloned();
        let b_dtype = cx.info(inputs[1]).dtype;
        if constant.is_none() && b_dtype != DType::F32 {
            return Err(Error::shape(
                "matmul",
                format!("an {b_dtype} B must be a constant (weights); cast activations to f32"),
                &[shapes2[0], shapes2[1]],
            ));
        }
        let constant_b = constant.is_some() && !d.b_batched;
        if b_dtype == DType::Q8 && (!constant_b || self.layout != Layout::NxK) {
            return Err(Error::shape(
                "matmul",
                "a q8 B must be an unbatched [N, K] constant (blocks run along K)",
                &[shapes2[0], shapes2[1]],
            ));
        }
        let variant = self.choose(cx, d, (constant_b, b_dtype))?;
        if !variant.supports(cx.device(), d.m, d.k, d.n, constant_b) {
            return Err(Error::shape(
                "matmul",
                format!(
                    "the {} kernel cannot run this problem on this adapter",
                    variant.name()
                ),
                &[&cx.info(inputs[0]).shape, &cx.info(inputs[1]).shape],
            ));
        }
        match (variant, constant) {
            (MatmulVariant::Texture | MatmulVariant::TextureWide, Some(c)) => {
                let trans = self.layout == Layout::NxK;
                let dev = cx.device().clone();
                let key = format!("matmul/texture/{}", trans as u8);
                let packed = c.packed(cx.device(), &key, |t| {
                    texture::pack_b(&dev, c.name(), t, trans)
                })?;
                let bias = self.bias.then(|| inputs[2]);
                let res = self.residual.then(|| inputs[2 + self.bias as usize]);
                texture::lower(
                    cx,
                    inputs[0],
                    packed,
                    bias,
                    res,
                    outputs[0],
                    self.act,
                    (d.m, d.k, d.n),
                    if variant == MatmulVariant::TextureWide {
                        4
                    } else {
                        1
                    },
                )
            }
            (v, c) => buffer::lower(self, v, d, c.as_ref(), cx, inputs, outputs),
        }
    }

    fn flops(&self, inputs: &[&ValueInfo]) -> u64 {
        match self.dims(&inputs[0].shape, &inputs[1].shape) {
            Ok((d, _)) => 2 * (d.batch * d.m * d.k * d.n) as u64,
            Err(_) => 0,
        }
    }

    fn tunables(&self, cx: &Lower<'_>, inputs: &[ValueId]) -> Vec<Tunable> {
        if self.variant.is_some() || cx.device().policy().forced("matmul").is_some() {
            return Vec::new();
        }
        match self.dims(&cx.info(inputs[0]).shape, &cx.info(inputs[1]).shape) {
            Ok((d, _)) => {
                let constant_b = cx.constant(inputs[1]).is_some() && !d.b_batched;
                let dtype = cx.info(inputs[1]).dtype;
                vec![tune::tunable(cx.device(), d, constant_b, dtype)]
            }
            Err(_) => Vec::new(),
        }
    }
}

impl Graph {
    /// `a · b` (B laid out as `layout`), no epilogue.
    pub fn matmul(&mut self, a: ValueId, b: ValueId, layout: Layout) -> Result<ValueId> {
        self.matmul_fused(a, b, layout, Epilogue::default())
    }

    /// `act(a · b + bias) + residual` in one kernel (see [`Epilogue`]).
    pub fn matmul_fused(
        &mut self,
        a: ValueId,
        b: ValueId,
        layout: Layout,
        epilogue: Epilogue,
    ) -> Result<ValueId> {
        let mut inputs = vec![a, b];
        inputs.extend(epilogue.bias);
        inputs.extend(epilogue.residual);
        self.node1(
            Matmul {
                layout,
                act: epilogue.act,
                bias: epilogue.bias.is_some(),
                residual: epilogue.residual.is_some(),
                variant: None,
            },
            &inputs,
        )
    }
}
