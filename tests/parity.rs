//! GPU ≡ CPU parity for every case of the op-case table (`wgpu_infer::ops::cases`): seeded
//! random inputs and awkward shapes, each within its tolerance of the CPU reference. Every group
//! runs twice: on the adapter's own kernel set, and under the portable kernel policy (no
//! subgroups, WebGPU's default limits: the variants the browser build runs). A case that forces
//! a kernel variant the device cannot run must fail to compile with a typed error instead.
//! Run with `--nocapture` to see the worst error per op.

mod common;
use common::{device, parity_on, portable_device, print_table_for};
use wgpu_infer::ops::cases;
use wgpu_infer::Backend;

/// Every group has a test below (a new group without one fails here).
const GROUPS: [&str; 13] = [
    "activations",
    "erf",
    "binary_broadcast",
    "softmax_layernorm_mean",
    "matmul_variants",
    "f16_weights",
    "q8_weights",
    "larger_than_one_binding",
    "embedding_copy_ops",
    "attention",
    "conv_pool_upsample",
    "long_reductions",
    cases::BENCH,
];

fn run_group(name: &str) {
    for (dev, tag) in [(device(), ""), (portable_device(), "portable ")] {
        let group = cases::group(name).unwrap_or_else(|| panic!("no case group '{name}'"));
        let mut ops: Vec<String> = Vec::new();
        let mut ran = 0;
        for case in group.cases().unwrap() {
            if !case.runs_on(&dev) {
                // The kernel refuses problems it cannot run, with a typed error.
                let e = Backend::Gpu(dev.clone())
                    .compile(case.graph.clone(), &[])
                    .err()
                    .unwrap_or_else(|| {
                        panic!("{} {}: an unsupported variant compiled", case.op, case.name)
                    });
                assert!(e.to_string().contains("cannot run this problem"), "{e}");
                continue;
            }
            let op = format!("{tag}{}", case.op);
            parity_on(
                &dev,
                &op,
                &case.name,
                case.graph.clone(),
                &case.feeds,
                case.abs,
                case.rel,
            );
            ran += 1;
            if !ops.contains(&op) {
                ops.push(op);
            }
        }
        assert!(ran > 0, "{tag}{name}: no case ran");
        for op in ops {
            print_table_for(&op);
        }
    }
}

#[test]
fn every_group_has_a_test() {
    let names: Vec<&str> = cases::groups().iter().map(|g| g.name).collect();
    assert_eq!(names, GROUPS, "add a #[test] for each new case group");
}

#[test]
fn activations() {
    run_group("activations");
}

/// erf itself must be accurate to 1e-6 everywhere: a dense grid over [-10, 10].
#[test]
fn erf_accuracy() {
    run_group("erf");
}

#[test]
fn binary_broadcast() {
    run_group("binary_broadcast");
}

#[test]
fn softmax_layernorm_mean() {
    run_group("softmax_layernorm_mean");
}

#[test]
fn matmul_variants() {
    run_group("matmul_variants");
}

/// f16 weights: every variant reads the half-precision layout and accumulates in f32.
#[test]
fn f16_weights() {
    run_group("f16_weights");
}

/// q8 weights: every variant dequantizes int8 blocks with their scales and accumulates in f32.
#[test]
fn q8_weights() {
    run_group("q8_weights");
}

/// A weight larger than one storage binding (GPT-2's tied 50257 x 768 embedding, 154 MB) is
/// split by columns for the matmul and bound in row ranges for the gather.
#[test]
fn larger_than_one_binding() {
    let [vocab, dim] = cases::BIG_TABLE;
    for dev in [device(), portable_device()] {
        assert!(
            (vocab * dim * 4) as u64 > dev.max_binding(),
            "this test expects the table to exceed the binding limit"
        );
    }
    run_group("larger_than_one_binding");
}

#[test]
fn embedding_copy_ops() {
    run_group("embedding_copy_ops");
}

#[test]
fn attention() {
    run_group("attention");
}

#[test]
fn conv_pool_upsample() {
    run_group("conv_pool_upsample");
}

/// lavapipe stops an invocation after 65535 loop iterations in total; kernels must stay well
/// below that for large reductions.
#[test]
fn long_reductions() {
    run_group("long_reductions");
}

/// The model-sized shapes the kernel benchmarks time.
#[test]
fn bench_shapes() {
    run_group(cases::BENCH);
}

/// The portable device really is the browser's variant set: no subgroups, WebGPU's default
/// compute limits.
#[test]
fn portable_policy_opens_a_browser_shaped_device() {
    let d = portable_device();
    assert!(!d.has_subgroups());
    let l = d.limits();
    assert!(l.max_compute_invocations_per_workgroup <= 256);
    assert!(l.max_storage_buffers_per_shader_stage <= 8);
    assert!(l.max_compute_workgroup_storage_size <= 16384);
}
