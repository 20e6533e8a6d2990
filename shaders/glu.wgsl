// Gated linear unit: y[r, i] = act(x[r, i]) · x[r, n + i] for rows of 2n values (a fused
// gate / up projection), elementwise over the n-wide output.
//#default ACT 0
//#include "common.wgsl"
//#include "activations.wgsl"

struct Params { total: u32, n: u32, }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let e = linear_wg(wg, nwg) * 256u + li;
    if (e >= p.total) {
        return;
    }
    let r = e / p.n;
    let i = e % p.n;
    let g = x[r * 2u * p.n + i];
    y[e] = activate(g, {{ACT}}u) * x[r * 2u * p.n + p.n + i];
}
