// 2-D max pooling (NCHW); padding behaves as -infinity. One invocation per output.
//#include "common.wgsl"

struct Params {
    nc: u32, h: u32, w: u32, ho: u32,
    wo: u32, k: u32, s: u32, pad: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = linear_wg(wg, nwg) * 64u + li;
    if (i >= p.nc * p.ho * p.wo) {
        return;
    }
    let plane = i / (p.ho * p.wo);
    let oy = (i / p.wo) % p.ho;
    let ox = i % p.wo;
    var m = -3.402823e38;
    for (var ky = 0u; ky < p.k; ky = ky + 1u) {
        let iy = i32(oy * p.s + ky) - i32(p.pad);
        if (iy < 0 || iy >= i32(p.h)) {
            continue;
        }
        for (var kx = 0u; kx < p.k; kx = kx + 1u) {
            let ix = i32(ox * p.s + kx) - i32(p.pad);
            if (ix < 0 || ix >= i32(p.w)) {
                continue;
            }
            m = max(m, x[(plane * p.h + u32(iy)) * p.w + u32(ix)]);
        }
    }
    y[i] = m;
}
