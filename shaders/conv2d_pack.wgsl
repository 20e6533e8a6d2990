// Packs an NCHW activation into the padded NHWC4 texture conv2d_tex.wgsl reads: texel
// (x + pw, (b * c4 + cq) * hp + y + ph) = channels 4cq .. 4cq+3 of pixel (x, y) of image b
// (zero past C). The padding border is never written: textures start zeroed, so the
// convolution's zero padding needs no bounds checks.
//#include "common.wgsl"

struct Params { batch: u32, c: u32, h: u32, w: u32, c4: u32, hp: u32, ph: u32, pw: u32, }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var xt: texture_storage_2d<rgba32float, write>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let t = linear_wg(wg, nwg) * 64u + li;
    let plane = p.h * p.w;
    if (t >= p.batch * p.c4 * plane) {
        return;
    }
    let px = t % plane;
    let bq = t / plane;
    let cq = bq % p.c4;
    let b = bq / p.c4;
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j = j + 1u) {
        let ch = cq * 4u + j;
        if (ch < p.c) {
            v[j] = x[(b * p.c + ch) * plane + px];
        }
    }
    let xx = px % p.w;
    let yy = px / p.w;
    textureStore(xt, vec2<i32>(i32(xx + p.pw), i32(bq * p.hp + yy + p.ph)), v);
}
