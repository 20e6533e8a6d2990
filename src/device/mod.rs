//! Adapter choice, device limits and features, the kernel cache, the kernel policy and the
//! tuning cache. Opening a device is async ([`Device::request`]); native builds also have the
//! blocking [`Device::new`].

mod kernels;
mod peak;
mod policy;
mod readback;
mod tuning;

pub use kernels::{BindingKind, Kernel, TexFormat};
pub use policy::KernelPolicy;
pub(crate) use tuning::TuneCache;
pub use tuning::TunedChoice;

pub(crate) use kernels::KernelKey;
pub(crate) use readback::map_read;

use crate::error::{Error, Result};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Live GPU objects and bytes (see [`Device::memory`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuMemory {
    pub buffers: isize,
    pub textures: isize,
    pub bind_groups: isize,
    pub buffer_bytes: isize,
    pub texture_bytes: isize,
}

/// Summary of one adapter, printable by `wgpu-infer info`.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
}

/// How to open a device.
#[derive(Clone, Debug)]
pub struct DeviceOptions {
    /// Only adapters whose name contains this (case-insensitive).
    pub adapter: Option<String>,
    /// Which kernels the device may use.
    pub policy: KernelPolicy,
    /// Most bytes of buffers and textures the device may hold at once (weights, activations,
    /// KV caches). wgpu does not report how much memory an adapter has, so this is a cap an
    /// allocation is checked against before it is made; beyond it loading or generating is a
    /// typed error naming the bytes. Default [`DEFAULT_MEMORY_BUDGET`].
    pub memory_budget: u64,
}

/// The default memory budget: 8 GiB.
pub const DEFAULT_MEMORY_BUDGET: u64 = 8 << 30;

impl Default for DeviceOptions {
    fn default() -> Self {
        DeviceOptions {
            adapter: None,
            policy: KernelPolicy::default(),
            memory_budget: DEFAULT_MEMORY_BUDGET,
        }
    }
}

impl DeviceOptions {
    /// Options from the environment: `WGPU_INFER_ADAPTER=<substring>`,
    /// `WGPU_INFER_MEMORY_BUDGET=<bytes, or with a KiB/MiB/GiB suffix>` and the kernel policy's
    /// variables (see [`KernelPolicy::from_env`]).
    pub fn from_env() -> Result<DeviceOptions> {
        let budget = match std::env::var("WGPU_INFER_MEMORY_BUDGET") {
            Ok(v) if !v.trim().is_empty() => parse_bytes(&v).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "WGPU_INFER_MEMORY_BUDGET='{v}': expected bytes, e.g. 4GiB or 512MiB"
                ))
            })?,
            _ => DEFAULT_MEMORY_BUDGET,
        };
        Ok(DeviceOptions {
            adapter: std::env::var("WGPU_INFER_ADAPTER")
                .ok()
                .filter(|s| !s.trim().is_empty()),
            policy: KernelPolicy::from_env()?,
            memory_budget: budget,
        })
    }
}

/// `123`, `4KiB`, `512MiB`, `8GiB` (also `K`, `M`, `G`, `KB`, `MB`, `GB` as binary units).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
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
    policy: KernelPolicy,
    budget: u64,
    kernels: kernels::KernelCache,
    errors: Arc<Mutex<Vec<String>>>,
    tuning: Mutex<TuneCache>,
    /// Bytes of weights uploaded so far (every packed form of every constant).
    uploaded: AtomicU64,
    #[cfg(not(target_arch = "wasm32"))]
    poller: readback::Poller,
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
fn wanted_features(policy: &KernelPolicy) -> wgpu::Features {
    let mut f = wgpu::Features::SHADER_F16
        | wgpu::Features::TIMESTAMP_QUERY
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
        | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
    if !policy.portable {
        f |= wgpu::Features::SUBGROUP | wgpu::Features::SUBGROUP_BARRIER;
    }
    f
}

/// The limits to open the device with: the adapter's own (wgpu's defaults are lower), or under
/// the portable policy WebGPU's defaults for everything that shapes a kernel (buffer sizes stay
/// the adapter's: browsers grant those when asked).
fn wanted_limits(adapter: &wgpu::Limits, policy: &KernelPolicy) -> wgpu::Limits {
    if !policy.portable {
        return adapter.clone();
    }
    let mut l = adapter
        .clone()
        .or_worse_values_from(&wgpu::Limits::default());
    l.max_buffer_size = adapter.max_buffer_size;
    l.max_storage_buffer_binding_size = adapter.max_storage_buffer_binding_size;
    l
}

impl Device {
    /// Every adapter wgpu can see (honours `WGPU_BACKEND`).
    pub async fn list_adapters_async() -> Vec<AdapterSummary> {
        adapters()
            .await
            .iter()
            .map(|a| summary(&a.get_info()))
            .collect()
    }

    /// Opens the best adapter (discrete > integrated > virtual > cpu; native APIs before GL),
    /// or the one whose name contains `opts.adapter`, with the adapter's own limits and the
    /// features it has among SHADER_F16, SUBGROUP and TIMESTAMP_QUERY (subgroups and limits as
    /// `opts.policy` allows).
    pub async fn request(opts: &DeviceOptions) -> Result<Device> {
        let mut adapters = adapters().await;
        if adapters.is_empty() {
            return Err(Error::NoAdapter {
                detail: String::new(),
            });
        }
        if let Some(f) = &opts.adapter {
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
        Self::from_adapter(adapter, opts.policy.clone(), opts.memory_budget).await
    }

    async fn from_adapter(
        adapter: wgpu::Adapter,
        policy: KernelPolicy,
        budget: u64,
    ) -> Result<Device> {
        let info = adapter.get_info();
        let features = adapter.features() & wanted_features(&policy);
        let limits = wanted_limits(&adapter.limits(), &policy);
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgpu-infer"),
                required_features: features,
                required_limits: limits.clone(),
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::DeviceRequest {
                adapter: info.name.clone(),
                reason: e.to_string(),
            })?;
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = errors.clone();
        // Errors outside our error scopes must not abort the process: keep them for the next check.
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            sink.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.to_string());
        }));
        let tuning = TuneCache::load(&info, policy.portable);
        Ok(Device {
            inner: Arc::new(Inner {
                id: NEXT_DEVICE_ID.fetch_add(1, Ordering::Relaxed),
                device,
                queue,
                info,
                limits,
                features,
                policy,
                budget,
                kernels: kernels::KernelCache::default(),
                errors,
                tuning: Mutex::new(tuning),
                uploaded: AtomicU64::new(0),
                #[cfg(not(target_arch = "wasm32"))]
                poller: readback::Poller::default(),
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
    /// The kernel policy this device was opened with.
    pub fn policy(&self) -> &KernelPolicy {
        &self.inner.policy
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
    /// Timestamps around single dispatches (what profiling and the tuner use).
    pub fn has_timestamps_in_passes(&self) -> bool {
        self.features()
            .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES)
    }
    /// Subgroups of exactly `n` lanes or more (the texture kernels assume 8).
    pub fn has_subgroups_of(&self, n: u32) -> bool {
        self.has_subgroups() && self.inner.info.subgroup_min_size >= n
    }
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

    /// The memory budget this device was opened with (see [`DeviceOptions::memory_budget`]).
    pub fn memory_budget(&self) -> u64 {
        self.inner.budget
    }

    /// Checks that `bytes` more for `what` stay within the memory budget, before they are
    /// allocated: an [`Error::Limit`] naming the bytes otherwise.
    pub fn reserve(&self, what: &str, bytes: u64) -> Result<()> {
        let m = self.memory();
        let used = (m.buffer_bytes.max(0) + m.texture_bytes.max(0)) as u64;
        let needed = used.saturating_add(bytes);
        if needed > self.inner.budget {
            return Err(Error::Limit {
                what: format!("{what} ({bytes} bytes, {used} already in use)"),
                needed,
                limit: self.inner.budget,
                limit_name: "memory budget, WGPU_INFER_MEMORY_BUDGET",
                unit: "bytes",
            });
        }
        Ok(())
    }

    /// Total bytes of weights uploaded to this device so far (a model opened twice from the
    /// same folder uploads once).
    pub fn weight_bytes_uploaded(&self) -> u64 {
        self.inner.uploaded.load(Ordering::Relaxed)
    }
    pub(crate) fn count_upload(&self, bytes: u64) {
        self.inner.uploaded.fetch_add(bytes, Ordering::Relaxed);
    }
    /// True for software rasterisers such as lavapipe/llvmpipe/SwiftShader/WARP.
    pub fn is_cpu(&self) -> bool {
        self.inner.info.device_type == wgpu::DeviceType::Cpu
    }

    /// The tuning cache of this device's adapter.
    pub(crate) fn tuning(&self) -> std::sync::MutexGuard<'_, TuneCache> {
        self.inner.tuning.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The kernel choices cached for this adapter (with the times behind them), and where
    /// they are kept.
    pub fn tuned_choices(&self) -> (Vec<(String, TunedChoice)>, String) {
        let t = self.tuning();
        (t.entries(), t.location())
    }

    /// Forgets this adapter's kernel choices (in this process and in the cache file): the
    /// next graphs measure them again.
    pub fn reset_tuning(&self) {
        self.tuning().reset();
    }

    /// Largest storage buffer range one binding may cover.
    pub fn max_binding(&self) -> u64 {
        self.inner.limits.max_storage_buffer_binding_size
    }

    /// Multi-line description: adapter, backend, type, features, policy and the limits we
    /// depend on.
    pub fn describe(&self) -> String {
        let i = &self.inner.info;
        let l = &self.inner.limits;
        let mut s = String::new();
        let _ = writeln!(s, "adapter:   {}", i.name);
        let _ = writeln!(s, "backend:   {:?}", i.backend);
        let _ = writeln!(s, "type:      {:?}", i.device_type);
        let _ = writeln!(s, "driver:    {} {}", i.driver, i.driver_info);
        let _ = writeln!(s, "features:  {:?}", self.inner.features);
        let _ = writeln!(s, "kernels:   {}", self.inner.policy.describe());
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

    /// naga capabilities matching this device's features.
    fn capabilities(&self) -> naga::valid::Capabilities {
        use naga::valid::Capabilities as C;
        let mut caps = C::SHADER_FLOAT16_IN_FLOAT32;
        if self.has_subgroups() {
            caps |= C::SUBGROUP | C::SUBGROUP_BARRIER;
        }
        if self.has_f16() {
            caps |= C::SHADER_FLOAT16;
        }
        caps
    }

    /// Compiles (or fetches from the cache) a kernel: shader + placeholder values + binding
    /// kinds. Errors the driver reports asynchronously are caught by the caller's error scope
    /// (the graph compiler's).
    pub fn kernel(
        &self,
        shader: &str,
        defines: &[(&str, String)],
        bindings: &[BindingKind],
    ) -> Result<Arc<Kernel>> {
        Ok(self.kernel_new(shader, defines, bindings)?.0)
    }

    /// [`Device::kernel`], also returning the cache key when this call compiled the kernel.
    pub(crate) fn kernel_new(
        &self,
        shader: &str,
        defines: &[(&str, String)],
        bindings: &[BindingKind],
    ) -> Result<(Arc<Kernel>, Option<KernelKey>)> {
        self.inner.kernels.get(
            &self.inner.device,
            self.capabilities(),
            shader,
            defines,
            bindings,
        )
    }

    /// Drops kernels whose creation the driver rejected (they must not be served again).
    pub(crate) fn forget_kernels(&self, keys: &[KernelKey]) {
        self.inner.kernels.forget(keys);
    }

    /// Number of compiled kernels in the cache.
    pub fn kernel_count(&self) -> usize {
        self.inner.kernels.len()
    }

    /// Errors reported by wgpu outside an error scope since the last call.
    pub(crate) fn take_errors(&self) -> Option<String> {
        let mut e = self.inner.errors.lock().unwrap_or_else(|p| p.into_inner());
        if e.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut *e).join("; "))
        }
    }

    /// Blocks until all submitted work is done (native; the browser needs no polling).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn wait(&self) -> Result<()> {
        self.inner
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::gpu("poll", e))?;
        Ok(())
    }

    /// Resolves when all work submitted so far has finished.
    pub async fn flush(&self) -> Result<()> {
        readback::work_done(self).await
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
                unit: "texels",
            });
        }
        let size = wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        };
        let tex = self.inner.device.create_texture(&wgpu::TextureDescriptor {
            label: Some(label),
            size,
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
            size,
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
            Err(e) => self
                .inner
                .errors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.to_string()),
        }
        buf.unmap();
        buf
    }

    /// Reads `size` bytes of `buf` at `offset` (copies through a staging buffer).
    pub async fn read_buffer(&self, buf: &wgpu::Buffer, offset: u64, size: u64) -> Result<Vec<u8>> {
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
        let out = map_read(self, &staging, padded).await?;
        Ok(out[..size as usize].to_vec())
    }
}

/// Every adapter visible to a fresh instance.
async fn adapters() -> Vec<wgpu::Adapter> {
    let inst = instance();
    #[cfg(not(target_arch = "wasm32"))]
    {
        inst.enumerate_adapters(wgpu::Backends::all()).await
    }
    #[cfg(target_arch = "wasm32")]
    {
        // The browser offers one adapter per request.
        let opts = wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        };
        inst.request_adapter(&opts).await.into_iter().collect()
    }
}

/// The blocking edge of the device API (native only).
#[cfg(not(target_arch = "wasm32"))]
impl Device {
    /// Opens the device chosen by the environment (`WGPU_INFER_ADAPTER`, the kernel policy
    /// variables): see [`Device::request`].
    pub fn new() -> Result<Device> {
        Self::with_options(&DeviceOptions::from_env()?)
    }

    /// [`Device::request`], blocking.
    pub fn with_options(opts: &DeviceOptions) -> Result<Device> {
        crate::edge::block_on(Self::request(opts))
    }

    /// Like [`Device::new`] with an explicit adapter name filter.
    pub fn with_adapter(name_filter: Option<&str>) -> Result<Device> {
        let mut opts = DeviceOptions::from_env()?;
        opts.adapter = name_filter.map(str::to_string);
        Self::with_options(&opts)
    }

    /// Every adapter wgpu can see (honours `WGPU_BACKEND`).
    pub fn list_adapters() -> Vec<AdapterSummary> {
        crate::edge::block_on(Self::list_adapters_async())
    }

    /// [`Device::fma_peak_gflops`], blocking.
    pub fn measure_fma_peak(&self, reps: usize) -> Result<f64> {
        crate::edge::block_on(self.fma_peak_gflops(reps))
    }
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
