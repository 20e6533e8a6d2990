// Texture-tiled matmul for CPU-backed adapters (lavapipe): C = act(A · B + bias) + residual.
//
// On lavapipe a storage-buffer load inside a loop takes a slow per-lane path even when its
// address is uniform, while a read-only storage texture load is an inlined 8-lane gather. So
// both operands are read from rgba32float storage textures:
//   A: packed per call by matmul_pack_a.wgsl: texel (q*8 + row%8, row/8) = A[row, 4q..4q+3].
//   B: packed once at load: for column group g = blk*16 + c*8 + lane (columns 4g..4g+3) and row
//      k, texel ((k % KT)*16 + c*8 + lane, blk*KB + k/KT) = B[k, 4g..4g+3] (zero padded).
//   f16 B (BH = 1): rgba32uint, lane owns columns blk*64 + 8*lane .. +7 in one texel at
//      ((k % KT)*8 + lane, blk*KB + k/KT): half the bytes, same arithmetic (f32 accumulation).
// A workgroup is one subgroup of 8 lanes; it computes R rows x 64 columns. Each lane owns 8
// columns (2 vec4) and reads its own B texels; the R rows of A arrive as one texel per lane per
// 8 rows and are shared with subgroupBroadcast. The R*2 vec4 accumulators exceed the registers
// on purpose: LLVM spills them with single full-width moves, and each B gather is reused R
// times. The loop body is generated unrolled ({{BODY}}): loop overhead and masking are costly on
// lavapipe. The epilogue (bias, activation, residual) is selected at run time.
//#default R 8
//#default VEC 0
//#default ACT 0
//#default SETUP
//#default ACCS
//#default BODY
//#default STORES
//#default BH 0
//#default KX 16
//#default GL 1
//#default GD 8
//#include "activations.wgsl"

struct Params {
    m: u32, n: u32, k: u32, kt_shift: u32,
    kb: u32, act: u32, has_bias: u32, has_res: u32,
}

@group(0) @binding(0) var at: texture_storage_2d<rgba32float, read>;
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
//#if VEC == 1
// N % 4 == 0: outputs and residuals move as vec4.
@group(0) @binding(3) var<storage, read> res: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;
//#endif
//#if VEC == 0
@group(0) @binding(3) var<storage, read> res: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
//#endif
@group(0) @binding(5) var<uniform> p: Params;

// Bias of the 4 columns of group g (zero past N).
fn bias4(g: u32) -> vec4<f32> {
    var b = vec4<f32>(0.0);
    if (p.has_bias == 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            if (g * 4u + j < p.n) {
                b[j] = bias[g * 4u + j];
            }
        }
    }
    return b;
}

// Epilogue for row `row`, column group `g`: activation, residual, store. Bias is already in.
fn store(row: u32, g: u32, acc: vec4<f32>) {
    if (row >= p.m || g * 4u >= p.n) {
        return;
    }
    var v = activate4(acc, {{ACT}}u);
//#if VEC == 1
    let i = row * (p.n / 4u) + g;
    if (p.has_res == 1u) {
        v = v + res[i];
    }
    c[i] = v;
//#endif
//#if VEC == 0
    for (var j = 0u; j < 4u; j = j + 1u) {
        let col = g * 4u + j;
        if (col < p.n) {
            let i = row * p.n + col;
            var x = v[j];
            if (p.has_res == 1u) {
                x = x + res[i];
            }
            c[i] = x;
        }
    }
//#endif
}

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let m0 = wg.x * {{R}}u;
    let by0 = wg.y * p.kb;
    let ymax = i32((p.m + 7u) / 8u) - 1;
{{SETUP}}
{{ACCS}}
    let kq = (p.k + 3u) / 4u;
    // Uniform values are read before the loop (a buffer read inside it takes the slow path).
    let kts = p.kt_shift;
    let ktm = (1u << kts) - 1u;
    for (var q = 0u; q < kq; q = q + 1u) {
        let k = q * 4u;
        let bx = i32((k & ktm) * {{KX}}u + lid);
        let by = i32(by0 + (k >> kts));
        let ax = i32(q * 8u + lid);
{{BODY}}
    }
    let g0 = wg.y * 16u + {{GL}}u * lid;
    let bias0 = bias4(g0);
    let bias1 = bias4(g0 + {{GD}}u);
    // One epilogue in a loop (not R inlined copies): code size hurts the main loop's codegen.
    for (var r = 0u; r < {{R}}u; r = r + 1u) {
        var v0: vec4<f32>;
        var v1: vec4<f32>;
        switch r {
{{STORES}}
            default: {}
        }
        store(m0 + r, g0, v0 + bias0);
        store(m0 + r, g0 + {{GD}}u, v1 + bias1);
    }
}
