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
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options for loading a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Storage type of the large weights (matmul weights and embedding tables): `F32` (the
    /// default) or `F16`, which halves their bytes; arithmetic stays f32 either way. Biases and
    /// normalization parameters stay f32.
    pub dtype: DType,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { dtype: DType::F32 }
    }
}

impl LoadOptions {
    /// Options with weights stored as `dtype`.
    pub fn with_dtype(dtype: DType) -> Self {
        LoadOptions { dtype }
    }

    pub(crate) fn check(&self) -> Result<()> {
        match self.dtype {
            DType::F32 | DType::F16 => Ok(()),
            other => Err(Error::InvalidArgument(format!(
                "weights can be stored as f32 or f16, not {other}"
            ))),
        }
    }

    /// A large weight (matmul B or embedding table) as a constant in the storage dtype.
    pub(crate) fn weight(&self, name: impl Into<String>, t: Tensor) -> Result<Arc<Constant>> {
        Ok(Constant::new(name, t.to_dtype(self.dtype)?))
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
