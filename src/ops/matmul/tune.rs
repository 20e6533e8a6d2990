//! The matmul's tunable: which kernel to use per shape class, measured on a stand-in problem
//! of that class. The generic tuner (`crate::graph`) runs it; lowering reads the cached choice.

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

/// Stand-in inner and output sizes (clamped so that measuring stays cheap).
fn stand_in(d: Dims) -> (usize, usize) {
    (d.k.clamp(64, 512), d.n.clamp(64, 512))
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

/// The tuning-cache key of `d`'s class. The candidate set is part of it: adding a kernel
/// invalidates old choices.
pub(super) fn key(device: &Device, m: usize, k: usize, n: usize, constant_b: bool) -> String {
    let d = Dims {
        batch: 1,
        m,
        k,
        n,
        b_batched: false,
    };
    let names: Vec<&str> = candidates(device, d, constant_b)
        .iter()
        .map(|v| v.name())
        .collect();
    format!(
        "matmul:{}:{}:{}",
        class(m).0,
        if constant_b { "w" } else { "x" },
        names.join("/")
    )
}

/// The tunable for `d`: every candidate timed on a stand-in [rep_m, k] x [k, n] problem.
pub(super) fn tunable(device: &Device, d: Dims, constant_b: bool) -> Tunable {
    let (_, m) = class(d.m);
    let (k, n) = stand_in(d);
    let cands = candidates(device, d, constant_b);
    Tunable {
        key: key(device, d.m, d.k, d.n, constant_b),
        default: MatmulVariant::default_for(device, m, k, n, constant_b).name(),
        candidates: cands.iter().map(|v| v.name()).collect(),
        problem: Box::new(move |name| {
            let v = MatmulVariant::parse(name).ok_or_else(|| {
                crate::Error::InvalidArgument(format!("unknown matmul variant '{name}'"))
            })?;
            let mut g = Graph::new();
            let a = g.input("a", &[m, k], DType::F32)?;
            let bt = Tensor::from_f32(&[k, n], vec![0.5; k * n])?;
            let b = if constant_b {
                g.constant_tensor("b", bt.clone())?
            } else {
                g.input("b", &[k, n], DType::F32)?
            };
            let c = g.node1(
                Matmul {
                    layout: Layout::KxN,
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
