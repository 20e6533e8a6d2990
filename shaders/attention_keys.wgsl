// Attention for few query rows (decoding): one workgroup of 8 lanes (one subgroup) per
// (query row, head, batch), the keys spread across the lanes. Each lane keeps its own online
// softmax (m, l) and output accumulators; subgroupMax / subgroupAdd combine them at the end.
// Loop iterations per invocation are kv_len / 8 (the head dimension is unrolled, see
// attention.wgsl), so long caches stay under lavapipe's per-invocation loop limit.
//#default T f32
//#default DW 1
//#default SETUP
//#default BODY
//#default STORE
//#default CAUSAL 0
//#default HAS_MASK 0
//#default HAS_LEN 0
//#default GROUP 1

const NEG: f32 = -3.402823e38;

struct Params {
    batch: u32, heads: u32, sq: u32, skv: u32,
    q_stride: u32, k_stride: u32, v_stride: u32, qblocks: u32,
    q_col: u32, k_col: u32, v_col: u32, scale: f32,
}

@group(0) @binding(0) var<storage, read> q: array<{{T}}>;
@group(0) @binding(1) var<storage, read> k: array<{{T}}>;
@group(0) @binding(2) var<storage, read> v: array<{{T}}>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read> pos: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<{{T}}>;
@group(0) @binding(6) var<uniform> p: Params;
// The additive score bias [heads, sq, skv] (read only when the generated body adds it).
@group(0) @binding(7) var<storage, read> bias: array<f32>;

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = wg.x;
    let h = wg.y;
    let b = wg.z;
    // Grouped-query attention: query head h reads key / value head h / GROUP.
    let kvh = h / {{GROUP}}u;
    var past = 0u;
    var kv_len = p.skv;
    if ({{HAS_LEN}}u == 1u) {
        past = pos[0];
        kv_len = min(past + p.sq, p.skv);
    }
    var lim = kv_len;
    if ({{CAUSAL}}u == 1u) {
        lim = min(kv_len, past + i + 1u);
    }
    let qoff = (b * p.sq + i) * p.q_stride + p.q_col + h * {{DW}}u;
{{SETUP}}
    var m = NEG;
    var l = 0.0;
    for (var j0 = 0u; j0 < lim; j0 = j0 + 8u) {
        let j = j0 + li;
        let ok = j < lim;
        let jr = min(j, p.skv - 1u);
        let koff = (b * p.skv + jr) * p.k_stride + p.k_col + kvh * {{DW}}u;
        let voff = (b * p.skv + jr) * p.v_stride + p.v_col + kvh * {{DW}}u;
{{BODY}}
    }
    // Combine the 8 partial softmaxes.
    let mx = subgroupMax(m);
    let c = exp(m - mx);
    let inv = 1.0 / subgroupAdd(l * c);
    let ooff = ((b * p.sq + i) * p.heads + h) * {{DW}}u;
{{STORE}}
}
