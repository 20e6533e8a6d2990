use std::collections::BTreeMap;
use std::sync::Arc;
use wgpu_infer::*;
fn main() {
    let dev = Device::new().unwrap();
    let which = std::env::args().nth(1).unwrap();
    let (g, feeds): (Graph, Vec<Tensor>) = match which.as_str() {
        "vit" => {
            let m = models::Vit::from_source(Backend::Gpu(dev.clone()), models::vit::VitConfig::base_16(), models::vit::ImageProcessorConfig::vit_default(224), &bench::random_source, true).unwrap();
            (m.graph_for(1).unwrap(), vec![bench::random_tensor(&[1,3,224,224], 1.0, 1)])
        }
        "yolo" => {
            let m = models::Yolo::load(Backend::Gpu(dev.clone()), "tests/fixtures/yolo/yolov8n").unwrap();
            (m.graph_for(1, 640, 640).unwrap(), vec![bench::random_tensor(&[1,3,640,640], 0.5, 1)])
        }
        _ => {
            let cfg: models::bert::BertConfig = serde_json::from_str(r#"{"vocab_size":30522,"hidden_size":384,"num_hidden_layers":6,"num_attention_heads":12,"intermediate_size":1536}"#).unwrap();
            let m = models::Bert::from_source(Backend::Gpu(dev.clone()), cfg, &bench::random_source, false, None).unwrap();
            let (b, s) = (32usize, 24usize);
            (m.graph_for(b, s).unwrap(), vec![Tensor::from_u32(&[b,s], vec![101; b*s]).unwrap(), Tensor::from_u32(&[b,s], vec![0; b*s]).unwrap(), Tensor::from_u32(&[b,s], (0..b*s).map(|i| (i % s) as u32).collect()).unwrap(), Tensor::from_f32(&[b,s], vec![0.0; b*s]).unwrap()])
        }
    };
    let mut p = Backend::Gpu(dev.clone()).compile(Arc::new(g), &[]).unwrap();
    let r: Vec<&Tensor> = feeds.iter().collect();
    p.run(&r).unwrap();
    let t = std::time::Instant::now(); p.run(&r).unwrap(); println!("run {:.1} ms", t.elapsed().as_secs_f64()*1e3);
    let prof = p.profile(&r).unwrap().unwrap();
    let mut agg: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let total: f64 = prof.iter().map(|x| x.2).sum();
    for (op, k, ns) in prof { let e = agg.entry(format!("{op}/{k}")).or_default(); e.0 += ns; e.1 += 1; }
    let mut v: Vec<_> = agg.into_iter().collect();
    v.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    println!("total kernel time {:.1} ms", total / 1e6);
    for (k, (ns, n)) in v { println!("{:>8.2} ms {:>5.1}% {:>4}x {k}", ns / 1e6, 100.0 * ns / total, n); }
}
