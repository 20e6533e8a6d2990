//! CPU executor: runs every node's reference kernel in order. This is the oracle, not a fast path.

use super::{Graph, Outputs, PlanStats, Source, State};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::sync::{Arc, Mutex};

pub struct CpuPlan {
    graph: Arc<Graph>,
    states: Vec<Arc<Mutex<Tensor>>>,
    /// For each value: index of the last node that reads it (outputs: never freed).
    last_use: Vec<usize>,
}

impl CpuPlan {
    pub(crate) fn new(graph: Arc<Graph>, states: &[&State]) -> Result<Self> {
        let states = states
            .iter()
            .map(|s| match s {
                State::Cpu(t) => Ok(t.clone()),
                State::Gpu { .. } => {
                    Err(Error::Graph("a GPU state was given to a CPU plan".into()))
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let mut last_use = vec![0usize; graph.values.len()];
        for (n, node) in graph.nodes.iter().enumerate() {
            for &i in &node.inputs {
                last_use[graph.root(i).index()] = n;
            }
        }
        for (_, o) in &graph.outputs {
            last_use[graph.root(*o).index()] = usize::MAX;
        }
        Ok(CpuPlan {
            graph,
            states,
            last_use,
        })
    }
}

impl CpuPlan {
    pub(crate) fn run(&mut self, inputs: &[&Tensor]) -> Result<Outputs> {
        let g = self.graph.clone();
        g.check_feeds(inputs)?;
        // Computed tensors, by root value. Aliases are materialised on read.
        let mut vals: Vec<Option<Tensor>> = vec![None; g.values.len()];
        for (k, &id) in g.inputs.iter().enumerate() {
            vals[id.index()] = Some(inputs[k].clone());
        }
        let state_of = |id: usize| g.states.iter().position(|s| s.index() == id);
        // Fetch a value (as an owned tensor of the value's own shape).
        let fetch = |vals: &Vec<Option<Tensor>>,
                     states: &[Arc<Mutex<Tensor>>],
                     v: super::ValueId|
         -> Result<Tensor> {
            let root = g.root(v);
            let t = match &g.values[root.index()].source {
                Source::Constant(c) => c.tensor().clone(),
                Source::State => states[state_of(root.index()).expect("a graph state")]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
                _ => vals[root.index()].clone().ok_or_else(|| {
                    Error::Graph(format!(
                        "value '{}' read before it was computed",
                        g.values[root.index()].name
                    ))
                })?,
            };
            if root != v {
                t.reshape(&g.values[v.index()].info.shape)
            } else {
                Ok(t)
            }
        };
        for (n, node) in g.nodes.iter().enumerate() {
            let w = node.op.writes_input();
            // The in-place target is not fetched: a second handle would force a copy on write.
            let ins: Vec<Tensor> = node
                .inputs
                .iter()
                .enumerate()
                .filter(|(k, _)| Some(*k) != w)
                .map(|(_, &i)| fetch(&vals, &self.states, i))
                .collect::<Result<_>>()?;
            if let Some(w) = w {
                let root = g.root(node.inputs[w]);
                let st = self.states[state_of(root.index()).expect("a graph state")].clone();
                let mut target = st.lock().unwrap_or_else(|p| p.into_inner());
                let others: Vec<&Tensor> = ins.iter().collect();
                node.op.cpu_write(&mut target, &others)?;
            } else {
                let refs: Vec<&Tensor> = ins.iter().collect();
                let outs = node.op.cpu(&refs)?;
                if outs.len() != node.outputs.len() {
                    return Err(Error::Graph(format!(
                        "{}: reference kernel returned {} outputs, expected {}",
                        node.op.name(),
                        outs.len(),
                        node.outputs.len()
                    )));
                }
                for (t, &o) in outs.into_iter().zip(&node.outputs) {
                    let want = &g.values[o.index()].info;
                    if t.info() != *want {
                        return Err(Error::Graph(format!(
                            "{}: reference kernel produced {:?}, shape rule said {:?}",
                            node.op.name(),
                            t.info(),
                            want
                        )));
                    }
                    vals[o.index()] = Some(t);
                }
            }
            // Free what no later node reads.
            for &i in &node.inputs {
                let r = g.root(i).index();
                if self.last_use[r] == n && matches!(g.values[r].source, Source::Node { .. }) {
                    vals[r] = None;
                }
            }
        }
        let tensors = g
            .outputs
            .iter()
            .map(|(_, o)| fetch(&vals, &self.states, *o))
            .collect::<Result<Vec<_>>>()?;
        let names = g.outputs.iter().map(|(n, _)| n.clone()).collect();
        Ok(Outputs::new(names, tensors))
    }

    pub(crate) fn stats(&self) -> PlanStats {
        PlanStats {
            dispatches: self.graph.nodes.len(),
            ..Default::default()
        }
    }

    pub(crate) fn graph(&self) -> &Arc<Graph> {
        &self.graph
    }
}
