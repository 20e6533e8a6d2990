//! Which kernels a device may use: parsed once (from the environment, or set by the caller) and
//! kept on the [`Device`](super::Device). Ops read it while lowering; nothing else reads the
//! environment.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// The kernel policy of a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelPolicy {
    /// Only kernels a browser's WebGPU can run: no subgroup operations, and the device is opened
    /// with WebGPU's default compute limits (256 invocations per workgroup, 8 storage buffers
    /// per stage, 16 KiB of workgroup memory), so a kernel beyond them fails validation instead
    /// of passing silently. This is the variant set the web build uses; on a native adapter it
    /// lets the parity suite prove that set.
    pub portable: bool,
    /// Measure kernel variants on the first use of a shape class (the choice is cached).
    pub autotune: bool,
    /// Let a producer write its output straight in the device layout its sole consumer reads
    /// (a convolution writing the next convolution's padded NHWC4 texture), skipping the
    /// consumer's packing dispatch. On unless `WGPU_INFER_FUSE_LAYOUTS=0` (for comparisons).
    pub fuse_layouts: bool,
    /// A forced variant per op family (`"matmul"` → `"reg"`), used whenever that variant can run
    /// the problem. An unknown variant name is an error when a graph is compiled.
    pub force: BTreeMap<String, String>,
}

impl Default for KernelPolicy {
    fn default() -> Self {
        KernelPolicy {
            portable: false,
            autotune: true,
            fuse_layouts: true,
            force: BTreeMap::new(),
        }
    }
}

/// Environment variables that force one op family's variant.
const FORCE_VARS: [(&str, &str); 3] = [
    ("WGPU_INFER_MATMUL", "matmul"),
    ("WGPU_INFER_ATTENTION", "attention"),
    ("WGPU_INFER_CONV", "conv2d"),
];

impl KernelPolicy {
    /// The browser-safe variant set (see [`KernelPolicy::portable`]).
    pub fn portable() -> Self {
        KernelPolicy {
            portable: true,
            ..Default::default()
        }
    }

    /// The policy from the environment:
    /// `WGPU_INFER_KERNELS=portable|all`, `WGPU_INFER_AUTOTUNE=0|1`, and forced variants
    /// `WGPU_INFER_MATMUL=tiled|reg|texture`, `WGPU_INFER_ATTENTION=buffer|texture|keys`,
    /// `WGPU_INFER_CONV=direct|texture|depthwise`, `WGPU_INFER_FUSE_LAYOUTS=0|1`.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
    }

    /// [`KernelPolicy::from_env`] over any variable lookup (for tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let mut p = KernelPolicy::default();
        if let Some(v) = get("WGPU_INFER_KERNELS") {
            p.portable = match v.trim() {
                "portable" => true,
                "all" | "default" => false,
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "WGPU_INFER_KERNELS='{other}': expected 'portable' or 'all'"
                    )))
                }
            };
        }
        if let Some(v) = get("WGPU_INFER_AUTOTUNE") {
            p.autotune = match v.trim() {
                "0" | "false" | "off" => false,
                "1" | "true" | "on" => true,
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "WGPU_INFER_AUTOTUNE='{other}': expected 0 or 1"
                    )))
                }
            };
        }
        if let Some(v) = get("WGPU_INFER_FUSE_LAYOUTS") {
            p.fuse_layouts = match v.trim() {
                "0" | "false" | "off" => false,
                "1" | "true" | "on" => true,
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "WGPU_INFER_FUSE_LAYOUTS='{other}': expected 0 or 1"
                    )))
                }
            };
        }
        for (var, op) in FORCE_VARS {
            if let Some(v) = get(var) {
                p.force.insert(op.to_string(), v.trim().to_string());
            }
        }
        Ok(p)
    }

    /// This policy with `op`'s variant forced to `variant`.
    pub fn with_forced(mut self, op: &str, variant: &str) -> Self {
        self.force.insert(op.to_string(), variant.to_string());
        self
    }

    /// The forced variant of an op family, if any.
    pub fn forced(&self, op: &str) -> Option<&str> {
        self.force.get(op).map(String::as_str)
    }

    /// Short description for `wgpu-infer info` and bench headers.
    pub fn describe(&self) -> String {
        let mut s = String::from(if self.portable { "portable" } else { "all" });
        if !self.autotune {
            s.push_str(", autotune off");
        }
        if !self.fuse_layouts {
            s.push_str(", layout fusion off");
        }
        for (op, v) in &self.force {
            s.push_str(&format!(", {op}={v}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(kv: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| kv.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn parses_the_environment_once_into_one_value() {
        let p = KernelPolicy::from_vars(vars(&[
            ("WGPU_INFER_KERNELS", "portable"),
            ("WGPU_INFER_AUTOTUNE", "0"),
            ("WGPU_INFER_MATMUL", "reg"),
        ]))
        .unwrap();
        assert!(p.portable && !p.autotune && p.fuse_layouts);
        let off = KernelPolicy::from_vars(vars(&[("WGPU_INFER_FUSE_LAYOUTS", "0")])).unwrap();
        assert!(!off.fuse_layouts && off.describe().contains("layout fusion off"));
        assert_eq!(p.forced("matmul"), Some("reg"));
        assert_eq!(p.forced("conv2d"), None);
        assert_eq!(
            KernelPolicy::from_vars(vars(&[])).unwrap(),
            KernelPolicy::default()
        );
        let e = KernelPolicy::from_vars(vars(&[("WGPU_INFER_KERNELS", "fast")])).unwrap_err();
        assert!(e.to_string().contains("WGPU_INFER_KERNELS"), "{e}");
        let e = KernelPolicy::from_vars(vars(&[("WGPU_INFER_AUTOTUNE", "maybe")])).unwrap_err();
        assert!(e.to_string().contains("WGPU_INFER_AUTOTUNE"), "{e}");
        let e = KernelPolicy::from_vars(vars(&[("WGPU_INFER_FUSE_LAYOUTS", "x")])).unwrap_err();
        assert!(e.to_string().contains("WGPU_INFER_FUSE_LAYOUTS"), "{e}");
    }
}
