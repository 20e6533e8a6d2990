// Nearest-neighbour upsampling of NCHW by integer factors. One invocation per output.
//#include "common.wgsl"

struct Params { nc: u32, h: u32, w: u32, sh: u32, sw: u32, }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let ho = p.h * p.sh;
    let wo = p.w * p.sw;
    let i = linear_wg(wg, nwg) * 64u + li;
    if (i >= p.nc * ho * wo) {
        return;
    }
    let plane = i / (ho * wo);
    let oy = (i / wo) % ho;
    let ox = i % wo;
    y[i] = x[(plane * p.h + oy / p.sh) * p.w + ox / p.sw];
}
