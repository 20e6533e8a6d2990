use std::sync::Arc;
use std::time::Instant;
use wgpu_infer::ops::matmul::{Matmul, MatmulVariant};
use wgpu_infer::*;
fn main() {
    let dev = Device::new().unwrap();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let (m, k, n, reps) = (args[0], args[1], args[2], args[3]);
    let mut g = Graph::new();
    let a = g.input("a", &[m, k], DType::F32).unwrap();
    let w = g
        .constant_tensor("w", bench::random_tensor(&[n, k], 0.05, 1))
        .unwrap();
    let mut last = None;
    for _ in 0..reps {
        last = Some(
            g.node1(
                Matmul {
                    trans_b: true,
                    variant: Some(MatmulVariant::Texture),
                    ..Default::default()
                },
                &[a, w],
            )
            .unwrap(),
        );
    }
    let s = g.slice(last.unwrap(), 0, 0, 1).unwrap();
    g.output("c", s);
    let mut p = Backend::Gpu(dev.clone()).compile(Arc::new(g), &[]).unwrap();
    let at = bench::random_tensor(&[m, k], 1.0, 2);
    p.run(&[&at]).unwrap();
    let mut ts = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        p.run(&[&at]).unwrap();
        ts.push(t.elapsed().as_secs_f64());
    }
    ts.sort_by(f64::total_cmp);
    let peak = peak::fma_peak_gflops(&dev, 3).unwrap();
    let gf = 2.0 * (m * k * n * reps) as f64 / ts[0] / 1e9;
    println!(
        "{m}x{k}x{n} x{reps}: min {:.1} ms/matmul -> {:.1} GFLOP/s, peak {:.0} -> {:.0}%",
        ts[0] * 1e3 / reps as f64,
        gf,
        peak,
        100.0 * gf / peak
    );
}
