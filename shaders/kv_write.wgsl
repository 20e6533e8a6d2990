// Writes rows into a persistent cache at a run-time row offset:
// cache[b, past + i, c] = src[b, i, col + c] for i < rows, c < width.
// `past` is read from a buffer so one compiled plan serves every decoding step.
//#include "common.wgsl"

struct Params { batch: u32, rows: u32, width: u32, src_stride: u32, col: u32, cap: u32, }

@group(0) @binding(0) var<storage, read_write> cache: array<f32>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> pos: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = linear_wg(wg, nwg) * 256u + li;
    if (i >= p.batch * p.rows * p.width) {
        return;
    }
    let c = i % p.width;
    let r = (i / p.width) % p.rows;
    let b = i / (p.width * p.rows);
    let row = pos[0] + r;
    if (row < p.cap) {
        cache[(b * p.cap + row) * p.width + c] = src[(b * p.rows + r) * p.src_stride + p.col + c];
    }
}
