//! The bench rows of the families added after the first four (issue 17), one real size each,
//! on the GPU against PyTorch's same workload (tools/bench_torch.py): MPNet-base, DINOv2-S/14,
//! CLIP ViT-B/32, SmolLM2-135M (random weights of the real configs; f32, f16 and q8 for the
//! decoder), YOLO11n and YOLO11n-seg (the test
//! fixtures: the real architectures). The CPU reference is not timed here (the first four
//! families' rows show its speed).

use super::bench_core::{
    random_source, random_tensor, time_vs, BenchOptions, ModelResult, RandomWeights, Run, Torch,
    VIT_ABSENT,
};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;
use wgpu_infer::models::bert::{Bert, BertConfig, BertInput};
use wgpu_infer::models::clip::Clip;
use wgpu_infer::models::clip_config::{ClipConfig, ClipTextConfig, ClipVisionConfig};
use wgpu_infer::models::vision::ImageProcessorConfig;
use wgpu_infer::models::vit::{Vit, VitConfig};
use wgpu_infer::models::yolo::{DetectOptions, Yolo};
use wgpu_infer::{Backend, Device, LoadOptions, Result};

/// sentence-transformers/all-mpnet-base-v2's encoder.
fn mpnet_base() -> BertConfig {
    BertConfig {
        model_type: "mpnet".into(),
        vocab_size: 30527,
        hidden_size: 768,
        num_hidden_layers: 12,
        num_attention_heads: 12,
        intermediate_size: 3072,
        hidden_act: "gelu".into(),
        layer_norm_eps: 1e-5,
        max_position_embeddings: 514,
        type_vocab_size: 2,
        position_embedding_type: None,
        pad_token_id: 1,
        relative_attention_num_buckets: 32,
    }
}

/// facebook/dinov2-small: 518-px positions, run at its processor's 224-px crop.
fn dinov2_small() -> (VitConfig, ImageProcessorConfig) {
    let c = VitConfig {
        model_type: "dinov2".into(),
        image_size: 518,
        patch_size: 14,
        num_channels: 3,
        hidden_size: 384,
        num_hidden_layers: 12,
        num_attention_heads: 6,
        intermediate_size: 0,
        mlp_ratio: Some(4.0),
        use_swiglu_ffn: false,
        layer_norm_eps: 1e-6,
        hidden_act: "gelu".into(),
        id2label: BTreeMap::new(),
        num_register_tokens: None,
    };
    let mut p = ImageProcessorConfig::vit_default(224);
    p.size = Some(BTreeMap::from([("shortest_edge".into(), 256)]));
    p.do_center_crop = true;
    p.crop_size = Some(BTreeMap::from([
        ("height".into(), 224),
        ("width".into(), 224),
    ]));
    p.resample = 3;
    (c, p)
}

/// openai/clip-vit-base-patch32.
fn clip_b32() -> (ClipConfig, ImageProcessorConfig) {
    let c = ClipConfig {
        model_type: "clip".into(),
        projection_dim: 512,
        text_config: ClipTextConfig {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
            eos_token_id: 49407,
        },
        vision_config: ClipVisionConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: "quick_gelu".into(),
            layer_norm_eps: 1e-5,
        },
    };
    let mut p = ImageProcessorConfig::vit_default(224);
    p.size = Some(BTreeMap::from([("shortest_edge".into(), 224)]));
    p.do_center_crop = true;
    p.crop_size = Some(BTreeMap::from([
        ("height".into(), 224),
        ("width".into(), 224),
    ]));
    p.resample = 3;
    (c, p)
}

/// `batch` rows of `seq` ids from `lo` with the same arithmetic as the first bench rows (and
/// tools/bench_torch.py), `first`/`last` special ids at the ends when given.
fn ids(batch: usize, seq: usize, first: Option<u32>, last: Option<u32>) -> BertInput {
    let mut v: Vec<u32> = (0..batch * seq)
        .map(|i| (i as u32 * 7919) % 30000 + 100)
        .collect();
    for row in v.chunks_mut(seq) {
        if let Some(f) = first {
            row[0] = f;
        }
        if let Some(l) = last {
            row[seq - 1] = l;
        }
    }
    BertInput {
        batch,
        seq,
        input_ids: v,
        token_type_ids: vec![0; batch * seq],
        attention_mask: vec![1; batch * seq],
    }
}

pub(super) fn families(
    dev: &Device,
    opts: &BenchOptions,
    out: &mut Vec<ModelResult>,
    torch: &mut Torch<'_>,
    progress: &mut dyn FnMut(&str),
) -> Result<()> {
    let gpu = Backend::Gpu(dev.clone());
    let (reps, budget) = if opts.quick { (3, 3.0) } else { (5, 10.0) };
    let run = |model: &'static str, cold: f64, mem: (u64, usize), kernels: Vec<String>| Run {
        model,
        backend: gpu.name().into(),
        cold_start_s: cold,
        memory: mem,
        kernels,
    };

    progress("MPNet-base (gpu)");
    let t0 = Instant::now();
    let m = Bert::from_source(
        gpu.clone(),
        mpnet_base(),
        &random_source,
        true,
        None,
        &LoadOptions::default(),
    )?;
    let name = "MPNet-base (random weights)";
    for (i, b) in [1usize, 32].into_iter().enumerate() {
        let input = ids(b, 18, Some(0), Some(2));
        let fwd = || m.forward(&input, false).map(|_| ());
        if i == 0 {
            fwd()?;
        }
        let cold = t0.elapsed().as_secs_f64();
        let workload = format!("batch {b} x 18 tokens");
        let s = time_vs(torch, (name, &workload, "sentences/s"), reps, budget, fwd)?;
        let r = run(name, cold, m.memory_and_dispatches(), m.kernels());
        out.push(r.row(workload, s, b as f64, "sentences/s"));
    }

    progress("DINOv2-S/14 (gpu)");
    let t0 = Instant::now();
    let (c, p) = dinov2_small();
    let w = RandomWeights { absent: VIT_ABSENT };
    let m = Vit::from_source(gpu.clone(), c, p, &w, false, &LoadOptions::default())?;
    let pix = random_tensor(&[1, 3, 224, 224], 1.0, 14);
    m.forward(&pix)?;
    let cold = t0.elapsed().as_secs_f64();
    let name = "DINOv2-S/14 (random weights)";
    let workload = "batch 1 at 224 px (positions resized from 518)";
    let fwd = || m.forward(&pix).map(|_| ());
    let s = time_vs(torch, (name, workload, "images/s"), reps, budget, fwd)?;
    let r = run(name, cold, m.memory_and_dispatches(), m.kernels());
    out.push(r.row(workload.into(), s, 1.0, "images/s"));

    progress("CLIP ViT-B/32 (gpu)");
    let t0 = Instant::now();
    let (c, p) = clip_b32();
    let m = Clip::from_source(
        gpu.clone(),
        c,
        p,
        &random_source,
        None,
        &LoadOptions::default(),
    )?;
    let pix = random_tensor(&[1, 3, 224, 224], 1.0, 15);
    m.vision_forward(&pix)?;
    let cold = t0.elapsed().as_secs_f64();
    let name = "CLIP ViT-B/32 (random weights)";
    let fwd = || m.vision_forward(&pix).map(|_| ());
    let workload = "image batch 1";
    let s = time_vs(torch, (name, workload, "images/s"), reps, budget, fwd)?;
    let r = run(name, cold, m.memory_and_dispatches(), m.kernels());
    out.push(r.row(workload.into(), s, 1.0, "images/s"));
    let labels = ids(8, 7, Some(49406), Some(49407));
    let fwd = || m.text_forward(&labels).map(|_| ());
    let workload = "text batch 8 x 7 tokens";
    let s = time_vs(torch, (name, workload, "texts/s"), reps, budget, fwd)?;
    let r = run(name, cold, m.memory_and_dispatches(), m.kernels());
    out.push(r.row(workload.into(), s, 8.0, "texts/s"));

    super::bench_decoders::smollm2_rows(&gpu, opts.quick, out, torch, progress)?;

    let fixtures = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/yolo"));
    let bus = fixtures.join("bus_decoded.png");
    let img = wgpu_infer::imageio::load_rgb_as(&bus, wgpu_infer::imageio::Convention::OpenCv)?;
    for (dir, name, network) in [
        ("yolo11n", "YOLO11n 640", true),
        ("yolo11n-seg", "YOLO11n-seg 640", false),
    ] {
        progress(&format!("{name} (gpu)"));
        let t0 = Instant::now();
        let m = Yolo::load(gpu.clone(), fixtures.join(dir))?;
        let x = random_tensor(&[1, 3, 640, 640], 0.5, 13);
        m.forward(&x)?;
        let cold = t0.elapsed().as_secs_f64();
        if network {
            let fwd = || m.forward(&x).map(|_| ());
            let workload = "network, 640x640";
            let s = time_vs(torch, (name, workload, "images/s"), reps, budget, fwd)?;
            let r = run(name, cold, m.memory_and_dispatches(), m.kernels());
            out.push(r.row(workload.into(), s, 1.0, "images/s"));
        }
        let predict = || m.detect_image(&img, &DetectOptions::default()).map(|_| ());
        let workload = if network {
            "predict bus.jpg (letterbox 640x480, NMS)"
        } else {
            "predict bus.jpg (letterbox 640x480, NMS, masks)"
        };
        let s = time_vs(torch, (name, workload, "images/s"), reps, 5.0, predict)?;
        let r = run(name, cold, m.memory_and_dispatches(), m.kernels());
        out.push(r.row(workload.into(), s, 1.0, "images/s"));
    }
    Ok(())
}
