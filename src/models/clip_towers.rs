//! CLIP's two towers on the shared layers: their module names, weights and graphs (the model
//! and its API are in [`super::clip`]).
//!
//! ```text
//! text:   ids ─ token_emb + pos_emb ─ [× L pre-norm causal TransformerLayer] ─ final LN
//!         ─ state at EOS ─ text_projection
//! vision: pixels ─ patches (conv, no bias) ─ [CLS] ─ + pos_emb ─ pre_layrnorm
//!         ─ [× L pre-norm TransformerLayer] ─ CLS ─ post_layernorm ─ visual_projection
//! ```

use super::clip_config::{ClipConfig, ClipTextConfig, ClipVisionConfig};
use super::nn::*;
use crate::error::{Error, Result};
use crate::graph::{Constant, Graph};
use crate::ops::Act;
use crate::tensor::DType;
use std::sync::Arc;

/// The module names of one layer of either tower.
const LAYER: LayerNames = LayerNames {
    qkv: Qkv::Separate(["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"]),
    attn_out: "self_attn.out_proj",
    attn_norm: "layer_norm1",
    mlp_in: "mlp.fc1",
    mlp_out: "mlp.fc2",
    mlp_norm: "layer_norm2",
    layer_scale: None,
};

fn tower(vb: &Vars, layers: usize, shape: LayerShape) -> Result<Vec<TransformerLayer>> {
    TransformerLayer::stack(&vb.pp("encoder.layers"), layers, &LAYER, shape)
}

fn shape(
    w: usize,
    inner: usize,
    heads: usize,
    eps: f64,
    act: &str,
    m: Masking,
) -> Result<LayerShape> {
    Ok(LayerShape {
        width: w,
        inner,
        heads,
        eps,
        act: Act::from_hf(act)?,
        norm: Norm::Pre,
        masking: m,
    })
}

pub(crate) struct TextTower {
    tok: Embedding,
    pos: Embedding,
    layers: Vec<TransformerLayer>,
    norm: LayerNorm,
    proj: Linear,
}

pub(crate) struct VisionTower {
    patch: PatchEmbedding,
    cls: Arc<Constant>,
    pos: Arc<Constant>,
    pre: LayerNorm,
    layers: Vec<TransformerLayer>,
    post: LayerNorm,
    proj: Linear,
}

pub(crate) struct ClipWeights {
    pub text: TextTower,
    pub vision: VisionTower,
    pub logit_scale: f32,
}

impl ClipWeights {
    pub(crate) fn load(c: &ClipConfig, vb: &Vars) -> Result<ClipWeights> {
        let (t, v, d) = (&c.text_config, &c.vision_config, c.projection_dim);
        let (tv, vv) = (vb.pp("text_model"), vb.pp("vision_model"));
        let (te, ve) = (tv.pp("embeddings"), vv.pp("embeddings"));
        let th = t.hidden_size;
        let text = TextTower {
            tok: Embedding::load(&te.pp("token_embedding"), t.vocab_size, th)?,
            pos: Embedding::load(&te.pp("position_embedding"), t.max_position_embeddings, th)?,
            layers: tower(
                &tv,
                t.num_hidden_layers,
                shape(
                    th,
                    t.intermediate_size,
                    t.num_attention_heads,
                    t.layer_norm_eps,
                    &t.hidden_act,
                    Masking::Causal,
                )?,
            )?,
            norm: LayerNorm::load(&tv.pp("final_layer_norm"), th, t.layer_norm_eps)?,
            proj: Linear::load_no_bias(&vb.pp("text_projection"), th, d)?,
        };
        let (h, p) = (v.hidden_size, v.patch_size);
        let tokens = (v.image_size / p).pow(2) + 1;
        let cls = ve.tensor("class_embedding", &[h])?.reshape(&[1, 1, h])?;
        let pos = (ve.pp("position_embedding"))
            .tensor("weight", &[tokens, h])?
            .reshape(&[1, tokens, h])?;
        let vision = VisionTower {
            patch: PatchEmbedding::load(&ve.pp("patch_embedding"), h, v.num_channels, p, false)?,
            cls: Constant::new(ve.key("class_embedding"), cls),
            pos: Constant::new(ve.pp("position_embedding").key("weight"), pos),
            pre: LayerNorm::load(&vv.pp("pre_layrnorm"), h, v.layer_norm_eps)?,
            layers: tower(
                &vv,
                v.num_hidden_layers,
                shape(
                    h,
                    v.intermediate_size,
                    v.num_attention_heads,
                    v.layer_norm_eps,
                    &v.hidden_act,
                    Masking::Bidirectional,
                )?,
            )?,
            post: LayerNorm::load(&vv.pp("post_layernorm"), h, v.layer_norm_eps)?,
            proj: Linear::load_no_bias(&vb.pp("visual_projection"), h, d)?,
        };
        // A 0-dim tensor in the file; the weights reader gives scalars the shape [1].
        let scale = vb.tensor("logit_scale", &[1])?.as_f32()?[0];
        if !scale.is_finite() || scale > 50.0 {
            return Err(Error::InvalidArgument(format!(
                "logit_scale {scale} is not a usable log temperature"
            )));
        }
        Ok(ClipWeights {
            text,
            vision,
            logit_scale: scale,
        })
    }
}

impl TextTower {
    /// The text tower's graph for `b` rows of `s` tokens.
    pub(crate) fn graph(&self, c: &ClipTextConfig, b: usize, s: usize) -> Result<Graph> {
        let (t, h) = (self, c.hidden_size);
        let mut g = Graph::new();
        let ids = ids_input(&mut g, "input_ids", &[b, s])?;
        let pos = ids_input(&mut g, "position_ids", &[b, s])?;
        let mask = g.input("attention_bias", &[b, s], DType::F32)?;
        let rows = ids_input(&mut g, "pooled_rows", &[b])?;
        let x = t.tok.forward(&mut g, ids)?;
        let p = t.pos.forward(&mut g, pos)?;
        let mut x = g.add(x, p)?;
        for layer in &t.layers {
            x = layer.forward(&mut g, x, Some(mask), None)?;
        }
        let x = t.norm.forward(&mut g, x)?;
        g.output("last_hidden_state", x);
        let flat = g.reshape(x, &[b * s, h])?;
        let pooled = g.embedding(flat, rows)?;
        g.output("pooler_output", pooled);
        let e = t.proj.forward(&mut g, pooled)?;
        g.output("text_embeds", e);
        Ok(g)
    }
}

impl VisionTower {
    /// The vision tower's graph for `b` images.
    pub(crate) fn graph(&self, c: &ClipVisionConfig, b: usize) -> Result<Graph> {
        let v = self;
        let (h, s) = (c.hidden_size, c.image_size);
        let mut g = Graph::new();
        let pix = g.input("pixel_values", &[b, c.num_channels, s, s], DType::F32)?;
        let x = v.patch.forward(&mut g, pix, b, s)?;
        let x = prepend_tokens(&mut g, &[&v.cls], x)?;
        let pos = g.constant(&v.pos)?;
        let x = g.add(x, pos)?;
        let mut x = v.pre.forward(&mut g, x)?;
        for layer in &v.layers {
            x = layer.forward(&mut g, x, None, None)?;
        }
        g.output("last_hidden_state", x);
        let cls = g.slice(x, 1, 0, 1)?;
        let cls = g.reshape(cls, &[b, h])?;
        let pooled = v.post.forward(&mut g, cls)?;
        g.output("pooler_output", pooled);
        let e = v.proj.forward(&mut g, pooled)?;
        g.output("image_embeds", e);
        Ok(g)
    }
}
