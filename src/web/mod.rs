//! The browser package (feature `web`, wasm32 only): wasm-bindgen classes over the async core.
//! `bash tools/build_web.sh` builds it into `web/pkg/` (`wgpu_infer.js`, TypeScript
//! definitions, the wasm). The JS API:
//!
//! ```js
//! import init, { Device, Bert, Gpt2, Vit, Yolo } from "./pkg/wgpu_infer.js";
//! await init();
//! const device = await Device.create();
//! const bert = await Bert.load(device, "models/all-MiniLM-L6-v2/");
//! const vecs = await bert.embed(["a", "b"], { normalize: true });
//! ```
//!
//! A layer on top of the core: nothing below imports it.

mod device;
mod files;
mod js;
mod models;

pub use device::WebDevice;
pub use models::{WebBert, WebGpt2, WebVit, WebYolo};

use wasm_bindgen::prelude::*;

/// Runs once when the module is instantiated (`await init()`): a panic, which would abort the
/// module, is at least printed to the console with its message.
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error(&format!("wgpu-infer panicked: {info}"));
    }));
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
}

/// Deletes every model file cached by `load` (the Cache API cache `wgpu-infer-models-v1`).
#[wasm_bindgen(js_name = clearModelCache)]
pub async fn clear_model_cache() -> bool {
    files::cache_clear().await.as_bool().unwrap_or(false)
}

/// The crate version.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").into()
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Options of every `load`. */
export interface LoadOptions {
  /** Storage type of the large weights (arithmetic stays f32). Default "f32". */
  dtype?: "f32" | "f16" | "q8";
  /** Read from and store into the Cache API (default true). */
  cache?: boolean;
  /** A label for a file map: errors name files `name/config.json`. */
  name?: string;
  /** Called as files arrive; `total` is -1 when the server sends no length. */
  onProgress?: (e: { file: string, url: string, loaded: number, total: number, cached: boolean }) => void;
}
export interface EmbedOptions { normalize?: boolean; pooling?: "mean" | "cls" | "max"; truncate?: boolean; }
export interface RerankOptions { rawScores?: boolean; truncate?: boolean; }
export interface GenerateOptions {
  maxNewTokens?: number; temperature?: number; topK?: number; topP?: number; seed?: number;
  stopAtEos?: boolean;
  /** Each new token as it is produced; return false to stop. */
  onToken?: (text: string, id: number) => boolean | void;
}
export interface Generation {
  tokens: number[]; text: string; promptTokens: number[]; stoppedAtEos: boolean;
  prefillMs: number; decodeMs: number;
}
export interface DeviceInfo {
  name: string; backend: string; deviceType: string; driver: string;
  /** The browser's GPUAdapterInfo. */
  adapter: { vendor: string, architecture: string, device: string, description: string, isFallbackAdapter: boolean } | null;
  /** Device features in use (wgpu names, lower-case: "shader-f16", "timestamp-query", ...). */
  features: string[];
  limits: Record<string, number>;
}
export interface BertInfo { name: string; dim: number; maxLength: number; pooling: string; normalize: boolean; labels: number | null; warnings: string[]; }
export interface Gpt2Info { name: string; vocabSize: number; contextLength: number; layers: number; width: number; warnings: string[]; }
export interface VitInfo { name: string; imageSize: number; labels: string[]; warnings: string[]; }
export interface YoloInfo { name: string; names: string[]; warnings: string[]; }
export interface DetectOptions { conf?: number; iou?: number; imgsz?: number; maxDet?: number; rect?: boolean; }
export interface Detection { class_id: number; label: string; score: number; box: [number, number, number, number]; /** Segmentation models: outer contours [x0, y0, x1, y1, ...] in the image's pixels, and the mask's pixel count. */ mask?: { polygons: number[][]; area: number }; }
"#;
