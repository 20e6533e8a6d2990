//! Ops. Each module (or folder, for ops with several kernel variants) holds one op: its shape
//! rule, a plain CPU reference kernel (the oracle), its GPU variants and their choice, plus a
//! `Graph` builder method. [`cases`] lists every op's parity and benchmark cases.

use crate::error::{Error, Result};
use crate::graph::{Arg, Lower, Params, ValueId};
use crate::tensor::{Tensor, ValueInfo};

pub mod activation;
pub mod attention;
pub mod binary;
pub mod cases;
pub mod concat;
pub mod conv2d;
pub mod embedding;
pub mod expand;
pub mod glu;
pub mod kv_write;
pub mod layernorm;
pub mod matmul;
pub mod maxpool2d;
pub mod mean;
pub mod permute;
pub mod rope;
pub mod slice;
pub mod softmax;
pub mod upsample;
pub mod yolo_decode;

pub use activation::Act;
pub use attention::{Attention, AttentionVariant};
pub use conv2d::{Conv2d, ConvVariant};
pub use matmul::{Epilogue, Layout, Matmul, MatmulVariant};

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

/// Checks a fused epilogue's inputs after the two operands: a bias [channels] if `bias`, then an
/// output-shaped residual if `residual`.
pub(crate) fn check_epilogue(
    op: &str,
    inputs: &[&ValueInfo],
    (bias, residual): (bool, bool),
    channels: usize,
    out: &[usize],
) -> Result<()> {
    if bias && inputs[2].shape != [channels] {
        return Err(Error::shape(
            op,
            format!("bias must have shape [{channels}]"),
            &shapes(inputs),
        ));
    }
    if residual && inputs[2 + bias as usize].shape != out {
        return Err(Error::shape(
            op,
            format!("residual must have the output shape {out:?}"),
            &shapes(inputs),
        ));
    }
    Ok(())
}

/// (bias, residual) data of a fused epilogue, when present.
type EpilogueData<'a> = (Option<&'a [f32]>, Option<&'a [f32]>);

/// The data of a fused epilogue's optional bias and residual inputs.
pub(crate) fn epilogue_data<'a>(
    inputs: &[&'a Tensor],
    (bias, residual): (bool, bool),
) -> Result<EpilogueData<'a>> {
    let b = if bias {
        Some(inputs[2].as_f32()?)
    } else {
        None
    };
    let r = if residual {
        Some(inputs[2 + bias as usize].as_f32()?)
    } else {
        None
    };
    Ok((b, r))
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
        .u32s(&u(shape), 2)?
        .u32s(&u(src_strides), 2)?
        .u32s(&u(dst_strides), 2)?;
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
/// memory (the portable variant).
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

#[cfg(test)]
mod shader_tests;
