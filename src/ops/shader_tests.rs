//! Every WGSL kernel is validated by naga without an adapter: with its defaults and with the
//! specialisations the ops use.

use crate::shaders::{compose, kernels, validate};

#[test]
fn every_kernel_validates_with_defaults() {
    let mut n = 0;
    for k in kernels() {
        let src = compose(k.name, &[]).unwrap_or_else(|e| panic!("{e}"));
        validate(k.name, &src).unwrap_or_else(|e| panic!("{e}"));
        n += 1;
    }
    assert!(n >= 12, "expected every kernel to be listed, found {n}");
}

#[test]
fn specialisations_validate() {
    let s = |v: &str| v.to_string();
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("copy.wgsl", vec![("T", s("vec4<u32>"))]),
        ("conv2d_pack.wgsl", vec![("V4", s("1"))]),
        ("upsample.wgsl", vec![("W2", s("1"))]),
        ("elementwise.wgsl", vec![("ACT", s("1"))]),
        ("elementwise.wgsl", vec![("ACT", s("2"))]),
        ("elementwise.wgsl", vec![("ACT", s("3"))]),
        ("binary.wgsl", vec![("OP", s("3")), ("SAME", s("1"))]),
        ("softmax.wgsl", vec![("WG", s("8")), ("RED", s("subgroup"))]),
        ("softmax.wgsl", vec![("WG", s("64")), ("RED", s("tree"))]),
        (
            "layernorm.wgsl",
            vec![("WG", s("32")), ("RED", s("subgroup"))],
        ),
        ("layernorm.wgsl", vec![("WG", s("256")), ("RED", s("tree"))]),
        (
            "matmul_tiled.wgsl",
            vec![
                ("TRANS_B", s("1")),
                ("ACT", s("1")),
                ("HAS_BIAS", s("1")),
                ("HAS_RES", s("1")),
            ],
        ),
        (
            "matmul_reg.wgsl",
            vec![("BMODE", s("0")), ("R", s("3")), ("HAS_BIAS", s("1"))],
        ),
        ("matmul_reg.wgsl", vec![("BMODE", s("1")), ("R", s("8"))]),
        (
            "matmul_reg.wgsl",
            vec![("BMODE", s("2")), ("R", s("1")), ("HAS_RES", s("1"))],
        ),
        (
            "attention.wgsl",
            vec![
                ("WG", s("64")),
                ("D", s("7")),
                ("CAUSAL", s("1")),
                ("HAS_MASK", s("1")),
                ("HAS_LEN", s("1")),
            ],
        ),
        (
            "conv2d.wgsl",
            vec![
                ("R", s("1")),
                ("ACT", s("3")),
                ("HAS_BIAS", s("1")),
                ("HAS_RES", s("1")),
            ],
        ),
    ];
    let mut cases = cases;
    cases.push(("matmul_pack_a.wgsl", vec![("VEC", s("1"))]));
    for nv in [1, 8, 9, 96, 384] {
        cases.push(("layernorm_v4.wgsl", crate::ops::layernorm::v4_defines(nv)));
    }
    use crate::ops::matmul::texture::BMode;
    for mode in [BMode::F32, BMode::F16, BMode::Q8] {
        for r in [8, 16, 32] {
            cases.push((
                "matmul_cw.wgsl",
                crate::ops::matmul::texture::cw_defines(r, mode),
            ));
        }
        for nb in [1, 2, 4] {
            cases.push((
                "matmul_gemv.wgsl",
                crate::ops::matmul::texture::gemv_defines(mode, nb),
            ));
        }
        let bh = (mode as u32).to_string();
        cases.push(("matmul_tiled.wgsl", vec![("BH", bh.clone())]));
        cases.push(("matmul_reg.wgsl", vec![("BH", bh.clone())]));
        cases.push(("embedding.wgsl", vec![("TH", bh)]));
    }
    for (name, defs) in cases {
        let src = compose(name, &defs).unwrap_or_else(|e| panic!("{e}"));
        validate(name, &src).unwrap_or_else(|e| panic!("{name} {defs:?}: {e}"));
    }
}

#[test]
fn broken_shader_gives_a_readable_error() {
    let err = validate("broken.wgsl", "fn main() { let x: f32 = 1u; }").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("broken.wgsl"), "{msg}");
    assert!(
        msg.contains("wgsl:1"),
        "naga's annotated location is kept: {msg}"
    );
}

#[test]
fn unknown_shader_is_an_error() {
    let err = compose("nope.wgsl", &[]).unwrap_err();
    assert!(err.to_string().contains("nope.wgsl"), "{err}");
}
