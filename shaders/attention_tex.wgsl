// Fused attention for CPU-backed adapters (lavapipe), reading Q, K and V from rgba32float
// textures (attention_pack.wgsl): texel (column / 4, token row). One workgroup (one subgroup of
// 8 lanes) per (block of R = 8 * RL query rows, head, batch).
//   scores: lane L owns query rows L, L + 8, ...; per block of 8 keys, lane k gathers key k's
//           row and every lane gets it through subgroupBroadcast; softmax state per lane row;
//   P.V:    lane L owns output texels L, L + 8, ... of the head for all R rows, gathers its
//           columns of the 8 value rows, and takes p from the row's lane by subgroupBroadcast.
// Everything inside the key loop is generated unrolled (BODY placeholder): one loop iteration
// per 8 keys keeps far below lavapipe's 65535-iterations-per-invocation cap.
//#default SETUP
//#default BODY
//#default STORE
//#default HAS_MASK 0
//#default HAS_LEN 0
//#default CAUSAL 0
//#default R 8

const NEG: f32 = -3.402823e38;

struct Params {
    batch: u32, heads: u32, sq: u32, skv: u32,
    qx0: u32, kx0: u32, vx0: u32, ostride4: u32,
    scale: f32, _p0: u32, _p1: u32, _p2: u32,
}

@group(0) @binding(0) var qt: texture_storage_2d<rgba32float, read>;
@group(0) @binding(1) var kt: texture_storage_2d<rgba32float, read>;
@group(0) @binding(2) var vt: texture_storage_2d<rgba32float, read>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read> pos: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(6) var<uniform> p: Params;
// The additive score bias [heads, sq, skv] (read only when the generated body adds it).
@group(0) @binding(7) var<storage, read> bias: array<f32>;

@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) L: u32) {
    let i0 = wg.x * {{R}}u;
    let h = wg.y;
    let b = wg.z;
    let sq = p.sq;
    let skv = p.skv;
    var past = 0u;
    var kv_len = skv;
    if ({{HAS_LEN}}u == 1u) {
        past = pos[0];
        kv_len = min(past + sq, skv);
    }
    var jend = kv_len;
    if ({{CAUSAL}}u == 1u) {
        jend = min(kv_len, past + min(i0 + {{R}}u - 1u, sq - 1u) + 1u);
    }
    let kv0 = b * skv;
{{SETUP}}
    for (var j0 = 0u; j0 < jend; j0 = j0 + 8u) {
{{BODY}}
    }
{{STORE}}
}
