// Activation functions. ACT selects one at specialisation time:
// 0 none, 1 GELU (erf), 2 GELU (tanh), 3 SiLU, 4 sigmoid, 5 erf, 6 ReLU, 7 tanh,
// 8 quick GELU (x * sigmoid(1.702 x), CLIP).

// erfc for z >= 0 with relative error ~1.2e-7 (Chebyshev fit, Numerical Recipes `erfcc`).
fn erfc_pos(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
        + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
    return t * exp(-z * z + p);
}

fn erf_f32(x: f32) -> f32 {
    let z = abs(x);
    var r: f32;
    if (z < 0.5) {
        // Taylor series: the erfc form loses relative accuracy near 0.
        let s = x * x;
        r = z * (1.1283791671 + s * (-0.3761263890 + s * (0.1128379167 + s * (-0.0268661706
            + s * (0.0052239776 - s * 0.0008548327)))));
    } else {
        r = 1.0 - erfc_pos(z);
    }
    return select(r, -r, x < 0.0);
}

// 0.5 x (1 + erf(x / sqrt 2)), written with erfc on the negative side to keep relative accuracy.
fn gelu_erf(x: f32) -> f32 {
    let z = abs(x) * 0.70710678118654752;
    if (z < 0.5) {
        return 0.5 * x * (1.0 + erf_f32(x * 0.70710678118654752));
    }
    let c = erfc_pos(z);
    return select(x * (1.0 - 0.5 * c), 0.5 * x * c, x < 0.0);
}

fn gelu_tanh(x: f32) -> f32 {
    // tanh(u) = 1 - 2 / (exp(2u) + 1), clamped so exp cannot overflow.
    let u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
    let e = exp(2.0 * clamp(u, -20.0, 20.0));
    return 0.5 * x * (2.0 - 2.0 / (e + 1.0));
}

fn tanh_f32(x: f32) -> f32 {
    // 1 - 2 / (exp(2x) + 1), with exp's argument clamped so it cannot overflow; odd symmetry
    // keeps small |x| accurate.
    let e = exp(2.0 * clamp(abs(x), 0.0, 20.0));
    let t = 1.0 - 2.0 / (e + 1.0);
    if (abs(x) < 0.004) {
        return x * (1.0 - x * x / 3.0);
    }
    return select(t, -t, x < 0.0);
}

fn sigmoid_f32(x: f32) -> f32 {
    // Branches keep exp's argument non-positive so neither side overflows.
    if (x >= 0.0) {
        return 1.0 / (1.0 + exp(-x));
    }
    let e = exp(x);
    return e / (1.0 + e);
}

fn activate(x: f32, act: u32) -> f32 {
    switch act {
        case 1u: { return gelu_erf(x); }
        case 2u: { return gelu_tanh(x); }
        case 3u: { return x * sigmoid_f32(x); }
        case 4u: { return sigmoid_f32(x); }
        case 5u: { return erf_f32(x); }
        case 6u: { return max(x, 0.0); }
        case 7u: { return tanh_f32(x); }
        case 8u: { return x * sigmoid_f32(1.702 * x); }
        default: { return x; }
    }
}

// activate() on four values at once (one switch per vec4).
fn activate4(v: vec4<f32>, act: u32) -> vec4<f32> {
    switch act {
        case 0u: { return v; }
        case 6u: { return max(v, vec4<f32>(0.0)); }
        default: {
            return vec4<f32>(activate(v.x, act), activate(v.y, act), activate(v.z, act), activate(v.w, act));
        }
    }
}
