//! YOLOv8 and YOLO11 detection (ultralytics): image → letterbox → backbone/neck/head on the device →
//! decoded boxes and class scores on the device → class-aware NMS on the CPU → boxes in the
//! original image's pixels (see [`super::detect`]).
//!
//! ```text
//! P1 Conv─P2 Conv─C2f─P3 Conv─C2f─P4 Conv─C2f─P5 Conv─C2f─SPPF ─┬───────────────┐
//!                       │            │                          up              │
//!                       │            └──────────── concat ─ C2f ─┬──────┐      │
//!                       │                                       up      │      │
//!                       └────────────────── concat ─ C2f (P3) ─ Conv ─ concat ─ C2f (P4) ─ Conv ─ concat ─ C2f (P5)
//!                                                      └──────────── Detect (DFL boxes, sigmoid scores) ───────┘
//! ```
//! YOLO11 is the same graph with C3k2 blocks in place of C2f (bottlenecks or C3k inside), a
//! C2PSA attention block after SPPF (layer 10, so the neck and head indices shift by one), and
//! depthwise convs in the Detect head's class branches ([`super::yolo_blocks`]).
//! Width and depth (n/s/m/l/x) come from the tensor shapes. BatchNorm is folded into the conv
//! weights at load; every Conv is conv2d + bias + SiLU in one kernel.

#[cfg(feature = "draw")]
pub use super::detect::annotate;
pub use super::detect::{letterbox, to_tensor, DetectOptions, Detection, Letterbox};

use super::family::{FamilyConfig, ModelKind};
use super::files::ModelFiles;
use super::loader::{Folder, Loaded};
use super::nn::Vars;
use super::options::LoadOptions;
use super::runner::Runner;
use super::yolo_blocks::{branch, run_branch, Branch, C2f, C2psa, Conv, Proto, REG_MAX};
use crate::error::{check_finite, Error, Result};
use crate::graph::{Backend, Graph};
use crate::ops::yolo_decode::YoloDecode;
use crate::ops::Act;
use crate::tensor::{DType, Tensor};
use image::RgbImage;
use serde::Deserialize;
use std::sync::Arc;

const STRIDES: [f32; 3] = [8.0, 16.0, 32.0];

/// config.json of a folder written by tools/yolo_to_safetensors.py.
#[derive(Clone, Debug, Deserialize)]
pub struct YoloConfig {
    pub model_type: String,
    pub names: Vec<String>,
}

impl FamilyConfig for YoloConfig {
    const KIND: ModelKind = ModelKind::Yolo;
    fn check(&self) -> std::result::Result<(), String> {
        if !Self::KIND.model_types().contains(&self.model_type.as_str()) {
            return Err(format!(
                "model_type is '{}', expected one of {:?}",
                self.model_type,
                Self::KIND.model_types()
            ));
        }
        if self.names.is_empty() || self.names.len() > 10_000 {
            return Err(format!(
                "'names' must list 1 to 10000 class names, not {}",
                self.names.len()
            ));
        }
        Ok(())
    }
}

/// The network, by ultralytics layer index (`model.N`; YOLO11's index after layer 9 in
/// brackets).
struct YoloWeights {
    /// Strided Convs: layers 0, 1, 3, 5, 7 (backbone) and 16, 19 [17, 20] (neck).
    convs: [Conv; 7],
    /// C2f [C3k2] blocks: layers 2, 4, 6, 8 (backbone) and 12, 15, 18, 21 [13, 16, 19, 22].
    c2f: [C2f; 8],
    /// SPPF (layer 9): cv1, three 5x5 max pools, cv2.
    sppf: (Conv, Conv),
    /// YOLO11's C2PSA (layer 10).
    psa: Option<C2psa>,
    /// Detect (layer 22 [23]): per level, the box branch (cv2) and the class branch (cv3).
    detect: Vec<(Branch, Branch)>,
    /// Segment heads: the prototypes (on P3) and, per level, the mask-coefficient branch (cv4).
    seg: Option<(Proto, Vec<Branch>)>,
}

impl YoloWeights {
    fn load(vb: &Vars, nc: usize, yolo11: bool) -> Result<YoloWeights> {
        let m = vb.pp("model");
        // Layers after SPPF shift by one in YOLO11 (C2PSA is layer 10); its C3k2 blocks all
        // have residual bottlenecks, YOLOv8's neck C2f none.
        let after = |i: usize| i + yolo11 as usize;
        let conv = |i: usize| Conv::load_bn(&m.pp(i));
        let c2f = |i: usize, shortcut| C2f::load(&m.pp(i), shortcut);
        let convs = [
            conv(0)?,
            conv(1)?,
            conv(3)?,
            conv(5)?,
            conv(7)?,
            conv(after(16))?,
            conv(after(19))?,
        ];
        let c2f = [
            c2f(2, true)?,
            c2f(4, true)?,
            c2f(6, true)?,
            c2f(8, true)?,
            c2f(after(12), yolo11)?,
            c2f(after(15), yolo11)?,
            c2f(after(18), yolo11)?,
            c2f(after(21), yolo11)?,
        ];
        let sppf = (
            Conv::load_bn(&m.pp("9.cv1"))?,
            Conv::load_bn(&m.pp("9.cv2"))?,
        );
        let psa = yolo11.then(|| C2psa::load(&m.pp(10))).transpose()?;
        let d = m.pp(after(22));
        let mut detect = Vec::with_capacity(3);
        for l in 0..3 {
            let (bx, cl) = (
                branch(&d.pp(format!("cv2.{l}")))?,
                branch(&d.pp(format!("cv3.{l}")))?,
            );
            let (nb, ncls) = (bx[2].out_channels(), cl[2].out_channels());
            if nb != 4 * REG_MAX || ncls != nc {
                return Err(Error::InvalidArgument(format!(
                    "Detect level {l} has {nb} box and {ncls} class channels; expected {} and {nc} (len(names))",
                    4 * REG_MAX
                )));
            }
            detect.push((bx, cl));
        }
        let seg = if d.contains("proto.cv1.conv.weight") {
            let proto = Proto::load(&d.pp("proto"))?;
            let cv4 = (0..3)
                .map(|l| branch(&d.pp(format!("cv4.{l}"))))
                .collect::<Result<Vec<_>>>()?;
            if let Some(l) = cv4
                .iter()
                .position(|b| b[b.len() - 1].out_channels() != proto.masks())
            {
                return Err(Error::InvalidArgument(format!(
                    "Segment level {l} predicts {} mask coefficients for {} prototypes",
                    cv4[l][cv4[l].len() - 1].out_channels(),
                    proto.masks()
                )));
            }
            Some((proto, cv4))
        } else {
            None
        };
        // The DFL conv is fixed (arange(16)); read it so it is not reported as unexpected.
        let dfl = d.tensor_as_stored("dfl.conv.weight")?;
        if dfl.numel() != REG_MAX {
            return Err(vb.error(format!(
                "{} has {} values, expected {REG_MAX}",
                d.key("dfl.conv.weight"),
                dfl.numel()
            )));
        }
        Ok(YoloWeights {
            convs,
            c2f,
            sppf,
            psa,
            detect,
            seg,
        })
    }
}

/// A loaded YOLOv8 detector. `Send + Sync`.
pub struct Yolo {
    name: String,
    names: Vec<String>,
    w: Arc<Loaded<YoloWeights>>,
    runner: Runner<(usize, usize, usize)>,
    warnings: Vec<String>,
}

impl Yolo {
    /// Loads a folder written by tools/yolo_to_safetensors.py (model.safetensors with the
    /// ultralytics state_dict names, config.json with `model_type` and `names`), in memory or
    /// on disk.
    pub fn from_files(backend: Backend, files: &ModelFiles) -> Result<Yolo> {
        let f: Folder<YoloConfig> = Folder::open(files, &[], "model.0.conv.weight")?;
        let nc = f.config.names.len();
        let opts = LoadOptions::default();
        let yolo11 = f.config.model_type == "yolo11";
        let w = f.load(&opts, &["num_batches_tracked"], |vb| {
            YoloWeights::load(vb, nc, yolo11)
        })?;
        Ok(Yolo {
            name: files.name(),
            names: f.config.names,
            warnings: w.warnings.clone(),
            w,
            runner: Runner::new(backend, 8),
        })
    }

    /// Device memory of the largest plan run so far (weights + activations + I/O), and its
    /// dispatch count.
    pub fn memory_and_dispatches(&self) -> (u64, usize) {
        self.runner.memory_and_dispatches()
    }
    /// Kernels the last forward ran.
    pub fn kernels(&self) -> Vec<String> {
        self.runner.kernels()
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn names(&self) -> &[String] {
        &self.names
    }
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    pub fn backend(&self) -> &Backend {
        self.runner.backend()
    }

    /// The graph a forward of this input shape runs (for inspection and profiling).
    pub fn graph_for(&self, b: usize, h: usize, w: usize) -> Result<Graph> {
        let wt = &self.w;
        let [c0, c1, c3, c5, c7, c16, c19] = &wt.convs;
        let [f2, f4, f6, f8, f12, f15, f18, f21] = &wt.c2f;
        let mut g = Graph::new();
        let x = g.input("images", &[b, 3, h, w], DType::F32)?;
        let g = &mut g;
        let silu = Act::Silu;
        // Backbone.
        let x = c0.forward(g, x, 2, silu)?;
        let x = c1.forward(g, x, 2, silu)?;
        let x = f2.forward(g, x)?;
        let x = c3.forward(g, x, 2, silu)?;
        let p3 = f4.forward(g, x)?;
        let x = c5.forward(g, p3, 2, silu)?;
        let p4 = f6.forward(g, x)?;
        let x = c7.forward(g, p4, 2, silu)?;
        let x = f8.forward(g, x)?;
        // SPPF: three chained 5x5 max pools (padding behaves as -inf).
        let y0 = wt.sppf.0.forward(g, x, 1, silu)?;
        let y1 = g.maxpool2d(y0, 5, 1, 2)?;
        let y2 = g.maxpool2d(y1, 5, 1, 2)?;
        let y3 = g.maxpool2d(y2, 5, 1, 2)?;
        let cat = g.concat(&[y0, y1, y2, y3], 1)?;
        let mut p5 = wt.sppf.1.forward(g, cat, 1, silu)?;
        if let Some(psa) = &wt.psa {
            p5 = psa.forward(g, p5)?;
        }
        // Neck.
        let up = g.upsample_nearest(p5, 2)?;
        let cat = g.concat(&[up, p4], 1)?;
        let n4 = f12.forward(g, cat)?;
        let up = g.upsample_nearest(n4, 2)?;
        let cat = g.concat(&[up, p3], 1)?;
        let out3 = f15.forward(g, cat)?;
        let d = c16.forward(g, out3, 2, silu)?;
        let cat = g.concat(&[d, n4], 1)?;
        let out4 = f18.forward(g, cat)?;
        let d = c19.forward(g, out4, 2, silu)?;
        let cat = g.concat(&[d, p5], 1)?;
        let out5 = f21.forward(g, cat)?;
        // Detect.
        let mut levels = Vec::with_capacity(3);
        for (xl, (bx, cl)) in [out3, out4, out5].into_iter().zip(&wt.detect) {
            let (bv, cv) = (run_branch(g, xl, bx)?, run_branch(g, xl, cl)?);
            levels.push(g.concat(&[bv, cv], 1)?);
        }
        let op = YoloDecode {
            nc: self.names.len(),
            reg: REG_MAX,
            strides: STRIDES,
        };
        let mut y = g.yolo_decode(op, [levels[0], levels[1], levels[2]])?;
        if let Some((proto, cv4)) = &wt.seg {
            // Mask coefficients per anchor after the class scores, as ultralytics' Segment.
            let mut coeffs = Vec::with_capacity(3);
            for (xl, br) in [out3, out4, out5].into_iter().zip(cv4) {
                let c = run_branch(g, xl, br)?;
                let s = g.shape(c).to_vec();
                coeffs.push(g.reshape(c, &[b, s[1], s[2] * s[3]])?);
            }
            let coeffs = g.concat(&coeffs, 2)?;
            y = g.concat(&[y, coeffs], 1)?;
            let p = proto.forward(g, out3)?;
            g.output("protos", p);
        }
        g.output("decoded", y);
        Ok(std::mem::take(g))
    }

    /// Runs the network on a [batch, 3, h, w] tensor (values in [0, 1], h and w multiples of
    /// 32): [batch, 4 + nc, anchors] with (cx, cy, w, h) boxes and sigmoid class scores (and,
    /// for segmentation models, `nm` mask coefficients per anchor after them).
    pub async fn forward_async(&self, images: &Tensor) -> Result<Tensor> {
        Ok(self.forward_all_async(images).await?.0)
    }

    /// [`Yolo::forward_async`] and, for segmentation models, the mask prototypes
    /// [batch, nm, h / 4, w / 4].
    pub async fn forward_all_async(&self, images: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        let s = images.shape();
        let ok = s.len() == 4
            && s[1] == 3
            && s[0] > 0
            && s[2] > 0
            && s[3] > 0
            && s[2].is_multiple_of(32)
            && s[3].is_multiple_of(32);
        if !ok {
            return Err(Error::InvalidArgument(format!(
                "images must be [batch, 3, h, w] with h and w positive multiples of 32, got {s:?}"
            )));
        }
        let (b, h, w) = (s[0], s[2], s[3]);
        let build = || self.graph_for(b, h, w);
        let mut out = self.runner.run((b, h, w), build, &[images]).await?;
        let pred = out.take("decoded")?;
        check_finite(|| "YOLO boxes and class scores".into(), pred.as_f32()?)?;
        let protos = match self.w.seg {
            Some(_) => {
                let p = out.take("protos")?;
                check_finite(|| "YOLO mask prototypes".into(), p.as_f32()?)?;
                Some(p)
            }
            None => None,
        };
        Ok((pred, protos))
    }

    /// Mask coefficients per detection (prototype count) of a segmentation model.
    pub fn masks(&self) -> Option<usize> {
        self.w.seg.as_ref().map(|(p, _)| p.masks())
    }

    /// On the GPU every activation of an `h`x`w` forward must fit one storage binding: checked
    /// before anything runs, naming `imgsz` and the largest size that fits this adapter.
    fn check_fits(&self, imgsz: usize, h: usize, w: usize) -> Result<()> {
        let Some(dev) = self.backend().device() else {
            return Ok(());
        };
        let g = self.graph_for(1, h, w)?;
        let Some(big) = g.largest_activation() else {
            return Ok(());
        };
        let bytes = big.bytes() as u64;
        let limit = dev.max_binding();
        if bytes <= limit {
            return Ok(());
        }
        // Activations scale with the pixel count, so with the square of imgsz.
        let fits = (imgsz as f64 * (limit as f64 / bytes as f64).sqrt()) as usize / 32 * 32;
        Err(Error::InvalidArgument(format!(
            "imgsz {imgsz} letterboxes this image to {w}x{h}, whose largest activation \
             ({:?}, {bytes} bytes) exceeds this adapter's {limit}-byte storage binding \
             limit (max_storage_buffer_binding_size); use imgsz {fits} or less, or the CPU \
             backend",
            big.shape
        )))
    }

    /// ultralytics' LetterBox (see [`letterbox`]).
    pub fn letterbox(img: &RgbImage, imgsz: usize, rect: bool) -> Result<(RgbImage, Letterbox)> {
        letterbox(img, imgsz, rect)
    }

    /// Detections for one decoded prediction [4 + nc (+ nm), anchors] in letterboxed
    /// coordinates (see [`super::detect::postprocess`]); with the prototypes [nm, h/4, w/4] of
    /// a segmentation model, each detection gets its mask (see [`super::masks`]) and, as
    /// ultralytics does, a detection whose mask is empty is dropped.
    pub fn postprocess(
        &self,
        pred: &[f32],
        anchors: usize,
        lb: &Letterbox,
        opts: &DetectOptions,
        protos: Option<&Tensor>,
    ) -> Result<Vec<Detection>> {
        let nm = self.masks().unwrap_or(0);
        let kept = super::detect::nms(pred, anchors, self.names.len(), nm, opts)?;
        match (protos, nm) {
            (Some(p), nm) if nm > 0 => {
                let boxes: Vec<_> = kept.iter().map(|k| (k.anchor, k.lb_box)).collect();
                let masks = super::masks::masks(pred, anchors, self.names.len(), p, &boxes, lb)?;
                kept.iter()
                    .zip(masks)
                    .filter_map(|(k, m)| m.map(|m| (k, m)))
                    .map(|(k, m)| super::detect::detection(k, &self.names, lb, Some(m)))
                    .collect()
            }
            (None, nm) if nm > 0 => Err(Error::InvalidArgument(
                "a segmentation model's predictions need its mask prototypes".into(),
            )),
            _ => kept
                .iter()
                .map(|k| super::detect::detection(k, &self.names, lb, None))
                .collect(),
        }
    }

    /// Detects objects in decoded RGB pixels; detections sorted by score, best first.
    pub async fn detect_async(
        &self,
        img: &RgbImage,
        opts: &DetectOptions,
    ) -> Result<Vec<Detection>> {
        opts.validate()?;
        let (lb_img, lb) = letterbox(img, opts.imgsz, opts.rect)?;
        self.check_fits(opts.imgsz, lb.h as usize, lb.w as usize)?;
        let (pred, protos) = self.forward_all_async(&to_tensor(&lb_img)?).await?;
        let anchors = pred.shape()[2];
        let protos = protos
            .map(|p| {
                let s = p.shape()[1..].to_vec();
                p.reshape(&s)
            })
            .transpose()?;
        self.postprocess(pred.as_f32()?, anchors, &lb, opts, protos.as_ref())
    }
}
