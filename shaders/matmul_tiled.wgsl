// Workgroup-tiled matmul for real GPUs: a 64x64 output tile per workgroup of 16x16 invocations,
// each owning a 4x4 block; A and B tiles of depth 16 staged in workgroup memory.
//
// C[b, m, n_off + n] = act(sum_k A[b, m, k] * B[b, k, n] + bias[n_off + n]) + R[b, m, n_off + n]
// B is [K, N] row-major, or [N, K] when TRANS_B = 1.
//#default TRANS_B 0
//#default BH 0
//#default ACT 0
//#default HAS_BIAS 0
//#default HAS_RES 0
//#include "activations.wgsl"

struct Params {
    m: u32, n: u32, k: u32, ldc: u32,
    n_off: u32, a_bs: u32, b_bs: u32, c_bs: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
//#if BH == 0
@group(0) @binding(1) var<storage, read> b: array<f32>;
fn b_at(i: u32) -> f32 {
    return b[i];
}
//#endif
//#if BH == 1
// f16 B (packed constant weights): two halves per u32.
@group(0) @binding(1) var<storage, read> b: array<u32>;
fn b_at(i: u32) -> f32 {
    return unpack2x16float(b[i >> 1u])[i & 1u];
}
//#endif
//#if BH == 2
// q8 B (packed constant weights, TRANS_B = 0): [K][Np/4] u32 of 4 int8 columns each (Np = N
// padded to 4), then [ceil(K/32)][Np] f32 scales.
@group(0) @binding(1) var<storage, read> b: array<u32>;
fn b_q8(k: u32, n: u32) -> f32 {
    let np4 = (p.n + 3u) / 4u;
    let q = bitcast<i32>(b[k * np4 + n / 4u] << (24u - 8u * (n & 3u))) >> 24u;
    return f32(q) * bitcast<f32>(b[p.k * np4 + (k / 32u) * np4 * 4u + n]);
}
fn b_at(i: u32) -> f32 {
    return 0.0;
}
//#endif
//#if BH != 2
fn b_q8(k: u32, n: u32) -> f32 {
    return 0.0;
}
//#endif
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> res: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

const TM: u32 = 64u;
const TN: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> As: array<f32, 1024>; // [TK][TM]
var<workgroup> Bs: array<f32, 1024>; // [TK][TN]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let batch = wg.z;
    let m0 = wg.y * TM;
    let n0 = wg.x * TN;
    let a_base = batch * p.a_bs;
    let b_base = batch * p.b_bs;
    var acc: array<array<f32, 4>, 4>;
    for (var k0 = 0u; k0 < p.k; k0 = k0 + TK) {
        // Each invocation stages 4 elements of A and 4 of B (zero outside the matrix).
        for (var r = 0u; r < 4u; r = r + 1u) {
            let e = li + r * 256u;
            // A tile: e -> (mm = e / TK, kk = e % TK): consecutive invocations read along k.
            let mm = e / TK;
            let kk = e % TK;
            let gm = m0 + mm;
            let gk = k0 + kk;
            var av = 0.0;
            if (gm < p.m && gk < p.k) {
                av = a[a_base + gm * p.k + gk];
            }
            As[kk * TM + mm] = av;
            var bv = 0.0;
            if ({{TRANS_B}}u == 1u) {
                let nn = e / TK;
                let kb = e % TK;
                let gn = n0 + nn;
                let gkb = k0 + kb;
                if (gn < p.n && gkb < p.k) {
                    bv = b_at(b_base + gn * p.k + gkb);
                }
                Bs[kb * TN + nn] = bv;
            } else {
                let kb = e / TN;
                let nn = e % TN;
                let gn = n0 + nn;
                let gkb = k0 + kb;
                if (gn < p.n && gkb < p.k) {
                    if ({{BH}}u == 2u) {
                        bv = b_q8(gkb, gn);
                    } else {
                        bv = b_at(b_base + gkb * p.n + gn);
                    }
                }
                Bs[kb * TN + nn] = bv;
            }
        }
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk = kk + 1u) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i = i + 1u) {
                av[i] = As[kk * TM + lid.y * 4u + i];
                bv[i] = Bs[kk * TN + lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i = i + 1u) {
                for (var j = 0u; j < 4u; j = j + 1u) {
                    acc[i][j] = fma(av[i], bv[j], acc[i][j]);
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        let gm = m0 + lid.y * 4u + i;
        if (gm >= p.m) {
            continue;
        }
        for (var j = 0u; j < 4u; j = j + 1u) {
            let gn = n0 + lid.x * 4u + j;
            if (gn >= p.n) {
                continue;
            }
            var v = acc[i][j];
            if ({{HAS_BIAS}}u == 1u) {
                v = v + bias[p.n_off + gn];
            }
            v = activate(v, {{ACT}}u);
            let ci = batch * p.c_bs + gm * p.ldc + p.n_off + gn;
            if ({{HAS_RES}}u == 1u) {
                v = v + res[ci];
            }
            c[ci] = v;
        }
    }
}
