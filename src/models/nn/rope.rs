//! Rotary position embeddings as a layer: the inverse frequencies of transformers' RoPE types
//! (default, linear, llama3), their cos / sin table (a graph constant) and the `rope` op on a
//! fused QKV projection.

use crate::error::{Error, Result};
use crate::graph::{Constant, Graph, ValueId};
use crate::ops::rope::rope_table;
use std::sync::Arc;

/// A config's `rope_scaling` (or `rope_parameters`), by `rope_type`.
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    /// No scaling (`rope_scaling: null` or `rope_type: "default"`).
    Default,
    /// Positions divided by `factor`.
    Linear { factor: f64 },
    /// Llama 3.1's frequency-dependent scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: usize,
    },
}

/// The RoPE types [`RopeScaling::from_hf`] takes.
pub const ROPE_TYPES: [&str; 3] = ["default", "linear", "llama3"];

impl RopeScaling {
    /// From a config's `rope_scaling` object (`rope_type`, or the older `type`); `None` or
    /// JSON null is the default. An unknown type, a missing or non-positive field is an error
    /// naming it.
    pub fn from_hf(v: Option<&serde_json::Value>) -> std::result::Result<Self, String> {
        let Some(v) = v.filter(|v| !v.is_null()) else {
            return Ok(RopeScaling::Default);
        };
        let kind = v
            .get("rope_type")
            .or_else(|| v.get("type"))
            .and_then(|t| t.as_str())
            .unwrap_or("default");
        let num = |k: &str| -> std::result::Result<f64, String> {
            match v.get(k).and_then(|x| x.as_f64()) {
                Some(x) if x.is_finite() && x > 0.0 => Ok(x),
                Some(x) => Err(format!("rope_scaling.{k} = {x} must be positive")),
                None => Err(format!("rope_scaling type '{kind}' needs a number '{k}'")),
            }
        };
        match kind {
            "default" => Ok(RopeScaling::Default),
            "linear" => Ok(RopeScaling::Linear {
                factor: num("factor")?,
            }),
            "llama3" => {
                let (lo, hi) = (num("low_freq_factor")?, num("high_freq_factor")?);
                if hi <= lo {
                    return Err(format!(
                        "rope_scaling.high_freq_factor {hi} must exceed low_freq_factor {lo}"
                    ));
                }
                Ok(RopeScaling::Llama3 {
                    factor: num("factor")?,
                    low_freq_factor: lo,
                    high_freq_factor: hi,
                    original_max_position_embeddings: num("original_max_position_embeddings")?
                        as usize,
                })
            }
            other => Err(format!(
                "rope_scaling type '{other}' is not supported (supported: {})",
                ROPE_TYPES.join(", ")
            )),
        }
    }

    /// The `head_dim / 2` inverse frequencies for `theta`, in f32 as transformers computes
    /// them (`1 / theta^(2i / d)`, then the type's scaling).
    pub fn inv_freq(&self, head_dim: usize, theta: f64) -> Vec<f32> {
        let d = head_dim as f32;
        let base: Vec<f32> = (0..head_dim / 2)
            .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / d))
            .collect();
        match *self {
            RopeScaling::Default => base,
            RopeScaling::Linear { factor } => base.iter().map(|f| f / factor as f32).collect(),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor: lo,
                high_freq_factor: hi,
                original_max_position_embeddings: old,
            } => {
                let (factor, lo, hi, old) = (factor as f32, lo as f32, hi as f32, old as f32);
                let (low_wavelen, high_wavelen) = (old / lo, old / hi);
                // `scalar / tensor` in torch is `tensor.reciprocal() * scalar` (f32).
                base.iter()
                    .map(|&f| {
                        let wavelen = (1.0 / f) * (2.0 * std::f64::consts::PI) as f32;
                        let scaled = if wavelen > low_wavelen { f / factor } else { f };
                        let smooth = ((1.0 / wavelen) * old - lo) / (hi - lo);
                        let medium = wavelen >= high_wavelen && wavelen <= low_wavelen;
                        if medium {
                            (1.0 - smooth) * scaled / factor + smooth * scaled
                        } else {
                            scaled
                        }
                    })
                    .collect()
            }
        }
    }
}

/// Rotary embeddings of heads of `head_dim` over `positions` positions.
#[derive(Clone, Debug)]
pub struct Rotary {
    table: Arc<Constant>,
    head_dim: usize,
}

impl Rotary {
    pub fn new(
        head_dim: usize,
        theta: f64,
        scaling: &RopeScaling,
        positions: usize,
    ) -> Result<Rotary> {
        if head_dim == 0 || !head_dim.is_multiple_of(2) || positions == 0 {
            return Err(Error::InvalidArgument(format!(
                "rotary embeddings need an even head_dim (got {head_dim}) and positions"
            )));
        }
        if !(theta.is_finite() && theta > 1.0) {
            return Err(Error::InvalidArgument(format!(
                "rope_theta {theta} must be finite and above 1"
            )));
        }
        let inv = scaling.inv_freq(head_dim, theta);
        Ok(Rotary {
            table: Constant::new("rope cos/sin", rope_table(&inv, positions, 1.0)?),
            head_dim,
        })
    }

    /// RoPE on the first `heads` heads of each row of `qkv` [b, s, w] (the Q heads, then the
    /// K heads of a fused projection), token t at position `past + t`.
    pub fn forward(
        &self,
        g: &mut Graph,
        qkv: ValueId,
        heads: usize,
        past: Option<ValueId>,
    ) -> Result<ValueId> {
        let t = g.constant(&self.table)?;
        g.rope(qkv, t, self.head_dim, heads * self.head_dim, past)
    }
}
