// Depthwise 2-D convolution (NCHW, groups = channels = outputs): each invocation computes 4
// adjacent outputs along W of one channel plane, every lane busy (the direct kernel keeps one
// lane in eight busy on depthwise problems). Per kernel row, the input span the 4 outputs read
// is loaded once into registers (zero outside the image), then every tap reads it from there.
// The kernel size, stride and dilation are compile-time constants. Storage buffers only: the
// portable variant. Weights are [C][kh*kw] f32 as in the checkpoint.
//#default KH 3
//#default KW 3
//#default SW 1
//#default DH 1
//#default DW 1
//#default ACT 0
//#default HAS_BIAS 0
//#default HAS_RES 0
//#include "activations.wgsl"

struct Params {
    c: u32, h: u32, w: u32, planes: u32,
    ho: u32, wo: u32, kh: u32, kw: u32,
    sh: u32, sw: u32, ph: u32, pw: u32,
    dh: u32, dw: u32, strips: u32, total: u32,
    // The logical grid of workgroups; the dispatch may fold it.
    gx: u32, gy: u32, gz: u32, _p: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> wt: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> res: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg3: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
    let lin = wg3.x + nwg.x * (wg3.y + nwg.y * wg3.z);
    let t = lin * 64u + li;
    if (t >= p.total) {
        return;
    }
    // t = ((plane * ho) + oy) * strips + strip
    let strip = t % p.strips;
    let oy = (t / p.strips) % p.ho;
    let plane = t / (p.strips * p.ho);
    let ch = plane % p.c;
    let ox0 = strip * 4u;
    let iy0 = i32(oy * p.sh) - i32(p.ph);
    let ix0 = i32(ox0 * {{SW}}u) - i32(p.pw);
    let xb = plane * p.h * p.w;
    let wb = ch * {{KH}}u * {{KW}}u;
    // The span of input columns the 4 outputs read.
    const SPAN: u32 = 3u * {{SW}}u + ({{KW}}u - 1u) * {{DW}}u + 1u;
    var win: array<f32, SPAN>;
    var acc = vec4<f32>(0.0);
    for (var ky = 0u; ky < {{KH}}u; ky = ky + 1u) {
        let iy = iy0 + i32(ky * {{DH}}u);
        if (iy < 0 || iy >= i32(p.h)) {
            continue;
        }
        let row = xb + u32(iy) * p.w;
        for (var i = 0u; i < SPAN; i = i + 1u) {
            let ix = ix0 + i32(i);
            win[i] = select(0.0, x[row + u32(clamp(ix, 0, i32(p.w) - 1))], ix >= 0 && ix < i32(p.w));
        }
        for (var kx = 0u; kx < {{KW}}u; kx = kx + 1u) {
            let wv = wt[wb + ky * {{KW}}u + kx];
            let tap = vec4<f32>(win[kx * {{DW}}u], win[{{SW}}u + kx * {{DW}}u],
                                win[2u * {{SW}}u + kx * {{DW}}u], win[3u * {{SW}}u + kx * {{DW}}u]);
            acc = fma(tap, vec4<f32>(wv), acc);
        }
    }
    let pixels = p.ho * p.wo;
    for (var j = 0u; j < 4u; j = j + 1u) {
        let ox = ox0 + j;
        if (ox >= p.wo) {
            break;
        }
        var v = acc[j];
        if ({{HAS_BIAS}}u == 1u) {
            v = v + bias[ch];
        }
        v = activate(v, {{ACT}}u);
        let yi = plane * pixels + oy * p.wo + ox;
        if ({{HAS_RES}}u == 1u) {
            v = v + res[yi];
        }
        y[yi] = v;
    }
}
