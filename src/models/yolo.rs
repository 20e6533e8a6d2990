//! YOLOv8 detection (ultralytics): image → letterbox → backbone/neck/head on the device →
//! decoded boxes and class scores on the device → class-aware NMS on the CPU → boxes in the
//! original image's pixels.
//!
//! ```text
//! P1 Conv─P2 Conv─C2f─P3 Conv─C2f─P4 Conv─C2f─P5 Conv─C2f─SPPF ─┬───────────────┐
//!                       │            │                          up              │
//!                       │            └──────────── concat ─ C2f ─┬──────┐      │
//!                       │                                       up      │      │
//!                       └────────────────── concat ─ C2f (P3) ─ Conv ─ concat ─ C2f (P4) ─ Conv ─ concat ─ C2f (P5)
//!                                                      └──────────── Detect (DFL boxes, sigmoid scores) ───────┘
//! ```
//! Width and depth (n/s/m/l/x) come from the tensor shapes. BatchNorm is folded into the conv
//! weights at load; every Conv is conv2d + bias + SiLU in one kernel.

use super::{check_dir, require, shared, LoadOptions, Loaded, WeightsKey};
use crate::error::{Error, Result};
use crate::graph::{Backend, Constant, Graph, PlanCache, ValueId};
use crate::imageio::{load_rgb, resize_bilinear_cv2};
use crate::ops::conv2d::Conv2d;
use crate::ops::yolo_decode::YoloDecode;
use crate::ops::Act;
use crate::tensor::{DType, Tensor};
use crate::weights::Weights;
use crate::Device;
use image::RgbImage;
use serde::Deserialize;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// BatchNorm epsilon of ultralytics' Conv blocks.
const BN_EPS: f64 = 1e-3;
/// DFL bins per box side.
const REG_MAX: usize = 16;
const STRIDES: [f32; 3] = [8.0, 16.0, 32.0];
/// Offset per class used to make NMS class-aware (ultralytics' `max_wh`).
const MAX_WH: f32 = 7680.0;

#[derive(Clone, Debug, Deserialize)]
pub struct YoloConfig {
    pub model_type: String,
    pub names: Vec<String>,
}

/// One detection, in the original image's pixels.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Detection {
    pub class_id: usize,
    pub label: String,
    pub score: f32,
    /// [x1, y1, x2, y2]
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

/// `predict` options, with ultralytics' defaults.
#[derive(Clone, Debug)]
pub struct DetectOptions {
    pub conf: f32,
    pub iou: f32,
    /// Letterbox size (a multiple of 32).
    pub imgsz: usize,
    pub max_det: usize,
    /// Minimal rectangle padding (to a multiple of 32) instead of a full square, as ultralytics
    /// does when predicting with a PyTorch checkpoint.
    pub rect: bool,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            conf: 0.25,
            iou: 0.7,
            imgsz: 640,
            max_det: 300,
            rect: true,
        }
    }
}

impl DetectOptions {
    pub fn validate(&self) -> Result<()> {
        if !((0.0..=1.0).contains(&self.conf) && (0.0..=1.0).contains(&self.iou)) {
            return Err(Error::InvalidArgument(format!(
                "conf and iou must be in [0, 1], got {} and {}",
                self.conf, self.iou
            )));
        }
        if self.imgsz == 0 || !self.imgsz.is_multiple_of(32) || self.imgsz > 4096 {
            return Err(Error::InvalidArgument(format!(
                "imgsz must be a positive multiple of 32 up to 4096, got {}",
                self.imgsz
            )));
        }
        Ok(())
    }
}

/// How a letterboxed image maps back to the original.
#[derive(Clone, Copy, Debug)]
pub struct Letterbox {
    pub orig_w: u32,
    pub orig_h: u32,
    pub w: u32,
    pub h: u32,
}

#[derive(Clone)]
struct ConvBn {
    w: Arc<Constant>,
    b: Arc<Constant>,
}

struct C2f {
    cv1: ConvBn,
    cv2: ConvBn,
    m: Vec<(ConvBn, ConvBn)>,
}

struct DetectHead {
    box_convs: Vec<[ConvBn; 3]>,
    cls_convs: Vec<[ConvBn; 3]>,
}

struct YoloWeights {
    convs: Vec<(usize, ConvBn)>,
    c2f: Vec<(usize, C2f)>,
    sppf: (ConvBn, ConvBn),
    detect: DetectHead,
}

/// A loaded YOLOv8 detector. `Send + Sync`.
pub struct Yolo {
    name: String,
    names: Vec<String>,
    backend: Backend,
    w: Arc<Loaded<YoloWeights>>,
    plans: Mutex<PlanCache<(usize, usize, usize)>>,
    warnings: Vec<String>,
}

/// Conv block `p` (conv + BatchNorm), folded: w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε).
fn conv_bn(w: &Weights, p: &str) -> Result<ConvBn> {
    let cw = w.get(&format!("{p}.conv.weight"))?;
    let s = cw.shape().to_vec();
    if s.len() != 4 {
        return Err(Error::Weights {
            path: w.path().to_path_buf(),
            msg: format!("tensor '{p}.conv.weight' must be 4-D, got {s:?}"),
        });
    }
    let o = s[0];
    let g = w.get_shaped(&format!("{p}.bn.weight"), &[o])?;
    let beta = w.get_shaped(&format!("{p}.bn.bias"), &[o])?;
    let mean = w.get_shaped(&format!("{p}.bn.running_mean"), &[o])?;
    let var = w.get_shaped(&format!("{p}.bn.running_var"), &[o])?;
    let (g, beta, mean, var) = (g.as_f32()?, beta.as_f32()?, mean.as_f32()?, var.as_f32()?);
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
    Ok(ConvBn {
        w: Constant::new(
            format!("{p}.conv.weight (BN folded)"),
            Tensor::from_f32(&s, wv)?,
        ),
        b: Constant::new(format!("{p}.bias (BN folded)"), Tensor::from_f32(&[o], bv)?),
    })
}

/// A plain conv with bias (the last conv of each Detect branch).
fn conv_plain(w: &Weights, p: &str) -> Result<ConvBn> {
    let cw = w.get(&format!("{p}.weight"))?;
    let o = cw.shape()[0];
    Ok(ConvBn {
        w: Constant::new(format!("{p}.weight"), cw),
        b: Constant::new(
            format!("{p}.bias"),
            w.get_shaped(&format!("{p}.bias"), &[o])?,
        ),
    })
}

fn c2f(w: &Weights, i: usize) -> Result<C2f> {
    let p = format!("model.{i}");
    let mut m = Vec::new();
    while w.contains(&format!("{p}.m.{}.cv1.conv.weight", m.len())) {
        let k = m.len();
        m.push((
            conv_bn(w, &format!("{p}.m.{k}.cv1"))?,
            conv_bn(w, &format!("{p}.m.{k}.cv2"))?,
        ));
    }
    if m.is_empty() {
        return Err(Error::Weights {
            path: w.path().to_path_buf(),
            msg: format!("C2f block {p} has no bottlenecks ({p}.m.0.cv1.conv.weight missing)"),
        });
    }
    Ok(C2f {
        cv1: conv_bn(w, &format!("{p}.cv1"))?,
        cv2: conv_bn(w, &format!("{p}.cv2"))?,
        m,
    })
}

const CONV_LAYERS: [usize; 7] = [0, 1, 3, 5, 7, 16, 19];
const C2F_LAYERS: [usize; 8] = [2, 4, 6, 8, 12, 15, 18, 21];

impl Yolo {
    pub fn from_pretrained(device: &Device, dir: impl AsRef<Path>) -> Result<Yolo> {
        Self::load(Backend::Gpu(device.clone()), dir)
    }

    /// Loads a folder written by tools/yolo_to_safetensors.py (model.safetensors with the
    /// ultralytics state_dict names, config.json with `model_type` and `names`).
    pub fn load(backend: Backend, dir: impl AsRef<Path>) -> Result<Yolo> {
        let dir = dir.as_ref();
        check_dir(dir)?;
        let cfg_path = require(dir, "config.json", "model config (config.json)")?;
        let cfg: YoloConfig =
            super::config::load(&cfg_path, super::ModelKind::Yolo, super::config::check_yolo)?;
        let wpath = require(dir, "model.safetensors", "weights (model.safetensors)")?;
        let w = Weights::open(&wpath)?;
        let key = WeightsKey::new("yolov8", &wpath, &cfg_path, &LoadOptions::default())?;
        let w = shared(key, || {
            let nc = cfg.names.len();
            let convs = CONV_LAYERS
                .iter()
                .map(|&i| Ok((i, conv_bn(&w, &format!("model.{i}"))?)))
                .collect::<Result<Vec<_>>>()?;
            let c2fs = C2F_LAYERS
                .iter()
                .map(|&i| Ok((i, c2f(&w, i)?)))
                .collect::<Result<Vec<_>>>()?;
            let sppf = (conv_bn(&w, "model.9.cv1")?, conv_bn(&w, "model.9.cv2")?);
            let mut box_convs = Vec::new();
            let mut cls_convs = Vec::new();
            for l in 0..3 {
                let b = format!("model.22.cv2.{l}");
                let c = format!("model.22.cv3.{l}");
                box_convs.push([
                    conv_bn(&w, &format!("{b}.0"))?,
                    conv_bn(&w, &format!("{b}.1"))?,
                    conv_plain(&w, &format!("{b}.2"))?,
                ]);
                cls_convs.push([
                    conv_bn(&w, &format!("{c}.0"))?,
                    conv_bn(&w, &format!("{c}.1"))?,
                    conv_plain(&w, &format!("{c}.2"))?,
                ]);
                let nb = box_convs[l][2].w.tensor().shape()[0];
                let ncls = cls_convs[l][2].w.tensor().shape()[0];
                if nb != 4 * REG_MAX || ncls != nc {
                    return Err(Error::Config {
                        path: cfg_path.clone(),
                        msg: format!(
                            "Detect level {l} has {nb} box and {ncls} class channels; expected {} and {nc} (len(names))",
                            4 * REG_MAX
                        ),
                    });
                }
            }
            // The DFL conv is fixed (arange(16)); read it so it is not reported as unexpected.
            let dfl = w.get("model.22.dfl.conv.weight")?;
            if dfl.numel() != REG_MAX {
                return Err(Error::Weights {
                    path: wpath.clone(),
                    msg: format!(
                        "model.22.dfl.conv.weight has {} values, expected {REG_MAX}",
                        dfl.numel()
                    ),
                });
            }
            let warnings: Vec<String> = w
                .unread()
                .into_iter()
                .filter(|n| !n.ends_with("num_batches_tracked"))
                .map(|n| format!("{}: unexpected tensor '{n}' ignored", wpath.display()))
                .collect();
            Ok(Loaded {
                weights: YoloWeights {
                    convs,
                    c2f: c2fs,
                    sppf,
                    detect: DetectHead {
                        box_convs,
                        cls_convs,
                    },
                },
                warnings,
            })
        })?;
        Ok(Yolo {
            name: super::name_of(dir),
            names: cfg.names,
            backend,
            warnings: w.warnings.clone(),
            w,
            plans: Mutex::new(PlanCache::new(8)),
        })
    }

    /// Device memory of the largest plan run so far (weights + activations + I/O), and its
    /// dispatch count.
    pub fn memory_and_dispatches(&self) -> (u64, usize) {
        let plans = self.plans.lock().unwrap();
        (
            plans.peak_bytes(),
            plans.last_stats().map_or(0, |s| s.dispatches),
        )
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
        &self.backend
    }

    fn conv(
        &self,
        g: &mut Graph,
        x: ValueId,
        c: &ConvBn,
        stride: usize,
        act: Act,
        res: Option<ValueId>,
    ) -> Result<ValueId> {
        let k = c.w.tensor().shape()[2];
        let op = Conv2d {
            stride: [stride, stride],
            padding: [k / 2, k / 2],
            act,
            ..Default::default()
        };
        let (w, b) = (g.constant(&c.w)?, g.constant(&c.b)?);
        g.conv2d(op, x, w, Some(b), res)
    }

    fn c2f_block(&self, g: &mut Graph, x: ValueId, b: &C2f, shortcut: bool) -> Result<ValueId> {
        let y = self.conv(g, x, &b.cv1, 1, Act::Silu, None)?;
        let c = g.shape(y)[1] / 2;
        let halves = g.split(y, 1, &[c, c])?;
        let mut outs = halves.clone();
        let mut last = halves[1];
        for (m1, m2) in &b.m {
            let t = self.conv(g, last, m1, 1, Act::Silu, None)?;
            last = self.conv(g, t, m2, 1, Act::Silu, shortcut.then_some(last))?;
            outs.push(last);
        }
        let cat = g.concat(&outs, 1)?;
        self.conv(g, cat, &b.cv2, 1, Act::Silu, None)
    }

    /// The graph a forward of this input shape runs (for inspection and profiling).
    pub fn graph_for(&self, batch: usize, h: usize, w: usize) -> Result<Graph> {
        self.build(batch, h, w)
    }

    fn build(&self, b: usize, h: usize, w: usize) -> Result<Graph> {
        let wt = &self.w;
        let conv_at = |i: usize| {
            &wt.convs
                .iter()
                .find(|(j, _)| *j == i)
                .expect("conv layer")
                .1
        };
        let c2f_at = |i: usize| &wt.c2f.iter().find(|(j, _)| *j == i).expect("c2f layer").1;
        let mut g = Graph::new();
        let x = g.input("images", &[b, 3, h, w], DType::F32)?;
        let x = self.conv(&mut g, x, conv_at(0), 2, Act::Silu, None)?;
        let x = self.conv(&mut g, x, conv_at(1), 2, Act::Silu, None)?;
        let x = self.c2f_block(&mut g, x, c2f_at(2), true)?;
        let x = self.conv(&mut g, x, conv_at(3), 2, Act::Silu, None)?;
        let p3 = self.c2f_block(&mut g, x, c2f_at(4), true)?;
        let x = self.conv(&mut g, p3, conv_at(5), 2, Act::Silu, None)?;
        let p4 = self.c2f_block(&mut g, x, c2f_at(6), true)?;
        let x = self.conv(&mut g, p4, conv_at(7), 2, Act::Silu, None)?;
        let x = self.c2f_block(&mut g, x, c2f_at(8), true)?;
        // SPPF: three chained 5x5 max pools (padding behaves as -inf).
        let y0 = self.conv(&mut g, x, &wt.sppf.0, 1, Act::Silu, None)?;
        let y1 = g.maxpool2d(y0, 5, 1, 2)?;
        let y2 = g.maxpool2d(y1, 5, 1, 2)?;
        let y3 = g.maxpool2d(y2, 5, 1, 2)?;
        let cat = g.concat(&[y0, y1, y2, y3], 1)?;
        let p5 = self.conv(&mut g, cat, &wt.sppf.1, 1, Act::Silu, None)?;
        // Neck.
        let up = g.upsample_nearest(p5, 2)?;
        let cat = g.concat(&[up, p4], 1)?;
        let n4 = self.c2f_block(&mut g, cat, c2f_at(12), false)?;
        let up = g.upsample_nearest(n4, 2)?;
        let cat = g.concat(&[up, p3], 1)?;
        let out3 = self.c2f_block(&mut g, cat, c2f_at(15), false)?;
        let d = self.conv(&mut g, out3, conv_at(16), 2, Act::Silu, None)?;
        let cat = g.concat(&[d, n4], 1)?;
        let out4 = self.c2f_block(&mut g, cat, c2f_at(18), false)?;
        let d = self.conv(&mut g, out4, conv_at(19), 2, Act::Silu, None)?;
        let cat = g.concat(&[d, p5], 1)?;
        let out5 = self.c2f_block(&mut g, cat, c2f_at(21), false)?;
        // Detect.
        let mut levels = Vec::with_capacity(3);
        for (l, xl) in [out3, out4, out5].into_iter().enumerate() {
            let branch = |g: &mut Graph, convs: &[ConvBn; 3]| -> Result<ValueId> {
                let t = self.conv(g, xl, &convs[0], 1, Act::Silu, None)?;
                let t = self.conv(g, t, &convs[1], 1, Act::Silu, None)?;
                self.conv(g, t, &convs[2], 1, Act::None, None)
            };
            let bx = branch(&mut g, &wt.detect.box_convs[l])?;
            let cl = branch(&mut g, &wt.detect.cls_convs[l])?;
            levels.push(g.concat(&[bx, cl], 1)?);
        }
        let op = YoloDecode {
            nc: self.names.len(),
            reg: REG_MAX,
            strides: STRIDES,
        };
        let y = g.yolo_decode(op, [levels[0], levels[1], levels[2]])?;
        g.output("decoded", y);
        Ok(g)
    }

    /// Runs the network on a [batch, 3, h, w] tensor (values in [0, 1], h and w multiples of
    /// 32): [batch, 4 + nc, anchors] with (cx, cy, w, h) boxes and sigmoid class scores.
    pub fn forward(&self, images: &Tensor) -> Result<Tensor> {
        let s = images.shape();
        if s.len() != 4
            || s[1] != 3
            || s[0] == 0
            || !s[2].is_multiple_of(32)
            || !s[3].is_multiple_of(32)
            || s[2] == 0
            || s[3] == 0
        {
            return Err(Error::InvalidArgument(format!(
                "images must be [batch, 3, h, w] with h and w positive multiples of 32, got {s:?}"
            )));
        }
        let (b, h, w) = (s[0], s[2], s[3]);
        let mut plans = self.plans.lock().unwrap();
        let plan = plans.get_or_build((b, h, w), || {
            self.backend.compile(Arc::new(self.build(b, h, w)?), &[])
        })?;
        Ok(plan.run(&[images])?.remove(0))
    }

    /// ultralytics' LetterBox: scale to fit `imgsz` keeping the aspect ratio (OpenCV bilinear),
    /// pad with 114 to the square (or, with `rect`, to the next multiple of 32), centred.
    pub fn letterbox(img: &RgbImage, imgsz: usize, rect: bool) -> (RgbImage, Letterbox) {
        let (w0, h0) = img.dimensions();
        let r = (imgsz as f64 / h0 as f64).min(imgsz as f64 / w0 as f64);
        let new_w = round_half_even(w0 as f64 * r) as u32;
        let new_h = round_half_even(h0 as f64 * r) as u32;
        let (mut dw, mut dh) = (imgsz as f64 - new_w as f64, imgsz as f64 - new_h as f64);
        if rect {
            dw %= 32.0;
            dh %= 32.0;
        }
        dw /= 2.0;
        dh /= 2.0;
        let resized = if (new_w, new_h) != (w0, h0) {
            resize_bilinear_cv2(img, new_w.max(1), new_h.max(1))
        } else {
            img.clone()
        };
        let top = round_half_even(dh - 0.1) as u32;
        let bottom = round_half_even(dh + 0.1) as u32;
        let left = round_half_even(dw - 0.1) as u32;
        let right = round_half_even(dw + 0.1) as u32;
        let (w, h) = (new_w.max(1) + left + right, new_h.max(1) + top + bottom);
        let mut out = RgbImage::from_pixel(w, h, image::Rgb([114, 114, 114]));
        image::imageops::replace(&mut out, &resized, left as i64, top as i64);
        (
            out,
            Letterbox {
                orig_w: w0,
                orig_h: h0,
                w,
                h,
            },
        )
    }

    /// Detections for one decoded prediction [4 + nc, anchors] in letterboxed coordinates:
    /// confidence filter, class-aware NMS, `max_det`, then boxes scaled to the original image.
    pub fn postprocess(
        &self,
        pred: &[f32],
        anchors: usize,
        lb: &Letterbox,
        opts: &DetectOptions,
    ) -> Vec<Detection> {
        let nc = self.names.len();
        // (x1, y1, x2, y2, score, class) of candidates above the threshold.
        let mut cand: Vec<([f32; 4], f32, usize)> = Vec::new();
        for a in 0..anchors {
            let mut best = (0usize, f32::NEG_INFINITY);
            for c in 0..nc {
                let s = pred[(4 + c) * anchors + a];
                if s > best.1 {
                    best = (c, s);
                }
            }
            if best.1 > opts.conf {
                let (cx, cy, w, h) = (
                    pred[a],
                    pred[anchors + a],
                    pred[2 * anchors + a],
                    pred[3 * anchors + a],
                );
                cand.push((
                    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
                    best.1,
                    best.0,
                ));
            }
        }
        cand.sort_by(|x, y| y.1.total_cmp(&x.1));
        cand.truncate(30000);
        let offset = |c: usize, b: &[f32; 4]| {
            let o = c as f32 * MAX_WH;
            [b[0] + o, b[1] + o, b[2] + o, b[3] + o]
        };
        let mut keep: Vec<usize> = Vec::new();
        let mut suppressed = vec![false; cand.len()];
        for i in 0..cand.len() {
            if suppressed[i] {
                continue;
            }
            keep.push(i);
            if keep.len() == opts.max_det {
                break;
            }
            let bi = offset(cand[i].2, &cand[i].0);
            for j in i + 1..cand.len() {
                if !suppressed[j] && iou(&bi, &offset(cand[j].2, &cand[j].0)) > opts.iou {
                    suppressed[j] = true;
                }
            }
        }
        // Back to the original image (ultralytics' scale_boxes + clip_boxes).
        let gain = (lb.h as f64 / lb.orig_h as f64).min(lb.w as f64 / lb.orig_w as f64);
        let padx = round_half_even((lb.w as f64 - lb.orig_w as f64 * gain) / 2.0 - 0.1);
        let pady = round_half_even((lb.h as f64 - lb.orig_h as f64 * gain) / 2.0 - 0.1);
        keep.into_iter()
            .map(|i| {
                let (b, score, class_id) = cand[i];
                let sx = |v: f32| (((v as f64 - padx) / gain).clamp(0.0, lb.orig_w as f64)) as f32;
                let sy = |v: f32| (((v as f64 - pady) / gain).clamp(0.0, lb.orig_h as f64)) as f32;
                Detection {
                    class_id,
                    label: self.names[class_id].clone(),
                    score,
                    bbox: [sx(b[0]), sy(b[1]), sx(b[2]), sy(b[3])],
                }
            })
            .collect()
    }

    /// Detects objects in decoded RGB pixels.
    pub fn detect_image(&self, img: &RgbImage, opts: &DetectOptions) -> Result<Vec<Detection>> {
        opts.validate()?;
        let (lb_img, lb) = Self::letterbox(img, opts.imgsz, opts.rect);
        let input = to_tensor(&lb_img)?;
        let pred = self.forward(&input)?;
        let anchors = pred.shape()[2];
        Ok(self.postprocess(pred.as_f32()?, anchors, &lb, opts))
    }

    /// Detects objects in an image file; detections sorted by score, best first.
    pub fn detect(&self, path: &Path, opts: &DetectOptions) -> Result<Vec<Detection>> {
        opts.validate()?;
        let img = load_rgb(path)?;
        self.detect_image(&img, opts)
    }
}

/// Letterboxed RGB to a [1, 3, h, w] tensor in [0, 1].
pub fn to_tensor(img: &RgbImage) -> Result<Tensor> {
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let mut v = vec![0.0f32; 3 * plane];
    for (i, px) in img.pixels().enumerate() {
        for c in 0..3 {
            v[c * plane + i] = px[c] as f32 / 255.0;
        }
    }
    Tensor::from_f32(&[1, 3, h as usize, w as usize], v)
}

/// Python's `round` (halves to even), which ultralytics' letterbox arithmetic uses.
fn round_half_even(x: f64) -> f64 {
    let r = x.round();
    if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    }
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}

/// A copy of `img` with each detection drawn as a box in a per-class colour and a
/// "label score" tag (DejaVu Sans).
pub fn annotate(img: &RgbImage, dets: &[Detection]) -> RgbImage {
    use ab_glyph::{FontRef, PxScale};
    use imageproc::drawing::{
        draw_filled_rect_mut, draw_hollow_rect_mut, draw_text_mut, text_size,
    };
    use imageproc::rect::Rect;
    let mut out = img.clone();
    let font = FontRef::try_from_slice(dejavu::sans::regular()).expect("bundled font parses");
    let (w, h) = out.dimensions();
    let side = w.min(h) as f32;
    let scale = PxScale::from((side / 40.0).clamp(11.0, 28.0));
    let thick = ((side / 300.0).round() as i32).max(1);
    for d in dets {
        // Distinct, stable colours per class.
        let hue = (d.class_id as u32).wrapping_mul(2654435761);
        let color = image::Rgb([
            (hue >> 24) as u8 | 0x40,
            (hue >> 16) as u8 | 0x40,
            (hue >> 8) as u8 | 0x40,
        ]);
        let [x1, y1, x2, y2] = d.bbox;
        for t in 0..thick {
            let (x, y) = (x1 as i32 - t, y1 as i32 - t);
            let (bw, bh) = ((x2 - x1) as i32 + 2 * t, (y2 - y1) as i32 + 2 * t);
            if bw > 0 && bh > 0 {
                draw_hollow_rect_mut(
                    &mut out,
                    Rect::at(x, y).of_size(bw as u32, bh as u32),
                    color,
                );
            }
        }
        let text = format!("{} {:.2}", d.label, d.score);
        let (tw, th) = text_size(scale, &font, &text);
        let ty = (y1 as i32 - th as i32 - 4).max(0);
        draw_filled_rect_mut(
            &mut out,
            Rect::at(x1 as i32, ty).of_size(tw + 4, th + 4),
            color,
        );
        draw_text_mut(
            &mut out,
            image::Rgb([255, 255, 255]),
            x1 as i32 + 2,
            ty + 1,
            scale,
            &font,
            &text,
        );
    }
    out
}
