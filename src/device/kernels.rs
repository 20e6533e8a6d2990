//! The kernel (compute pipeline) cache: a shader, its specialisation values and its binding
//! kinds compile once per device.

use crate::error::{Error, Result};
use crate::shaders;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Kind of resource a kernel binding expects (the bind group layout is built from these).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BindingKind {
    /// `var<storage, read>`
    StorageRead,
    /// `var<storage, read_write>`
    StorageWrite,
    /// `var<uniform>`
    Uniform,
    /// `texture_storage_2d<FORMAT, read>`: the fast per-lane gather on CPU-backed adapters.
    TextureRead(TexFormat),
    /// `texture_storage_2d<FORMAT, write>`.
    TextureWrite(TexFormat),
}

/// Texel formats of storage textures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TexFormat {
    /// Four f32 per texel.
    Rgba32Float,
    /// Four u32 per texel (used for packed f16 pairs).
    Rgba32Uint,
}

impl TexFormat {
    pub fn wgpu(self) -> wgpu::TextureFormat {
        match self {
            TexFormat::Rgba32Float => wgpu::TextureFormat::Rgba32Float,
            TexFormat::Rgba32Uint => wgpu::TextureFormat::Rgba32Uint,
        }
    }
}

/// A compiled compute pipeline and its bind group layout.
#[derive(Debug)]
pub struct Kernel {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    pub name: String,
}

/// Identity of a kernel in the cache.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KernelKey {
    shader: String,
    defines: Vec<(String, String)>,
    bindings: Vec<BindingKind>,
}

#[derive(Default)]
pub(crate) struct KernelCache {
    map: Mutex<HashMap<KernelKey, Arc<Kernel>>>,
}

fn layout_entry(binding: u32, kind: BindingKind) -> wgpu::BindGroupLayoutEntry {
    let buffer = |ty| wgpu::BindingType::Buffer {
        ty,
        has_dynamic_offset: false,
        min_binding_size: None,
    };
    let texture = |access, f: TexFormat| wgpu::BindingType::StorageTexture {
        access,
        format: f.wgpu(),
        view_dimension: wgpu::TextureViewDimension::D2,
    };
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: match kind {
            BindingKind::StorageRead => {
                buffer(wgpu::BufferBindingType::Storage { read_only: true })
            }
            BindingKind::StorageWrite => {
                buffer(wgpu::BufferBindingType::Storage { read_only: false })
            }
            BindingKind::Uniform => buffer(wgpu::BufferBindingType::Uniform),
            BindingKind::TextureRead(f) => texture(wgpu::StorageTextureAccess::ReadOnly, f),
            BindingKind::TextureWrite(f) => texture(wgpu::StorageTextureAccess::WriteOnly, f),
        },
        count: None,
    }
}

impl KernelCache {
    /// The kernel for `shader` + `defines` + `bindings`, compiled on first use. The second value
    /// says whether it was compiled by this call: the caller's error scope covers new kernels,
    /// and a caller whose scope reports an error [`forget`](Self::forget)s them.
    pub(crate) fn get(
        &self,
        device: &wgpu::Device,
        caps: naga::valid::Capabilities,
        shader: &str,
        defines: &[(&str, String)],
        bindings: &[BindingKind],
    ) -> Result<(Arc<Kernel>, Option<KernelKey>)> {
        let key = KernelKey {
            shader: shader.to_string(),
            defines: defines
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            bindings: bindings.to_vec(),
        };
        if let Some(k) = self.lock().get(&key) {
            return Ok((k.clone(), None));
        }
        let src = shaders::compose(shader, defines)?;
        // naga first: readable errors, and kernels beyond the device's capabilities (subgroups
        // under the portable policy) are refused before the driver sees them.
        shaders::validate_with(shader, &src, caps).map_err(|e| match e {
            Error::Shader { name, msg } => Error::Shader {
                name: format!("{name} {defines:?}"),
                msg,
            },
            e => e,
        })?;
        let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
            .iter()
            .enumerate()
            .map(|(i, &b)| layout_entry(i as u32, b))
            .collect();
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(shader),
            entries: &entries,
        });
        let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(shader),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(shader),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(shader),
            layout: Some(&pl),
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &[],
                // Our kernels initialise the workgroup memory they read.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        let k = Arc::new(Kernel {
            pipeline,
            layout,
            name: shader.trim_end_matches(".wgsl").to_string(),
        });
        self.lock().insert(key.clone(), k.clone());
        Ok((k, Some(key)))
    }

    /// Drops kernels whose creation the driver rejected.
    pub(crate) fn forget(&self, keys: &[KernelKey]) {
        let mut map = self.lock();
        for k in keys {
            map.remove(k);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<KernelKey, Arc<Kernel>>> {
        // A panic elsewhere never leaves the map half-updated: keep using it.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}
