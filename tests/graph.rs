//! Executor behaviour: memory planning, aliasing, feeds, plan caching, limits and typed errors.

mod common;
use common::{device, Rng};
use std::sync::Arc;
use wgpu_infer::ops::matmul::Matmul;
use wgpu_infer::{Backend, DType, Error, Graph, PlanCache, Tensor};

fn chain(n: usize, len: usize) -> Graph {
    let mut g = Graph::new();
    let x = g.input("x", &[len], DType::F32).unwrap();
    let mut v = x;
    for i in 0..n {
        v = if i % 2 == 0 {
            g.gelu(v).unwrap()
        } else {
            g.add(v, x).unwrap()
        };
    }
    g.output("y", v);
    g
}

#[test]
fn memory_plan_reuses_buffers() {
    let g = Arc::new(chain(10, 1000));
    let plan = Backend::Gpu(device()).compile(g, &[]).unwrap();
    let s = plan.stats();
    assert_eq!(s.dispatches, 10);
    // A chain needs two alternating buffers (plus the output, which is never reused).
    assert!(s.buffers <= 3, "{s:?}");
    assert!(s.intermediate_bytes * 3 <= s.unplanned_bytes, "{s:?}");
}

#[test]
fn reused_buffers_do_not_corrupt_results() {
    let mut rng = Rng::new(11);
    let g = Arc::new(chain(12, 777));
    let x = rng.tensor(&[777], -2.0, 2.0);
    let want = Backend::Cpu
        .compile(g.clone(), &[])
        .unwrap()
        .run(&[&x])
        .unwrap();
    let mut gpu = Backend::Gpu(device()).compile(g, &[]).unwrap();
    for _ in 0..3 {
        let got = gpu.run(&[&x]).unwrap();
        common::compare("chain", &got["y"], &want["y"], 1e-4, 1e-5);
    }
}

#[test]
fn reshape_is_a_view_and_outputs_are_only_what_was_asked() {
    let mut rng = Rng::new(12);
    let mut g = Graph::new();
    let x = g.input("x", &[6, 10], DType::F32).unwrap();
    let r = g.reshape(x, &[3, 20]).unwrap();
    let s = g.softmax(r).unwrap();
    let back = g.reshape(s, &[60]).unwrap();
    let t = g.reshape(back, &[2, usize::MAX]).unwrap();
    assert_eq!(g.shape(t), &[2, 30]);
    g.output("t", t);
    let feeds = [rng.tensor(&[6, 10], -1.0, 1.0)];
    common::parity("graph", "reshape views", g, &feeds);
}

#[test]
fn wrong_feeds_are_typed_errors() {
    let g = Arc::new(chain(2, 8));
    for backend in [Backend::Cpu, Backend::Gpu(device())] {
        let mut p = backend.compile(g.clone(), &[]).unwrap();
        let bad = Tensor::from_f32(&[9], vec![0.0; 9]).unwrap();
        let e = p.run(&[&bad]).unwrap_err();
        assert!(matches!(e, Error::Graph(_)), "{e}");
        assert!(
            e.to_string().contains("[8]") && e.to_string().contains("[9]"),
            "{e}"
        );
        let e = p.run(&[]).unwrap_err();
        assert!(e.to_string().contains("expected 1 inputs"), "{e}");
        let ids = Tensor::from_u32(&[8], vec![0; 8]).unwrap();
        assert!(p.run(&[&ids]).unwrap_err().to_string().contains("u32"));
    }
}

#[test]
fn bad_shapes_name_the_op_and_shapes() {
    let mut g = Graph::new();
    let a = g.input("a", &[3, 4], DType::F32).unwrap();
    let b = g.input("b", &[5, 6], DType::F32).unwrap();
    let e = g.matmul(a, b, wgpu_infer::Layout::KxN).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Shape { .. }), "{msg}");
    assert!(
        msg.starts_with("matmul") && msg.contains("[3, 4]") && msg.contains("[5, 6]"),
        "{msg}"
    );

    let e = g.add(a, b).unwrap_err().to_string();
    assert!(e.starts_with("add") && e.contains("broadcast"), "{e}");
    let e = g.permute(a, &[0, 0]).unwrap_err().to_string();
    assert!(e.starts_with("permute"), "{e}");
    let e = g.slice(a, 1, 3, 9).unwrap_err().to_string();
    assert!(e.starts_with("slice") && e.contains("3..9"), "{e}");
    let e = g.concat(&[a, b], 0).unwrap_err().to_string();
    assert!(e.starts_with("concat"), "{e}");
    let e = g.mean(a, 2).unwrap_err().to_string();
    assert!(e.contains("axis 2 out of range"), "{e}");
    let gm = g.input("g", &[5], DType::F32).unwrap();
    let e = g.layernorm(a, gm, gm, 1e-5).unwrap_err().to_string();
    assert!(e.starts_with("layernorm") && e.contains("[4]"), "{e}");
    let x4 = g.input("x4", &[1, 3, 8, 8], DType::F32).unwrap();
    let w = g.input("w", &[4, 2, 3, 3], DType::F32).unwrap();
    let e = g
        .conv2d(Default::default(), x4, w, None, None)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("conv2d") && e.contains("[4, 2, 3, 3]"), "{e}");
    let e = g.maxpool2d(x4, 20, 1, 0).unwrap_err().to_string();
    assert!(e.starts_with("maxpool2d"), "{e}");
    let ids = g.input("ids", &[3], DType::F32).unwrap();
    let e = g.embedding(a, ids).unwrap_err().to_string();
    assert!(e.starts_with("embedding") && e.contains("u32"), "{e}");
    let e = g.reshape(a, &[5, 3]).unwrap_err().to_string();
    assert!(e.contains("reshape"), "{e}");
    let e = g
        .input("empty", &[0, 3], DType::F32)
        .unwrap_err()
        .to_string();
    assert!(e.contains("empty"), "{e}");
    // Rank-0 values have no last axis to normalise over.
    let s = g.input("scalar", &[], DType::F32).unwrap();
    let one = g.input("one", &[1], DType::F32).unwrap();
    let e = g.layernorm(s, one, one, 1e-5).unwrap_err().to_string();
    assert!(
        e.starts_with("layernorm") && e.contains("at least one axis"),
        "{e}"
    );
    let e = g.softmax(s).unwrap_err().to_string();
    assert!(
        e.starts_with("softmax") && e.contains("at least one axis"),
        "{e}"
    );
    // Shapes whose byte size overflows are refused when the value is made.
    let e = g
        .input("huge", &[1 << 40, 1 << 40], DType::F32)
        .unwrap_err()
        .to_string();
    assert!(e.contains("huge"), "{e}");
}

#[test]
fn values_beyond_the_binding_limit_are_refused_with_a_limit_error() {
    let dev = device();
    let n = (dev.max_binding() / 4) as usize + 1024;
    let mut g = Graph::new();
    let x = g.input("big", &[n], DType::F32).unwrap();
    let y = g.gelu(x).unwrap();
    g.output("y", y);
    let e = Backend::Gpu(dev)
        .compile(Arc::new(g), &[])
        .err()
        .expect("must fail");
    assert!(matches!(e, Error::Limit { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("gelu") && msg.contains("max_storage_buffer_binding_size"),
        "{msg}"
    );
}

#[test]
fn plan_cache_builds_once_per_shape_and_reuses_kernels() {
    let dev = device();
    let backend = Backend::Gpu(dev.clone());
    let mut rng = Rng::new(13);
    let w = rng.tensor(&[64, 96], -1.0, 1.0);
    let wc = wgpu_infer::Constant::new("w", w);
    let mut cache: PlanCache<usize> = PlanCache::new(4);
    let mut kernels_after_first = 0;
    // Row counts of one kernel class (tile sizes are chosen per class, parameters per shape).
    for (i, &m) in [40usize, 33, 40, 65, 33, 40].iter().enumerate() {
        let plan = cache
            .get_or_build(m, || {
                let mut g = Graph::new();
                let x = g.input("x", &[m, 64], DType::F32)?;
                let wv = g.constant(&wc)?;
                let y = g.node1(Matmul::default(), &[x, wv])?;
                let z = g.gelu(y)?;
                g.output("z", z);
                backend.compile(Arc::new(g), &[])
            })
            .unwrap();
        let out = plan.run(&[&rng.tensor(&[m, 64], -1.0, 1.0)]).unwrap();
        assert_eq!(out["z"].shape(), &[m, 96]);
        if i == 0 {
            kernels_after_first = dev.kernel_count();
        }
    }
    assert_eq!(cache.builds(), 3, "one build per distinct shape");
    // New shapes reuse the compiled kernels and the uploaded weight.
    assert_eq!(dev.kernel_count(), kernels_after_first);
    assert!(wc.device_bytes() > 0);
}

/// Concat slots: producers write straight into their concat's output (no copy dispatches),
/// except a producer that reads a value already placed in the same output (a buffer cannot be
/// read and written in one dispatch), whose result is copied as before. Both match the CPU.
#[test]
fn concat_inputs_are_written_in_place_when_they_can_be() {
    let mut rng = Rng::new(21);
    // [1, C, 64] parts: 64 floats = 256 bytes per channel, so every slot offset is aligned.
    let mut g = Graph::new();
    let x = g.input("x", &[1, 4, 64], DType::F32).unwrap();
    let a = g.gelu(x).unwrap(); // placed
    let b = g.silu(x).unwrap(); // placed
    let c = g.add(b, x).unwrap(); // reads b, which lives in the output: copied
    let d = g.add(a, a).unwrap(); // reads a (in the output): copied
    let e = g.gelu(c).unwrap(); // reads c (its own buffer): placed
    let y = g.concat(&[a, b, c, d, e], 1).unwrap();
    let z = g.add(y, y).unwrap();
    g.output("z", z);
    let g = Arc::new(g);
    let xv = rng.tensor(&[1, 4, 64], -2.0, 2.0);
    let want = Backend::Cpu
        .compile(g.clone(), &[])
        .unwrap()
        .run(&[&xv])
        .unwrap();
    let mut gpu = Backend::Gpu(device()).compile(g, &[]).unwrap();
    // 6 elementwise nodes + the copies of c and d (a, b and e need none).
    assert_eq!(gpu.stats().dispatches, 8, "{:?}", gpu.stats());
    for _ in 0..2 {
        let got = gpu.run(&[&xv]).unwrap();
        common::compare("concat slots", &got["z"], &want["z"], 1e-5, 1e-6);
    }
    // Batch 2: the parts are strided inside the output, so every part is copied.
    let mut g = Graph::new();
    let x = g.input("x", &[2, 4, 64], DType::F32).unwrap();
    let a = g.gelu(x).unwrap();
    let b = g.silu(x).unwrap();
    let y = g.concat(&[a, b], 1).unwrap();
    g.output("y", y);
    let g = Arc::new(g);
    let xv = rng.tensor(&[2, 4, 64], -2.0, 2.0);
    let want = Backend::Cpu
        .compile(g.clone(), &[])
        .unwrap()
        .run(&[&xv])
        .unwrap();
    let mut gpu = Backend::Gpu(device()).compile(g, &[]).unwrap();
    assert_eq!(gpu.stats().dispatches, 4);
    let got = gpu.run(&[&xv]).unwrap();
    common::compare("strided concat", &got["y"], &want["y"], 1e-5, 1e-6);
}

/// Convolution chains: a texture convolution whose only reader is another texture convolution
/// writes that one's padded input texture itself, so the reader's pack dispatch and the buffer
/// between them are gone. Results equal the CPU and the unfused plan (`fuse_layouts` off).
#[test]
fn conv_chains_hand_their_textures_over() {
    use wgpu_infer::ops::conv2d::{Conv2d, ConvVariant};
    use wgpu_infer::{Act, DeviceOptions, KernelPolicy};
    let mut rng = Rng::new(23);
    let mut g = Graph::new();
    let x = g.input("x", &[1, 6, 19, 21], DType::F32).unwrap();
    let mut v = x;
    let mut c = 6;
    // 3x3 pad 1, 3x3 stride 2 pad 1, 1x1 pad 0: three edges of different layouts.
    for (i, (o, k, s, p)) in [(16, 3, 1, 1), (20, 3, 2, 1), (7, 1, 1, 0)]
        .into_iter()
        .enumerate()
    {
        let op = Conv2d {
            stride: [s, s],
            padding: [p, p],
            act: Act::Silu,
            variant: Some(ConvVariant::Texture),
            ..Default::default()
        };
        let w = g
            .constant_tensor(&format!("w{i}"), rng.tensor(&[o, c, k, k], -0.5, 0.5))
            .unwrap();
        let b = g
            .constant_tensor(&format!("b{i}"), rng.tensor(&[o], -1.0, 1.0))
            .unwrap();
        v = g.conv2d(op, v, w, Some(b), None).unwrap();
        c = o;
    }
    g.output("y", v);
    let g = Arc::new(g);
    let dev = device();
    if !dev.has_subgroups_of(8) {
        // This adapter cannot run the texture kernel: forcing it is a typed error.
        let e = Backend::Gpu(dev)
            .compile(g, &[])
            .err()
            .expect("forced texture conv");
        assert!(matches!(e, Error::Shape { .. }), "{e}");
        return;
    }
    let xv = rng.tensor(&[1, 6, 19, 21], -1.0, 1.0);
    let want = Backend::Cpu
        .compile(g.clone(), &[])
        .unwrap()
        .run(&[&xv])
        .unwrap();
    let mut fused = Backend::Gpu(dev.clone()).compile(g.clone(), &[]).unwrap();
    let opts = DeviceOptions {
        policy: KernelPolicy {
            fuse_layouts: false,
            ..dev.policy().clone()
        },
        ..DeviceOptions::from_env().unwrap()
    };
    let unfused_dev = wgpu_infer::Device::with_options(&opts).unwrap();
    let mut unfused = Backend::Gpu(unfused_dev).compile(g, &[]).unwrap();
    // One pack for the first convolution, then the three convolutions.
    assert_eq!(fused.stats().dispatches, 4, "{:?}", fused.stats());
    assert_eq!(unfused.stats().dispatches, 6, "{:?}", unfused.stats());
    assert!(
        fused.stats().intermediate_bytes < unfused.stats().intermediate_bytes,
        "{:?} vs {:?}",
        fused.stats(),
        unfused.stats()
    );
    for _ in 0..2 {
        let got = fused.run(&[&xv]).unwrap();
        common::compare("fused conv chain", &got["y"], &want["y"], 1e-4, 1e-5);
    }
    let got = unfused.run(&[&xv]).unwrap();
    common::compare("unfused conv chain", &got["y"], &want["y"], 1e-4, 1e-5);
}
