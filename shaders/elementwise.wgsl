// y = act(x), elementwise over n values.
//#default ACT 0
//#include "common.wgsl"
//#include "activations.wgsl"

struct Params { n: u32, }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = linear_wg(wg, nwg) * 256u + li;
    if (i < p.n) {
        y[i] = activate(x[i], {{ACT}}u);
    }
}
