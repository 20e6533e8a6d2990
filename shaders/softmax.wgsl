// Softmax over the last axis: one workgroup per row. Loops step 4 elements per lane: lavapipe
// stops an invocation after 65535 loop iterations in total.
//#default WG 64
//#default RED tree
const WG: u32 = {{WG}}u;
//#include "common.wgsl"
//#include "reduce_{{RED}}.wgsl"

struct Params { rows: u32, n: u32, }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let row = linear_wg(wg, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.n;
    let step = 4u * WG;
    let n4 = p.n / step * step;
    var m = -3.402823e38;
    for (var i = li; i < n4; i = i + step) {
        m = max(max(m, max(x[base + i], x[base + i + WG])), max(x[base + i + 2u * WG], x[base + i + 3u * WG]));
    }
    for (var i = n4 + li; i < p.n; i = i + WG) {
        m = max(m, x[base + i]);
    }
    m = wg_max(m, li);
    var s = 0.0;
    for (var i = li; i < n4; i = i + step) {
        s = s + (exp(x[base + i] - m) + exp(x[base + i + WG] - m))
              + (exp(x[base + i + 2u * WG] - m) + exp(x[base + i + 3u * WG] - m));
    }
    for (var i = n4 + li; i < p.n; i = i + WG) {
        s = s + exp(x[base + i] - m);
    }
    s = wg_sum(s, li);
    let inv = 1.0 / s;
    for (var i = li; i < n4; i = i + step) {
        for (var u = 0u; u < 4u; u = u + 1u) {
            let j = base + i + u * WG;
            y[j] = exp(x[j] - m) * inv;
        }
    }
    for (var i = n4 + li; i < p.n; i = i + WG) {
        y[base + i] = exp(x[base + i] - m) * inv;
    }
}
