// FMA throughput probe: 4 independent vec4 FMA chains, unrolled twice (more chains spill on
// 16-register AVX2 hosts under lavapipe). FLOPs per invocation =
// iters * 8 FMAs * 4 lanes * 2.
struct Params { iters: u32, }

@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(1) var<uniform> p: Params;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let seed = f32(gid.x) * 1e-7;
    var a0 = vec4<f32>(seed); var a1 = a0 + 0.1; var a2 = a0 + 0.2; var a3 = a0 + 0.3;
    let m = vec4<f32>(0.9999999);
    let c = vec4<f32>(1e-7);
    for (var i = 0u; i < p.iters; i = i + 1u) {
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
        a0 = fma(a0, m, c); a1 = fma(a1, m, c); a2 = fma(a2, m, c); a3 = fma(a3, m, c);
    }
    out[gid.x] = a0 + a1 + a2 + a3;
}
