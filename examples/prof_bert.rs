use std::collections::BTreeMap;
use std::sync::Arc;
use wgpu_infer::models::bert::{Bert, BertConfig};
use wgpu_infer::*;
fn main() {
    let dev = Device::new().unwrap();
    let cfg = BertConfig {
        vocab_size: 30522,
        hidden_size: 384,
        num_hidden_layers: 6,
        num_attention_heads: 12,
        intermediate_size: 1536,
        hidden_act: "gelu".into(),
        layer_norm_eps: 1e-12,
        max_position_embeddings: 512,
        type_vocab_size: 2,
        position_embedding_type: None,
    };
    let m = Bert::from_source(
        Backend::Gpu(dev.clone()),
        cfg,
        &bench::random_source,
        false,
        None,
        &LoadOptions::default(),
    )
    .unwrap();
    let (b, s) = (32usize, 18usize);
    let g = m.graph_for(b, s).unwrap();
    let mut plan = Backend::Gpu(dev.clone()).compile(Arc::new(g), &[]).unwrap();
    let ids = Tensor::from_u32(
        &[b, s],
        (0..b * s)
            .map(|i| (i as u32 * 7919) % 30000 + 100)
            .collect(),
    )
    .unwrap();
    let tt = Tensor::from_u32(&[b, s], vec![0; b * s]).unwrap();
    let pos = Tensor::from_u32(&[b, s], (0..b * s).map(|i| (i % s) as u32).collect()).unwrap();
    let bias = Tensor::from_f32(&[b, s], vec![0.0; b * s]).unwrap();
    let r = vec![&ids, &tt, &pos, &bias];
    for _ in 0..2 {
        plan.run(&r).unwrap();
    }
    let t = std::time::Instant::now();
    for _ in 0..5 {
        plan.run(&r).unwrap();
    }
    println!(
        "run {:.2} ms, dispatches {}",
        t.elapsed().as_secs_f64() * 1e3 / 5.0,
        plan.stats().dispatches
    );
    let mut agg: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut tot = 0.0;
    for _ in 0..3 {
        for (op, k, ns) in plan.profile(&r).unwrap().unwrap() {
            let e = agg.entry(format!("{op}/{k}")).or_default();
            e.0 += ns / 3.0;
            e.1 += 1;
            tot += ns / 3.0;
        }
    }
    for (k, (ns, n)) in agg {
        println!("{k:40} {:8.2} ms  x{}", ns / 1e6, n / 3);
    }
    println!("total {:.2} ms", tot / 1e6);
}
