//! CLIP (HF `CLIPModel`): a text tower and a vision tower that embed into one space, for
//! image–text search and zero-shot labels.
//!
//! ```text
//! ids ─ token_emb + pos_emb ─ [× L pre-norm causal TransformerLayer] ─ final LN ─ state at EOS ─ text_projection ─ text_embeds
//! pixels ─ patches (conv, no bias) ─ [CLS] ─ + pos_emb ─ pre_layrnorm ─ [× L pre-norm TransformerLayer]
//!        ─ CLS ─ post_layernorm ─ visual_projection ─ image_embeds
//! logits_per_image = exp(logit_scale) · normalize(image_embeds) · normalize(text_embeds)ᵀ
//! ```
//! Both towers ([`super::clip_towers`]) are the shared `TransformerLayer` with quick_gelu MLPs;
//! the vision front end is the ViT family's `PatchEmbedding`. The similarity itself (a few
//! hundred dot products) is computed on the host from the read-back embeddings.

use super::clip_config::ClipConfig;
use super::clip_towers::ClipWeights;
use super::family::FamilyConfig;
use super::files::ModelFiles;
use super::loader::{Folder, Loaded};
use super::nn::TensorSource;
use super::options::LoadOptions;
use super::runner::Runner;
use super::text::{TextEncoder, TokenBatch};
use super::vision::ImageProcessorConfig;
use crate::error::{check_finite, Error, Result};
use crate::graph::Backend;
use crate::tensor::Tensor;
use image::RgbImage;
use std::sync::Arc;

/// Outputs of the text tower, padded like the input.
#[derive(Clone, Debug)]
pub struct ClipTextOutput {
    /// [batch, seq, hidden] after the final LayerNorm.
    pub last_hidden_state: Tensor,
    /// [batch, hidden]: the final state at each row's EOS.
    pub pooler_output: Tensor,
    /// [batch, projection_dim]: `text_projection(pooler_output)`, not normalized.
    pub text_embeds: Tensor,
}

/// Outputs of the vision tower.
#[derive(Clone, Debug)]
pub struct ClipVisionOutput {
    /// [batch, tokens, hidden] (before `post_layernorm`, as transformers returns it).
    pub last_hidden_state: Tensor,
    /// [batch, hidden]: `post_layernorm(CLS)`.
    pub pooler_output: Tensor,
    /// [batch, projection_dim]: `visual_projection(pooler_output)`, not normalized.
    pub image_embeds: Tensor,
}

/// One label's zero-shot probability.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LabelScore {
    pub label: String,
    pub score: f32,
}

/// What a compiled plan runs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Key {
    Text(usize, usize),
    Vision(usize),
}

/// A loaded CLIP model. `Send + Sync`.
pub struct Clip {
    name: String,
    config: ClipConfig,
    processor: ImageProcessorConfig,
    /// None for a model built from a weight source without a tokenizer (benchmarks).
    text: Option<TextEncoder>,
    w: Arc<Loaded<ClipWeights>>,
    max_batch: usize,
    runner: Runner<Key>,
    warnings: Vec<String>,
}

impl Clip {
    /// Loads a `CLIPModel` folder (config.json, model.safetensors, tokenizer.json,
    /// preprocessor_config.json), in memory or on disk.
    pub fn from_files(backend: Backend, files: &ModelFiles, opts: &LoadOptions) -> Result<Clip> {
        let f: Folder<ClipConfig> = Folder::open(files, &[], "logit_scale")?;
        let v = &f.config.vision_config;
        let (processor, mut warnings) = ImageProcessorConfig::read(files, v.image_size)?;
        processor
            .check(v.num_channels, v.image_size)
            .map_err(|e| match e {
                Error::InvalidArgument(msg) => Error::Config {
                    path: files.path("preprocessor_config.json"),
                    msg,
                },
                other => other,
            })?;
        let tokenizer = f.tokenizer()?;
        let w = f.load(opts, &["position_ids"], |vb| {
            ClipWeights::load(&f.config, vb)
        })?;
        warnings.extend(w.warnings.iter().cloned());
        let mut m = Self::from_parts(backend, f.config, processor, w, Some(tokenizer))?;
        m.name = files.name();
        m.warnings = warnings;
        Ok(m)
    }

    /// Builds a model from a config and a weight source (for example random weights of a real
    /// model's size, for benchmarks); without a tokenizer, run the text tower on token ids
    /// ([`Clip::text_forward_async`]).
    pub fn from_source(
        backend: Backend,
        config: ClipConfig,
        processor: ImageProcessorConfig,
        w: &dyn TensorSource,
        tokenizer: Option<tokenizers::Tokenizer>,
        opts: &LoadOptions,
    ) -> Result<Clip> {
        config.check().map_err(Error::InvalidArgument)?;
        let v = &config.vision_config;
        processor.check(v.num_channels, v.image_size)?;
        let loaded = super::loader::from_source(w, opts, |vb| ClipWeights::load(&config, vb))?;
        Self::from_parts(backend, config, processor, loaded, tokenizer)
    }

    fn from_parts(
        backend: Backend,
        config: ClipConfig,
        processor: ImageProcessorConfig,
        w: Arc<Loaded<ClipWeights>>,
        tokenizer: Option<tokenizers::Tokenizer>,
    ) -> Result<Clip> {
        let max_len = config.text_config.max_position_embeddings;
        Ok(Clip {
            name: String::new(),
            text: tokenizer
                .map(|t| TextEncoder::new(t, max_len))
                .transpose()?,
            config,
            processor,
            warnings: w.warnings.clone(),
            w,
            max_batch: 32,
            runner: Runner::new(backend, 12),
        })
    }

    fn text(&self) -> Result<&TextEncoder> {
        self.text
            .as_ref()
            .ok_or_else(|| Error::InvalidArgument("this model has no tokenizer".into()))
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn config(&self) -> &ClipConfig {
        &self.config
    }
    pub fn backend(&self) -> &Backend {
        self.runner.backend()
    }
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// Width of the shared embedding space.
    pub fn dim(&self) -> usize {
        self.config.projection_dim
    }
    /// Longest token sequence (special tokens included); longer texts are cut.
    pub fn max_len(&self) -> usize {
        self.config.text_config.max_position_embeddings
    }
    /// `exp(logit_scale)`: what cosine similarities are multiplied by before the softmax.
    pub fn logit_scale(&self) -> f32 {
        self.w.logit_scale.exp()
    }
    /// Device memory of the largest plan run so far, and the dispatches of the last one.
    pub fn memory_and_dispatches(&self) -> (u64, usize) {
        self.runner.memory_and_dispatches()
    }
    /// Kernels the last forward ran.
    pub fn kernels(&self) -> Vec<String> {
        self.runner.kernels()
    }
    /// Texts or images per forward pass (larger inputs are split).
    pub fn set_max_batch(&mut self, n: usize) {
        self.max_batch = n.max(1);
    }
    #[cfg(feature = "images")]
    pub(crate) fn max_batch(&self) -> usize {
        self.max_batch
    }
    /// The tokenizer (set to truncate to `max_len`), if the model has one.
    pub fn tokenizer(&self) -> Option<&tokenizers::Tokenizer> {
        self.text.as_ref().map(TextEncoder::tokenizer)
    }

    /// Fails for the first text longer than `max_len` tokens (`embed_texts` cuts such texts,
    /// as CLIP's tokenizer does with truncation on; call this first to refuse them).
    pub fn check_lengths(&self, texts: &[&str]) -> Result<()> {
        self.text()?.check_lengths(texts)
    }

    /// Tokenizes texts (cut to `max_len`) into a padded batch.
    pub fn tokenize(&self, texts: &[&str]) -> Result<TokenBatch> {
        TokenBatch::pad(&self.text()?.encode(texts)?)
    }

    /// Preprocesses decoded RGB pixels as the checkpoint's image processor does: [3, S, S].
    pub fn preprocess_rgb(&self, img: &RgbImage) -> Result<Tensor> {
        self.processor
            .preprocess(img, self.config.vision_config.image_size)
    }

    /// The text tower over a padded batch (at most `max_len` tokens per row).
    pub async fn text_forward_async(&self, input: &TokenBatch) -> Result<ClipTextOutput> {
        let c = &self.config.text_config;
        input.check(c.vocab_size, 1, c.max_position_embeddings)?;
        let (b, s) = (input.batch, input.seq);
        let bias = (input.attention_mask.iter())
            .map(|&m| if m != 0 { 0.0 } else { f32::MIN })
            .collect();
        let positions = (0..b).flat_map(|_| 0..s as u32).collect();
        let rows = c.pooled_rows(&input.input_ids, &input.attention_mask, s);
        let feeds = [
            Tensor::from_u32(&[b, s], input.input_ids.clone())?,
            Tensor::from_u32(&[b, s], positions)?,
            Tensor::from_f32(&[b, s], bias)?,
            Tensor::from_u32(&[b], rows)?,
        ];
        let refs: Vec<&Tensor> = feeds.iter().collect();
        let mut out = (self.runner)
            .run(
                Key::Text(b, s),
                || self.w.text.graph(&self.config.text_config, b, s),
                &refs,
            )
            .await?;
        let text_embeds = out.take("text_embeds")?;
        check_finite(|| "CLIP text embeddings".into(), text_embeds.as_f32()?)?;
        Ok(ClipTextOutput {
            last_hidden_state: out.take("last_hidden_state")?,
            pooler_output: out.take("pooler_output")?,
            text_embeds,
        })
    }

    /// The vision tower over preprocessed pixel values [batch, 3, S, S].
    pub async fn vision_forward_async(&self, pixel_values: &Tensor) -> Result<ClipVisionOutput> {
        let c = &self.config.vision_config;
        let want = [c.num_channels, c.image_size, c.image_size];
        let shape = pixel_values.shape();
        if shape.len() != 4 || shape[1..] != want || shape[0] == 0 {
            return Err(Error::InvalidArgument(format!(
                "pixel_values must be [batch, {}, {}, {}], got {shape:?}",
                want[0], want[1], want[2]
            )));
        }
        let b = shape[0];
        let mut out = (self.runner)
            .run(
                Key::Vision(b),
                || self.w.vision.graph(&self.config.vision_config, b),
                &[pixel_values],
            )
            .await?;
        let image_embeds = out.take("image_embeds")?;
        check_finite(|| "CLIP image embeddings".into(), image_embeds.as_f32()?)?;
        Ok(ClipVisionOutput {
            last_hidden_state: out.take("last_hidden_state")?,
            pooler_output: out.take("pooler_output")?,
            image_embeds,
        })
    }

    /// L2-normalized text embeddings (what `embed` prints for a CLIP folder), in input order.
    pub async fn embed_texts_async(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let encs = self.text()?.encode(texts)?;
        let mut out = Vec::with_capacity(texts.len());
        for chunk in encs.chunks(self.max_batch) {
            let o = self.text_forward_async(&TokenBatch::pad(chunk)?).await?;
            out.extend(normalized_rows(&o.text_embeds)?);
        }
        Ok(out)
    }

    /// L2-normalized image embeddings of decoded images, in input order.
    pub async fn embed_images_async(&self, images: &[RgbImage]) -> Result<Vec<Vec<f32>>> {
        if images.is_empty() {
            return Err(Error::InvalidArgument("no images given".into()));
        }
        let s = self.config.vision_config.image_size;
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.max_batch) {
            let mut data = Vec::with_capacity(chunk.len() * 3 * s * s);
            for img in chunk {
                data.extend(self.preprocess_rgb(img)?.as_f32()?);
            }
            let pix = Tensor::from_f32(&[chunk.len(), 3, s, s], data)?;
            let o = self.vision_forward_async(&pix).await?;
            out.extend(normalized_rows(&o.image_embeds)?);
        }
        Ok(out)
    }

    /// `logits_per_image` [images, labels]: `exp(logit_scale)` times the cosine similarity
    /// of every image with every label, from normalized embeddings.
    pub fn similarity(&self, images: &[Vec<f32>], texts: &[Vec<f32>]) -> Tensor {
        let scale = self.logit_scale();
        let v = images
            .iter()
            .flat_map(|i| {
                texts
                    .iter()
                    .map(move |t| scale * i.iter().zip(t).map(|(a, b)| a * b).sum::<f32>())
            })
            .collect();
        Tensor::from_f32(&[images.len(), texts.len()], v).expect("sized")
    }

    /// Zero-shot classification: per image, the softmax over `labels` of `logits_per_image`,
    /// best first.
    pub async fn zero_shot_async(
        &self,
        images: &[RgbImage],
        labels: &[&str],
    ) -> Result<Vec<Vec<LabelScore>>> {
        if labels.is_empty() {
            return Err(Error::InvalidArgument("no labels given".into()));
        }
        let texts = self.embed_texts_async(labels).await?;
        let imgs = self.embed_images_async(images).await?;
        Ok(self.scores(&self.similarity(&imgs, &texts), labels))
    }

    /// Softmax of each row of `logits_per_image` with its labels, best first.
    pub fn scores(&self, logits: &Tensor, labels: &[&str]) -> Vec<Vec<LabelScore>> {
        let l = logits.as_f32().expect("f32 logits");
        l.chunks(labels.len().max(1))
            .map(|row| {
                let mx = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                let e: Vec<f64> = row.iter().map(|&x| ((x - mx) as f64).exp()).collect();
                let sum: f64 = e.iter().sum();
                let mut s: Vec<LabelScore> = labels
                    .iter()
                    .zip(e)
                    .map(|(l, e)| LabelScore {
                        label: l.to_string(),
                        score: (e / sum) as f32,
                    })
                    .collect();
                s.sort_by(|a, b| b.score.total_cmp(&a.score));
                s
            })
            .collect()
    }
}

/// Each row of `t` [n, d] divided by its L2 norm (as transformers' `_get_vector_norm`).
fn normalized_rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    let d = t.shape()[1];
    Ok(t.as_f32()?
        .chunks(d)
        .map(|r| {
            let n = r.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
            r.iter().map(|&x| (x as f64 / n) as f32).collect()
        })
        .collect())
}
