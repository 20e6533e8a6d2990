//! Models built from HuggingFace-format folders.

pub mod bert;
pub mod config;
pub mod gpt2;
pub mod sampling;
pub mod vit;
pub mod yolo;

pub use bert::Bert;
pub use config::{parse_config, ModelConfig, ModelKind};
pub use gpt2::Gpt2;
pub use vit::Vit;
pub use yolo::Yolo;

use crate::error::{Error, Result};
use crate::graph::Constant;
use crate::tensor::{DType, Tensor};
use serde::de::DeserializeOwned;
use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// Options for loading a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Storage type of the large weights (matmul weights and embedding tables): `F32` (the
    /// default) or `F16`, which halves their bytes; arithmetic stays f32 either way. Biases and
    /// normalization parameters stay f32.
    pub dtype: DType,
    /// A progress bar on stderr while weights load (only when stderr is a terminal).
    pub progress: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dtype: DType::F32,
            progress: false,
        }
    }
}

impl LoadOptions {
    /// Options with weights stored as `dtype`.
    pub fn with_dtype(dtype: DType) -> Self {
        LoadOptions {
            dtype,
            ..Default::default()
        }
    }

    /// These options with a loading progress bar on or off.
    pub fn with_progress(mut self, on: bool) -> Self {
        self.progress = on;
        self
    }

    /// A bar counting the tensors of `w` as they are read, if enabled and stderr is a terminal.
    pub(crate) fn bar(&self, w: &crate::weights::Weights) -> indicatif::ProgressBar {
        use std::io::IsTerminal;
        if !self.progress || !std::io::stderr().is_terminal() {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(w.list().len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("loading {msg} [{bar:30}] {pos}/{len} tensors")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(
            w.path()
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        bar
    }

    pub(crate) fn check(&self) -> Result<()> {
        match self.dtype {
            DType::F32 | DType::F16 => Ok(()),
            other => Err(Error::InvalidArgument(format!(
                "weights can be stored as f32 or f16, not {other}"
            ))),
        }
    }

    /// Points a storage-dtype failure from [`LoadOptions::weight`] at the weights file.
    pub(crate) fn in_file(path: &std::path::Path, e: Error) -> Error {
        match e {
            Error::Storage { .. } => Error::Weights {
                path: path.to_path_buf(),
                msg: e.to_string(),
            },
            e => e,
        }
    }

    /// A large weight (matmul B or embedding table) as a constant in the storage dtype.
    pub(crate) fn weight(&self, name: impl Into<String>, t: Tensor) -> Result<Arc<Constant>> {
        let name = name.into();
        let t = t.to_dtype(self.dtype).map_err(|e| Error::Storage {
            tensor: name.clone(),
            msg: match e {
                Error::InvalidArgument(m) => format!("cannot be stored as {}: {m}", self.dtype),
                e => e.to_string(),
            },
        })?;
        Ok(Constant::new(name, t))
    }
}

/// Checks that `dir` is an existing directory.
pub(crate) fn check_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Err(Error::Config {
            path: dir.to_path_buf(),
            msg: "model directory does not exist".into(),
        });
    }
    if !dir.is_dir() {
        return Err(Error::Config {
            path: dir.to_path_buf(),
            msg: "expected a model directory (config.json, model.safetensors, ...)".into(),
        });
    }
    Ok(())
}

/// `dir/name`, or a typed error naming the missing file.
pub(crate) fn require(dir: &Path, name: &str, what: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::Config {
            path: p,
            msg: format!("missing {what}"),
        })
    }
}

/// Parses a JSON file into `T`; parse errors name the file, line and field.
pub(crate) fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        msg: format!("invalid JSON for this model: {e}"),
    })
}

/// Loads `tokenizer.json` with its own padding and truncation switched off (models apply their
/// own limits).
pub(crate) fn load_tokenizer(dir: &Path) -> Result<tokenizers::Tokenizer> {
    let path = require(dir, "tokenizer.json", "tokenizer (tokenizer.json)")?;
    let mut tok = tokenizers::Tokenizer::from_file(&path).map_err(|e| Error::Config {
        path: path.clone(),
        msg: format!("cannot load tokenizer: {e}"),
    })?;
    tok.with_padding(None);
    tok.with_truncation(None)
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    Ok(tok)
}

/// A model's weights as loaded from a file, with the loader's warnings; shared by every model
/// opened from the same file with the same options (see [`shared`]).
pub(crate) struct Loaded<T> {
    pub weights: T,
    pub warnings: Vec<String>,
}

impl<T> std::ops::Deref for Loaded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.weights
    }
}

/// Identity of loaded weights: the weights file (canonical path, size, modification time), the
/// config text and the load options.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct WeightsKey {
    family: &'static str,
    path: PathBuf,
    len: u64,
    modified: Option<std::time::SystemTime>,
    config: String,
    dtype: DType,
}

impl WeightsKey {
    pub(crate) fn new(
        family: &'static str,
        weights: &Path,
        config: &Path,
        opts: &LoadOptions,
    ) -> Result<WeightsKey> {
        let meta = std::fs::metadata(weights).map_err(|e| Error::io(weights, e))?;
        let path = weights.canonicalize().map_err(|e| Error::io(weights, e))?;
        let config = std::fs::read_to_string(config).map_err(|e| Error::io(config, e))?;
        Ok(WeightsKey {
            family,
            path,
            len: meta.len(),
            modified: meta.modified().ok(),
            config,
            dtype: opts.dtype,
        })
    }
}

type LoadedMap = HashMap<WeightsKey, Weak<dyn Any + Send + Sync>>;

fn loaded_map() -> &'static Mutex<LoadedMap> {
    static MAP: OnceLock<Mutex<LoadedMap>> = OnceLock::new();
    MAP.get_or_init(Mutex::default)
}

/// The weights for `key`: the ones already loaded by a live model, or new ones from `make`.
/// Opening the same folder twice therefore reads and uploads the weights once (device copies
/// live on the shared constants). Entries die with the last model using them.
pub(crate) fn shared<T: Send + Sync + 'static>(
    key: WeightsKey,
    make: impl FnOnce() -> Result<Loaded<T>>,
) -> Result<Arc<Loaded<T>>> {
    if let Some(hit) = loaded_map()
        .lock()
        .unwrap()
        .get(&key)
        .and_then(|w| w.upgrade())
    {
        if let Ok(t) = hit.downcast::<Loaded<T>>() {
            return Ok(t);
        }
    }
    // Built outside the lock: loading can take seconds and other models may load meanwhile.
    let fresh = Arc::new(make()?);
    let mut map = loaded_map().lock().unwrap();
    map.retain(|_, w| w.strong_count() > 0);
    if let Some(hit) = map.get(&key).and_then(|w| w.upgrade()) {
        if let Ok(t) = hit.downcast::<Loaded<T>>() {
            return Ok(t);
        }
    }
    let any: Arc<dyn Any + Send + Sync> = fresh.clone();
    map.insert(key, Arc::downgrade(&any));
    Ok(fresh)
}

/// A model's display name: the folder name, or `org/name` for a Hugging Face cache snapshot
/// (`.../models--org--name/snapshots/<commit>`).
pub fn name_of(dir: &std::path::Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let parts: Vec<String> = dir
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let [.., repo, snaps, _commit] = parts.as_slice() {
        if snaps == "snapshots" {
            if let Some(id) = repo.strip_prefix("models--") {
                if let Some((org, name)) = id.split_once("--") {
                    return format!("{org}/{name}");
                }
            }
        }
    }
    dir.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string())
}
