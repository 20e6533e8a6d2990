// YOLOv8 Detect post-processing on the GPU: for every anchor of the three levels, the DFL box
// (softmax over REG bins per side, expectation) around the cell centre, scaled by the level's
// stride, as (cx, cy, w, h); and sigmoid class scores. out: [B, 4 + nc, A].
//#include "common.wgsl"
//#include "activations.wgsl"

struct Params {
    batch: u32, nc: u32, anchors: u32, reg: u32,
    w0: u32, h0: u32, w1: u32, h1: u32,
    w2: u32, h2: u32, s0: f32, s1: f32,
    s2: f32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var<storage, read> x0: array<f32>;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(2) var<storage, read> x2: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

// Channel `c` of cell `cell` in level `l` of image `b` (NCHW, 4*reg + nc channels).
fn load(l: u32, b: u32, c: u32, cell: u32, plane: u32) -> f32 {
    let i = (b * (4u * p.reg + p.nc) + c) * plane + cell;
    switch l {
        case 0u: { return x0[i]; }
        case 1u: { return x1[i]; }
        default: { return x2[i]; }
    }
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let t = linear_wg(wg, nwg) * 64u + li;
    if (t >= p.batch * p.anchors) {
        return;
    }
    let b = t / p.anchors;
    let a = t % p.anchors;
    let n0 = p.w0 * p.h0;
    let n1 = p.w1 * p.h1;
    var l = 0u;
    var cell = a;
    var w = p.w0;
    var plane = n0;
    var stride = p.s0;
    if (a >= n0 + n1) {
        l = 2u;
        cell = a - n0 - n1;
        w = p.w2;
        plane = p.w2 * p.h2;
        stride = p.s2;
    } else if (a >= n0) {
        l = 1u;
        cell = a - n0;
        w = p.w1;
        plane = n1;
        stride = p.s1;
    }
    let ax = f32(cell % w) + 0.5;
    let ay = f32(cell / w) + 0.5;
    var d: array<f32, 4>;
    for (var side = 0u; side < 4u; side = side + 1u) {
        var m = -3.402823e38;
        for (var j = 0u; j < p.reg; j = j + 1u) {
            m = max(m, load(l, b, side * p.reg + j, cell, plane));
        }
        var s = 0.0;
        var e = 0.0;
        for (var j = 0u; j < p.reg; j = j + 1u) {
            let q = exp(load(l, b, side * p.reg + j, cell, plane) - m);
            s = s + q;
            e = e + q * f32(j);
        }
        d[side] = e / s;
    }
    let x1v = ax - d[0];
    let y1v = ay - d[1];
    let x2v = ax + d[2];
    let y2v = ay + d[3];
    let base = b * (4u + p.nc) * p.anchors + a;
    out[base] = (x1v + x2v) * 0.5 * stride;
    out[base + p.anchors] = (y1v + y2v) * 0.5 * stride;
    out[base + 2u * p.anchors] = (x2v - x1v) * stride;
    out[base + 3u * p.anchors] = (y2v - y1v) * stride;
    for (var c = 0u; c < p.nc; c = c + 1u) {
        out[base + (4u + c) * p.anchors] = sigmoid_f32(load(l, b, 4u * p.reg + c, cell, plane));
    }
}
