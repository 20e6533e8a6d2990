//! The config of Llama-architecture decoders (HF `LlamaConfig`, `Qwen2Config`): the fields
//! read, the defaults, RoPE parameters from `rope_parameters` or the older fields, and the
//! checks (head ratios, activation, RoPE type).

use super::family::{check_transformer, positive, FamilyConfig, ModelKind};
use super::nn::RopeScaling;
use serde::Deserialize;

/// The fields of HF `LlamaConfig` / `Qwen2Config` this implementation reads.
#[derive(Clone, Debug, Deserialize)]
pub struct LlamaConfig {
    /// llama or qwen2.
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Grouped-query attention's K/V heads (`num_attention_heads` when absent).
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// `hidden_size / num_attention_heads` when absent.
    #[serde(default)]
    pub head_dim: Option<usize>,
    #[serde(default = "positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "eps")]
    pub rms_norm_eps: f64,
    /// The older top-level RoPE fields; transformers 5 writes `rope_parameters` instead.
    #[serde(default)]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    pub rope_parameters: Option<serde_json::Value>,
    #[serde(default = "silu")]
    pub hidden_act: String,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    /// Llama's q/k/v (and o) biases; Qwen2 always has q/k/v biases.
    #[serde(default)]
    pub attention_bias: Option<bool>,
    #[serde(default)]
    pub mlp_bias: bool,
    /// One id or a list.
    #[serde(default)]
    pub eos_token_id: Option<serde_json::Value>,
}

/// The ids of an `eos_token_id` field (one id or a list); other JSON is an error.
pub(crate) fn eos_ids(v: Option<&serde_json::Value>) -> std::result::Result<Vec<u32>, String> {
    let id = |x: &serde_json::Value| {
        x.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("eos_token_id {x} is not a token id"))
    };
    match v {
        None | Some(serde_json::Value::Null) => Ok(Vec::new()),
        Some(serde_json::Value::Array(a)) => a.iter().map(id).collect(),
        Some(x) => Ok(vec![id(x)?]),
    }
}

fn positions() -> usize {
    2048
}
fn eps() -> f64 {
    1e-6
}
fn silu() -> String {
    "silu".into()
}

/// Rotary table rows at most (a 128k-position config would otherwise build a huge table).
pub(crate) const MAX_ROPE_POSITIONS: usize = 1 << 17;

impl LlamaConfig {
    pub fn kv_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }
    pub fn head_dim(&self) -> usize {
        self.head_dim
            .unwrap_or(self.hidden_size / self.num_attention_heads.max(1))
    }
    /// Whether q/k/v carry biases: Qwen2 always, Llama when `attention_bias`.
    pub fn qkv_bias(&self) -> bool {
        self.model_type == "qwen2" || self.attention_bias == Some(true)
    }
    /// `rope_theta` and the scaling, from `rope_parameters` or the older fields.
    pub fn rope(&self) -> std::result::Result<(f64, RopeScaling), String> {
        let p = self.rope_parameters.as_ref().filter(|v| !v.is_null());
        let theta = p
            .and_then(|p| p.get("rope_theta"))
            .and_then(|t| t.as_f64())
            .or(self.rope_theta)
            .unwrap_or(10000.0);
        let scaling = RopeScaling::from_hf(p.or(self.rope_scaling.as_ref()))?;
        Ok((theta, scaling))
    }
}

impl FamilyConfig for LlamaConfig {
    const KIND: ModelKind = ModelKind::Llama;
    fn check(&self) -> std::result::Result<(), String> {
        check_transformer(
            &[
                ("vocab_size", self.vocab_size),
                ("hidden_size", self.hidden_size),
                ("intermediate_size", self.intermediate_size),
                ("num_hidden_layers", self.num_hidden_layers),
                ("num_attention_heads", self.num_attention_heads),
                ("max_position_embeddings", self.max_position_embeddings),
            ],
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("rms_norm_eps", self.rms_norm_eps),
            ("hidden_act", &self.hidden_act),
        )
        .or_else(|e| {
            // A head_dim given explicitly need not divide hidden_size.
            if self.head_dim.is_some() && e.contains("not divisible") {
                Ok(())
            } else {
                Err(e)
            }
        })?;
        positive(&[
            ("num_key_value_heads", self.kv_heads()),
            ("head_dim", self.head_dim()),
        ])?;
        if !self.num_attention_heads.is_multiple_of(self.kv_heads()) {
            return Err(format!(
                "num_attention_heads {} is not divisible by num_key_value_heads {}",
                self.num_attention_heads,
                self.kv_heads()
            ));
        }
        if self.hidden_act != "silu" {
            return Err(format!(
                "hidden_act '{}': Llama-architecture MLPs are SiLU-gated here (silu only)",
                self.hidden_act
            ));
        }
        if self.mlp_bias {
            return Err("mlp_bias = true is not supported".into());
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(format!(
                "head_dim {} must be even for RoPE",
                self.head_dim()
            ));
        }
        self.rope().map(|_| ())
    }
}
