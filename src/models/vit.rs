//! Vision Transformer (HF `ViTForImageClassification` / `ViTModel`): image → logits / embeddings.
//!
//! ```text
//! pixels [B,3,S,S] ─ patches (reshape + permute) ─ linear (= the patch conv) ─┐
//!                                          cls token ─ concat ────────────────┴─ + position emb.
//!   ─ [× L] ─ LayerNorm ─ CLS token ─ classifier ─ logits
//!   layer: x ─ LN ─ QKV ─ attention ─ out linear (+x) ─ h ─ LN ─ linear+GELU ─ linear (+h)
//! ```
//! The patch embedding is a convolution with kernel = stride = patch size, i.e. a matmul over
//! non-overlapping patches, so it runs on the matmul kernels.

use super::{check_dir, read_json, require, shared, LoadOptions, Loaded, WeightsKey};
use crate::error::{Error, Result};
use crate::graph::{Backend, Constant, Graph, PlanCache};
use crate::imageio::{load_rgb, to_chw, Resample};
use crate::ops::attention::Attention;
use crate::ops::Act;
use crate::tensor::{DType, Tensor};
use crate::weights::Weights;
use crate::Device;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The fields of HF `ViTConfig` this implementation reads.
#[derive(Clone, Debug, Deserialize)]
pub struct VitConfig {
    pub image_size: usize,
    pub patch_size: usize,
    #[serde(default = "three")]
    pub num_channels: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default)]
    pub id2label: BTreeMap<String, String>,
}

fn three() -> usize {
    3
}
fn default_eps() -> f64 {
    1e-12
}
fn default_act() -> String {
    "gelu".into()
}

impl VitConfig {
    /// ViT-B/16 at 224: 12 layers, 768 wide, 12 heads, 1000 classes.
    pub fn base_16() -> VitConfig {
        VitConfig {
            image_size: 224,
            patch_size: 16,
            num_channels: 3,
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".into(),
            id2label: (0..1000)
                .map(|i| (i.to_string(), format!("LABEL_{i}")))
                .collect(),
        }
    }
}

/// `preprocessor_config.json` of a HF image processor.
#[derive(Clone, Debug, Deserialize)]
pub struct ImageProcessorConfig {
    #[serde(default = "yes")]
    pub do_resize: bool,
    #[serde(default)]
    pub size: Option<BTreeMap<String, usize>>,
    #[serde(default = "bilinear")]
    pub resample: u32,
    #[serde(default = "yes")]
    pub do_rescale: bool,
    #[serde(default = "default_rescale")]
    pub rescale_factor: f32,
    #[serde(default = "yes")]
    pub do_normalize: bool,
    #[serde(default = "half3")]
    pub image_mean: Vec<f32>,
    #[serde(default = "half3")]
    pub image_std: Vec<f32>,
}

fn yes() -> bool {
    true
}
fn bilinear() -> u32 {
    2
}
fn default_rescale() -> f32 {
    1.0 / 255.0
}
fn half3() -> Vec<f32> {
    vec![0.5; 3]
}

impl ImageProcessorConfig {
    /// transformers' `ViTImageProcessor` defaults for a square input.
    pub fn vit_default(side: usize) -> Self {
        ImageProcessorConfig {
            do_resize: true,
            size: Some(BTreeMap::from([
                ("height".into(), side),
                ("width".into(), side),
            ])),
            resample: 2,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: half3(),
            image_std: half3(),
        }
    }
}

/// One class with its softmax probability.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Prediction {
    pub index: usize,
    pub label: String,
    pub score: f32,
}

/// Outputs of [`Vit::forward`].
#[derive(Clone, Debug)]
pub struct VitOutput {
    /// [batch, tokens, hidden] after the final LayerNorm.
    pub last_hidden_state: Tensor,
    /// [batch, labels] for classification checkpoints.
    pub logits: Option<Tensor>,
    /// [batch, hidden]: tanh(dense(CLS)) for bare `ViTModel` checkpoints with a pooler.
    pub pooler_output: Option<Tensor>,
}

struct Layer {
    ln1: (Arc<Constant>, Arc<Constant>),
    qkv_w: Arc<Constant>,
    qkv_b: Arc<Constant>,
    o_w: Arc<Constant>,
    o_b: Arc<Constant>,
    ln2: (Arc<Constant>, Arc<Constant>),
    i_w: Arc<Constant>,
    i_b: Arc<Constant>,
    out_w: Arc<Constant>,
    out_b: Arc<Constant>,
}

struct VitWeights {
    patch_w: Arc<Constant>,
    patch_b: Arc<Constant>,
    cls: Arc<Constant>,
    pos: Arc<Constant>,
    layers: Vec<Layer>,
    ln: (Arc<Constant>, Arc<Constant>),
    classifier: Option<(Arc<Constant>, Arc<Constant>)>,
    pooler: Option<(Arc<Constant>, Arc<Constant>)>,
}

/// A loaded ViT. `Send + Sync`.
pub struct Vit {
    name: String,
    config: VitConfig,
    act: Act,
    processor: ImageProcessorConfig,
    labels: Vec<String>,
    backend: Backend,
    w: Arc<Loaded<VitWeights>>,
    max_batch: usize,
    plans: Mutex<PlanCache<usize>>,
    warnings: Vec<String>,
}

/// Where weights come from: a name and the shape the config implies → a tensor.
pub type TensorSource<'a> = &'a dyn Fn(&str, &[usize]) -> Result<Tensor>;

impl Vit {
    pub fn from_pretrained(device: &Device, dir: impl AsRef<Path>) -> Result<Vit> {
        Self::load(Backend::Gpu(device.clone()), dir)
    }

    /// Loads a HuggingFace ViT folder (config.json, model.safetensors,
    /// preprocessor_config.json).
    pub fn load(backend: Backend, dir: impl AsRef<Path>) -> Result<Vit> {
        Self::load_with(backend, dir, &LoadOptions::default())
    }

    /// [`Vit::load`] with options (for example f16 weight storage).
    pub fn load_with(backend: Backend, dir: impl AsRef<Path>, opts: &LoadOptions) -> Result<Vit> {
        opts.check()?;
        let dir = dir.as_ref();
        check_dir(dir)?;
        let cfg_path = require(dir, "config.json", "model config (config.json)")?;
        let config: VitConfig =
            super::config::load(&cfg_path, super::ModelKind::Vit, super::config::check_vit)?;
        let pp_path = dir.join("preprocessor_config.json");
        let mut warnings = Vec::new();
        let processor = if pp_path.is_file() {
            read_json(&pp_path)?
        } else {
            warnings.push(format!(
                "{}: missing; using ViTImageProcessor defaults",
                pp_path.display()
            ));
            ImageProcessorConfig::vit_default(config.image_size)
        };
        let wpath = require(dir, "model.safetensors", "weights (model.safetensors)")?;
        let mut w = Weights::open(&wpath)?;
        if w.names().iter().any(|n| n == "vit.embeddings.cls_token") {
            w.set_prefix("vit.");
        }
        let with_classifier = w.contains("classifier.weight");
        let cfg_err = |e: Error| match e {
            Error::InvalidArgument(msg) => Error::Config {
                path: cfg_path.clone(),
                msg,
            },
            other => other,
        };
        // Processor checks before reading weights.
        Self::check_processor(&config, &processor).map_err(cfg_err)?;
        let key = WeightsKey::new("vit", &wpath, &cfg_path, opts)?;
        let weights = shared(key, || {
            let bar = opts.bar(&w);
            let get = |name: &str, shape: &[usize]| {
                bar.inc(1);
                w.get_shaped(name, shape)
            };
            let weights = Self::build_weights(&config, &get, with_classifier, opts)
                .map_err(|e| LoadOptions::in_file(&wpath, e))?;
            let warnings = w
                .unread()
                .into_iter()
                .map(|n| format!("{}: unexpected tensor '{n}' ignored", wpath.display()))
                .collect();
            bar.finish_and_clear();
            Ok(Loaded { weights, warnings })
        })
        .map_err(cfg_err)?;
        let mut model = Self::from_parts(backend, config, processor, weights).map_err(cfg_err)?;
        model.name = super::name_of(dir);
        warnings.extend(model.warnings.iter().cloned());
        model.warnings = warnings;
        Ok(model)
    }

    /// Builds a model from a config and a weight source (HF names without `vit.`).
    pub fn from_source(
        backend: Backend,
        config: VitConfig,
        processor: ImageProcessorConfig,
        w: TensorSource,
        with_classifier: bool,
        opts: &LoadOptions,
    ) -> Result<Vit> {
        opts.check()?;
        super::config::check_vit(&config).map_err(Error::InvalidArgument)?;
        Self::check_processor(&config, &processor)?;
        let weights = Self::build_weights(&config, w, with_classifier, opts)?;
        let loaded = Loaded {
            weights,
            warnings: Vec::new(),
        };
        Self::from_parts(backend, config, processor, Arc::new(loaded))
    }

    /// The image processor must produce what the model takes.
    fn check_processor(config: &VitConfig, processor: &ImageProcessorConfig) -> Result<()> {
        let (c, s) = (config.num_channels, config.image_size);
        let size = processor.size.as_ref();
        let (ph, pw) = (
            size.and_then(|m| m.get("height")).copied(),
            size.and_then(|m| m.get("width")).copied(),
        );
        if processor.do_resize && (ph != Some(s) || pw != Some(s)) {
            return Err(Error::InvalidArgument(format!(
                "preprocessor size {:?} must be {{height: {s}, width: {s}}} (the model's image_size)",
                processor.size
            )));
        }
        if processor.image_mean.len() != 3 || processor.image_std.len() != 3 || c != 3 {
            return Err(Error::InvalidArgument(
                "only 3-channel RGB models with 3 mean/std values are supported".into(),
            ));
        }
        Resample::from_pil(processor.resample)?;
        Ok(())
    }

    /// The constants of a model of `config`, read from `w`.
    fn build_weights(
        config: &VitConfig,
        w: TensorSource,
        with_classifier: bool,
        opts: &LoadOptions,
    ) -> Result<VitWeights> {
        let (h, c, p, s, i_sz) = (
            config.hidden_size,
            config.num_channels,
            config.patch_size,
            config.image_size,
            config.intermediate_size,
        );
        let n = (s / p) * (s / p);
        let k = |name: &str, shape: &[usize]| -> Result<Arc<Constant>> {
            Ok(Constant::new(name, w(name, shape)?))
        };
        // Matmul weights in the storage dtype.
        let kw = |name: &str, shape: &[usize]| opts.weight(name, w(name, shape)?);
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let b = format!("encoder.layer.{l}");
            let mut qw = Vec::with_capacity(3 * h * h);
            let mut qb = Vec::with_capacity(3 * h);
            for part in ["query", "key", "value"] {
                qw.extend(w(&format!("{b}.attention.attention.{part}.weight"), &[h, h])?.as_f32()?);
                qb.extend(w(&format!("{b}.attention.attention.{part}.bias"), &[h])?.as_f32()?);
            }
            layers.push(Layer {
                ln1: (
                    k(&format!("{b}.layernorm_before.weight"), &[h])?,
                    k(&format!("{b}.layernorm_before.bias"), &[h])?,
                ),
                qkv_w: opts.weight(
                    format!("{b}.qkv.weight"),
                    Tensor::from_f32(&[3 * h, h], qw)?,
                )?,
                qkv_b: Constant::new(format!("{b}.qkv.bias"), Tensor::from_f32(&[3 * h], qb)?),
                o_w: kw(&format!("{b}.attention.output.dense.weight"), &[h, h])?,
                o_b: k(&format!("{b}.attention.output.dense.bias"), &[h])?,
                ln2: (
                    k(&format!("{b}.layernorm_after.weight"), &[h])?,
                    k(&format!("{b}.layernorm_after.bias"), &[h])?,
                ),
                i_w: kw(&format!("{b}.intermediate.dense.weight"), &[i_sz, h])?,
                i_b: k(&format!("{b}.intermediate.dense.bias"), &[i_sz])?,
                out_w: kw(&format!("{b}.output.dense.weight"), &[h, i_sz])?,
                out_b: k(&format!("{b}.output.dense.bias"), &[h])?,
            });
        }
        let n_labels = config.id2label.len();
        let classifier = if with_classifier {
            if n_labels == 0 {
                return Err(Error::InvalidArgument(
                    "a classifier checkpoint needs id2label in config.json".into(),
                ));
            }
            Some((
                kw("classifier.weight", &[n_labels, h])?,
                k("classifier.bias", &[n_labels])?,
            ))
        } else {
            None
        };
        let pooler = if !with_classifier {
            match (
                w("pooler.dense.weight", &[h, h]),
                w("pooler.dense.bias", &[h]),
            ) {
                (Ok(pw), Ok(pb)) => Some((
                    opts.weight("pooler.dense.weight", pw)?,
                    Constant::new("pooler.dense.bias", pb),
                )),
                _ => None,
            }
        } else {
            None
        };
        let patch = w(
            "embeddings.patch_embeddings.projection.weight",
            &[h, c, p, p],
        )?;
        let weights = VitWeights {
            patch_w: opts.weight("patch.weight", patch.reshape(&[h, c * p * p])?)?,
            patch_b: k("embeddings.patch_embeddings.projection.bias", &[h])?,
            cls: k("embeddings.cls_token", &[1, 1, h])?,
            pos: k("embeddings.position_embeddings", &[1, n + 1, h])?,
            layers,
            ln: (k("layernorm.weight", &[h])?, k("layernorm.bias", &[h])?),
            classifier,
            pooler,
        };
        Ok(weights)
    }

    fn from_parts(
        backend: Backend,
        config: VitConfig,
        processor: ImageProcessorConfig,
        weights: Arc<Loaded<VitWeights>>,
    ) -> Result<Vit> {
        let act = Act::from_hf(&config.hidden_act)?;
        let n_labels = if weights.classifier.is_some() {
            config.id2label.len()
        } else {
            0
        };
        let labels = (0..n_labels)
            .map(|i| {
                config
                    .id2label
                    .get(&i.to_string())
                    .cloned()
                    .ok_or_else(|| Error::InvalidArgument(format!("id2label lacks index {i}")))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Vit {
            name: String::new(),
            config,
            act,
            processor,
            labels,
            backend,
            warnings: weights.warnings.clone(),
            w: weights,
            max_batch: 32,
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
        &self.backend
    }
    /// Images per forward pass (larger batches are split).
    pub fn set_max_batch(&mut self, n: usize) {
        self.max_batch = n.max(1);
    }

    /// Decodes and preprocesses an image file as the checkpoint's image processor does:
    /// [3, S, S] pixel values.
    pub fn preprocess(&self, path: &Path) -> Result<Tensor> {
        let img = load_rgb(path)?;
        self.preprocess_rgb(&img)
    }

    /// Preprocesses decoded RGB pixels (resize, rescale, normalize).
    pub fn preprocess_rgb(&self, img: &image::RgbImage) -> Result<Tensor> {
        let pp = &self.processor;
        let s = self.config.image_size as u32;
        let resize = if pp.do_resize {
            Some((s, s, Resample::from_pil(pp.resample)?))
        } else if img.dimensions() != (s, s) {
            return Err(Error::InvalidArgument(format!(
                "image is {:?} but the model needs {s}x{s} and do_resize is false",
                img.dimensions()
            )));
        } else {
            None
        };
        let rescale = if pp.do_rescale {
            pp.rescale_factor
        } else {
            1.0
        };
        let (mean, std) = if pp.do_normalize {
            (
                [pp.image_mean[0], pp.image_mean[1], pp.image_mean[2]],
                [pp.image_std[0], pp.image_std[1], pp.image_std[2]],
            )
        } else {
            ([0.0; 3], [1.0; 3])
        };
        let v = to_chw(img, resize, rescale, mean, std);
        Tensor::from_f32(&[3, s as usize, s as usize], v)
    }

    /// The graph a forward of this input shape runs (for inspection and profiling).
    pub fn graph_for(&self, batch: usize) -> Result<Graph> {
        self.build(batch)
    }

    fn build(&self, b: usize) -> Result<Graph> {
        let cfg = &self.config;
        let (h, c, p, s) = (
            cfg.hidden_size,
            cfg.num_channels,
            cfg.patch_size,
            cfg.image_size,
        );
        let gs = s / p;
        let n = gs * gs;
        let eps = cfg.layer_norm_eps as f32;
        let w = &self.w;
        let mut g = Graph::new();
        let pix = g.input("pixel_values", &[b, c, s, s], DType::F32)?;
        let x = g.reshape(pix, &[b, c, gs, p, gs, p])?;
        let x = g.permute(x, &[0, 2, 4, 1, 3, 5])?;
        let x = g.reshape(x, &[b, n, c * p * p])?;
        let (pw, pb) = (g.constant(&w.patch_w)?, g.constant(&w.patch_b)?);
        let x = g.linear(x, pw, true, Some(pb), Act::None, None)?;
        let cls = g.constant(&w.cls)?;
        let cls = g.expand(cls, &[b, 1, h])?;
        let x = g.concat(&[cls, x], 1)?;
        let pos = g.constant(&w.pos)?;
        let mut x = g.add(x, pos)?;
        let heads = cfg.num_attention_heads;
        let attn = Attention {
            heads,
            head_dim: h / heads,
            scale: 1.0 / ((h / heads) as f32).sqrt(),
            causal: false,
            q_col: 0,
            k_col: h,
            v_col: 2 * h,
            mask: false,
            past: false,
        };
        for l in &w.layers {
            let (g1, b1) = (g.constant(&l.ln1.0)?, g.constant(&l.ln1.1)?);
            let y = g.layernorm(x, g1, b1, eps)?;
            let (qw, qb) = (g.constant(&l.qkv_w)?, g.constant(&l.qkv_b)?);
            let qkv = g.linear(y, qw, true, Some(qb), Act::None, None)?;
            let a = g.attention(attn.clone(), qkv, qkv, qkv, None, None)?;
            let (ow, ob) = (g.constant(&l.o_w)?, g.constant(&l.o_b)?);
            x = g.linear(a, ow, true, Some(ob), Act::None, Some(x))?;
            let (g2, b2) = (g.constant(&l.ln2.0)?, g.constant(&l.ln2.1)?);
            let y = g.layernorm(x, g2, b2, eps)?;
            let (iw, ib) = (g.constant(&l.i_w)?, g.constant(&l.i_b)?);
            let f = g.linear(y, iw, true, Some(ib), self.act, None)?;
            let (ow2, ob2) = (g.constant(&l.out_w)?, g.constant(&l.out_b)?);
            x = g.linear(f, ow2, true, Some(ob2), Act::None, Some(x))?;
        }
        let (lg, lb) = (g.constant(&w.ln.0)?, g.constant(&w.ln.1)?);
        let x = g.layernorm(x, lg, lb, eps)?;
        g.output("last_hidden_state", x);
        let cls = g.slice(x, 1, 0, 1)?;
        let cls = g.reshape(cls, &[b, h])?;
        if let Some((cw, cb)) = &w.classifier {
            let (cw, cb) = (g.constant(cw)?, g.constant(cb)?);
            let logits = g.linear(cls, cw, true, Some(cb), Act::None, None)?;
            g.output("logits", logits);
        }
        if let Some((pw, pb)) = &w.pooler {
            let (pw, pb) = (g.constant(pw)?, g.constant(pb)?);
            let pooled = g.linear(cls, pw, true, Some(pb), Act::Tanh, None)?;
            g.output("pooler_output", pooled);
        }
        Ok(g)
    }

    /// Runs the model on preprocessed pixel values [batch, 3, S, S].
    pub fn forward(&self, pixel_values: &Tensor) -> Result<VitOutput> {
        let cfg = &self.config;
        let want = [cfg.num_channels, cfg.image_size, cfg.image_size];
        let shape = pixel_values.shape();
        if shape.len() != 4 || shape[1..] != want || shape[0] == 0 {
            return Err(Error::InvalidArgument(format!(
                "pixel_values must be [batch, {}, {}, {}], got {shape:?}",
                want[0], want[1], want[2]
            )));
        }
        let mut plans = self.plans.lock().unwrap();
        let b = shape[0];
        let plan = plans.get_or_build(b, || self.backend.compile(Arc::new(self.build(b)?), &[]))?;
        let mut outs = plan.run(&[pixel_values])?.into_iter();
        let last_hidden_state = outs.next().expect("hidden output");
        let logits = self.w.classifier.as_ref().and_then(|_| outs.next());
        let pooler_output = self.w.pooler.as_ref().and_then(|_| outs.next());
        Ok(VitOutput {
            last_hidden_state,
            logits,
            pooler_output,
        })
    }

    /// Preprocesses, batches and classifies image files; returns the `top_k` classes of each
    /// (softmax scores), in input order.
    pub fn classify<P: AsRef<Path>>(
        &self,
        images: &[P],
        top_k: usize,
    ) -> Result<Vec<Vec<Prediction>>> {
        if self.w.classifier.is_none() {
            return Err(Error::InvalidArgument(
                "this checkpoint has no classifier (a bare ViTModel): use embed()".into(),
            ));
        }
        if top_k == 0 {
            return Err(Error::InvalidArgument("top-k must be at least 1".into()));
        }
        let mut out = Vec::with_capacity(images.len());
        self.batched(images, |o| {
            let logits = o.logits.as_ref().expect("classifier output");
            let l = self.labels.len();
            for row in logits.as_f32()?.chunks(l) {
                let probs = softmax(row);
                let mut idx: Vec<usize> = (0..l).collect();
                idx.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
                out.push(
                    idx.into_iter()
                        .take(top_k)
                        .map(|i| Prediction {
                            index: i,
                            label: self.labels[i].clone(),
                            score: probs[i],
                        })
                        .collect(),
                );
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// One vector per image: the pooler output when the checkpoint has one, else the final CLS
    /// token.
    pub fn embed<P: AsRef<Path>>(&self, images: &[P]) -> Result<Vec<Vec<f32>>> {
        let h = self.config.hidden_size;
        let mut out = Vec::with_capacity(images.len());
        self.batched(images, |o| {
            match &o.pooler_output {
                Some(p) => out.extend(p.as_f32()?.chunks(h).map(|r| r.to_vec())),
                None => {
                    let t = o.last_hidden_state.shape()[1];
                    out.extend(
                        o.last_hidden_state
                            .as_f32()?
                            .chunks(t * h)
                            .map(|r| r[..h].to_vec()),
                    )
                }
            }
            Ok(())
        })?;
        Ok(out)
    }

    fn batched<P: AsRef<Path>>(
        &self,
        images: &[P],
        mut each: impl FnMut(&VitOutput) -> Result<()>,
    ) -> Result<()> {
        if images.is_empty() {
            return Err(Error::InvalidArgument("no images given".into()));
        }
        let s = self.config.image_size;
        for chunk in images.chunks(self.max_batch) {
            let mut data = Vec::with_capacity(chunk.len() * 3 * s * s);
            for p in chunk {
                data.extend(self.preprocess(p.as_ref())?.as_f32()?);
            }
            let pix = Tensor::from_f32(&[chunk.len(), 3, s, s], data)?;
            each(&self.forward(&pix)?)?;
        }
        Ok(())
    }
}

fn softmax(x: &[f32]) -> Vec<f32> {
    let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let e: Vec<f64> = x.iter().map(|&v| ((v - m) as f64).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|&v| (v / s) as f32).collect()
}
