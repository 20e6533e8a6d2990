// Register-blocked matmul for CPU-backed adapters (lavapipe). A workgroup of 8 invocations
// shares R rows of A, so A's addresses depend only on the workgroup id and loop counter:
// lavapipe loads them once and broadcasts, instead of one scalar load per lane. Each invocation
// owns 4 adjacent columns (a vec4 of B per k) and keeps R x vec4 accumulators in registers.
//
// BMODE 0: B packed as vec4 [K][Np/4] (N padded to 4, zeros; f16 pairs when BH = 1);
// 1: raw [K, N]; 2: raw [N, K]. BH = 2: q8 B (see below).
//#default R 8
//#default BMODE 0
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
//#if BMODE == 0
//#if BH == 0
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
//#endif
//#if BH == 1
// f16 B: 4 halves per vec2<u32>.
@group(0) @binding(1) var<storage, read> b: array<vec2<u32>>;
//#endif
//#if BH == 2
// q8 B: [K][Np/4] u32 (4 int8 columns each), then [ceil(K/32)][Np] f32 scales (as u32 bits).
@group(0) @binding(1) var<storage, read> b: array<u32>;
//#endif
//#endif
//#if BMODE != 0
@group(0) @binding(1) var<storage, read> b: array<f32>;
//#endif
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> res: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

const R: u32 = {{R}}u;

//#if BMODE == 0
fn load_b(base: u32, k: u32, n: u32) -> vec4<f32> {
    let np4 = (p.n + 3u) / 4u;
//#if BH == 0
    return b[base / 4u + k * np4 + n / 4u];
//#endif
//#if BH == 1
    let h = b[base / 4u + k * np4 + n / 4u];
    return vec4<f32>(unpack2x16float(h.x), unpack2x16float(h.y));
//#endif
//#if BH == 2
    let w = b[k * np4 + n / 4u];
    let q = bitcast<vec4<i32>>(vec4<u32>(w << 24u, w << 16u, w << 8u, w)) >> vec4<u32>(24u);
    let s = p.k * np4 + (k / 32u) * np4 * 4u + n;
    let sc = vec4<f32>(bitcast<f32>(b[s]), bitcast<f32>(b[s + 1u]), bitcast<f32>(b[s + 2u]),
                       bitcast<f32>(b[s + 3u]));
    return vec4<f32>(q) * sc;
//#endif
}
//#endif
//#if BMODE != 0
fn load_b(base: u32, k: u32, n: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (n + j < p.n) {
            if ({{BMODE}}u == 1u) {
                v[j] = b[base + k * p.n + n + j];
            } else {
                v[j] = b[base + (n + j) * p.k + k];
            }
        }
    }
    return v;
}
//#endif

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let batch = wg.z;
    let m0 = wg.y * R;
    let n = (wg.x * 8u + li) * 4u;
    let a_base = batch * p.a_bs;
    let b_base = batch * p.b_bs;
    var acc: array<vec4<f32>, R>;
    var rows: array<u32, R>;
    for (var r = 0u; r < R; r = r + 1u) {
        // Rows past the end repeat the last row: loads stay in bounds, stores are skipped.
        rows[r] = a_base + min(m0 + r, p.m - 1u) * p.k;
    }
    for (var k = 0u; k < p.k; k = k + 1u) {
        let bv = load_b(b_base, k, n);
        for (var r = 0u; r < R; r = r + 1u) {
            acc[r] = fma(vec4<f32>(a[rows[r] + k]), bv, acc[r]);
        }
    }
    for (var r = 0u; r < R; r = r + 1u) {
        let gm = m0 + r;
        if (gm >= p.m) {
            break;
        }
        for (var j = 0u; j < 4u; j = j + 1u) {
            let gn = n + j;
            if (gn >= p.n) {
                break;
            }
            var v = acc[r][j];
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
