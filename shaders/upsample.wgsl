// Nearest-neighbour upsampling of NCHW by integer factors. One invocation per output, or with
// W2 = 1 (width factor 2, even input width) one output vec4 from one vec2 load: storage
// accesses are per-lane loops on lavapipe, so fewer, wider ones win.
//#default W2 0
//#include "common.wgsl"

struct Params { nc: u32, h: u32, w: u32, sh: u32, sw: u32, }

//#if W2 == 0
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
//#endif
//#if W2 == 1
@group(0) @binding(0) var<storage, read> x: array<vec2<f32>>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;
//#endif
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let ho = p.h * p.sh;
    let wo = p.w * p.sw;
    let i = linear_wg(wg, nwg) * 64u + li;
//#if W2 == 1
    let wo4 = wo / 4u;
    if (i >= p.nc * ho * wo4) {
        return;
    }
    let plane4 = i / (ho * wo4);
    let oy4 = (i / wo4) % ho;
    let v = x[((plane4 * p.h + oy4 / p.sh) * p.w) / 2u + i % wo4];
    y[i] = vec4<f32>(v.x, v.x, v.y, v.y);
//#endif
//#if W2 == 0
    if (i >= p.nc * ho * wo) {
        return;
    }
    let plane = i / (ho * wo);
    let oy = (i / wo) % ho;
    let ox = i % wo;
    y[i] = x[(plane * p.h + oy / p.sh) * p.w + ox / p.sw];
//#endif
}
