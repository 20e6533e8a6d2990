//! One error type for the whole crate. Every variant carries enough context (op, shapes,
//! tensor name, file) to act on the message without a debugger.

use std::path::PathBuf;

/// How to get an adapter, after "no GPU adapter found".
#[cfg(not(target_arch = "wasm32"))]
const NO_ADAPTER_HINT: &str = "Install a GPU driver (Vulkan, Metal or DX12), or on a headless Linux box the software Vulkan driver: `apt-get install -y mesa-vulkan-drivers libvulkan1`. Set WGPU_INFER_ADAPTER=<substring> to pick an adapter by name; Device::list_adapters() lists what is visible";
#[cfg(target_arch = "wasm32")]
const NO_ADAPTER_HINT: &str = "Use a browser with WebGPU enabled (Chrome or Edge 113+, Safari 26+, Firefox 141+ on Windows; on Linux, Chromium with --enable-unsafe-webgpu) and serve the page over https or from localhost";

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable GPU adapter. The message says how to get one.
    #[error("no GPU adapter found{detail}. {}", NO_ADAPTER_HINT)]
    NoAdapter { detail: String },

    /// The adapter exists but could not give us a device.
    #[error("could not open a device on adapter '{adapter}': {reason}")]
    DeviceRequest { adapter: String, reason: String },

    /// An op was given inputs whose shapes or dtypes break its shape rule.
    #[error("{op}: {msg} (input shapes: {shapes})")]
    Shape {
        op: String,
        msg: String,
        shapes: String,
    },

    /// A graph was used wrongly (unknown value, missing feed, wrong feed shape, ...).
    #[error("graph: {0}")]
    Graph(String),

    /// The GPU rejected something (shader compile, validation, out of memory, lost device).
    #[error("gpu: {context}: {msg}")]
    Gpu { context: String, msg: String },

    /// A resource is bigger than the adapter can bind, allocate or dispatch, or than the
    /// memory budget allows.
    #[error("{what} needs {needed} {unit} but at most {limit} are allowed ({limit_name})")]
    Limit {
        what: String,
        needed: u64,
        limit: u64,
        limit_name: &'static str,
        /// What `needed` and `limit` count: bytes, texels or workgroups.
        unit: &'static str,
    },

    /// A WGSL shader failed naga validation.
    #[error("shader {name}: {msg}")]
    Shader { name: String, msg: String },

    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A safetensors file is malformed, or a tensor in it is missing / of the wrong shape or dtype.
    #[error("{path}: {msg}")]
    Weights { path: PathBuf, msg: String },

    /// A weight cannot be held in the requested storage dtype (e.g. a value beyond f16's range).
    /// Model loaders report it as [`Error::Weights`] on the weights file.
    #[error("weight '{tensor}': {msg}")]
    Storage { tensor: String, msg: String },

    /// A config file is malformed or inconsistent with the weights.
    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },

    /// A model folder of another family than the loader's (its config.json `model_type`).
    #[error("{path}: model_type is '{found}' but this loader needs a '{expected}' model")]
    WrongModel {
        path: PathBuf,
        found: String,
        expected: &'static str,
    },

    /// Invalid argument to a public API (empty batch, bad sampling parameter, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A chat template is missing, does not compile, or refused / failed to render a
    /// conversation.
    #[error("chat template {path}: {msg}")]
    ChatTemplate { path: PathBuf, msg: String },

    /// Tokenizer failure.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// A model named by a hub id could not be found or fetched.
    #[error("model '{spec}': {msg}")]
    Model { spec: String, msg: String },

    /// Image decoding / preprocessing failure.
    #[error("image {path}: {msg}")]
    Image { path: PathBuf, msg: String },

    /// A model produced NaN or an infinity: its weights (or inputs) overflow f32. Raised where
    /// the value would reach the caller, naming the stage (embeddings, logits, scores), never
    /// passed on as a result.
    #[error("{stage}: the model produced a non-finite value ({value} at index {index} of {len}); its weights or inputs overflow f32")]
    NonFinite {
        stage: String,
        index: usize,
        value: f32,
        len: usize,
    },
}

/// Fails with [`Error::NonFinite`] naming `stage` if any value is NaN or infinite.
pub(crate) fn check_finite(stage: impl FnOnce() -> String, values: &[f32]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(Error::NonFinite {
            stage: stage(),
            index,
            value: values[index],
            len: values.len(),
        }),
    }
}

impl Error {
    pub(crate) fn shape(op: &str, msg: impl Into<String>, shapes: &[&[usize]]) -> Self {
        let shapes = shapes
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        Error::Shape {
            op: op.to_string(),
            msg: msg.into(),
            shapes,
        }
    }

    pub(crate) fn gpu(context: impl Into<String>, msg: impl std::fmt::Display) -> Self {
        Error::Gpu {
            context: context.into(),
            msg: msg.to_string(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
