// 2-D convolution for CPU-backed adapters (lavapipe), the matmul_cw design applied to direct
// convolution: rows are R output pixels (raster order), columns are 32 output channels, one
// workgroup is one subgroup of 8 lanes and each lane owns 4 output channels.
//   input:   padded NHWC4 texture from conv2d_pack.wgsl (4 channels per texel, zero border);
//   weights: packed once, texel ((blk % F) * 32 + comp * 8 + lane, (blk / F) * KQ + q) holds
//            W[4g .. 4g+3, 4cq + comp, ky, kx] for channel quad g = blk * 8 + lane and
//            q = (ky * KW + kx) * c4 + cq (KQ = KH * KW * c4).
// Per step: R/8 input gathers shared with subgroupBroadcast, 4 weight gathers, R*4 vec4 FMAs.
// Output NCHW; with VEC = 1 (pixels % 4 == 0) four pixel rows are transposed in registers and
// stored as vec4 along pixels. With OUT_TEX = 1 the output is instead written as the padded
// NHWC4 texture the next convolution reads (the layout conv2d_pack.wgsl writes, with that
// convolution's padding): each lane's accumulator already holds 4 channels of one pixel, so
// a pixel is one texel store, and the next convolution's pack dispatch is gone. Lanes past
// the output channels are stored as 0 (the pack's zero fill), quads past them not at all.
//#default R 8
//#default OUT_TEX 0
//#default KH 1
//#default KW 1
//#default S 1
//#default ACT 0
//#default VEC 0
//#default SETUP
//#default ACCS
//#default BODY
//#default PICK
//#include "activations.wgsl"

struct Params {
    c4: u32, hp: u32, wo: u32, npix: u32,
    cout: u32, f: u32, has_bias: u32, has_res: u32,
    // The logical grid (pixel blocks, channel blocks, batch); the dispatch may fold it.
    gx: u32, gy: u32, gz: u32, _p0: u32,
    // OUT_TEX = 1: the output texture's padding and padded height per channel quad.
    oph: u32, opw: u32, ohp: u32, _p1: u32,
}

@group(0) @binding(0) var xt: texture_storage_2d<rgba32float, read>;
@group(0) @binding(1) var wt: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
//#if VEC == 1
@group(0) @binding(3) var<storage, read> res: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;
//#endif
//#if VEC == 0
@group(0) @binding(3) var<storage, read> res: array<f32>;
//#if OUT_TEX == 0
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
//#endif
//#if OUT_TEX == 1
@group(0) @binding(4) var yt: texture_storage_2d<rgba32float, write>;
//#endif
//#endif
@group(0) @binding(5) var<uniform> p: Params;

const R: u32 = {{R}}u;
const KH: u32 = {{KH}}u;
const KW: u32 = {{KW}}u;
const S: u32 = {{S}}u;

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let lin = wg.x + nwg.x * (wg.y + nwg.y * wg.z);
    if (lin >= p.gx * p.gy * p.gz) {
        return;
    }
    let m0 = (lin % p.gx) * R;
    let blk = (lin / p.gx) % p.gy;
    let b = lin / (p.gx * p.gy);
    let c4 = p.c4;
    let hp = p.hp;
    let npix = p.npix;
    let wo = p.wo;
    let kq = KH * KW * c4;
    let wx0 = i32((blk % p.f) * 32u + lid);
    let wy0 = i32((blk / p.f) * kq);
{{SETUP}}
{{ACCS}}
    for (var ky = 0u; ky < KH; ky = ky + 1u) {
        for (var kx = 0u; kx < KW; kx = kx + 1u) {
            let tap = (ky * KW + kx) * c4;
            for (var cq = 0u; cq < c4; cq = cq + 1u) {
                let yo = i32(cq * hp + ky);
                let xo = i32(kx);
                let wy = wy0 + i32(tap + cq);
{{BODY}}
            }
        }
    }
    // Epilogue: bias, activation, residual, NCHW stores; looped to keep the code small.
    let g = blk * 8u + lid;
    let o = g * 4u;
    var bv = vec4<f32>(0.0);
    if (p.has_bias == 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            if (o + j < p.cout) {
                bv[j] = bias[o + j];
            }
        }
    }
//#if VEC == 1
    let np4 = npix / 4u;
    for (var r4 = 0u; r4 < R / 4u; r4 = r4 + 1u) {
        var v0: vec4<f32>;
        var v1: vec4<f32>;
        var v2: vec4<f32>;
        var v3: vec4<f32>;
        switch r4 {
{{PICK}}
            default: {}
        }
        v0 = activate4(v0 + bv, {{ACT}}u);
        v1 = activate4(v1 + bv, {{ACT}}u);
        v2 = activate4(v2 + bv, {{ACT}}u);
        v3 = activate4(v3 + bv, {{ACT}}u);
        let px4 = m0 / 4u + r4;
        if (px4 < np4) {
            for (var j = 0u; j < 4u; j = j + 1u) {
                if (o + j < p.cout) {
                    let i = ((b * p.cout + o + j) * np4) + px4;
                    var v = vec4<f32>(v0[j], v1[j], v2[j], v3[j]);
                    if (p.has_res == 1u) {
                        v = v + res[i];
                    }
                    y[i] = v;
                }
            }
        }
    }
//#endif
//#if VEC == 0
//#if OUT_TEX == 1
    let co4 = (p.cout + 3u) / 4u;
    if (g >= co4) {
        return;
    }
    for (var r4 = 0u; r4 < R / 4u; r4 = r4 + 1u) {
        var v0: vec4<f32>;
        var v1: vec4<f32>;
        var v2: vec4<f32>;
        var v3: vec4<f32>;
        switch r4 {
{{PICK}}
            default: {}
        }
        for (var rr = 0u; rr < 4u; rr = rr + 1u) {
            let px = m0 + r4 * 4u + rr;
            if (px < npix) {
                var v = v0;
                if (rr == 1u) { v = v1; }
                if (rr == 2u) { v = v2; }
                if (rr == 3u) { v = v3; }
                v = activate4(v + bv, {{ACT}}u);
                for (var j = 0u; j < 4u; j = j + 1u) {
                    if (o + j < p.cout) {
                        if (p.has_res == 1u) {
                            v[j] = v[j] + res[(b * p.cout + o + j) * npix + px];
                        }
                    } else {
                        v[j] = 0.0;
                    }
                }
                let tx = i32(px % wo + p.opw);
                let ty = i32((b * co4 + g) * p.ohp + px / wo + p.oph);
                textureStore(yt, vec2<i32>(tx, ty), v);
            }
        }
    }
//#endif
//#if OUT_TEX == 0
    for (var r4 = 0u; r4 < R / 4u; r4 = r4 + 1u) {
        var v0: vec4<f32>;
        var v1: vec4<f32>;
        var v2: vec4<f32>;
        var v3: vec4<f32>;
        switch r4 {
{{PICK}}
            default: {}
        }
        for (var rr = 0u; rr < 4u; rr = rr + 1u) {
            let px = m0 + r4 * 4u + rr;
            if (px < npix) {
                var v = v0;
                if (rr == 1u) { v = v1; }
                if (rr == 2u) { v = v2; }
                if (rr == 3u) { v = v3; }
                v = activate4(v + bv, {{ACT}}u);
                for (var j = 0u; j < 4u; j = j + 1u) {
                    if (o + j < p.cout) {
                        let i = (b * p.cout + o + j) * npix + px;
                        var x = v[j];
                        if (p.has_res == 1u) {
                            x = x + res[i];
                        }
                        y[i] = x;
                    }
                }
            }
        }
    }
//#endif
//#endif
}
