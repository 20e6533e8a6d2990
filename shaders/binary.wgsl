// c = a (op) b with numpy broadcasting. Shapes are right-aligned to rank <= 8; a broadcast
// dimension has stride 0. SAME = 1 when a, b and c have identical shapes (no index math).
//#default OP 0
//#default SAME 0
//#include "common.wgsl"

struct Params {
    n: u32,
    rank: u32,
    _p0: u32,
    _p1: u32,
    shape: array<vec4<u32>, 2>,
    sa: array<vec4<u32>, 2>,
    sb: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn combine(x: f32, y: f32) -> f32 {
    switch {{OP}}u {
        case 1u: { return x - y; }
        case 2u: { return x * y; }
        case 3u: { return x / y; }
        default: { return x + y; }
    }
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = linear_wg(wg, nwg) * 256u + li;
    if (i >= p.n) {
        return;
    }
    if ({{SAME}}u == 1u) {
        c[i] = combine(a[i], b[i]);
        return;
    }
    var rem = i;
    var ia = 0u;
    var ib = 0u;
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        let dim = p.shape[du / 4u][du % 4u];
        let k = rem % dim;
        rem = rem / dim;
        ia = ia + k * p.sa[du / 4u][du % 4u];
        ib = ib + k * p.sb[du / 4u][du % 4u];
    }
    c[i] = combine(a[ia], b[ib]);
}
