//! Ops. Each module holds one op: its shape rule, a plain CPU reference kernel (the oracle) and
//! its GPU lowering, plus a `Graph` builder method.

use crate::error::{Error, Result};
use crate::graph::{Arg, Lower, ValueId};
use crate::tensor::{Tensor, ValueInfo};

pub mod activation;
pub mod attention;
pub mod binary;
pub mod concat;
pub mod conv2d;
pub mod conv2d_tex;
pub mod embedding;
pub mod expand;
pub mod kv_write;
pub mod layernorm;
pub mod matmul;
pub mod matmul_cw;
pub mod maxpool2d;
pub mod mean;
pub mod permute;
pub mod slice;
pub mod softmax;
pub mod upsample;
pub mod yolo_decode;

pub use activation::Act;
pub use matmul::MatmulVariant;

/// An operation in a graph.
pub trait Op: std::fmt::Debug + Send + Sync {
    fn name(&self) -> &'static str;
    /// Shape rule: output infos from input infos, or a typed error naming the op and shapes.
    fn infer(&self, inputs: &[&ValueInfo]) -> Result<Vec<ValueInfo>>;
    /// Reference kernel (f32, straightforward loops).
    fn cpu(&self, inputs: &[&Tensor]) -> Result<Vec<Tensor>>;
    /// Emits the GPU dispatches that compute `outputs` from `inputs`.
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
}

/// Builds a uniform block field by field (std140-compatible for scalars and vec4 arrays).
#[derive(Default, Debug, Clone)]
pub struct Params(Vec<u8>);

impl Params {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn f32(mut self, v: f32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// An `array<vec4<u32>, n_vec4>` (16-byte aligned), zero padded.
    pub fn u32s(mut self, vals: &[u32], n_vec4: usize) -> Self {
        assert!(
            vals.len() <= n_vec4 * 4,
            "too many values for the uniform array"
        );
        while !self.0.len().is_multiple_of(16) {
            self.0.push(0);
        }
        for i in 0..n_vec4 * 4 {
            let v = vals.get(i).copied().unwrap_or(0);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
        self
    }
    pub fn arg(self) -> Arg {
        Arg::Uniform(self.0)
    }
}

/// Checks the number of inputs.
pub(crate) fn expect_inputs(op: &str, inputs: &[&ValueInfo], n: usize) -> Result<()> {
    if inputs.len() != n {
        let shapes: Vec<&[usize]> = inputs.iter().map(|i| i.shape.as_slice()).collect();
        return Err(Error::shape(
            op,
            format!("expects {n} inputs, got {}", inputs.len()),
            &shapes,
        ));
    }
    Ok(())
}

/// Errors unless every input is f32.
pub(crate) fn expect_f32(op: &str, inputs: &[&ValueInfo]) -> Result<()> {
    for i in inputs {
        if i.dtype != crate::tensor::DType::F32 {
            let shapes: Vec<&[usize]> = inputs.iter().map(|i| i.shape.as_slice()).collect();
            return Err(Error::shape(
                op,
                format!("expects f32 inputs, got {}", i.dtype),
                &shapes,
            ));
        }
    }
    Ok(())
}

/// Shapes of the inputs, for error messages.
pub(crate) fn shapes<'a>(inputs: &[&'a ValueInfo]) -> Vec<&'a [usize]> {
    inputs.iter().map(|i| i.shape.as_slice()).collect()
}

/// Normalises a possibly negative axis.
pub(crate) fn axis(op: &str, axis: isize, rank: usize, shape: &[usize]) -> Result<usize> {
    let a = if axis < 0 { axis + rank as isize } else { axis };
    if a < 0 || a as usize >= rank {
        return Err(Error::shape(
            op,
            format!("axis {axis} out of range for rank {rank}"),
            &[shape],
        ));
    }
    Ok(a as usize)
}

/// Workgroups for `n` items at `per_group` items each, as a (possibly 2-D) grid.
pub(crate) fn groups_for(cx: &Lower<'_>, n: usize, per_group: usize) -> [u32; 3] {
    crate::graph::grid_for(cx.device(), n.div_ceil(per_group) as u32)
}

/// Strided copy of 32-bit words (copy.wgsl): for every index `idx` of `shape`,
/// `dst[dst_base + idx . dst_strides] = src[src_base + idx . src_strides]`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn strided_copy(
    cx: &mut Lower<'_>,
    src: ValueId,
    dst: ValueId,
    shape: &[usize],
    src_strides: &[usize],
    src_base: usize,
    dst_strides: &[usize],
    dst_base: usize,
) -> Result<()> {
    let (mut shape, mut ss, mut ds) = coalesce(shape, src_strides, dst_strides);
    let (mut src_base, mut dst_base) = (src_base, dst_base);
    let last = shape.len() - 1;
    let vec4 = ss[last] == 1
        && ds[last] == 1
        && shape[last] % 4 == 0
        && [src_base, dst_base]
            .iter()
            .chain(&ss[..last])
            .chain(&ds[..last])
            .all(|v| v % 4 == 0);
    if vec4 {
        shape[last] /= 4;
        for v in ss[..last].iter_mut().chain(ds[..last].iter_mut()) {
            *v /= 4;
        }
        src_base /= 4;
        dst_base /= 4;
    }
    let n: usize = shape.iter().product();
    let u = |v: &[usize]| v.iter().map(|&x| x as u32).collect::<Vec<u32>>();
    let (shape, src_strides, dst_strides) = (&shape, &ss, &ds);
    let params = Params::new()
        .u32(n as u32)
        .u32(shape.len() as u32)
        .u32(src_base as u32)
        .u32(dst_base as u32)
        .u32s(&u(shape), 2)
        .u32s(&u(src_strides), 2)
        .u32s(&u(dst_strides), 2);
    let groups = groups_for(cx, n, 256);
    let t = if vec4 { "vec4<u32>" } else { "u32" };
    cx.dispatch(
        "copy.wgsl",
        &[("T", t.to_string())],
        vec![Arg::Read(src), Arg::Write(dst), params.arg()],
        groups,
    )
}

/// Drops size-1 dims and merges neighbours that are contiguous in both source and
/// destination (a channel concat of NCHW tensors becomes one run per batch item).
fn coalesce(shape: &[usize], ss: &[usize], ds: &[usize]) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let (mut sh, mut s, mut d): (Vec<usize>, Vec<usize>, Vec<usize>) = (vec![], vec![], vec![]);
    for i in 0..shape.len() {
        if shape[i] == 1 {
            continue;
        }
        if let Some(k) = sh.len().checked_sub(1) {
            if s[k] == ss[i] * shape[i] && d[k] == ds[i] * shape[i] {
                sh[k] *= shape[i];
                s[k] = ss[i];
                d[k] = ds[i];
                continue;
            }
        }
        sh.push(shape[i]);
        s.push(ss[i]);
        d.push(ds[i]);
    }
    if sh.is_empty() {
        return (vec![1], vec![1], vec![1]);
    }
    (sh, s, d)
}

/// Reference strided copy (same contract as [`strided_copy`]).
pub(crate) fn strided_copy_cpu<T: Copy>(
    src: &[T],
    dst: &mut [T],
    shape: &[usize],
    src_strides: &[usize],
    src_base: usize,
    dst_strides: &[usize],
    dst_base: usize,
) {
    let n: usize = shape.iter().product();
    let mut idx = vec![0usize; shape.len()];
    for _ in 0..n {
        let s: usize = src_base
            + idx
                .iter()
                .zip(src_strides)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        let d: usize = dst_base
            + idx
                .iter()
                .zip(dst_strides)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        dst[d] = src[s];
        for k in (0..shape.len()).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
}

/// Applies a word-level copy to any 32-bit tensor (f32 or u32).
pub(crate) fn copy_words(
    op: &str,
    src: &Tensor,
    dst: &mut Tensor,
    f: impl Fn(&[u32], &mut [u32]),
) -> Result<()> {
    use crate::tensor::Data;
    match (src.data(), dst.data_mut()) {
        (Data::F32(s), Data::F32(d)) => {
            let s: &[u32] = bytemuck::cast_slice(s);
            f(s, bytemuck::cast_slice_mut(d));
            Ok(())
        }
        (Data::U32(s), Data::U32(d)) => {
            f(s, d);
            Ok(())
        }
        _ => Err(Error::Graph(format!(
            "{op}: only 32-bit dtypes are supported"
        ))),
    }
}

/// Errors unless the dtype is 32-bit (f32 or u32): copy kernels move 32-bit words.
pub(crate) fn expect_32bit(op: &str, inputs: &[&ValueInfo]) -> Result<()> {
    for i in inputs {
        if i.dtype.size() != 4 {
            return Err(Error::shape(
                op,
                format!("expects 32-bit (f32/u32) inputs, got {}", i.dtype),
                &shapes(inputs),
            ));
        }
    }
    Ok(())
}

/// Workgroup size and reduction flavour for one-workgroup-per-row kernels: a single subgroup
/// (no barriers) when the adapter has a fixed subgroup size, else a 64-wide tree in workgroup
/// memory.
pub(crate) fn row_reduce(cx: &Lower<'_>) -> Vec<(&'static str, String)> {
    let d = cx.device();
    let info = d.adapter_info();
    let (lo, hi) = (info.subgroup_min_size, info.subgroup_max_size);
    if d.has_subgroups() && lo == hi && (4..=128).contains(&lo) && lo.is_power_of_two() {
        vec![("WG", lo.to_string()), ("RED", "subgroup".into())]
    } else {
        vec![("WG", "64".into()), ("RED", "tree".into())]
    }
}
