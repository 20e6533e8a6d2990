//! Elementwise activations: GELU (exact erf and tanh forms), SiLU, sigmoid, erf, ReLU.
//! Also used as fused epilogues by matmul and conv2d.

use super::{expect_f32, expect_inputs, groups_for};
use crate::error::{Error, Result};
use crate::graph::{Arg, Graph, Lower, Op, Params, ValueId};
use crate::tensor::{Tensor, ValueInfo};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Act {
    #[default]
    None,
    /// 0.5 x (1 + erf(x / sqrt 2)) — BERT, ViT.
    GeluErf,
    /// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) — GPT-2 `gelu_new`.
    GeluTanh,
    /// x * sigmoid(x) — YOLO.
    Silu,
    Sigmoid,
    Erf,
    Relu,
    Tanh,
    /// x * sigmoid(1.702 x) — CLIP's `quick_gelu`.
    QuickGelu,
}

impl Act {
    /// Code used by the WGSL `activate` helper.
    pub fn code(self) -> u32 {
        match self {
            Act::None => 0,
            Act::GeluErf => 1,
            Act::GeluTanh => 2,
            Act::Silu => 3,
            Act::Sigmoid => 4,
            Act::Erf => 5,
            Act::Relu => 6,
            Act::Tanh => 7,
            Act::QuickGelu => 8,
        }
    }

    /// Reference value, computed in f64.
    pub fn apply(self, x: f32) -> f32 {
        let x = x as f64;
        let y = match self {
            Act::None => x,
            Act::GeluErf => 0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2)),
            Act::GeluTanh => {
                let k = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (k * (x + 0.044715 * x * x * x)).tanh())
            }
            Act::Silu => x / (1.0 + (-x).exp()),
            Act::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Act::Erf => libm::erf(x),
            Act::Relu => x.max(0.0),
            Act::Tanh => x.tanh(),
            // torch: x * sigmoid(1.702 * x), the product 1.702 * x in f32.
            Act::QuickGelu => {
                let z = (1.702f32 * x as f32) as f64;
                x / (1.0 + (-z).exp())
            }
        };
        y as f32
    }

    /// Maps a HuggingFace `hidden_act` / `activation_function` name.
    pub fn from_hf(name: &str) -> Result<Act> {
        Ok(match name {
            "gelu" | "gelu_python" => Act::GeluErf,
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" => Act::GeluTanh,
            "silu" | "swish" => Act::Silu,
            "relu" => Act::Relu,
            "sigmoid" => Act::Sigmoid,
            "tanh" => Act::Tanh,
            "quick_gelu" => Act::QuickGelu,
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unsupported activation '{other}' (supported: gelu, gelu_new, gelu_pytorch_tanh, quick_gelu, silu, relu, sigmoid, tanh)"
                )))
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct Activation {
    pub act: Act,
}

impl Op for Activation {
    fn name(&self) -> &'static str {
        match self.act {
            Act::None => "identity",
            Act::GeluErf => "gelu",
            Act::GeluTanh => "gelu_tanh",
            Act::Silu => "silu",
            Act::Sigmoid => "sigmoid",
            Act::Erf => "erf",
            Act::Relu => "relu",
            Act::Tanh => "tanh",
            Act::QuickGelu => "quick_gelu",
        }
    }

    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>> {
        expect_inputs(self.name(), inputs, 1)?;
        expect_f32(self.name(), inputs)?;
        Ok(vec![inputs[0].clone()])
    }

    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
        let x = inputs[0].as_f32()?;
        let y = x.iter().map(|&v| self.act.apply(v)).collect();
        Ok(vec![Tensor::from_f32(inputs[0].shape(), y)?])
    }

    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()> {
        let n = cx.info(inputs[0]).numel();
        let groups = groups_for(cx, n, 256);
        cx.dispatch(
            "elementwise.wgsl",
            &[("ACT", self.act.code().to_string())],
            vec![
                Arg::Read(inputs[0]),
                Arg::Write(outputs[0]),
                Params::new().u32(n as u32).arg(),
            ],
            groups,
        )
    }
}

impl Graph {
    /// Elementwise activation.
    pub fn activation(&mut self, x: ValueId, act: Act) -> Result<ValueId> {
        self.node1(Activation { act }, &[x])
    }
    pub fn gelu(&mut self, x: ValueId) -> Result<ValueId> {
        self.activation(x, Act::GeluErf)
    }
    pub fn gelu_tanh(&mut self, x: ValueId) -> Result<ValueId> {
        self.activation(x, Act::GeluTanh)
    }
    pub fn silu(&mut self, x: ValueId) -> Result<ValueId> {
        self.activation(x, Act::Silu)
    }
    pub fn sigmoid(&mut self, x: ValueId) -> Result<ValueId> {
        self.activation(x, Act::Sigmoid)
    }
}
