//! Kernel benchmarks: matmul (1024³ and BERT-shaped) per GPU variant and on the CPU reference,
//! layernorm and softmax bandwidth, all next to the adapter's FMA peak measured in the same run.
//!
//! `cargo bench --bench kernels` (criterion), then a summary table with GFLOP/s and % of peak.

use criterion::{BenchmarkId, Criterion, Throughput};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wgpu_infer::ops::matmul::Matmul;
use wgpu_infer::{Backend, DType, Device, Graph, MatmulVariant, Plan, Tensor};

fn lcg_tensor(shape: &[usize], seed: u32) -> Tensor {
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
    let v = (0..n)
        .map(|_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect();
    Tensor::from_f32(shape, v).unwrap()
}

struct Case {
    name: String,
    backend: &'static str,
    plan: Box<dyn Plan>,
    feeds: Vec<Tensor>,
    /// FLOPs (matmul) or bytes moved (memory-bound ops) per run.
    work: f64,
    flops: bool,
}

fn matmul_case(backend: &Backend, v: Option<MatmulVariant>, m: usize, k: usize, n: usize) -> Case {
    let mut g = Graph::new();
    let a = g.input("a", &[m, k], DType::F32).unwrap();
    let w = g.constant_tensor("w", lcg_tensor(&[k, n], 7)).unwrap();
    let c = g
        .node1(
            Matmul {
                variant: v,
                ..Default::default()
            },
            &[a, w],
        )
        .unwrap();
    g.output("c", c);
    let label = v.map_or("cpu-ref".to_string(), |v| v.name().to_string());
    Case {
        name: format!("matmul {m}x{k}x{n} {label}"),
        backend: backend.name(),
        plan: backend.compile(Arc::new(g), &[]).unwrap(),
        feeds: vec![lcg_tensor(&[m, k], 3)],
        work: 2.0 * (m * k * n) as f64,
        flops: true,
    }
}

fn rowop_case(backend: &Backend, op: &str, rows: usize, n: usize) -> Case {
    let mut g = Graph::new();
    let x = g.input("x", &[rows, n], DType::F32).unwrap();
    let y = if op == "layernorm" {
        let gm = g.constant_tensor("g", lcg_tensor(&[n], 1)).unwrap();
        let b = g.constant_tensor("b", lcg_tensor(&[n], 2)).unwrap();
        g.layernorm(x, gm, b, 1e-12).unwrap()
    } else {
        g.softmax(x).unwrap()
    };
    g.output("y", y);
    Case {
        name: format!("{op} {rows}x{n}"),
        backend: backend.name(),
        plan: backend.compile(Arc::new(g), &[]).unwrap(),
        feeds: vec![lcg_tensor(&[rows, n], 5)],
        work: 2.0 * (rows * n * 4) as f64,
        flops: false,
    }
}

fn median_secs(case: &mut Case, reps: usize) -> f64 {
    let refs: Vec<&Tensor> = case.feeds.iter().collect();
    case.plan.run(&refs).unwrap();
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            case.plan.run(&refs).unwrap();
            t0.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() {
    let dev =
        Device::new().unwrap_or_else(|e| panic!("the kernel benchmarks need a GPU adapter: {e}"));
    let gpu = Backend::Gpu(dev.clone());
    let quick = std::env::var("WGPU_INFER_BENCH_QUICK").is_ok();
    let peak = wgpu_infer::peak::fma_peak_gflops(&dev, 5).unwrap();
    println!(
        "adapter: {} ({:?}); FMA peak {peak:.1} GFLOP/s",
        dev.adapter_info().name,
        dev.adapter_info().backend
    );

    let mut cases: Vec<Case> = Vec::new();
    let shapes: &[(usize, usize, usize)] = if quick {
        &[(512, 512, 512)]
    } else {
        &[(1024, 1024, 1024), (2048, 384, 1536)]
    };
    for &(m, k, n) in shapes {
        for v in MatmulVariant::ALL {
            cases.push(matmul_case(&gpu, Some(v), m, k, n));
        }
        cases.push(matmul_case(&Backend::Cpu, None, m, k, n));
    }
    for op in ["layernorm", "softmax"] {
        cases.push(rowop_case(&gpu, op, 2048, 768));
        cases.push(rowop_case(&Backend::Cpu, op, 2048, 768));
    }

    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(if quick { 1 } else { 4 }));
    for case in cases.iter_mut() {
        let mut group = c.benchmark_group(case.name.split(' ').next().unwrap().to_string());
        group.throughput(Throughput::Elements(case.work as u64));
        let refs: Vec<Tensor> = case.feeds.clone();
        let plan = &mut case.plan;
        group.bench_function(BenchmarkId::new(case.name.clone(), case.backend), |b| {
            let r: Vec<&Tensor> = refs.iter().collect();
            b.iter(|| plan.run(&r).unwrap())
        });
        group.finish();
    }
    c.final_summary();

    // Summary from one more timing pass in this same process, so every ratio is same-run.
    println!(
        "\n{:<36} {:>8} {:>12} {:>14} {:>9}",
        "kernel", "backend", "median ms", "throughput", "% peak"
    );
    for case in cases.iter_mut() {
        let s = median_secs(case, if quick { 3 } else { 5 });
        let rate = case.work / s / 1e9;
        let (unit, pct) = if case.flops {
            ("GFLOP/s", format!("{:.1}", 100.0 * rate / peak))
        } else {
            ("GB/s", "-".to_string())
        };
        println!(
            "{:<36} {:>8} {:>12.2} {:>8.2} {unit:<7} {pct:>7}",
            case.name,
            case.backend,
            s * 1e3,
            rate
        );
    }
}
