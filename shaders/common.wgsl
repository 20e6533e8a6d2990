// Shared helpers. Kernels that run over more than 65535 workgroups use a 2-D grid:
// the linear workgroup id is wg.x + wg.y * nwg.x.
fn linear_wg(wg: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wg.x + wg.y * nwg.x;
}
