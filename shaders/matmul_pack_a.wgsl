// Packs A [M, K] (row-major storage buffer) into an rgba32float storage texture for
// matmul_cw: texel (q*8 + row % 8, row / 8) = A[row, 4q .. 4q+3], zero past K or M.
// One invocation per texel. With K % 4 == 0 (VEC = 1) the row is read as vec4: one per-lane
// buffer access instead of four.
//#default VEC 0
//#include "common.wgsl"

struct Params { m: u32, k: u32, kq: u32, rows8: u32, }

//#if VEC == 0
@group(0) @binding(0) var<storage, read> a: array<f32>;
//#endif
//#if VEC == 1
@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
//#endif
@group(0) @binding(1) var at: texture_storage_2d<rgba32float, write>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let t = linear_wg(wg, nwg) * 64u + li;
    if (t >= p.kq * p.rows8) {
        return;
    }
    let row = t / p.kq;
    let q = t % p.kq;
    let k = q * 4u;
    var v = vec4<f32>(0.0);
    if (row < p.m) {
//#if VEC == 1
        v = a[row * p.kq + q];
//#endif
//#if VEC == 0
        let base = row * p.k + k;
        for (var j = 0u; j < 4u; j = j + 1u) {
            if (k + j < p.k) {
                v[j] = a[base + j];
            }
        }
//#endif
    }
    textureStore(at, vec2<i32>(i32(q * 8u + row % 8u), i32(row / 8u)), v);
}
