// Fused multi-head attention, one query row per invocation: scores, scale, additive key mask,
// causal limit, online softmax and the weighted sum of V, with no scores tensor in memory.
// One workgroup per (batch, head, block of WG query rows). Every invocation of a workgroup
// reads the same key / value rows (uniform addresses; on GPUs they share cache lines).
//
// The body is generated (BODY placeholder): keys in blocks of 8 with the head dimension fully
// unrolled over vec4 (or f32) registers Q{d}, O{d}. Unrolling is not only for speed: lavapipe
// stops any invocation after 65535 loop iterations in total (all loops counted together), so
// per-element loops over D inside the key loop silently truncated long sequences.
//
// HAS_LEN: a u32 `past` is read at run time: keys valid are [0, past + sq), query i sits at
// absolute position past + i (KV-cache decoding). CAUSAL: query at position t sees keys <= t.
//#default WG 8
//#default T f32
//#default DW 1
//#default SETUP
//#default BODY
//#default STORE
//#default CAUSAL 0
//#default HAS_MASK 0
//#default HAS_LEN 0
//#default GROUP 1
//#include "common.wgsl"

const WG: u32 = {{WG}}u;
const NEG: f32 = -3.402823e38;

struct Params {
    batch: u32, heads: u32, sq: u32, skv: u32,
    q_stride: u32, k_stride: u32, v_stride: u32, qblocks: u32,
    q_col: u32, k_col: u32, v_col: u32, scale: f32,
}

// Offsets and strides are in units of T (f32, or vec4 when everything is 4-aligned).
@group(0) @binding(0) var<storage, read> q: array<{{T}}>;
@group(0) @binding(1) var<storage, read> k: array<{{T}}>;
@group(0) @binding(2) var<storage, read> v: array<{{T}}>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read> pos: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<{{T}}>;
@group(0) @binding(6) var<uniform> p: Params;
// The additive score bias [heads, sq, skv] (read only when the generated body adds it).
@group(0) @binding(7) var<storage, read> bias: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let id = linear_wg(wg, nwg);
    let qb = id % p.qblocks;
    let bh = id / p.qblocks;
    let h = bh % p.heads;
    let b = bh / p.heads;
    // Grouped-query attention: query head h reads key / value head h / GROUP.
    let kvh = h / {{GROUP}}u;
    if (b >= p.batch) {
        return;
    }
    let i = qb * WG + li;
    let iq = min(i, p.sq - 1u);
    var past = 0u;
    var kv_len = p.skv;
    if ({{HAS_LEN}}u == 1u) {
        past = pos[0];
        kv_len = min(past + p.sq, p.skv);
    }
    // This lane's key limit, and the workgroup-wide one (uniform loop bound).
    var lim = kv_len;
    var jend = kv_len;
    if ({{CAUSAL}}u == 1u) {
        lim = min(kv_len, past + iq + 1u);
        jend = min(kv_len, past + min(qb * WG + WG - 1u, p.sq - 1u) + 1u);
    }
    let qoff = (b * p.sq + iq) * p.q_stride + p.q_col + h * {{DW}}u;
{{SETUP}}
    var m = NEG;
    var l = 0.0;
    for (var j0 = 0u; j0 < jend; j0 = j0 + 8u) {
{{BODY}}
    }
    if (i < p.sq) {
        let inv = 1.0 / l;
        let ooff = ((b * p.sq + i) * p.heads + h) * {{DW}}u;
{{STORE}}
    }
}
