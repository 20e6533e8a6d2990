//! safetensors from bytes: the header validated by the `safetensors` crate, and tensors
//! converted to f32 (or kept as f16) on request. Every error names the file and the tensor.

use crate::error::{Error, Result};
use crate::files::Bytes;
use crate::tensor::{DType, Tensor};
use half::{bf16, f16};
use safetensors::tensor::{Dtype, Metadata};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// An open safetensors file.
pub struct Weights {
    path: PathBuf,
    mmap: Bytes,
    data_start: usize,
    meta: Metadata,
    /// Prefix every lookup tries first (e.g. `bert.`), detected by the model.
    prefix: String,
    read: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Weights({})", self.path.display())
    }
}

/// Description of one tensor in a file.
#[derive(Clone, Debug)]
pub struct TensorMeta {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<usize>,
    pub bytes: usize,
}

impl Weights {
    /// Opens a safetensors file (memory-mapped with the `mmap` feature).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: impl AsRef<Path>) -> Result<Weights> {
        let path = path.as_ref().to_path_buf();
        let bytes = crate::files::read(&path)?;
        Self::from_bytes(path, bytes)
    }

    /// Parses safetensors data held in memory; `label` names it in errors.
    pub fn from_bytes(label: impl Into<PathBuf>, bytes: impl Into<Bytes>) -> Result<Weights> {
        let (path, mmap) = (label.into(), bytes.into());
        let (n, meta) =
            safetensors::SafeTensors::read_metadata(&mmap).map_err(|e| Error::Weights {
                path: path.clone(),
                msg: format!("not a valid safetensors file: {}", describe(&e)),
            })?;
        Ok(Weights {
            path,
            mmap,
            data_start: 8 + n,
            meta,
            prefix: String::new(),
            read: Mutex::default(),
        })
    }

    /// Total bytes of tensor data.
    pub fn data_bytes(&self) -> usize {
        self.mmap.len() - self.data_start
    }

    /// The bytes this file was parsed from.
    pub fn bytes(&self) -> &Bytes {
        &self.mmap
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor in the file, sorted by name.
    pub fn list(&self) -> Vec<TensorMeta> {
        let mut v: Vec<TensorMeta> = self
            .meta
            .tensors()
            .into_iter()
            .map(|(name, info)| TensorMeta {
                name,
                dtype: format!("{:?}", info.dtype),
                shape: info.shape.clone(),
                bytes: info.data_offsets.1 - info.data_offsets.0,
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn names(&self) -> Vec<String> {
        self.list().into_iter().map(|t| t.name).collect()
    }

    /// Lookups try `prefix + name` before `name`.
    pub fn set_prefix(&mut self, prefix: &str) {
        self.prefix = prefix.to_string();
    }

    /// The stored name for `name` (with the prefix, or with legacy LayerNorm gamma/beta names),
    /// if present.
    pub fn resolve(&self, name: &str) -> Option<String> {
        let mut cands = vec![format!("{}{name}", self.prefix), name.to_string()];
        // Old BERT checkpoints call LayerNorm parameters gamma / beta.
        if name.contains("LayerNorm") || name.contains("layer_norm") || name.contains("ln") {
            for c in cands.clone() {
                if let Some(s) = c.strip_suffix(".weight") {
                    cands.push(format!("{s}.gamma"));
                }
                if let Some(s) = c.strip_suffix(".bias") {
                    cands.push(format!("{s}.beta"));
                }
            }
        }
        cands.into_iter().find(|c| self.meta.info(c).is_some())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.resolve(name).is_some()
    }

    /// Shape of a tensor, if present.
    pub fn shape(&self, name: &str) -> Option<Vec<usize>> {
        self.resolve(name)
            .and_then(|n| self.meta.info(&n).map(|i| i.shape.clone()))
    }

    fn missing(&self, name: &str) -> Error {
        let near: Vec<String> = self
            .names()
            .into_iter()
            .filter(|n| {
                let tail = name.rsplit('.').take(2).collect::<Vec<_>>();
                tail.iter().all(|t| n.contains(t))
            })
            .take(3)
            .collect();
        Error::Weights {
            path: self.path.clone(),
            msg: format!(
                "missing tensor '{name}'{}",
                if near.is_empty() {
                    String::new()
                } else {
                    format!(" (similar: {})", near.join(", "))
                }
            ),
        }
    }

    /// A tensor converted to f32.
    pub fn get(&self, name: &str) -> Result<Tensor> {
        self.get_as(name, DType::F32)
    }

    /// A tensor with an expected shape, converted to f32.
    pub fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.get_shaped_as(name, shape, DType::F32)
    }

    pub fn get_shaped_as(&self, name: &str, shape: &[usize], dtype: DType) -> Result<Tensor> {
        // The shape is checked before any data is converted.
        let stored = self.shape(name).ok_or_else(|| self.missing(name))?;
        let loaded: &[usize] = if stored.is_empty() { &[1] } else { &stored };
        if loaded != shape {
            return Err(Error::Weights {
                path: self.path.clone(),
                msg: format!(
                    "tensor '{name}' has shape {loaded:?}, but the config implies {shape:?}"
                ),
            });
        }
        self.get_as(name, dtype)
    }

    /// A float tensor converted to `dtype` (F32, F16, or Q8: quantized in blocks of 32).
    pub fn get_as(&self, name: &str, dtype: DType) -> Result<Tensor> {
        let stored = self.resolve(name).ok_or_else(|| self.missing(name))?;
        let info = self.meta.info(&stored).expect("resolved name exists");
        let (s, e) = info.data_offsets;
        let bytes = &self.mmap[self.data_start + s..self.data_start + e];
        let shape = if info.shape.is_empty() {
            vec![1]
        } else {
            info.shape.clone()
        };
        let err = |msg: String| Error::Weights {
            path: self.path.clone(),
            msg: format!("tensor '{stored}': {msg}"),
        };
        let f32s: Vec<f32> = match info.dtype {
            Dtype::F32 => bytemuck::pod_collect_to_vec(bytes),
            Dtype::F16 => {
                let h: Vec<f16> = bytemuck::pod_collect_to_vec(bytes);
                if dtype == DType::F16 {
                    if let Some(i) = h.iter().position(|v| !v.is_finite()) {
                        return Err(err(format!("element {i} is not finite ({})", h[i])));
                    }
                    self.read
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(stored.clone());
                    return Tensor::from_f16(&shape, h);
                }
                h.iter().map(|x| x.to_f32()).collect()
            }
            Dtype::BF16 => {
                let h: Vec<bf16> = bytemuck::pod_collect_to_vec(bytes);
                h.iter().map(|x| x.to_f32()).collect()
            }
            Dtype::F64 => {
                let d: Vec<f64> = bytemuck::pod_collect_to_vec(bytes);
                d.iter().map(|&x| x as f32).collect()
            }
            other => return Err(err(format!("dtype {other:?} is not a float type"))),
        };
        if let Some(i) = f32s.iter().position(|v| !v.is_finite()) {
            return Err(err(format!("element {i} is not finite ({})", f32s[i])));
        }
        self.read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stored.clone());
        let t = Tensor::from_f32(&shape, f32s)?;
        match dtype {
            DType::F32 => Ok(t),
            // Found by fuzzing: values beyond f16's range became inf silently.
            DType::F16 => t.to_dtype(DType::F16).map_err(|e| match e {
                Error::InvalidArgument(m) => err(m),
                e => e,
            }),
            DType::Q8 => t.to_dtype(DType::Q8),
            DType::U32 => Err(err("cannot load weights as u32".into())),
        }
    }

    /// An integer tensor (i64, i32, u32, u8) as u32; negative or too-large values are errors.
    pub fn get_u32(&self, name: &str) -> Result<Tensor> {
        let stored = self.resolve(name).ok_or_else(|| self.missing(name))?;
        let info = self.meta.info(&stored).expect("resolved name exists");
        let (s, e) = info.data_offsets;
        let bytes = &self.mmap[self.data_start + s..self.data_start + e];
        let wide: Vec<i64> = match info.dtype {
            Dtype::I64 => bytemuck::pod_collect_to_vec(bytes),
            Dtype::I32 => bytemuck::pod_collect_to_vec::<u8, i32>(bytes)
                .into_iter()
                .map(i64::from)
                .collect(),
            Dtype::U32 => bytemuck::pod_collect_to_vec::<u8, u32>(bytes)
                .into_iter()
                .map(i64::from)
                .collect(),
            Dtype::U8 => bytes.iter().map(|&b| b as i64).collect(),
            other => {
                return Err(Error::Weights {
                    path: self.path.clone(),
                    msg: format!("tensor '{stored}': dtype {other:?} is not an integer type"),
                })
            }
        };
        let v = wide
            .iter()
            .map(|&x| u32::try_from(x))
            .collect::<std::result::Result<Vec<u32>, _>>()
            .map_err(|_| Error::Weights {
                path: self.path.clone(),
                msg: format!("tensor '{stored}' holds values outside u32"),
            })?;
        self.read
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(stored);
        let shape = if info.shape.is_empty() {
            vec![1]
        } else {
            info.shape.clone()
        };
        Tensor::from_u32(&shape, v)
    }

    /// Tensors never read so far (for "unexpected tensor" warnings).
    pub fn unread(&self) -> Vec<String> {
        let read = self.read.lock().unwrap_or_else(|p| p.into_inner());
        self.names()
            .into_iter()
            .filter(|n| !read.contains(n))
            .collect()
    }
}

fn describe(e: &safetensors::SafeTensorError) -> String {
    use safetensors::SafeTensorError as E;
    match e {
        E::HeaderTooSmall => "file shorter than the 8-byte header length".into(),
        E::HeaderTooLarge => "header length larger than allowed or than the file".into(),
        E::InvalidHeaderLength => "header length points past the end of the file".into(),
        E::MetadataIncompleteBuffer => {
            "file size does not match the tensors the header declares (truncated?)".into()
        }
        E::InvalidOffset(t) => format!("tensor '{t}' has overlapping or out-of-order offsets"),
        E::TensorInvalidInfo => "a tensor's byte range does not match its shape and dtype".into(),
        other => other.to_string(),
    }
}
