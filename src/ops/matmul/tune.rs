//! The matmul's tunable: which kernel to use per shape class, measured on a stand-in problem
//! of that class. The generic tuner (`crate::graph`) runs it; lowering reads the cached choice.
//!
//! The stand-in keeps the real inner size k (each output's loop, what separates the variants)
//! and the real n up to [`MAX_N`] columns (past that, more columns only add workgroups of the
//! same kind), with the class's representative row count. An earlier stand-in clamped k and n
//! to 512: timed by wall clock, fixed overhead dominated, and a busy machine once locked in a
//! GEMV variant 12x slower than the best on GPT-2's 768x50257 head.

use super::{Dims, Layout, Matmul, MatmulVariant};
use crate::device::Device;
use crate::graph::{Graph, Tunable};
use crate::tensor::{DType, Tensor};

/// Shape class of a matmul for tuning purposes, and the row count of its stand-in problem.
fn class(m: usize) -> (&'static str, usize) {
    match m {
        1 => ("m1", 1),
        2..=8 => ("m2-8", 8),
        _ => ("m9+", 256),
    }
}

/// Most output columns of a stand-in problem.
pub const MAX_N: usize = 4096;

/// Stand-in inner and output sizes: the real k, the real n up to [`MAX_N`].
fn stand_in(d: Dims) -> (usize, usize) {
    (d.k.max(1), d.n.clamp(1, MAX_N))
}

/// Variants that can run the stand-in problem of `d`'s class.
fn candidates(device: &Device, d: Dims, constant_b: bool) -> Vec<MatmulVariant> {
    let (_, rep_m) = class(d.m);
    let (k, n) = stand_in(d);
    MatmulVariant::ALL
        .into_iter()
        .filter(|v| v.supports(device, rep_m, k, n, constant_b))
        .collect()
}

/// The tuning-cache key of `d`'s class (B constant or not, its dtype, the stand-in sizes).
/// The candidate set is part of it: adding a kernel invalidates old choices.
pub(super) fn key(device: &Device, d: Dims, constant_b: bool, b_dtype: DType) -> String {
    let m = d.m;
    let names: Vec<&str> = candidates(device, d, constant_b)
        .iter()
        .map(|v| v.name())
        .collect();
    let (ks, ns) = stand_in(d);
    format!(
        "matmul:{}:{}{}:k{ks}:n{ns}:{}",
        class(m).0,
        if constant_b { "w" } else { "x" },
        match b_dtype {
            DType::F16 => "16",
            DType::Q8 => "q8",
            _ => "",
        },
        names.join("/")
    )
}

/// The tunable for `d`: every candidate timed on a stand-in [rep_m, k] x [k, n] problem.
pub(super) fn tunable(device: &Device, d: Dims, constant_b: bool, b_dtype: DType) -> Tunable {
    let (_, m) = class(d.m);
    let (k, n) = stand_in(d);
    let cands = candidates(device, d, constant_b);
    Tunable {
        key: key(device, d, constant_b, b_dtype),
        default: MatmulVariant::default_for(device, m, k, n, constant_b).name(),
        candidates: cands.iter().map(|v| v.name()).collect(),
        problem: Box::new(move |name| {
            let v = MatmulVariant::parse(name).ok_or_else(|| {
                crate::Error::InvalidArgument(format!("unknown matmul variant '{name}'"))
            })?;
            let mut g = Graph::new();
            let a = g.input("a", &[m, k], DType::F32)?;
            // q8 weights are [N, K] (their blocks run along K).
            let q8 = constant_b && b_dtype == DType::Q8;
            let (layout, bs) = if q8 {
                (Layout::NxK, [n, k])
            } else {
                (Layout::KxN, [k, n])
            };
            let bt = Tensor::from_f32(&bs, vec![0.5; k * n])?;
            let b = if constant_b {
                // The weights' storage type (f16 and q8 weights read fewer bytes).
                g.constant_tensor("b", bt.to_dtype(b_dtype)?)?
            } else {
                g.input("b", &[k, n], DType::F32)?
            };
            let c = g.node1(
                Matmul {
                    layout,
                    variant: Some(v),
                    ..Default::default()
                },
                &[a, b],
            )?;
            g.output("c", c);
            let at = Tensor::from_f32(&[m, k], vec![0.25; m * k])?;
            let feeds = if constant_b { vec![at] } else { vec![at, bt] };
            Ok((g, feeds))
        }),
    }
}
