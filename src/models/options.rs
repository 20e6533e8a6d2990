//! Options for loading a model: the storage dtype of the large weights and a progress
//! callback. A leaf of the models layer.

use crate::error::{Error, Result};
use crate::graph::Constant;
use crate::tensor::{DType, Tensor};
use std::sync::Arc;

/// Called with (tensors read, tensors in the file) while weights load.
pub type Progress = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// Options for loading a model.
#[derive(Clone)]
pub struct LoadOptions {
    /// Storage type of the large weights (matmul weights and embedding tables): `F32` (the
    /// default), `F16`, which halves their bytes, or `Q8`: symmetric int8 with one f32 scale per
    /// block of 32 along the reduction dimension (≈ 28 % of f32). Arithmetic stays f32 in every
    /// case (the kernels dequantize as they read). Biases and normalization parameters stay f32.
    pub dtype: DType,
    /// Progress of reading the weights (for a progress bar).
    pub progress: Option<Progress>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            dtype: DType::F32,
            progress: None,
        }
    }
}

impl std::fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadOptions")
            .field("dtype", &self.dtype)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl LoadOptions {
    /// Options with weights stored as `dtype`.
    pub fn with_dtype(dtype: DType) -> Self {
        LoadOptions {
            dtype,
            ..Default::default()
        }
    }

    /// These options reporting progress to `f`.
    pub fn with_progress(mut self, f: impl Fn(usize, usize) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        match self.dtype {
            DType::F32 | DType::F16 | DType::Q8 => Ok(()),
            other => Err(Error::InvalidArgument(format!(
                "weights can be stored as f32, f16 or q8, not {other}"
            ))),
        }
    }

    /// A large weight (matmul B [N, K] or embedding table [rows, dim]: q8 blocks run along the
    /// last dimension) as a constant in the storage dtype.
    pub(crate) fn weight(&self, name: impl Into<String>, t: Tensor) -> Result<Arc<Constant>> {
        let name = name.into();
        if self.dtype == DType::Q8 && t.shape().len() != 2 {
            return Err(Error::Storage {
                tensor: name,
                msg: format!(
                    "cannot be stored as q8: it is {}-D, not a matrix",
                    t.shape().len()
                ),
            });
        }
        let t = t.to_dtype(self.dtype).map_err(|e| Error::Storage {
            tensor: name.clone(),
            msg: match e {
                Error::InvalidArgument(m) => format!("cannot be stored as {}: {m}", self.dtype),
                e => e.to_string(),
            },
        })?;
        Ok(Constant::new(name, t))
    }
}
