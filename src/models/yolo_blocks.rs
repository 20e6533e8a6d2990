//! The building blocks of ultralytics detectors: `Conv` (conv + folded BatchNorm + SiLU in
//! one kernel; grouped / depthwise when its weight says so), `C2f` (YOLOv8) and `C3k2`
//! (YOLO11: a C2f whose blocks are bottlenecks or `C3k`), YOLO11's `C2PSA` attention block,
//! the Detect head's branches and the Segment head's mask prototypes (`Proto`), loaded by their
//! `state_dict` names.

use super::nn::{Linear, Vars};
use crate::error::{Error, Result};
use crate::graph::{Constant, Graph, ValueId};
use crate::ops::conv2d::Conv2d;
use crate::ops::{Act, Layout};
use crate::tensor::Tensor;
use std::sync::Arc;

/// BatchNorm epsilon of ultralytics' Conv blocks.
const BN_EPS: f64 = 1e-3;
/// DFL bins per box side.
pub(crate) const REG_MAX: usize = 16;

/// A conv with its bias (BatchNorm folded in, or the plain bias of a Detect output conv).
#[derive(Clone)]
pub(crate) struct Conv {
    w: Arc<Constant>,
    b: Arc<Constant>,
}

/// The weight of a conv at `vb` (`name`), which must be 4-D.
fn conv_weight(vb: &Vars, name: &str) -> Result<Tensor> {
    let w = vb.tensor_as_stored(name)?;
    match w.shape().len() {
        4 => Ok(w),
        _ => Err(vb.error(format!(
            "tensor '{}' must be 4-D, got {:?}",
            vb.key(name),
            w.shape()
        ))),
    }
}

impl Conv {
    /// ultralytics `Conv` (conv + BatchNorm) at `vb`, folded: w' = w·γ/√(σ²+ε),
    /// b' = β − μ·γ/√(σ²+ε).
    pub(crate) fn load_bn(vb: &Vars) -> Result<Conv> {
        let cw = conv_weight(vb, "conv.weight")?;
        let s = cw.shape().to_vec();
        let (o, bn) = (s[0], vb.pp("bn"));
        let [g, beta, mean, var] =
            ["weight", "bias", "running_mean", "running_var"].map(|n| bn.tensor(n, &[o]));
        let (g, beta, mean, var) = (g?, beta?, mean?, var?);
        let (g, beta, mean, var) = (g.as_f32()?, beta.as_f32()?, mean.as_f32()?, var.as_f32()?);
        // A variance is never negative: a file with one is corrupt (and √ of it is NaN).
        if let Some(i) = var.iter().position(|v| !(*v >= 0.0 && v.is_finite())) {
            return Err(Error::Storage {
                tensor: bn.key("running_var"),
                msg: format!(
                    "channel {i} has variance {}; a BatchNorm variance is finite and >= 0",
                    var[i]
                ),
            });
        }
        let per = s[1] * s[2] * s[3];
        let mut wv = cw.as_f32()?.to_vec();
        let mut bv = vec![0.0f32; o];
        for oc in 0..o {
            let scale = g[oc] as f64 / (var[oc] as f64 + BN_EPS).sqrt();
            for v in &mut wv[oc * per..(oc + 1) * per] {
                *v = (*v as f64 * scale) as f32;
            }
            bv[oc] = (beta[oc] as f64 - mean[oc] as f64 * scale) as f32;
        }
        Ok(Conv {
            w: Constant::new(vb.key("conv.weight (BN folded)"), Tensor::from_f32(&s, wv)?),
            b: Constant::new(vb.key("bias (BN folded)"), Tensor::from_f32(&[o], bv)?),
        })
    }

    /// A plain `nn.Conv2d` with bias (the last conv of each Detect branch).
    pub(crate) fn load_plain(vb: &Vars) -> Result<Conv> {
        let cw = conv_weight(vb, "weight")?;
        let o = cw.shape()[0];
        Ok(Conv {
            w: Constant::new(vb.key("weight"), cw),
            b: vb.param("bias", &[o])?,
        })
    }

    pub(crate) fn out_channels(&self) -> usize {
        self.w.tensor().shape()[0]
    }

    /// `act(conv(x) + b) + residual`, padding k/2.
    pub(crate) fn forward(
        &self,
        g: &mut Graph,
        x: ValueId,
        stride: usize,
        act: Act,
    ) -> Result<ValueId> {
        self.forward_res(g, x, stride, act, None)
    }

    fn forward_res(
        &self,
        g: &mut Graph,
        x: ValueId,
        stride: usize,
        act: Act,
        res: Option<ValueId>,
    ) -> Result<ValueId> {
        let ws = self.w.tensor().shape();
        let (k, per_group) = (ws[2], ws[1]);
        // Grouped when the weight sees fewer input channels than x has (DWConv: one each).
        let c_in = g.shape(x)[1];
        if per_group == 0 || !c_in.is_multiple_of(per_group) {
            return Err(Error::Graph(format!(
                "conv {}: {c_in} input channels are not groups of {per_group}",
                self.w.name()
            )));
        }
        let op = Conv2d {
            stride: [stride, stride],
            padding: [k / 2, k / 2],
            groups: c_in / per_group,
            act,
            ..Default::default()
        };
        let (w, b) = (g.constant(&self.w)?, g.constant(&self.b)?);
        g.conv2d(op, x, w, Some(b), res)
    }
}

/// `Bottleneck`: `cv2(cv1(x))`, plus x when it has a shortcut.
type Bottleneck = (Conv, Conv);

fn bottleneck(vb: &Vars) -> Result<Bottleneck> {
    Ok((Conv::load_bn(&vb.pp("cv1"))?, Conv::load_bn(&vb.pp("cv2"))?))
}

fn run_bottleneck(g: &mut Graph, x: ValueId, b: &Bottleneck, shortcut: bool) -> Result<ValueId> {
    let t = b.0.forward(g, x, 1, Act::Silu)?;
    b.1.forward_res(g, t, 1, Act::Silu, shortcut.then_some(x))
}

/// YOLO11's `C3k`: `cv3(cat(bottlenecks(cv1(x)), cv2(x)))`.
pub(crate) struct C3k {
    cv1: Conv,
    cv2: Conv,
    cv3: Conv,
    m: Vec<Bottleneck>,
}

/// One block of a C2f / C3k2 chain.
enum Block {
    Bottleneck(Bottleneck),
    C3k(C3k),
}

impl Block {
    fn load(vb: &Vars) -> Result<Block> {
        if !vb.contains("cv3.conv.weight") {
            return Ok(Block::Bottleneck(bottleneck(vb)?));
        }
        let mut m = Vec::new();
        while vb.contains(&format!("m.{}.cv1.conv.weight", m.len())) {
            m.push(bottleneck(&vb.pp(format!("m.{}", m.len())))?);
        }
        Ok(Block::C3k(C3k {
            cv1: Conv::load_bn(&vb.pp("cv1"))?,
            cv2: Conv::load_bn(&vb.pp("cv2"))?,
            cv3: Conv::load_bn(&vb.pp("cv3"))?,
            m,
        }))
    }

    fn forward(&self, g: &mut Graph, x: ValueId, shortcut: bool) -> Result<ValueId> {
        match self {
            Block::Bottleneck(b) => run_bottleneck(g, x, b, shortcut),
            Block::C3k(c) => {
                let mut a = c.cv1.forward(g, x, 1, Act::Silu)?;
                for b in &c.m {
                    a = run_bottleneck(g, a, b, shortcut)?;
                }
                let b = c.cv2.forward(g, x, 1, Act::Silu)?;
                let cat = g.concat(&[a, b], 1)?;
                c.cv3.forward(g, cat, 1, Act::Silu)
            }
        }
    }
}

/// C2f (and YOLO11's C3k2): cv1, split in halves, a chain of blocks (bottlenecks, or C3k),
/// each with residuals when `shortcut`, concat, cv2.
pub(crate) struct C2f {
    cv1: Conv,
    cv2: Conv,
    m: Vec<Block>,
    shortcut: bool,
}

impl C2f {
    pub(crate) fn load(vb: &Vars, shortcut: bool) -> Result<C2f> {
        let mut m = Vec::new();
        while vb.contains(&format!("m.{}.cv1.conv.weight", m.len())) {
            m.push(Block::load(&vb.pp(format!("m.{}", m.len())))?);
        }
        if m.is_empty() {
            let p = vb.key("m.0.cv1.conv.weight");
            return Err(vb.error(format!(
                "C2f block {} has no bottlenecks ({p} missing)",
                vb.key("").trim_end_matches('.')
            )));
        }
        Ok(C2f {
            cv1: Conv::load_bn(&vb.pp("cv1"))?,
            cv2: Conv::load_bn(&vb.pp("cv2"))?,
            m,
            shortcut,
        })
    }

    pub(crate) fn forward(&self, g: &mut Graph, x: ValueId) -> Result<ValueId> {
        let y = self.cv1.forward(g, x, 1, Act::Silu)?;
        let c = g.shape(y)[1] / 2;
        let halves = g.split(y, 1, &[c, c])?;
        let (mut outs, mut last) = (halves.clone(), halves[1]);
        for b in &self.m {
            last = b.forward(g, last, self.shortcut)?;
            outs.push(last);
        }
        let cat = g.concat(&outs, 1)?;
        self.cv2.forward(g, cat, 1, Act::Silu)
    }
}

/// One Detect branch: SiLU Convs, then the plain output conv (last). YOLOv8's have two Convs;
/// YOLO11's class branches have (DWConv, Conv) pairs in their place.
pub(crate) type Branch = Vec<Conv>;

pub(crate) fn branch(vb: &Vars) -> Result<Branch> {
    let mut convs = Vec::with_capacity(5);
    for i in 0..2 {
        if vb.contains(&format!("{i}.conv.weight")) {
            convs.push(Conv::load_bn(&vb.pp(i))?);
        } else {
            convs.push(Conv::load_bn(&vb.pp(format!("{i}.0")))?);
            convs.push(Conv::load_bn(&vb.pp(format!("{i}.1")))?);
        }
    }
    convs.push(Conv::load_plain(&vb.pp(2))?);
    Ok(convs)
}

pub(crate) fn run_branch(g: &mut Graph, x: ValueId, b: &Branch) -> Result<ValueId> {
    let (last, convs) = b.split_last().expect("a branch has its output conv");
    let mut t = x;
    for c in convs {
        t = c.forward(g, t, 1, Act::Silu)?;
    }
    last.forward(g, t, 1, Act::None)
}

/// YOLO11's `C2PSA`: cv1 into halves (a, b), b through PSA blocks (attention, then a 2-conv
/// feed-forward, each with a residual), cv2(cat(a, b)).
pub(crate) struct C2psa {
    cv1: Conv,
    cv2: Conv,
    m: Vec<Psa>,
}

/// One `PSABlock`: multi-head attention over the pixels (`qkv`, `pe` on V, `proj`) and `ffn`.
struct Psa {
    qkv: Conv,
    pe: Conv,
    proj: Conv,
    ffn: (Conv, Conv),
}

impl C2psa {
    pub(crate) fn load(vb: &Vars) -> Result<C2psa> {
        let mut m = Vec::new();
        while vb.contains(&format!("m.{}.attn.qkv.conv.weight", m.len())) {
            let p = vb.pp(format!("m.{}", m.len()));
            let (a, f) = (p.pp("attn"), p.pp("ffn"));
            m.push(Psa {
                qkv: Conv::load_bn(&a.pp("qkv"))?,
                pe: Conv::load_bn(&a.pp("pe"))?,
                proj: Conv::load_bn(&a.pp("proj"))?,
                ffn: (Conv::load_bn(&f.pp(0))?, Conv::load_bn(&f.pp(1))?),
            });
        }
        if m.is_empty() {
            return Err(vb.error(format!(
                "C2PSA block {} has no PSA blocks",
                vb.key("").trim_end_matches('.')
            )));
        }
        Ok(C2psa {
            cv1: Conv::load_bn(&vb.pp("cv1"))?,
            cv2: Conv::load_bn(&vb.pp("cv2"))?,
            m,
        })
    }

    pub(crate) fn forward(&self, g: &mut Graph, x: ValueId) -> Result<ValueId> {
        let y = self.cv1.forward(g, x, 1, Act::Silu)?;
        let c = g.shape(y)[1] / 2;
        let halves = g.split(y, 1, &[c, c])?;
        let mut b = halves[1];
        for p in &self.m {
            let a = p.attention(g, b)?;
            let b1 = p.proj.forward_res(g, a, 1, Act::None, Some(b))?;
            let f = p.ffn.0.forward(g, b1, 1, Act::Silu)?;
            b = p.ffn.1.forward_res(g, f, 1, Act::None, Some(b1))?;
        }
        let cat = g.concat(&[halves[0], b], 1)?;
        self.cv2.forward(g, cat, 1, Act::Silu)
    }
}

impl Psa {
    /// ultralytics `Attention` before `proj`: `num_heads = max(c / 64, 1)` heads of `c / nh`
    /// channels; per head the qkv conv's channels are q (key_dim = head_dim / 2), k (key_dim),
    /// v (head_dim); softmax(q·k · key_dim^-½) over the pixels weights V, and the depthwise
    /// `pe` of V is added. Q and K are zero-padded to head_dim so the fused attention op (one
    /// head size) runs it; the zeros add nothing to q·k.
    fn attention(&self, g: &mut Graph, x: ValueId) -> Result<ValueId> {
        let s = g.shape(x).to_vec();
        let (b, c, h, w) = (s[0], s[1], s[2], s[3]);
        let (nh, n) = ((c / 64).max(1), h * w);
        let (hd, kd) = (c / nh, c / nh / 2);
        if hd * nh != c || kd == 0 || self.qkv.out_channels() != 2 * c {
            return Err(Error::Graph(format!(
                "PSA attention: {c} channels in {nh} heads need a qkv conv of {} outputs, not {}",
                2 * c,
                self.qkv.out_channels()
            )));
        }
        let qkv = self.qkv.forward(g, x, 1, Act::None)?; // [b, 2c, h, w]
        let flat = g.reshape(qkv, &[b, 2 * c, n])?;
        let rows = g.permute(flat, &[0, 2, 1])?; // [b, n, 2c]
        let zeros = Constant::new(
            "psa.zero_pad",
            Tensor::from_f32(&[1, 1, hd - kd], vec![0.0; hd - kd])?,
        );
        let z = g.constant(&zeros)?;
        let z = g.expand(z, &[b, n, hd - kd])?;
        let (mut q, mut k, mut v, mut v_planes) = (vec![], vec![], vec![], vec![]);
        for head in 0..nh {
            let o = head * (2 * kd + hd);
            q.extend([g.slice(rows, 2, o, o + kd)?, z]);
            k.extend([g.slice(rows, 2, o + kd, o + 2 * kd)?, z]);
            v.push(g.slice(rows, 2, o + 2 * kd, o + 2 * kd + hd)?);
            v_planes.push(g.slice(qkv, 1, o + 2 * kd, o + 2 * kd + hd)?);
        }
        let (q, k, v) = (g.concat(&q, 2)?, g.concat(&k, 2)?, g.concat(&v, 2)?);
        let mut op = crate::ops::Attention::new(nh, hd);
        op.scale = 1.0 / (kd as f32).sqrt();
        let a = g.attention(op, q, k, v, None, None)?; // [b, n, c], channel = head·hd + d
        let a = g.permute(a, &[0, 2, 1])?;
        let a = g.reshape(a, &[b, c, h, w])?;
        let vp = g.concat(&v_planes, 1)?;
        self.pe.forward_res(g, vp, 1, Act::None, Some(a))
    }
}

/// The Segment head's `Proto`: Conv 3x3, a 2x2 stride-2 transposed conv (2x upsampling), Conv
/// 3x3, Conv 1x1 to the mask prototypes.
pub(crate) struct Proto {
    cv1: Conv,
    up: Linear,
    cv2: Conv,
    cv3: Conv,
}

impl Proto {
    pub(crate) fn load(vb: &Vars) -> Result<Proto> {
        let w = vb.pp("upsample").tensor_as_stored("weight")?;
        let s = w.shape().to_vec();
        if s.len() != 4 || s[2] != 2 || s[3] != 2 {
            return Err(vb.error(format!(
                "{} must be a 2x2 ConvTranspose2d weight [in, out, 2, 2], got {s:?}",
                vb.pp("upsample").key("weight")
            )));
        }
        let (ci, co) = (s[0], s[1]);
        // ConvTranspose2d(k=2, s=2): every input pixel writes its own 2x2 output block, so it
        // is a matmul to (o, dy, dx) columns: W'[(o, dy, dx), c] = W[c, o, dy, dx].
        let v = w.to_f32_vec();
        let mut t = vec![0.0f32; ci * co * 4];
        for c in 0..ci {
            for j in 0..co * 4 {
                t[j * ci + c] = v[c * co * 4 + j];
            }
        }
        let b = vb.pp("upsample").tensor("bias", &[co])?;
        let b4: Vec<f32> = b.as_f32()?.iter().flat_map(|&x| [x; 4]).collect();
        let key = vb.pp("upsample").key("weight");
        Ok(Proto {
            cv1: Conv::load_bn(&vb.pp("cv1"))?,
            up: Linear {
                w: Constant::new(
                    format!("{key} (as a matmul)"),
                    Tensor::from_f32(&[co * 4, ci], t)?,
                ),
                b: Some(Constant::new(
                    vb.pp("upsample").key("bias"),
                    Tensor::from_f32(&[co * 4], b4)?,
                )),
                layout: Layout::NxK,
            },
            cv2: Conv::load_bn(&vb.pp("cv2"))?,
            cv3: Conv::load_bn(&vb.pp("cv3"))?,
        })
    }

    /// P3 features [b, c, h, w] → mask prototypes [b, nm, 2h, 2w].
    pub(crate) fn forward(&self, g: &mut Graph, x: ValueId) -> Result<ValueId> {
        let x = self.cv1.forward(g, x, 1, Act::Silu)?;
        let s = g.shape(x).to_vec();
        let (b, c, h, w) = (s[0], s[1], s[2], s[3]);
        let co = self.up.w.tensor().shape()[0] / 4;
        let rows = g.reshape(x, &[b, c, h * w])?;
        let rows = g.permute(rows, &[0, 2, 1])?;
        let y = self.up.forward(g, rows)?; // [b, h·w, (o, dy, dx)]
        let y = g.reshape(y, &[b, h, w, co, 2, 2])?;
        let y = g.permute(y, &[0, 3, 1, 4, 2, 5])?; // [b, o, h, dy, w, dx]
        let y = g.reshape(y, &[b, co, 2 * h, 2 * w])?;
        let y = self.cv2.forward(g, y, 1, Act::Silu)?;
        self.cv3.forward(g, y, 1, Act::Silu)
    }

    /// Prototype channels.
    pub(crate) fn masks(&self) -> usize {
        self.cv3.out_channels()
    }
}
