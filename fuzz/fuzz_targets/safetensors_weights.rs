//! Arbitrary bytes as a safetensors file: every `Weights` accessor a loader uses must return
//! `Ok` or a typed `Error::Weights`, never panic, and never allocate more than the input holds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wgpu_infer::weights::Weights;
use wgpu_infer::{DType, Error, Tensor};

/// Shape a loaded tensor has for a stored shape (scalars load as `[1]`).
fn loaded_shape(stored: &[usize]) -> Vec<usize> {
    if stored.is_empty() {
        vec![1]
    } else {
        stored.to_vec()
    }
}

/// A failed lookup must be a typed weights error whose message names the file.
fn check_err(e: &Error) {
    assert!(
        matches!(e, Error::Weights { .. }),
        "expected Error::Weights, got {e:?}"
    );
    let msg = e.to_string();
    assert!(msg.starts_with("fuzz.safetensors: "), "{msg}");
}

fn check_tensor(t: &Tensor, shape: &[usize], dtype: DType) {
    assert_eq!(t.shape(), shape);
    assert_eq!(t.dtype(), dtype);
    assert_eq!(t.numel(), shape.iter().product::<usize>());
    assert_eq!(t.as_bytes().len(), t.numel() * dtype.size());
    if dtype != DType::U32 {
        // The loader's contract: weights are finite, whatever dtype they are loaded as.
        if let Some(i) = t.to_f32_vec().iter().position(|v| !v.is_finite()) {
            panic!("loaded a non-finite weight at element {i} as {dtype}");
        }
    }
}

/// Everything a model loader does with one tensor name.
fn exercise(w: &Weights, name: &str, stored_shape: &[usize]) {
    let shape = loaded_shape(stored_shape);
    let f32_ok = match w.get(name) {
        Ok(t) => {
            check_tensor(&t, &shape, DType::F32);
            true
        }
        Err(e) => {
            check_err(&e);
            false
        }
    };
    match w.get_as(name, DType::F16) {
        Ok(t) => check_tensor(&t, &shape, DType::F16),
        Err(e) => check_err(&e),
    }
    match w.get_as(name, DType::U32) {
        Ok(_) => panic!("weights loaded as u32 through get_as"),
        Err(e) => check_err(&e),
    }
    match w.get_u32(name) {
        Ok(t) => check_tensor(&t, &shape, DType::U32),
        Err(e) => check_err(&e),
    }
    match w.get_shaped(name, &shape) {
        Ok(t) => check_tensor(&t, &shape, DType::F32),
        Err(e) => {
            assert!(
                !f32_ok,
                "get succeeded but get_shaped with its own shape failed: {e}"
            );
            check_err(&e);
        }
    }
    let mut wrong = shape.clone();
    wrong.push(1);
    let mut wrong2 = shape.clone();
    wrong2[0] ^= 1;
    for bad in [&wrong, &wrong2] {
        match w.get_shaped(name, bad) {
            Ok(t) => panic!(
                "shape {bad:?} accepted for a tensor of shape {:?}",
                t.shape()
            ),
            Err(e) => check_err(&e),
        }
    }
    let _ = w.get_shaped_as(name, &shape, DType::F16);
}

fuzz_target!(|data: &[u8]| {
    let mut w = match Weights::from_bytes("fuzz.safetensors", data.to_vec()) {
        Ok(w) => w,
        Err(e) => {
            check_err(&e);
            return;
        }
    };
    let list = w.list();
    let names = w.names();
    assert_eq!(names.len(), list.len());
    assert!(names.windows(2).all(|p| p[0] < p[1]), "names not sorted");
    let _ = wgpu_infer::models::detect_kind(&w);
    let total: usize = list.iter().map(|t| t.bytes).sum();
    assert!(
        total <= w.data_bytes(),
        "tensors claim more bytes than the file holds"
    );
    assert!(w.data_bytes() <= data.len());

    for t in &list {
        assert_eq!(w.resolve(&t.name).as_deref(), Some(t.name.as_str()));
        assert!(w.contains(&t.name));
        assert_eq!(w.shape(&t.name).as_deref(), Some(t.shape.as_slice()));
        exercise(&w, &t.name, &t.shape);
    }
    match w.get("\u{0}no such tensor") {
        Ok(_) => panic!("an absent name resolved"),
        Err(e) => {
            check_err(&e);
            assert!(e.to_string().contains("missing tensor"), "{e}");
        }
    }
    let _ = w.unread();

    // (A map, not w.list() per tensor: that made this target quadratic, ~50 execs/s.)
    let shapes: std::collections::HashMap<String, Vec<usize>> =
        list.iter().map(|t| (t.name.clone(), t.shape.clone())).collect();
    // A model prefix, as BERT checkpoints saved from BertFor* have.
    w.set_prefix("bert.");
    for t in &list {
        let short = t.name.strip_prefix("bert.").unwrap_or(&t.name);
        let r = w.resolve(short);
        assert!(
            r.is_some(),
            "'{short}' does not resolve with the prefix set"
        );
        assert!(w.contains(short));
        let stored = r.unwrap();
        let shape = w.shape(short).expect("resolved name has a shape");
        assert_eq!(shapes[&stored], shape);
        exercise(&w, short, &shape);
        // Legacy LayerNorm names (gamma / beta) resolve from the modern ones.
        for (old, new) in [(".gamma", ".weight"), (".beta", ".bias")] {
            if let Some(stem) = short.strip_suffix(old) {
                if short.contains("LayerNorm")
                    || short.contains("layer_norm")
                    || short.contains("ln")
                {
                    let modern = format!("{stem}{new}");
                    assert!(
                        w.contains(&modern),
                        "'{modern}' does not resolve to '{short}'"
                    );
                    let _ = w.get(&modern);
                }
            }
        }
    }
    let _ = wgpu_infer::models::detect_kind(&w);
    let unread = w.unread();
    assert!(unread.iter().all(|n| names.contains(n)));
});
