// LayerNorm for CPU-backed adapters (lavapipe), N % 4 == 0 and small N: one row per workgroup of
// one 8-lane subgroup. Every buffer access there is a per-lane loop, so the row is read once,
// as vec4 (lane l takes vec4s l, l+8, ...), into registers; mean and variance (two-pass, from
// the registers) come from subgroupAdd. The per-lane loads are generated unrolled ({{LOADS}}).
// RMS = 1: RMSNorm instead (no mean, no beta: x · rsqrt(mean(x²) + eps) · gamma).
//#default NV 1
//#default LOADS
//#default SUMS
//#default VARS
//#default STORES
//#default RMS 0
//#include "common.wgsl"

struct Params { rows: u32, n: u32, eps: f32, }

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> gamma: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> beta: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;

const NV: u32 = {{NV}}u;

fn put(base: u32, c: u32, d: vec4<f32>, rstd: f32) {
    if (c < NV) {
        if ({{RMS}}u == 1u) {
            y[base + c] = d * rstd * gamma[c];
        } else {
            y[base + c] = d * rstd * gamma[c] + beta[c];
        }
    }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = linear_wg(wg, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * NV;
{{LOADS}}
    // The mean sums x / n, so rows of values near f32's maximum do not overflow (PyTorch's
    // Welford mean does not either).
    let inv_n = 1.0 / f32(p.n);
    var mean = 0.0;
    if ({{RMS}}u == 0u) {
        var s = 0.0;
{{SUMS}}
        mean = subgroupAdd(s);
    }
    var v = 0.0;
{{VARS}}
    let rstd = inverseSqrt(subgroupAdd(v) / f32(p.n) + p.eps);
{{STORES}}
}
