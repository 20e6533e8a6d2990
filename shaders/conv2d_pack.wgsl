// Packs an NCHW activation into the padded NHWC4 texture conv2d_tex.wgsl reads: texel
// (x + pw, (b * c4 + cq) * hp + y + ph) = channels 4cq .. 4cq+3 of pixel (x, y) of image b
// (zero past C). The padding border is never written: textures start zeroed, so the
// convolution's zero padding needs no bounds checks.
// V4 = 1 (needs W % 4 == 0): one invocation packs 4 pixels of a row from 4 vec4 loads instead
// of 16 scalar ones (each storage load is a per-lane loop on lavapipe).
//#default V4 0
//#include "common.wgsl"

struct Params { batch: u32, c: u32, h: u32, w: u32, c4: u32, hp: u32, ph: u32, pw: u32, }

//#if V4 == 0
@group(0) @binding(0) var<storage, read> x: array<f32>;
//#endif
//#if V4 == 1
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
//#endif
@group(0) @binding(1) var xt: texture_storage_2d<rgba32float, write>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let t = linear_wg(wg, nwg) * 64u + li;
    let plane = p.h * p.w;
//#if V4 == 1
    let plane4 = plane / 4u;
    if (t >= p.batch * p.c4 * plane4) {
        return;
    }
    let q = t % plane4;
    let bq4 = t / plane4;
    let cq4 = bq4 % p.c4;
    let base = ((bq4 / p.c4) * p.c + cq4 * 4u) * plane4 + q;
    let z = vec4<f32>(0.0);
    let c0 = cq4 * 4u;
    let r0 = x[base];
    var r1 = z;
    var r2 = z;
    var r3 = z;
    if (c0 + 1u < p.c) {
        r1 = x[base + plane4];
    }
    if (c0 + 2u < p.c) {
        r2 = x[base + 2u * plane4];
    }
    if (c0 + 3u < p.c) {
        r3 = x[base + 3u * plane4];
    }
    let x0 = i32((q * 4u) % p.w + p.pw);
    let y0 = i32(bq4 * p.hp + (q * 4u) / p.w + p.ph);
    textureStore(xt, vec2<i32>(x0, y0), vec4<f32>(r0.x, r1.x, r2.x, r3.x));
    textureStore(xt, vec2<i32>(x0 + 1, y0), vec4<f32>(r0.y, r1.y, r2.y, r3.y));
    textureStore(xt, vec2<i32>(x0 + 2, y0), vec4<f32>(r0.z, r1.z, r2.z, r3.z));
    textureStore(xt, vec2<i32>(x0 + 3, y0), vec4<f32>(r0.w, r1.w, r2.w, r3.w));
//#endif
//#if V4 == 0
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
//#endif
}
