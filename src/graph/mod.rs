//! Graph IR: values (inputs, constants, states, op outputs, reshaped views) and op nodes in
//! execution order. A graph is built once per input shape and then compiled for a backend
//! ([`Backend::compile_async`]) into a [`Plan`] that runs many times.
//!
//! This layer knows the [`Op`] trait, not the ops: `crate::ops` implements it.

mod cpu;
mod gpu;
mod lower;
mod memory;
mod op;
mod plan;
mod tune;

pub use lower::{
    grid as grid_for, grid3, Arg, Lower, Packed, PackedChunk, Params, Resource, TexLayout,
};
pub use memory::{plan_memory, Interval, MemoryPlan};
pub use op::Op;
pub use plan::{Backend, DispatchTime, Outputs, Plan, PlanCache, PlanStats, State};
pub use tune::Tunable;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor, ValueInfo};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Handle to a value in a [`Graph`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub(crate) u32);

impl ValueId {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where a value comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Fed by the caller on every run.
    Input,
    /// A weight: uploaded once, shared by every plan that uses it.
    Constant(Arc<Constant>),
    /// A persistent buffer owned by the caller (e.g. a KV cache), bound when compiling.
    State,
    /// Output `out` of node `node`.
    Node { node: usize, out: usize },
    /// Same bytes as another value under a different shape (a reshape, no copy).
    Alias(ValueId),
}

#[derive(Clone, Debug)]
pub struct Value {
    pub info: ValueInfo,
    pub name: String,
    pub source: Source,
}

#[derive(Debug)]
pub struct Node {
    pub op: Box<dyn Op>,
    pub inputs: Vec<ValueId>,
    pub outputs: Vec<ValueId>,
}

static NEXT_CONST_ID: AtomicU64 = AtomicU64::new(1);

/// A weight tensor plus its device-side forms (raw or packed per kernel), created on first use
/// and kept as long as the constant lives.
pub struct Constant {
    id: u64,
    name: String,
    tensor: Tensor,
    gpu: Mutex<HashMap<(u64, String), Arc<Packed>>>,
}

impl Constant {
    pub fn new(name: impl Into<String>, tensor: Tensor) -> Arc<Constant> {
        Arc::new(Constant {
            id: NEXT_CONST_ID.fetch_add(1, Ordering::Relaxed),
            name: name.into(),
            tensor,
            gpu: Mutex::default(),
        })
    }
    pub fn id(&self) -> u64 {
        self.id
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn tensor(&self) -> &Tensor {
        &self.tensor
    }

    /// Device form of this constant for `key`, built by `make` on first use.
    pub fn packed(
        &self,
        device: &Device,
        key: &str,
        make: impl FnOnce(&Tensor) -> Result<Packed>,
    ) -> Result<Arc<Packed>> {
        let k = (device.id(), key.to_string());
        let mut map = self.gpu.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get(&k) {
            return Ok(p.clone());
        }
        device.reserve(
            &format!("weight '{}'", self.name),
            self.tensor.storage_bytes() as u64,
        )?;
        let p = Arc::new(make(&self.tensor)?);
        device.count_upload(p.bytes());
        map.insert(k, p.clone());
        Ok(p)
    }

    /// Bytes held on devices by this constant (all packed forms).
    pub fn device_bytes(&self) -> u64 {
        self.gpu
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|p| p.bytes())
            .sum()
    }
}

impl std::fmt::Debug for Constant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Constant({}, {:?})", self.name, self.tensor.info())
    }
}

/// A dataflow graph in execution order.
#[derive(Default, Debug)]
pub struct Graph {
    pub(crate) values: Vec<Value>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) inputs: Vec<ValueId>,
    pub(crate) states: Vec<ValueId>,
    pub(crate) outputs: Vec<(String, ValueId)>,
    const_index: HashMap<u64, ValueId>,
}

impl Graph {
    pub fn new() -> Self {
        Self::default()
    }

    fn push_value(&mut self, info: ValueInfo, name: String, source: Source) -> Result<ValueId> {
        // Every later size computation on this value is safe once this product fits.
        crate::tensor::checked_bytes(&info.shape, info.dtype)
            .map_err(|e| Error::Graph(format!("value '{name}': {e}")))?;
        if info.numel() == 0 {
            return Err(Error::Graph(format!(
                "value '{name}' has an empty shape {:?}",
                info.shape
            )));
        }
        let id = ValueId(self.values.len() as u32);
        self.values.push(Value { info, name, source });
        Ok(id)
    }

    /// A value fed on every run.
    pub fn input(&mut self, name: &str, shape: &[usize], dtype: DType) -> Result<ValueId> {
        let id = self.push_value(ValueInfo::new(shape, dtype), name.into(), Source::Input)?;
        self.inputs.push(id);
        Ok(id)
    }

    /// A persistent caller-owned buffer (bound at compile time, read and written by ops).
    pub fn state(&mut self, name: &str, shape: &[usize], dtype: DType) -> Result<ValueId> {
        let id = self.push_value(ValueInfo::new(shape, dtype), name.into(), Source::State)?;
        self.states.push(id);
        Ok(id)
    }

    /// A weight. Adding the same constant twice returns the same value.
    pub fn constant(&mut self, c: &Arc<Constant>) -> Result<ValueId> {
        if let Some(&v) = self.const_index.get(&c.id) {
            return Ok(v);
        }
        let id = self.push_value(c.tensor.info(), c.name.clone(), Source::Constant(c.clone()))?;
        self.const_index.insert(c.id, id);
        Ok(id)
    }

    /// Convenience: wraps a tensor as a new constant.
    pub fn constant_tensor(&mut self, name: &str, t: Tensor) -> Result<ValueId> {
        self.constant(&Constant::new(name, t))
    }

    /// Marks a value as a graph output (read back after each run, in declaration order).
    pub fn output(&mut self, name: &str, v: ValueId) {
        self.outputs.push((name.to_string(), v));
    }

    /// Same data under a new shape (no copy). One dimension may be `usize::MAX` (inferred).
    pub fn reshape(&mut self, v: ValueId, shape: &[usize]) -> Result<ValueId> {
        let info = self.info(v).clone();
        let mut shape = shape.to_vec();
        let known: usize = shape.iter().filter(|&&d| d != usize::MAX).product();
        let holes = shape.iter().filter(|&&d| d == usize::MAX).count();
        if holes > 1 || (holes == 1 && (known == 0 || !info.numel().is_multiple_of(known))) {
            return Err(Error::shape(
                "reshape",
                "cannot infer dimension",
                &[&info.shape, &shape],
            ));
        }
        if holes == 1 {
            for d in shape.iter_mut() {
                if *d == usize::MAX {
                    *d = info.numel() / known;
                }
            }
        }
        if shape.iter().product::<usize>() != info.numel() {
            return Err(Error::shape(
                "reshape",
                "element count differs",
                &[&info.shape, &shape],
            ));
        }
        if shape == info.shape {
            return Ok(v);
        }
        let name = format!("{}.reshape", self.values[v.index()].name);
        self.push_value(ValueInfo::new(&shape, info.dtype), name, Source::Alias(v))
    }

    /// Appends a node; the op's shape rule gives the output values.
    pub fn node(&mut self, op: impl Op + 'static, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        self.node_boxed(Box::new(op), inputs)
    }

    pub fn node_boxed(&mut self, op: Box<dyn Op>, inputs: &[ValueId]) -> Result<Vec<ValueId>> {
        for &i in inputs {
            if i.index() >= self.values.len() {
                return Err(Error::Graph(format!(
                    "{}: unknown value id {}",
                    op.name(),
                    i.0
                )));
            }
        }
        let infos: Vec<&ValueInfo> = inputs
            .iter()
            .map(|&i| &self.values[i.index()].info)
            .collect();
        let outs = op.infer(&infos)?;
        if let Some(w) = op.writes_input() {
            let target = inputs.get(w).copied();
            let ok = target.is_some_and(|t| matches!(self.root_source(t), Source::State));
            if !ok {
                return Err(Error::Graph(format!(
                    "{} writes its input {w} in place, which must be a graph state",
                    op.name()
                )));
            }
        }
        let node = self.nodes.len();
        let mut out_ids = Vec::with_capacity(outs.len());
        for (k, info) in outs.into_iter().enumerate() {
            let name = format!("{}#{node}.{k}", op.name());
            out_ids.push(self.push_value(info, name, Source::Node { node, out: k })?);
        }
        self.nodes.push(Node {
            op,
            inputs: inputs.to_vec(),
            outputs: out_ids.clone(),
        });
        Ok(out_ids)
    }

    /// Appends a node with exactly one output.
    pub fn node1(&mut self, op: impl Op + 'static, inputs: &[ValueId]) -> Result<ValueId> {
        let name = op.name();
        let outs = self.node(op, inputs)?;
        match outs.as_slice() {
            [v] => Ok(*v),
            _ => Err(Error::Graph(format!("{name}: expected one output"))),
        }
    }

    pub fn info(&self, v: ValueId) -> &ValueInfo {
        &self.values[v.index()].info
    }
    pub fn shape(&self, v: ValueId) -> &[usize] {
        &self.values[v.index()].info.shape
    }
    pub fn value(&self, v: ValueId) -> &Value {
        &self.values[v.index()]
    }
    /// The largest input or op output (weights and views excluded). On the GPU each must fit
    /// one storage binding.
    pub fn largest_activation(&self) -> Option<&ValueInfo> {
        self.values
            .iter()
            .filter(|v| matches!(v.source, Source::Input | Source::Node { .. }))
            .map(|v| &v.info)
            .max_by_key(|i| i.bytes())
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    pub fn inputs(&self) -> &[ValueId] {
        &self.inputs
    }
    pub fn states(&self) -> &[ValueId] {
        &self.states
    }
    pub fn outputs(&self) -> &[(String, ValueId)] {
        &self.outputs
    }

    /// Follows aliases to the value that owns the bytes.
    pub fn root(&self, mut v: ValueId) -> ValueId {
        while let Source::Alias(a) = self.values[v.index()].source {
            v = a;
        }
        v
    }

    pub(crate) fn root_source(&self, v: ValueId) -> &Source {
        &self.values[self.root(v).index()].source
    }

    /// Constant behind a value (through aliases), if any.
    pub fn as_constant(&self, v: ValueId) -> Option<&Arc<Constant>> {
        match self.root_source(v) {
            Source::Constant(c) => Some(c),
            _ => None,
        }
    }

    /// Sum of the FLOPs the ops report (matmul, attention, conv).
    pub fn flops(&self) -> u64 {
        self.nodes
            .iter()
            .map(|n| {
                let infos: Vec<&ValueInfo> = n.inputs.iter().map(|&i| self.info(i)).collect();
                n.op.flops(&infos)
            })
            .sum()
    }

    pub(crate) fn check_feeds(&self, feeds: &[&Tensor]) -> Result<()> {
        if feeds.len() != self.inputs.len() {
            return Err(Error::Graph(format!(
                "expected {} inputs ({}), got {}",
                self.inputs.len(),
                self.inputs
                    .iter()
                    .map(|&i| self.values[i.index()].name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                feeds.len()
            )));
        }
        for (&id, t) in self.inputs.iter().zip(feeds) {
            let v = &self.values[id.index()];
            if t.info() != v.info {
                return Err(Error::Graph(format!(
                    "input '{}' expects {} {:?}, got {} {:?}",
                    v.name,
                    v.info.dtype,
                    v.info.shape,
                    t.dtype(),
                    t.shape()
                )));
            }
        }
        Ok(())
    }
}
