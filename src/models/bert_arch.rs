//! The BERT family's config ([`BertConfig`]) and architectures: BERT, RoBERTa / XLM-RoBERTa,
//! DistilBERT and MPNet share one post-norm encoder ([`super::bert`]) and differ only in what
//! this file holds: their HF module names, whether token types are embedded, how position ids
//! are counted, MPNet's relative position bias, and the sequence-classification head.
//!
//! ```text
//!              embeddings                 layers                      classification head
//! BERT         word + pos + type, LN      encoder.layer.N (BertLayer)  pooler (tanh) ─ classifier
//! RoBERTa/XLM-R word + pos(pad+1..) + type encoder.layer.N            <s> ─ dense (tanh) ─ out_proj
//! DistilBERT   word + pos, LN             transformer.layer.N          [CLS] ─ pre_classifier (relu) ─ classifier
//! MPNet        word + pos(pad+1..), LN    encoder.layer.N              <s> ─ dense (tanh) ─ out_proj
//!                                         + per-head bias[bucket(j - i)] on every layer's scores
//! ```

use super::family::{self, check_transformer, FamilyConfig, ModelKind};
use super::nn::{ids_input, Embedding, LayerNames, Linear, Qkv, Vars};
use crate::error::Result;
use crate::graph::{Graph, ValueId};
use crate::ops::Act;
use crate::tensor::Tensor;
use crate::weights::Weights;
use serde::Deserialize;

/// Which member of the family a config.json describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Bert,
    /// RoBERTa and XLM-RoBERTa (the same modules; the tokenizer differs).
    Roberta,
    DistilBert,
    /// MPNet: RoBERTa's positions and head, its own module names, no token types, and a
    /// relative position bias (`encoder.relative_attention_bias`) added to every attention.
    MpNet,
}

const BERT_LAYER: LayerNames = LayerNames {
    qkv: Qkv::Separate([
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
    ]),
    attn_out: "attention.output.dense",
    attn_norm: "attention.output.LayerNorm",
    mlp_in: "intermediate.dense",
    mlp_out: "output.dense",
    mlp_norm: "output.LayerNorm",
    layer_scale: None,
};

const DISTILBERT_LAYER: LayerNames = LayerNames {
    qkv: Qkv::Separate(["attention.q_lin", "attention.k_lin", "attention.v_lin"]),
    attn_out: "attention.out_lin",
    attn_norm: "sa_layer_norm",
    mlp_in: "ffn.lin1",
    mlp_out: "ffn.lin2",
    mlp_norm: "output_layer_norm",
    layer_scale: None,
};

const MPNET_LAYER: LayerNames = LayerNames {
    qkv: Qkv::Separate(["attention.attn.q", "attention.attn.k", "attention.attn.v"]),
    attn_out: "attention.attn.o",
    attn_norm: "attention.LayerNorm",
    mlp_in: "intermediate.dense",
    mlp_out: "output.dense",
    mlp_norm: "output.LayerNorm",
    layer_scale: None,
};

/// Prefixes of `*For*` checkpoints, tried in order when the bare names are absent.
pub const PREFIXES: [&str; 4] = ["bert.", "roberta.", "distilbert.", "mpnet."];

/// MPNet's relative position buckets: `compute_position_bias` always uses 32 buckets over a
/// maximum distance of 128, whatever the config's `relative_attention_num_buckets` (the
/// table's row count) says.
pub const MPNET_BUCKETS: usize = 32;

/// The bucket of relative position `rel = key - query` (transformers'
/// `MPNetEncoder.relative_position_bucket` with 32 buckets and max distance 128, in f32 as
/// torch computes it): half the buckets for keys before the query, exact buckets for
/// distances below 8, logarithmic ones up to 128.
pub fn mpnet_bucket(rel: i64) -> u32 {
    let half = (MPNET_BUCKETS / 2) as i64;
    let n = -rel;
    let mut ret = if n < 0 { half } else { 0 };
    let n = n.abs();
    let exact = half / 2;
    ret += if n < exact {
        n
    } else {
        let log_ratio = (n as f32 / exact as f32).ln() / (128.0f64 / exact as f64).ln() as f32;
        (exact + (log_ratio * (half - exact) as f32) as i64).min(half - 1)
    };
    ret as u32
}

/// Bucket ids [seq, seq] of every (query, key) pair of a sequence.
pub fn mpnet_buckets(seq: usize) -> Vec<u32> {
    (0..seq)
        .flat_map(|i| (0..seq).map(move |j| mpnet_bucket(j as i64 - i as i64)))
        .collect()
}

/// MPNet's relative position bias: a table [buckets, heads] (`encoder.relative_attention_bias`)
/// read at each (query, key) pair's bucket, one bias per head added to every layer's scores.
pub struct RelativeBias {
    table: Embedding,
    heads: usize,
}

impl RelativeBias {
    pub fn load(vb: &Vars, c: &BertConfig) -> Result<RelativeBias> {
        Ok(RelativeBias {
            table: Embedding::load(
                &vb.pp("encoder.relative_attention_bias"),
                c.relative_attention_num_buckets,
                c.num_attention_heads,
            )?,
            heads: c.num_attention_heads,
        })
    }

    /// The bias [heads, s, s] from a `relative_buckets` input [1, s·s] (fed by
    /// [`RelativeBias::buckets`]).
    pub fn forward(&self, g: &mut Graph, s: usize) -> Result<ValueId> {
        let buckets = ids_input(g, "relative_buckets", &[1, s * s])?;
        let rows = self.table.forward(g, buckets)?;
        let rows = g.reshape(rows, &[s * s, self.heads])?;
        let t = g.permute(rows, &[1, 0])?;
        g.reshape(t, &[self.heads, s, s])
    }

    /// The `relative_buckets` feed of a sequence of `s` tokens.
    pub fn buckets(s: usize) -> Result<Tensor> {
        Tensor::from_u32(&[1, s * s], mpnet_buckets(s))
    }
}

impl Arch {
    pub fn from_model_type(mt: &str) -> Arch {
        match mt {
            "roberta" | "xlm-roberta" => Arch::Roberta,
            "distilbert" => Arch::DistilBert,
            "mpnet" => Arch::MpNet,
            _ => Arch::Bert,
        }
    }

    /// The scope of the layer list and one layer's module names.
    pub fn layers(self) -> (&'static str, &'static LayerNames) {
        match self {
            Arch::DistilBert => ("transformer.layer", &DISTILBERT_LAYER),
            Arch::MpNet => ("encoder.layer", &MPNET_LAYER),
            Arch::Bert | Arch::Roberta => ("encoder.layer", &BERT_LAYER),
        }
    }

    /// Whether token types are embedded (DistilBERT and MPNet have no token-type table).
    pub fn token_types(self) -> bool {
        !matches!(self, Arch::DistilBert | Arch::MpNet)
    }

    /// Whether attention adds a relative position bias (MPNet).
    pub fn relative_bias(self) -> bool {
        self == Arch::MpNet
    }

    /// Position ids of one padded row: 0, 1, 2, … (BERT, DistilBERT); RoBERTa counts real
    /// tokens from `pad + 1` and gives padding `pad` (transformers'
    /// `create_position_ids_from_input_ids`, with the mask standing for `ids != pad`); MPNet
    /// counts the same way.
    pub fn positions(self, mask: &[u32], pad: usize, out: &mut Vec<u32>) {
        match self {
            Arch::Roberta | Arch::MpNet => {
                let mut n = 0;
                out.extend(mask.iter().map(|&m| {
                    n += (m != 0) as usize;
                    (if m != 0 { pad + n } else { pad }) as u32
                }));
            }
            _ => out.extend(0..mask.len() as u32),
        }
    }

    /// Position-table rows the arch reserves before the first token (RoBERTa, MPNet: `pad + 1`).
    pub fn position_offset(self, pad: usize) -> usize {
        match self {
            Arch::Roberta | Arch::MpNet => pad + 1,
            _ => 0,
        }
    }

    /// The number of labels of the checkpoint's sequence-classification head, if it has one:
    /// the shape of its output projection ([num_labels, hidden]). A head of another shape, or
    /// a BERT head without the pooler it reads, is an error message.
    pub fn head_labels(
        self,
        w: &Weights,
        with_pooler: bool,
    ) -> std::result::Result<Option<usize>, String> {
        let name = self.head_out();
        match w.shape(&format!("{name}.weight")) {
            Some(s) if s.len() == 2 && s[0] >= 1 && (self != Arch::Bert || with_pooler) => {
                Ok(Some(s[0]))
            }
            Some(s) => Err(format!(
                "{name}.weight has shape {s:?}; a sequence-classification head needs \
                 [num_labels, hidden]{}",
                if self == Arch::Bert {
                    " after a pooler (pooler.dense)"
                } else {
                    ""
                }
            )),
            None => Ok(None),
        }
    }

    /// The head's output projection.
    fn head_out(self) -> &'static str {
        match self {
            Arch::Roberta | Arch::MpNet => "classifier.out_proj",
            Arch::Bert | Arch::DistilBert => "classifier",
        }
    }

    /// Loads the head: BERT's classifier reads the pooler output; RoBERTa's and DistilBERT's
    /// read the first token through their own dense layer.
    pub fn load_head(self, vb: &Vars, hidden: usize, labels: usize) -> Result<Head> {
        let pre = match self {
            Arch::Bert => None,
            Arch::Roberta | Arch::MpNet => Some((
                Linear::load(&vb.pp("classifier.dense"), hidden, hidden)?,
                Act::Tanh,
            )),
            Arch::DistilBert => Some((
                Linear::load(&vb.pp("pre_classifier"), hidden, hidden)?,
                Act::Relu,
            )),
        };
        Ok(Head {
            pre,
            out: Linear::load(&vb.pp(self.head_out()), hidden, labels)?,
            labels,
        })
    }
}

/// A sequence-classification head: `out(pre(first token))`, or `out(pooler_output)` when
/// `pre` is `None` (BERT).
pub struct Head {
    pub pre: Option<(Linear, Act)>,
    pub out: Linear,
    pub labels: usize,
}

/// The fields of HF `BertConfig` (and `RobertaConfig`, `XLMRobertaConfig`, `DistilBertConfig`,
/// whose names are aliases here, and `MPNetConfig`) this implementation reads.
#[derive(Clone, Debug, Deserialize)]
pub struct BertConfig {
    /// bert, roberta, xlm-roberta, distilbert or mpnet.
    #[serde(default = "bert")]
    pub model_type: String,
    pub vocab_size: usize,
    #[serde(alias = "dim")]
    pub hidden_size: usize,
    #[serde(alias = "n_layers")]
    pub num_hidden_layers: usize,
    #[serde(alias = "n_heads")]
    pub num_attention_heads: usize,
    #[serde(alias = "hidden_dim")]
    pub intermediate_size: usize,
    #[serde(default = "family::gelu", alias = "activation")]
    pub hidden_act: String,
    #[serde(default = "family::eps_1e12")]
    pub layer_norm_eps: f64,
    #[serde(default = "max_positions")]
    pub max_position_embeddings: usize,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
    /// RoBERTa's `padding_idx`: position ids start after it.
    #[serde(default = "one")]
    pub pad_token_id: usize,
    /// MPNet's relative-bias table rows (at least [`MPNET_BUCKETS`]).
    #[serde(default = "buckets")]
    pub relative_attention_num_buckets: usize,
}

fn buckets() -> usize {
    MPNET_BUCKETS
}

fn bert() -> String {
    "bert".into()
}
fn one() -> usize {
    1
}
fn max_positions() -> usize {
    512
}
fn two() -> usize {
    2
}

impl FamilyConfig for BertConfig {
    const KIND: ModelKind = ModelKind::Bert;
    fn check(&self) -> std::result::Result<(), String> {
        check_transformer(
            &[
                ("vocab_size", self.vocab_size),
                ("hidden_size", self.hidden_size),
                ("num_hidden_layers", self.num_hidden_layers),
                ("num_attention_heads", self.num_attention_heads),
                ("intermediate_size", self.intermediate_size),
                ("max_position_embeddings", self.max_position_embeddings),
                ("type_vocab_size", self.type_vocab_size),
            ],
            ("hidden_size", self.hidden_size),
            ("num_attention_heads", self.num_attention_heads),
            ("layer_norm_eps", self.layer_norm_eps),
            ("hidden_act", &self.hidden_act),
        )?;
        if self.max_tokens() == 0 {
            return Err(format!(
                "max_position_embeddings {} leaves no positions after padding_idx {}",
                self.max_position_embeddings, self.pad_token_id
            ));
        }
        if self.arch().relative_bias() && self.relative_attention_num_buckets < MPNET_BUCKETS {
            return Err(format!(
                "relative_attention_num_buckets {} is below the {MPNET_BUCKETS} buckets MPNet's \
                 attention reads",
                self.relative_attention_num_buckets
            ));
        }
        match self.position_embedding_type.as_deref() {
            None | Some("absolute") => Ok(()),
            Some(t) => Err(format!("position_embedding_type '{t}' is not supported")),
        }
    }
}

impl BertConfig {
    pub fn arch(&self) -> Arch {
        Arch::from_model_type(&self.model_type)
    }

    /// The longest input in tokens (RoBERTa reserves `pad_token_id + 1` position rows).
    pub fn max_tokens(&self) -> usize {
        let off = self.arch().position_offset(self.pad_token_id);
        self.max_position_embeddings.saturating_sub(off)
    }
}
