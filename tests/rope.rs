//! Rotary embeddings vs transformers (tests/fixtures/rope, tools/fixtures/gen_rope.py): the
//! inverse frequencies of RoPE types default, linear and llama3, the cos / sin table at near
//! and far positions, and refused configs.

mod common;
use wgpu_infer::models::nn::RopeScaling;
use wgpu_infer::ops::rope::rope_table;
use wgpu_infer::weights::Weights;

#[test]
fn inverse_frequencies_and_tables_match_transformers() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rope");
    let r = Weights::open(dir.join("reference.safetensors")).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap())
            .unwrap();
    let positions: Vec<usize> = r
        .get_u32("positions")
        .unwrap()
        .as_u32()
        .unwrap()
        .iter()
        .map(|&p| p as usize)
        .collect();
    for (i, c) in meta["cases"].as_array().unwrap().iter().enumerate() {
        let d = c["head_dim"].as_u64().unwrap() as usize;
        let theta = c["rope_theta"].as_f64().unwrap();
        let s = RopeScaling::from_hf(c.get("rope_scaling")).unwrap();
        let inv = s.inv_freq(d, theta);
        let want = r.get(&format!("inv_freq.{i}")).unwrap();
        let want = want.as_f32().unwrap();
        let worst_inv = inv
            .iter()
            .zip(want)
            .map(|(a, b)| ((a - b) / b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst_inv <= 1.2e-7,
            "case {i} ({s:?}): inv_freq off by {worst_inv} relative"
        );
        let table = rope_table(&inv, positions.last().unwrap() + 1, 1.0).unwrap();
        let t = table.as_f32().unwrap();
        let (cos, sin) = (
            r.get(&format!("cos.{i}")).unwrap(),
            r.get(&format!("sin.{i}")).unwrap(),
        );
        let (cos, sin) = (cos.as_f32().unwrap(), sin.as_f32().unwrap());
        let half = d / 2;
        let mut worst = 0.0f32;
        for (k, &p) in positions.iter().enumerate() {
            for j in 0..half {
                worst = worst.max((t[p * d + j] - cos[k * half + j]).abs());
                worst = worst.max((t[p * d + half + j] - sin[k * half + j]).abs());
            }
        }
        // torch's f32 cos / sin of angles past 1e5 rad are a few 1e-6 off the exact value of
        // the same f32 angle (ours, from f64).
        println!("PARITY rope case {i} ({s:?}): inv_freq rel {worst_inv:.2e}, cos/sin {worst:.2e}");
        assert!(worst <= 1e-5, "case {i}: cos/sin off by {worst}");
    }
}

#[test]
fn bad_rope_scaling_is_refused() {
    let bad = |v: serde_json::Value| RopeScaling::from_hf(Some(&v)).unwrap_err();
    let e = bad(serde_json::json!({"rope_type": "yarn", "factor": 4.0}));
    assert!(
        e.contains("'yarn' is not supported (supported: default, linear, llama3)"),
        "{e}"
    );
    let e = bad(serde_json::json!({"type": "linear"}));
    assert!(e.contains("needs a number 'factor'"), "{e}");
    let e = bad(serde_json::json!({"rope_type": "linear", "factor": -2.0}));
    assert!(e.contains("must be positive"), "{e}");
    assert_eq!(RopeScaling::from_hf(None).unwrap(), RopeScaling::Default);
}
