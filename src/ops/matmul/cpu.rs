//! The matmul reference kernel: plain loops, split across threads on native builds (the CPU
//! backend is the oracle, but it should not take minutes on model-sized problems).

/// Worker threads for the reference loops (one in the browser, which has no threads here).
fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    {
        std::thread::available_parallelism().map_or(1, |t| t.get())
    }
    #[cfg(target_arch = "wasm32")]
    {
        1
    }
}

/// Runs `f(part)` for parts `0..n`, on threads when there are several.
fn for_parts<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    #[cfg(not(target_arch = "wasm32"))]
    if n > 1 {
        let f = &f;
        return std::thread::scope(|s| {
            let handles: Vec<_> = (0..n).map(|t| s.spawn(move || f(t))).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
    }
    (0..n).map(f).collect()
}

/// C[m, n] = A[m, k] · B[k, n], rows split across threads. Plain loops in i-k-j order.
pub(super) fn gemm_nn(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    let rows_per = m.div_ceil(threads().min(m).max(1)).max(1);
    let parts = for_parts(m.div_ceil(rows_per), |t| {
        let (r0, r1) = (t * rows_per, ((t + 1) * rows_per).min(m));
        let mut out = vec![0.0f32; (r1 - r0) * n];
        for (i, c_row) in out.chunks_mut(n).enumerate() {
            let a_row = &a[(r0 + i) * k..(r0 + i + 1) * k];
            for (kk, &av) in a_row.iter().enumerate() {
                let b_row = &b[kk * n..(kk + 1) * n];
                for (cv, &bv) in c_row.iter_mut().zip(b_row) {
                    *cv += av * bv;
                }
            }
        }
        out
    });
    for (t, part) in parts.iter().enumerate() {
        let r0 = t * rows_per;
        c[r0 * n..r0 * n + part.len()].copy_from_slice(part);
    }
}

/// Dot product with 8 partial sums (lets the compiler use SIMD without reassociating).
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (a, b) in xc.zip(yc) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (a, b) in xr.iter().zip(yr) {
        s += a * b;
    }
    s
}

/// C[m, n] = A[m, k] · B[n, k]ᵀ: one dot product per output, columns split across threads
/// (so a single row, as in decoding, still uses every core).
pub(super) fn gemm_nt(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    let cols_per = n.div_ceil(threads().min(n).max(1)).max(1);
    let parts = for_parts(n.div_ceil(cols_per), |t| {
        let (n0, n1) = (t * cols_per, ((t + 1) * cols_per).min(n));
        let mut out = vec![0.0f32; m * (n1 - n0)];
        for i in 0..m {
            let a_row = &a[i * k..(i + 1) * k];
            for nn in n0..n1 {
                out[i * (n1 - n0) + nn - n0] = dot(a_row, &b[nn * k..(nn + 1) * k]);
            }
        }
        out
    });
    for (t, part) in parts.iter().enumerate() {
        let (n0, n1) = (t * cols_per, ((t + 1) * cols_per).min(n));
        for i in 0..m {
            c[i * n + n0..i * n + n1].copy_from_slice(&part[i * (n1 - n0)..(i + 1) * (n1 - n0)]);
        }
    }
}
