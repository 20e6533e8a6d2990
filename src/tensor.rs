//! Host tensors: a shape and a flat, row-major buffer of one dtype.

use crate::error::{Error, Result};
use half::f16;
use std::sync::Arc;

/// Element type of a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    U32,
    /// Symmetric int8 weights with one f32 scale per block of [`Q8_BLOCK`] along the last
    /// dimension (value = q · scale). Storage only: kernels dequantize, arithmetic stays f32.
    Q8,
}

/// Elements per scale block of a [`DType::Q8`] tensor (along its last dimension).
pub const Q8_BLOCK: usize = 32;

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 | DType::U32 => 4,
            DType::F16 => 2,
            // Plus one f32 scale per 32 elements (see `Tensor::storage_bytes`).
            DType::Q8 => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::U32 => "u32",
            DType::Q8 => "q8",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Shape and dtype of a value, without data.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ValueInfo {
    pub shape: Vec<usize>,
    pub dtype: DType,
}

impl ValueInfo {
    pub fn new(shape: &[usize], dtype: DType) -> Self {
        ValueInfo {
            shape: shape.to_vec(),
            dtype,
        }
    }
    pub fn f32(shape: &[usize]) -> Self {
        Self::new(shape, DType::F32)
    }
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn bytes(&self) -> usize {
        self.numel() * self.dtype.size()
    }
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

/// Flat element storage.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F16(Vec<f16>),
    U32(Vec<u32>),
    Q8(Q8Data),
}

/// The payload of a [`DType::Q8`] tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Q8Data {
    /// The int8 values, row-major like the tensor (in -127..=127).
    pub q: Vec<i8>,
    /// One scale per block of [`Q8_BLOCK`] along the last dimension: `[rows, ceil(last / 32)]`.
    pub scales: Vec<f32>,
}

impl Q8Data {
    /// Quantizes `v` (rows of `last` elements): each block's scale is its largest magnitude
    /// divided by 127 (1 for an all-zero block), q = round(x / scale).
    pub fn quantize(v: &[f32], last: usize) -> Q8Data {
        let last = last.max(1);
        let per_row = last.div_ceil(Q8_BLOCK);
        let rows = v.len() / last;
        let mut q = vec![0i8; v.len()];
        let mut scales = vec![1.0f32; rows * per_row];
        for r in 0..rows {
            for b in 0..per_row {
                let (s, e) = (
                    r * last + b * Q8_BLOCK,
                    r * last + ((b + 1) * Q8_BLOCK).min(last),
                );
                let amax = v[s..e].iter().fold(0.0f32, |m, x| m.max(x.abs()));
                let scale = if amax > 0.0 { amax / 127.0 } else { 1.0 };
                scales[r * per_row + b] = scale;
                for i in s..e {
                    q[i] = (v[i] / scale).round().clamp(-127.0, 127.0) as i8;
                }
            }
        }
        Q8Data { q, scales }
    }

    /// The values q · scale of rows of `last` elements.
    pub fn dequantize(&self, last: usize) -> Vec<f32> {
        let last = last.max(1);
        let per_row = last.div_ceil(Q8_BLOCK);
        self.q
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f32 * self.scales[(i / last) * per_row + (i % last) / Q8_BLOCK])
            .collect()
    }
}

/// A host tensor (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    // Shared so that clones and reshapes are free; writers go through `data_mut`.
    data: Arc<Data>,
}

/// Elements of `shape`, or an error when the product does not fit in `usize` (a shape from
/// untrusted input must never wrap around to a small number).
pub fn checked_numel(shape: &[usize]) -> Result<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "shape {shape:?} has more elements than this platform can address"
            ))
        })
}

/// Bytes of `shape` elements of `dtype`, checked like [`checked_numel`].
pub fn checked_bytes(shape: &[usize], dtype: DType) -> Result<usize> {
    checked_numel(shape)?
        .checked_mul(dtype.size())
        .ok_or_else(|| {
            Error::InvalidArgument(format!(
                "{dtype} tensor of shape {shape:?} needs more bytes than this platform can address"
            ))
        })
}

fn check_len(shape: &[usize], len: usize) -> Result<()> {
    let n = checked_numel(shape)?;
    if n != len {
        return Err(Error::InvalidArgument(format!(
            "tensor of shape {shape:?} needs {n} elements, got {len}"
        )));
    }
    Ok(())
}

impl Tensor {
    pub fn new(shape: &[usize], data: Data) -> Result<Self> {
        let len = match &data {
            Data::F32(v) => v.len(),
            Data::F16(v) => v.len(),
            Data::U32(v) => v.len(),
            Data::Q8(d) => d.q.len(),
        };
        check_len(shape, len)?;
        if let Data::Q8(d) = &data {
            let last = shape.last().copied().unwrap_or(1).max(1);
            if d.scales.len() != (len / last) * last.div_ceil(Q8_BLOCK) {
                return Err(Error::InvalidArgument(format!(
                    "q8 tensor of shape {shape:?} needs {} scales, got {}",
                    (len / last) * last.div_ceil(Q8_BLOCK),
                    d.scales.len()
                )));
            }
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Arc::new(data),
        })
    }

    pub fn from_f32(shape: &[usize], data: Vec<f32>) -> Result<Self> {
        Self::new(shape, Data::F32(data))
    }

    pub fn from_u32(shape: &[usize], data: Vec<u32>) -> Result<Self> {
        Self::new(shape, Data::U32(data))
    }

    pub fn from_f16(shape: &[usize], data: Vec<f16>) -> Result<Self> {
        Self::new(shape, Data::F16(data))
    }

    pub fn zeros(shape: &[usize], dtype: DType) -> Self {
        let n = shape.iter().product();
        let data = match dtype {
            DType::F32 => Data::F32(vec![0.0; n]),
            DType::F16 => Data::F16(vec![f16::ZERO; n]),
            DType::U32 => Data::U32(vec![0; n]),
            DType::Q8 => {
                let last = shape.last().copied().unwrap_or(1).max(1);
                Data::Q8(Q8Data {
                    q: vec![0; n],
                    scales: vec![1.0; (n / last) * last.div_ceil(Q8_BLOCK)],
                })
            }
        };
        Tensor {
            shape: shape.to_vec(),
            data: Arc::new(data),
        }
    }

    /// Builds a tensor from little-endian bytes of `dtype`.
    pub fn from_bytes(shape: &[usize], dtype: DType, bytes: &[u8]) -> Result<Self> {
        let need = checked_bytes(shape, dtype)?;
        if bytes.len() != need {
            return Err(Error::InvalidArgument(format!(
                "{dtype} tensor of shape {shape:?} needs {need} bytes, got {}",
                bytes.len()
            )));
        }
        let data = match dtype {
            DType::F32 => Data::F32(bytemuck::pod_collect_to_vec(bytes)),
            DType::F16 => Data::F16(bytemuck::pod_collect_to_vec(bytes)),
            DType::U32 => Data::U32(bytemuck::pod_collect_to_vec(bytes)),
            DType::Q8 => {
                return Err(Error::InvalidArgument(
                    "q8 tensors are made by quantizing f32 values, not read from bytes".into(),
                ))
            }
        };
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Arc::new(data),
        })
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn dtype(&self) -> DType {
        match *self.data {
            Data::F32(_) => DType::F32,
            Data::F16(_) => DType::F16,
            Data::U32(_) => DType::U32,
            Data::Q8(_) => DType::Q8,
        }
    }

    /// Bytes this tensor's data takes (a q8 tensor's int8 values plus its scales).
    pub fn storage_bytes(&self) -> usize {
        match &*self.data {
            Data::Q8(d) => d.q.len() + 4 * d.scales.len(),
            _ => self.numel() * self.dtype().size(),
        }
    }

    /// Size of the last dimension (1 for rank 0).
    fn last_dim(&self) -> usize {
        self.shape.last().copied().unwrap_or(1).max(1)
    }

    pub fn info(&self) -> ValueInfo {
        ValueInfo::new(&self.shape, self.dtype())
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn data(&self) -> &Data {
        &self.data
    }

    /// Mutable access (copies the data first if it is shared).
    pub fn data_mut(&mut self) -> &mut Data {
        Arc::make_mut(&mut self.data)
    }

    /// Mutable f32 data, or an error naming the actual dtype.
    pub fn as_f32_mut(&mut self) -> Result<&mut [f32]> {
        let dt = self.dtype();
        match self.data_mut() {
            Data::F32(v) => Ok(v),
            _ => Err(Error::InvalidArgument(format!(
                "expected an f32 tensor, got {dt}"
            ))),
        }
    }

    /// Same data, new shape with the same element count.
    pub fn reshape(mut self, shape: &[usize]) -> Result<Self> {
        check_len(shape, self.numel())?;
        self.shape = shape.to_vec();
        Ok(self)
    }

    pub fn as_bytes(&self) -> &[u8] {
        match &*self.data {
            Data::F32(v) => bytemuck::cast_slice(v),
            Data::F16(v) => bytemuck::cast_slice(v),
            Data::U32(v) => bytemuck::cast_slice(v),
            Data::Q8(d) => bytemuck::cast_slice(&d.q),
        }
    }

    /// The f32 data, or an error naming the actual dtype.
    pub fn as_f32(&self) -> Result<&[f32]> {
        match &*self.data {
            Data::F32(v) => Ok(v),
            _ => Err(Error::InvalidArgument(format!(
                "expected an f32 tensor, got {}",
                self.dtype()
            ))),
        }
    }

    pub fn as_u32(&self) -> Result<&[u32]> {
        match &*self.data {
            Data::U32(v) => Ok(v),
            _ => Err(Error::InvalidArgument(format!(
                "expected a u32 tensor, got {}",
                self.dtype()
            ))),
        }
    }

    /// Values widened to f32 (f16 converted, u32 cast).
    pub fn to_f32_vec(&self) -> Vec<f32> {
        match &*self.data {
            Data::F32(v) => v.clone(),
            Data::F16(v) => v.iter().map(|x| x.to_f32()).collect(),
            Data::U32(v) => v.iter().map(|&x| x as f32).collect(),
            Data::Q8(d) => d.dequantize(self.last_dim()),
        }
    }

    /// Borrowed f32 view when possible, converted copy otherwise.
    pub fn f32_cow(&self) -> std::borrow::Cow<'_, [f32]> {
        match &*self.data {
            Data::F32(v) => std::borrow::Cow::Borrowed(v),
            _ => std::borrow::Cow::Owned(self.to_f32_vec()),
        }
    }

    /// Converts to another float dtype (f32 <-> f16, f32/f16 -> q8 by quantizing blocks of 32
    /// along the last dimension, q8 -> f32 by dequantizing).
    pub fn to_dtype(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let data = match (dtype, &*self.data) {
            (DType::F32, _) => Data::F32(self.to_f32_vec()),
            (DType::F16, Data::F32(v)) => {
                // Beyond f16's range a value would become inf: refuse instead.
                let max = f16::MAX.to_f32();
                if let Some(i) = v.iter().position(|x| x.abs() > max) {
                    return Err(Error::InvalidArgument(format!(
                        "element {i} ({}) does not fit in f16 (|x| <= {max}); keep it in f32",
                        v[i]
                    )));
                }
                Data::F16(v.iter().map(|&x| f16::from_f32(x)).collect())
            }
            (DType::Q8, Data::F32(_) | Data::F16(_)) => {
                Data::Q8(Q8Data::quantize(&self.f32_cow(), self.last_dim()))
            }
            _ => {
                return Err(Error::InvalidArgument(format!(
                    "cannot convert {} to {dtype}",
                    self.dtype()
                )))
            }
        };
        Ok(Tensor {
            shape: self.shape.clone(),
            data: Arc::new(data),
        })
    }
}

/// Row-major strides of a shape (in elements).
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}
