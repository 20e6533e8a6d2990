//! Which family a folder holds: from config.json's `model_type` ([`parse_config`]) or from the
//! tensor names of a safetensors file ([`detect_kind`]).

use super::bert::BertConfig;
use super::clip_config::ClipConfig;
use super::family::{typed, FamilyConfig, ModelKind};
use super::gpt2::Gpt2Config;
use super::llama::LlamaConfig;
use super::vit::VitConfig;
use super::yolo::YoloConfig;
use crate::weights::Weights;

/// A parsed and checked config.json.
#[derive(Clone, Debug)]
pub enum ModelConfig {
    Bert(BertConfig),
    Gpt2(Gpt2Config),
    Vit(VitConfig),
    Yolo(YoloConfig),
    Clip(ClipConfig),
    Llama(LlamaConfig),
}

impl ModelConfig {
    /// The config's own `model_type` (`distilbert`, `dinov2`, ...; the family's name when the
    /// config leaves it implicit).
    pub fn model_type(&self) -> String {
        match self {
            ModelConfig::Bert(c) => c.model_type.clone(),
            ModelConfig::Vit(c) => c.model_type.clone(),
            ModelConfig::Yolo(c) => c.model_type.clone(),
            ModelConfig::Llama(c) => c.model_type.clone(),
            other => other.kind().name().to_string(),
        }
    }

    pub fn kind(&self) -> ModelKind {
        match self {
            ModelConfig::Bert(_) => ModelKind::Bert,
            ModelConfig::Gpt2(_) => ModelKind::Gpt2,
            ModelConfig::Vit(_) => ModelKind::Vit,
            ModelConfig::Yolo(_) => ModelKind::Yolo,
            ModelConfig::Clip(_) => ModelKind::Clip,
            ModelConfig::Llama(_) => ModelKind::Llama,
        }
    }
}

/// Parses config.json text: detects the family from `model_type`, deserializes and checks it.
/// Errors are plain messages (the caller adds the path).
pub fn parse_config(text: &str) -> Result<ModelConfig, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let mt = v
        .get("model_type")
        .and_then(|m| m.as_str())
        .ok_or("lacks a string field 'model_type'")?;
    fn checked<T: FamilyConfig>(v: serde_json::Value) -> Result<T, String> {
        let c: T = typed(v)?;
        c.check()?;
        Ok(c)
    }
    Ok(match ModelKind::from_name(mt) {
        Some(ModelKind::Bert) => ModelConfig::Bert(checked(v)?),
        Some(ModelKind::Gpt2) => ModelConfig::Gpt2(checked(v)?),
        Some(ModelKind::Vit) => ModelConfig::Vit(checked(v)?),
        Some(ModelKind::Yolo) => ModelConfig::Yolo(checked(v)?),
        Some(ModelKind::Clip) => ModelConfig::Clip(checked(v)?),
        Some(ModelKind::Llama) => ModelConfig::Llama(checked(v)?),
        None => {
            return Err(format!(
                "model_type '{mt}' is not supported ({})",
                ModelKind::all_model_types()
            ))
        }
    })
}

/// The `model_type` a safetensors file's tensor names point to, within the family of
/// [`detect_kind`]: DistilBERT, MPNet, DeiT and DINOv2 have telltale tensors; RoBERTa's names are
/// BERT's, so it reads as `bert`.
pub fn detect_model_type(w: &Weights) -> Option<&'static str> {
    let kind = detect_kind(w)?;
    let names = w.names();
    let has = |part: &str| names.iter().any(|n| n.contains(part));
    Some(match kind {
        ModelKind::Bert if has(".sa_layer_norm.") => "distilbert",
        ModelKind::Bert if has("relative_attention_bias.") => "mpnet",
        ModelKind::Vit if has("embeddings.register_tokens") => "dinov2_with_registers",
        ModelKind::Vit if has(".layer_scale1.") => "dinov2",
        ModelKind::Vit if has("embeddings.distillation_token") => "deit",
        ModelKind::Yolo if has("model.10.m.0.attn.qkv.") => "yolo11",
        ModelKind::Llama if has(".self_attn.q_proj.bias") => "qwen2",
        k => k.name(),
    })
}

/// The model family a safetensors file's tensor names belong to, if recognizable.
pub fn detect_kind(w: &Weights) -> Option<ModelKind> {
    let names = w.names();
    let has = |suffix: &str| names.iter().any(|n| n.ends_with(suffix));
    if has("embeddings.patch_embeddings.projection.weight") {
        Some(ModelKind::Vit)
    } else if has("embeddings.word_embeddings.weight") {
        Some(ModelKind::Bert)
    } else if has("wte.weight") {
        Some(ModelKind::Gpt2)
    } else if has("model.0.conv.weight") && has(".dfl.conv.weight") {
        Some(ModelKind::Yolo)
    } else if has("embed_tokens.weight") && has(".self_attn.q_proj.weight") {
        Some(ModelKind::Llama)
    } else if has("text_model.embeddings.token_embedding.weight")
        && has("vision_model.embeddings.class_embedding")
    {
        Some(ModelKind::Clip)
    } else {
        None
    }
}
