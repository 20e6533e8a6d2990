// 2-D convolution (NCHW) as an implicit GEMM in the register-blocked style of matmul_reg:
// a workgroup of 8 invocations shares R output pixels (so input loads are workgroup-uniform),
// each invocation owns 4 output channels of one group (a vec4 of packed weights per tap).
// Weights are packed [groups][cg*kh*kw][og4] as vec4 (og padded to a multiple of 4).
//#default R 8
//#default ACT 0
//#default HAS_BIAS 0
//#default HAS_RES 0
//#include "activations.wgsl"

struct Params {
    c: u32, h: u32, w: u32, o: u32,
    ho: u32, wo: u32, kh: u32, kw: u32,
    sh: u32, sw: u32, ph: u32, pw: u32,
    dh: u32, dw: u32, groups: u32, cg: u32,
    og: u32, og4: u32, _p0: u32, _p1: u32,
    // The logical grid (channel blocks, pixel blocks, batch x groups); the dispatch may fold it.
    gx: u32, gy: u32, gz: u32, _p2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> res: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

const R: u32 = {{R}}u;

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg3: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let lin = wg3.x + nwg.x * (wg3.y + nwg.y * wg3.z);
    if (lin >= p.gx * p.gy * p.gz) {
        return;
    }
    let wg = vec3<u32>(lin % p.gx, (lin / p.gx) % p.gy, lin / (p.gx * p.gy));
    let bi = wg.z / p.groups;
    let gi = wg.z % p.groups;
    let pixels = p.ho * p.wo;
    let m0 = wg.y * R;
    let oc4 = wg.x * 8u + li; // vec4 index of output channels within the group
    var acc: array<vec4<f32>, R>;
    var iy0: array<i32, R>;
    var ix0: array<i32, R>;
    for (var r = 0u; r < R; r = r + 1u) {
        let px = min(m0 + r, pixels - 1u);
        iy0[r] = i32((px / p.wo) * p.sh) - i32(p.ph);
        ix0[r] = i32((px % p.wo) * p.sw) - i32(p.pw);
    }
    let kdim = p.cg * p.kh * p.kw;
    let x_base = (bi * p.c + gi * p.cg) * p.h * p.w;
    let w_base = gi * kdim * p.og4;
    let lane_ok = oc4 < p.og4;
    let oc4c = min(oc4, p.og4 - 1u);
    var kk = 0u;
    for (var ci = 0u; ci < p.cg; ci = ci + 1u) {
        let plane = x_base + ci * p.h * p.w;
        for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
            for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
                let bv = wt[w_base + kk * p.og4 + oc4c];
                kk = kk + 1u;
                for (var r = 0u; r < R; r = r + 1u) {
                    let iy = iy0[r] + i32(ky * p.dh);
                    let ix = ix0[r] + i32(kx * p.dw);
                    if (iy >= 0 && iy < i32(p.h) && ix >= 0 && ix < i32(p.w)) {
                        let xv = x[plane + u32(iy) * p.w + u32(ix)];
                        acc[r] = fma(vec4<f32>(xv), bv, acc[r]);
                    }
                }
            }
        }
    }
    if (!lane_ok) {
        return;
    }
    for (var r = 0u; r < R; r = r + 1u) {
        let px = m0 + r;
        if (px >= pixels) {
            break;
        }
        for (var j = 0u; j < 4u; j = j + 1u) {
            let oc = oc4 * 4u + j;
            if (oc >= p.og) {
                break;
            }
            let o = gi * p.og + oc;
            var v = acc[r][j];
            if ({{HAS_BIAS}}u == 1u) {
                v = v + bias[o];
            }
            v = activate(v, {{ACT}}u);
            let yi = (bi * p.o + o) * pixels + px;
            if ({{HAS_RES}}u == 1u) {
                v = v + res[yi];
            }
            y[yi] = v;
        }
    }
}
