// LayerNorm over the last axis: one workgroup per row; two-pass mean / variance. Loops step
// 4 elements per lane: lavapipe stops an invocation after 65535 loop iterations in total.
// RMS = 1: RMSNorm instead (no mean, no beta: x · rsqrt(mean(x²) + eps) · gamma).
//#default WG 64
//#default RED tree
//#default RMS 0
const WG: u32 = {{WG}}u;
//#include "common.wgsl"
//#include "reduce_{{RED}}.wgsl"

struct Params { rows: u32, n: u32, eps: f32, }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn shift(j: u32) -> f32 {
    if ({{RMS}}u == 1u) {
        return 0.0;
    }
    return beta[j];
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = linear_wg(wg, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.n;
    let nf = f32(p.n);
    let step = 4u * WG;
    let n4 = p.n / step * step;
    // The mean sums x / n, so rows of values near f32's maximum do not overflow (PyTorch's
    // Welford mean does not either).
    let inv = 1.0 / nf;
    var mean = 0.0;
    if ({{RMS}}u == 0u) {
        var s = 0.0;
        for (var i = li; i < n4; i = i + step) {
            s = s + (x[base + i] * inv + x[base + i + WG] * inv)
                + (x[base + i + 2u * WG] * inv + x[base + i + 3u * WG] * inv);
        }
        for (var i = n4 + li; i < p.n; i = i + WG) {
            s = s + x[base + i] * inv;
        }
        mean = wg_sum(s, li);
    }
    var v = 0.0;
    for (var i = li; i < n4; i = i + step) {
        let d0 = x[base + i] - mean;
        let d1 = x[base + i + WG] - mean;
        let d2 = x[base + i + 2u * WG] - mean;
        let d3 = x[base + i + 3u * WG] - mean;
        v = v + (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3);
    }
    for (var i = n4 + li; i < p.n; i = i + WG) {
        let d = x[base + i] - mean;
        v = v + d * d;
    }
    let rstd = inverseSqrt(wg_sum(v, li) / nf + p.eps);
    for (var i = li; i < n4; i = i + step) {
        for (var u = 0u; u < 4u; u = u + 1u) {
            let j = i + u * WG;
            y[base + j] = (x[base + j] - mean) * rstd * gamma[j] + shift(j);
        }
    }
    for (var i = n4 + li; i < p.n; i = i + WG) {
        y[base + i] = (x[base + i] - mean) * rstd * gamma[i] + shift(i);
    }
}
