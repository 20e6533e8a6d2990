// Embedding gather: out[t, :] = table[ids[t], :]. The table may be split into row chunks (each
// within the binding limit); a dispatch covers rows [row0, row0 + rows) and leaves the rest.
//#include "common.wgsl"

struct Params { tokens: u32, dim: u32, row0: u32, rows: u32, total: u32, }

//#default TH 0
//#if TH == 0
@group(0) @binding(0) var<storage, read> table: array<f32>;
fn table_at(i: u32) -> f32 {
    return table[i];
}
//#endif
//#if TH == 1
// f16 table: two halves per u32 (each bound range starts at an even element).
@group(0) @binding(0) var<storage, read> table: array<u32>;
fn table_at(i: u32) -> f32 {
    return unpack2x16float(table[i >> 1u])[i & 1u];
}
//#endif
//#if TH == 2
// q8 table chunk (rows row0 .. row0 + rows): int8 values, 4 per u32, then one f32 scale per 32
// values of a row.
@group(0) @binding(0) var<storage, read> table: array<u32>;
fn table_at(i: u32) -> f32 {
    let q = bitcast<i32>(table[i >> 2u] << (24u - 8u * (i & 3u))) >> 24u;
    let per_row = (p.dim + 31u) / 32u;
    let sc = (p.rows * p.dim + 3u) / 4u + (i / p.dim) * per_row + (i % p.dim) / 32u;
    return f32(q) * bitcast<f32>(table[sc]);
}
//#endif
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let i = linear_wg(wg, nwg) * 256u + li;
    if (i >= p.tokens * p.dim) {
        return;
    }
    let t = i / p.dim;
    let d = i % p.dim;
    let id = ids[t];
    if (id >= p.row0 && id < p.row0 + p.rows) {
        out[i] = table_at((id - p.row0) * p.dim + d);
    } else if (id >= p.total && p.row0 == 0u) {
        // Out-of-range ids give zeros, never stale memory (models validate ids beforehand).
        out[i] = 0.0;
    }
}
