//! Vision Transformer (HF `ViTForImageClassification` / `ViTModel`): image → logits / embeddings.
//!
//! ```text
//! pixels [B,3,S,S] ─ patches (reshape + permute) ─ linear (= the patch conv) ─┐
//!                                          cls token ─ concat ────────────────┴─ + position emb.
//!   ─ [× L pre-norm TransformerLayer] ─ LayerNorm ─ CLS token ─ classifier ─ logits
//! ```
//! The patch embedding is a convolution with kernel = stride = patch size, i.e. a matmul over
//! non-overlapping patches, so it runs on the matmul kernels.
//!
//! DeiT and DINOv2 (`model_type` deit, dinov2) run on the same network; what they change is in
//! [`super::vit_arch`].

use super::family::{self, check_transformer, FamilyConfig, ModelKind};
use super::files::ModelFiles;
use super::loader::{self, Folder, Loaded};
use super::nn::*;
use super::options::LoadOptions;
use super::runner::Runner;
use super::vision::{self, check_id2label, check_patches, labels, top_k};
pub use super::vision::{ImageProcessorConfig, Prediction};
use super::vit_arch::{Arch, PREFIXES};
use crate::error::{check_finite, Error, Result};
use crate::graph::{Backend, Constant, Graph};
use crate::ops::{Act, Layout};
use crate::tensor::{DType, Tensor};
use image::RgbImage;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The fields of HF `ViTConfig` (and `DeiTConfig`, `Dinov2Config`) this implementation reads.
#[derive(Clone, Debug, Deserialize)]
pub struct VitConfig {
    /// vit, deit or dinov2.
    #[serde(default = "vit")]
    pub model_type: String,
    /// The side the position embeddings were trained at.
    pub image_size: usize,
    pub patch_size: usize,
    #[serde(default = "vision::three")]
    pub num_channels: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// The MLP width; DINOv2 configs give `mlp_ratio` instead (0 here then).
    #[serde(default)]
    pub intermediate_size: usize,
    #[serde(default)]
    pub mlp_ratio: Option<f64>,
    /// DINOv2's SwiGLU MLP (giant models): not supported.
    #[serde(default)]
    pub use_swiglu_ffn: bool,
    #[serde(default = "family::eps_1e12")]
    pub layer_norm_eps: f64,
    #[serde(default = "family::gelu")]
    pub hidden_act: String,
    #[serde(default)]
    pub id2label: BTreeMap<String, String>,
}

fn vit() -> String {
    "vit".into()
}

impl VitConfig {
    pub fn arch(&self) -> Arch {
        Arch::from_model_type(&self.model_type)
    }

    /// The MLP width: `intermediate_size`, else `hidden_size · mlp_ratio`.
    pub fn inner(&self) -> usize {
        match (self.intermediate_size, self.mlp_ratio) {
            (0, Some(r)) if r.is_finite() && r > 0.0 && r < 64.0 => {
                (self.hidden_size as f64 * r) as usize
            }
            (n, _) => n,
        }
    }
}

impl FamilyConfig for VitConfig {
    const KIND: ModelKind = ModelKind::Vit;
    fn check(&self) -> std::result::Result<(), String> {
        let c = self;
        if c.use_swiglu_ffn {
            return Err("use_swiglu_ffn (DINOv2's SwiGLU MLP) is not supported".into());
        }
        check_transformer(
            &[
                ("image_size", c.image_size),
                ("patch_size", c.patch_size),
                ("num_channels", c.num_channels),
                ("hidden_size", c.hidden_size),
                ("num_hidden_layers", c.num_hidden_layers),
                ("num_attention_heads", c.num_attention_heads),
                ("intermediate_size (or hidden_size * mlp_ratio)", c.inner()),
            ],
            ("hidden_size", c.hidden_size),
            ("num_attention_heads", c.num_attention_heads),
            ("layer_norm_eps", c.layer_norm_eps),
            ("hidden_act", &c.hidden_act),
        )?;
        check_patches(c.image_size, c.patch_size, c.num_channels)?;
        check_id2label(&self.id2label)
    }
}

/// Outputs of [`Vit::forward_async`].
#[derive(Clone, Debug)]
pub struct VitOutput {
    /// [batch, tokens, hidden] after the final LayerNorm.
    pub last_hidden_state: Tensor,
    /// [batch, labels] for classification checkpoints.
    pub logits: Option<Tensor>,
    /// [batch, hidden]: tanh(dense(CLS)) for bare `ViTModel` checkpoints with a pooler.
    pub pooler_output: Option<Tensor>,
}

/// The classification head.
enum Classifier {
    /// `classifier` on the CLS token.
    Cls(Linear),
    /// DeiT with teacher: (`cls_classifier`(CLS) + `distillation_classifier`(DIST)) / 2.
    Distilled(Linear, Linear),
    /// DINOv2: `classifier`([CLS, mean of the patch tokens]).
    ClsMean(Linear),
}

struct VitWeights {
    patch: Linear,
    cls: Arc<Constant>,
    /// DeiT's distillation token (after CLS).
    dist: Option<Arc<Constant>>,
    pos: Arc<Constant>,
    layers: Vec<TransformerLayer>,
    norm: LayerNorm,
    classifier: Option<Classifier>,
    pooler: Option<Linear>,
}

/// Tensor names that mark a classifier checkpoint.
const HEADS: [&str; 2] = ["classifier.weight", "cls_classifier.weight"];

impl VitWeights {
    /// Weights for `side`-pixel inputs (the position grid resized when it differs from
    /// `image_size`, DINOv2 only).
    fn load(c: &VitConfig, vb: &Vars, with_classifier: bool, side: usize) -> Result<VitWeights> {
        let (h, ch, p) = (c.hidden_size, c.num_channels, c.patch_size);
        let arch = c.arch();
        let n = (c.image_size / p) * (c.image_size / p);
        let labels = c.id2label.len();
        if with_classifier && labels == 0 {
            return Err(Error::InvalidArgument(
                "a classifier checkpoint needs id2label in config.json".into(),
            ));
        }
        let shape = LayerShape {
            width: h,
            inner: c.inner(),
            heads: c.num_attention_heads,
            eps: c.layer_norm_eps,
            act: Act::from_hf(&c.hidden_act)?,
            norm: Norm::Pre,
            masking: Masking::Bidirectional,
        };
        let (e, layers) = (vb.pp("embeddings"), vb.pp("encoder.layer"));
        let proj = e.pp("patch_embeddings.projection");
        let has_pooler = !with_classifier && vb.contains("pooler.dense.weight");
        let dist = vb.contains("embeddings.distillation_token");
        let classifier = match (with_classifier, vb.contains("cls_classifier.weight")) {
            (false, _) => None,
            (true, false) if arch == Arch::Dinov2 => Some(Classifier::ClsMean(Linear::load(
                &vb.pp("classifier"),
                arch.classifier_input(h),
                labels,
            )?)),
            (true, false) => Some(Classifier::Cls(Linear::load(
                &vb.pp("classifier"),
                h,
                labels,
            )?)),
            (true, true) => Some(Classifier::Distilled(
                Linear::load(&vb.pp("cls_classifier"), h, labels)?,
                Linear::load(&vb.pp("distillation_classifier"), h, labels)?,
            )),
        };
        Ok(VitWeights {
            layers: TransformerLayer::stack(
                &layers,
                c.num_hidden_layers,
                arch.layer_names(),
                shape,
            )?,
            classifier,
            pooler: (has_pooler)
                .then(|| Linear::load(&vb.pp("pooler.dense"), h, h))
                .transpose()?,
            // The patch conv as a matmul over flattened patches: [h, c·p·p].
            patch: Linear {
                w: vb.opts().weight(
                    proj.key("weight"),
                    proj.tensor("weight", &[h, ch, p, p])?
                        .reshape(&[h, ch * p * p])?,
                )?,
                b: Some(proj.param("bias", &[h])?),
                layout: Layout::NxK,
            },
            cls: e.param("cls_token", &[1, 1, h])?,
            dist: dist
                .then(|| e.param("distillation_token", &[1, 1, h]))
                .transpose()?,
            pos: positions(&e, c, n + 1 + dist as usize, side)?,
            norm: LayerNorm::load(&vb.pp("layernorm"), h, c.layer_norm_eps)?,
        })
    }
}

/// A loaded ViT. `Send + Sync`.
pub struct Vit {
    name: String,
    config: VitConfig,
    processor: ImageProcessorConfig,
    labels: Vec<String>,
    w: Arc<Loaded<VitWeights>>,
    max_batch: usize,
    /// The input side (pixel_values are [b, 3, side, side]): `image_size`, or DINOv2's crop.
    side: usize,
    runner: Runner<usize>,
    warnings: Vec<String>,
}

impl Vit {
    /// Loads a model folder (config.json, model.safetensors, preprocessor_config.json), in
    /// memory or on disk.
    pub fn from_files(backend: Backend, files: &ModelFiles, opts: &LoadOptions) -> Result<Vit> {
        let f: Folder<VitConfig> = Folder::open(files, &PREFIXES, "embeddings.cls_token")?;
        let (processor, mut warnings) = ImageProcessorConfig::read(files, f.config.image_size)?;
        // Processor checks before reading weights.
        let c = &f.config;
        let bad = |e: Error| match e {
            Error::InvalidArgument(msg) => Error::Config {
                path: files.path("preprocessor_config.json"),
                msg,
            },
            other => other,
        };
        let side = input_side(c, &processor).map_err(|m| f.config_error(m))?;
        processor.check(c.num_channels, side).map_err(bad)?;
        let with_classifier = HEADS.iter().any(|n| f.weights().contains(n));
        let ignore = ["embeddings.mask_token"];
        let w = f.load(opts, &ignore, |vb| {
            VitWeights::load(c, vb, with_classifier, side)
        })?;
        warnings.extend(w.warnings.iter().cloned());
        let mut model = Self::from_parts(backend, f.config.clone(), processor, w, side);
        model.name = files.name();
        model.warnings = warnings;
        Ok(model)
    }

    /// Builds a model from a config and a weight source (HF names without `vit.`).
    pub fn from_source(
        backend: Backend,
        config: VitConfig,
        processor: ImageProcessorConfig,
        w: &dyn TensorSource,
        with_classifier: bool,
        opts: &LoadOptions,
    ) -> Result<Vit> {
        config.check().map_err(Error::InvalidArgument)?;
        let side = input_side(&config, &processor).map_err(Error::InvalidArgument)?;
        processor.check(config.num_channels, side)?;
        let loaded = loader::from_source(w, opts, |vb| {
            VitWeights::load(&config, vb, with_classifier, side)
        })?;
        Ok(Self::from_parts(backend, config, processor, loaded, side))
    }

    fn from_parts(
        backend: Backend,
        config: VitConfig,
        processor: ImageProcessorConfig,
        w: Arc<Loaded<VitWeights>>,
        side: usize,
    ) -> Vit {
        let n_labels = w.classifier.as_ref().map_or(0, |_| config.id2label.len());
        let labels = labels(&config.id2label, n_labels);
        Vit {
            name: String::new(),
            config,
            processor,
            labels,
            warnings: w.warnings.clone(),
            w,
            max_batch: 32,
            side,
            runner: Runner::new(backend, 8),
        }
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
    pub fn config(&self) -> &VitConfig {
        &self.config
    }
    pub fn labels(&self) -> &[String] {
        &self.labels
    }
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    pub fn backend(&self) -> &Backend {
        self.runner.backend()
    }
    /// Images per forward pass (larger batches are split).
    pub fn set_max_batch(&mut self, n: usize) {
        self.max_batch = n.max(1);
    }
    #[cfg(feature = "images")]
    pub(crate) fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Preprocesses decoded RGB pixels as the checkpoint's image processor does (resize,
    /// rescale, normalize): [3, S, S] pixel values.
    pub fn preprocess_rgb(&self, img: &RgbImage) -> Result<Tensor> {
        self.processor.preprocess(img, self.side)
    }

    /// The graph a forward of this batch size runs (for inspection and profiling).
    pub fn graph_for(&self, b: usize) -> Result<Graph> {
        let c = &self.config;
        let (h, ch, p, s) = (c.hidden_size, c.num_channels, c.patch_size, self.side);
        let (gs, w) = (s / p, &self.w);
        let mut g = Graph::new();
        let pix = g.input("pixel_values", &[b, ch, s, s], DType::F32)?;
        let x = g.reshape(pix, &[b, ch, gs, p, gs, p])?;
        let x = g.permute(x, &[0, 2, 4, 1, 3, 5])?;
        let x = g.reshape(x, &[b, gs * gs, ch * p * p])?;
        let x = w.patch.forward(&mut g, x)?;
        let mut tokens = vec![g.constant(&w.cls)?];
        if let Some(d) = &w.dist {
            tokens.push(g.constant(d)?);
        }
        let mut parts = Vec::with_capacity(3);
        for t in tokens {
            parts.push(g.expand(t, &[b, 1, h])?);
        }
        parts.push(x);
        let x = g.concat(&parts, 1)?;
        let pos = g.constant(&w.pos)?;
        let mut x = g.add(x, pos)?;
        for layer in &w.layers {
            x = layer.forward(&mut g, x, None, None)?;
        }
        let x = w.norm.forward(&mut g, x)?;
        g.output("last_hidden_state", x);
        let cls = g.slice(x, 1, 0, 1)?;
        let cls = g.reshape(cls, &[b, h])?;
        match &w.classifier {
            Some(Classifier::Cls(head)) => {
                let logits = head.forward(&mut g, cls)?;
                g.output("logits", logits);
            }
            Some(Classifier::Distilled(head, dist_head)) => {
                let d = g.slice(x, 1, 1, 2)?;
                let d = g.reshape(d, &[b, h])?;
                let (a, b2) = (head.forward(&mut g, cls)?, dist_head.forward(&mut g, d)?);
                let sum = g.add(a, b2)?;
                let half = g.constant_tensor("half", Tensor::from_f32(&[1], vec![0.5])?)?;
                let logits = g.mul(sum, half)?;
                g.output("logits", logits);
            }
            Some(Classifier::ClsMean(head)) => {
                let t = (s / p) * (s / p);
                let patches = g.slice(x, 1, 1, 1 + t)?;
                let mean = g.mean(patches, 1)?;
                let both = g.concat(&[cls, mean], 1)?;
                let logits = head.forward(&mut g, both)?;
                g.output("logits", logits);
            }
            None => {}
        }
        if let Some(pooler) = &w.pooler {
            let pooled = pooler.forward_fused(&mut g, cls, Act::Tanh, None)?;
            g.output("pooler_output", pooled);
        }
        Ok(g)
    }

    /// Runs the model on preprocessed pixel values [batch, 3, S, S].
    pub async fn forward_async(&self, pixel_values: &Tensor) -> Result<VitOutput> {
        let c = &self.config;
        let want = [c.num_channels, self.side, self.side];
        let shape = pixel_values.shape();
        if shape.len() != 4 || shape[1..] != want || shape[0] == 0 {
            return Err(Error::InvalidArgument(format!(
                "pixel_values must be [batch, {}, {}, {}], got {shape:?}",
                want[0], want[1], want[2]
            )));
        }
        let b = shape[0];
        let mut out = (self.runner)
            .run(b, || self.graph_for(b), &[pixel_values])
            .await?;
        let last_hidden_state = out.take("last_hidden_state")?;
        check_finite(
            || "ViT encoder output (last_hidden_state)".into(),
            last_hidden_state.as_f32()?,
        )?;
        let logits = out.take("logits").ok();
        if let Some(l) = &logits {
            check_finite(|| "ViT classifier logits".into(), l.as_f32()?)?;
        }
        Ok(VitOutput {
            last_hidden_state,
            logits,
            pooler_output: out.take("pooler_output").ok(),
        })
    }

    /// The forward of decoded images (preprocessed and batched by `max_batch`).
    async fn batched(
        &self,
        images: &[RgbImage],
        mut each: impl FnMut(VitOutput) -> Result<()>,
    ) -> Result<()> {
        if images.is_empty() {
            return Err(Error::InvalidArgument("no images given".into()));
        }
        let s = self.side;
        for chunk in images.chunks(self.max_batch) {
            let mut data = Vec::with_capacity(chunk.len() * 3 * s * s);
            for img in chunk {
                data.extend(self.preprocess_rgb(img)?.as_f32()?);
            }
            let pix = Tensor::from_f32(&[chunk.len(), 3, s, s], data)?;
            each(self.forward_async(&pix).await?)?;
        }
        Ok(())
    }

    /// The `top_k` classes of each decoded image (softmax scores), in input order.
    pub async fn classify_async(
        &self,
        images: &[RgbImage],
        k: usize,
    ) -> Result<Vec<Vec<Prediction>>> {
        if self.w.classifier.is_none() {
            return Err(Error::InvalidArgument(
                "this checkpoint has no classifier (a bare ViTModel): use embed()".into(),
            ));
        }
        if k == 0 {
            return Err(Error::InvalidArgument("top-k must be at least 1".into()));
        }
        let mut out = Vec::with_capacity(images.len());
        self.batched(images, |o| {
            let logits = o
                .logits
                .ok_or_else(|| Error::Graph("the classifier output is missing".into()))?;
            for row in logits.as_f32()?.chunks(self.labels.len().max(1)) {
                out.push(top_k(row, &self.labels, k));
            }
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// One vector per decoded image: the pooler output when the checkpoint has one, else the
    /// final CLS token.
    pub async fn embed_async(&self, images: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        let h = self.config.hidden_size;
        let mut out = Vec::with_capacity(images.len());
        self.batched(images, |o| {
            match &o.pooler_output {
                Some(p) => out.extend(p.as_f32()?.chunks(h).map(|r| r.to_vec())),
                None => {
                    let t = o.last_hidden_state.shape()[1];
                    let v = o.last_hidden_state.as_f32()?;
                    out.extend(v.chunks(t * h).map(|r| r[..h].to_vec()))
                }
            }
            Ok(())
        })
        .await?;
        Ok(out)
    }
}

/// The input side: `image_size`, except for DINOv2, whose processor's centre crop (or square
/// resize) decides it and whose position grid is then resized to match.
fn input_side(c: &VitConfig, p: &ImageProcessorConfig) -> std::result::Result<usize, String> {
    if !c.arch().resizes_positions() {
        return Ok(c.image_size);
    }
    let side = |m: &Option<BTreeMap<String, usize>>| {
        let m = m.as_ref()?;
        let (h, w) = (m.get("height")?, m.get("width")?);
        (h == w).then_some(*h)
    };
    let s = if p.do_center_crop {
        side(&p.crop_size)
    } else if p.do_resize {
        side(&p.size)
    } else {
        None
    }
    .unwrap_or(c.image_size);
    if s == 0 || !s.is_multiple_of(c.patch_size) || s > 8192 {
        return Err(format!(
            "the processor's output side {s} must be a positive multiple of patch_size {} (at most 8192)",
            c.patch_size
        ));
    }
    Ok(s)
}

/// The position embeddings for `side`-pixel inputs: as stored ([1, `tokens`, h]) when the grid
/// matches, else (DINOv2) the patch grid resized with torch's bicubic interpolation, the
/// leading token's row kept.
fn positions(e: &Vars, c: &VitConfig, tokens: usize, side: usize) -> Result<Arc<Constant>> {
    let h = c.hidden_size;
    let stored = e.tensor("position_embeddings", &[1, tokens, h])?;
    if side == c.image_size {
        return Ok(Constant::new(e.key("position_embeddings"), stored));
    }
    let (g0, g1) = (c.image_size / c.patch_size, side / c.patch_size);
    let v = stored.as_f32()?;
    // [g0·g0, h] → [h, g0, g0] planes.
    let mut planes = vec![0.0f32; h * g0 * g0];
    for t in 0..g0 * g0 {
        for d in 0..h {
            planes[d * g0 * g0 + t] = v[(1 + t) * h + d];
        }
    }
    let r = vision::interpolate_bicubic(&planes, h, g0, g0, g1, g1);
    let mut out = Vec::with_capacity((1 + g1 * g1) * h);
    out.extend_from_slice(&v[..h]);
    for t in 0..g1 * g1 {
        out.extend((0..h).map(|d| r[d * g1 * g1 + t]));
    }
    let t = Tensor::from_f32(&[1, 1 + g1 * g1, h], out)?;
    Ok(Constant::new(e.key("position_embeddings"), t))
}
