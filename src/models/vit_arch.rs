//! The ViT family's config ([`VitConfig`]) and architectures: ViT, DeiT and DINOv2 (with or
//! without registers) share one pre-norm encoder ([`super::vit`]) and differ in what this file
//! holds: their HF module names, extra tokens, layer scale, position embeddings at other input
//! sizes, and the classification head.
//!
//! ```text
//!         tokens                       layers (pre-norm)              head
//! ViT     CLS + patches                layernorm_before/after         classifier(CLS)
//! DeiT    CLS + DIST + patches         (as ViT)                       (cls_classifier(CLS) + distillation_classifier(DIST)) / 2
//! DINOv2  CLS + patches, position      norm1/norm2, mlp.fc1/fc2,      classifier([CLS, mean(patches)])
//!         grid resized (bicubic)       layer_scale1/2 (folded)
//! DINOv2  CLS + REG×R + patches, grid  (as DINOv2)                    classifier([CLS, mean(patches)])
//! +reg.   resized (antialiased bicubic); registers take no position
//! ```

use super::family::{self, check_transformer, FamilyConfig, ModelKind};
use super::nn::{LayerNames, Qkv, Vars};
use super::vision::{self, check_id2label, check_patches, ImageProcessorConfig};
use crate::error::Result;
use crate::graph::Constant;
use crate::tensor::Tensor;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Which member of the family a config.json describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Vit,
    Deit,
    Dinov2,
    /// `dinov2_with_registers`: DINOv2 with register tokens after CLS.
    Dinov2Registers,
}

const VIT_LAYER: LayerNames = LayerNames {
    qkv: Qkv::Separate([
        "attention.attention.query",
        "attention.attention.key",
        "attention.attention.value",
    ]),
    attn_out: "attention.output.dense",
    attn_norm: "layernorm_before",
    mlp_in: "intermediate.dense",
    mlp_out: "output.dense",
    mlp_norm: "layernorm_after",
    layer_scale: None,
};

const DINOV2_LAYER: LayerNames = LayerNames {
    qkv: Qkv::Separate([
        "attention.attention.query",
        "attention.attention.key",
        "attention.attention.value",
    ]),
    attn_out: "attention.output.dense",
    attn_norm: "norm1",
    mlp_in: "mlp.fc1",
    mlp_out: "mlp.fc2",
    mlp_norm: "norm2",
    layer_scale: Some(["layer_scale1", "layer_scale2"]),
};

/// Prefixes of `*For*` checkpoints, tried in order when the bare names are absent.
pub const PREFIXES: [&str; 4] = ["vit.", "deit.", "dinov2.", "dinov2_with_registers."];

impl Arch {
    pub fn from_model_type(mt: &str) -> Arch {
        match mt {
            "deit" => Arch::Deit,
            "dinov2" => Arch::Dinov2,
            "dinov2_with_registers" => Arch::Dinov2Registers,
            _ => Arch::Vit,
        }
    }

    pub fn layer_names(self) -> &'static LayerNames {
        match self {
            Arch::Dinov2 | Arch::Dinov2Registers => &DINOV2_LAYER,
            Arch::Vit | Arch::Deit => &VIT_LAYER,
        }
    }

    /// Whether this is a DINOv2 (layer scale, [CLS, mean(patches)] classifier, layer-normed
    /// CLS as the pooled output).
    pub fn is_dinov2(self) -> bool {
        matches!(self, Arch::Dinov2 | Arch::Dinov2Registers)
    }

    /// Whether the input side may differ from the config's `image_size` (the position grid is
    /// then resized, as transformers' `interpolate_pos_encoding` does for DINOv2).
    pub fn resizes_positions(self) -> bool {
        self.is_dinov2()
    }

    /// The width the `classifier` reads: DINOv2 concatenates CLS and the patches' mean.
    pub fn classifier_input(self, hidden: usize) -> usize {
        match self {
            Arch::Dinov2 | Arch::Dinov2Registers => 2 * hidden,
            Arch::Vit | Arch::Deit => hidden,
        }
    }
}

/// The fields of HF `ViTConfig` (and `DeiTConfig`, `Dinov2Config`,
/// `Dinov2WithRegistersConfig`) this implementation reads.
#[derive(Clone, Debug, Deserialize)]
pub struct VitConfig {
    /// vit, deit, dinov2 or dinov2_with_registers.
    #[serde(default = "vit")]
    pub model_type: String,
    /// The side the position embeddings were trained at.
    pub image_size: usize,
    pub patch_size: usize,
    #[serde(default = "vision::three")]
    pub num_channels: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// The MLP width; DINOv2 configs give `mlp_ratio` instead (0 here then).
    #[serde(default)]
    pub intermediate_size: usize,
    #[serde(default)]
    pub mlp_ratio: Option<f64>,
    /// DINOv2's SwiGLU MLP (giant models): not supported.
    #[serde(default)]
    pub use_swiglu_ffn: bool,
    #[serde(default = "family::eps_1e12")]
    pub layer_norm_eps: f64,
    #[serde(default = "family::gelu")]
    pub hidden_act: String,
    #[serde(default)]
    pub id2label: BTreeMap<String, String>,
    /// Register tokens after CLS (`dinov2_with_registers` only; 4 by default there).
    #[serde(default)]
    pub num_register_tokens: Option<usize>,
}

fn vit() -> String {
    "vit".into()
}

impl VitConfig {
    pub fn arch(&self) -> Arch {
        Arch::from_model_type(&self.model_type)
    }

    /// Register tokens after CLS: `num_register_tokens` of a `dinov2_with_registers` config
    /// (transformers' default 4), none otherwise.
    pub fn registers(&self) -> usize {
        match self.arch() {
            Arch::Dinov2Registers => self.num_register_tokens.unwrap_or(4),
            _ => 0,
        }
    }

    /// The MLP width: `intermediate_size`, else `hidden_size · mlp_ratio`.
    pub fn inner(&self) -> usize {
        match (self.intermediate_size, self.mlp_ratio) {
            (0, Some(r)) if r.is_finite() && r > 0.0 && r < 64.0 => {
                (self.hidden_size as f64 * r) as usize
            }
            (n, _) => n,
        }
    }
}

impl FamilyConfig for VitConfig {
    const KIND: ModelKind = ModelKind::Vit;
    fn check(&self) -> std::result::Result<(), String> {
        let c = self;
        if c.use_swiglu_ffn {
            return Err("use_swiglu_ffn (DINOv2's SwiGLU MLP) is not supported".into());
        }
        check_transformer(
            &[
                ("image_size", c.image_size),
                ("patch_size", c.patch_size),
                ("num_channels", c.num_channels),
                ("hidden_size", c.hidden_size),
                ("num_hidden_layers", c.num_hidden_layers),
                ("num_attention_heads", c.num_attention_heads),
                ("intermediate_size (or hidden_size * mlp_ratio)", c.inner()),
            ],
            ("hidden_size", c.hidden_size),
            ("num_attention_heads", c.num_attention_heads),
            ("layer_norm_eps", c.layer_norm_eps),
            ("hidden_act", &c.hidden_act),
        )?;
        check_patches(c.image_size, c.patch_size, c.num_channels)?;
        if c.registers() > 1024 {
            return Err(format!(
                "num_register_tokens {} is above 1024",
                c.registers()
            ));
        }
        check_id2label(&self.id2label)
    }
}

/// The input side: `image_size`, except for DINOv2, whose processor's centre crop (or square
/// resize) decides it and whose position grid is then resized to match.
pub(crate) fn input_side(
    c: &VitConfig,
    p: &ImageProcessorConfig,
) -> std::result::Result<usize, String> {
    if !c.arch().resizes_positions() {
        return Ok(c.image_size);
    }
    let side = |m: &Option<BTreeMap<String, usize>>| {
        let m = m.as_ref()?;
        let (h, w) = (m.get("height")?, m.get("width")?);
        (h == w).then_some(*h)
    };
    let s = if p.do_center_crop {
        side(&p.crop_size)
    } else if p.do_resize {
        side(&p.size)
    } else {
        None
    }
    .unwrap_or(c.image_size);
    if s == 0 || !s.is_multiple_of(c.patch_size) || s > 8192 {
        return Err(format!(
            "the processor's output side {s} must be a positive multiple of patch_size {} (at most 8192)",
            c.patch_size
        ));
    }
    Ok(s)
}

/// The position embeddings for `side`-pixel inputs: as stored ([1, `tokens`, h]) when the grid
/// matches, else (DINOv2) the patch grid resized with torch's bicubic interpolation
/// (antialiased for DINOv2 with registers, as its `interpolate_pos_encoding`), the leading
/// token's row kept.
pub(crate) fn positions(
    e: &Vars,
    c: &VitConfig,
    tokens: usize,
    side: usize,
) -> Result<Arc<Constant>> {
    let h = c.hidden_size;
    let stored = e.tensor("position_embeddings", &[1, tokens, h])?;
    if side == c.image_size {
        return Ok(Constant::new(e.key("position_embeddings"), stored));
    }
    let (g0, g1) = (c.image_size / c.patch_size, side / c.patch_size);
    let v = stored.as_f32()?;
    // [g0·g0, h] → [h, g0, g0] planes.
    let mut planes = vec![0.0f32; h * g0 * g0];
    for t in 0..g0 * g0 {
        for d in 0..h {
            planes[d * g0 * g0 + t] = v[(1 + t) * h + d];
        }
    }
    let r = if c.arch() == Arch::Dinov2Registers {
        crate::imageio::interpolate_bicubic_aa(&planes, h, g0, g0, g1, g1)
    } else {
        vision::interpolate_bicubic(&planes, h, g0, g0, g1, g1)
    };
    let mut out = Vec::with_capacity((1 + g1 * g1) * h);
    out.extend_from_slice(&v[..h]);
    for t in 0..g1 * g1 {
        out.extend((0..h).map(|d| r[d * g1 * g1 + t]));
    }
    let t = Tensor::from_f32(&[1, 1 + g1 * g1, h], out)?;
    Ok(Constant::new(e.key("position_embeddings"), t))
}
