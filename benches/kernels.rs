//! Kernel benchmarks (criterion) over the op-case table's bench group — the same model-sized
//! shapes `wgpu-infer bench` times and the parity test checks: every GPU variant the adapter
//! can run, and the CPU reference, next to the adapter's FMA peak measured in the same run.
//!
//! `cargo bench --bench kernels` (criterion), then a summary table with throughput and % of
//! peak. `WGPU_INFER_BENCH_QUICK=1` keeps to the cases under 1 GFLOP.

use criterion::{BenchmarkId, Criterion, Throughput};
use std::time::{Duration, Instant};
use wgpu_infer::ops::cases::{self, OpCase, Work};
use wgpu_infer::{Backend, Device, Plan, Tensor};

struct Case {
    op: String,
    name: String,
    backend: &'static str,
    plan: Plan,
    feeds: Vec<Tensor>,
    work: Work,
}

fn case(c: &OpCase, backend: &Backend) -> Case {
    Case {
        op: match backend {
            Backend::Cpu => format!("{} (cpu-ref)", c.op.split('/').next().unwrap_or(&c.op)),
            Backend::Gpu(_) => c.op.clone(),
        },
        name: c.name.clone(),
        backend: backend.name(),
        plan: backend.compile(c.graph.clone(), &[]).unwrap(),
        feeds: c.feeds.clone(),
        work: c.work,
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
    let peak = dev.measure_fma_peak(5).unwrap();
    println!(
        "adapter: {} ({:?}); FMA peak {peak:.1} GFLOP/s",
        dev.adapter_info().name,
        dev.adapter_info().backend
    );

    let group = cases::group(cases::BENCH).expect("the op-case table has a bench group");
    let mut all: Vec<Case> = Vec::new();
    let mut cpu_shapes: Vec<(String, String)> = Vec::new();
    for c in group.cases().unwrap() {
        let big = matches!(c.work, Work::Flops(f) if f > 1e9);
        if !c.runs_on(&dev) || (quick && big) {
            continue;
        }
        all.push(case(&c, &gpu));
        let family = c.op.split('/').next().unwrap_or(&c.op).to_string();
        if !cpu_shapes.contains(&(family.clone(), c.name.clone())) {
            cpu_shapes.push((family, c.name.clone()));
            all.push(case(&c, &Backend::Cpu));
        }
    }

    let mut crit = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(if quick { 1 } else { 4 }));
    for c in all.iter_mut() {
        let mut group = crit.benchmark_group(c.op.clone());
        let units = match c.work {
            Work::Flops(f) => f,
            Work::Bytes(b) => b,
        };
        group.throughput(Throughput::Elements(units as u64));
        let refs: Vec<Tensor> = c.feeds.clone();
        let plan = &mut c.plan;
        group.bench_function(BenchmarkId::new(c.name.clone(), c.backend), |b| {
            let r: Vec<&Tensor> = refs.iter().collect();
            b.iter(|| plan.run(&r).unwrap())
        });
        group.finish();
    }
    crit.final_summary();

    // Summary from one more timing pass in this same process, so every ratio is same-run.
    println!(
        "\n{:<22} {:<34} {:>7} {:>11} {:>18} {:>7}",
        "op", "shape", "backend", "median ms", "throughput", "% peak"
    );
    for c in all.iter_mut() {
        let s = median_secs(c, if quick { 3 } else { 5 });
        let (rate, unit, pct) = match c.work {
            Work::Flops(f) => {
                let r = f / s / 1e9;
                (r, "GFLOP/s", format!("{:.1}", 100.0 * r / peak))
            }
            Work::Bytes(b) => (b / s / 1e9, "GB/s", "-".to_string()),
        };
        println!(
            "{:<22} {:<34} {:>7} {:>11.2} {:>10.2} {unit:<7} {pct:>7}",
            c.op,
            c.name,
            c.backend,
            s * 1e3,
            rate
        );
    }
}
