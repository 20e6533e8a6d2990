//! Adapter choice, device limits and features, and the pipeline cache.

use crate::error::{Error, Result};
use crate::shaders;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Live GPU objects and bytes (see [`Device::memory`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuMemory {
    pub buffers: isize,
    pub textures: isize,
    pub bind_groups: isize,
    pub buffer_bytes: isize,
    pub texture_bytes: isize,
}

/// A compiled compute pipeline and its bind group layout.
#[derive(Debug)]
pub struct Kernel {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct KernelKey {
    shader: String,
    defines: Vec<(String, String)>,
    bindings: Vec<BindingKind>,
}

/// Summary of one adapter, printable by `wgpu-infer info`.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
}

/// A GPU device. Cheap to clone; all clones share the queue and caches.
#[derive(Clone)]
pub struct Device {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    features: wgpu::Features,
    kernels: Mutex<HashMap<KernelKey, Arc<Kernel>>>,
    errors: Arc<Mutex<Vec<String>>>,
    pub(crate) tuning: Mutex<crate::tune::TuneCache>,
    /// Bytes of weights uploaded so far (every packed form of every constant).
    uploaded: AtomicU64,
}

static NEXT_DEVICE_ID: AtomicU64 = AtomicU64::new(1);

fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

fn backend_rank(b: wgpu::Backend) -> u32 {
    // GL adapters lack f16 and subgroups; prefer the native APIs.
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        wgpu::Backend::BrowserWebGpu => 1,
        _ => 2,
    }
}

fn instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

fn summary(info: &wgpu::AdapterInfo) -> AdapterSummary {
    AdapterSummary {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: format!("{} {}", info.driver, info.driver_info),
    }
}

/// Features we use when the adapter has them.
fn wanted_features() -> wgpu::Features {
    wgpu::Features::SHADER_F16
        | wgpu::Features::SUBGROUP
        | wgpu::Features::SUBGROUP_BARRIER
        | wgpu::Features::TIMESTAMP_QUERY
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
}

impl Device {
    /// Every adapter wgpu can see (honours `WGPU_BACKEND`).
    pub fn list_adapters() -> Vec<AdapterSummary> {
        let adapters = pollster::block_on(instance().enumerate_adapters(wgpu::Backends::all()));
        adapters.iter().map(|a| summary(&a.get_info())).collect()
    }

    /// Picks the best adapter (discrete > integrated > virtual > cpu), or the one whose name
    /// contains `WGPU_INFER_ADAPTER` (case-insensitive), and opens a device with the adapter's own
    /// limits and the features it has among SHADER_F16, SUBGROUP and TIMESTAMP_QUERY.
    pub fn new() -> Result<Device> {
        let wanted = std::env::var("WGPU_INFER_ADAPTER")
            .ok()
            .filter(|s| !s.is_empty());
        Self::with_adapter(wanted.as_deref())
    }

    /// Like [`Device::new`] with an explicit adapter name filter.
    pub fn with_adapter(name_filter: Option<&str>) -> Result<Device> {
        let inst = instance();
        let mut adapters = pollster::block_on(inst.enumerate_adapters(wgpu::Backends::all()));
        if adapters.is_empty() {
            return Err(Error::NoAdapter {
                detail: String::new(),
            });
        }
        if let Some(f) = name_filter {
            let f_lower = f.to_lowercase();
            let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
            adapters.retain(|a| a.get_info().name.to_lowercase().contains(&f_lower));
            if adapters.is_empty() {
                return Err(Error::NoAdapter {
                    detail: format!(
                        " whose name contains '{f}' (WGPU_INFER_ADAPTER); visible adapters: {}",
                        names.join(", ")
                    ),
                });
            }
        }
        adapters.sort_by_key(|a| {
            let i = a.get_info();
            (type_rank(i.device_type), backend_rank(i.backend))
        });
        let adapter = adapters.swap_remove(0);
        Self::from_adapter(adapter)
    }

    fn from_adapter(adapter: wgpu::Adapter) -> Result<Device> {
        let info = adapter.get_info();
        let features = adapter.features() & wanted_features();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgpu-infer"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::DeviceRequest {
            adapter: info.name.clone(),
            reason: e.to_string(),
        })?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        // Errors outside our error scopes must not abort the process: keep them for the next check.
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock().unwrap().push(e.to_string());
        }));
        let tuning = crate::tune::TuneCache::load(&info);
        Ok(Device {
            inner: Arc::new(Inner {
                id: NEXT_DEVICE_ID.fetch_add(1, Ordering::Relaxed),
                device,
                queue,
                info,
                limits,
                features,
                kernels: Mutex::default(),
                errors,
                tuning: Mutex::new(tuning),
                uploaded: AtomicU64::new(0),
            }),
        })
    }

    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }
    pub fn wgpu(&self) -> &wgpu::Device {
        &self.inner.device
    }
    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }
    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }
    pub fn features(&self) -> wgpu::Features {
        self.inner.features
    }
    pub fn has_f16(&self) -> bool {
        self.features().contains(wgpu::Features::SHADER_F16)
    }
    pub fn has_subgroups(&self) -> bool {
        self.features().contains(wgpu::Features::SUBGROUP)
    }
    pub fn has_timestamps(&self) -> bool {
        self.features().contains(wgpu::Features::TIMESTAMP_QUERY)
    }
    /// True for software rasterisers such as lavapipe/llvmpipe/SwiftShader/WARP.
    /// Live GPU objects and memory on this device, from wgpu's internal counters.
    pub fn memory(&self) -> GpuMemory {
        let c = self.inner.device.get_internal_counters().hal;
        GpuMemory {
            buffers: c.buffers.read(),
            textures: c.textures.read(),
            bind_groups: c.bind_groups.read(),
            buffer_bytes: c.buffer_memory.read(),
            texture_bytes: c.texture_memory.read(),
        }
    }

    /// Total bytes of weights uploaded to this device so far (a model opened twice from the
    /// same folder uploads once).
    pub fn weight_bytes_uploaded(&self) -> u64 {
        self.inner.uploaded.load(Ordering::Relaxed)
    }
    pub(crate) fn count_upload(&self, bytes: u64) {
        self.inner.uploaded.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn is_cpu(&self) -> bool {
        self.inner.info.device_type == wgpu::DeviceType::Cpu
    }
    pub(crate) fn tuning(&self) -> &Mutex<crate::tune::TuneCache> {
        &self.inner.tuning
    }

    /// Largest storage buffer range one binding may cover.
    pub fn max_binding(&self) -> u64 {
        self.inner.limits.max_storage_buffer_binding_size
    }

    /// Multi-line description: adapter, backend, type, features and the limits we depend on.
    pub fn describe(&self) -> String {
        let i = &self.inner.info;
        let l = &self.inner.limits;
        let mut s = String::new();
        let _ = writeln!(s, "adapter:   {}", i.name);
        let _ = writeln!(s, "backend:   {:?}", i.backend);
        let _ = writeln!(s, "type:      {:?}", i.device_type);
        let _ = writeln!(s, "driver:    {} {}", i.driver, i.driver_info);
        let _ = writeln!(s, "features:  {:?}", self.inner.features);
        if self.has_subgroups() {
            let _ = writeln!(
                s,
                "subgroups: {}..{}",
                i.subgroup_min_size, i.subgroup_max_size
            );
        }
        let _ = writeln!(s, "limits:");
        let rows: [(&str, u64); 10] = [
            (
                "max_storage_buffer_binding_size",
                l.max_storage_buffer_binding_size,
            ),
            ("max_buffer_size", l.max_buffer_size),
            (
                "max_compute_workgroup_storage_size",
                l.max_compute_workgroup_storage_size as u64,
            ),
            (
                "max_compute_invocations_per_workgroup",
                l.max_compute_invocations_per_workgroup as u64,
            ),
            (
                "max_compute_workgroups_per_dimension",
                l.max_compute_workgroups_per_dimension as u64,
            ),
            (
                "max_storage_buffers_per_shader_stage",
                l.max_storage_buffers_per_shader_stage as u64,
            ),
            (
                "max_texture_dimension_2d",
                l.max_texture_dimension_2d as u64,
            ),
            (
                "min_storage_buffer_offset_alignment",
                l.min_storage_buffer_offset_alignment as u64,
            ),
            (
                "min_uniform_buffer_offset_alignment",
                l.min_uniform_buffer_offset_alignment as u64,
            ),
            (
                "max_uniform_buffer_binding_size",
                l.max_uniform_buffer_binding_size,
            ),
        ];
        for (k, v) in rows {
            let _ = writeln!(s, "  {k:<40} {v}");
        }
        s
    }

    /// Compiles (or fetches from the cache) a kernel: shader + placeholder values + binding kinds.
    pub fn kernel(
        &self,
        shader: &str,
        defines: &[(&str, String)],
        bindings: &[BindingKind],
    ) -> Result<Arc<Kernel>> {
        let key = KernelKey {
            shader: shader.to_string(),
            defines: defines
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            bindings: bindings.to_vec(),
        };
        if let Some(k) = self.inner.kernels.lock().unwrap().get(&key) {
            return Ok(k.clone());
        }
        let src = shaders::compose(shader, defines)?;
        shaders::validate(shader, &src)?;
        let dev = &self.inner.device;
        let scope = dev.push_error_scope(wgpu::ErrorFilter::Validation);
        let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupLayoutEntry {
                binding: i as u32,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: match b {
                    BindingKind::StorageRead => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: true },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    BindingKind::StorageWrite => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    BindingKind::Uniform => wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    BindingKind::TextureRead(f) => wgpu::BindingType::StorageTexture {
                        access: wgpu::StorageTextureAccess::ReadOnly,
                        format: f.wgpu(),
                        view_dimension: wgpu::TextureViewDimension::D2,
                    },
                    BindingKind::TextureWrite(f) => wgpu::BindingType::StorageTexture {
                        access: wgpu::StorageTextureAccess::WriteOnly,
                        format: f.wgpu(),
                        view_dimension: wgpu::TextureViewDimension::D2,
                    },
                },
                count: None,
            })
            .collect();
        let layout = dev.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(shader),
            entries: &entries,
        });
        let pl = dev.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(shader),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(shader),
            source: wgpu::ShaderSource::Wgsl(src.into()),
        });
        let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
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
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(Error::Shader {
                name: format!("{shader} {defines:?}"),
                msg: e.to_string(),
            });
        }
        let k = Arc::new(Kernel {
            pipeline,
            layout,
            name: shader.trim_end_matches(".wgsl").to_string(),
        });
        self.inner.kernels.lock().unwrap().insert(key, k.clone());
        Ok(k)
    }

    /// Number of compiled kernels in the cache.
    pub fn kernel_count(&self) -> usize {
        self.inner.kernels.lock().unwrap().len()
    }

    /// Errors reported by wgpu outside an error scope since the last call.
    pub(crate) fn take_errors(&self) -> Option<String> {
        let mut e = self.inner.errors.lock().unwrap();
        if e.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut *e).join("; "))
        }
    }

    /// Blocks until all submitted work is done.
    pub fn wait(&self) -> Result<()> {
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::gpu("poll", e))?;
        Ok(())
    }

    /// Creates a storage texture of `width` x `height` texels holding `bytes` (row-major texels).
    pub(crate) fn upload_texture(
        &self,
        label: &str,
        width: u32,
        height: u32,
        format: TexFormat,
        bytes: &[u8],
    ) -> Result<(wgpu::Texture, wgpu::TextureView)> {
        let max = self.inner.limits.max_texture_dimension_2d;
        if width > max || height > max {
            return Err(Error::Limit {
                what: format!("texture '{label}' of {width}x{height} texels"),
                needed: width.max(height) as u64,
                limit: max as u64,
                limit_name: "max_texture_dimension_2d",
            });
        }
        let tex = self.inner.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: format.wgpu(),
            usage: wgpu::TextureUsages::STORAGE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        self.inner.queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &tex,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            bytes,
            wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(width * 16),
                rows_per_image: Some(height),
            },
            wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
        );
        let view = tex.create_view(&wgpu::TextureViewDescriptor::default());
        Ok((tex, view))
    }

    /// Creates a storage buffer holding `bytes` (padded to 4 bytes).
    pub(crate) fn upload(
        &self,
        label: &str,
        bytes: &[u8],
        extra: wgpu::BufferUsages,
    ) -> wgpu::Buffer {
        let size = (bytes.len() as u64).div_ceil(4).max(1) * 4;
        let buf = self.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | extra,
            mapped_at_creation: true,
        });
        match buf.get_mapped_range_mut(..) {
            Ok(mut view) => view.slice(..bytes.len()).copy_from_slice(bytes),
            // Unreachable for a buffer mapped at creation; report through wgpu's error path.
            Err(e) => self.inner.errors.lock().unwrap().push(e.to_string()),
        }
        buf.unmap();
        buf
    }

    /// Reads `size` bytes of `buf` at `offset` (copies through a staging buffer).
    pub fn read_buffer(&self, buf: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
        let padded = size.div_ceil(4) * 4;
        let staging = self.inner.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: padded,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self
            .inner
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        enc.copy_buffer_to_buffer(buf, offset, &staging, 0, padded);
        self.inner.queue.submit([enc.finish()]);
        let out = map_read(self, &staging, padded)?;
        Ok(out[..size as usize].to_vec())
    }
}

/// Maps a MAP_READ buffer, waits, and copies its contents out.
pub(crate) fn map_read(dev: &Device, staging: &wgpu::Buffer, size: u64) -> Result<Vec<u8>> {
    let slice = staging.slice(..size);
    let (tx, rx) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    dev.wait()?;
    rx.recv()
        .map_err(|e| Error::gpu("map", e))?
        .map_err(|e| Error::gpu("map", e))?;
    let data = slice
        .get_mapped_range()
        .map_err(|e| Error::gpu("map", e))?
        .to_vec();
    staging.unmap();
    Ok(data)
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Device({} / {:?})",
            self.inner.info.name, self.inner.info.backend
        )
    }
}
