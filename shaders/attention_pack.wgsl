// Copies a [rows, 4 * w4] activation into an rgba32float texture (w4 x rows), one texel per
// invocation, for attention_tex.wgsl.
//#include "common.wgsl"

struct Params { rows: u32, w4: u32, }

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var dst: texture_storage_2d<rgba32float, write>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let t = linear_wg(wg, nwg) * 64u + li;
    if (t >= p.rows * p.w4) {
        return;
    }
    textureStore(dst, vec2<i32>(i32(t % p.w4), i32(t / p.w4)), src[t]);
}
