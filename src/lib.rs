//! wgpu-infer: a GPU compute-kernel runtime. Hand-written WGSL kernels run on a small graph
//! executor; every op has a CPU reference kernel and a parity test. Models (BERT, GPT-2, ViT,
//! YOLOv8) load HuggingFace-format safetensors weights.
//!
//! ```no_run
//! use std::sync::Arc;
//! use wgpu_infer::{Backend, DType, Device, Graph, Tensor};
//! # fn main() -> wgpu_infer::Result<()> {
//! let device = Device::new()?;
//! let mut g = Graph::new();
//! let x = g.input("x", &[2, 3], DType::F32)?;
//! let y = g.gelu(x)?;
//! g.output("y", y);
//! let mut plan = Backend::Gpu(device).compile(Arc::new(g), &[])?;
//! let out = plan.run(&[&Tensor::from_f32(&[2, 3], vec![0.5; 6])?])?;
//! # Ok(()) }
//! ```

pub mod bench;
pub mod device;
pub mod error;
pub mod graph;
pub mod hub;
pub mod imageio;
pub mod models;
pub mod ops;
pub mod peak;
pub mod shaders;
pub mod tensor;
pub mod tune;
pub mod weights;

pub use device::{Device, GpuMemory};
pub use error::{Error, Result};
pub use graph::{Backend, Constant, Graph, Plan, PlanCache, PlanStats, State, ValueId};
pub use models::LoadOptions;
pub use ops::{Act, MatmulVariant};
pub use tensor::{DType, Tensor, ValueInfo};
