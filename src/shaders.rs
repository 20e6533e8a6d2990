//! The WGSL sources, compiled into the binary with `include_str!`.
//!
//! A shader may contain `//#include "file.wgsl"` lines (shared helpers), `{{KEY}}`
//! placeholders whose defaults are declared with `//#default KEY VALUE`, and blocks kept only
//! for some values: `//#if KEY == VALUE` (or `!=`) ... `//#endif`. Kernels are
//! specialised by substituting placeholders, so every specialisation is plain WGSL that naga
//! validates before wgpu sees it.

use crate::error::{Error, Result};

/// A top-level kernel source.
pub(crate) struct ShaderDef {
    pub name: &'static str,
    pub source: &'static str,
}

macro_rules! shaders {
    ($($name:literal),* $(,)?) => {
        /// Every shader file, kernels and includes.
        pub(crate) const SHADERS: &[ShaderDef] = &[
            $(ShaderDef { name: $name, source: include_str!(concat!("../shaders/", $name)) },)*
        ];
    };
}

shaders!(
    "common.wgsl",
    "activations.wgsl",
    "reduce_tree.wgsl",
    "reduce_subgroup.wgsl",
    "elementwise.wgsl",
    "glu.wgsl",
    "binary.wgsl",
    "copy.wgsl",
    "softmax.wgsl",
    "layernorm.wgsl",
    "layernorm_v4.wgsl",
    "rope.wgsl",
    "reduce_mean.wgsl",
    "embedding.wgsl",
    "matmul_tiled.wgsl",
    "matmul_reg.wgsl",
    "matmul_cw.wgsl",
    "matmul_pack_a.wgsl",
    "matmul_gemv.wgsl",
    "attention.wgsl",
    "attention_keys.wgsl",
    "attention_pack.wgsl",
    "attention_tex.wgsl",
    "conv2d.wgsl",
    "conv2d_dw.wgsl",
    "conv2d_pack.wgsl",
    "conv2d_tex.wgsl",
    "maxpool2d.wgsl",
    "upsample.wgsl",
    "kv_write.wgsl",
    "yolo_decode.wgsl",
    "fma_peak.wgsl",
);

/// Files that are only included by others (not validated on their own).
#[cfg(test)]
const INCLUDE_ONLY: &[&str] = &[
    "common.wgsl",
    "activations.wgsl",
    "reduce_tree.wgsl",
    "reduce_subgroup.wgsl",
];

pub(crate) fn source(name: &str) -> Result<&'static str> {
    SHADERS
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.source)
        .ok_or_else(|| Error::Shader {
            name: name.into(),
            msg: "no such shader".into(),
        })
}

/// Names of kernels (shaders that are not include-only).
#[cfg(test)]
pub(crate) fn kernels() -> impl Iterator<Item = &'static ShaderDef> {
    SHADERS.iter().filter(|s| !INCLUDE_ONLY.contains(&s.name))
}

/// Expands includes and placeholders. `defines` override the `//#default` values. Lines are
/// substituted before directives run, so an include name may itself use a placeholder; a default
/// must be declared before its first use.
pub(crate) fn compose(name: &str, defines: &[(&str, String)]) -> Result<String> {
    let mut vars: Vec<(String, String)> = defines
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let mut out = String::new();
    expand(name, &mut out, &mut vars, 0)?;
    let code_line = |l: &&str| !l.trim_start().starts_with("//");
    if let Some(line) = out.lines().filter(code_line).find(|l| l.contains("{{")) {
        return Err(Error::Shader {
            name: name.into(),
            msg: format!("unresolved placeholder in: {}", line.trim()),
        });
    }
    Ok(out)
}

fn substitute(line: &str, vars: &[(String, String)]) -> String {
    let t = line.trim_start();
    if t.starts_with("//") && !t.starts_with("//#") {
        // Comments may mention placeholders; leave them alone.
        return line.to_string();
    }
    let mut l = line.to_string();
    for (k, v) in vars {
        if l.contains("{{") {
            l = l.replace(&format!("{{{{{k}}}}}"), v);
        }
    }
    l
}

fn expand(
    name: &str,
    out: &mut String,
    vars: &mut Vec<(String, String)>,
    depth: usize,
) -> Result<()> {
    if depth > 4 {
        return Err(Error::Shader {
            name: name.into(),
            msg: "include nesting too deep".into(),
        });
    }
    // Stack of enclosing `//#if` conditions; a line is kept when all hold.
    let mut keep: Vec<bool> = Vec::new();
    for raw in source(name)?.lines() {
        let line = substitute(raw, vars);
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("//#if") {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            let cond = match parts.as_slice() {
                [k, op, v] if *op == "==" || *op == "!=" => {
                    let cur = vars.iter().find(|(n, _)| n == k).map(|(_, x)| x.as_str());
                    (cur == Some(*v)) == (*op == "==")
                }
                _ => {
                    return Err(Error::Shader {
                        name: name.into(),
                        msg: format!("bad directive '{t}' (want //#if KEY == VALUE)"),
                    })
                }
            };
            keep.push(cond);
            continue;
        }
        if t.starts_with("//#endif") {
            if keep.pop().is_none() {
                return Err(Error::Shader {
                    name: name.into(),
                    msg: "//#endif without //#if".into(),
                });
            }
            continue;
        }
        if keep.iter().any(|k| !k) {
            continue;
        }
        if let Some(rest) = t.strip_prefix("//#include") {
            let inc = rest.trim().trim_matches('"');
            expand(inc, out, vars, depth + 1)?;
        } else if let Some(rest) = t.strip_prefix("//#default") {
            // `//#default KEY VALUE`; a missing value means empty text.
            let mut it = rest.split_whitespace();
            if let Some(k) = it.next() {
                let v = it.next().unwrap_or("");
                if !vars.iter().any(|(name, _)| name == k) {
                    vars.push((k.to_string(), v.to_string()));
                }
            }
        } else {
            out.push_str(&line);
            out.push('\n');
        }
    }
    if !keep.is_empty() {
        return Err(Error::Shader {
            name: name.into(),
            msg: "//#if without //#endif".into(),
        });
    }
    Ok(())
}

/// Validates WGSL with naga (no adapter needed) with every capability our kernels may use.
/// Errors carry naga's annotated message.
#[cfg(test)]
pub(crate) fn validate(name: &str, src: &str) -> Result<naga::Module> {
    use naga::valid::Capabilities as C;
    validate_with(
        name,
        src,
        C::SUBGROUP | C::SUBGROUP_BARRIER | C::SHADER_FLOAT16 | C::SHADER_FLOAT16_IN_FLOAT32,
    )
}

/// Validates WGSL with naga for a device with capabilities `caps`: a kernel that needs more
/// (subgroups on a device without them) is refused here, with naga's annotated message.
pub(crate) fn validate_with(
    name: &str,
    src: &str,
    caps: naga::valid::Capabilities,
) -> Result<naga::Module> {
    use naga::valid::{ValidationFlags, Validator};
    let module = naga::front::wgsl::parse_str(src).map_err(|e| Error::Shader {
        name: name.into(),
        msg: e.emit_to_string(src),
    })?;
    let mut v = Validator::new(ValidationFlags::all(), caps);
    if caps.contains(naga::valid::Capabilities::SUBGROUP) {
        v.subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all());
    }
    v.validate(&module).map_err(|e| Error::Shader {
        name: name.into(),
        msg: e.emit_to_string(src),
    })?;
    Ok(module)
}
