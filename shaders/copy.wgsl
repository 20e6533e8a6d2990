// Strided copy of a rank <= 8 region: dst[dst_base + idx . dst_strides] =
// src[src_base + idx . src_strides] for every index idx of `shape`. Used by permute, slice,
// concat and split. Moves 32-bit words (T = u32), or 4 at a time (T = vec4<u32>) when every
// base and stride is a multiple of 4 and the innermost run is contiguous: lavapipe turns each
// storage access into a per-lane loop, so one vec4 access costs about what one word does.
//#default T u32
//#include "common.wgsl"

struct Params {
    n: u32,
    rank: u32,
    src_base: u32,
    dst_base: u32,
    shape: array<vec4<u32>, 2>,
    ss: array<vec4<u32>, 2>,
    ds: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> src: array<{{T}}>;
@group(0) @binding(1) var<storage, read_write> dst: array<{{T}}>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = linear_wg(wg, nwg) * 256u + li;
    if (i >= p.n) {
        return;
    }
    var rem = i;
    var is = p.src_base;
    var id = p.dst_base;
    for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
        let du = u32(d);
        let dim = p.shape[du / 4u][du % 4u];
        let k = rem % dim;
        rem = rem / dim;
        is = is + k * p.ss[du / 4u][du % 4u];
        id = id + k * p.ds[du / 4u][du % 4u];
    }
    dst[id] = src[is];
}
