//! Where layers read their weights: any [`TensorSource`], scoped by module prefix in
//! [`Vars`], with the load options' storage dtype and progress.

use crate::error::{Error, Result};
use crate::graph::Constant;
use crate::models::options::LoadOptions;
use crate::tensor::Tensor;
use crate::weights::Weights;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Where weights come from: a full tensor name and the shape the config implies → a tensor.
pub trait TensorSource: Sync {
    /// The tensor `name` (converted to f32), refused unless its stored shape is `shape`.
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor>;
    /// Whether `name` exists (for optional parts such as a pooler).
    fn contains(&self, name: &str) -> bool;
    /// The stored shape of `name`, for layers sized by their weights.
    fn shape(&self, name: &str) -> Option<Vec<usize>>;
    /// What errors about these weights name (a file).
    fn label(&self) -> std::path::PathBuf {
        "(weights)".into()
    }
}

impl TensorSource for Weights {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.get_shaped(name, shape)
    }
    fn contains(&self, name: &str) -> bool {
        Weights::contains(self, name)
    }
    fn shape(&self, name: &str) -> Option<Vec<usize>> {
        Weights::shape(self, name)
    }
    fn label(&self) -> std::path::PathBuf {
        self.path().to_path_buf()
    }
}

/// Any `Fn(name, shape) -> Tensor` is a source (random weights of a real model's size for
/// benchmarks, synthetic weights in tests); it claims to hold every name.
impl<F> TensorSource for F
where
    F: Fn(&str, &[usize]) -> Result<Tensor> + Sync,
{
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self(name, shape)
    }
    fn contains(&self, _name: &str) -> bool {
        true
    }
    fn shape(&self, _name: &str) -> Option<Vec<usize>> {
        None
    }
}

/// A weight source scoped to a module prefix, in the spirit of candle's `vb.pp("encoder")`.
#[derive(Clone)]
pub struct Vars<'a> {
    src: &'a dyn TensorSource,
    prefix: String,
    opts: &'a LoadOptions,
    progress: &'a Ticker,
}

/// Counts tensors read for the load options' progress callback.
#[derive(Default)]
pub(crate) struct Ticker {
    done: AtomicUsize,
    total: usize,
}

impl Ticker {
    pub(crate) fn new(total: usize) -> Ticker {
        Ticker {
            done: AtomicUsize::new(0),
            total,
        }
    }
    fn tick(&self, opts: &LoadOptions) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(p) = &opts.progress {
            p(done, self.total);
        }
    }
}

impl<'a> Vars<'a> {
    pub(crate) fn new(
        src: &'a dyn TensorSource,
        opts: &'a LoadOptions,
        progress: &'a Ticker,
    ) -> Self {
        Vars {
            src,
            prefix: String::new(),
            opts,
            progress,
        }
    }

    /// The scope `prefix.part`.
    pub fn pp(&self, part: impl std::fmt::Display) -> Vars<'a> {
        let prefix = if self.prefix.is_empty() {
            part.to_string()
        } else {
            format!("{}.{part}", self.prefix)
        };
        Vars {
            prefix,
            ..self.clone()
        }
    }

    /// The full name of `name` in this scope.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    pub fn opts(&self) -> &LoadOptions {
        self.opts
    }

    /// A tensor of this scope, as f32.
    pub fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.progress.tick(self.opts);
        self.src.tensor(&self.key(name), shape)
    }

    /// A small parameter (bias, norm weight) as an f32 constant.
    pub fn param(&self, name: &str, shape: &[usize]) -> Result<Arc<Constant>> {
        Ok(Constant::new(self.key(name), self.tensor(name, shape)?))
    }

    /// A large weight (matmul B, embedding table) in the storage dtype of the load options.
    pub fn weight(&self, name: &str, shape: &[usize]) -> Result<Arc<Constant>> {
        self.opts.weight(self.key(name), self.tensor(name, shape)?)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.src.contains(&self.key(name))
    }

    /// The stored shape of `name`, when the source knows it.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.src.shape(&self.key(name))
    }

    /// A tensor of this scope with whatever shape it is stored with.
    pub fn tensor_as_stored(&self, name: &str) -> Result<Tensor> {
        // A scalar loads as [1]; a missing tensor is reported by the lookup.
        let shape = match self.shape(name) {
            Some(s) if s.is_empty() => vec![1],
            s => s.unwrap_or_default(),
        };
        self.tensor(name, &shape)
    }

    /// An error about these weights (the file they come from).
    pub fn error(&self, msg: impl Into<String>) -> Error {
        Error::Weights {
            path: self.src.label(),
            msg: msg.into(),
        }
    }
}
