//! The operation trait every node of a graph implements.

use super::{Lower, TexLayout, Tunable, ValueId};
use crate::error::{Error, Result};
use crate::tensor::{Tensor, ValueInfo};

/// An operation in a graph: a shape rule, a plain CPU reference kernel (the oracle), and a GPU
/// lowering that emits dispatches of its kernel variants.
pub trait Op: std::fmt::Debug + Send + Sync {
    fn name(&self) -> &'static str;
    /// Shape rule: output infos from input infos, or a typed error naming the op and shapes.
    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>>;
    /// Reference kernel (f32, straightforward loops).
    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>>;
    /// Emits the GPU dispatches that compute `outputs` from `inputs`. Lowering never measures
    /// anything: variant choices come from the policy, the tuning cache or a default.
    fn gpu(&self, cx: &mut Lower<'_>, inputs: &[ValueId], outputs: &[ValueId]) -> Result<()>;
    /// Index of an input (a graph state) this op updates in place; such ops have no outputs.
    fn writes_input(&self) -> Option<usize> {
        None
    }
    /// Reference kernel of an in-place op: `target` is the written input, `inputs` the others.
    fn cpu_write(&self, _target: &mut Tensor, _inputs: &[&Tensor]) -> Result<()> {
        Err(Error::Graph(format!(
            "{} is not an in-place op",
            self.name()
        )))
    }
    /// Floating-point operations per run (multiply-add = 2), for throughput reports.
    fn flops(&self, _inputs: &[&ValueInfo]) -> u64 {
        0
    }
    /// Element offsets at which each input lies, unchanged and contiguous, inside the (single)
    /// output, when the output is nothing but its inputs side by side (a concatenation whose
    /// leading dimensions are 1). The GPU planner may then let the producers write straight
    /// into the output's buffer and skip the copies.
    fn input_slots(&self, _inputs: &[&ValueInfo]) -> Option<Vec<usize>> {
        None
    }
    /// The texture layout this op would read input 0 in if its producer wrote it so, instead
    /// of as a buffer the op would pack itself. Asked by [`Lower::texture_edge`].
    fn texture_input(&self, _cx: &Lower<'_>, _inputs: &[ValueId]) -> Option<TexLayout> {
        None
    }
    /// Whether this op can write its single output in `layout` instead of a buffer.
    fn writes_texture(&self, _cx: &Lower<'_>, _inputs: &[ValueId], _layout: &TexLayout) -> bool {
        false
    }
    /// Variant choices this node wants measured on `cx.device()` before it is lowered. The
    /// compiler measures those the tuning cache lacks, then lowers.
    fn tunables(&self, _cx: &Lower<'_>, _inputs: &[ValueId]) -> Vec<Tunable> {
        Vec::new()
    }
}
