//! wgpu-infer: a GPU compute-kernel runtime. Hand-written WGSL kernels run on a small graph
//! executor; every op has a CPU reference kernel and a parity test. Models (BERT, GPT-2, ViT,
//! YOLOv8) load HuggingFace-format safetensors weights, from memory or from disk.
//!
//! The core (device, graph, ops, models, weights from bytes) is async and builds for the
//! browser (wasm32 + WebGPU); native builds add blocking wrappers. File loaders, hub ids,
//! image codecs and the command line are features (see `Cargo.toml`).
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
//! let y = &out["y"];
//! # Ok(()) }
//! ```

#![recursion_limit = "256"]

#[cfg(feature = "chat")]
pub mod chat;
pub mod device;
pub mod error;
pub mod files;
pub mod graph;
#[cfg(feature = "hub")]
pub mod hub;
pub mod imageio;
pub mod models;
pub mod ops;
pub mod rng;
#[cfg(all(feature = "server", not(target_arch = "wasm32")))]
pub mod server;
pub mod tensor;
#[cfg(all(feature = "web", target_arch = "wasm32"))]
pub mod web;
pub mod weights;

mod contain;
#[cfg(not(target_arch = "wasm32"))]
mod edge;
mod shaders;

pub use device::{Device, DeviceOptions, GpuMemory, KernelPolicy};
pub use error::{Error, Result};
pub use graph::{Backend, Constant, Graph, Outputs, Plan, PlanCache, PlanStats, State, ValueId};
pub use models::{LoadOptions, ModelFiles};
pub use ops::{Act, Layout, MatmulVariant};
pub use tensor::{DType, Tensor, ValueInfo};
