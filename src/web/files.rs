//! A model folder for the browser: fetched from a folder URL (with progress events, through the
//! Cache API, every file verified before it is used or cached), or taken from a
//! `{ "config.json": ArrayBuffer, … }` map of files a user dropped on the page. Either way the
//! result is the same [`ModelFiles`] the native loaders read, so every later error is the
//! native one.

use super::js::{get, js_error, JsResult};
use crate::files::Bytes;
use crate::models::family::{self, FamilyConfig};
use crate::models::sentence::SentenceConfig;
use crate::models::{ModelFiles, ModelKind};
use crate::weights::Weights;
use js_sys::{Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(module = "/src/web/fetch.js")]
extern "C" {
    #[wasm_bindgen(js_name = cacheGet)]
    async fn cache_get(url: &str) -> JsValue;
    #[wasm_bindgen(js_name = cachePut)]
    async fn cache_put(url: &str, bytes: &Uint8Array) -> JsValue;
    #[wasm_bindgen(js_name = cacheDelete)]
    async fn cache_delete(url: &str) -> JsValue;
    #[wasm_bindgen(js_name = cacheClear)]
    pub(crate) async fn cache_clear() -> JsValue;
    #[wasm_bindgen(js_name = resolveUrl, catch)]
    fn resolve_url(base: &str, name: &str) -> Result<String, JsValue>;
    #[wasm_bindgen(catch)]
    async fn download(url: &str, progress: &JsValue, max_bytes: f64) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = entryBytes)]
    async fn entry_bytes(v: &JsValue) -> JsValue;
}

/// The largest single file a page takes: its bytes are copied into wasm32 memory (4 GiB in
/// all, shared with everything else), and an allocation that fails there aborts the module.
pub const MAX_FILE: f64 = (2u64 << 30) as f64;

/// Where a folder comes from, and how to report on it.
pub(crate) struct FolderSource {
    source: JsValue,
    /// `onProgress({ file, url, loaded, total, cached })`.
    on_progress: Option<Function>,
    /// Read from and write to the Cache API (default on).
    use_cache: bool,
    /// The label of a file map (default "files").
    name: Option<String>,
}

impl FolderSource {
    pub fn new(
        source: JsValue,
        on_progress: Option<Function>,
        use_cache: bool,
        name: Option<String>,
    ) -> Self {
        FolderSource {
            source,
            on_progress,
            use_cache,
            name,
        }
    }

    /// The files a loader of family `C` reads: config.json first (a config of another family
    /// fails before the weights download), then the weights and the family's other files;
    /// files a loader treats as optional may be absent (404).
    pub async fn fetch<C: FamilyConfig>(&self) -> JsResult<ModelFiles> {
        let mut f = Fetcher::new(self)?;
        f.add("config.json").await?;
        if let Some(text) = f.files.text("config.json").map_err(js_error)? {
            // The same check (and message) as the native loader.
            family::parse::<C>(&f.files.path("config.json"), &text).map_err(js_error)?;
        } else {
            // Let the loader report the missing config, as it does natively.
            return Ok(f.files);
        }
        match C::KIND {
            ModelKind::Bert => {
                f.add("tokenizer.json").await?;
                f.add("modules.json").await?;
                f.add("sentence_bert_config.json").await?;
                let pooling = SentenceConfig::pooling_file(&f.files).map_err(js_error)?;
                f.add(&pooling).await?;
            }
            ModelKind::Gpt2 | ModelKind::Llama => f.add("tokenizer.json").await?,
            ModelKind::Vit => f.add("preprocessor_config.json").await?,
            ModelKind::Yolo => {}
            ModelKind::Clip => {
                f.add("tokenizer.json").await?;
                f.add("preprocessor_config.json").await?;
            }
        }
        f.add("model.safetensors").await?;
        Ok(f.files)
    }
}

enum From {
    /// A folder URL (as given, and with a trailing slash).
    Url(String),
    /// A map of file name → bytes.
    Map(Object),
}

struct Fetcher<'a> {
    src: &'a FolderSource,
    from: From,
    files: ModelFiles,
}

impl<'a> Fetcher<'a> {
    fn new(src: &'a FolderSource) -> JsResult<Self> {
        let (from, label) = if let Some(url) = src.source.as_string() {
            if url.trim().is_empty() {
                return Err(js_error("a model folder URL must not be empty"));
            }
            let label = url.trim_end_matches('/').to_string();
            (From::Url(url), label)
        } else if src.source.is_object() && !src.source.is_function() {
            let label = src.name.clone().unwrap_or_else(|| "files".into());
            (From::Map(src.source.clone().unchecked_into()), label)
        } else {
            return Err(js_error(
                "a model must be loaded from a folder URL (a string) or a { \"config.json\": \
                 ArrayBuffer, … } map of its files",
            ));
        };
        Ok(Fetcher {
            src,
            from,
            files: ModelFiles::new(label),
        })
    }

    /// Adds `name` to the folder if the source has it.
    async fn add(&mut self, name: &str) -> JsResult<()> {
        let bytes = match &self.from {
            From::Map(map) => {
                let v = Reflect::get(map, &JsValue::from_str(name)).unwrap_or(JsValue::UNDEFINED);
                if v.is_undefined() || v.is_null() {
                    return Ok(());
                }
                let b = entry_bytes(&v).await;
                if b.is_null() {
                    return Err(js_error(format!(
                        "{}: expected an ArrayBuffer, a typed array or a Blob for this file",
                        self.files.path(name).display()
                    )));
                }
                let b: Uint8Array = b.unchecked_into();
                if b.length() as f64 > MAX_FILE {
                    return Err(js_error(format!(
                        "{}: {} bytes is over the {MAX_FILE}-byte limit for one file in a browser \
                         page (wasm32 memory)",
                        self.files.path(name).display(),
                        b.length()
                    )));
                }
                self.report(name, name, b.length() as f64, b.length() as f64, false);
                Bytes::new(b.to_vec())
            }
            From::Url(base) => {
                let url = resolve_url(base, name)
                    .map_err(|_| js_error(format!("{base}: not a valid folder URL")))?;
                match self.fetch_verified(name, &url).await? {
                    Some(b) => b,
                    None => return Ok(()),
                }
            }
        };
        self.files.insert(name, bytes);
        Ok(())
    }

    /// The bytes of `url` from the cache or the network, verified; `None` on a 404.
    async fn fetch_verified(&self, name: &str, url: &str) -> JsResult<Option<Bytes>> {
        if self.src.use_cache {
            let hit = cache_get(url).await;
            let hit = hit
                .dyn_into::<Uint8Array>()
                .ok()
                .filter(|b| b.length() as f64 <= MAX_FILE);
            if let Some(hit) = hit {
                let bytes = Bytes::new(hit.to_vec());
                if self.verify(name, &bytes).is_ok() {
                    let n = bytes.len() as f64;
                    self.report(name, url, n, n, true);
                    return Ok(Some(bytes));
                }
                // A bad entry (an older, broken write): drop it and download again.
                cache_delete(url).await;
            }
        }
        let progress = match &self.src.on_progress {
            Some(cb) => {
                let cb = cb.clone();
                let (file, u) = (name.to_string(), url.to_string());
                Closure::<dyn Fn(f64, f64)>::new(move |loaded: f64, total: f64| {
                    let _ = cb.call1(&JsValue::NULL, &event(&file, &u, loaded, total, false));
                })
                .into_js_value()
            }
            None => JsValue::UNDEFINED,
        };
        let r = download(url, &progress, MAX_FILE).await?;
        let status = get(&r, "status")?.as_f64().unwrap_or(0.0) as u32;
        if status == 404 {
            return Ok(None);
        }
        let path = self.files.path(name).display().to_string();
        let expected = get(&r, "expected")?.as_f64().unwrap_or(-1.0);
        let html =
            (get(&r, "contentType")?.as_string().unwrap_or_default()).starts_with("text/html");
        if html && (200..300).contains(&status) {
            // What a dev server's single-page-app fallback answers for a file it does not have:
            // an absent optional file, a missing required one (the loader says which).
            return Ok(None);
        }
        let body = get(&r, "bytes")?;
        if body.is_null() || body.is_undefined() {
            if expected > MAX_FILE {
                return Err(js_error(format!(
                    "{path}: {expected} bytes is over the {MAX_FILE}-byte limit for one file in a \
                     browser page (wasm32 memory)"
                )));
            }
            let text = get(&r, "statusText")?.as_string().unwrap_or_default();
            return Err(js_error(format!("{url}: HTTP {status} {text}")));
        }
        let body: Uint8Array = body.unchecked_into();
        if expected >= 0.0 && body.length() as f64 != expected {
            return Err(js_error(format!(
                "{path}: truncated download: got {} of {expected} bytes",
                body.length(),
            )));
        }
        let bytes = Bytes::new(body.to_vec());
        self.verify(name, &bytes).map_err(js_error)?;
        if self.src.use_cache {
            cache_put(url, &body).await;
        }
        Ok(Some(bytes))
    }

    /// What can be checked of a file alone: the safetensors header against the file size (the
    /// native loader's check and message), JSON syntax.
    fn verify(&self, name: &str, bytes: &Bytes) -> crate::Result<()> {
        let path = self.files.path(name);
        if name.ends_with(".safetensors") {
            Weights::from_bytes(path, bytes.clone())?;
        } else if name.ends_with(".json") {
            serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|e| {
                crate::Error::Config {
                    path,
                    msg: format!("not valid JSON: {e}"),
                }
            })?;
        }
        Ok(())
    }

    fn report(&self, file: &str, url: &str, loaded: f64, total: f64, cached: bool) {
        if let Some(cb) = &self.src.on_progress {
            let _ = cb.call1(&JsValue::NULL, &event(file, url, loaded, total, cached));
        }
    }
}

/// `{ file, url, loaded, total, cached }` (`total` is -1 when the server sends no length).
fn event(file: &str, url: &str, loaded: f64, total: f64, cached: bool) -> JsValue {
    let o = Object::new();
    let set = |k: &str, v: JsValue| {
        let _ = Reflect::set(&o, &JsValue::from_str(k), &v);
    };
    set("file", file.into());
    set("url", url.into());
    set("loaded", loaded.into());
    set("total", total.into());
    set("cached", cached.into());
    o.into()
}
