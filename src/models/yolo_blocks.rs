//! The building blocks of ultralytics detectors: `Conv` (conv + folded BatchNorm + SiLU in
//! one kernel), `C2f`, and the Detect head's branches, loaded by their `state_dict` names.

use super::nn::Vars;
use crate::error::{Error, Result};
use crate::graph::{Constant, Graph, ValueId};
use crate::ops::conv2d::Conv2d;
use crate::ops::Act;
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
        let k = self.w.tensor().shape()[2];
        let op = Conv2d {
            stride: [stride, stride],
            padding: [k / 2, k / 2],
            act,
            ..Default::default()
        };
        let (w, b) = (g.constant(&self.w)?, g.constant(&self.b)?);
        g.conv2d(op, x, w, Some(b), res)
    }
}

/// C2f: cv1, split in halves, a chain of bottlenecks (with residuals in the backbone), concat,
/// cv2.
pub(crate) struct C2f {
    cv1: Conv,
    cv2: Conv,
    m: Vec<(Conv, Conv)>,
    shortcut: bool,
}

impl C2f {
    pub(crate) fn load(vb: &Vars, shortcut: bool) -> Result<C2f> {
        let mut m = Vec::new();
        while vb.contains(&format!("m.{}.cv1.conv.weight", m.len())) {
            let b = vb.pp(format!("m.{}", m.len()));
            m.push((Conv::load_bn(&b.pp("cv1"))?, Conv::load_bn(&b.pp("cv2"))?));
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
        for (m1, m2) in &self.m {
            let t = m1.forward(g, last, 1, Act::Silu)?;
            let res = self.shortcut.then_some(last);
            last = m2.forward_res(g, t, 1, Act::Silu, res)?;
            outs.push(last);
        }
        let cat = g.concat(&outs, 1)?;
        self.cv2.forward(g, cat, 1, Act::Silu)
    }
}

/// One Detect branch: two Convs and the plain output conv.
pub(crate) type Branch = [Conv; 3];

pub(crate) fn branch(vb: &Vars) -> Result<Branch> {
    Ok([
        Conv::load_bn(&vb.pp(0))?,
        Conv::load_bn(&vb.pp(1))?,
        Conv::load_plain(&vb.pp(2))?,
    ])
}

pub(crate) fn run_branch(g: &mut Graph, x: ValueId, b: &Branch) -> Result<ValueId> {
    let t = b[0].forward(g, x, 1, Act::Silu)?;
    let t = b[1].forward(g, t, 1, Act::Silu)?;
    b[2].forward(g, t, 1, Act::None)
}
