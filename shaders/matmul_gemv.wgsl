// Matrix-vector product for decoding (one row of A) on CPU-backed adapters, reading B from the
// same tiled texture as matmul_cw.wgsl. A workgroup of 8 lanes covers 64 columns; each lane owns
// 8 of them. A is read straight from its storage buffer, 4 values per lane every 32 k (so the
// slow in-loop buffer path runs once per 32 k), and shared with subgroupBroadcast. The 8 k-steps
// of a chunk are generated unrolled (the BODY placeholder).
//#default BODY
//#default SETUP
//#default STORES
//#default NB 1
//#default BH 0
//#default KX 16
//#default GL 1
//#default GD 8
//#include "activations.wgsl"

struct Params {
    m: u32, n: u32, k: u32, kt_shift: u32,
    kb: u32, act: u32, has_bias: u32, has_res: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
//#if BH == 0
@group(0) @binding(1) var bt: texture_storage_2d<rgba32float, read>;
//#endif
//#if BH == 1
// f16 B: each texel holds 8 columns as 4 u32 f16 pairs (unpacked with unpack2x16float).
@group(0) @binding(1) var bt: texture_storage_2d<rgba32uint, read>;
//#endif
//#if BH == 2
// q8 B: rgba32uint, a texel holds 8 columns for 2 rows of k as int8 (4 per u32); the scale
// texture holds f32 scales per 32 rows (see pack_b_q8 in texture.rs).
@group(0) @binding(1) var bt: texture_storage_2d<rgba32uint, read>;
@group(0) @binding(6) var st: texture_storage_2d<rgba32float, read>;
fn dq8(w: u32, s: vec4<f32>) -> vec4<f32> {
    let q = bitcast<vec4<i32>>(vec4<u32>(w << 24u, w << 16u, w << 8u, w)) >> vec4<u32>(24u);
    return vec4<f32>(q) * s;
}
//#endif
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> res: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

fn store(row: u32, g: u32, v: vec4<f32>) {
    for (var j = 0u; j < 4u; j = j + 1u) {
        let col = g * 4u + j;
        if (col < p.n) {
            var x = v[j];
            if (p.has_bias == 1u) {
                x = x + bias[col];
            }
            x = activate(x, p.act);
            let i = row * p.n + col;
            if (p.has_res == 1u) {
                x = x + res[i];
            }
            c[i] = x;
        }
    }
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = wg.x;
    // NB column blocks of 64 per workgroup (a past-the-end block reads the last one, stores
    // nothing).
    let blk0 = wg.y * {{NB}}u;
    let nbt = (p.n + 63u) / 64u;
    let kq = (p.k + 3u) / 4u;
{{SETUP}}
    for (var q0 = 0u; q0 < kq; q0 = q0 + 8u) {
        // Lane l holds A[row, 4(q0 + l) .. 4(q0 + l) + 3].
        let ka = (q0 + lid) * 4u;
        var al = vec4<f32>(0.0);
        for (var j = 0u; j < 4u; j = j + 1u) {
            if (ka + j < p.k) {
                al[j] = a[row * p.k + ka + j];
            }
        }
{{BODY}}
    }
{{STORES}}
}
