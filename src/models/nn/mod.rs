//! Shared layers: a prefix-scoped weight source ([`Vars`]), [`Linear`], [`LayerNorm`],
//! [`Embedding`], the vision transformers' [`PatchEmbedding`], and one [`TransformerLayer`] (pre- or post-norm, fused QKV attention,
//! optional KV cache). Weight names follow the HF module tree: a model scopes [`Vars`] the way
//! its modules nest, so every name is written once.

mod decoder;
mod layers;
mod patches;
mod rope;
mod transformer;
mod vars;

pub use decoder::{DecoderLayer, DecoderShape};
pub use layers::{Embedding, LayerNorm, Linear, RmsNorm};
pub use patches::{prepend_tokens, PatchEmbedding};
pub use rope::{RopeScaling, Rotary, ROPE_TYPES};
pub use transformer::{
    self_attention, KvCache, LayerNames, LayerShape, Masking, Norm, Qkv, TransformerLayer,
};
pub(crate) use vars::Ticker;
pub use vars::{TensorSource, Vars};

use crate::error::Result;
use crate::graph::{Graph, ValueId};
use crate::tensor::DType;

/// A [`DType::U32`] input of `shape`.
pub(crate) fn ids_input(g: &mut Graph, name: &str, shape: &[usize]) -> Result<ValueId> {
    g.input(name, shape, DType::U32)
}
