//! The blocking edge of the model API (native only): loaders from a directory (a thin layer
//! over [`ModelFiles::open`]) and a synchronous twin of every async method, each one
//! `block_on` of its async original. Image files are decoded here (the `images` feature); the
//! async API takes decoded pixels.

use super::bert::{Bert, BertOutput};
use super::causal_lm::CausalLm;
use super::clip::{Clip, ClipTextOutput, ClipVisionOutput, LabelScore};
use super::detect::{DetectOptions, Detection};
use super::files::ModelFiles;
use super::generate::{GenerateOptions, Generation, TokenEvent};
use super::gpt2::{Gpt2, Gpt2Output};
use super::llama::Llama;
use super::options::LoadOptions;
use super::text::TokenBatch;
use super::vit::{Vit, VitOutput};
use super::yolo::Yolo;
use crate::edge::block_on;
use crate::error::Result;
use crate::graph::Backend;
use crate::tensor::Tensor;
use crate::Device;
use image::RgbImage;
use std::path::Path;

impl Bert {
    /// Loads a HuggingFace BERT folder onto a GPU device.
    pub fn from_pretrained(device: &Device, dir: impl AsRef<Path>) -> Result<Bert> {
        Self::load(Backend::Gpu(device.clone()), dir)
    }
    /// Loads a HuggingFace BERT folder for any backend (GPU, or the CPU reference kernels).
    pub fn load(backend: Backend, dir: impl AsRef<Path>) -> Result<Bert> {
        Self::load_with(backend, dir, &LoadOptions::default())
    }
    /// [`Bert::load`] with options (for example f16 weight storage).
    pub fn load_with(backend: Backend, dir: impl AsRef<Path>, opts: &LoadOptions) -> Result<Bert> {
        Self::from_files(backend, &ModelFiles::open(dir)?, opts)
    }
    /// [`Bert::forward_async`], blocking.
    pub fn forward(&self, input: &TokenBatch, hidden_states: bool) -> Result<BertOutput> {
        block_on(self.forward_async(input, hidden_states))
    }
    /// [`Bert::encode_async`], blocking.
    pub fn encode(&self, texts: &[&str]) -> Result<Vec<Tensor>> {
        block_on(self.encode_async(texts))
    }
    /// [`Bert::embed_async`], blocking.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        block_on(self.embed_async(texts))
    }
    /// [`Bert::rerank_async`], blocking.
    pub fn rerank(&self, query: &str, docs: &[&str], truncate: bool) -> Result<Vec<f32>> {
        block_on(self.rerank_async(query, docs, truncate))
    }
}

impl Gpt2 {
    pub fn from_pretrained(device: &Device, dir: impl AsRef<Path>) -> Result<Gpt2> {
        Self::load(Backend::Gpu(device.clone()), dir)
    }
    /// Loads a HuggingFace GPT-2 folder (config.json, model.safetensors, tokenizer.json).
    pub fn load(backend: Backend, dir: impl AsRef<Path>) -> Result<Gpt2> {
        Self::load_with(backend, dir, &LoadOptions::default())
    }
    /// [`Gpt2::load`] with options (for example f16 weight storage).
    pub fn load_with(backend: Backend, dir: impl AsRef<Path>, opts: &LoadOptions) -> Result<Gpt2> {
        Self::from_files(backend, &ModelFiles::open(dir)?, opts)
    }
    /// [`Gpt2::forward_async`], blocking.
    pub fn forward(
        &self,
        ids: &[u32],
        batch: usize,
        seq: usize,
        mask: Option<&[u32]>,
        hidden_states: bool,
    ) -> Result<Gpt2Output> {
        block_on(self.forward_async(ids, batch, seq, mask, hidden_states))
    }
    /// [`Gpt2::generate_stream`], blocking.
    pub fn generate(
        &self,
        prompt: &str,
        opts: &GenerateOptions,
        on_token: impl FnMut(&TokenEvent) -> bool,
    ) -> Result<Generation> {
        block_on(self.generate_stream(prompt, opts, on_token))
    }
    /// [`Gpt2::generate_ids_stream`], blocking.
    pub fn generate_ids(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        on_token: impl FnMut(&TokenEvent) -> bool,
    ) -> Result<Generation> {
        block_on(self.generate_ids_stream(prompt, opts, on_token))
    }
}

impl CausalLm {
    /// Loads a GPT-2 or Llama-architecture folder (by its config.json's `model_type`).
    pub fn load_with(backend: Backend, dir: impl AsRef<Path>, opts: &LoadOptions) -> Result<Self> {
        Self::from_files(backend, &ModelFiles::open(dir)?, opts)
    }
    /// [`CausalLm::generate_ids_stream`], blocking.
    pub fn generate_ids(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        on_token: impl FnMut(&TokenEvent) -> bool,
    ) -> Result<Generation> {
        block_on(self.generate_ids_stream(prompt, opts, on_token))
    }
}

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
        Self::from_files(backend, &ModelFiles::open(dir)?, opts)
    }
    /// [`Vit::forward_async`], blocking.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<VitOutput> {
        block_on(self.forward_async(pixel_values))
    }
    /// [`Vit::classify_async`], blocking.
    pub fn classify_images(
        &self,
        images: &[RgbImage],
        top_k: usize,
    ) -> Result<Vec<Vec<super::vision::Prediction>>> {
        block_on(self.classify_async(images, top_k))
    }
}

#[cfg(feature = "images")]
impl Vit {
    /// Decodes and preprocesses an image file as the checkpoint's image processor does:
    /// [3, S, S] pixel values.
    pub fn preprocess(&self, path: &Path) -> Result<Tensor> {
        self.preprocess_rgb(&crate::imageio::load_rgb(path)?)
    }

    /// Decodes image files a batch at a time and runs `f` on each batch.
    fn decoded<P: AsRef<Path>, T>(
        &self,
        images: &[P],
        f: impl Fn(&[RgbImage]) -> Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        if images.is_empty() {
            return Err(crate::Error::InvalidArgument("no images given".into()));
        }
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.max_batch()) {
            let imgs = chunk
                .iter()
                .map(|p| crate::imageio::load_rgb(p.as_ref()))
                .collect::<Result<Vec<_>>>()?;
            out.extend(f(&imgs)?);
        }
        Ok(out)
    }

    /// Decodes, preprocesses, batches and classifies image files; the `top_k` classes of each
    /// (softmax scores), in input order.
    pub fn classify<P: AsRef<Path>>(
        &self,
        images: &[P],
        top_k: usize,
    ) -> Result<Vec<Vec<super::vision::Prediction>>> {
        self.decoded(images, |imgs| block_on(self.classify_async(imgs, top_k)))
    }

    /// One vector per image file (see [`Vit::embed_async`]).
    pub fn embed<P: AsRef<Path>>(&self, images: &[P]) -> Result<Vec<Vec<f32>>> {
        self.decoded(images, |imgs| block_on(self.embed_async(imgs)))
    }
}

impl Llama {
    /// Loads a `LlamaForCausalLM` / `Qwen2ForCausalLM` folder.
    pub fn load(backend: Backend, dir: impl AsRef<Path>) -> Result<Llama> {
        Self::load_with(backend, dir, &LoadOptions::default())
    }
    /// [`Llama::load`] with options (for example f16 weight storage).
    pub fn load_with(backend: Backend, dir: impl AsRef<Path>, opts: &LoadOptions) -> Result<Llama> {
        Self::from_files(backend, &ModelFiles::open(dir)?, opts)
    }
    /// [`Llama::forward_async`], blocking.
    pub fn forward(
        &self,
        ids: &[u32],
        batch: usize,
        seq: usize,
        mask: Option<&[u32]>,
    ) -> Result<Tensor> {
        block_on(self.forward_async(ids, batch, seq, mask))
    }
    /// [`Llama::generate_stream`], blocking.
    pub fn generate(
        &self,
        prompt: &str,
        opts: &GenerateOptions,
        on_token: impl FnMut(&TokenEvent) -> bool,
    ) -> Result<Generation> {
        block_on(self.generate_stream(prompt, opts, on_token))
    }
    /// [`Llama::generate_ids_stream`], blocking.
    pub fn generate_ids(
        &self,
        prompt: &[u32],
        opts: &GenerateOptions,
        on_token: impl FnMut(&TokenEvent) -> bool,
    ) -> Result<Generation> {
        block_on(self.generate_ids_stream(prompt, opts, on_token))
    }
}

impl Clip {
    pub fn from_pretrained(device: &Device, dir: impl AsRef<Path>) -> Result<Clip> {
        Self::load(Backend::Gpu(device.clone()), dir)
    }
    /// Loads a HuggingFace `CLIPModel` folder (config.json, model.safetensors, tokenizer.json,
    /// preprocessor_config.json).
    pub fn load(backend: Backend, dir: impl AsRef<Path>) -> Result<Clip> {
        Self::load_with(backend, dir, &LoadOptions::default())
    }
    /// [`Clip::load`] with options (for example f16 weight storage).
    pub fn load_with(backend: Backend, dir: impl AsRef<Path>, opts: &LoadOptions) -> Result<Clip> {
        Self::from_files(backend, &ModelFiles::open(dir)?, opts)
    }
    /// [`Clip::text_forward_async`], blocking.
    pub fn text_forward(&self, input: &TokenBatch) -> Result<ClipTextOutput> {
        block_on(self.text_forward_async(input))
    }
    /// [`Clip::vision_forward_async`], blocking.
    pub fn vision_forward(&self, pixel_values: &Tensor) -> Result<ClipVisionOutput> {
        block_on(self.vision_forward_async(pixel_values))
    }
    /// [`Clip::embed_texts_async`], blocking.
    pub fn embed_texts(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        block_on(self.embed_texts_async(texts))
    }
    /// [`Clip::zero_shot_async`] of decoded images, blocking.
    pub fn zero_shot_images(
        &self,
        images: &[RgbImage],
        labels: &[&str],
    ) -> Result<Vec<Vec<LabelScore>>> {
        block_on(self.zero_shot_async(images, labels))
    }
}

#[cfg(feature = "images")]
impl Clip {
    fn decoded<P: AsRef<Path>>(&self, images: &[P]) -> Result<Vec<RgbImage>> {
        if images.is_empty() {
            return Err(crate::Error::InvalidArgument("no images given".into()));
        }
        images
            .iter()
            .map(|p| crate::imageio::load_rgb(p.as_ref()))
            .collect()
    }

    /// L2-normalized embeddings of image files, decoded a batch at a time.
    pub fn embed_images<P: AsRef<Path>>(&self, images: &[P]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.max_batch()) {
            out.extend(block_on(self.embed_images_async(&self.decoded(chunk)?))?);
        }
        Ok(out)
    }

    /// Zero-shot label probabilities of image files (see [`Clip::zero_shot_async`]).
    pub fn zero_shot<P: AsRef<Path>>(
        &self,
        images: &[P],
        labels: &[&str],
    ) -> Result<Vec<Vec<LabelScore>>> {
        if labels.is_empty() {
            return Err(crate::Error::InvalidArgument("no labels given".into()));
        }
        let texts = self.embed_texts(labels)?;
        let imgs = self.embed_images(images)?;
        Ok(self.scores(&self.similarity(&imgs, &texts), labels))
    }
}

impl Yolo {
    pub fn from_pretrained(device: &Device, dir: impl AsRef<Path>) -> Result<Yolo> {
        Self::load(Backend::Gpu(device.clone()), dir)
    }
    /// Loads a folder written by tools/yolo_to_safetensors.py.
    pub fn load(backend: Backend, dir: impl AsRef<Path>) -> Result<Yolo> {
        Self::from_files(backend, &ModelFiles::open(dir)?)
    }
    /// [`Yolo::forward_async`], blocking.
    pub fn forward(&self, images: &Tensor) -> Result<Tensor> {
        block_on(self.forward_async(images))
    }
    /// [`Yolo::forward_all_async`], blocking.
    pub fn forward_all(&self, images: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        block_on(self.forward_all_async(images))
    }
    /// [`Yolo::detect_async`], blocking.
    pub fn detect_image(&self, img: &RgbImage, opts: &DetectOptions) -> Result<Vec<Detection>> {
        block_on(self.detect_async(img, opts))
    }
    /// Detects objects in an image file; detections sorted by score, best first.
    #[cfg(feature = "images")]
    pub fn detect(&self, path: &Path, opts: &DetectOptions) -> Result<Vec<Detection>> {
        opts.validate()?;
        let img = crate::imageio::load_rgb_as(path, crate::imageio::Convention::OpenCv)?;
        self.detect_image(&img, opts)
    }
}
