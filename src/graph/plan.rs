//! Compiled plans, their outputs, persistent states, the backend that compiles them and a
//! per-shape plan cache. Compiling and running are async; native builds also have blocking
//! wrappers.

use super::cpu::CpuPlan;
use super::gpu::GpuPlan;
use super::Graph;
use crate::device::Device;
use crate::error::{Error, Result};
use crate::tensor::{Tensor, ValueInfo};
use std::future::Future;
use std::sync::{Arc, Mutex};

/// Counters describing a compiled plan.
#[derive(Clone, Debug, Default)]
pub struct PlanStats {
    /// GPU dispatches (or CPU op calls) per run.
    pub dispatches: usize,
    /// Bytes of pooled intermediate buffers (the memory plan's peak).
    pub intermediate_bytes: u64,
    /// Bytes the intermediates would take without buffer reuse.
    pub unplanned_bytes: u64,
    /// Distinct pooled buffers.
    pub buffers: usize,
    /// Bytes of input, output staging and uniform buffers.
    pub io_bytes: u64,
    /// Bytes of constants (weights) on the device, all packed forms.
    pub constant_bytes: u64,
    /// Kernel (shader) names the dispatches use, in first-use order.
    pub kernels: Vec<String>,
}

/// The outputs of one run, by the names given to [`Graph::output`] (declaration order kept).
#[derive(Clone, Debug, Default)]
pub struct Outputs {
    names: Vec<String>,
    tensors: Vec<Tensor>,
}

impl Outputs {
    pub(crate) fn new(names: Vec<String>, tensors: Vec<Tensor>) -> Outputs {
        Outputs { names, tensors }
    }

    /// The output called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.tensors[i])
    }

    /// Moves the output called `name` out; a missing name is an error listing the outputs.
    pub fn take(&mut self, name: &str) -> Result<Tensor> {
        match self.names.iter().position(|n| n == name) {
            Some(i) => {
                self.names.remove(i);
                Ok(self.tensors.remove(i))
            }
            None => Err(Error::Graph(format!(
                "no output named '{name}' (outputs: {})",
                self.names.join(", ")
            ))),
        }
    }

    /// Output names in declaration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// (name, tensor) in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor)> {
        self.names.iter().map(String::as_str).zip(&self.tensors)
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The tensors in declaration order.
    pub fn into_tensors(self) -> Vec<Tensor> {
        self.tensors
    }
}

impl std::ops::Index<&str> for Outputs {
    type Output = Tensor;
    /// The output called `name`; panics when there is none (use [`Outputs::get`] to check).
    fn index(&self, name: &str) -> &Tensor {
        self.get(name)
            .unwrap_or_else(|| panic!("no output named '{name}'"))
    }
}

/// GPU time of one dispatch (from [`Plan::profile_async`]).
#[derive(Clone, Debug)]
pub struct DispatchTime {
    /// The op the dispatch belongs to.
    pub op: String,
    /// The kernel (shader) it ran.
    pub kernel: String,
    pub nanos: f64,
}

enum PlanKind {
    Gpu(GpuPlan),
    Cpu(CpuPlan),
}

/// A graph compiled for one backend. Run it as often as you like.
pub struct Plan {
    kind: PlanKind,
}

impl Plan {
    /// Runs the graph on `inputs` (in graph input order).
    pub async fn run_async(&mut self, inputs: &[&Tensor]) -> Result<Outputs> {
        match &mut self.kind {
            PlanKind::Gpu(p) => p.run(inputs).await,
            PlanKind::Cpu(p) => p.run(inputs),
        }
    }

    pub fn stats(&self) -> PlanStats {
        match &self.kind {
            PlanKind::Gpu(p) => p.stats(),
            PlanKind::Cpu(p) => p.stats(),
        }
    }

    pub fn graph(&self) -> &Arc<Graph> {
        match &self.kind {
            PlanKind::Gpu(p) => p.graph(),
            PlanKind::Cpu(p) => p.graph(),
        }
    }

    /// Runs once with a timestamp around every dispatch. `None` where the backend or adapter
    /// cannot time dispatches.
    pub async fn profile_async(&mut self, inputs: &[&Tensor]) -> Result<Option<Vec<DispatchTime>>> {
        match &mut self.kind {
            PlanKind::Gpu(p) => p.profile(inputs).await,
            PlanKind::Cpu(_) => Ok(None),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Plan {
    /// [`Plan::run_async`], blocking.
    pub fn run(&mut self, inputs: &[&Tensor]) -> Result<Outputs> {
        crate::edge::block_on(self.run_async(inputs))
    }

    /// [`Plan::profile_async`], blocking.
    pub fn profile(&mut self, inputs: &[&Tensor]) -> Result<Option<Vec<DispatchTime>>> {
        crate::edge::block_on(self.profile_async(inputs))
    }
}

/// A persistent buffer bound to graph states (e.g. a KV cache) on one backend.
#[derive(Clone)]
pub enum State {
    Gpu {
        buffer: Arc<wgpu::Buffer>,
        info: ValueInfo,
    },
    Cpu(Arc<Mutex<Tensor>>),
}

impl State {
    pub fn info(&self) -> ValueInfo {
        match self {
            State::Gpu { info, .. } => info.clone(),
            State::Cpu(t) => t.lock().unwrap_or_else(|p| p.into_inner()).info(),
        }
    }
    pub fn bytes(&self) -> u64 {
        self.info().bytes() as u64
    }
}

/// Where a graph runs: a GPU device, or the CPU reference kernels.
#[derive(Clone, Debug)]
pub enum Backend {
    Gpu(Device),
    Cpu,
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Gpu(_) => "gpu",
            Backend::Cpu => "cpu",
        }
    }

    pub fn device(&self) -> Option<&Device> {
        match self {
            Backend::Gpu(d) => Some(d),
            Backend::Cpu => None,
        }
    }

    /// Compiles `graph`, binding `states` to the graph's states in order. On a GPU, kernel
    /// variants the tuning cache lacks are measured first (see [`super::Tunable`]).
    pub async fn compile_async(&self, graph: Arc<Graph>, states: &[&State]) -> Result<Plan> {
        if states.len() != graph.states.len() {
            return Err(Error::Graph(format!(
                "graph has {} states, {} given",
                graph.states.len(),
                states.len()
            )));
        }
        for (&id, s) in graph.states.iter().zip(states) {
            let want = &graph.values[id.index()].info;
            if &s.info() != want {
                return Err(Error::Graph(format!(
                    "state '{}' expects {} {:?}, got {:?}",
                    graph.values[id.index()].name,
                    want.dtype,
                    want.shape,
                    s.info()
                )));
            }
        }
        let kind = match self {
            Backend::Gpu(d) => {
                super::tune::tune_graph(d, &graph).await?;
                PlanKind::Gpu(GpuPlan::new(d, graph, states).await?)
            }
            Backend::Cpu => PlanKind::Cpu(CpuPlan::new(graph, states)?),
        };
        Ok(Plan { kind })
    }

    /// A zero-filled persistent buffer, checked against the memory budget first.
    pub fn new_state(&self, info: &ValueInfo) -> Result<State> {
        let bytes = crate::tensor::checked_bytes(&info.shape, info.dtype)? as u64;
        match self {
            Backend::Gpu(d) => {
                let size = bytes.div_ceil(4) * 4;
                d.reserve(&format!("state buffer {:?}", info.shape), size)?;
                if size > d.limits().max_buffer_size {
                    return Err(Error::Limit {
                        what: format!("state buffer {:?}", info.shape),
                        needed: size,
                        limit: d.limits().max_buffer_size,
                        limit_name: "max_buffer_size",
                        unit: "bytes",
                    });
                }
                let buffer = d.wgpu().create_buffer(&wgpu::BufferDescriptor {
                    label: Some("state"),
                    size,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                Ok(State::Gpu {
                    buffer: Arc::new(buffer),
                    info: info.clone(),
                })
            }
            Backend::Cpu => {
                let budget = crate::device::DEFAULT_MEMORY_BUDGET;
                if bytes > budget {
                    return Err(Error::Limit {
                        what: format!("state buffer {:?} on the CPU", info.shape),
                        needed: bytes,
                        limit: budget,
                        limit_name: "memory budget",
                        unit: "bytes",
                    });
                }
                Ok(State::Cpu(Arc::new(Mutex::new(Tensor::zeros(
                    &info.shape,
                    info.dtype,
                )))))
            }
        }
    }

    /// Copies a state back to the host (for tests and debugging).
    pub async fn read_state_async(&self, s: &State) -> Result<Tensor> {
        match (self, s) {
            (Backend::Gpu(d), State::Gpu { buffer, info }) => {
                let bytes = d.read_buffer(buffer, 0, info.bytes() as u64).await?;
                Tensor::from_bytes(&info.shape, info.dtype, &bytes)
            }
            (Backend::Cpu, State::Cpu(t)) => {
                Ok(t.lock().unwrap_or_else(|p| p.into_inner()).clone())
            }
            _ => Err(Error::Graph("state belongs to another backend".into())),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Backend {
    /// [`Backend::compile_async`], blocking.
    pub fn compile(&self, graph: Arc<Graph>, states: &[&State]) -> Result<Plan> {
        crate::edge::block_on(self.compile_async(graph, states))
    }

    /// [`Backend::read_state_async`], blocking.
    pub fn read_state(&self, s: &State) -> Result<Tensor> {
        crate::edge::block_on(self.read_state_async(s))
    }
}

/// Compiled plans keyed by input shape (or any key), so a model rebuilds a plan only for a shape
/// it has not seen. Kernels and uploaded weights are shared by every plan, so a new shape costs
/// graph construction, lowering and buffer allocation, not shader compiles or uploads. Holds at
/// most `capacity` plans (least recently used dropped first).
pub struct PlanCache<K> {
    capacity: usize,
    plans: Vec<(K, Plan)>,
    builds: usize,
}

impl<K: PartialEq> PlanCache<K> {
    pub fn new(capacity: usize) -> Self {
        PlanCache {
            capacity: capacity.max(1),
            plans: Vec::new(),
            builds: 0,
        }
    }

    /// The plan for `key`, compiled by `build` on first use.
    pub async fn get_or_build_async<F>(
        &mut self,
        key: K,
        build: impl FnOnce() -> F,
    ) -> Result<&mut Plan>
    where
        F: Future<Output = Result<Plan>>,
    {
        if !self.touch(&key) {
            let plan = build().await?;
            self.push(key, plan);
        }
        Ok(self.last())
    }

    /// [`PlanCache::get_or_build_async`] with a synchronous build.
    pub fn get_or_build(
        &mut self,
        key: K,
        build: impl FnOnce() -> Result<Plan>,
    ) -> Result<&mut Plan> {
        if !self.touch(&key) {
            let plan = build()?;
            self.push(key, plan);
        }
        Ok(self.last())
    }

    /// Makes `key`'s plan the most recently used one; false when there is none.
    fn touch(&mut self, key: &K) -> bool {
        match self.plans.iter().position(|(k, _)| k == key) {
            Some(i) => {
                let entry = self.plans.remove(i);
                self.plans.push(entry);
                true
            }
            None => false,
        }
    }

    fn push(&mut self, key: K, plan: Plan) {
        self.builds += 1;
        if self.plans.len() == self.capacity {
            self.plans.remove(0);
        }
        self.plans.push((key, plan));
    }

    fn last(&mut self) -> &mut Plan {
        &mut self
            .plans
            .last_mut()
            .expect("a plan was just touched or pushed")
            .1
    }

    /// How many plans have been compiled so far.
    pub fn builds(&self) -> usize {
        self.builds
    }

    /// Device bytes of the largest cached plan: weights it binds + intermediates + I/O.
    pub fn peak_bytes(&self) -> u64 {
        self.plans
            .iter()
            .map(|(_, p)| {
                let s = p.stats();
                s.constant_bytes + s.intermediate_bytes + s.io_bytes
            })
            .max()
            .unwrap_or(0)
    }

    /// Statistics of the most recently used plan.
    pub fn last_stats(&self) -> Option<PlanStats> {
        self.plans.last().map(|(_, p)| p.stats())
    }

    pub fn len(&self) -> usize {
        self.plans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    pub fn clear(&mut self) {
        self.plans.clear();
    }
}
