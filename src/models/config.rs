//! Model configs: detection of the family from config.json's `model_type`, parsing, and the
//! checks every loader runs before touching the weights (so a bad config fails fast, with the
//! field named, and never reaches an allocation or an arithmetic overflow).

use super::bert::BertConfig;
use super::gpt2::Gpt2Config;
use super::vit::VitConfig;
use super::yolo::YoloConfig;
use crate::error::{Error, Result};
use crate::ops::Act;
use serde::de::DeserializeOwned;

/// The model families this crate runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    Bert,
    Gpt2,
    Vit,
    Yolo,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Bert => "bert",
            ModelKind::Gpt2 => "gpt2",
            ModelKind::Vit => "vit",
            ModelKind::Yolo => "yolov8",
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed and checked config.json.
#[derive(Clone, Debug)]
pub enum ModelConfig {
    Bert(BertConfig),
    Gpt2(Gpt2Config),
    Vit(VitConfig),
    Yolo(YoloConfig),
}

impl ModelConfig {
    pub fn kind(&self) -> ModelKind {
        match self {
            ModelConfig::Bert(_) => ModelKind::Bert,
            ModelConfig::Gpt2(_) => ModelKind::Gpt2,
            ModelConfig::Vit(_) => ModelKind::Vit,
            ModelConfig::Yolo(_) => ModelKind::Yolo,
        }
    }
}

/// Largest size accepted for any single config dimension. Far above real models; it keeps
/// products such as `3 * hidden * hidden` far from overflow.
pub const MAX_DIM: usize = 1 << 20;

/// Parses config.json text: detects the family from `model_type`, deserializes and checks it.
/// Errors are plain messages (the caller adds the path).
pub fn parse_config(text: &str) -> std::result::Result<ModelConfig, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let mt = v
        .get("model_type")
        .and_then(|m| m.as_str())
        .ok_or("lacks a string field 'model_type'")?;
    let c = match mt {
        "bert" => ModelConfig::Bert(typed(v)?),
        "gpt2" => ModelConfig::Gpt2(typed(v)?),
        "vit" => ModelConfig::Vit(typed(v)?),
        "yolov8" => ModelConfig::Yolo(typed(v)?),
        other => {
            return Err(format!(
                "model_type '{other}' is not supported (bert, gpt2, vit, yolov8)"
            ))
        }
    };
    match &c {
        ModelConfig::Bert(c) => check_bert(c)?,
        ModelConfig::Gpt2(c) => check_gpt2(c)?,
        ModelConfig::Vit(c) => check_vit(c)?,
        ModelConfig::Yolo(c) => check_yolo(c)?,
    }
    Ok(c)
}

fn typed<T: DeserializeOwned>(v: serde_json::Value) -> std::result::Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("invalid config for this model: {e}"))
}

/// Reads and checks a model folder's config as type `T` (one of the model configs) with
/// `check`; errors name the file.
pub(crate) fn load<T: DeserializeOwned>(
    path: &std::path::Path,
    family: ModelKind,
    check: fn(&T) -> std::result::Result<(), String>,
) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let err = |msg: String| Error::Config {
        path: path.to_path_buf(),
        msg,
    };
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| err(format!("invalid JSON: {e}")))?;
    // A folder of another family says so, rather than "missing field ...".
    if let Some(mt) = v.get("model_type").and_then(|m| m.as_str()) {
        if mt != family.name() {
            let hint = match mt {
                "bert" => " (`wgpu-infer embed` runs BERT)",
                "gpt2" => " (`wgpu-infer generate` runs GPT-2)",
                "vit" => " (`wgpu-infer classify` runs ViT)",
                "yolov8" => " (`wgpu-infer detect` runs YOLOv8)",
                _ => "",
            };
            return Err(err(format!(
                "model_type is '{mt}' but this loader needs a '{}' model{hint}",
                family.name()
            )));
        }
    }
    let c: T = typed(v).map_err(err)?;
    check(&c).map_err(err)?;
    Ok(c)
}

fn positive(fields: &[(&str, usize)]) -> std::result::Result<(), String> {
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

fn eps_ok(name: &str, v: f64) -> std::result::Result<(), String> {
    if v.is_finite() && v > 0.0 && v < 1.0 {
        Ok(())
    } else {
        Err(format!("'{name}' = {v} must be in (0, 1)"))
    }
}

fn act_ok(name: &str, v: &str) -> std::result::Result<(), String> {
    Act::from_hf(v)
        .map(|_| ())
        .map_err(|e| format!("'{name}': {e}"))
}

fn heads_ok(width: (&str, usize), heads: (&str, usize)) -> std::result::Result<(), String> {
    if !width.1.is_multiple_of(heads.1) {
        return Err(format!(
            "'{}' = {} is not divisible by '{}' = {}",
            width.0, width.1, heads.0, heads.1
        ));
    }
    Ok(())
}

pub fn check_bert(c: &BertConfig) -> std::result::Result<(), String> {
    positive(&[
        ("vocab_size", c.vocab_size),
        ("hidden_size", c.hidden_size),
        ("num_hidden_layers", c.num_hidden_layers),
        ("num_attention_heads", c.num_attention_heads),
        ("intermediate_size", c.intermediate_size),
        ("max_position_embeddings", c.max_position_embeddings),
        ("type_vocab_size", c.type_vocab_size),
    ])?;
    heads_ok(
        ("hidden_size", c.hidden_size),
        ("num_attention_heads", c.num_attention_heads),
    )?;
    eps_ok("layer_norm_eps", c.layer_norm_eps)?;
    act_ok("hidden_act", &c.hidden_act)?;
    if let Some(t) = &c.position_embedding_type {
        if t != "absolute" {
            return Err(format!("position_embedding_type '{t}' is not supported"));
        }
    }
    Ok(())
}

pub fn check_gpt2(c: &Gpt2Config) -> std::result::Result<(), String> {
    positive(&[
        ("vocab_size", c.vocab_size),
        ("n_positions", c.n_positions),
        ("n_embd", c.n_embd),
        ("n_layer", c.n_layer),
        ("n_head", c.n_head),
        ("n_inner", c.n_inner.unwrap_or(4 * c.n_embd.min(MAX_DIM))),
    ])?;
    heads_ok(("n_embd", c.n_embd), ("n_head", c.n_head))?;
    eps_ok("layer_norm_epsilon", c.layer_norm_epsilon)?;
    act_ok("activation_function", &c.activation_function)?;
    if let Some(e) = c.eos_token_id {
        if e as usize >= c.vocab_size {
            return Err(format!(
                "eos_token_id {e} is outside the vocabulary ({})",
                c.vocab_size
            ));
        }
    }
    Ok(())
}

pub fn check_vit(c: &VitConfig) -> std::result::Result<(), String> {
    positive(&[
        ("image_size", c.image_size),
        ("patch_size", c.patch_size),
        ("num_channels", c.num_channels),
        ("hidden_size", c.hidden_size),
        ("num_hidden_layers", c.num_hidden_layers),
        ("num_attention_heads", c.num_attention_heads),
        ("intermediate_size", c.intermediate_size),
    ])?;
    if !c.image_size.is_multiple_of(c.patch_size) {
        return Err(format!(
            "'image_size' = {} is not a multiple of 'patch_size' = {}",
            c.image_size, c.patch_size
        ));
    }
    if c.image_size > 8192 {
        return Err(format!(
            "'image_size' = {} is larger than supported (8192)",
            c.image_size
        ));
    }
    if c.num_channels != 3 {
        return Err(format!(
            "'num_channels' = {}: only 3-channel RGB models are supported",
            c.num_channels
        ));
    }
    heads_ok(
        ("hidden_size", c.hidden_size),
        ("num_attention_heads", c.num_attention_heads),
    )?;
    eps_ok("layer_norm_eps", c.layer_norm_eps)?;
    act_ok("hidden_act", &c.hidden_act)?;
    // id2label keys must be exactly 0..n.
    for i in 0..c.id2label.len() {
        if !c.id2label.contains_key(&i.to_string()) {
            return Err(format!(
                "'id2label' has {} entries but lacks index {i}",
                c.id2label.len()
            ));
        }
    }
    Ok(())
}

pub fn check_yolo(c: &YoloConfig) -> std::result::Result<(), String> {
    if c.model_type != "yolov8" {
        return Err(format!(
            "model_type is '{}', expected 'yolov8'",
            c.model_type
        ));
    }
    if c.names.is_empty() || c.names.len() > 10_000 {
        return Err(format!(
            "'names' must list 1 to 10000 class names, not {}",
            c.names.len()
        ));
    }
    Ok(())
}
