//! The one model-folder loader every family uses: config.json (typed and checked for the
//! family), model.safetensors (with its HF name prefix detected), tokenizer.json, the weights
//! built through [`Vars`], warnings for tensors nothing read, and the loaded-model cache that
//! makes a folder opened twice read and upload its weights once.

use super::family::{self, FamilyConfig};
use super::files::{FileIdentity, ModelFiles};
use super::nn::{TensorSource, Ticker, Vars};
use super::options::LoadOptions;
use crate::error::{Error, Result};
use crate::tensor::DType;
use crate::weights::Weights;
use std::any::Any;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};

/// A model's weights with the loader's warnings; shared by every model opened from the same
/// file with the same options.
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

/// A model folder opened for the family of `C`.
pub(crate) struct Folder<'f, C> {
    pub files: &'f ModelFiles,
    pub config: C,
    config_text: String,
    config_path: PathBuf,
    weights: Weights,
    weights_id: FileIdentity,
}

const WEIGHTS: &str = "model.safetensors";

impl<'f, C: FamilyConfig> Folder<'f, C> {
    /// Reads and checks config.json, then opens model.safetensors; lookups try the first of
    /// `prefixes` under which the tensor `probe` exists (`bert.` for `BertFor*` checkpoints),
    /// else no prefix.
    pub fn open(files: &'f ModelFiles, prefixes: &[&str], probe: &str) -> Result<Self> {
        let config_path = files.path("config.json");
        let config_text = files.text("config.json")?.ok_or_else(|| Error::Config {
            path: config_path.clone(),
            msg: "missing model config (config.json)".into(),
        })?;
        let config: C = family::parse(&config_path, &config_text)?;
        let bytes = files.require(WEIGHTS, "weights (model.safetensors)")?;
        let weights_id = files.identity(WEIGHTS, &bytes);
        let mut weights = Weights::from_bytes(files.path(WEIGHTS), bytes)?;
        if !weights.contains(probe) {
            if let Some(p) = prefixes
                .iter()
                .find(|p| weights.names().iter().any(|n| *n == format!("{p}{probe}")))
            {
                weights.set_prefix(p);
            }
        }
        Ok(Folder {
            files,
            config,
            config_text,
            config_path,
            weights,
            weights_id,
        })
    }

    /// The opened weights file.
    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// A config error on this folder's config.json.
    pub fn config_error(&self, msg: impl Into<String>) -> Error {
        Error::Config {
            path: self.config_path.clone(),
            msg: msg.into(),
        }
    }

    /// The model's weights, built by `build` through a [`Vars`] over the file, or the ones a
    /// live model already loaded from the same file with the same options. Tensors nothing
    /// read become warnings, except names ending in one of `ignore`. A weight that cannot be
    /// stored in the requested dtype is an error on the weights file; an invalid argument while
    /// building is an error on config.json.
    pub fn load<T: Send + Sync + 'static>(
        &self,
        opts: &LoadOptions,
        ignore: &[&str],
        build: impl FnOnce(&Vars) -> Result<T>,
    ) -> Result<Arc<Loaded<T>>> {
        opts.check()?;
        let key = WeightsKey {
            family: C::KIND.name(),
            weights: self.weights_id.clone(),
            config: self.config_text.clone(),
            dtype: opts.dtype,
        };
        let w = &self.weights;
        shared(key, || {
            let ticker = Ticker::new(w.list().len());
            let weights = build(&Vars::new(w, opts, &ticker)).map_err(|e| match e {
                Error::Storage { .. } => Error::Weights {
                    path: w.path().to_path_buf(),
                    msg: e.to_string(),
                },
                Error::InvalidArgument(msg) => self.config_error(msg),
                e => e,
            })?;
            let warnings = w
                .unread()
                .into_iter()
                .filter(|n| !ignore.iter().any(|s| n.ends_with(s)))
                .map(|n| format!("{}: unexpected tensor '{n}' ignored", w.path().display()))
                .collect();
            Ok(Loaded { weights, warnings })
        })
    }

    /// The folder's tokenizer.json (required).
    pub fn tokenizer(&self) -> Result<tokenizers::Tokenizer> {
        let bytes = self
            .files
            .require("tokenizer.json", "tokenizer (tokenizer.json)")?;
        if bytes.len() as u64 > super::files::MAX_TEXT_FILE {
            return Err(Error::Config {
                path: self.files.path("tokenizer.json"),
                msg: format!(
                    "{} bytes is over the {}-byte limit for a text file",
                    bytes.len(),
                    super::files::MAX_TEXT_FILE
                ),
            });
        }
        tokenizer_from_bytes(&bytes).map_err(|msg| Error::Config {
            path: self.files.path("tokenizer.json"),
            msg,
        })
    }
}

/// A tokenizer from tokenizer.json bytes, with its own padding and truncation switched off
/// (models apply their own limits).
pub(crate) fn tokenizer_from_bytes(
    bytes: &[u8],
) -> std::result::Result<tokenizers::Tokenizer, String> {
    // Syntax first (a clear line and column); then the tokenizers crate, whose panics on
    // some malformed parts (a decoder of the wrong shape) become errors here.
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map_err(|e| format!("cannot load tokenizer: not valid JSON: {e}"))?;
    let mut tok = crate::contain::contain(|| tokenizers::Tokenizer::from_bytes(bytes))
        .map_err(|p| format!("cannot load tokenizer: the tokenizers crate failed on it ({p})"))?
        .map_err(|e| format!("cannot load tokenizer: {e}"))?;
    tok.with_padding(None);
    tok.with_truncation(None)
        .map_err(|e| format!("cannot configure tokenizer: {e}"))?;
    Ok(tok)
}

/// Weights from any source (e.g. random weights of a real model's size, for benchmarks):
/// checked options, no sharing, no warnings.
pub(crate) fn from_source<T>(
    src: &dyn TensorSource,
    opts: &LoadOptions,
    build: impl FnOnce(&Vars) -> Result<T>,
) -> Result<Arc<Loaded<T>>> {
    opts.check()?;
    let ticker = Ticker::new(0);
    let weights = build(&Vars::new(src, opts, &ticker))?;
    Ok(Arc::new(Loaded {
        weights,
        warnings: Vec::new(),
    }))
}

/// Identity of loaded weights: the weights file, the config text and the storage dtype.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct WeightsKey {
    family: &'static str,
    weights: FileIdentity,
    config: String,
    dtype: DType,
}

type LoadedMap = HashMap<WeightsKey, Weak<dyn Any + Send + Sync>>;

fn loaded_map() -> std::sync::MutexGuard<'static, LoadedMap> {
    static MAP: OnceLock<Mutex<LoadedMap>> = OnceLock::new();
    MAP.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

fn lookup<T: Send + Sync + 'static>(map: &LoadedMap, key: &WeightsKey) -> Option<Arc<Loaded<T>>> {
    map.get(key)
        .and_then(|w| w.upgrade())
        .and_then(|hit| hit.downcast::<Loaded<T>>().ok())
}

/// The weights for `key`: the ones already loaded by a live model, or new ones from `make`.
/// Device copies live on the shared constants, so they are uploaded once too. Entries die with
/// the last model using them.
fn shared<T: Send + Sync + 'static>(
    key: WeightsKey,
    make: impl FnOnce() -> Result<Loaded<T>>,
) -> Result<Arc<Loaded<T>>> {
    if let Some(hit) = lookup(&loaded_map(), &key) {
        return Ok(hit);
    }
    // Built outside the lock: loading can take seconds and other models may load meanwhile.
    let fresh = Arc::new(make()?);
    let mut map = loaded_map();
    map.retain(|_, w| w.strong_count() > 0);
    if let Some(hit) = lookup(&map, &key) {
        return Ok(hit);
    }
    let any: Arc<dyn Any + Send + Sync> = fresh.clone();
    map.insert(key, Arc::downgrade(&any));
    Ok(fresh)
}
