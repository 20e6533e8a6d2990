//! GPU ≡ CPU parity for every op over seeded random inputs and awkward shapes.
//! Run with `--nocapture` to see the worst error per op.

mod common;
use common::{parity, parity_tol, Rng};
use wgpu_infer::ops::attention::Attention;
use wgpu_infer::ops::conv2d::Conv2d;
use wgpu_infer::ops::matmul::Matmul;
use wgpu_infer::{Act, DType, Graph, MatmulVariant, Tensor};

const SIZES: [usize; 10] = [1, 3, 7, 17, 63, 65, 127, 129, 1000, 2];

fn report(op: &str) {
    common::print_table_for(op);
}

fn unary_case(act: Act, shape: &[usize], rng: &mut Rng, lo: f32, hi: f32) {
    let mut g = Graph::new();
    let x = g.input("x", shape, DType::F32).unwrap();
    let y = g.activation(x, act).unwrap();
    g.output("y", y);
    parity(
        &format!("{act:?}"),
        &format!("{shape:?}"),
        g,
        &[rng.tensor(shape, lo, hi)],
    );
}

#[test]
fn activations() {
    let mut rng = Rng::new(1);
    for act in [
        Act::GeluErf,
        Act::GeluTanh,
        Act::Silu,
        Act::Sigmoid,
        Act::Relu,
        Act::Tanh,
    ] {
        for &n in &SIZES {
            unary_case(act, &[n], &mut rng, -8.0, 8.0);
        }
        unary_case(act, &[3, 17, 65], &mut rng, -30.0, 30.0);
        report(&format!("{act:?}"));
    }
}

/// erf itself must be accurate to 1e-6 everywhere: a dense grid over [-10, 10].
#[test]
fn erf_accuracy() {
    let n = 200_001;
    let xs: Vec<f32> = (0..n)
        .map(|i| -10.0 + 20.0 * i as f32 / (n - 1) as f32)
        .collect();
    let mut g = Graph::new();
    let x = g.input("x", &[n], DType::F32).unwrap();
    let y = g.activation(x, Act::Erf).unwrap();
    g.output("y", y);
    parity_tol(
        "erf",
        "dense grid [-10, 10]",
        g,
        &[Tensor::from_f32(&[n], xs).unwrap()],
        1e-6,
        0.0,
    );
    report("erf");
}

#[test]
fn binary_broadcast() {
    use wgpu_infer::ops::binary::BinaryOp;
    let mut rng = Rng::new(2);
    let cases: Vec<(Vec<usize>, Vec<usize>)> = vec![
        (vec![1], vec![1]),
        (vec![1000], vec![1000]),
        (vec![17, 63], vec![63]),
        (vec![3, 1, 65], vec![7, 1]),
        (vec![2, 3, 17, 1], vec![1, 3, 1, 129]),
        (vec![127], vec![1]),
        (vec![1, 7], vec![65, 1]),
    ];
    for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div] {
        for (a, b) in &cases {
            let mut g = Graph::new();
            let x = g.input("a", a, DType::F32).unwrap();
            let y = g.input("b", b, DType::F32).unwrap();
            let z = g.binary(op, x, y).unwrap();
            g.output("z", z);
            let bt = if op == BinaryOp::Div {
                rng.tensor(b, 0.5, 2.0)
            } else {
                rng.tensor(b, -1.0, 1.0)
            };
            parity(
                &format!("{op:?}"),
                &format!("{a:?} . {b:?}"),
                g,
                &[rng.tensor(a, -1.0, 1.0), bt],
            );
        }
        report(&format!("{op:?}"));
    }
}

#[test]
fn softmax_layernorm_mean() {
    let mut rng = Rng::new(3);
    for &n in &SIZES {
        for rows in [1usize, 3, 17] {
            let mut g = Graph::new();
            let x = g.input("x", &[rows, n], DType::F32).unwrap();
            let y = g.softmax(x).unwrap();
            g.output("y", y);
            parity(
                "softmax",
                &format!("[{rows}, {n}]"),
                g,
                &[rng.tensor(&[rows, n], -10.0, 10.0)],
            );

            let mut g = Graph::new();
            let x = g.input("x", &[rows, n], DType::F32).unwrap();
            let gm = g.input("g", &[n], DType::F32).unwrap();
            let bt = g.input("b", &[n], DType::F32).unwrap();
            let y = g.layernorm(x, gm, bt, 1e-5).unwrap();
            g.output("y", y);
            parity(
                "layernorm",
                &format!("[{rows}, {n}]"),
                g,
                &[
                    rng.tensor(&[rows, n], -3.0, 5.0),
                    rng.tensor(&[n], 0.5, 1.5),
                    rng.tensor(&[n], -1.0, 1.0),
                ],
            );
        }
    }
    for (shape, axis) in [
        (vec![3usize, 17, 65], 1isize),
        (vec![1000], 0),
        (vec![7, 129], -1),
        (vec![2, 63, 3], 0),
    ] {
        let mut g = Graph::new();
        let x = g.input("x", &shape, DType::F32).unwrap();
        let y = g.mean(x, axis).unwrap();
        g.output("y", y);
        parity(
            "mean",
            &format!("{shape:?} axis {axis}"),
            g,
            &[rng.tensor(&shape, -1.0, 1.0)],
        );
    }
    // Widths of the vec4 register kernel (N % 4 == 0, up to 1536) and just past it.
    for n in [4usize, 32, 36, 384, 768, 1532, 1536, 1540] {
        let mut g = Graph::new();
        let x = g.input("x", &[5, n], DType::F32).unwrap();
        let gm = g.input("g", &[n], DType::F32).unwrap();
        let bt = g.input("b", &[n], DType::F32).unwrap();
        let y = g.layernorm(x, gm, bt, 1e-12).unwrap();
        g.output("y", y);
        parity(
            "layernorm",
            &format!("[5, {n}]"),
            g,
            &[
                rng.tensor(&[5, n], -3.0, 5.0),
                rng.tensor(&[n], 0.5, 1.5),
                rng.tensor(&[n], -1.0, 1.0),
            ],
        );
    }
    report("softmax");
    report("layernorm");
    report("mean");
}

fn matmul_case(
    v: MatmulVariant,
    m: usize,
    k: usize,
    n: usize,
    opts: (bool, bool, Act, bool, bool, usize),
    rng: &mut Rng,
) {
    let (trans, bias, act, res, constant, batch) = opts;
    let mut g = Graph::new();
    let a_shape = if batch > 1 {
        vec![batch, m, k]
    } else {
        vec![m, k]
    };
    let bt_shape = if trans { vec![n, k] } else { vec![k, n] };
    let b_shape = if batch > 1 && !constant {
        let mut s = vec![batch];
        s.extend(&bt_shape);
        s
    } else {
        bt_shape.clone()
    };
    let mut feeds = vec![];
    let a = g.input("a", &a_shape, DType::F32).unwrap();
    feeds.push(rng.tensor(&a_shape, -1.0, 1.0));
    let b = if constant {
        g.constant_tensor("w", rng.tensor(&b_shape, -1.0, 1.0))
            .unwrap()
    } else {
        feeds.push(rng.tensor(&b_shape, -1.0, 1.0));
        g.input("b", &b_shape, DType::F32).unwrap()
    };
    let mut inputs = vec![a, b];
    if bias {
        inputs.push(g.input("bias", &[n], DType::F32).unwrap());
        feeds.push(rng.tensor(&[n], -1.0, 1.0));
    }
    if res {
        let mut o = a_shape.clone();
        *o.last_mut().unwrap() = n;
        inputs.push(g.input("res", &o, DType::F32).unwrap());
        feeds.push(rng.tensor(&o, -1.0, 1.0));
    }
    let c = g
        .node1(
            Matmul {
                trans_b: trans,
                act,
                bias,
                residual: res,
                variant: Some(v),
            },
            &inputs,
        )
        .unwrap();
    g.output("c", c);
    let rows = if batch > 1 && constant { batch * m } else { m };
    let applicable = v.supports(&common::device(), rows, k, n, constant);
    if !applicable {
        // The kernel refuses problems it cannot run, with a typed error.
        let e = wgpu_infer::Backend::Gpu(common::device())
            .compile(std::sync::Arc::new(g), &[])
            .err()
            .expect("unsupported problem must fail to compile");
        assert!(e.to_string().contains("cannot run this problem"), "{e}");
        return;
    }
    parity(
        &format!("matmul/{}", v.name()),
        &format!(
            "b{batch} {m}x{k}x{n} trans={trans} bias={bias} act={act:?} res={res} const={constant}"
        ),
        g,
        &feeds,
    );
}

#[test]
fn matmul_variants() {
    let mut rng = Rng::new(4);
    let shapes = [
        (1, 1, 1),
        (3, 7, 17),
        (17, 65, 63),
        (63, 127, 129),
        (65, 3, 1000),
        (127, 1000, 65),
        (129, 17, 7),
        (1000, 63, 3),
        (1, 768, 129),
        (2, 129, 1000),
        (8, 65, 17),
        (9, 17, 65),
    ];
    for v in MatmulVariant::ALL {
        for (i, &(m, k, n)) in shapes.iter().enumerate() {
            let trans = i % 2 == 1;
            let constant = i % 3 != 2;
            matmul_case(
                v,
                m,
                k,
                n,
                (trans, false, Act::None, false, constant, 1),
                &mut rng,
            );
        }
        // Epilogues and batching.
        matmul_case(
            v,
            17,
            63,
            65,
            (false, true, Act::GeluErf, false, true, 1),
            &mut rng,
        );
        matmul_case(
            v,
            65,
            17,
            63,
            (true, true, Act::GeluTanh, true, true, 1),
            &mut rng,
        );
        matmul_case(
            v,
            7,
            3,
            129,
            (false, true, Act::Silu, true, false, 1),
            &mut rng,
        );
        matmul_case(
            v,
            17,
            65,
            7,
            (true, false, Act::None, false, false, 3),
            &mut rng,
        );
        matmul_case(
            v,
            17,
            65,
            7,
            (false, true, Act::None, true, true, 3),
            &mut rng,
        );
        matmul_case(
            v,
            63,
            129,
            3,
            (false, false, Act::None, false, false, 7),
            &mut rng,
        );
        report(&format!("matmul/{}", v.name()));
    }
}

/// f16 weights (matmul B and embedding tables): every variant reads the half-precision layout
/// and accumulates in f32, so the GPU must match the CPU reference (which upcasts the same f16
/// values) as tightly as in f32. Odd sizes put halves across u32 and texel boundaries.
#[test]
fn f16_weights() {
    let mut rng = Rng::new(12);
    let shapes = [
        (1, 1, 1),
        (3, 7, 17),
        (17, 65, 63),
        (1, 768, 129),
        (63, 127, 129),
        (65, 3, 1000),
        (33, 1000, 65),
    ];
    for v in MatmulVariant::ALL {
        for (i, &(m, k, n)) in shapes.iter().enumerate() {
            let trans = i % 2 == 0;
            let (bias, act, res) = (i % 3 == 1, [Act::None, Act::GeluErf][i % 2], i % 4 == 3);
            let mut g = Graph::new();
            let a = g.input("a", &[m, k], DType::F32).unwrap();
            let bs = if trans { [n, k] } else { [k, n] };
            let w = rng.tensor(&bs, -1.0, 1.0).to_dtype(DType::F16).unwrap();
            let b = g.constant_tensor("w", w).unwrap();
            let mut inputs = vec![a, b];
            let mut feeds = vec![rng.tensor(&[m, k], -1.0, 1.0)];
            if bias {
                inputs.push(g.input("bias", &[n], DType::F32).unwrap());
                feeds.push(rng.tensor(&[n], -1.0, 1.0));
            }
            if res {
                inputs.push(g.input("res", &[m, n], DType::F32).unwrap());
                feeds.push(rng.tensor(&[m, n], -1.0, 1.0));
            }
            let op = Matmul {
                trans_b: trans,
                act,
                bias,
                residual: res,
                variant: Some(v),
            };
            let c = g.node1(op, &inputs).unwrap();
            g.output("c", c);
            if !v.supports(&common::device(), m, k, n, true) {
                continue;
            }
            parity(
                &format!("matmul-f16/{}", v.name()),
                &format!("{m}x{k}x{n} trans={trans} bias={bias} act={act:?} res={res}"),
                g,
                &feeds,
            );
        }
        report(&format!("matmul-f16/{}", v.name()));
    }
    for (vocab, dim, tokens) in [(1usize, 1usize, 1usize), (17, 3, 7), (1001, 65, 129)] {
        let mut g = Graph::new();
        let t = rng
            .tensor(&[vocab, dim], -1.0, 1.0)
            .to_dtype(DType::F16)
            .unwrap();
        let w = g.constant_tensor("t", t).unwrap();
        let ids = g.input("ids", &[tokens], DType::U32).unwrap();
        let y = g.embedding(w, ids).unwrap();
        g.output("y", y);
        let idv = (0..tokens).map(|_| rng.below(vocab as u32)).collect();
        parity(
            "embedding-f16",
            &format!("{vocab}x{dim} [{tokens}]"),
            g,
            &[Tensor::from_u32(&[tokens], idv).unwrap()],
        );
    }
    report("embedding-f16");
}

/// A weight larger than one storage binding (GPT-2's tied 50257 x 768 embedding, 154 MB) is
/// split by columns for the matmul and bound in row ranges for the gather.
#[test]
fn larger_than_one_binding() {
    let mut rng = Rng::new(5);
    let (vocab, dim) = (50257usize, 768usize);
    let table = rng.tensor(&[vocab, dim], -0.1, 0.1);
    let dev = common::device();
    assert!(
        (vocab * dim * 4) as u64 > dev.max_binding(),
        "this test expects the table to exceed the binding limit"
    );
    for v in MatmulVariant::ALL {
        let mut g = Graph::new();
        let w = g.constant_tensor("wte", table.clone()).unwrap();
        let ids = g.input("ids", &[3], DType::U32).unwrap();
        let h = g.embedding(w, ids).unwrap();
        let logits = g
            .node1(
                Matmul {
                    trans_b: true,
                    variant: Some(v),
                    ..Default::default()
                },
                &[h, w],
            )
            .unwrap();
        g.output("h", h);
        g.output("logits", logits);
        let idt = Tensor::from_u32(&[3], vec![0, 50256, 31337]).unwrap();
        parity(
            &format!("matmul/{}", v.name()),
            "tied 50257x768 lm head",
            g,
            &[idt],
        );
    }
    report("embedding");
}

#[test]
fn embedding_copy_ops() {
    let mut rng = Rng::new(6);
    for (vocab, dim, tokens) in [
        (1usize, 1usize, 1usize),
        (17, 3, 7),
        (1000, 65, 129),
        (63, 127, 2),
    ] {
        let mut g = Graph::new();
        let w = g
            .constant_tensor("t", rng.tensor(&[vocab, dim], -1.0, 1.0))
            .unwrap();
        let ids = g.input("ids", &[tokens], DType::U32).unwrap();
        let y = g.embedding(w, ids).unwrap();
        g.output("y", y);
        let idv = (0..tokens).map(|_| rng.below(vocab as u32)).collect();
        parity(
            "embedding",
            &format!("{vocab}x{dim} [{tokens}]"),
            g,
            &[Tensor::from_u32(&[tokens], idv).unwrap()],
        );
    }
    for (shape, perm) in [
        (vec![1usize], vec![0usize]),
        (vec![17, 65], vec![1, 0]),
        (vec![3, 7, 63], vec![2, 0, 1]),
        (vec![2, 17, 3, 5], vec![0, 2, 1, 3]),
        (vec![2, 3, 1, 7, 5], vec![4, 3, 2, 1, 0]),
        (vec![2, 3, 4, 8], vec![0, 2, 1, 3]), // contiguous rows of 8: vec4 copies
    ] {
        let mut g = Graph::new();
        let x = g.input("x", &shape, DType::F32).unwrap();
        let y = g.permute(x, &perm).unwrap();
        g.output("y", y);
        parity(
            "permute",
            &format!("{shape:?} {perm:?}"),
            g,
            &[rng.tensor(&shape, -1.0, 1.0)],
        );
    }
    for (shape, axis, s, e, step) in [
        (vec![1000usize], 0isize, 1usize, 999usize, 1usize),
        (vec![17, 65], 1, 3, 64, 2),
        (vec![3, 129, 7], -2, 0, 127, 3),
        (vec![2, 3, 17], 0, 1, 2, 1),
        (vec![1, 64, 5, 4], 1, 16, 48, 1), // a channel block: one vec4 run
        (vec![2, 12, 5, 4], 1, 4, 12, 1),  // vec4 runs per batch item
    ] {
        let mut g = Graph::new();
        let x = g.input("x", &shape, DType::F32).unwrap();
        let y = g.slice_step(x, axis, s, e, step).unwrap();
        g.output("y", y);
        parity(
            "slice",
            &format!("{shape:?} axis {axis} {s}..{e} step {step}"),
            g,
            &[rng.tensor(&shape, -1.0, 1.0)],
        );
    }
    {
        let mut g = Graph::new();
        let x = g.input("x", &[3, 129, 7], DType::F32).unwrap();
        let parts = g.split(x, 1, &[1, 63, 65]).unwrap();
        for (i, p) in parts.iter().enumerate() {
            g.output(&format!("p{i}"), *p);
        }
        parity(
            "split",
            "[3, 129, 7] into 1/63/65",
            g,
            &[rng.tensor(&[3, 129, 7], -1.0, 1.0)],
        );
    }
    for (shapes, axis) in [
        (vec![vec![1usize], vec![1]], 0isize),
        (vec![vec![2, 3, 17], vec![2, 7, 17], vec![2, 1, 17]], 1),
        (vec![vec![65, 3], vec![65, 63]], -1),
        (
            vec![vec![1, 17, 3, 3], vec![1, 1, 3, 3], vec![1, 129, 3, 3]],
            1,
        ),
        // YOLO-style channel concats: vec4 runs (one per batch item).
        (
            vec![vec![1, 16, 5, 4], vec![1, 8, 5, 4], vec![1, 4, 5, 4]],
            1,
        ),
        (vec![vec![2, 4, 6], vec![2, 8, 6]], 1),
        (vec![vec![2, 4, 6], vec![2, 7, 6]], 1), // 42-word runs: offsets not all aligned
    ] {
        let mut g = Graph::new();
        let mut feeds = vec![];
        let xs: Vec<_> = shapes
            .iter()
            .enumerate()
            .map(|(i, s)| {
                feeds.push(rng.tensor(s, -1.0, 1.0));
                g.input(&format!("x{i}"), s, DType::F32).unwrap()
            })
            .collect();
        let y = g.concat(&xs, axis).unwrap();
        g.output("y", y);
        parity("concat", &format!("{shapes:?} axis {axis}"), g, &feeds);
    }
    for (shape, to) in [
        (vec![1usize, 1, 7], vec![3usize, 1, 7]),
        (vec![1], vec![1000]),
        (vec![17, 1], vec![2, 17, 65]),
    ] {
        let mut g = Graph::new();
        let x = g.input("x", &shape, DType::F32).unwrap();
        let y = g.expand(x, &to).unwrap();
        g.output("y", y);
        parity(
            "expand",
            &format!("{shape:?} -> {to:?}"),
            g,
            &[rng.tensor(&shape, -1.0, 1.0)],
        );
    }
    for s in ["embedding", "permute", "slice", "split", "concat", "expand"] {
        report(s);
    }
}

#[allow(clippy::too_many_arguments)]
fn attention_case(
    b: usize,
    heads: usize,
    d: usize,
    sq: usize,
    skv: usize,
    causal: bool,
    mask: bool,
    past: Option<u32>,
    fused: bool,
    rng: &mut Rng,
) {
    let hd = heads * d;
    let mut g = Graph::new();
    let mut feeds = vec![];
    let (q, k, v, cols) = if fused {
        // One [b, s, 3*hd + 5] tensor holds q, k and v at column offsets 1, hd + 2, 2hd + 4.
        assert_eq!(sq, skv);
        let w = 3 * hd + 5;
        let x = g.input("qkv", &[b, sq, w], DType::F32).unwrap();
        feeds.push(rng.tensor(&[b, sq, w], -1.0, 1.0));
        (x, x, x, (1, hd + 2, 2 * hd + 4))
    } else {
        let q = g.input("q", &[b, sq, hd], DType::F32).unwrap();
        let k = g.input("k", &[b, skv, hd], DType::F32).unwrap();
        let v = g.input("v", &[b, skv, hd], DType::F32).unwrap();
        feeds.push(rng.tensor(&[b, sq, hd], -1.0, 1.0));
        feeds.push(rng.tensor(&[b, skv, hd], -1.0, 1.0));
        feeds.push(rng.tensor(&[b, skv, hd], -1.0, 1.0));
        (q, k, v, (0, 0, 0))
    };
    let m = if mask {
        let m = g.input("mask", &[b, skv], DType::F32).unwrap();
        // Padding-style mask: the tail of each sequence is masked with a large negative value.
        let mut mv = vec![0.0f32; b * skv];
        for bi in 0..b {
            let valid = 1 + rng.below(skv as u32) as usize;
            for j in valid..skv {
                mv[bi * skv + j] = f32::MIN;
            }
        }
        feeds.push(Tensor::from_f32(&[b, skv], mv).unwrap());
        Some(m)
    } else {
        None
    };
    let p = past.map(|pv| {
        feeds.push(Tensor::from_u32(&[1], vec![pv]).unwrap());
        g.input("past", &[1], DType::U32).unwrap()
    });
    let op = Attention {
        heads,
        head_dim: d,
        scale: 1.0 / (d as f32).sqrt(),
        causal,
        q_col: cols.0,
        k_col: cols.1,
        v_col: cols.2,
        mask: false,
        past: false,
    };
    let o = g.attention(op, q, k, v, m, p).unwrap();
    g.output("o", o);
    parity(
        "attention",
        &format!("b{b} h{heads} d{d} sq{sq} skv{skv} causal={causal} mask={mask} past={past:?} fused={fused}"),
        g,
        &feeds,
    );
}

#[test]
fn attention() {
    let mut rng = Rng::new(7);
    attention_case(1, 1, 1, 1, 1, false, false, None, false, &mut rng);
    attention_case(2, 3, 7, 17, 17, false, true, None, true, &mut rng);
    attention_case(1, 12, 64, 65, 65, true, false, None, true, &mut rng);
    attention_case(3, 2, 32, 63, 63, false, true, None, false, &mut rng);
    attention_case(1, 4, 16, 1, 129, false, false, None, false, &mut rng);
    attention_case(2, 2, 64, 7, 127, true, true, None, false, &mut rng);
    // KV-cache decoding: one query at position `past` over a preallocated cache.
    attention_case(1, 12, 64, 1, 1000, true, false, Some(17), false, &mut rng);
    attention_case(1, 12, 64, 1, 1024, true, false, Some(478), false, &mut rng);
    attention_case(1, 12, 64, 1, 1024, true, false, Some(479), false, &mut rng);
    attention_case(1, 12, 64, 1, 1024, true, false, Some(600), false, &mut rng);
    attention_case(1, 12, 64, 1, 1024, true, false, Some(1023), false, &mut rng);
    attention_case(1, 4, 32, 3, 1024, true, true, Some(700), false, &mut rng);
    attention_case(2, 3, 16, 5, 64, true, false, Some(0), false, &mut rng);
    attention_case(1, 2, 8, 3, 40, true, true, Some(36), false, &mut rng);
    report("attention");
}

#[allow(clippy::too_many_arguments)]
fn conv_case(
    n: usize,
    c: usize,
    hw: (usize, usize),
    o: usize,
    k: (usize, usize),
    s: usize,
    p: usize,
    dil: usize,
    groups: usize,
    act: Act,
    bias: bool,
    res: bool,
    rng: &mut Rng,
) {
    let op = Conv2d {
        stride: [s, s],
        padding: [p, p],
        dilation: [dil, dil],
        groups,
        act,
        ..Default::default()
    };
    let mut g = Graph::new();
    let x = g.input("x", &[n, c, hw.0, hw.1], DType::F32).unwrap();
    let w = g
        .constant_tensor("w", rng.tensor(&[o, c / groups, k.0, k.1], -0.5, 0.5))
        .unwrap();
    let mut feeds = vec![rng.tensor(&[n, c, hw.0, hw.1], -1.0, 1.0)];
    let b = if bias {
        Some(g.constant_tensor("b", rng.tensor(&[o], -1.0, 1.0)).unwrap())
    } else {
        None
    };
    let r = if res {
        let ho = (hw.0 + 2 * p - dil * (k.0 - 1) - 1) / s + 1;
        let wo = (hw.1 + 2 * p - dil * (k.1 - 1) - 1) / s + 1;
        feeds.push(rng.tensor(&[n, o, ho, wo], -1.0, 1.0));
        Some(g.input("r", &[n, o, ho, wo], DType::F32).unwrap())
    } else {
        None
    };
    let y = g.conv2d(op, x, w, b, r).unwrap();
    g.output("y", y);
    parity(
        "conv2d",
        &format!(
            "n{n} c{c} {hw:?} o{o} k{k:?} s{s} p{p} d{dil} g{groups} {act:?} bias={bias} res={res}"
        ),
        g,
        &feeds,
    );
}

#[test]
fn conv_pool_upsample() {
    let mut rng = Rng::new(8);
    // Widths that are multiples of 4 take the vec4 packing path; 7 and 3 channels leave a
    // partial channel quad, batch 2 checks image boundaries.
    conv_case(
        2,
        7,
        (6, 8),
        5,
        (3, 3),
        1,
        1,
        1,
        1,
        Act::None,
        true,
        false,
        &mut rng,
    );
    conv_case(
        1,
        3,
        (16, 16),
        16,
        (3, 3),
        2,
        1,
        1,
        1,
        Act::Silu,
        true,
        false,
        &mut rng,
    );
    conv_case(
        1,
        1,
        (1, 1),
        1,
        (1, 1),
        1,
        0,
        1,
        1,
        Act::None,
        false,
        false,
        &mut rng,
    );
    conv_case(
        1,
        3,
        (17, 17),
        16,
        (3, 3),
        2,
        1,
        1,
        1,
        Act::Silu,
        true,
        false,
        &mut rng,
    );
    conv_case(
        2,
        7,
        (13, 9),
        5,
        (3, 3),
        1,
        1,
        1,
        1,
        Act::None,
        true,
        true,
        &mut rng,
    );
    conv_case(
        1,
        16,
        (15, 15),
        17,
        (1, 1),
        1,
        0,
        1,
        1,
        Act::Silu,
        true,
        false,
        &mut rng,
    );
    conv_case(
        1,
        8,
        (11, 12),
        8,
        (5, 5),
        1,
        2,
        2,
        1,
        Act::Relu,
        false,
        false,
        &mut rng,
    );
    conv_case(
        1,
        6,
        (9, 9),
        9,
        (3, 3),
        2,
        1,
        1,
        3,
        Act::None,
        true,
        false,
        &mut rng,
    );
    conv_case(
        2,
        12,
        (8, 8),
        12,
        (3, 3),
        1,
        1,
        1,
        12,
        Act::Silu,
        true,
        false,
        &mut rng,
    );
    conv_case(
        1,
        3,
        (48, 48),
        96,
        (8, 8),
        8,
        0,
        1,
        1,
        Act::None,
        true,
        false,
        &mut rng,
    );
    conv_case(
        1,
        65,
        (7, 5),
        63,
        (3, 1),
        1,
        1,
        1,
        1,
        Act::GeluErf,
        true,
        true,
        &mut rng,
    );
    for (shape, k, s, p) in [
        (vec![1usize, 1, 1, 1], 1usize, 1usize, 0usize),
        (vec![1, 7, 20, 20], 5, 1, 2),
        (vec![2, 3, 17, 15], 2, 2, 0),
        (vec![1, 3, 17, 17], 3, 2, 1),
    ] {
        let mut g = Graph::new();
        let x = g.input("x", &shape, DType::F32).unwrap();
        let y = g.maxpool2d(x, k, s, p).unwrap();
        g.output("y", y);
        parity(
            "maxpool2d",
            &format!("{shape:?} k{k} s{s} p{p}"),
            g,
            &[rng.tensor(&shape, -1.0, 1.0)],
        );
    }
    for (shape, sc) in [
        (vec![1usize, 1, 1, 1], 2usize),
        (vec![2, 3, 7, 5], 2),
        (vec![1, 17, 3, 4], 3),
        (vec![2, 3, 7, 6], 2), // even widths: the vec4 path
        (vec![1, 5, 1, 2], 2),
    ] {
        let mut g = Graph::new();
        let x = g.input("x", &shape, DType::F32).unwrap();
        let y = g.upsample_nearest(x, sc).unwrap();
        g.output("y", y);
        parity(
            "upsample_nearest",
            &format!("{shape:?} x{sc}"),
            g,
            &[rng.tensor(&shape, -1.0, 1.0)],
        );
    }
    report("conv2d");
    report("maxpool2d");
    report("upsample_nearest");
}

/// lavapipe stops an invocation after 65535 loop iterations in total; kernels must stay well
/// below that for large reductions. These shapes used to cross it.
#[test]
fn long_reductions() {
    let mut rng = Rng::new(9);
    for v in MatmulVariant::ALL {
        matmul_case(
            v,
            5,
            3100,
            7,
            (true, true, Act::None, false, true, 1),
            &mut rng,
        );
        matmul_case(
            v,
            9,
            4099,
            65,
            (false, false, Act::None, false, false, 1),
            &mut rng,
        );
    }
    for n in [70_001usize, 200_003] {
        let mut g = Graph::new();
        let x = g.input("x", &[n, 2], DType::F32).unwrap();
        let y = g.mean(x, 0).unwrap();
        g.output("y", y);
        parity(
            "mean",
            &format!("[{n}, 2] axis 0"),
            g,
            &[rng.tensor(&[n, 2], -1.0, 1.0)],
        );

        let mut g = Graph::new();
        let x = g.input("x", &[2, n], DType::F32).unwrap();
        let y = g.softmax(x).unwrap();
        g.output("y", y);
        parity(
            "softmax",
            &format!("[2, {n}]"),
            g,
            &[rng.tensor(&[2, n], -5.0, 5.0)],
        );

        let mut g = Graph::new();
        let x = g.input("x", &[2, n], DType::F32).unwrap();
        let gm = g.input("g", &[n], DType::F32).unwrap();
        let bt = g.input("b", &[n], DType::F32).unwrap();
        let y = g.layernorm(x, gm, bt, 1e-5).unwrap();
        g.output("y", y);
        parity(
            "layernorm",
            &format!("[2, {n}]"),
            g,
            &[
                rng.tensor(&[2, n], -1.0, 1.0),
                rng.tensor(&[n], 0.5, 1.5),
                rng.tensor(&[n], -1.0, 1.0),
            ],
        );
    }
    conv_case(
        1,
        1024,
        (5, 5),
        5,
        (3, 3),
        1,
        1,
        1,
        1,
        Act::Silu,
        true,
        false,
        &mut rng,
    );
    for op in [
        "matmul/tiled",
        "matmul/texture",
        "mean",
        "softmax",
        "layernorm",
        "conv2d",
    ] {
        report(op);
    }
}
