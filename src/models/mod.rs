//! Models built from HuggingFace-format folders, on the shared layers of [`nn`].
//!
//! Every family loads from a [`ModelFiles`] folder (in memory, or a directory on disk) through
//! one loader, builds its graph from [`nn`] layers and runs it through one plan runner. The
//! API is async (`embed_async`, `generate_stream`, `classify_async`, `detect_async`); native
//! builds also have blocking twins (`embed`, `generate`, `classify`, `detect`) and path
//! loaders (`load`, `load_with`).

pub mod bert;
pub mod bert_arch;
#[cfg(not(target_arch = "wasm32"))]
mod blocking;
pub mod causal_lm;
pub mod clip;
pub mod clip_config;
mod clip_towers;
pub mod config;
pub mod contours;
pub mod detect;
pub mod family;
pub mod files;
pub mod generate;
pub mod gpt2;
pub mod letterbox;
pub mod llama;
pub mod llama_config;
mod loader;
pub mod masks;
pub mod nn;
mod options;
pub mod rerank;
mod runner;
pub mod sampling;
pub mod sentence;
pub mod text;
pub mod vision;
pub mod vit;
pub mod vit_arch;
pub mod yolo;
mod yolo_blocks;

pub use bert::Bert;
pub use causal_lm::CausalLm;
pub use clip::Clip;
pub use config::{detect_kind, detect_model_type, parse_config, ModelConfig};
pub use family::{FamilyConfig, ModelKind};
pub use files::ModelFiles;
pub use gpt2::Gpt2;
pub use llama::Llama;
pub use options::{LoadOptions, Progress};
pub use vit::Vit;
pub use yolo::Yolo;
