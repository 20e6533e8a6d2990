use std::collections::BTreeMap;
use std::sync::Arc;
use wgpu_infer::models::gpt2::{Gpt2, Gpt2Config};
use wgpu_infer::*;
fn main() {
    let dev = Device::new().unwrap();
    let dt = if std::env::args().nth(1).as_deref() == Some("f16") {
        DType::F16
    } else {
        DType::F32
    };
    let m = Gpt2::from_source(
        Backend::Gpu(dev.clone()),
        Gpt2Config::small(),
        &bench::random_source,
        None,
        &LoadOptions::with_dtype(dt),
    )
    .unwrap();
    let c = Gpt2Config::small();
    let info = ValueInfo::new(&[1, c.n_positions, c.n_embd], DType::F32);
    let states: Vec<State> = (0..24)
        .map(|_| Backend::Gpu(dev.clone()).new_state(&info).unwrap())
        .collect();
    let sr: Vec<&State> = states.iter().collect();
    let mut plan = Backend::Gpu(dev.clone())
        .compile(Arc::new(m.step_graph(1).unwrap()), &sr)
        .unwrap();
    let feeds = [
        Tensor::from_u32(&[1, 1], vec![5]).unwrap(),
        Tensor::from_u32(&[1, 1], vec![20]).unwrap(),
        Tensor::from_u32(&[1], vec![20]).unwrap(),
    ];
    let r: Vec<&Tensor> = feeds.iter().collect();
    for _ in 0..3 {
        plan.run(&r).unwrap();
    }
    let t = std::time::Instant::now();
    for _ in 0..20 {
        plan.run(&r).unwrap();
    }
    println!(
        "run {:.2} ms, dispatches {}",
        t.elapsed().as_secs_f64() * 1e3 / 20.0,
        plan.stats().dispatches
    );
    let mut agg: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut tot = 0.0;
    for _ in 0..5 {
        for (op, k, ns) in plan.profile(&r).unwrap().unwrap() {
            let e = agg.entry(format!("{op}/{k}")).or_default();
            e.0 += ns / 5.0;
            e.1 += 1;
            tot += ns / 5.0;
        }
    }
    for (k, (ns, n)) in agg {
        println!("{k:40} {:8.2} ms  x{}", ns / 1e6, n / 5);
    }
    println!("total {:.2} ms", tot / 1e6);
}
