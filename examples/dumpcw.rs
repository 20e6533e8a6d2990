fn main() {
    let s = wgpu_infer::shaders::compose(
        "matmul_cw.wgsl",
        &wgpu_infer::ops::matmul_cw::cw_defines(32),
    )
    .unwrap();
    print!("{s}");
}
