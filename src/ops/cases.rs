//! The op-case table: every op's cases — a graph over seeded random inputs with awkward shapes
//! (1, 3, 17, 63, 65, 127, 1000, ...), the tolerance it must meet against the CPU reference,
//! and the work it does. The GPU≡CPU parity test runs every case of every group; the kernel
//! benchmarks (`wgpu-infer bench`, `cargo bench --bench kernels`) time the [`BENCH`] group, which
//! the parity test runs too, so the benchmarks never time a shape the tests do not check.
//!
//! Adding an op means adding its cases here. A case that forces a kernel variant says which
//! devices can run it; on the others compiling it must fail with a typed error.

use super::attention::Attention;
use super::binary::BinaryOp;
use super::conv2d::Conv2d;
use super::matmul::{Layout, Matmul, MatmulVariant};
use super::Act;
use crate::device::Device;
use crate::error::Result;
use crate::graph::{Constant, Graph};
use crate::tensor::{DType, Tensor};
use std::fmt::Write;
use std::sync::Arc;

pub use crate::rng::Rng;

/// What one run of a case does, for throughput figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Work {
    /// Floating-point operations (multiply-add = 2).
    Flops(f64),
    /// Bytes read and written.
    Bytes(f64),
}

/// Which devices can run a case that forces a kernel variant.
pub type Supported = Box<dyn Fn(&Device) -> bool + Send + Sync>;

/// One case: a graph and its feeds, run on a GPU and on the CPU reference.
pub struct OpCase {
    /// The op (and forced variant) the case belongs to, e.g. `matmul/tiled` or `softmax`.
    pub op: String,
    /// The case within the op, e.g. `[3, 17]` or `b1 65x3x1000 trans=true ...`.
    pub name: String,
    pub graph: Arc<Graph>,
    /// Feeds in graph input order.
    pub feeds: Vec<Tensor>,
    /// An element passes when its error is within `abs` or within `rel` of the reference's
    /// magnitude.
    pub abs: f64,
    pub rel: f64,
    pub work: Work,
    /// The kernel variant this case forces, if any.
    pub variant: Option<&'static str>,
    /// For a forced variant: the devices that can run it.
    pub supported: Option<Supported>,
}

impl OpCase {
    fn new(
        op: impl Into<String>,
        name: impl Into<String>,
        graph: Graph,
        feeds: Vec<Tensor>,
    ) -> Self {
        let work = Work::Flops(graph.flops() as f64);
        OpCase {
            op: op.into(),
            name: name.into(),
            graph: Arc::new(graph),
            feeds,
            abs: 1e-4,
            rel: 1e-5,
            work,
            variant: None,
            supported: None,
        }
    }
    fn tol(self, abs: f64, rel: f64) -> Self {
        OpCase { abs, rel, ..self }
    }
    fn bytes(self, bytes: f64) -> Self {
        OpCase {
            work: Work::Bytes(bytes),
            ..self
        }
    }
    fn forcing(self, variant: &'static str, supported: Supported) -> Self {
        OpCase {
            variant: Some(variant),
            supported: Some(supported),
            ..self
        }
    }
    /// Whether `device` can run this case (always, unless it forces a variant).
    pub fn runs_on(&self, device: &Device) -> bool {
        self.supported.as_ref().is_none_or(|s| s(device))
    }
}

/// A group of cases drawn from one seeded stream, in order.
pub struct Group {
    pub name: &'static str,
    pub seed: u64,
    build: fn(&mut Rng) -> Result<Vec<OpCase>>,
}

impl Group {
    /// The group's cases (their random inputs drawn now).
    pub fn cases(&self) -> Result<Vec<OpCase>> {
        (self.build)(&mut Rng::new(self.seed))
    }
}

/// The model-sized shapes the kernel benchmarks time.
pub const BENCH: &str = "bench";

/// Every group of the table.
pub fn groups() -> Vec<Group> {
    let g = |name, seed, build| Group { name, seed, build };
    vec![
        g("activations", 1, activations),
        g("erf", 0, erf),
        g("binary_broadcast", 2, binary_broadcast),
        g("softmax_layernorm_mean", 3, rows),
        g("matmul_variants", 4, matmul_variants),
        g("f16_weights", 12, f16_weights),
        g("q8_weights", 13, q8_weights),
        g("larger_than_one_binding", 5, larger_than_one_binding),
        g("embedding_copy_ops", 6, copy_ops),
        g("attention", 7, attention),
        g("conv_pool_upsample", 8, conv_pool_upsample),
        g("long_reductions", 9, long_reductions),
        g(BENCH, 10, bench),
    ]
}

/// The group called `name`.
pub fn group(name: &str) -> Option<Group> {
    groups().into_iter().find(|g| g.name == name)
}

const SIZES: [usize; 10] = [1, 3, 7, 17, 63, 65, 127, 129, 1000, 2];

fn unary(act: Act, shape: &[usize], rng: &mut Rng, lo: f32, hi: f32) -> Result<OpCase> {
    let mut g = Graph::new();
    let x = g.input("x", shape, DType::F32)?;
    let y = g.activation(x, act)?;
    g.output("y", y);
    let n = shape.iter().product::<usize>() as f64;
    Ok(OpCase::new(
        format!("{act:?}"),
        format!("{shape:?}"),
        g,
        vec![rng.tensor(shape, lo, hi)],
    )
    .bytes(8.0 * n))
}

fn activations(rng: &mut Rng) -> Result<Vec<OpCase>> {
    let mut out = Vec::new();
    for act in [
        Act::GeluErf,
        Act::GeluTanh,
        Act::Silu,
        Act::Sigmoid,
        Act::Relu,
        Act::Tanh,
        Act::QuickGelu,
    ] {
        for &n in &SIZES {
            out.push(unary(act, &[n], rng, -8.0, 8.0)?);
        }
        out.push(unary(act, &[3, 17, 65], rng, -30.0, 30.0)?);
    }
    // The SiLU-gated unit of Llama MLPs over fused gate / up rows: awkward widths, SmolLM2's
    // 1536, Qwen2.5-0.5B's 4864.
    for (rows, n) in [
        (1usize, 1usize),
        (3, 17),
        (5, 63),
        (2, 1000),
        (4, 1536),
        (2, 4864),
    ] {
        let mut g = Graph::new();
        let x = g.input("x", &[rows, 2 * n], DType::F32)?;
        let y = g.glu(x, Act::Silu)?;
        g.output("y", y);
        out.push(
            OpCase::new(
                "glu",
                format!("silu [{rows}, 2x{n}]"),
                g,
                vec![rng.tensor(&[rows, 2 * n], -8.0, 8.0)],
            )
            .bytes(12.0 * (rows * n) as f64),
        );
    }
    Ok(out)
}

/// erf itself must be accurate to 1e-6 everywhere: a dense grid over [-10, 10].
fn erf(_rng: &mut Rng) -> Result<Vec<OpCase>> {
    let n = 200_001;
    let xs: Vec<f32> = (0..n)
        .map(|i| -10.0 + 20.0 * i as f32 / (n - 1) as f32)
        .collect();
    let mut g = Graph::new();
    let x = g.input("x", &[n], DType::F32)?;
    let y = g.activation(x, Act::Erf)?;
    g.output("y", y);
    let case = OpCase::new(
        "erf",
        "dense grid [-10, 10]",
        g,
        vec![Tensor::from_f32(&[n], xs)?],
    );
    Ok(vec![case.tol(1e-6, 0.0).bytes(8.0 * n as f64)])
}

fn binary_broadcast(rng: &mut Rng) -> Result<Vec<OpCase>> {
    let shapes: Vec<(Vec<usize>, Vec<usize>)> = vec![
        (vec![1], vec![1]),
        (vec![1000], vec![1000]),
        (vec![17, 63], vec![63]),
        (vec![3, 1, 65], vec![7, 1]),
        (vec![2, 3, 17, 1], vec![1, 3, 1, 129]),
        (vec![127], vec![1]),
        (vec![1, 7], vec![65, 1]),
    ];
    let mut out = Vec::new();
    for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div] {
        for (a, b) in &shapes {
            let mut g = Graph::new();
            let x = g.input("a", a, DType::F32)?;
            let y = g.input("b", b, DType::F32)?;
            let z = g.binary(op, x, y)?;
            g.output("z", z);
            let bt = if op == BinaryOp::Div {
                rng.tensor(b, 0.5, 2.0)
            } else {
                rng.tensor(b, -1.0, 1.0)
            };
            let at = rng.tensor(a, -1.0, 1.0);
            out.push(OpCase::new(
                format!("{op:?}"),
                format!("{a:?} . {b:?}"),
                g,
                vec![at, bt],
            ));
        }
    }
    Ok(out)
}

fn softmax_case(rows: usize, n: usize, rng: &mut Rng, lo: f32, hi: f32) -> Result<OpCase> {
    let mut g = Graph::new();
    let x = g.input("x", &[rows, n], DType::F32)?;
    let y = g.softmax(x)?;
    g.output("y", y);
    let feeds = vec![rng.tensor(&[rows, n], lo, hi)];
    let name = format!("[{rows}, {n}]");
    Ok(OpCase::new("softmax", name, g, feeds).bytes((8 * rows * n) as f64))
}

fn layernorm_case(
    rows: usize,
    n: usize,
    eps: f32,
    rng: &mut Rng,
    lo: f32,
    hi: f32,
) -> Result<OpCase> {
    let mut g = Graph::new();
    let x = g.input("x", &[rows, n], DType::F32)?;
    let gm = g.input("g", &[n], DType::F32)?;
    let bt = g.input("b", &[n], DType::F32)?;
    let y = g.layernorm(x, gm, bt, eps)?;
    g.output("y", y);
    let feeds = vec![
        rng.tensor(&[rows, n], lo, hi),
        rng.tensor(&[n], 0.5, 1.5),
        rng.tensor(&[n], -1.0, 1.0),
    ];
    let name = format!("[{rows}, {n}]");
    Ok(OpCase::new("layernorm", name, g, feeds).bytes((8 * rows * n) as f64))
}

fn rmsnorm_case(
    rows: usize,
    n: usize,
    eps: f32,
    rng: &mut Rng,
    lo: f32,
    hi: f32,
) -> Result<OpCase> {
    let mut g = Graph::new();
    let x = g.input("x", &[rows, n], DType::F32)?;
    let gm = g.input("g", &[n], DType::F32)?;
    let y = g.rmsnorm(x, gm, eps)?;
    g.output("y", y);
    let feeds = vec![rng.tensor(&[rows, n], lo, hi), rng.tensor(&[n], 0.5, 1.5)];
    let name = format!("[{rows}, {n}]");
    Ok(OpCase::new("rmsnorm", name, g, feeds).bytes((8 * rows * n) as f64))
}

fn mean_case(shape: &[usize], axis: isize, rng: &mut Rng) -> Result<OpCase> {
    let mut g = Graph::new();
    let x = g.input("x", shape, DType::F32)?;
    let y = g.mean(x, axis)?;
    g.output("y", y);
    let n = shape.iter().product::<usize>() as f64;
    let feeds = vec![rng.tensor(shape, -1.0, 1.0)];
    Ok(OpCase::new("mean", format!("{shape:?} axis {axis}"), g, feeds).bytes(4.0 * n))
}

fn rows(rng: &mut Rng) -> Result<Vec<OpCase>> {
    let mut out = Vec::new();
    for &n in &SIZES {
        for rows in [1usize, 3, 17] {
            out.push(softmax_case(rows, n, rng, -10.0, 10.0)?);
            out.push(layernorm_case(rows, n, 1e-5, rng, -3.0, 5.0)?);
            out.push(rmsnorm_case(rows, n, 1e-6, rng, -3.0, 5.0)?);
        }
    }
    for (shape, axis) in [
        (vec![3usize, 17, 65], 1isize),
        (vec![1000], 0),
        (vec![7, 129], -1),
        (vec![2, 63, 3], 0),
    ] {
        out.push(mean_case(&shape, axis, rng)?);
    }
    // Widths of the vec4 register kernel (N % 4 == 0, up to 1536) and just past it.
    for n in [4usize, 32, 36, 384, 768, 1532, 1536, 1540] {
        out.push(layernorm_case(5, n, 1e-12, rng, -3.0, 5.0)?);
    }
    // RMSNorm at Llama widths: SmolLM2-135M 576, Qwen2.5-0.5B 896, TinyLlama 2048 (past the
    // vec4 kernel), and a head's 64 (Qwen3-style q/k norms).
    for n in [64usize, 576, 896, 2048] {
        out.push(rmsnorm_case(4, n, 1e-5, rng, -3.0, 5.0)?);
    }
    // Rows of ±3e38 (an embedding table scaled to f32's edge): the row sum overflows f32, the
    // mean must not (PyTorch's does not); such rows normalise to beta.
    for (n, v) in [(96usize, 3e38f32), (768, -3e38), (1000, 3e38)] {
        out.push(layernorm_case(3, n, 1e-5, rng, v, v)?);
    }
    Ok(out)
}

/// Options of a matmul case: B transposed ([N, K]), a bias input, the activation, a residual
/// input, B a constant (weight), and the batch.
#[derive(Clone, Copy)]
struct MatmulOpts {
    trans: bool,
    bias: bool,
    act: Act,
    res: bool,
    constant: bool,
    batch: usize,
}

const PLAIN: MatmulOpts = MatmulOpts {
    trans: false,
    bias: false,
    act: Act::None,
    res: false,
    constant: true,
    batch: 1,
};

fn matmul_case(
    v: MatmulVariant,
    (m, k, n): (usize, usize, usize),
    o: MatmulOpts,
    rng: &mut Rng,
) -> Result<OpCase> {
    let mut g = Graph::new();
    let a_shape = if o.batch > 1 {
        vec![o.batch, m, k]
    } else {
        vec![m, k]
    };
    let bt_shape = if o.trans { vec![n, k] } else { vec![k, n] };
    let b_shape = if o.batch > 1 && !o.constant {
        let mut s = vec![o.batch];
        s.extend(&bt_shape);
        s
    } else {
        bt_shape.clone()
    };
    let mut feeds = vec![];
    let a = g.input("a", &a_shape, DType::F32)?;
    feeds.push(rng.tensor(&a_shape, -1.0, 1.0));
    let b = if o.constant {
        g.constant_tensor("w", rng.tensor(&b_shape, -1.0, 1.0))?
    } else {
        feeds.push(rng.tensor(&b_shape, -1.0, 1.0));
        g.input("b", &b_shape, DType::F32)?
    };
    let mut inputs = vec![a, b];
    if o.bias {
        inputs.push(g.input("bias", &[n], DType::F32)?);
        feeds.push(rng.tensor(&[n], -1.0, 1.0));
    }
    if o.res {
        let mut out = a_shape.clone();
        *out.last_mut().expect("rank 2 or 3") = n;
        inputs.push(g.input("res", &out, DType::F32)?);
        feeds.push(rng.tensor(&out, -1.0, 1.0));
    }
    let op = Matmul {
        layout: if o.trans { Layout::NxK } else { Layout::KxN },
        act: o.act,
        bias: o.bias,
        residual: o.res,
        variant: Some(v),
    };
    let c = g.node1(op, &inputs)?;
    g.output("c", c);
    let rows = if o.batch > 1 && o.constant {
        o.batch * m
    } else {
        m
    };
    let name = format!(
        "b{} {m}x{k}x{n} trans={} bias={} act={:?} res={} const={}",
        o.batch, o.trans, o.bias, o.act, o.res, o.constant
    );
    let constant = o.constant;
    Ok(
        OpCase::new(format!("matmul/{}", v.name()), name, g, feeds).forcing(
            v.name(),
            Box::new(move |d| v.supports(d, rows, k, n, constant)),
        ),
    )
}

fn matmul_variants(rng: &mut Rng) -> Result<Vec<OpCase>> {
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
    let o = |trans, bias, act, res, constant, batch| MatmulOpts {
        trans,
        bias,
        act,
        res,
        constant,
        batch,
    };
    let mut out = Vec::new();
    for v in MatmulVariant::ALL {
        for (i, &mkn) in shapes.iter().enumerate() {
            let plain = o(i % 2 == 1, false, Act::None, false, i % 3 != 2, 1);
            out.push(matmul_case(v, mkn, plain, rng)?);
        }
        // Epilogues and batching.
        for (mkn, opts) in [
            ((17, 63, 65), o(false, true, Act::GeluErf, false, true, 1)),
            ((65, 17, 63), o(true, true, Act::GeluTanh, true, true, 1)),
            ((7, 3, 129), o(false, true, Act::Silu, true, false, 1)),
            ((17, 65, 7), o(true, false, Act::None, false, false, 3)),
            ((17, 65, 7), o(false, true, Act::None, true, true, 3)),
            ((63, 129, 3), o(false, false, Act::None, false, false, 7)),
        ] {
            out.push(matmul_case(v, mkn, opts, rng)?);
        }
    }
    Ok(out)
}

/// f16 weights (matmul B and embedding tables): every variant reads the half-precision layout
/// and accumulates in f32, so the GPU must match the CPU reference (which upcasts the same f16
/// values) as tightly as in f32. Odd sizes put halves across u32 and texel boundaries.
fn f16_weights(rng: &mut Rng) -> Result<Vec<OpCase>> {
    let shapes = [
        (1, 1, 1),
        (3, 7, 17),
        (17, 65, 63),
        (1, 768, 129),
        (63, 127, 129),
        (65, 3, 1000),
        (33, 1000, 65),
    ];
    let mut out = Vec::new();
    for v in MatmulVariant::ALL {
        for (i, &(m, k, n)) in shapes.iter().enumerate() {
            let trans = i % 2 == 0;
            let bs = if trans { [n, k] } else { [k, n] };
            let w = rng.tensor(&bs, -1.0, 1.0).to_dtype(DType::F16)?;
            let layout = if trans { Layout::NxK } else { Layout::KxN };
            out.push(stored_weight_case(
                "matmul-f16",
                v,
                (m, k, n),
                (w, layout),
                i,
                rng,
            )?);
        }
    }
    for (vocab, dim, tokens) in [(1usize, 1usize, 1usize), (17, 3, 7), (1001, 65, 129)] {
        let t = rng.tensor(&[vocab, dim], -1.0, 1.0).to_dtype(DType::F16)?;
        out.push(embedding_case("embedding-f16", t, tokens, rng)?);
    }
    Ok(out)
}

/// q8 weights (matmul B [N, K] and embedding tables): every variant dequantizes the int8
/// values with their block scales and accumulates in f32, so the GPU must match the CPU
/// reference (which dequantizes the same values) as tightly as in f32. K around the block size
/// (31, 32, 33) and odd N put blocks across u32, texel and chunk boundaries; rows of very
/// different magnitudes give every block its own scale.
fn q8_weights(rng: &mut Rng) -> Result<Vec<OpCase>> {
    let shapes = [
        (1, 1, 1),
        (3, 7, 17),
        (17, 31, 63),
        (1, 32, 65),
        (2, 33, 3),
        (1, 768, 129),
        (63, 127, 129),
        (65, 3, 1000),
        (33, 1000, 65),
        (9, 65, 127),
    ];
    let mut out = Vec::new();
    for v in MatmulVariant::ALL {
        for (i, &(m, k, n)) in shapes.iter().enumerate() {
            let w = q8_test_weight(rng, n, k)?;
            out.push(stored_weight_case(
                "matmul-q8",
                v,
                (m, k, n),
                (w, Layout::NxK),
                i,
                rng,
            )?);
        }
    }
    for (vocab, dim, tokens) in [
        (1usize, 1usize, 1usize),
        (17, 3, 7),
        (1001, 65, 129),
        (5, 33, 9),
    ] {
        let t = q8_test_weight(rng, vocab, dim)?;
        out.push(embedding_case("embedding-q8", t, tokens, rng)?);
    }
    Ok(out)
}

/// Case `i` of a weight-storage group: `a · w` by variant `v` (w a constant in its storage
/// type), with a bias, GELU and a residual in turn.
fn stored_weight_case(
    op: &str,
    v: MatmulVariant,
    (m, k, n): (usize, usize, usize),
    (w, layout): (Tensor, Layout),
    i: usize,
    rng: &mut Rng,
) -> Result<OpCase> {
    let (bias, act, res) = (i % 3 == 1, [Act::None, Act::GeluErf][i % 2], i % 4 == 3);
    let mut g = Graph::new();
    let a = g.input("a", &[m, k], DType::F32)?;
    let b = g.constant_tensor("w", w)?;
    let mut inputs = vec![a, b];
    let mut feeds = vec![rng.tensor(&[m, k], -1.0, 1.0)];
    if bias {
        inputs.push(g.input("bias", &[n], DType::F32)?);
        feeds.push(rng.tensor(&[n], -1.0, 1.0));
    }
    if res {
        inputs.push(g.input("res", &[m, n], DType::F32)?);
        feeds.push(rng.tensor(&[m, n], -1.0, 1.0));
    }
    let matmul = Matmul {
        layout,
        act,
        bias,
        residual: res,
        variant: Some(v),
    };
    let c = g.node1(matmul, &inputs)?;
    g.output("c", c);
    let trans = layout == Layout::NxK;
    let name = format!("{m}x{k}x{n} trans={trans} bias={bias} act={act:?} res={res}");
    Ok(OpCase::new(format!("{op}/{}", v.name()), name, g, feeds)
        .forcing(v.name(), Box::new(move |d| v.supports(d, m, k, n, true))))
}

/// A random [rows, cols] weight quantized to q8; rows are scaled by 1, 0.1, 0.01, 0.001 in
/// turn and every 32-block of a row by its own factor in 0.5 .. 1, so that blocks get very
/// different scales (values stay within ±1 like the other cases').
fn q8_test_weight(rng: &mut Rng, rows: usize, cols: usize) -> Result<Tensor> {
    let mut w = rng.tensor(&[rows, cols], -1.0, 1.0);
    let factors = rng.tensor(&[rows * cols.div_ceil(32)], 0.5, 1.0);
    let factors = factors.as_f32()?;
    for (r, row) in w.as_f32_mut()?.chunks_mut(cols).enumerate() {
        let scale = [1.0f32, 0.1, 0.01, 0.001][r % 4];
        for (i, x) in row.iter_mut().enumerate() {
            *x *= scale * factors[r * cols.div_ceil(32) + i / 32];
        }
    }
    w.to_dtype(DType::Q8)
}

fn embedding_case(op: &str, table: Tensor, tokens: usize, rng: &mut Rng) -> Result<OpCase> {
    let (vocab, dim) = (table.shape()[0], table.shape()[1]);
    let mut g = Graph::new();
    let w = g.constant_tensor("t", table)?;
    let ids = g.input("ids", &[tokens], DType::U32)?;
    let y = g.embedding(w, ids)?;
    g.output("y", y);
    let idv = (0..tokens).map(|_| rng.below(vocab as u32)).collect();
    let feeds = vec![Tensor::from_u32(&[tokens], idv)?];
    let name = format!("{vocab}x{dim} [{tokens}]");
    Ok(OpCase::new(op, name, g, feeds).bytes((8 * tokens * dim) as f64))
}

/// The table of the `larger_than_one_binding` group: 50257 x 768 f32 (GPT-2's tied
/// embedding, 154 MB), beyond one 128 MiB storage binding.
pub const BIG_TABLE: [usize; 2] = [50257, 768];

/// A weight larger than one storage binding is split by columns for the matmul and bound in
/// row ranges for the gather.
fn larger_than_one_binding(rng: &mut Rng) -> Result<Vec<OpCase>> {
    let table = rng.tensor(&BIG_TABLE, -0.1, 0.1);
    let mut out = Vec::new();
    for v in MatmulVariant::ALL {
        let mut g = Graph::new();
        let w = g.constant_tensor("wte", table.clone())?;
        let ids = g.input("ids", &[3], DType::U32)?;
        let h = g.embedding(w, ids)?;
        let op = Matmul {
            layout: Layout::NxK,
            variant: Some(v),
            ..Default::default()
        };
        let logits = g.node1(op, &[h, w])?;
        g.output("h", h);
        g.output("logits", logits);
        let idt = Tensor::from_u32(&[3], vec![0, 50256, 31337])?;
        let [vocab, dim] = BIG_TABLE;
        out.push(
            OpCase::new(
                format!("matmul/{}", v.name()),
                "tied 50257x768 lm head",
                g,
                vec![idt],
            )
            .forcing(
                v.name(),
                Box::new(move |d| v.supports(d, 3, dim, vocab, true)),
            ),
        );
    }
    Ok(out)
}

fn one_input(
    op: &str,
    name: String,
    shape: &[usize],
    rng: &mut Rng,
    f: impl FnOnce(&mut Graph, crate::graph::ValueId) -> Result<Vec<crate::graph::ValueId>>,
) -> Result<OpCase> {
    let mut g = Graph::new();
    let x = g.input("x", shape, DType::F32)?;
    for (i, y) in f(&mut g, x)?.into_iter().enumerate() {
        g.output(&format!("y{i}"), y);
    }
    let n = shape.iter().product::<usize>() as f64;
    let feeds = vec![rng.tensor(shape, -1.0, 1.0)];
    Ok(OpCase::new(op, name, g, feeds).bytes(8.0 * n))
}

fn copy_ops(rng: &mut Rng) -> Result<Vec<OpCase>> {
    let mut out = Vec::new();
    for (vocab, dim, tokens) in [
        (1usize, 1usize, 1usize),
        (17, 3, 7),
        (1000, 65, 129),
        (63, 127, 2),
    ] {
        let t = rng.tensor(&[vocab, dim], -1.0, 1.0);
        out.push(embedding_case("embedding", t, tokens, rng)?);
    }
    for (shape, perm) in [
        (vec![1usize], vec![0usize]),
        (vec![17, 65], vec![1, 0]),
        (vec![3, 7, 63], vec![2, 0, 1]),
        (vec![2, 17, 3, 5], vec![0, 2, 1, 3]),
        (vec![2, 3, 1, 7, 5], vec![4, 3, 2, 1, 0]),
        (vec![2, 3, 4, 8], vec![0, 2, 1, 3]), // contiguous rows of 8: vec4 copies
    ] {
        let name = format!("{shape:?} {perm:?}");
        out.push(one_input("permute", name, &shape, rng, |g, x| {
            Ok(vec![g.permute(x, &perm)?])
        })?);
    }
    for (shape, axis, s, e, step) in [
        (vec![1000usize], 0isize, 1usize, 999usize, 1usize),
        (vec![17, 65], 1, 3, 64, 2),
        (vec![3, 129, 7], -2, 0, 127, 3),
        (vec![2, 3, 17], 0, 1, 2, 1),
        (vec![1, 64, 5, 4], 1, 16, 48, 1), // a channel block: one vec4 run
        (vec![2, 12, 5, 4], 1, 4, 12, 1),  // vec4 runs per batch item
    ] {
        let name = format!("{shape:?} axis {axis} {s}..{e} step {step}");
        out.push(one_input("slice", name, &shape, rng, |g, x| {
            Ok(vec![g.slice_step(x, axis, s, e, step)?])
        })?);
    }
    out.push(one_input(
        "split",
        "[3, 129, 7] into 1/63/65".into(),
        &[3, 129, 7],
        rng,
        |g, x| g.split(x, 1, &[1, 63, 65]),
    )?);
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
        let mut xs = vec![];
        for (i, s) in shapes.iter().enumerate() {
            feeds.push(rng.tensor(s, -1.0, 1.0));
            xs.push(g.input(&format!("x{i}"), s, DType::F32)?);
        }
        let y = g.concat(&xs, axis)?;
        g.output("y", y);
        let n: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
        out.push(
            OpCase::new("concat", format!("{shapes:?} axis {axis}"), g, feeds)
                .bytes((8 * n) as f64),
        );
    }
    for (shape, to) in [
        (vec![1usize, 1, 7], vec![3usize, 1, 7]),
        (vec![1], vec![1000]),
        (vec![17, 1], vec![2, 17, 65]),
    ] {
        let name = format!("{shape:?} -> {to:?}");
        out.push(one_input("expand", name, &shape, rng, |g, x| {
            Ok(vec![g.expand(x, &to)?])
        })?);
    }
    Ok(out)
}

/// An attention problem: (batch, heads, head dim, query length, key length, causal, an
/// additive key mask, a run-time `past`, fused: one [b, s, 3·hd + 5] tensor holds q, k and v
/// at column offsets 1, hd + 2, 2hd + 4).
type AttnCase = (
    usize,
    usize,
    usize,
    usize,
    usize,
    bool,
    bool,
    Option<u32>,
    bool,
);

/// An attention case; with `fused`, Q, K and V are columns of one [b, s, w] input: at awkward
/// offsets (1, hd + 2, 2hd + 4 of 3hd + 5 columns) for parity, or as a model's fused QKV
/// projection lays them out (0, hd, 2hd of 3hd) when `model_layout`. With `bias`, a random
/// additive score bias [heads, sq, skv] (MPNet's relative position bias) is added.
fn attention_case_in(c: AttnCase, model_layout: bool, bias: bool, rng: &mut Rng) -> Result<OpCase> {
    let (b, heads, d, sq, skv, causal, mask, past, fused) = c;
    let hd = heads * d;
    let mut g = Graph::new();
    let mut feeds = vec![];
    let (q, k, v, cols) = if fused {
        let (w, cols) = if model_layout {
            (3 * hd, (0, hd, 2 * hd))
        } else {
            (3 * hd + 5, (1, hd + 2, 2 * hd + 4))
        };
        let x = g.input("qkv", &[b, sq, w], DType::F32)?;
        feeds.push(rng.tensor(&[b, sq, w], -1.0, 1.0));
        (x, x, x, cols)
    } else {
        let q = g.input("q", &[b, sq, hd], DType::F32)?;
        let k = g.input("k", &[b, skv, hd], DType::F32)?;
        let v = g.input("v", &[b, skv, hd], DType::F32)?;
        feeds.push(rng.tensor(&[b, sq, hd], -1.0, 1.0));
        feeds.push(rng.tensor(&[b, skv, hd], -1.0, 1.0));
        feeds.push(rng.tensor(&[b, skv, hd], -1.0, 1.0));
        (q, k, v, (0, 0, 0))
    };
    let m = if mask {
        let m = g.input("mask", &[b, skv], DType::F32)?;
        // Padding-style mask: the tail of each sequence is masked with a large negative value.
        let mut mv = vec![0.0f32; b * skv];
        for bi in 0..b {
            let valid = 1 + rng.below(skv as u32) as usize;
            for j in valid..skv {
                mv[bi * skv + j] = f32::MIN;
            }
        }
        feeds.push(Tensor::from_f32(&[b, skv], mv)?);
        Some(m)
    } else {
        None
    };
    let bias = if bias {
        feeds.push(rng.tensor(&[heads, sq, skv], -3.0, 3.0));
        Some(g.input("bias", &[heads, sq, skv], DType::F32)?)
    } else {
        None
    };
    let p = match past {
        Some(pv) => {
            feeds.push(Tensor::from_u32(&[1], vec![pv])?);
            Some(g.input("past", &[1], DType::U32)?)
        }
        None => None,
    };
    let mut op = Attention::new(heads, d).columns(cols.0, cols.1, cols.2);
    if causal {
        op = op.causal();
    }
    let o = g.attention_biased(op, [q, k, v], m, bias, p)?;
    g.output("o", o);
    // Causal prefill does half the work; with a cache, past + sq keys are read.
    let keys = past.map_or(skv, |p| p as usize + sq);
    let flops =
        4.0 * (b * heads * sq * keys * d) as f64 / if causal && past.is_none() { 2.0 } else { 1.0 };
    let name = format!(
        "b{b} h{heads} d{d} sq{sq} skv{skv} causal={causal} mask={mask} bias={} past={past:?} fused={fused}",
        bias.is_some()
    );
    Ok(OpCase {
        work: Work::Flops(flops),
        ..OpCase::new("attention", name, g, feeds)
    })
}

/// A RoPE case: (batch, seq, rotated heads, head dim, passed-through columns, table rows,
/// run-time past).
fn rope_case(
    (b, s, heads, d, extra, rows, past): (usize, usize, usize, usize, usize, usize, Option<u32>),
    rng: &mut Rng,
) -> Result<OpCase> {
    let w = heads * d + extra;
    let mut g = Graph::new();
    let x = g.input("x", &[b, s, w], DType::F32)?;
    let t = g.input("table", &[rows, d], DType::F32)?;
    let mut feeds = vec![
        rng.tensor(&[b, s, w], -2.0, 2.0),
        rng.tensor(&[rows, d], -1.0, 1.0),
    ];
    let p = match past {
        Some(v) => {
            feeds.push(Tensor::from_u32(&[1], vec![v])?);
            Some(g.input("past", &[1], DType::U32)?)
        }
        None => None,
    };
    let y = g.rope(x, t, d, heads * d, p)?;
    g.output("y", y);
    let name = format!("b{b} s{s} heads{heads} d{d} +{extra} rows{rows} past={past:?}");
    Ok(OpCase::new("rope", name, g, feeds).bytes((8 * b * s * w) as f64))
}

/// A grouped-query attention case: (batch, query heads, kv heads, head dim, query rows, keys,
/// causal, a key mask, a run-time past, fused: Q, K, V as one [b, s, (hq + 2 hkv)·d] row as a
/// Llama QKV projection lays them out).
type GqaCase = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    bool,
    bool,
    Option<u32>,
    bool,
);

fn gqa_case(c: GqaCase, rng: &mut Rng) -> Result<OpCase> {
    let (b, hq, hkv, d, sq, skv, causal, mask, past, fused) = c;
    let mut g = Graph::new();
    let mut feeds = vec![];
    let (q, k, v, cols) = if fused {
        let w = (hq + 2 * hkv) * d;
        let x = g.input("qkv", &[b, sq, w], DType::F32)?;
        feeds.push(rng.tensor(&[b, sq, w], -1.0, 1.0));
        (x, x, x, (0, hq * d, (hq + hkv) * d))
    } else {
        let q = g.input("q", &[b, sq, hq * d], DType::F32)?;
        let k = g.input("k", &[b, skv, hkv * d], DType::F32)?;
        let v = g.input("v", &[b, skv, hkv * d], DType::F32)?;
        feeds.push(rng.tensor(&[b, sq, hq * d], -1.0, 1.0));
        feeds.push(rng.tensor(&[b, skv, hkv * d], -1.0, 1.0));
        feeds.push(rng.tensor(&[b, skv, hkv * d], -1.0, 1.0));
        (q, k, v, (0, 0, 0))
    };
    let m = if mask {
        let mut mv = vec![0.0f32; b * skv];
        for bi in 0..b {
            let valid = 1 + rng.below(skv as u32) as usize;
            for j in valid..skv {
                mv[bi * skv + j] = f32::MIN;
            }
        }
        feeds.push(Tensor::from_f32(&[b, skv], mv)?);
        Some(g.input("mask", &[b, skv], DType::F32)?)
    } else {
        None
    };
    let p = match past {
        Some(pv) => {
            feeds.push(Tensor::from_u32(&[1], vec![pv])?);
            Some(g.input("past", &[1], DType::U32)?)
        }
        None => None,
    };
    let mut op = Attention::new(hq, d)
        .grouped(hkv)
        .columns(cols.0, cols.1, cols.2);
    if causal {
        op = op.causal();
    }
    let o = g.attention(op, q, k, v, m, p)?;
    g.output("o", o);
    let keys = past.map_or(skv, |p| p as usize + sq);
    let name = format!(
        "gqa b{b} h{hq}/{hkv} d{d} sq{sq} skv{skv} causal={causal} mask={mask} past={past:?} fused={fused}"
    );
    Ok(OpCase {
        work: Work::Flops(4.0 * (b * hq * sq * keys * d) as f64),
        ..OpCase::new("attention", name, g, feeds)
    })
}

fn attention(rng: &mut Rng) -> Result<Vec<OpCase>> {
    let mut out = [
        (1, 1, 1, 1, 1, false, false, None, false),
        (2, 3, 7, 17, 17, false, true, None, true),
        (1, 12, 64, 65, 65, true, false, None, true),
        (3, 2, 32, 63, 63, false, true, None, false),
        (1, 4, 16, 1, 129, false, false, None, false),
        (2, 2, 64, 7, 127, true, true, None, false),
        // KV-cache decoding: one query at position `past` over a preallocated cache.
        (1, 12, 64, 1, 1000, true, false, Some(17), false),
        (1, 12, 64, 1, 1024, true, false, Some(478), false),
        (1, 12, 64, 1, 1024, true, false, Some(479), false),
        (1, 12, 64, 1, 1024, true, false, Some(600), false),
        (1, 12, 64, 1, 1024, true, false, Some(1023), false),
        (1, 4, 32, 3, 1024, true, true, Some(700), false),
        (2, 3, 16, 5, 64, true, false, Some(0), false),
        (1, 2, 8, 3, 40, true, true, Some(36), false),
    ]
    .into_iter()
    .map(|c| (c, false))
    .chain(
        // With a per-head score bias: f32 and vec4 rows, few query rows (decoding-style), a
        // causal limit, a cache offset.
        [
            (2, 3, 7, 17, 17, false, true, None, true),
            (1, 12, 64, 65, 65, false, true, None, true),
            (3, 2, 32, 63, 63, true, false, None, false),
            (1, 4, 16, 3, 129, false, true, None, false),
            (1, 2, 8, 3, 40, true, true, Some(36), false),
        ]
        .map(|c| (c, true)),
    )
    .map(|(c, bias)| attention_case_in(c, false, bias, rng))
    .collect::<Result<Vec<_>>>()?;
    let ropes = [
        // RoPE on fused QKV rows: tiny, odd head sizes, SmolLM2-135M's 9 + 3 heads of 64 with
        // its V, a decoding step, and positions past the table (clamped to its last row).
        (1, 1, 1, 2, 0, 1, None),
        (2, 17, 3, 8, 8, 17, None),
        (3, 63, 2, 6, 5, 64, None),
        (1, 65, 12, 64, 192, 128, None),
        (1, 1, 12, 64, 192, 1024, Some(599)),
        (2, 3, 4, 16, 1, 40, Some(36)),
        (1, 63, 2, 32, 0, 1024, Some(1000)),
    ];
    for c in ropes {
        out.push(rope_case(c, rng)?);
    }
    // Grouped-query attention: SmolLM2-135M's 9 query / 3 kv heads of 64 over a fused QKV
    // prefill and a decoding step over its caches, odd head sizes, multi-query (1 kv head).
    let gqa: [GqaCase; 5] = [
        (1, 9, 3, 64, 17, 17, true, false, None, true),
        (2, 6, 2, 6, 5, 7, false, true, None, false),
        (1, 9, 3, 64, 1, 1024, true, false, Some(599), false),
        (1, 4, 1, 16, 3, 40, true, true, Some(36), false),
        (3, 8, 2, 32, 63, 63, true, true, None, true),
    ];
    for c in gqa {
        out.push(gqa_case(c, rng)?);
    }
    Ok(out)
}

/// A conv2d problem: (batch, channels, input size, outputs, kernel, stride, padding, dilation,
/// groups, activation, bias, residual).
type ConvCase = (
    usize,
    usize,
    (usize, usize),
    usize,
    (usize, usize),
    usize,
    usize,
    usize,
    usize,
    Act,
    bool,
    bool,
);

fn conv_case(cc: ConvCase, rng: &mut Rng) -> Result<OpCase> {
    conv_case_on(cc, None, rng)
}

/// [`conv_case`] with the kernel forced (`None`: the default choice).
fn conv_case_on(
    cc: ConvCase,
    variant: Option<super::conv2d::ConvVariant>,
    rng: &mut Rng,
) -> Result<OpCase> {
    let (n, c, hw, o, k, s, p, dil, groups, act, bias, res) = cc;
    let op = Conv2d {
        stride: [s, s],
        padding: [p, p],
        dilation: [dil, dil],
        groups,
        act,
        variant,
        ..Default::default()
    };
    let mut g = Graph::new();
    let x = g.input("x", &[n, c, hw.0, hw.1], DType::F32)?;
    let w = g.constant_tensor("w", rng.tensor(&[o, c / groups, k.0, k.1], -0.5, 0.5))?;
    let mut feeds = vec![rng.tensor(&[n, c, hw.0, hw.1], -1.0, 1.0)];
    let b = if bias {
        Some(g.constant_tensor("b", rng.tensor(&[o], -1.0, 1.0))?)
    } else {
        None
    };
    let r = if res {
        let ho = (hw.0 + 2 * p - dil * (k.0 - 1) - 1) / s + 1;
        let wo = (hw.1 + 2 * p - dil * (k.1 - 1) - 1) / s + 1;
        feeds.push(rng.tensor(&[n, o, ho, wo], -1.0, 1.0));
        Some(g.input("r", &[n, o, ho, wo], DType::F32)?)
    } else {
        None
    };
    let y = g.conv2d(op, x, w, b, r)?;
    g.output("y", y);
    let forced = variant.map_or(String::new(), |v| format!(" {}", v.name()));
    let name = format!(
        "n{n} c{c} {hw:?} o{o} k{k:?} s{s} p{p} d{dil} g{groups} {act:?} bias={bias} res={res}{forced}"
    );
    Ok(OpCase::new("conv2d", name, g, feeds))
}

/// One convolution of a [`conv_chain`] case (square kernel, stride, padding).
struct ChainStep {
    o: usize,
    k: usize,
    s: usize,
    p: usize,
    act: Act,
    bias: bool,
    res: bool,
}

/// Convolutions applied one after another to x [n, c, h, w]. With `fan_out`, every
/// intermediate is also a graph output and is read by a second 1x1 convolution, so no edge
/// has a single reader.
fn conv_chain(
    rng: &mut Rng,
    (n, c, hw): (usize, usize, (usize, usize)),
    steps: &[ChainStep],
    fan_out: bool,
) -> Result<OpCase> {
    let mut g = Graph::new();
    let x = g.input("x", &[n, c, hw.0, hw.1], DType::F32)?;
    let mut feeds = vec![rng.tensor(&[n, c, hw.0, hw.1], -1.0, 1.0)];
    let (mut v, mut ch, mut h, mut w) = (x, c, hw.0, hw.1);
    let mut name = format!("chain n{n} c{c} {hw:?}");
    for (i, st) in steps.iter().enumerate() {
        let op = Conv2d {
            stride: [st.s, st.s],
            padding: [st.p, st.p],
            act: st.act,
            ..Default::default()
        };
        let wt = g.constant_tensor(
            &format!("w{i}"),
            rng.tensor(&[st.o, ch, st.k, st.k], -0.5, 0.5),
        )?;
        let b = if st.bias {
            Some(g.constant_tensor(&format!("b{i}"), rng.tensor(&[st.o], -1.0, 1.0))?)
        } else {
            None
        };
        h = (h + 2 * st.p - st.k) / st.s + 1;
        w = (w + 2 * st.p - st.k) / st.s + 1;
        let r = if st.res {
            feeds.push(rng.tensor(&[n, st.o, h, w], -1.0, 1.0));
            Some(g.input(&format!("r{i}"), &[n, st.o, h, w], DType::F32)?)
        } else {
            None
        };
        v = g.conv2d(op, v, wt, b, r)?;
        ch = st.o;
        if fan_out && i + 1 < steps.len() {
            g.output(&format!("y{i}"), v);
            let w1 = g.constant_tensor(&format!("f{i}"), rng.tensor(&[3, ch, 1, 1], -0.5, 0.5))?;
            let side = g.conv2d(Conv2d::default(), v, w1, None, None)?;
            g.output(&format!("side{i}"), side);
        }
        let _ = write!(
            name,
            " -> o{} k{} s{} p{} {:?}{}{}",
            st.o,
            st.k,
            st.s,
            st.p,
            st.act,
            if st.bias { " bias" } else { "" },
            if st.res { " res" } else { "" }
        );
    }
    if fan_out {
        name.push_str(" fan-out");
    }
    g.output("y", v);
    Ok(OpCase::new("conv2d", name, g, feeds))
}

fn conv_pool_upsample(rng: &mut Rng) -> Result<Vec<OpCase>> {
    let mut out = Vec::new();
    // Widths that are multiples of 4 take the vec4 packing path; 7 and 3 channels leave a
    // partial channel quad, batch 2 checks image boundaries.
    for c in [
        (2, 7, (6, 8), 5, (3, 3), 1, 1, 1, 1, Act::None, true, false),
        (
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
        ),
        (1, 1, (1, 1), 1, (1, 1), 1, 0, 1, 1, Act::None, false, false),
        (
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
        ),
        (2, 7, (13, 9), 5, (3, 3), 1, 1, 1, 1, Act::None, true, true),
        (
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
        ),
        (
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
        ),
        (1, 6, (9, 9), 9, (3, 3), 2, 1, 1, 3, Act::None, true, false),
        (
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
        ),
        (
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
        ),
        (
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
        ),
    ] {
        out.push(conv_case(c, rng)?);
    }
    // Depthwise (groups = channels = outputs): the depthwise kernel by default; awkward widths
    // (partial 4-wide strips), strides, dilation, 5x5, a residual; and the direct kernel
    // forced on the same kind of problem.
    let dw = |c, hw, k, s, p, d, act, bias, res| (1, c, hw, c, k, s, p, d, c, act, bias, res);
    for c in [
        dw(17, (13, 11), (3, 3), 2, 1, 1, Act::Silu, true, false),
        dw(65, (7, 5), (5, 5), 1, 2, 1, Act::Relu, false, true),
        dw(3, (1, 1), (3, 3), 1, 1, 1, Act::None, true, false),
        dw(64, (40, 40), (3, 3), 1, 1, 1, Act::Silu, true, false),
        dw(8, (17, 63), (3, 3), 1, 2, 2, Act::None, true, true),
        dw(2, (9, 127), (7, 7), 3, 3, 1, Act::GeluErf, true, false),
    ] {
        out.push(conv_case(c, rng)?);
    }
    out.push(conv_case_on(
        (
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
            true,
        ),
        Some(super::conv2d::ConvVariant::Direct),
        rng,
    )?);
    // Chains: a convolution whose only reader is the next one writes that one's input
    // texture directly (a sigmoid producer with 17 outputs leaves a partial quad whose extra
    // lanes must be stored as 0; a producer with a residual; paddings 1, 2 and 0 downstream;
    // batch 2), and a fan-out / graph-output case where no edge may be fused.
    let step = |o, k, s, p, act, bias, res| ChainStep {
        o,
        k,
        s,
        p,
        act,
        bias,
        res,
    };
    out.push(conv_chain(
        rng,
        (2, 3, (17, 17)),
        &[
            step(17, 3, 2, 1, Act::Sigmoid, true, false),
            step(16, 3, 1, 1, Act::Silu, true, true),
            step(5, 1, 1, 0, Act::None, false, false),
        ],
        false,
    )?);
    out.push(conv_chain(
        rng,
        (1, 16, (20, 20)),
        &[
            step(32, 3, 1, 1, Act::Silu, true, false),
            step(65, 5, 1, 2, Act::Relu, true, true),
            step(8, 3, 2, 1, Act::GeluErf, true, false),
        ],
        false,
    )?);
    out.push(conv_chain(
        rng,
        (1, 8, (9, 11)),
        &[
            step(12, 3, 1, 1, Act::Silu, true, false),
            step(12, 3, 1, 1, Act::Silu, true, false),
        ],
        true,
    )?);
    for (shape, k, s, p) in [
        (vec![1usize, 1, 1, 1], 1usize, 1usize, 0usize),
        (vec![1, 7, 20, 20], 5, 1, 2),
        (vec![2, 3, 17, 15], 2, 2, 0),
        (vec![1, 3, 17, 17], 3, 2, 1),
    ] {
        let name = format!("{shape:?} k{k} s{s} p{p}");
        out.push(one_input("maxpool2d", name, &shape, rng, |g, x| {
            Ok(vec![g.maxpool2d(x, k, s, p)?])
        })?);
    }
    for (shape, sc) in [
        (vec![1usize, 1, 1, 1], 2usize),
        (vec![2, 3, 7, 5], 2),
        (vec![1, 17, 3, 4], 3),
        (vec![2, 3, 7, 6], 2), // even widths: the vec4 path
        (vec![1, 5, 1, 2], 2),
    ] {
        let name = format!("{shape:?} x{sc}");
        out.push(one_input("upsample_nearest", name, &shape, rng, |g, x| {
            Ok(vec![g.upsample_nearest(x, sc)?])
        })?);
    }
    Ok(out)
}

/// lavapipe stops an invocation after 65535 loop iterations in total; kernels must stay well
/// below that for large reductions. These shapes used to cross it.
fn long_reductions(rng: &mut Rng) -> Result<Vec<OpCase>> {
    let mut out = Vec::new();
    for v in MatmulVariant::ALL {
        let o1 = MatmulOpts {
            trans: true,
            bias: true,
            ..PLAIN
        };
        out.push(matmul_case(v, (5, 3100, 7), o1, rng)?);
        let o2 = MatmulOpts {
            constant: false,
            ..PLAIN
        };
        out.push(matmul_case(v, (9, 4099, 65), o2, rng)?);
    }
    for n in [70_001usize, 200_003] {
        out.push(mean_case(&[n, 2], 0, rng)?);
        out.push(softmax_case(2, n, rng, -5.0, 5.0)?);
        out.push(layernorm_case(2, n, 1e-5, rng, -1.0, 1.0)?);
    }
    out.push(conv_case(
        (
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
        ),
        rng,
    )?);
    // More workgroups than one dispatch dimension holds (65535): 2.25M output pixels are
    // 70313 pixel blocks of the texture kernel and 281250 of the direct one, folded into a
    // 2-D grid (YOLO at imgsz 3328 has 1.3M pixels in its first layer).
    out.push(conv_case(
        (
            1,
            1,
            (1500, 1500),
            8,
            (3, 3),
            1,
            1,
            1,
            1,
            Act::Silu,
            true,
            false,
        ),
        rng,
    )?);
    Ok(out)
}

/// The shapes the models use at their real sizes: MiniLM / BERT-base / GPT-2 / ViT matmuls,
/// attention of BERT-base and GPT-2 prefill and decode, row kernels, and YOLOv8n convolutions.
fn bench(rng: &mut Rng) -> Result<Vec<OpCase>> {
    let mut out = Vec::new();
    for (m, k, n) in [
        (1024, 1024, 1024),
        (2048, 384, 1536),
        (128, 768, 2304),
        (1, 768, 50257),
    ] {
        let a = rng.tensor(&[m, k], -1.0, 1.0);
        let w = Constant::new("w", rng.tensor(&[n, k], -0.05, 0.05));
        for v in MatmulVariant::ALL {
            let mut g = Graph::new();
            let x = g.input("a", &[m, k], DType::F32)?;
            let wv = g.constant(&w)?;
            let op = Matmul {
                layout: Layout::NxK,
                variant: Some(v),
                ..Default::default()
            };
            let c = g.node1(op, &[x, wv])?;
            g.output("c", c);
            out.push(
                OpCase::new(
                    format!("matmul/{}", v.name()),
                    format!("{m}x{k}x{n}"),
                    g,
                    vec![a.clone()],
                )
                .forcing(v.name(), Box::new(move |d| v.supports(d, m, k, n, true))),
            );
        }
    }
    // BERT-base batch 8 x 128, GPT-2 prefill 1 x 128 (causal), one decode step over 600 keys.
    for c in [
        (8, 12, 64, 128, 128, false, false, None, true),
        (1, 12, 64, 128, 128, true, false, None, true),
        (1, 12, 64, 1, 1024, true, false, Some(599), false),
    ] {
        out.push(attention_case_in(c, true, false, rng)?);
    }
    // MPNet-base batch 8 x 128: the same with its relative position bias and padding mask.
    out.push(attention_case_in(
        (8, 12, 64, 128, 128, false, true, None, true),
        true,
        true,
        rng,
    )?);
    for (rows, n) in [(2048, 768), (4, 50257)] {
        out.push(softmax_case(rows, n, rng, -2.0, 2.0)?);
    }
    out.push(layernorm_case(2048, 768, 1e-5, rng, -2.0, 2.0)?);
    // YOLOv8n convolutions at 640: (c_in, c_out, k, stride, side of the input).
    for (ci, co, k, s, hw) in [
        (3, 16, 3, 2, 640),
        (16, 32, 3, 2, 320),
        (32, 32, 3, 1, 160),
        (128, 64, 1, 1, 40),
    ] {
        let c = (
            1,
            ci,
            (hw, hw),
            co,
            (k, k),
            s,
            k / 2,
            1,
            1,
            Act::Silu,
            true,
            false,
        );
        out.push(conv_case(c, rng)?);
    }
    // YOLO11n's Detect-head depthwise 3x3 on 64 channels at 80x80: both kernels that run it.
    for v in [
        super::conv2d::ConvVariant::Direct,
        super::conv2d::ConvVariant::Depthwise,
    ] {
        let c = (
            1,
            64,
            (80, 80),
            64,
            (3, 3),
            1,
            1,
            1,
            64,
            Act::Silu,
            true,
            false,
        );
        out.push(conv_case_on(c, Some(v), rng)?.forcing(v.name(), Box::new(|_| true)));
    }
    Ok(out)
}
