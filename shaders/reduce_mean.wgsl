// Mean over the middle axis of [outer, n, inner] -> [outer, inner]; one invocation per output.
// The loop is unrolled by 8: lavapipe stops an invocation after 65535 loop iterations.
//#include "common.wgsl"

struct Params { outer: u32, n: u32, inner: u32, }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let o = linear_wg(wg, nwg) * 64u + li;
    if (o >= p.outer * p.inner) {
        return;
    }
    let a = o / p.inner;
    let c = o % p.inner;
    var s = 0.0;
    let base = a * p.n * p.inner + c;
    let n8 = p.n / 8u * 8u;
    for (var k = 0u; k < n8; k = k + 8u) {
        let i = base + k * p.inner;
        s = s + ((x[i] + x[i + p.inner]) + (x[i + 2u * p.inner] + x[i + 3u * p.inner]))
              + ((x[i + 4u * p.inner] + x[i + 5u * p.inner]) + (x[i + 6u * p.inner] + x[i + 7u * p.inner]));
    }
    for (var k = n8; k < p.n; k = k + 1u) {
        s = s + x[base + k * p.inner];
    }
    y[o] = s / f32(p.n);
}
