//! CLIP's config.json (`CLIPConfig` with its `text_config` and `vision_config`), with
//! transformers' defaults for fields older checkpoints leave out, checked before any weight
//! is read.

use super::family::{check_transformer, positive, FamilyConfig, ModelKind};
use super::vision::check_patches;
use serde::Deserialize;

/// The fields of HF `CLIPConfig` this implementation reads.
#[derive(Clone, Debug, Deserialize)]
pub struct ClipConfig {
    #[serde(default = "clip")]
    pub model_type: String,
    pub text_config: ClipTextConfig,
    pub vision_config: ClipVisionConfig,
    /// Width of the shared embedding space both projections map to.
    #[serde(default = "d512")]
    pub projection_dim: usize,
}

/// `CLIPTextConfig`: a causal pre-norm transformer over byte-level BPE tokens.
#[derive(Clone, Debug, Deserialize)]
pub struct ClipTextConfig {
    #[serde(default = "vocab")]
    pub vocab_size: usize,
    #[serde(default = "d512")]
    pub hidden_size: usize,
    #[serde(default = "d2048")]
    pub intermediate_size: usize,
    #[serde(default = "twelve")]
    pub num_hidden_layers: usize,
    #[serde(default = "eight")]
    pub num_attention_heads: usize,
    #[serde(default = "positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "quick_gelu")]
    pub hidden_act: String,
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
    /// The token whose final state is the text's pooled output. `2` is the value of
    /// checkpoints saved before transformers#24773: they pool at the largest id instead (the
    /// EOS of CLIP's vocabulary), as transformers still does for them.
    #[serde(default = "eos")]
    pub eos_token_id: u32,
}

/// `CLIPVisionConfig`: a pre-norm ViT with a class embedding and a pre-layernorm.
#[derive(Clone, Debug, Deserialize)]
pub struct ClipVisionConfig {
    #[serde(default = "d768")]
    pub hidden_size: usize,
    #[serde(default = "d3072")]
    pub intermediate_size: usize,
    #[serde(default = "twelve")]
    pub num_hidden_layers: usize,
    #[serde(default = "twelve")]
    pub num_attention_heads: usize,
    #[serde(default = "three")]
    pub num_channels: usize,
    #[serde(default = "side")]
    pub image_size: usize,
    #[serde(default = "patch")]
    pub patch_size: usize,
    #[serde(default = "quick_gelu")]
    pub hidden_act: String,
    #[serde(default = "eps")]
    pub layer_norm_eps: f64,
}

fn clip() -> String {
    "clip".into()
}
fn quick_gelu() -> String {
    "quick_gelu".into()
}
fn d512() -> usize {
    512
}
fn d768() -> usize {
    768
}
fn d2048() -> usize {
    2048
}
fn d3072() -> usize {
    3072
}
fn vocab() -> usize {
    49408
}
fn twelve() -> usize {
    12
}
fn eight() -> usize {
    8
}
fn three() -> usize {
    3
}
fn positions() -> usize {
    77
}
fn side() -> usize {
    224
}
fn patch() -> usize {
    32
}
fn eps() -> f64 {
    1e-5
}
fn eos() -> u32 {
    49407
}

impl FamilyConfig for ClipConfig {
    const KIND: ModelKind = ModelKind::Clip;
    fn check(&self) -> std::result::Result<(), String> {
        let (t, v) = (&self.text_config, &self.vision_config);
        positive(&[("projection_dim", self.projection_dim)])?;
        check_transformer(
            &[
                ("text_config.vocab_size", t.vocab_size),
                ("text_config.hidden_size", t.hidden_size),
                ("text_config.intermediate_size", t.intermediate_size),
                ("text_config.num_hidden_layers", t.num_hidden_layers),
                ("text_config.num_attention_heads", t.num_attention_heads),
                (
                    "text_config.max_position_embeddings",
                    t.max_position_embeddings,
                ),
            ],
            ("text_config.hidden_size", t.hidden_size),
            ("text_config.num_attention_heads", t.num_attention_heads),
            ("text_config.layer_norm_eps", t.layer_norm_eps),
            ("text_config.hidden_act", &t.hidden_act),
        )?;
        check_transformer(
            &[
                ("vision_config.hidden_size", v.hidden_size),
                ("vision_config.intermediate_size", v.intermediate_size),
                ("vision_config.num_hidden_layers", v.num_hidden_layers),
                ("vision_config.num_attention_heads", v.num_attention_heads),
                ("vision_config.image_size", v.image_size),
                ("vision_config.patch_size", v.patch_size),
                ("vision_config.num_channels", v.num_channels),
            ],
            ("vision_config.hidden_size", v.hidden_size),
            ("vision_config.num_attention_heads", v.num_attention_heads),
            ("vision_config.layer_norm_eps", v.layer_norm_eps),
            ("vision_config.hidden_act", &v.hidden_act),
        )?;
        check_patches(v.image_size, v.patch_size, v.num_channels)
    }
}

impl ClipTextConfig {
    /// The row whose final state pools each padded row of `ids` (`seq` per row), as
    /// `CLIPTextTransformer` picks it: the first `eos_token_id`, or (legacy configs with
    /// `eos_token_id` 2) the first largest id; row 0 when a row has no EOS.
    pub fn pooled_rows(&self, ids: &[u32], mask: &[u32], seq: usize) -> Vec<u32> {
        ids.chunks(seq)
            .zip(mask.chunks(seq))
            .enumerate()
            .map(|(b, (row, m))| {
                let mut real = row.iter().zip(m).filter(|(_, &m)| m != 0).map(|(&i, _)| i);
                let at = if self.eos_token_id == 2 {
                    // argmax: the first of the largest ids.
                    real.enumerate()
                        .fold(
                            (0, 0),
                            |(bi, bv), (i, v)| if v > bv { (i, v) } else { (bi, bv) },
                        )
                        .0
                } else {
                    real.position(|i| i == self.eos_token_id).unwrap_or(0)
                };
                (b * seq + at) as u32
            })
            .collect()
    }
}
