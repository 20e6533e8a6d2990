//! What every model family shares before any weight is read: the family names, the config
//! trait each family's config implements (deserialize, then check every field that sizes an
//! allocation), and the checks themselves. A leaf: the families import it, never the reverse.

use crate::error::Error;
use crate::ops::Act;
use serde::de::DeserializeOwned;
use std::path::Path;

/// The model families this crate runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    Bert,
    Gpt2,
    Vit,
    Yolo,
    Clip,
    Llama,
}

impl ModelKind {
    /// The `model_type` of the family's config.json.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Bert => "bert",
            ModelKind::Gpt2 => "gpt2",
            ModelKind::Vit => "vit",
            ModelKind::Yolo => "yolov8",
            ModelKind::Clip => "clip",
            ModelKind::Llama => "llama",
        }
    }

    /// Every config.json `model_type` the family's loader takes (the BERT family covers its
    /// encoder relatives: RoBERTa, XLM-RoBERTa, DistilBERT).
    pub fn model_types(self) -> &'static [&'static str] {
        match self {
            ModelKind::Bert => &["bert", "roberta", "xlm-roberta", "distilbert", "mpnet"],
            ModelKind::Gpt2 => &["gpt2"],
            ModelKind::Vit => &["vit", "deit", "dinov2", "dinov2_with_registers"],
            ModelKind::Yolo => &["yolov8", "yolo11"],
            ModelKind::Clip => &["clip"],
            ModelKind::Llama => &["llama", "qwen2"],
        }
    }

    /// Every family.
    pub const ALL: [ModelKind; 6] = [
        ModelKind::Bert,
        ModelKind::Gpt2,
        ModelKind::Vit,
        ModelKind::Yolo,
        ModelKind::Clip,
        ModelKind::Llama,
    ];

    pub fn from_name(name: &str) -> Option<ModelKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.model_types().contains(&name))
    }

    /// Every supported `model_type`, for messages.
    pub fn all_model_types() -> String {
        Self::ALL
            .iter()
            .flat_map(|k| k.model_types().iter().copied())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A family's config.json: deserialized, then checked before any weight is read (so a bad
/// config fails fast, with the field named, and never reaches an allocation or an arithmetic
/// overflow).
pub trait FamilyConfig: DeserializeOwned + Clone + std::fmt::Debug {
    const KIND: ModelKind;
    /// Every field that sizes something is positive and bounded; related fields agree.
    fn check(&self) -> Result<(), String>;
}

/// Largest size accepted for any single config dimension. Far above real models; it keeps
/// products such as `3 * hidden * hidden` far from overflow.
pub const MAX_DIM: usize = 1 << 20;

/// serde defaults shared by several configs: exact-erf GELU and LayerNorm eps 1e-12 (BERT,
/// ViT).
pub(crate) fn gelu() -> String {
    "gelu".into()
}
pub(crate) fn eps_1e12() -> f64 {
    1e-12
}
pub(crate) fn yes() -> bool {
    true
}

pub(crate) fn typed<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("invalid config for this model: {e}"))
}

/// Parses and checks config.json text as family `T`; errors name `path`. A config of another
/// family is an [`Error::WrongModel`], not "missing field ...".
pub(crate) fn parse<T: FamilyConfig>(path: &Path, text: &str) -> crate::Result<T> {
    let err = |msg: String| Error::Config {
        path: path.to_path_buf(),
        msg,
    };
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| err(format!("invalid JSON: {e}")))?;
    if let Some(mt) = v.get("model_type").and_then(|m| m.as_str()) {
        if !T::KIND.model_types().contains(&mt) {
            return Err(Error::WrongModel {
                path: path.to_path_buf(),
                found: mt.to_string(),
                expected: T::KIND.name(),
            });
        }
    }
    let c: T = typed(v).map_err(err)?;
    c.check().map_err(err)?;
    Ok(c)
}

/// The checks every transformer config needs: the sizes positive and bounded, the width
/// divisible by the heads, eps in (0, 1), a known activation (each as (field name, value)).
pub(crate) fn check_transformer(
    sizes: &[(&str, usize)],
    width: (&str, usize),
    heads: (&str, usize),
    eps: (&str, f64),
    act: (&str, &str),
) -> Result<(), String> {
    positive(sizes)?;
    heads_ok(width, heads)?;
    eps_ok(eps.0, eps.1)?;
    act_ok(act.0, act.1)
}

pub(crate) fn positive(fields: &[(&str, usize)]) -> Result<(), String> {
    for &(name, v) in fields {
        if v == 0 {
            return Err(format!("'{name}' must be positive"));
        }
        if v > MAX_DIM {
            return Err(format!(
                "'{name}' = {v} is larger than supported ({MAX_DIM})"
            ));
        }
    }
    Ok(())
}

pub(crate) fn eps_ok(name: &str, v: f64) -> Result<(), String> {
    if v.is_finite() && v > 0.0 && v < 1.0 {
        Ok(())
    } else {
        Err(format!("'{name}' = {v} must be in (0, 1)"))
    }
}

pub(crate) fn act_ok(name: &str, v: &str) -> Result<(), String> {
    Act::from_hf(v)
        .map(|_| ())
        .map_err(|e| format!("'{name}': {e}"))
}

pub(crate) fn heads_ok(width: (&str, usize), heads: (&str, usize)) -> Result<(), String> {
    if !width.1.is_multiple_of(heads.1) {
        return Err(format!(
            "'{}' = {} is not divisible by '{}' = {}",
            width.0, width.1, heads.0, heads.1
        ));
    }
    Ok(())
}
