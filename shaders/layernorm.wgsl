// LayerNorm over the last axis: one workgroup per row; two-pass mean / variance.
//#default WG 64
//#default RED tree
const WG: u32 = {{WG}}u;
//#include "common.wgsl"
//#include "reduce_{{RED}}.wgsl"

struct Params { rows: u32, n: u32, eps: f32, }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = linear_wg(wg, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.n;
    let nf = f32(p.n);
    var s = 0.0;
    for (var i = li; i < p.n; i = i + WG) {
        s = s + x[base + i];
    }
    let mean = wg_sum(s, li) / nf;
    var v = 0.0;
    for (var i = li; i < p.n; i = i + WG) {
        let d = x[base + i] - mean;
        v = v + d * d;
    }
    let rstd = inverseSqrt(wg_sum(v, li) / nf + p.eps);
    for (var i = li; i < p.n; i = i + WG) {
        y[base + i] = (x[base + i] - mean) * rstd * gamma[i] + beta[i];
    }
}
