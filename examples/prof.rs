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
    let (m, k, n) = (args[0], args[1], args[2]);
    let mut g = Graph::new();
    let a = g.input("a", &[m, k], DType::F32).unwrap();
    let w = g
        .constant_tensor("w", bench::random_tensor(&[n, k], 0.05, 1))
        .unwrap();
    let c = g
        .node1(
            Matmul {
                trans_b: true,
                variant: Some(MatmulVariant::Texture),
                ..Default::default()
            },
            &[a, w],
        )
        .unwrap();
    g.output("c", c);
    let mut p = Backend::Gpu(dev.clone()).compile(Arc::new(g), &[]).unwrap();
    let at = bench::random_tensor(&[m, k], 1.0, 2);
    p.run(&[&at]).unwrap();
    let mut ts = vec![];
    for _ in 0..10 {
        let t = Instant::now();
        p.run(&[&at]).unwrap();
        let e = t.elapsed().as_secs_f64();
        ts.push(e);
    }
    ts.sort_by(f64::total_cmp);
    println!(
        "min {:.1} ms med {:.1} ms -> {:.1} GFLOP/s (min)",
        ts[0] * 1e3,
        ts[5] * 1e3,
        2.0 * (m * k * n) as f64 / ts[0] / 1e9
    );
    if std::env::var("PROF").is_ok() {
        if let Some(prof) = p.profile(&[&at]).unwrap() {
            for (op, k, ns) in prof {
                println!("  {op} {k}: {:.2} ms", ns / 1e6);
            }
        }
    }
}
