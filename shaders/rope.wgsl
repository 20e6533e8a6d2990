// Rotary position embeddings on the first `rotate` columns of x [batch, seq, width]: for each
// head of `d` columns, y[i] = x[i]·cos - x[i + d/2]·sin and y[i + d/2] = x[i + d/2]·cos +
// x[i]·sin (transformers' rotate_half), cos / sin from table row `past + t` (cos in its first
// d/2 columns, sin after). Other columns are copied. One invocation per element.
//#default HAS_PAST 0
//#include "common.wgsl"

struct Params { n: u32, seq: u32, width: u32, d: u32, rotate: u32, rows: u32, }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> table: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let e = linear_wg(wg, nwg) * 256u + li;
    if (e >= p.n) {
        return;
    }
    let c = e % p.width;
    if (c >= p.rotate) {
        y[e] = x[e];
        return;
    }
    var past = 0u;
    if ({{HAS_PAST}}u == 1u) {
        past = pos[0];
    }
    let t = (e / p.width) % p.seq;
    let row = min(past + t, p.rows - 1u) * p.d;
    let half = p.d / 2u;
    let i = c % p.d;
    if (i < half) {
        y[e] = x[e] * table[row + i] - x[e + half] * table[row + half + i];
    } else {
        let j = i - half;
        y[e] = x[e] * table[row + j] + x[e - half] * table[row + half + j];
    }
}
