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

use super::family::FamilyConfig;
use super::files::ModelFiles;
use super::loader::{self, Folder, Loaded};
use super::nn::*;
use super::options::LoadOptions;
use super::runner::Runner;
use super::vision::{labels, top_k};
pub use super::vision::{ImageProcessorConfig, Prediction};
use super::vit_arch::{input_side, positions, PREFIXES};
use crate::error::{check_finite, Error, Result};
use crate::graph::{Backend, Constant, Graph};
use crate::ops::Act;
use crate::tensor::{DType, Tensor};
use image::RgbImage;
use std::sync::Arc;

pub use super::vit_arch::VitConfig;

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
    patch: PatchEmbedding,
    cls: Arc<Constant>,
    /// DeiT's distillation token (after CLS).
    dist: Option<Arc<Constant>>,
    /// DINOv2's register tokens [1, R, h] (after CLS, added after the position embeddings).
    registers: Option<Arc<Constant>>,
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
        let has_pooler = !with_classifier && vb.contains("pooler.dense.weight");
        let dist = vb.contains("embeddings.distillation_token");
        let classifier = match (with_classifier, vb.contains("cls_classifier.weight")) {
            (false, _) => None,
            (true, false) if arch.is_dinov2() => Some(Classifier::ClsMean(Linear::load(
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
            patch: PatchEmbedding::load(&e.pp("patch_embeddings.projection"), h, ch, p, true)?,
            cls: e.param("cls_token", &[1, 1, h])?,
            dist: dist
                .then(|| e.param("distillation_token", &[1, 1, h]))
                .transpose()?,
            pos: positions(&e, c, n + 1 + dist as usize, side)?,
            registers: (c.registers() > 0)
                .then(|| e.param("register_tokens", &[1, c.registers(), h]))
                .transpose()?,
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
        let x = w.patch.forward(&mut g, pix, b, s)?;
        let x = prepend_tokens(
            &mut g,
            &[&w.cls].into_iter().chain(&w.dist).collect::<Vec<_>>(),
            x,
        )?;
        let pos = g.constant(&w.pos)?;
        let mut x = g.add(x, pos)?;
        let regs = self.config.registers();
        if let Some(r) = &w.registers {
            // Registers go between CLS and the patches, after the position embeddings.
            let patches = g.slice(x, 1, 1, 1 + gs * gs)?;
            let cls = g.slice(x, 1, 0, 1)?;
            let rest = prepend_tokens(&mut g, &[r], patches)?;
            x = g.concat(&[cls, rest], 1)?;
        }
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
                let patches = g.slice(x, 1, 1 + regs, 1 + regs + t)?;
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
