//! The JS classes `Bert`, `Gpt2`, `Vit` and `Yolo`: each `load`s a folder (URL or file map)
//! onto a `Device` and calls the core's async API. Every method returns a promise; every
//! failure rejects it with the native error's message.

use super::device::WebDevice;
use super::files::FolderSource;
use super::js::{callback, describe, js_error, object, options, rgb_image, to_js, JsResult};
use crate::graph::Backend;
use crate::models::bert::BertConfig;
use crate::models::detect::DetectOptions;
use crate::models::family::FamilyConfig;
use crate::models::generate::GenerateOptions;
use crate::models::gpt2::Gpt2Config;
use crate::models::sentence::Pooling;
use crate::models::vit::VitConfig;
use crate::models::yolo::YoloConfig;
use crate::models::{Bert, Gpt2, LoadOptions, ModelFiles, Vit, Yolo};
use crate::tensor::DType;
use js_sys::{Array, Float32Array, Function, Promise};
use serde::Deserialize;
use std::future::Future;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

/// Runs `f` as a promise, every error a rejection.
fn promise(f: impl Future<Output = JsResult<JsValue>> + 'static) -> Promise {
    future_to_promise(f)
}

/// `load(device, source, options)` options shared by every family.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LoadOpts {
    /// "f32" (default), "f16" or "q8": the storage type of the large weights.
    dtype: Option<String>,
    /// Read from and store into the Cache API (default true).
    cache: Option<bool>,
    /// A label for a file map (errors name files `name/config.json`).
    name: Option<String>,
}

/// Fetches the folder of family `C` and returns it with the load options.
async fn folder<C: FamilyConfig>(
    source: JsValue,
    opts: JsValue,
    what: &str,
) -> JsResult<(ModelFiles, LoadOptions)> {
    let o: LoadOpts = options(&opts, what)?;
    let dtype = match o.dtype.as_deref() {
        None | Some("f32") => DType::F32,
        Some("f16") => DType::F16,
        Some("q8") => DType::Q8,
        Some(other) => {
            return Err(js_error(format!(
                "{what}: unknown dtype '{other}' (f32, f16, q8)"
            )))
        }
    };
    let on_progress = callback(&opts, "onProgress", what)?;
    let src = FolderSource::new(source, on_progress, o.cache.unwrap_or(true), o.name);
    let files = src.fetch::<C>().await?;
    Ok((files, LoadOptions::with_dtype(dtype)))
}

/// The body of every `Class.load(device, source, options)`: fetch the folder of family `C`,
/// build the model with `build`, hand it to JS as `wrap` makes it.
fn load_model<C: FamilyConfig, M: 'static, W: Into<JsValue> + 'static>(
    device: &WebDevice,
    source: JsValue,
    options: Option<JsValue>,
    what: &'static str,
    build: impl FnOnce(Backend, &ModelFiles, &LoadOptions) -> crate::Result<M> + 'static,
    wrap: fn(Rc<M>) -> W,
) -> Promise {
    let options = options.unwrap_or(JsValue::UNDEFINED);
    let dev = device.device().clone();
    promise(async move {
        let (files, opts) = folder::<C>(source, options, what).await?;
        let m = build(Backend::Gpu(dev), &files, &opts).map_err(js_error)?;
        Ok(wrap(Rc::new(m)).into())
    })
}

/// The texts argument: an array of strings (or one string).
fn texts(v: &JsValue, what: &str) -> JsResult<Vec<String>> {
    if let Some(s) = v.as_string() {
        return Ok(vec![s]);
    }
    if !Array::is_array(v) {
        return Err(js_error(format!("{what}: expected an array of strings")));
    }
    Array::from(v)
        .iter()
        .enumerate()
        .map(|(i, t)| {
            t.as_string()
                .ok_or_else(|| js_error(format!("{what}: item {i} is not a string")))
        })
        .collect()
}

fn vectors(vs: Vec<Vec<f32>>) -> JsValue {
    vs.iter()
        .map(|v| JsValue::from(Float32Array::from(v.as_slice())))
        .collect::<Array>()
        .into()
}

fn warnings(w: &[String]) -> JsValue {
    w.iter()
        .map(|s| JsValue::from_str(s))
        .collect::<Array>()
        .into()
}

// ---------------------------------------------------------------- BERT

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct EmbedOpts {
    normalize: Option<bool>,
    pooling: Option<String>,
    /// Cut texts longer than the model's maximum length (else refused, as the CLI does).
    truncate: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RerankOpts {
    raw_scores: Option<bool>,
    truncate: Option<bool>,
}

/// A BERT-family text encoder: sentence embeddings, and cross-encoder reranking when the
/// folder has a classification head.
#[wasm_bindgen(js_name = Bert)]
pub struct WebBert {
    m: Rc<Bert>,
}

#[wasm_bindgen(js_class = Bert)]
impl WebBert {
    /// Loads a model folder: a URL (`"models/all-MiniLM-L6-v2/"`) or a `{ name: ArrayBuffer }`
    /// map. Options: `{ dtype, cache, onProgress }`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Bert>")]
    pub fn load(
        device: &WebDevice,
        #[wasm_bindgen(
            unchecked_param_type = "string | Record<string, ArrayBuffer | Uint8Array | Blob>"
        )]
        source: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<JsValue>,
    ) -> Promise {
        load_model::<BertConfig, _, _>(
            device,
            source,
            options,
            "Bert.load",
            |b, f, o| Bert::from_files(b, f, o),
            |m| WebBert { m },
        )
    }

    /// Sentence embeddings, one `Float32Array` per text. Options `{ normalize, pooling,
    /// truncate }` default to the folder's pooling and normalisation and to refusing texts
    /// over the maximum length.
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array[]>")]
    pub fn embed(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string[]")] texts: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "EmbedOptions")] options: Option<JsValue>,
    ) -> Promise {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let m = self.m.clone();
        promise(async move {
            let texts = self::texts(&texts, "Bert.embed")?;
            let o: EmbedOpts = self::options(&options, "Bert.embed")?;
            let pooling = match &o.pooling {
                Some(p) => p.parse::<Pooling>().map_err(js_error)?,
                None => m.pooling(),
            };
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            if !o.truncate.unwrap_or(false) {
                m.check_lengths(&refs).map_err(js_error)?;
            }
            let encs = m.encode_texts(&refs).map_err(js_error)?;
            let normalize = o.normalize.unwrap_or(m.normalize());
            let v = m.embed_pooled_async(&encs, pooling, normalize).await;
            Ok(vectors(v.map_err(js_error)?))
        })
    }

    /// Cross-encoder scores of `(query, doc)` pairs, best first: `[{ index, score }]` (a
    /// sigmoid of the logit unless `rawScores`). Needs a reranker folder (a one-label head).
    #[wasm_bindgen(unchecked_return_type = "Promise<{ index: number, score: number }[]>")]
    pub fn rerank(
        &self,
        query: String,
        #[wasm_bindgen(unchecked_param_type = "string[]")] docs: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "RerankOptions")] options: Option<JsValue>,
    ) -> Promise {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let m = self.m.clone();
        promise(async move {
            let docs = texts(&docs, "Bert.rerank")?;
            let o: RerankOpts = self::options(&options, "Bert.rerank")?;
            let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
            let truncate = o.truncate.unwrap_or(false);
            let logits = m.rerank_async(&query, &refs, truncate).await;
            let ranked = crate::models::rerank::rank(
                &logits.map_err(js_error)?,
                o.raw_scores.unwrap_or(false),
            );
            to_js(&ranked)
        })
    }

    /// `{ name, dim, maxLength, pooling, normalize, labels, warnings }`.
    #[wasm_bindgen(unchecked_return_type = "BertInfo")]
    pub fn info(&self) -> JsValue {
        let m = &self.m;
        let labels = m.num_labels().map_or(JsValue::NULL, |n| (n as f64).into());
        object(&[
            ("name", m.name().into()),
            ("dim", (m.dim() as f64).into()),
            ("maxLength", (m.max_len() as f64).into()),
            (
                "pooling",
                format!("{:?}", m.pooling()).to_lowercase().into(),
            ),
            ("normalize", m.normalize().into()),
            ("labels", labels),
            ("warnings", warnings(m.warnings())),
        ])
    }
}

// ---------------------------------------------------------------- GPT-2

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GenerateOpts {
    max_new_tokens: Option<usize>,
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    seed: Option<u64>,
    stop_at_eos: Option<bool>,
}

/// A GPT-2 text generator.
#[wasm_bindgen(js_name = Gpt2)]
pub struct WebGpt2 {
    m: Rc<Gpt2>,
}

#[wasm_bindgen(js_class = Gpt2)]
impl WebGpt2 {
    /// Loads a GPT-2 folder (config.json, model.safetensors, tokenizer.json).
    #[wasm_bindgen(unchecked_return_type = "Promise<Gpt2>")]
    pub fn load(
        device: &WebDevice,
        #[wasm_bindgen(
            unchecked_param_type = "string | Record<string, ArrayBuffer | Uint8Array | Blob>"
        )]
        source: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<JsValue>,
    ) -> Promise {
        load_model::<Gpt2Config, _, _>(
            device,
            source,
            options,
            "Gpt2.load",
            |b, f, o| Gpt2::from_files(b, f, o),
            |m| WebGpt2 { m },
        )
    }

    /// Generates after `prompt`: `{ tokens, text, promptTokens, stoppedAtEos, prefillMs,
    /// decodeMs }` (tokens and text are the new ones). Options `{ maxNewTokens (64),
    /// temperature (0: greedy), topK, topP, seed, stopAtEos (true), onToken(text, id) }`;
    /// `onToken` returning `false` stops early.
    #[wasm_bindgen(unchecked_return_type = "Promise<Generation>")]
    pub fn generate(
        &self,
        prompt: String,
        #[wasm_bindgen(unchecked_optional_param_type = "GenerateOptions")] options: Option<JsValue>,
    ) -> Promise {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let m = self.m.clone();
        promise(async move {
            let what = "Gpt2.generate";
            let o: GenerateOpts = self::options(&options, what)?;
            let on_token: Option<Function> = callback(&options, "onToken", what)?;
            let mut g = GenerateOptions::default();
            if let Some(n) = o.max_new_tokens {
                g.max_new_tokens = n;
            }
            if let Some(t) = o.temperature {
                g.sampling.temperature = t;
            }
            g.sampling.top_k = o.top_k;
            g.sampling.top_p = o.top_p;
            if let Some(s) = o.seed {
                g.sampling.seed = s;
            }
            if let Some(e) = o.stop_at_eos {
                g.stop_at_eos = e;
            }
            let mut thrown: Option<JsValue> = None;
            let gen = m
                .generate_stream(&prompt, &g, |ev| {
                    let Some(cb) = &on_token else { return true };
                    match cb.call2(&JsValue::NULL, &ev.text.into(), &ev.id.into()) {
                        Ok(v) => v.as_bool() != Some(false),
                        Err(e) => {
                            thrown = Some(e);
                            false
                        }
                    }
                })
                .await
                .map_err(js_error)?;
            if let Some(e) = thrown {
                return Err(js_error(format!("{what}: onToken threw: {}", describe(&e))));
            }
            let ids = |v: &[u32]| -> JsValue {
                v.iter()
                    .map(|&t| JsValue::from(t))
                    .collect::<Array>()
                    .into()
            };
            Ok(object(&[
                ("tokens", ids(&gen.tokens)),
                ("text", gen.text.as_str().into()),
                ("promptTokens", ids(&gen.prompt_tokens)),
                ("stoppedAtEos", gen.stopped_at_eos.into()),
                ("prefillMs", (gen.prefill_secs * 1e3).into()),
                ("decodeMs", (gen.decode_secs * 1e3).into()),
            ]))
        })
    }

    /// `{ name, vocabSize, contextLength, layers, width, warnings }`.
    #[wasm_bindgen(unchecked_return_type = "Gpt2Info")]
    pub fn info(&self) -> JsValue {
        let c = self.m.config();
        object(&[
            ("name", self.m.name().into()),
            ("vocabSize", (c.vocab_size as f64).into()),
            ("contextLength", (c.n_positions as f64).into()),
            ("layers", (c.n_layer as f64).into()),
            ("width", (c.n_embd as f64).into()),
            ("warnings", warnings(self.m.warnings())),
        ])
    }
}

// ---------------------------------------------------------------- ViT

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClassifyOpts {
    top_k: Option<usize>,
}

/// A ViT image classifier / embedder.
#[wasm_bindgen(js_name = Vit)]
pub struct WebVit {
    m: Rc<Vit>,
}

#[wasm_bindgen(js_class = Vit)]
impl WebVit {
    /// Loads a ViT folder (config.json, model.safetensors, preprocessor_config.json).
    #[wasm_bindgen(unchecked_return_type = "Promise<Vit>")]
    pub fn load(
        device: &WebDevice,
        #[wasm_bindgen(
            unchecked_param_type = "string | Record<string, ArrayBuffer | Uint8Array | Blob>"
        )]
        source: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<JsValue>,
    ) -> Promise {
        load_model::<VitConfig, _, _>(
            device,
            source,
            options,
            "Vit.load",
            |b, f, o| Vit::from_files(b, f, o),
            |m| WebVit { m },
        )
    }

    /// The `topK` (5) most likely classes of an image: `[{ index, label, score }]`, softmax
    /// scores, best first.
    #[wasm_bindgen(
        unchecked_return_type = "Promise<{ index: number, label: string, score: number }[]>"
    )]
    pub fn classify(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageData")] image: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "{ topK?: number }")] options: Option<
            JsValue,
        >,
    ) -> Promise {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let m = self.m.clone();
        promise(async move {
            let o: ClassifyOpts = self::options(&options, "Vit.classify")?;
            let img = rgb_image(&image)?;
            let mut top = m
                .classify_async(&[img], o.top_k.unwrap_or(5))
                .await
                .map_err(js_error)?;
            to_js(&top.pop().unwrap_or_default())
        })
    }

    /// The classifier's logits for an image (before softmax).
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array>")]
    pub fn logits(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageData")] image: JsValue,
    ) -> Promise {
        let m = self.m.clone();
        promise(async move {
            let img = rgb_image(&image)?;
            let pv = m.preprocess_rgb(&img).map_err(js_error)?;
            let mut shape = vec![1];
            shape.extend_from_slice(pv.shape());
            let pv = pv.reshape(&shape).map_err(js_error)?;
            let out = m.forward_async(&pv).await.map_err(js_error)?;
            let logits = out.logits.ok_or_else(|| {
                js_error("this checkpoint has no classifier (a bare ViTModel): use embed()")
            })?;
            Ok(Float32Array::from(logits.as_f32().map_err(js_error)?).into())
        })
    }

    /// An image embedding: the pooler output when the checkpoint has one, else the final CLS
    /// token.
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array>")]
    pub fn embed(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageData")] image: JsValue,
    ) -> Promise {
        let m = self.m.clone();
        promise(async move {
            let img = rgb_image(&image)?;
            let mut v = m.embed_async(&[img]).await.map_err(js_error)?;
            Ok(Float32Array::from(v.pop().unwrap_or_default().as_slice()).into())
        })
    }

    /// `{ name, imageSize, labels, warnings }`.
    #[wasm_bindgen(unchecked_return_type = "VitInfo")]
    pub fn info(&self) -> JsValue {
        let labels: Array = self
            .m
            .labels()
            .iter()
            .map(|s| JsValue::from_str(s))
            .collect();
        object(&[
            ("name", self.m.name().into()),
            ("imageSize", (self.m.config().image_size as f64).into()),
            ("labels", labels.into()),
            ("warnings", warnings(self.m.warnings())),
        ])
    }
}

// ---------------------------------------------------------------- YOLO

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DetectOpts {
    conf: Option<f32>,
    iou: Option<f32>,
    imgsz: Option<usize>,
    max_det: Option<usize>,
    rect: Option<bool>,
}

/// A YOLOv8 detector.
#[wasm_bindgen(js_name = Yolo)]
pub struct WebYolo {
    m: Rc<Yolo>,
}

#[wasm_bindgen(js_class = Yolo)]
impl WebYolo {
    /// Loads a YOLO folder (config.json with `names`, model.safetensors). Weights load as f32.
    #[wasm_bindgen(unchecked_return_type = "Promise<Yolo>")]
    pub fn load(
        device: &WebDevice,
        #[wasm_bindgen(
            unchecked_param_type = "string | Record<string, ArrayBuffer | Uint8Array | Blob>"
        )]
        source: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: Option<JsValue>,
    ) -> Promise {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let dev = device.device().clone();
        promise(async move {
            let (files, opts) = folder::<YoloConfig>(source, options, "Yolo.load").await?;
            if opts.dtype != DType::F32 {
                return Err(js_error("Yolo.load: YOLO weights load as f32 only"));
            }
            let m = Yolo::from_files(Backend::Gpu(dev), &files).map_err(js_error)?;
            Ok(WebYolo { m: Rc::new(m) }.into())
        })
    }

    /// Objects in an image, best first: `[{ class_id, label, score, box: [x1, y1, x2, y2] }]`
    /// (segmentation models add `mask: { polygons, area }`)
    /// in the image's pixels. Options (ultralytics' defaults): `{ conf: 0.25, iou: 0.7,
    /// imgsz: 640, maxDet: 300, rect: true }`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Detection[]>")]
    pub fn detect(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImageData")] image: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "DetectOptions")] options: Option<JsValue>,
    ) -> Promise {
        let options = options.unwrap_or(JsValue::UNDEFINED);
        let m = self.m.clone();
        promise(async move {
            let o: DetectOpts = self::options(&options, "Yolo.detect")?;
            let d = DetectOptions::default();
            let opts = DetectOptions {
                conf: o.conf.unwrap_or(d.conf),
                iou: o.iou.unwrap_or(d.iou),
                imgsz: o.imgsz.unwrap_or(d.imgsz),
                max_det: o.max_det.unwrap_or(d.max_det),
                rect: o.rect.unwrap_or(d.rect),
            };
            let img = rgb_image(&image)?;
            let dets = m.detect_async(&img, &opts).await.map_err(js_error)?;
            to_js(&dets)
        })
    }

    /// `{ name, names, warnings }`.
    #[wasm_bindgen(unchecked_return_type = "YoloInfo")]
    pub fn info(&self) -> JsValue {
        let names: Array = self
            .m
            .names()
            .iter()
            .map(|s| JsValue::from_str(s))
            .collect();
        object(&[
            ("name", self.m.name().into()),
            ("names", names.into()),
            ("warnings", warnings(self.m.warnings())),
        ])
    }
}
