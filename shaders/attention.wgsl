// Fused multi-head attention: scores, scale, additive mask, causal limit, softmax and the
// weighted sum of V in one pass with an online softmax (no scores tensor in memory).
// One workgroup per (batch, head, block of WG query rows); one query row per invocation.
// Every invocation of a workgroup reads the same key / value rows, so on lavapipe those loads
// are uniform (one load, broadcast); on GPUs they hit the same cache lines.
//
// HAS_LEN: a u32 `past` is read at run time: keys valid are [0, past + sq), query i sits at
// absolute position past + i (KV-cache decoding). CAUSAL: query at position t sees keys <= t.
//#default WG 8
//#default D 64
//#default CAUSAL 0
//#default HAS_MASK 0
//#default HAS_LEN 0
//#include "common.wgsl"

const WG: u32 = {{WG}}u;
const D: u32 = {{D}}u;
const BK: u32 = 16u;
const NEG: f32 = -3.402823e38;

struct Params {
    batch: u32, heads: u32, sq: u32, skv: u32,
    q_stride: u32, k_stride: u32, v_stride: u32, qblocks: u32,
    q_col: u32, k_col: u32, v_col: u32, scale: f32,
}

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> mask: array<f32>;
@group(0) @binding(4) var<storage, read> pos: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let id = linear_wg(wg, nwg);
    let qb = id % p.qblocks;
    let bh = id / p.qblocks;
    let h = bh % p.heads;
    let b = bh / p.heads;
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
    var qv: array<f32, D>;
    var acc: array<f32, D>;
    let qoff = (b * p.sq + iq) * p.q_stride + p.q_col + h * D;
    for (var d = 0u; d < D; d = d + 1u) {
        qv[d] = q[qoff + d] * p.scale;
        acc[d] = 0.0;
    }
    var m = NEG;
    var l = 0.0;
    for (var j0 = 0u; j0 < jend; j0 = j0 + BK) {
        var s: array<f32, BK>;
        var bm = NEG;
        for (var jj = 0u; jj < BK; jj = jj + 1u) {
            let j = j0 + jj;
            var sc = NEG;
            if (j < jend) {
                let koff = (b * p.skv + j) * p.k_stride + p.k_col + h * D;
                var dot = 0.0;
                for (var d = 0u; d < D; d = d + 1u) {
                    dot = fma(qv[d], k[koff + d], dot);
                }
                if ({{HAS_MASK}}u == 1u) {
                    dot = dot + mask[b * p.skv + j];
                }
                sc = dot;
                if (j < lim) {
                    bm = max(bm, sc);
                }
            }
            s[jj] = sc;
        }
        let m_new = max(m, bm);
        let corr = exp(m - m_new);
        l = l * corr;
        for (var d = 0u; d < D; d = d + 1u) {
            acc[d] = acc[d] * corr;
        }
        for (var jj = 0u; jj < BK; jj = jj + 1u) {
            let j = j0 + jj;
            if (j < jend) {
                let pj = select(0.0, exp(s[jj] - m_new), j < lim);
                l = l + pj;
                let voff = (b * p.skv + j) * p.v_stride + p.v_col + h * D;
                for (var d = 0u; d < D; d = d + 1u) {
                    acc[d] = fma(pj, v[voff + d], acc[d]);
                }
            }
        }
        m = m_new;
    }
    if (i < p.sq) {
        let inv = 1.0 / l;
        let ooff = ((b * p.sq + i) * p.heads + h) * D;
        for (var d = 0u; d < D; d = d + 1u) {
            out[ooff + d] = acc[d] * inv;
        }
    }
}
