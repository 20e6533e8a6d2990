//! The ViT family's architectures: ViT, DeiT and DINOv2 share one pre-norm encoder
//! ([`super::vit`]) and differ in what this file holds: their HF module names, extra tokens,
//! layer scale, position embeddings at other input sizes, and the classification head.
//!
//! ```text
//!         tokens                       layers (pre-norm)              head
//! ViT     CLS + patches                layernorm_before/after         classifier(CLS)
//! DeiT    CLS + DIST + patches         (as ViT)                       (cls_classifier(CLS) + distillation_classifier(DIST)) / 2
//! DINOv2  CLS + patches, position      norm1/norm2, mlp.fc1/fc2,      classifier([CLS, mean(patches)])
//!         grid resized (bicubic)       layer_scale1/2 (folded)
//! ```

use super::nn::{LayerNames, Qkv};

/// Which member of the family a config.json describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Vit,
    Deit,
    Dinov2,
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
pub const PREFIXES: [&str; 3] = ["vit.", "deit.", "dinov2."];

impl Arch {
    pub fn from_model_type(mt: &str) -> Arch {
        match mt {
            "deit" => Arch::Deit,
            "dinov2" => Arch::Dinov2,
            _ => Arch::Vit,
        }
    }

    pub fn layer_names(self) -> &'static LayerNames {
        match self {
            Arch::Dinov2 => &DINOV2_LAYER,
            Arch::Vit | Arch::Deit => &VIT_LAYER,
        }
    }

    /// Whether the input side may differ from the config's `image_size` (the position grid is
    /// then resized, as transformers' `interpolate_pos_encoding` does for DINOv2).
    pub fn resizes_positions(self) -> bool {
        self == Arch::Dinov2
    }

    /// The width the `classifier` reads: DINOv2 concatenates CLS and the patches' mean.
    pub fn classifier_input(self, hidden: usize) -> usize {
        match self {
            Arch::Dinov2 => 2 * hidden,
            Arch::Vit | Arch::Deit => hidden,
        }
    }
}
