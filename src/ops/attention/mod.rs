//! Fused multi-head scaled dot-product attention with an optional additive key mask, an
//! optional additive per-head score bias (MPNet's relative position bias), a causal option, and
//! an optional run-time `past` length for KV-cache decoding.
//!
//! Q, K and V are read in place from wider tensors: head `h` of Q is columns
//! `q_col + h*D .. q_col + (h+1)*D` of a [batch, sq, width] tensor (so a fused QKV projection
//! needs no split). Output: [batch, sq, heads*D].
//!
//! GPU variants: `Buffer` (portable), `Keys` (few query rows over an 8-lane subgroup) in
//! `buffer.rs`, and `Texture` (CPU-backed adapters) in `texture.rs`.

pub(crate) mod buffer;
pub(crate) mod texture;

use super::{expect_inputs, shapes};
use crate::error::{Error, Result};
use crate::graph::{Graph, Lower, Op, ValueId};
use crate::tensor::{DType, Tensor, ValueInfo};

/// An attention kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttentionVariant {
    /// `attention.wgsl`: storage buffers only (the portable variant).
    Buffer,
    /// `attention_keys.wgsl`: up to 4 query rows, keys spread over an 8-lane subgroup.
    Keys,
    /// `attention_tex.wgsl`: Q, K, V in textures, subgroup broadcasts (CPU-backed adapters).
    Texture,
}

impl AttentionVariant {
    pub const ALL: [AttentionVariant; 3] = [
        AttentionVariant::Buffer,
        AttentionVariant::Keys,
        AttentionVariant::Texture,
    ];
    pub fn name(self) -> &'static str {
        match self {
            AttentionVariant::Buffer => "buffer",
            AttentionVariant::Keys => "keys",
            AttentionVariant::Texture => "texture",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == s)
    }
}

/// The attention op. Inputs: q, k, v, then a mask [batch, skv] if `mask`, then a bias
/// [heads, sq, skv] if `bias`, then `past` (u32 [1]) if `past`. Build it with [`Attention::new`] and the builder methods.
#[derive(Debug, Clone)]
pub struct Attention {
    pub heads: usize,
    /// Key / value heads (grouped-query attention: query head h reads K/V head
    /// h / (heads / kv_heads)); `heads` for plain multi-head attention.
    pub kv_heads: usize,
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
    /// An additive score bias [heads, sq, skv] (f32, shared by the batch) input follows the
    /// mask: `score(h, i, j) = scale·q·k + mask[b, j] + bias[h, i, j]`.
    pub bias: bool,
    /// A u32 [1] `past` input follows: keys [0, past + sq) are valid, queries start at `past`.
    pub past: bool,
    /// Forces a kernel; `None` lets the policy or the adapter decide.
    pub variant: Option<AttentionVariant>,
}

/// Shapes of one attention problem, as the kernels need them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub(crate) b: usize,
    pub(crate) sq: usize,
    pub(crate) skv: usize,
    /// Rows (batch x seq) and widths of the q, k, v sources.
    pub(crate) rows: [usize; 3],
    pub(crate) widths: [usize; 3],
    /// 4 when every offset and width allows vec4 accesses, else 1.
    pub(crate) w: usize,
}

impl Attention {
    /// Bidirectional attention of `heads` heads of `head_dim`, scale 1/sqrt(head_dim), Q, K and
    /// V each starting at column 0 of its source.
    pub fn new(heads: usize, head_dim: usize) -> Self {
        Attention {
            heads,
            kv_heads: heads,
            head_dim,
            scale: 1.0 / (head_dim.max(1) as f32).sqrt(),
            causal: false,
            q_col: 0,
            k_col: 0,
            v_col: 0,
            mask: false,
            bias: false,
            past: false,
            variant: None,
        }
    }

    /// Self-attention over a fused QKV projection [.., 3·width]: Q, K, V at columns 0,
    /// width, 2·width.
    pub fn fused_qkv(heads: usize, width: usize) -> Self {
        Attention {
            k_col: width,
            v_col: 2 * width,
            ..Self::new(heads, width / heads.max(1))
        }
    }

    /// Grouped-query attention: `kv_heads` key / value heads shared by groups of query heads.
    pub fn grouped(self, kv_heads: usize) -> Self {
        Attention { kv_heads, ..self }
    }

    /// Query heads per key / value head.
    pub(crate) fn group(&self) -> usize {
        self.heads / self.kv_heads.max(1)
    }

    /// Each query sees only keys at or before its position.
    pub fn causal(self) -> Self {
        Attention {
            causal: true,
            ..self
        }
    }

    /// Column offsets of Q, K and V in their sources.
    pub fn columns(self, q: usize, k: usize, v: usize) -> Self {
        Attention {
            q_col: q,
            k_col: k,
            v_col: v,
            ..self
        }
    }

    /// Forces a kernel variant.
    pub fn with_variant(self, v: AttentionVariant) -> Self {
        Attention {
            variant: Some(v),
            ..self
        }
    }

    /// (mask, bias, past) inputs, or the query as an unused stand-in binding.
    pub(crate) fn optional_inputs(&self, inputs: &[ValueId]) -> (ValueId, ValueId, ValueId) {
        let mut i = 3;
        let mut next = |present: bool| {
            if present {
                i += 1;
                inputs[i - 1]
            } else {
                inputs[0]
            }
        };
        let mask = next(self.mask);
        let bias = next(self.bias);
        let past = next(self.past);
        (mask, bias, past)
    }

    pub(crate) fn check(&self, inputs: &[&ValueInfo]) -> Result<(usize, usize, usize)> {
        let want = 3 + self.mask as usize + self.bias as usize + self.past as usize;
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
        if self.heads == 0 || self.head_dim == 0 {
            return bad("heads and head_dim must be positive".into());
        }
        if self.kv_heads == 0 || !self.heads.is_multiple_of(self.kv_heads) {
            return bad(format!(
                "{} query heads are not groups of {} key/value heads",
                self.heads, self.kv_heads
            ));
        }
        let (hd, kvd) = (self.heads * self.head_dim, self.kv_heads * self.head_dim);
        for (t, col, name, hd) in [
            (q, self.q_col, "q", hd),
            (k, self.k_col, "k", kvd),
            (v, self.v_col, "v", kvd),
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
        if self.bias {
            let t = inputs[i];
            if t.shape != [self.heads, sq, skv] || t.dtype != DType::F32 {
                return bad(format!("bias must be f32 [{}, {sq}, {skv}]", self.heads));
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

    /// Whether `v` can run this problem on `cx`'s device.
    fn supports(&self, v: AttentionVariant, cx: &Lower<'_>, geo: &Geometry) -> bool {
        let dev = cx.device();
        match v {
            AttentionVariant::Buffer => true,
            AttentionVariant::Keys => geo.sq <= 4 && dev.has_subgroups_of(8),
            AttentionVariant::Texture => dev.is_cpu() && texture::supported(dev, geo),
        }
    }

    /// Forced by the op, else by the policy (when it can run the problem), else: keys for few
    /// query rows, the texture kernel on CPU-backed adapters, the buffer kernel otherwise.
    fn choose(&self, cx: &Lower<'_>, geo: &Geometry) -> Result<AttentionVariant> {
        if let Some(v) = self.variant {
            return Ok(v);
        }
        if let Some(name) = cx.device().policy().forced("attention") {
            let v = AttentionVariant::parse(name).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "unknown attention variant '{name}' (WGPU_INFER_ATTENTION: buffer, keys, texture)"
                ))
            })?;
            if self.supports(v, cx, geo) {
                return Ok(v);
            }
        }
        Ok([AttentionVariant::Keys, AttentionVariant::Texture]
            .into_iter()
            .find(|&v| self.supports(v, cx, geo))
            .unwrap_or(AttentionVariant::Buffer))
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
        let bias = if self.bias {
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
                        let ko = (bi * skv + j) * kw + self.k_col + h / self.group() * d_n;
                        let mut dot = 0.0f64;
                        for d in 0..d_n {
                            dot += q[qo + d] as f64 * self.scale as f64 * k[ko + d] as f64;
                        }
                        let mut x = dot as f32;
                        if let Some(m) = mask {
                            x += m[bi * skv + j];
                        }
                        if let Some(t) = bias {
                            x += t[(h * sq + qi) * skv + j];
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
                        let vo = (bi * skv + j) * vw + self.v_col + h / self.group() * d_n;
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
        let rows = [0, 1, 2].map(|i| infos[i].shape[0] * infos[i].shape[1]);
        // vec4 accesses when every offset and stride allows them.
        let vec4 = [self.head_dim, self.q_col, self.k_col, self.v_col]
            .iter()
            .chain(widths.iter())
            .all(|x| x % 4 == 0);
        let geo = Geometry {
            b,
            sq,
            skv,
            rows,
            widths,
            w: if vec4 { 4 } else { 1 },
        };
        let v = self.choose(cx, &geo)?;
        if !self.supports(v, cx, &geo) {
            return Err(Error::shape(
                "attention",
                format!(
                    "the {} kernel cannot run this problem on this adapter",
                    v.name()
                ),
                &shapes(&refs),
            ));
        }
        match v {
            AttentionVariant::Texture => texture::lower(self, cx, inputs, outputs, &geo),
            AttentionVariant::Keys => buffer::lower(self, true, cx, inputs, outputs, &geo),
            AttentionVariant::Buffer => buffer::lower(self, false, cx, inputs, outputs, &geo),
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
        self.attention_biased(op, [q, k, v], mask, None, past)
    }

    /// [`Graph::attention`] with an optional additive score bias [heads, sq, skv] as well.
    pub fn attention_biased(
        &mut self,
        op: Attention,
        qkv: [ValueId; 3],
        mask: Option<ValueId>,
        bias: Option<ValueId>,
        past: Option<ValueId>,
    ) -> Result<ValueId> {
        let mut inputs = qkv.to_vec();
        inputs.extend(mask);
        inputs.extend(bias);
        inputs.extend(past);
        let op = Attention {
            mask: mask.is_some(),
            bias: bias.is_some(),
            past: past.is_some(),
            ..op
        };
        self.node1(op, &inputs)
    }
}
